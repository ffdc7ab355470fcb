"""The zoo of Figure 2 and beyond: every mixer against its naive reference (float64), causality, gradient
flow to every parameter, hand-derived parameter / state / FLOP formulas, argument errors, and a 2-layer
LanguageModel that learns with each mixer."""

import math

import pytest
import torch

from mqar_theory.flops import count_flops
from mqar_theory.mixers import MIXERS, get_mixer
from mqar_theory.model import LanguageModel

d, N = 6, 20  # tiny width and length: every test here runs in milliseconds


def _pow2(n):
    return 1 << (n - 1).bit_length()


def _fft_conv(n, taps, d):  # conv.causal_conv's FFT FLOPs, 0 for <= 8 taps (shifted adds)
    taps = min(taps, n)
    if taps <= 8:
        return 0.0
    m = _pow2(n + taps - 1)
    return 3 * d * 2.5 * m * math.log2(m)


# name -> (small kwargs, parameters(d, N), state size(d, N, n)), every formula derived by hand from the
# docstring equations, not read off the code.
SPECS = {
    "hyena": (
        dict(filter_order=8),
        # in/out proj 4d²+4d; short filter 3·3d + bias 3d; D d; FFN (3+1)·8 + 2(8²+8) + 8 (freq) + 8d
        lambda d, N: 4 * d * d + 4 * d + 12 * d + d + 4 * 8 + 2 * (64 + 8) + 8 + 8 * d,
        lambda d, N, n: 3 * d * min(2, n) + d * min(N - 1, n),  # k-1 and N-1 past inputs
    ),
    "h3": (
        dict(d_state=12),
        # q,k,v,out 4d²+4d; shift C m·d + D d; log_dt d, A re/im d·m, C d·m, D d
        lambda d, N: 4 * d * d + 4 * d + 12 * d + d + d + 12 * d + 12 * d + d,
        lambda d, N, n: d * min(11, n) + d * 12,  # m-1 past k, m/2 complex modes per channel
    ),
    "long_conv": (
        {},
        lambda d, N: 2 * d * d + 2 * d + N * d,  # two projections with bias, filter (N, d)
        lambda d, N, n: d * min(N - 1, n),  # the N-1 past projected inputs
    ),
    "rwkv": (
        dict(chunk_size=4),  # several chunks at N=20, and a ragged last one at n=7
        lambda d, N: 4 * d * d + 5 * d,  # W_k, W_v, W_r, W_out; μ_k, μ_v, μ_r, time_decay, time_first
        lambda d, N, n: 3 * d,
    ),
    "based": (
        dict(feature_dim=3, chunk_size=4),  # D = 1 + 3 + 6 = 10 features
        lambda d, N: 2 * 3 * d + 2 * d * d,  # W_q, W_k (d, f); W_v, W_out (d, d); no biases
        lambda d, N, n: 10 * (d + 1),
    ),
    "mamba": (
        dict(d_state=3),  # E = 2, k = 4, r = ceil(d/16) = 1
        # W_in 2·2d·d; conv 4·2d + 2d; W_x 2d(1+6); W_Δ 2d + b_Δ 2d; A_log 2d·3; D 2d; W_out 2d·d
        lambda d, N: 4 * d * d + 8 * d + 2 * d + 14 * d + 2 * d + 2 * d + 6 * d + 2 * d + 2 * d * d,
        lambda d, N, n: 2 * d * 3 + 2 * d * min(3, n),  # h, and k-1 past conv inputs
    ),
    "sliding_window": (
        dict(window=5, num_heads=2),
        lambda d, N: 4 * d * d + 4 * d,  # Wqkv 3d²+3d, out_proj d²+d
        lambda d, N, n: 2 * min(4, n) * d,  # keys and values of the w-1 past tokens
    ),
    "attention": (
        {},
        lambda d, N: 4 * d * d + 4 * d,
        lambda d, N, n: 2 * n * d,
    ),
    "baseconv": (
        {},  # long filter: W (d, d), b1, b2, h (N, d)
        lambda d, N: d * d + 3 * N * d,
        lambda d, N, n: min(N - 1, n) * d,  # the N-1 past inputs
    ),
}
NAMES = list(SPECS)


def _flops(name, d, N, n, kw):
    """Hand-derived forward FLOPs per token (``mqar_theory.flops`` convention)."""
    if name == "hyena":
        o = kw["filter_order"]
        return 8 * d * d + 2 * (3 * o + 2 * o * o + o * d) + _fft_conv(n, n, d) / n
    if name == "h3":  # head_dim 1: H = d heads of one row each; dense Toeplitz products up to n = 64, FFTs beyond
        m = kw["d_state"]
        conv = 2 * d * n * n * 2 if n <= 64 else _fft_conv(n, m, d) + _fft_conv(n, n, d)
        return 8 * d * d + 2 * d * m + conv / n
    if name == "long_conv":
        return 4 * d * d + _fft_conv(n, n, d) / n
    if name == "rwkv":
        return 8 * d * d
    if name == "based":
        f, D, T = 3, 10, min(4, n)
        C = -(-n // T)
        return 4 * d * f + 4 * d * d + (2 * C * T * T * (D + d + 1) + 4 * C * T * D * (d + 1)) / n
    if name == "mamba":
        Ed, r, m = 2 * d, 1, 3
        return 2 * d * 2 * Ed + 2 * Ed * (r + 2 * m) + 2 * r * Ed + 2 * Ed * m + 2 * Ed * d
    if name == "sliding_window":
        b = min(5, n)  # block size; each of the ceil(n/b)*b padded queries scores and averages 2b keys
        return 8 * d * d + 8 * b * d * (-(-n // b) * b) / n
    if name == "attention":
        return 8 * d * d + 4 * n * d
    if name == "baseconv":
        return 2 * d * d + _fft_conv(n, n, d) / n
    raise KeyError(name)


def _mixer(name, dtype=torch.float64, seed=0, **extra):
    torch.manual_seed(seed)
    kw = {**SPECS[name][0], **extra}
    m = get_mixer(name, d, N, **kw).to(dtype)
    with torch.no_grad():  # move every parameter off its structured init, so nothing cancels by symmetry
        if name == "mamba":  # steps Δ ~ 0.5 and no skip, so the scan dominates the output
            m.dt_bias.fill_(0.5)
            m.D.zero_()
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def test_every_zoo_mixer_is_registered():
    for name in NAMES:
        assert name in MIXERS


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 7, N])
def test_fast_path_matches_naive_reference(name, n):
    m = _mixer(name)
    u = torch.randn(3, n, d, dtype=torch.float64)
    y, ref = m(u), m.forward_reference(u)
    assert y.shape == u.shape
    assert ref.abs().max() > 1e-3  # a non-trivial output
    assert (y - ref).abs().max() < 1e-9 * ref.abs().max()


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    m = _mixer(name)
    u = torch.randn(1, N, d, dtype=torch.float64, requires_grad=True)
    y = m(u)
    for t in (0, 7, N - 2):
        (g,) = torch.autograd.grad(y[0, t].sum(), u, retain_graph=True)
        assert g[0, t + 1 :].abs().max() < 1e-12  # nothing from the future (FFT round-off only)
        assert g[0, : t + 1].abs().max() > 1e-6  # and the present/past do reach it


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter(name):
    m = _mixer(name)
    u = torch.randn(2, N, d, dtype=torch.float64)
    (m(u) * torch.randn(2, N, d, dtype=torch.float64)).sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().max() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_parameter_and_state_formulas(name):
    kw, params, state = SPECS[name]
    for dd, NN in ((d, N), (4, 9)):
        m = get_mixer(name, dd, NN, **kw)
        assert m.num_parameters() == params(dd, NN)
        for n in (1, 3, NN):
            assert m.state_size(n) == state(dd, NN, n)
        assert m.state_size() == state(dd, NN, NN)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 5, 9, N])
def test_flops_formula_matches_count(name, n):
    m = _mixer(name)
    u = torch.randn(1, n, d, dtype=torch.float64)
    counted = count_flops(m, u) / n
    assert m.flops_per_token(n) == pytest.approx(counted, rel=1e-9)
    assert m.flops_per_token(n) == pytest.approx(_flops(name, d, N, n, SPECS[name][0]), rel=1e-9)


BAD_ARGS = [
    ("hyena", dict(filter_order=0), "filter_order"),
    ("hyena", dict(emb_dim=4), "emb_dim"),
    ("hyena", dict(short_kernel=9), "short_kernel"),
    ("h3", dict(d_state=3), "d_state"),
    ("h3", dict(d_state=1.5), "d_state"),
    ("rwkv", dict(chunk_size=0), "chunk_size"),
    ("based", dict(feature_dim=0), "feature_dim"),
    ("based", dict(chunk_size=-1), "chunk_size"),
    ("mamba", dict(d_state=0), "d_state"),
    ("mamba", dict(d_conv=9), "d_conv"),
    ("mamba", dict(expand=0), "expand"),
    ("mamba", dict(dt_rank=0), "dt_rank"),
    ("sliding_window", dict(window=0), "window"),
    ("sliding_window", dict(num_heads=4), "num_heads"),
    ("long_conv", dict(d_model=0), "d_model"),
]


@pytest.mark.parametrize("name,kw,arg", BAD_ARGS)
def test_bad_constructor_arguments_name_the_argument(name, kw, arg):
    kw = {"d_model": d, "seq_len": N, **kw}
    with pytest.raises(ValueError, match=arg):
        MIXERS[name](**kw)


def _previous_token_losses(model, steps: int = 8) -> list[float]:
    """Training losses of ``steps`` AdamW steps on "predict the previous token" (the mixer must look back)."""
    x = torch.randint(0, 16, (8, 12))
    labels = torch.roll(x, 1, dims=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = model(x, labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", NAMES)
def test_language_model_learns_with_each_mixer(name):
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=16, d_model=16, seq_len=12, n_layers=2, mixer=name,
                          mixer_kwargs=SPECS[name][0], init_std=0.1)
    losses = _previous_token_losses(model)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1


def test_rwkv_chunked_wkv_is_stable_where_the_plain_recurrence_overflows():
    """Keys of size ~300: e^k overflows float32 (max ~e^88) in the plain recurrence, not in the chunked
    max-subtracted form, which still agrees with the float64 recurrence."""
    m64 = _mixer("rwkv", chunk_size=8)
    u = torch.randn(2, N, d, dtype=torch.float64)
    with torch.no_grad():
        m64.key.weight.mul_(300 / m64._kvr(u)[0].abs().max())  # max |k| = 300
    ref = m64.forward_reference(u)
    assert torch.isfinite(ref).all()
    m32 = m64.to(torch.float32)
    y = m32(u.float())
    assert not torch.isfinite(m32.forward_reference(u.float())).all()
    assert torch.isfinite(y).all()
    assert (y.double() - ref).abs().max() < 1e-3 * max(1.0, ref.abs().max().item())


def test_mamba_selective_scan_backward_is_exact():
    """The hand-written backward of ``selective_scan``: finite differences (gradcheck), and every parameter
    gradient of ``Mamba.forward`` equals the autograd gradient of the sequential ``forward_reference``."""
    from mqar_theory.mixers.mamba import selective_scan

    g = torch.Generator().manual_seed(0)
    B, n, Ed, m = 2, 5, 3, 4
    args = (torch.rand(B, n, Ed, dtype=torch.float64, generator=g) + 0.1,
            -torch.rand(Ed, m, dtype=torch.float64, generator=g) - 0.1,
            *(torch.randn(B, n, k, dtype=torch.float64, generator=g) for k in (Ed, m, m)))
    assert torch.autograd.gradcheck(selective_scan, [a.requires_grad_() for a in args])
    mix = _mixer("mamba")
    u = torch.randn(2, N, d, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, N, d, dtype=torch.float64)
    grads = [torch.autograd.grad((f(u) * w).sum(), [u, *mix.parameters()]) for f in (mix, mix.forward_reference)]
    for fast, ref in zip(*grads, strict=True):
        assert (fast - ref).abs().max() <= 1e-9 * ref.abs().max()


@pytest.mark.parametrize("mixers", [["baseconv", "based"], ["baseconv", "based", "sliding_window"]])
def test_based_hybrids_build_and_learn(mixers):
    """Zoology's Fig. 2 "based" model [BaseConv k=3, Based f=8] and the Based architecture's three layer kinds."""
    torch.manual_seed(0)
    kw = [{"kernel_size": 3}, {"feature_dim": 8}, {"window": 4}][: len(mixers)]
    model = LanguageModel(vocab_size=16, d_model=16, seq_len=12, n_layers=len(mixers), mixer=mixers,
                          mixer_kwargs=kw, init_std=0.1)
    assert [type(b.mixer) for b in model.blocks] == [MIXERS[m] for m in mixers]
    losses = _previous_token_losses(model)
    assert losses[-1] < losses[0] - 0.1


@pytest.mark.parametrize("n", [64, 70])
def test_h3_flops_on_both_sides_of_the_row_crossover(n):
    """Zoology's H3 (head_dim 2, d_state = N): dense Toeplitz products at n <= 64, FFTs beyond, where the diagonal
    SSM transforms each head's p² rows and its one kernel (hand-derived here, counted from the forward)."""
    dd, p, NN = 8, 2, 70
    H = dd // p
    torch.manual_seed(0)
    m = get_mixer("h3", dd, NN, head_dim=p, d_state=NN).double()
    counted = count_flops(m, torch.randn(1, n, dd, dtype=torch.float64)) / n
    if n <= 64:
        conv = 2 * dd * n * n + 2 * p * p * H * n * n
    else:
        L = 1 << (2 * n - 2).bit_length()  # the power of two >= n + n - 1
        conv = (3 * dd + (2 * p * p + 1) * H) * 2.5 * L * math.log2(L)
    expected = 8 * dd * dd + 2 * H * NN + conv / n
    assert m.flops_per_token(n) == pytest.approx(counted, rel=1e-9)
    assert m.flops_per_token(n) == pytest.approx(expected, rel=1e-9)
