"""``recipe="official"``: every difference between the official Figure 2 models and loop (HazyResearch/zoology)
and the clean ones, each pinned on a small hand-computed case (float64 where numbers are compared)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mqar_theory.data import MQARConfig, make_mqar
from mqar_theory.mixers import H3, RWKV, Attention, BaseConvOfficial, Based, Hyena, implicit_filter_features
from mqar_theory.model import Block, LanguageModel, RMSNorm, official_mixer
from mqar_theory.sweep import load_spec, parse_spec, plan, run_hash
from mqar_theory.sweep.spec import SWEEPS_DIR, SpecError
from mqar_theory.train import train

pytestmark = pytest.mark.usefixtures("float64_default")
FIG2 = [{"kernel_size": 3}, {"kernel_size": -1}]


def official(mixer, d=8, N=8, n_layers=2, **kw):
    torch.manual_seed(0)
    return LanguageModel(16, d, N, n_layers=n_layers, mixer=mixer, recipe="official", **kw)


# --- BaseConv (zoology/mixers/base_conv.py, convolution.py) -------------------------------------------------
def test_official_baseconv_short_layer_by_hand():
    """y = (b2 + Σ_i h[i] u[t-i]) ⊙ (u Wᵀ + b) + u, d = 1, k = 2, n = 3."""
    m = BaseConvOfficial(1, 3, kernel_size=2)
    with torch.no_grad():
        m.h.copy_(torch.tensor([[2.0], [3.0]]))  # h[0] (current token), h[1] (previous)
        m.b2.fill_(1.0)
        m.projection.weight.fill_(0.5)
        m.projection.bias.fill_(1.0)
    u = torch.tensor([[[1.0], [2.0], [4.0]]])
    conv = torch.tensor([1 + 2 * 1, 1 + 2 * 2 + 3 * 1, 1 + 2 * 4 + 3 * 2])  # 3, 8, 15
    proj = 0.5 * u[0, :, 0] + 1  # 1.5, 2, 3
    want = conv * proj + u[0, :, 0]  # 5.5, 18, 49
    assert torch.allclose(m(u)[0, :, 0], want) and torch.allclose(m.forward_reference(u)[0, :, 0], want)


def test_official_baseconv_short_conv_is_the_official_conv1d():
    """The official ShortConvolution is nn.Conv1d(d, d, k, groups=d, padding=k-1) cropped to n: h[i] = w[k-1-i]."""
    torch.manual_seed(1)
    d, k, n = 3, 3, 7
    m = BaseConvOfficial(d, n, kernel_size=k)
    conv1d = nn.Conv1d(d, d, k, groups=d, padding=k - 1)
    with torch.no_grad():
        conv1d.weight.copy_(m.h.flip(0).T[:, None, :])
        conv1d.bias.copy_(m.b2)
    u = torch.randn(2, n, d)
    official_conv = conv1d(u.transpose(1, 2))[..., :n].transpose(1, 2)
    assert torch.allclose(m(u), official_conv * m.projection(u) + u, atol=1e-12)


def test_official_implicit_filter_features_by_hand():
    z = implicit_filter_features(4)
    w = 2 * math.pi * torch.arange(4.0) / 4
    want = torch.stack([torch.tensor([0, 1 / 3, 2 / 3, 1]), torch.cos(1e-4 * w), -torch.sin(1e-4 * w)], dim=1)
    assert z.shape == (4, 3) and torch.allclose(z, want, atol=1e-15)
    f = implicit_filter_features(6, emb_dim=5)  # two bands: frequencies linspace(1e-4, 1, 2)
    assert torch.allclose(f[:, 2], torch.cos(2 * math.pi * torch.arange(6.0) / 6), atol=1e-15)
    with pytest.raises(ValueError, match="emb_dim"):
        implicit_filter_features(4, emb_dim=4)


def test_official_baseconv_long_layer_by_hand():
    """A constant filter h[t] = w: conv(u)[t] = w ⊙ Σ_{s<=t} u[s] + u[t] (the FFT conv's own +u), then gated, + u."""
    m = BaseConvOfficial(2, 4, kernel_size=None)
    with torch.no_grad():
        first, second = m.filter_mlp[0], m.filter_mlp[2]
        first.weight.zero_()
        first.bias.copy_(torch.tensor([1.0] + [0.0] * 15))  # hidden = relu(e_0) whatever z
        second.weight.zero_()
        second.weight[:, 0] = torch.tensor([2.0, -1.0])  # h[t] = (2, -1)
        second.bias.zero_()
        m.projection.weight.copy_(torch.eye(2))
        m.projection.bias.zero_()
    u = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]])
    cum = u[0].cumsum(0)
    conv = torch.tensor([2.0, -1.0]) * cum + u[0]
    want = conv * u[0] + u[0]
    assert torch.allclose(m(u)[0], want) and torch.allclose(m.forward_reference(u)[0], want)
    # the official FFT convolution (filter and input padded to 2n, rfft(k)/2n, irfft with norm="forward"), + u
    x, k = u.transpose(1, 2), m.long_filter(4).T
    y = torch.fft.irfft(torch.fft.rfft(x, n=8) * torch.fft.rfft(k, n=8) / 8, n=8, norm="forward")[..., :4] + x
    assert torch.allclose(y.transpose(1, 2)[0], conv)


def test_official_baseconv_parameter_count_matches_the_official_formula():
    """Fig. 2 base_conv, 2 layers [3, -1], all LNs (two per block + final): 2d² + 33d + 64 non-embedding."""
    for d in (8, 16):
        m = official("baseconv", d=d, N=16, mixer_kwargs=FIG2)
        assert isinstance(m.blocks[0].mixer, BaseConvOfficial) and m.blocks[1].mixer.kernel_size is None
        assert m.num_parameters(include_embeddings=False) == 2 * d * d + 33 * d + 64
        a = official("attention", d=d, N=16)  # 8d² + 18d (positions are embeddings)
        assert a.num_parameters(include_embeddings=False) == 8 * d * d + 18 * d


# --- the block (zoology/model.py TransformerBlock, mixers/mamba.py MambaBlock) ----------------------------------
def _official_backbone(model, x):
    """The official residual bookkeeping, in our words: each block returns (LN2(residual), residual) when the
    state mixer is Identity, and the next block (or the final norm) adds the hidden state to the residual."""
    h, residual = model.embedding(x) + model.position.weight[: x.shape[1]], None
    for block in model.blocks:
        residual = h if residual is None else h + residual
        residual = block.mixer(block.norm1(residual)) + residual
        h = block.norm2(residual)
    return model.norm(h + residual)


def test_official_block_adds_the_ln2_skip():
    model = official("attention", n_layers=3).eval()
    assert all(b.norm2_skip and b.norm2 is not None and b.mlp is None for b in model.blocks)
    x = torch.randint(0, 16, (2, 8))
    assert torch.allclose(model.hidden(x), _official_backbone(model, x), atol=1e-12)
    clean = LanguageModel(16, 8, 8, mixer="attention")
    assert all(b.norm2 is None and not b.norm2_skip for b in clean.blocks)
    with_mlp = official("attention", mlp=2)  # with a state mixer the official block is the clean one
    assert all(not b.norm2_skip and b.mlp is not None for b in with_mlp.blocks)


def test_block_norm2_skip_by_hand():
    block = Block(nn.Identity(), 2, None, 1e-5, norm2_skip=True)  # mixer = identity: x + LN1(x), then + LN2
    x = torch.tensor([[[1.0, 3.0]]])
    after = x + torch.tensor([[[-1.0, 1.0]]]) * (1 / math.sqrt(1 + 1e-5))
    want = after + torch.tensor([[[-1.0, 1.0]]]) * (after[0, 0, 1] - after[0, 0, 0]) / 2 / math.sqrt(
        ((after[0, 0, 1] - after[0, 0, 0]) / 2) ** 2 + 1e-5)
    assert torch.allclose(block(x), want, atol=1e-12)


def test_rmsnorm_by_hand():
    x = torch.tensor([[3.0, 4.0]])
    assert torch.allclose(RMSNorm(2, eps=0.0)(x), x / math.sqrt(12.5))


def test_official_mamba_block_rmsnorm_no_dropout_no_ln2():
    model = official("mamba")
    assert all(isinstance(b.norm1, RMSNorm) and b.norm2 is None for b in model.blocks)
    assert model.drop.p == 0.0 and model.config["dropout"] == 0.0
    with pytest.raises(ValueError, match="dropout"):
        official("mamba", dropout=0.1)
    with pytest.raises(ValueError, match="mixer"):
        official(["mamba", "attention"])
    with pytest.raises(ValueError, match="mlp"):
        official("mamba", mlp=True)


def test_official_embedding_dropout_per_model():
    assert official("attention").drop.p == 0.1 and official("hyena").drop.p == 0.1
    assert official("attention", dropout=0.0).drop.p == 0.0  # an explicit value wins
    assert LanguageModel(16, 8, 8).drop.p == 0.0  # clean default


# --- mixers' official settings --------------------------------------------------------------------------------
def test_official_attention_dropout_on_probabilities():
    model = official("attention")
    att = model.blocks[0].mixer
    assert isinstance(att, Attention) and att.dropout == 0.1
    torch.manual_seed(3)
    u = torch.randn(2, 5, 8)
    att.train()
    torch.manual_seed(7)
    y = att(u)
    q, k, v = att._heads(u)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(8)
    A = torch.softmax(s.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf")), -1)
    torch.manual_seed(7)
    want = att.out_proj((F.dropout(A, 0.1, training=True) @ v).transpose(1, 2).reshape(u.shape))
    assert torch.allclose(y, want, atol=1e-12)
    att.eval()  # no dropout in evaluation: the plain attention
    assert torch.allclose(att(u), att.forward_reference(u), atol=1e-12)


def test_official_h3_head_dim_2_and_d_state_L():
    m = official("h3", d=8, N=12).blocks[0].mixer
    assert isinstance(m, H3) and (m.head_dim, m.d_state, m.num_heads) == (2, 12, 4)
    assert official("h3", d=8, N=12, mixer_kwargs={"d_state": 4}).blocks[0].mixer.d_state == 4  # spec wins


def test_h3_head_dim_2_by_hand():
    """One head of p = 2, identity projections, shift SSM = identity, diagonal SSM = D = 1:
    y[j] = Σ_i q_i k_i v_j = (u·u) u_j."""
    m = H3(2, 2, d_state=2, head_dim=2)
    with torch.no_grad():
        for lin in (m.q_proj, m.k_proj, m.v_proj, m.out_proj):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
        m.shift_C.zero_()
        m.shift_D.fill_(1.0)
        m.C.zero_()
        m.D.fill_(1.0)
    u = torch.tensor([[[1.0, 2.0], [0.5, -1.0]]])
    want = torch.tensor([[[5.0, 10.0], [0.625, -1.25]]])
    assert torch.allclose(m(u), want) and torch.allclose(m.forward_reference(u), want)


def test_h3_head_dim_2_fft_matches_recurrence():
    torch.manual_seed(2)
    m = H3(8, 10, d_state=10, head_dim=2)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    u = torch.randn(2, 10, 8)
    assert torch.allclose(m(u), m.forward_reference(u), atol=1e-10)
    assert m.state_size(10) == 8 * (9 + 2 * 10)  # the shift SSM's m-1 past inputs, p·d·m diagonal modes


#: the official H3's three differences from the default form (mixers/h3.py docstring)
H3_OFFICIAL = {"train_B": True, "shift_init": "official", "discretization": "bilinear"}


def test_h3_parameter_count_equals_the_official_at_the_figure_2_size():
    """d = 64, L = 64, V = 8192, 2 layers, recipe official: the official H3 has 587,136 parameters (B trained in
    both SSMs: m·d + H·m = 4,096 + 2,048 more per layer); the default form has 574,848."""
    official_form = LanguageModel(8192, 64, 64, mixer="h3", recipe="official")
    default_form = LanguageModel(8192, 64, 64, mixer="h3", recipe="official",
                                 mixer_kwargs={"train_B": False, "shift_init": "normal", "discretization": "zoh"})
    assert all(getattr(b.mixer, k) == v for b in official_form.blocks for k, v in H3_OFFICIAL.items())
    assert official_form.num_parameters() == 587_136
    assert default_form.num_parameters() == 574_848  # the form of the records trained before


def test_h3_official_shift_init_is_kaiming_uniform():
    torch.manual_seed(0)
    m = H3(256, 64, d_state=64, shift_init="official")
    C = m.shift_C.detach()
    assert float(C.abs().max()) <= 1 / 8 and float(C.abs().max()) > 0.99 / 8  # U(-1/√m, 1/√m), m = 64
    assert abs(float(C.std()) - 1 / math.sqrt(3 * 64)) < 0.002  # 0.072
    assert abs(float(H3(256, 64, d_state=64).shift_C.detach().std()) - 1 / 8) < 0.003  # the default N(0, 1/m)


def test_h3_trained_B_shift_kernel_is_the_correlation_of_B_and_C():
    """K_shift[l] = Σ_j B[j] C[j + l] (Ā^l B is B moved down l places), written out by hand; e_1 at init."""
    torch.manual_seed(1)
    m = H3(3, 8, d_state=4, train_B=True).double()
    assert torch.allclose(m.shift_kernel(), m.shift_C, atol=1e-15)  # B = e_1 at init
    with torch.no_grad():
        m.shift_B.copy_(torch.randn(4, 3))
    B, C = m.shift_B.detach(), m.shift_C.detach()
    want = torch.zeros(4, 3, dtype=torch.float64)
    for l in range(4):
        for j in range(4 - l):
            want[l] += B[j] * C[j + l]
    assert torch.allclose(m.shift_kernel(), want, atol=1e-14)


def test_h3_bilinear_kernel_from_its_definition():
    """K[l, h] = 2 Re Σ_n C_n B̄_n Ā_n^l with Ā = (1 + ΔA/2)/(1 - ΔA/2), B̄ = Δ B/(1 - ΔA/2), computed here in
    complex arithmetic from the parameters (the layer builds its powers in real arithmetic from log Ā)."""
    torch.manual_seed(3)
    m = H3(4, 12, d_state=6, train_B=True, discretization="bilinear").double()
    with torch.no_grad():
        m.B.copy_(torch.randn_like(m.B))
        m.log_dt.fill_(math.log(0.3))
    A = torch.complex(-torch.exp(m.log_A_real), m.A_imag).detach()
    dt = torch.exp(m.log_dt).detach()[:, None]
    A_bar = (1 + dt * A / 2) / (1 - dt * A / 2)
    B_bar = dt * torch.view_as_complex(m.B.detach()) / (1 - dt * A / 2)
    CB = torch.view_as_complex(m.C.detach()) * B_bar
    l = torch.arange(12, dtype=torch.float64)
    want = 2 * (CB[:, :, None] * A_bar[:, :, None] ** l).sum(1).real.T  # (n, H)
    assert torch.allclose(m.diag_kernel(12), want, atol=1e-12)
    zoh = H3(4, 12, d_state=6).double()
    zoh.load_state_dict({k: v for k, v in m.state_dict().items() if k not in ("B", "shift_B")})
    assert not torch.allclose(zoh.diag_kernel(12), want, atol=1e-6)  # the two discretisations do differ


@pytest.mark.parametrize("n", [9, 70])
def test_h3_official_form_forward_step_and_reference_agree(n):
    """Forward (Toeplitz products at n <= 64, FFTs beyond) against the recurrences and the token-by-token step,
    with B trained and every parameter moved off its init, gradients included (float64)."""
    from mqar_theory.mixers.base import run_recurrent

    torch.manual_seed(n)
    m = H3(4, 70, d_state=70, head_dim=2, **H3_OFFICIAL).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name not in ("log_dt", "log_A_real", "A_imag"):
                p.copy_(0.5 * torch.randn_like(p))
    u = torch.randn(2, n, 4, dtype=torch.float64, requires_grad=True)
    y, ref = m(u), m.forward_reference(u)
    scale = float(ref.detach().abs().max())
    assert torch.allclose(y, ref, atol=1e-10 * scale)
    assert torch.allclose(run_recurrent(m, u)[0], ref, atol=1e-10 * scale)
    g = torch.randn_like(y)
    params = [u, m.shift_B, m.B, m.shift_C]
    for a, b in zip(torch.autograd.grad((y * g).sum(), params), torch.autograd.grad((ref * g).sum(), params),
                    strict=True):
        assert torch.allclose(a, b, atol=1e-10 * float(b.abs().max()))


def test_h3_official_form_flops_match_the_count():
    from mqar_theory.flops import count_flops

    m = H3(8, 20, d_state=20, head_dim=2, train_B=True).double()
    u = torch.randn(1, 20, 8, dtype=torch.float64)
    assert m.flops_per_token(20) == pytest.approx(count_flops(m, u) / 20, rel=1e-9)


@pytest.mark.parametrize("kw, name", [({"train_B": 1}, "train_B"), ({"shift_init": "kaiming"}, "shift_init"),
                                      ({"discretization": "euler"}, "discretization")])
def test_h3_official_options_reject_bad_values(kw, name):
    with pytest.raises(ValueError, match=name):
        H3(4, 8, **kw)


def test_official_hyena_positional_features_trainable_at_frequency_1e4():
    m = official("hyena", d=8, N=4).blocks[0].mixer
    assert isinstance(m, Hyena) and isinstance(m.z, nn.Parameter) and m.z.requires_grad
    assert torch.allclose(m.z[1], torch.tensor([1 / 3, math.cos(1e-4 * math.pi / 2), -math.sin(1e-4 * math.pi / 2)]))
    clean = Hyena(8, 4)
    assert not isinstance(clean.z, nn.Parameter)
    assert m.num_parameters() == clean.num_parameters() + 3 * 4


def test_official_rwkv_init_depends_on_the_layer():
    """RWKV-4 with n_layer = 12, layer 1 of d = 4: r0 = 1/11, r1 = 11/12."""
    m = RWKV(4, 8, layer_idx=1, n_layer=12)
    r0, r1 = 1 / 11, 11 / 12
    c = [0, 1, 2, 3]
    assert torch.allclose(m.time_decay, torch.tensor([-5 + 8 * (x / 3) ** (0.7 + 1.3 * r0) for x in c]))
    assert torch.allclose(m.time_mix_k, torch.tensor([(x / 4) ** r1 for x in c]))
    assert torch.allclose(m.time_mix_v, torch.tensor([(x / 4) ** r1 + 0.3 * r0 for x in c]))
    assert torch.allclose(m.time_mix_r, torch.tensor([(x / 4) ** (0.5 * r1) for x in c]))
    model = official("rwkv", d=64, N=8)
    assert [b.mixer.layer_idx for b in model.blocks] == [0, 1] and model.blocks[1].mixer.n_layer == 12


def test_official_rwkv_linear_layers_keep_pytorch_default_init():
    """The official RWKVTimeMixer is a ScriptModule: _init_weights misses its Linears, U(±1/√d) stays."""
    d = 64
    for block in official("rwkv", d=d, N=8, init_std=0.02).blocks:
        for lin in (block.mixer.key, block.mixer.value, block.mixer.receptance, block.mixer.out_proj):
            w = lin.weight.detach()
            assert float(w.abs().max()) <= 1 / math.sqrt(d) and float(w.abs().max()) > 0.9 / math.sqrt(d)
    clean = LanguageModel(16, d, 8, mixer="rwkv", init_std=0.02)
    assert float(clean.blocks[0].mixer.key.weight.detach().std()) < 0.03


def test_official_mamba_init():
    d, n_layers = 32, 2
    block = official("mamba", d=d, N=8, n_layers=n_layers, init_std=0.02).blocks[0].mixer
    assert float(block.in_proj.weight.detach().abs().max()) > 0.9 / math.sqrt(d)  # PyTorch default, not N(0, 0.02)
    assert float(block.in_proj.weight.detach().abs().max()) <= 1 / math.sqrt(d)
    bound = 1 / math.sqrt(block.d_inner) / math.sqrt(n_layers)  # kaiming_uniform(a=√5) / √n_layers
    w = block.out_proj.weight.detach()
    assert bound * 0.9 < float(w.abs().max()) <= bound


def test_official_output_projection_rescaling_follows_the_official_names():
    """out_proj rescaled (std / √(2 n_layers)) where the official module is named out_proj (attention, Hyena),
    not for H3 (output_linear) nor Based (proj_o)."""
    d, std = 64, 1.0
    ratio = {}
    for mixer in ("attention", "hyena", "h3", "based"):
        for recipe in ("clean", "official"):
            torch.manual_seed(0)
            m = LanguageModel(16, d, 8, mixer=mixer, init_std=std, recipe=recipe)
            ratio[mixer, recipe] = float(m.blocks[0].mixer.out_proj.weight.detach().std()) / std
    for mixer in ("attention", "hyena"):
        assert abs(ratio[mixer, "official"] - 0.5) < 0.05 and abs(ratio[mixer, "clean"] - 0.5) < 0.05
    for mixer in ("h3", "based"):
        assert abs(ratio[mixer, "official"] - 1.0) < 0.05 and abs(ratio[mixer, "clean"] - 0.5) < 0.05


def test_paper_spec_based_is_the_official_hybrid():
    spec = load_spec("figure2_paper")
    cfg = spec.models["based"]
    assert cfg["mixer"] == ["baseconv", "based"] and cfg["mixer_kwargs"] == [{"kernel_size": 3}, {"feature_dim": 8}]
    model = official(cfg["mixer"], d=8, N=16, mixer_kwargs=cfg["mixer_kwargs"])
    first, second = model.blocks[0].mixer, model.blocks[1].mixer
    assert isinstance(first, BaseConvOfficial) and first.kernel_size == 3
    assert isinstance(second, Based) and second.feature_dim == 8
    d = 8  # 3d² + 2fd + 15d non-embedding (the official count, f = 8)
    assert model.num_parameters(include_embeddings=False) == 3 * d * d + 2 * 8 * d + 15 * d
    assert all(run.config["recipe"] == "official" for run in spec.runs())


def test_official_mixer_keeps_spec_kwargs():
    assert official_mixer("attention", 8, 8, 0, dropout=0.0).dropout == 0.0
    assert official_mixer("rwkv", 8, 8, 1, layer_idx=0).layer_idx == 0


# --- the loop (zoology/train.py) -------------------------------------------------------------------------------
def _data(n=64, seed=0):
    cfg = dict(vocab_size=16, seq_len=8, num_kv_pairs=2, power_a=0.01)
    return make_mqar(MQARConfig(**cfg, num_examples=n, seed=seed)), make_mqar(MQARConfig(**cfg, num_examples=32,
                                                                                         seed=seed + 99))


def _model(recipe, **kw):
    return dict(vocab_size=16, d_model=8, seq_len=8, mixer="attention", recipe=recipe, dropout=0.0,
                mixer_kwargs={"dropout": 0.0}, **kw)


def test_official_loop_cosine_per_epoch():
    tr, te = _data()
    out = train(_model("official"), tr, te, lr=1e-2, epochs=4, batch_size=16, eval_every=1, target_accuracy=None,
                progress=False)
    lrs = [h["lr"] for h in out["history"]]  # one per step: 4 steps per epoch
    want = [1e-2 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4) for _ in range(4)]
    assert lrs == pytest.approx(want, rel=1e-12)
    clean = train(_model("clean"), tr, te, lr=1e-2, epochs=4, batch_size=16, eval_every=1, target_accuracy=None,
                  progress=False)
    assert len({h["lr"] for h in clean["history"][:4]}) == 4  # per step


def test_official_loop_keeps_the_batch_order():
    """With lr ~ 0 the weights do not move: a batch's loss repeats exactly when the same batch comes back."""
    tr, te = _data()
    kw = dict(lr=1e-30, epochs=2, batch_size=16, weight_decay=0.0, target_accuracy=None, progress=False)
    off = train(_model("official"), tr, te, **kw)["loss_history"]
    assert off[:4] == off[4:]
    clean = train(_model("clean"), tr, te, **kw)["loss_history"]
    assert clean[:4] != clean[4:]  # reshuffled every epoch


def test_official_loop_stops_strictly_above_the_target():
    tr, te = _data()
    kw = dict(lr=3e-3, batch_size=16, progress=False)
    first = train(_model("clean"), tr, te, epochs=1, target_accuracy=None, **kw)["test_accuracy"]
    official_first = train(_model("official"), tr, te, epochs=1, target_accuracy=None, **kw)["test_accuracy"]
    clean = train(_model("clean"), tr, te, epochs=3, target_accuracy=first, **kw)
    assert clean["stopped_early"] and clean["steps"] == 4  # >= stops at the first evaluation
    off = train(_model("official"), tr, te, epochs=3, target_accuracy=official_first, **kw)
    assert off["steps"] > 4 or not off["stopped_early"]  # == is not > : training goes on


def test_official_loop_rejects_warmup():
    tr, te = _data()
    with pytest.raises(ValueError, match="warmup_steps"):
        train(_model("official"), tr, te, warmup_steps=2, progress=False)
    with pytest.raises(ValueError, match="recipe"):
        LanguageModel(16, 8, 8, recipe="paper")


# --- the sweep store: records made before the field existed are still found ---------------------------------
def test_recipe_clean_is_not_hashed_and_old_records_are_matched():
    cfg = {"mixer": "attention", "d_model": 32, "seq_len": 32, "num_kv_pairs": 2, "lr": 3e-3}
    assert run_hash("attention", cfg) == run_hash("attention", {**cfg, "recipe": "clean"})
    assert run_hash("attention", cfg) != run_hash("attention", {**cfg, "recipe": "official"})
    # hybrids_cpu names no recipe (the clean default): adding `recipe: clean` to its spec finds the same records
    results = SWEEPS_DIR.parent / "results" / "hybrids_cpu"
    df = plan("hybrids_cpu", results)
    assert df["bracket"].isna().sum() == 114 and df["recorded"].all()  # every committed record is found, the
    # grid's 114 and the runs lr_bracket added beyond its edges
    import yaml

    raw = yaml.safe_load((SWEEPS_DIR / "hybrids_cpu.yaml").read_text())
    assert "recipe" not in raw["base"]
    raw["base"]["recipe"] = "clean"
    assert set(plan(parse_spec(raw), results)["hash"]) == set(df["hash"])


def test_spec_validates_recipe_and_model_sets():
    base = {"models": {"a": {"mixer": "attention"}, "b": {"mixer": "baseconv"}}, "axes": {"task": [[16, 2]],
            "d_model": [8]}}
    with pytest.raises(SpecError, match="recipe"):
        parse_spec({**base, "base": {"recipe": "paper"}})
    with pytest.raises(SpecError, match=r"model_sets\.s"):
        parse_spec({**base, "model_sets": {"s": ["a", "c"]}})
    with pytest.raises(SpecError, match="model_set"):
        parse_spec({**base, "model_sets": {"s": ["a"]}, "model_set": "t"})
    with pytest.raises(SpecError, match="model_set"):
        parse_spec({**base, "model_set": "s"})
    spec = parse_spec({**base, "model_sets": {"s": ["b"]}, "model_set": "s"})
    assert [r.model for r in spec.runs()] == ["b"]
    with pytest.raises(SpecError, match="mixer"):
        parse_spec({**base, "base": {"recipe": "official", "dropout": 0.1},
                    "models": {"m": {"mixer": "mamba"}}})
