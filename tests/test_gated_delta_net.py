"""Gated DeltaNet (``mqar_theory.mixers.gated_delta_net``): the chunked form against the paper's eq. 10 as a token loop
and against ``step`` (float64, forward and gradients, lengths 1, a non-multiple of the chunk, seq_len), the kernel
against DeltaNet's at α = 1 (and the whole layer against DeltaNet when α = 1 and the output gate is off), a strong
decay that must not overflow, causality, hand-derived parameter / state / FLOP counts (state measured from
``step``), argument and input errors, and MQAR learning at (c, N, K) = (64, 32, 4)."""

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

from mqar_theory.mixers import MIXERS, DeltaNet, GatedDeltaNet
from mqar_theory.mixers.base import measured_state_size
from mqar_theory.mixers.delta_net import delta_rule_chunked, delta_rule_recurrent
from mqar_theory.mixers.gated_delta_net import gated_delta_rule_chunked, gated_delta_rule_recurrent

d, N = 6, 20


def _mixer(num_heads=1, chunk_size=4, use_gate=True, seed=0):
    """Perturbed weights, and A_log, dt_bias set so that α = e^g spreads over about (0.2, 0.9): a real decay."""
    torch.manual_seed(seed)
    m = perturb_(GatedDeltaNet(d, N, num_heads=num_heads, chunk_size=chunk_size, use_gate=use_gate).double())
    with torch.no_grad():
        m.A_log.copy_(torch.linspace(-0.5, 0.3, num_heads, dtype=torch.float64))
        m.dt_bias.fill_(0.0)
    return m


def _kernel_inputs(n, B=2, H=3, dk=5, dv=4, seed=0, g_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, n, dk, dtype=torch.float64, generator=g)
    k = torch.nn.functional.normalize(torch.randn(B, H, n, dk, dtype=torch.float64, generator=g), dim=-1)
    v = torch.randn(B, H, n, dv, dtype=torch.float64, generator=g)
    beta = torch.rand(B, H, n, dtype=torch.float64, generator=g)
    gate = -g_scale * torch.rand(B, H, n, dtype=torch.float64, generator=g)  # log α <= 0
    return q, k, v, beta, gate


def test_registered():
    assert MIXERS["gated_delta_net"] is GatedDeltaNet


def test_decay_is_real():
    a = _mixer(2)._decay(torch.randn(2, N, d, dtype=torch.float64)).exp()
    assert 0.05 < a.min() and a.max() < 0.99 and a.max() - a.min() > 0.3


@pytest.mark.parametrize("num_heads,chunk_size,use_gate", [(1, 4, True), (2, 4, True), (3, 64, False), (2, 6, True)])
@pytest.mark.parametrize("n", [1, 7, N])
def test_chunked_reference_and_step_agree(num_heads, chunk_size, use_gate, n):
    m = _mixer(num_heads, chunk_size, use_gate)
    assert_three_paths_agree(m, torch.randn(2, n, d, dtype=torch.float64))


@pytest.mark.parametrize("n", [1, 7, N])
def test_gradients_agree(n):
    assert_gradients_agree(_mixer(2, 4), torch.randn(2, n, d, dtype=torch.float64))


@pytest.mark.parametrize("n,chunk_size", [(1, 4), (13, 4), (16, 4), (16, 64), (9, 2)])
def test_kernel_chunked_equals_paper_recurrence(n, chunk_size):
    args = [x.requires_grad_() for x in _kernel_inputs(n, seed=n)]
    w = torch.randn(2, 3, n, 4, dtype=torch.float64)
    fast, ref = gated_delta_rule_chunked(*args, chunk_size=chunk_size), gated_delta_rule_recurrent(*args)
    assert rel_err(fast, ref) <= TOL
    for gf, gr in zip(torch.autograd.grad((fast * w).sum(), args), torch.autograd.grad((ref * w).sum(), args),
                      strict=True):
        assert_rel(gf, gr)


@pytest.mark.parametrize("n,chunk_size", [(1, 4), (13, 4), (16, 64)])
def test_kernel_at_alpha_one_is_delta_net(n, chunk_size):
    q, k, v, beta, _ = _kernel_inputs(n, seed=3)
    zero = torch.zeros_like(beta)
    ref = delta_rule_recurrent(q, k, v, beta)
    assert rel_err(gated_delta_rule_chunked(q, k, v, beta, zero, chunk_size), ref) <= TOL
    assert rel_err(gated_delta_rule_chunked(q, k, v, beta, zero, chunk_size), delta_rule_chunked(q, k, v, beta,
                                                                                                 chunk_size)) <= TOL


def test_layer_at_alpha_one_without_gate_is_delta_net():
    """exp(A_log) = 0 makes α = 1; with the output gate off, the layer is DeltaNet with the same weights."""
    gdn = _mixer(2, 4, use_gate=False)
    with torch.no_grad():
        gdn.A_log.fill_(-float("inf"))
    dn = DeltaNet(d, N, num_heads=2, chunk_size=4).double()
    missing = dn.load_state_dict({k: v for k, v in gdn.state_dict().items() if k in dn.state_dict()})
    assert not missing.missing_keys
    u = torch.randn(2, N, d, dtype=torch.float64)
    assert rel_err(gdn(u), dn(u)) <= TOL


def test_strong_decay_stays_finite_and_exact():
    """log α down to -30 per token (γ down to -600 in a chunk of 20): every exponent is <= 0, nothing overflows."""
    q, k, v, beta, gate = _kernel_inputs(N, g_scale=30.0)
    fast, ref = gated_delta_rule_chunked(q, k, v, beta, gate, chunk_size=20), gated_delta_rule_recurrent(q, k, v, beta,
                                                                                                        gate)
    assert torch.isfinite(fast).all()
    assert rel_err(fast, ref) <= TOL
    q32, k32, v32, b32, g32 = (x.float() for x in (q, k, v, beta, gate))
    assert torch.isfinite(gated_delta_rule_chunked(q32, k32, v32, b32, g32, chunk_size=20)).all()


def test_causal():
    assert_causal(_mixer(2, 4), N)


def test_gradient_reaches_every_parameter():
    m = _mixer(2, 4)
    (m(torch.randn(2, N, d, dtype=torch.float64)) ** 2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().max() > 0, name


@pytest.mark.parametrize("dd,H,K,gate", [(6, 1, 4, True), (6, 2, 4, True), (8, 4, 2, False), (4, 1, 1, True)])
def test_parameter_count(dd, H, K, gate):
    # DeltaNet's 4d² + dH + 3Kd + d/H; W_a d·H, A_log H, dt_bias H; W_g d² when gated
    expected = 4 * dd * dd + dd * H + 3 * K * dd + dd // H + dd * H + 2 * H + (dd * dd if gate else 0)
    assert GatedDeltaNet(dd, 9, num_heads=H, conv_size=K, use_gate=gate).num_parameters() == expected


@pytest.mark.parametrize("H,K", [(1, 4), (2, 4), (3, 1)])
def test_state_size_is_measured(H, K):
    m = GatedDeltaNet(d, N, num_heads=H, conv_size=K).double()
    for n in (1, 2, 3, 5, N):
        expected = H * (d // H) ** 2 + 3 * d * min(K - 1, n)  # the decay adds no state
        assert m.state_size(n) == expected == measured_state_size(m, n)


@pytest.mark.parametrize("H,T,gate", [(1, 4, True), (2, 64, False), (3, 6, True)])
@pytest.mark.parametrize("n", [1, 5, 9, N])
def test_flops_formula_matches_count(H, T, gate, n):
    m = _mixer(H, T, use_gate=gate)
    u = torch.randn(1, n, d, dtype=torch.float64)
    assert m.flops_per_token(n) == pytest.approx(count_flops_with_solve(m, u) / n, rel=1e-12)
    # by hand: DeltaNet's (see tests/test_delta_net.py) + 2dH (W_a) + 2d² (W_g)
    dh, Tn = d // H, min(T, n)
    C = -(-n // Tn)
    kernel = H * (C * (6 * Tn * Tn * dh + 2 * Tn * (Tn - 1) * dh + 4 * Tn * dh * dh) + (C - 1) * 2 * Tn * dh * dh)
    by_hand = 8 * d * d + 4 * d * H + (2 * d * d if gate else 0) + kernel / n
    assert m.flops_per_token(n) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("kw,arg", [
    (dict(num_heads=4), "num_heads"), (dict(conv_size=0), "conv_size"), (dict(chunk_size=0), "chunk_size"),
    (dict(use_gate=1), "use_gate"), (dict(use_gate=None), "use_gate"),
])  # fmt: skip
def test_bad_arguments_name_the_argument(kw, arg):
    with pytest.raises(ValueError, match=arg):
        GatedDeltaNet(**{"d_model": d, "seq_len": N, **kw})


@pytest.mark.parametrize("u", [torch.zeros(2, d), torch.zeros(1, 3, d + 1), torch.zeros(1, N + 1, d),
                               torch.zeros(1, 3, d, dtype=torch.float32)])
def test_bad_input_names_u(u):
    with pytest.raises(ValueError, match="u"):
        _mixer()(u)


def test_learns_mqar():
    """Seed 0, the Based-figure hybrid [BaseConv (k = 3), Gated DeltaNet]: passes 0.95 in 128 steps when written
    (about 13 s). Gated DeltaNet alone (d = 64, 2 layers, the reference's decay init) climbs too slowly for a test:
    0.91 test accuracy after the full 504 steps for seed 0."""
    rec = learn_mqar(["baseconv", "gated_delta_net"], seed=0, mixer_kwargs=[{"kernel_size": 3}, {}])
    assert_learned(rec, max_steps=3 * 63)
