"""LanguageModel: shapes, causality for every registered mixer, labelled-position head, parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mqar_theory.data import IGNORE_INDEX, make_mqar
from mqar_theory.mixers import MIXERS
from mqar_theory.model import BASECONV_FIG2_KWARGS, LanguageModel, LMOutput

V, D, N = 32, 16, 12


def build(mixer="attention", **kw):
    torch.manual_seed(0)
    size = (kw.pop("vocab_size", V), kw.pop("d_model", D), kw.pop("seq_len", N))
    return LanguageModel(*size, mixer=mixer, **kw)


def perturb(model: LanguageModel) -> LanguageModel:
    """Give every parameter a generic value: mixers start at special points (BaseConv b1 = 0, the linear
    bias attention's B = 0), where a leak from the future could hide."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_shapes_every_mixer(mixer):
    model = build(mixer)
    x = torch.randint(0, V, (3, N))
    assert model(x).shape == (3, N, V)
    assert model(x[:, :5]).shape == (3, 5, V)  # any length up to seq_len
    assert model.hidden(x).shape == (3, N, D)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
@pytest.mark.parametrize("mlp", [False, 2])
def test_whole_model_is_causal(mixer, mlp):
    """Changing the tokens after position i never changes the logits at positions <= i."""
    model = perturb(build(mixer, mlp=mlp, positions=True).double())
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, V, (4, N), generator=g)
    base = model(x)  # (4, N, V)
    for i in range(N - 1):
        x2 = x.clone()
        x2[:, i + 1 :] = torch.randint(0, V, (4, N - i - 1), generator=g)
        out = model(x2)
        torch.testing.assert_close(out[:, : i + 1], base[:, : i + 1], rtol=0, atol=1e-10)
        assert not torch.allclose(out[:, i + 1 :], base[:, i + 1 :])  # the later positions do see the change
        # a prefix alone gives the same logits as inside the full sequence
        torch.testing.assert_close(model(x[:, : i + 1]), base[:, : i + 1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_rows_are_independent(mixer):
    model = perturb(build(mixer).double())
    x = torch.randint(0, V, (3, N))
    full = model(x)
    for b in range(3):
        torch.testing.assert_close(model(x[b : b + 1])[0], full[b], rtol=0, atol=1e-10)


@pytest.mark.parametrize("mixer", sorted(MIXERS))
def test_logits_at_labels_equal_full_logits_gathered(mixer):
    model = perturb(build(mixer).double())
    data = make_mqar(vocab_size=V, seq_len=N, num_kv_pairs=2, num_examples=5, seed=3)
    out = model(data.inputs, data.labels)
    assert isinstance(out, LMOutput)
    loss, logits, targets = out  # unpacks like a tuple
    full = model(data.inputs)  # (B, N, V)
    mask = data.labels != IGNORE_INDEX
    assert logits.shape == (int(mask.sum()), V) == (5 * 2, V)
    torch.testing.assert_close(logits, full[mask], rtol=0, atol=1e-12)
    assert torch.equal(targets, data.labels[mask])
    ref = F.cross_entropy(full.reshape(-1, V), data.labels.reshape(-1), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(loss, ref, rtol=0, atol=1e-12)


def test_labelled_head_gradients_match_full_head():
    model = perturb(build("attention").double())
    data = make_mqar(vocab_size=V, seq_len=N, num_kv_pairs=3, num_examples=4, seed=4)
    model(data.inputs, data.labels).loss.backward()
    g1 = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    full = model(data.inputs)
    F.cross_entropy(full.reshape(-1, V), data.labels.reshape(-1)).backward()
    for a, p in zip(g1, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=0, atol=1e-12)


# --- parameter counts against formulas -------------------------------------------------------------

def ln(d):
    return 2 * d


def attention_params(d):  # Wqkv (d x 3d + 3d) and out_proj (d x d + d)
    return 4 * d * d + 4 * d


def mlp_params(d, m):
    return (d * m * d + m * d) + (m * d * d + d)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_param_count_attention(n_layers):
    d = D
    model = build("attention", n_layers=n_layers)
    embed = V * d + N * d  # tokens + learned positions; the head is tied
    body = n_layers * (ln(d) + attention_params(d)) + ln(d)
    assert model.num_parameters() == embed + body
    assert model.num_parameters(include_embeddings=False) == body


def test_param_count_attention_untied_with_mlp():
    d, m = D, 3
    model = build("attention", mlp=m, tie_weights=False)
    per_layer = ln(d) + attention_params(d) + ln(d) + mlp_params(d, m)
    assert model.num_parameters() == V * d + N * d + 2 * per_layer + ln(d) + V * d  # + untied head
    assert model.num_parameters(include_embeddings=False) == 2 * per_layer + ln(d) + V * d


def test_param_count_baseconv_fig2_layers():
    """Fig. 2's BaseConv [3, -1]: W (d^2), b1, b2 (N x d each), h (3 x d short, N x d long); no positions."""
    d = D
    model = build("baseconv", n_layers=2, mixer_kwargs=list(BASECONV_FIG2_KWARGS))
    short = d * d + 2 * N * d + 3 * d
    long = d * d + 2 * N * d + N * d
    assert model.position is None
    assert model.num_parameters() == V * d + (ln(d) + short) + (ln(d) + long) + ln(d)


def test_param_count_linear_bias_attention():
    d = D
    model = build("linear_bias_attention")
    assert model.num_parameters() == V * d + 2 * (ln(d) + 3 * d * d + N * N) + ln(d)


# --- configuration --------------------------------------------------------------------------------

def test_per_layer_kwargs_are_cycled():
    model = build("baseconv", n_layers=4, mixer_kwargs=list(BASECONV_FIG2_KWARGS))
    assert [b.mixer.kernel_size for b in model.blocks] == [3, None, 3, None]
    assert [b.mixer.h.shape[0] for b in model.blocks] == [3, N, 3, N]
    same = build("baseconv", n_layers=3, mixer_kwargs={"kernel_size": 5})
    assert [b.mixer.kernel_size for b in same.blocks] == [5, 5, 5]


def test_mixer_list_builds_a_hybrid():
    model = build(["baseconv", "attention"], n_layers=4)
    names = [type(b.mixer).__name__ for b in model.blocks]
    assert names == ["BaseConv", "Attention", "BaseConv", "Attention"]
    assert model.position is not None  # some layer uses positions


def test_positions_auto_and_forced():
    assert build("attention").position is not None
    assert build("baseconv").position is None
    assert build("baseconv", positions=True).position is not None
    assert build("attention", positions=False).position is None
    # positions change the output: the same token at two positions gets different hidden states
    model = perturb(build("attention").double())
    h = model.hidden(torch.full((1, 2), 5))
    assert not torch.allclose(h[0, 0], h[0, 1])


def test_tied_and_untied_head():
    tied = perturb(build("baseconv").double())
    x = torch.randint(0, V, (2, N))
    torch.testing.assert_close(tied(x), tied.hidden(x) @ tied.embedding.weight.T, rtol=0, atol=1e-12)
    untied = build("baseconv", tie_weights=False)
    assert untied.lm_head is not None and untied.lm_head.weight is not untied.embedding.weight


def test_init_std():
    model = build("attention", d_model=64, init_std=0.05, n_layers=2)
    w = model.blocks[0].mixer.Wqkv.weight
    assert abs(float(w.detach().std()) - 0.05) < 0.005
    assert float(model.blocks[0].mixer.Wqkv.bias.detach().abs().max()) == 0.0
    o = model.blocks[0].mixer.out_proj.weight  # residual projections are scaled by 1/sqrt(2 n_layers)
    assert abs(float(o.detach().std()) - 0.05 / 2) < 0.003
    assert abs(float(model.embedding.weight.detach().std()) - 0.05) < 0.005


def test_dropout_only_in_training_mode():
    model = build("attention", dropout=0.5)
    x = torch.randint(0, V, (2, N))
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_config_is_recorded():
    model = build("baseconv", n_layers=2, mixer_kwargs=list(BASECONV_FIG2_KWARGS), mlp=True)
    cfg = model.config
    assert cfg["mixer"] == "baseconv" and cfg["mlp"] == 4 and cfg["positions"] is False
    assert cfg["mixer_kwargs"] == [{"kernel_size": 3}, {"kernel_size": None}]
    rebuilt = LanguageModel(**cfg)
    assert rebuilt.num_parameters() == model.num_parameters()


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(vocab_size=1), "vocab_size"),
        (dict(vocab_size=8.0), "vocab_size"),
        (dict(d_model=0), "d_model"),
        (dict(seq_len=0), "seq_len"),
        (dict(n_layers=0), "n_layers"),
        (dict(mixer="nope"), "mixer"),
        (dict(mixer=["attention"] * 3), "mixer"),
        (dict(mixer=[]), "mixer"),
        (dict(mixer_kwargs="kernel_size=3"), "mixer_kwargs"),
        (dict(mixer_kwargs=[{}, {}, {}]), "mixer_kwargs"),
        (dict(mlp=-1), "mlp"),
        (dict(mlp=1.5), "mlp"),
        (dict(positions="yes"), "positions"),
        (dict(tie_weights=1), "tie_weights"),
        (dict(dropout=1.0), "dropout"),
        (dict(init_std=0), "init_std"),
    ],
)
def test_constructor_errors_name_the_parameter(kw, name):
    args = dict(vocab_size=V, d_model=D, seq_len=N, n_layers=2)
    args.update(kw)
    with pytest.raises(ValueError, match=name):
        LanguageModel(**args)


def test_mixer_kwargs_errors_come_from_the_mixer():
    with pytest.raises(ValueError, match="kernel_size"):
        build("baseconv", mixer_kwargs={"kernel_size": N + 1})


def test_forward_errors_name_the_argument():
    model = build("attention")
    x = torch.randint(0, V, (2, N))
    bad_inputs = [x.float(), x[0], x[:, :0], torch.randint(0, V, (2, N + 2)), x + V, x - V, x.tolist()]
    for bad in bad_inputs:
        with pytest.raises(ValueError, match="inputs"):
            model(bad)
    y = torch.full_like(x, IGNORE_INDEX)
    with pytest.raises(ValueError, match="labels"):
        model(x, y)  # nothing labelled
    y[:, 3] = 20
    for bad in [y[:, :5], y.float(), torch.where(y == 20, V, y), torch.where(y == 20, -2, y)]:
        with pytest.raises(ValueError, match="labels"):
            model(x, bad)
