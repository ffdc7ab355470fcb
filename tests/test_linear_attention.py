"""Linear attention (``mqar_theory.mixers.linear_attention``) with the identity and the Taylor feature maps, and
``Based`` built on it: chunked forward against the token loop and against ``step`` (float64, forward and gradients,
lengths 1, a non-multiple of the chunk, seq_len), the identity map against the formula written out, Based as the
Taylor case (bit for bit), causality, hand-derived parameter / state / FLOP counts (state measured from ``step``),
argument and input errors, and MQAR learning at (c, N, K) = (64, 32, 4)."""

import math

import pytest
import torch
from linear_recurrence_checks import (
    assert_causal,
    assert_gradients_agree,
    assert_learned,
    assert_three_paths_agree,
    learn_mqar,
    perturb_,
    rel_err,
)

from mqar_theory.flops import count_flops
from mqar_theory.mixers import MIXERS, Based, LinearAttention
from mqar_theory.mixers.base import measured_state_size

d, N = 6, 20

CONFIGS = [  # (kwargs, D: features per head, e': value columns per head)
    (dict(feature_map="identity"), 6, 6),
    (dict(feature_map="identity", num_heads=2, feature_dim=4), 4, 3),
    (dict(feature_map="taylor", feature_dim=3), 10, 7),  # D = 1 + 3 + 6, e' = d + 1 (normaliser)
    (dict(feature_map="taylor", feature_dim=2, num_heads=3), 6, 3),  # D = 1 + 2 + 3, e' = 2 + 1
    (dict(feature_map="taylor", feature_dim=2, num_heads=2, normalize=False), 6, 3),
]


def _mixer(chunk_size=4, seed=0, **kw):
    torch.manual_seed(seed)
    return perturb_(LinearAttention(d, N, chunk_size=chunk_size, **kw).double())


def test_registered():
    assert MIXERS["linear_attention"] is LinearAttention
    assert issubclass(MIXERS["based"], LinearAttention)


@pytest.mark.parametrize("kw,D,e", CONFIGS)
@pytest.mark.parametrize("chunk_size", [4, 64])
@pytest.mark.parametrize("n", [1, 7, N])
def test_chunked_reference_and_step_agree(kw, D, e, chunk_size, n):
    assert_three_paths_agree(_mixer(chunk_size, **kw), torch.randn(2, n, d, dtype=torch.float64))


@pytest.mark.parametrize("kw,D,e", CONFIGS[1:4])
@pytest.mark.parametrize("n", [1, 7, N])
def test_gradients_agree(kw, D, e, n):
    assert_gradients_agree(_mixer(4, **kw), torch.randn(2, n, d, dtype=torch.float64))


def test_identity_map_is_scaled_dot_product_without_softmax():
    """y = (tril(Q Kᵀ)/√f V) W_out per head, written out with a mask."""
    m = _mixer(4, feature_map="identity", num_heads=2, feature_dim=4)
    u = torch.randn(2, N, d, dtype=torch.float64)
    q, k = m.q_proj(u).view(2, N, 2, 4).transpose(1, 2), m.k_proj(u).view(2, N, 2, 4).transpose(1, 2)
    v = m.v_proj(u).view(2, N, 2, 3).transpose(1, 2)
    o = ((q @ k.transpose(-1, -2)) / math.sqrt(4)).tril() @ v  # (B, H, N, e)
    ref = m.out_proj(o.transpose(1, 2).reshape(2, N, d))
    assert rel_err(m(u), ref) <= 1e-12


@pytest.mark.parametrize("n", [1, 7, N])
def test_based_is_the_taylor_case(n):
    """Based = LinearAttention(taylor, one head, normalised): same weights give the same output bit for bit; Based's
    own reference (the Taylor similarity written out, no feature map) and its ``step`` agree with it."""
    based = perturb_(Based(d, N, feature_dim=3, chunk_size=4).double())
    la = LinearAttention(d, N, feature_map="taylor", feature_dim=3, num_heads=1, chunk_size=4).double()
    la.load_state_dict(based.state_dict())
    u = torch.randn(2, n, d, dtype=torch.float64)
    assert torch.equal(based(u), la(u))
    assert_three_paths_agree(based, u)
    assert based.state_size(n) == measured_state_size(based, n) == 10 * (d + 1)


def test_causal():
    for kw, _, _ in CONFIGS[1:4]:
        assert_causal(_mixer(4, **kw), N)


def test_gradient_reaches_every_parameter():
    m = _mixer(4, feature_map="taylor", feature_dim=2, num_heads=2)
    (m(torch.randn(2, N, d, dtype=torch.float64)) ** 2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


@pytest.mark.parametrize("kw,D,e", CONFIGS)
def test_parameter_count_and_measured_state(kw, D, e):
    m = LinearAttention(d, N, **kw).double()
    H, f = kw.get("num_heads", 1), kw.get("feature_dim", d // kw.get("num_heads", 1))
    assert m.num_parameters() == 2 * d * H * f + 2 * d * d  # W_q, W_k (d, H·f); W_v, W_out (d, d)
    for n in (1, 3, N):
        assert m.state_size(n) == H * D * e == measured_state_size(m, n)  # S' per head, whatever n


@pytest.mark.parametrize("kw,D,e", CONFIGS)
@pytest.mark.parametrize("n", [1, 5, 9, N])
def test_flops_formula_matches_count(kw, D, e, n):
    m = _mixer(4, **kw)
    u = torch.randn(1, n, d, dtype=torch.float64)
    assert m.flops_per_token(n) == pytest.approx(count_flops(m, u) / n, rel=1e-12)
    H, f = kw.get("num_heads", 1), kw.get("feature_dim", d // kw.get("num_heads", 1))
    T = min(4, n)
    C = -(-n // T)  # per chunk and head: T²D (similarities) + T²e' (with v') + 2·T·D·e' (chunk state, reading it)
    by_hand = 4 * d * H * f + 4 * d * d + H * C * (2 * T * T * (D + e) + 4 * T * D * e) / n
    assert m.flops_per_token(n) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("kw,arg", [
    (dict(feature_map="relu"), "feature_map"), (dict(num_heads=4), "num_heads"), (dict(num_heads=0), "num_heads"),
    (dict(feature_dim=0), "feature_dim"), (dict(feature_dim=2.5), "feature_dim"), (dict(normalize="yes"), "normalize"),
    (dict(feature_map="identity", normalize=True), "normalize"), (dict(chunk_size=0), "chunk_size"),
])  # fmt: skip
def test_bad_arguments_name_the_argument(kw, arg):
    with pytest.raises(ValueError, match=arg):
        LinearAttention(**{"d_model": d, "seq_len": N, **kw})


@pytest.mark.parametrize("u", [torch.zeros(2, d), torch.zeros(1, 3, d + 1), torch.zeros(1, N + 1, d),
                               torch.zeros(1, 3, d, dtype=torch.float32)])
def test_bad_input_names_u(u):
    with pytest.raises(ValueError, match="u"):
        _mixer()(u)


def test_learns_mqar():
    """Seed 0, the Based-figure hybrid [BaseConv (k = 3), linear attention (identity map)]: passes 0.95 in 272 steps
    when written (about 13 s). Linear attention alone does not learn at this budget (d = 64, 2 layers, 504 steps):
    identity map 0.27 test accuracy (the 1/K plateau), Taylor map (f = 8) 0.48."""
    rec = learn_mqar(["baseconv", "linear_attention"], seed=0, mixer_kwargs=[{"kernel_size": 3}, {}])
    assert_learned(rec, max_steps=5 * 63)
