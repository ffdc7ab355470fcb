"""DeltaNet (``mqar_theory.mixers.delta_net``): the chunked UT form against the token loop of the paper's recurrence
and against ``step`` (float64, forward and gradients, lengths 1, a non-multiple of the chunk, seq_len), the kernel
alone, causality, hand-derived parameter / state / FLOP counts (state measured from ``step``), argument and input
errors, and MQAR learning at (c, N, K) = (64, 32, 4)."""

import pytest
import torch
from linear_recurrence_checks import (
    TOL,
    assert_causal,
    assert_gradients_agree,
    assert_learned,
    assert_rel,
    assert_three_paths_agree,
    count_flops_with_solve,
    learn_mqar,
    perturb_,
    rel_err,
)

from mqar_theory.flops import count_flops
from mqar_theory.mixers import MIXERS, DeltaNet
from mqar_theory.mixers.base import measured_state_size
from mqar_theory.mixers.delta_net import delta_rule_chunked, delta_rule_recurrent

d, N = 6, 20


def _mixer(num_heads=1, chunk_size=4, conv_size=4, seed=0):
    torch.manual_seed(seed)
    m = DeltaNet(d, N, num_heads=num_heads, conv_size=conv_size, chunk_size=chunk_size).double()
    return perturb_(m)


def test_registered():
    assert MIXERS["delta_net"] is DeltaNet


@pytest.mark.parametrize("num_heads,chunk_size", [(1, 4), (2, 4), (3, 64), (2, 6)])
@pytest.mark.parametrize("n", [1, 7, N])
def test_chunked_reference_and_step_agree(num_heads, chunk_size, n):
    m = _mixer(num_heads, chunk_size)
    assert_three_paths_agree(m, torch.randn(2, n, d, dtype=torch.float64))


@pytest.mark.parametrize("n", [1, 7, N])
def test_gradients_agree(n):
    assert_gradients_agree(_mixer(2, 4), torch.randn(2, n, d, dtype=torch.float64))


@pytest.mark.parametrize("n,chunk_size", [(1, 4), (13, 4), (16, 4), (16, 64), (9, 2)])
def test_kernel_chunked_equals_recurrence(n, chunk_size):
    """Unit-norm keys, β spread over (0, 1), d_k != d_v: forward and gradients of q, k, v, β."""
    g = torch.Generator().manual_seed(n)
    B, H, dk, dv = 2, 3, 5, 4
    q = torch.randn(B, H, n, dk, dtype=torch.float64, generator=g)
    k = torch.nn.functional.normalize(torch.randn(B, H, n, dk, dtype=torch.float64, generator=g), dim=-1)
    v = torch.randn(B, H, n, dv, dtype=torch.float64, generator=g)
    beta = torch.rand(B, H, n, dtype=torch.float64, generator=g)
    args = [x.requires_grad_() for x in (q, k, v, beta)]
    w = torch.randn(B, H, n, dv, dtype=torch.float64, generator=g)
    fast, ref = delta_rule_chunked(*args, chunk_size=chunk_size), delta_rule_recurrent(*args)
    assert rel_err(fast, ref) <= TOL
    for gf, gr in zip(torch.autograd.grad((fast * w).sum(), args), torch.autograd.grad((ref * w).sum(), args),
                      strict=True):
        assert_rel(gf, gr)


def test_delta_rule_overwrites_a_key():
    """β = 1 with a repeated unit key: the second write replaces the first value (S k = v_2), the rule's point."""
    k = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    q = k.clone()  # read the key back
    v = torch.tensor([[1.0, 2.0], [-3.0, 5.0]], dtype=torch.float64)
    qs, ks = q.expand(1, 1, 2, 3), k.expand(1, 1, 2, 3)
    o = delta_rule_chunked(qs, ks, v[None, None], torch.ones(1, 1, 2, dtype=torch.float64))
    assert torch.allclose(o[0, 0], v, atol=1e-14)


def test_causal():
    assert_causal(_mixer(2, 4), N)


def test_gradient_reaches_every_parameter():
    m = _mixer(2, 4)
    (m(torch.randn(2, N, d, dtype=torch.float64)) ** 2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


@pytest.mark.parametrize("dd,H,K", [(6, 1, 4), (6, 2, 4), (8, 4, 2), (4, 1, 1)])
def test_parameter_count(dd, H, K):
    # W_q, W_k, W_v, W_out: 4d²; W_β: d·H; three (K, d) filters; RMSNorm weight over d/H
    assert DeltaNet(dd, 9, num_heads=H, conv_size=K).num_parameters() == 4 * dd * dd + dd * H + 3 * K * dd + dd // H


@pytest.mark.parametrize("H,K", [(1, 4), (2, 4), (3, 1), (2, 6)])
def test_state_size_is_measured(H, K):
    m = DeltaNet(d, N, num_heads=H, conv_size=K).double()
    for n in (1, 2, 3, 5, N):
        expected = H * (d // H) ** 2 + 3 * d * min(K - 1, n)  # S per head, and the K-1 last q, k, v inputs
        assert m.state_size(n) == expected == measured_state_size(m, n)
    assert m.state_size() == m.state_size(N)


@pytest.mark.parametrize("H,T,K", [(1, 4, 4), (2, 64, 4), (3, 6, 10)])
@pytest.mark.parametrize("n", [1, 5, 9, N])
def test_flops_formula_matches_count(H, T, K, n):
    m = _mixer(H, T, conv_size=K)
    u = torch.randn(1, n, d, dtype=torch.float64)
    counted = count_flops_with_solve(m, u) / n
    assert m.flops_per_token(n) == pytest.approx(counted, rel=1e-12)
    # by hand: projections 8d² + 2dH; per chunk and head 4T'²d_h + T'(T'-1)·2d_h + 4T'd_h² + 2T'²d_h, and 2T'd_h²
    # between chunks; convolutions by FFT (3 of them) only for K > 8 taps reaching n > 8 positions
    dh, Tn = d // H, min(T, n)
    C = -(-n // Tn)
    kernel = H * (C * (6 * Tn * Tn * dh + 2 * Tn * (Tn - 1) * dh + 4 * Tn * dh * dh) + (C - 1) * 2 * Tn * dh * dh)
    convs = count_flops(_conv_only(K), u) if min(K, n) > 8 else 0
    assert m.flops_per_token(n) == pytest.approx(8 * d * d + 2 * d * H + (kernel + convs) / n, rel=1e-12)
    # torch's own count misses exactly the solve: H·C·T'(T'-1)(d_k + d_v) FLOPs
    assert count_flops(m, u) == pytest.approx(count_flops_with_solve(m, u) - H * C * Tn * (Tn - 1) * 2 * dh)


def _conv_only(K):
    """Three ``causal_conv`` calls of K taps on d channels (what DeltaNet's short convolutions cost)."""
    from mqar_theory.mixers.conv import causal_conv

    class Convs(torch.nn.Module):
        def forward(self, u):
            h = torch.ones(K, d, dtype=u.dtype)
            return [causal_conv(u, h) for _ in range(3)]

    return Convs()


@pytest.mark.parametrize("kw,arg", [
    (dict(num_heads=4), "num_heads"), (dict(num_heads=0), "num_heads"), (dict(num_heads=1.5), "num_heads"),
    (dict(conv_size=0), "conv_size"), (dict(chunk_size=0), "chunk_size"), (dict(chunk_size=2.0), "chunk_size"),
    (dict(d_model=0), "d_model"), (dict(seq_len=0), "seq_len"),
])  # fmt: skip
def test_bad_arguments_name_the_argument(kw, arg):
    with pytest.raises(ValueError, match=arg):
        DeltaNet(**{"d_model": d, "seq_len": N, **kw})


@pytest.mark.parametrize("u", [torch.zeros(2, d), torch.zeros(1, 3, d + 1), torch.zeros(1, N + 1, d),
                               torch.zeros(1, 3, d, dtype=torch.long), torch.zeros(1, 3, d, dtype=torch.float32)])
def test_bad_input_names_u(u):
    with pytest.raises(ValueError, match="u"):
        _mixer()(u)


def test_learns_mqar():
    """Seed 0: DeltaNet alone (d = 64, 2 layers) leaves the plateau and passes 0.95 in 112 steps when written
    (about 15 s on one idle core; the bound leaves room for other thread counts' round-off)."""
    assert_learned(learn_mqar("delta_net", seed=0), max_steps=3 * 63)
