"""Shared checks for the chunked recurrent mixers (linear attention, DeltaNet, Gated DeltaNet, GLA, Mamba-2): three
paths that must agree in float64 (the chunked ``forward``, the token-loop ``forward_reference``, and ``step`` run
token by token), causality, a FLOP count that includes the triangular solve, and the MQAR learning run.

Imported by the test files of those mixers (not a test module itself)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from mqar_theory.flops import EXTRA_FORMULAS
from mqar_theory.mixers.base import run_recurrent
from mqar_theory.mixers.delta_net import unit_triangular_solve_flops
from mqar_theory.train import run_mqar

TOL = 1e-10  # relative, float64: the two-path bound


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return ((a - b).abs().max() / b.abs().max()).item()


def assert_rel(a: torch.Tensor, b: torch.Tensor, tol: float = TOL, name: str = ""):
    """rel_err(a, b) <= tol; where b is exactly zero (a gradient that cannot flow), a must be zero too."""
    if b.abs().max() == 0:
        assert a.abs().max() <= 1e-15, name
    else:
        assert rel_err(a, b) <= tol, (name, rel_err(a, b))


def perturb_(m, scale: float = 0.1, seed: int = 1):
    """Move every parameter off its structured init (ones, zeros), so no symmetry hides a wrong index."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return m


def three_paths(m, u: torch.Tensor):
    """(chunked forward, token-loop reference, step-by-step recurrence) outputs, each (B, n, d)."""
    return m(u), m.forward_reference(u), run_recurrent(m, u)[0]


def assert_three_paths_agree(m, u: torch.Tensor, tol: float = TOL):
    y, ref, rec = three_paths(m, u)
    assert y.shape == ref.shape == rec.shape == u.shape
    assert ref.abs().max() > 1e-3  # a non-trivial output
    assert rel_err(y, ref) <= tol, rel_err(y, ref)
    assert rel_err(rec, ref) <= tol, rel_err(rec, ref)


def assert_gradients_agree(m, u: torch.Tensor, tol: float = TOL):
    """d/du and d/dθ of <f(u), w> for the three paths agree (each tensor relative to its own max; a gradient that
    is exactly zero on the reference path, such as the decay's at n = 1 where it multiplies the zero state, must be
    zero on the other paths too; "zero" is <= 1e-12 of the largest gradient, the round-off of a gradient that is 0 in
    exact arithmetic, e.g. the query's at n = 1 under the normaliser, where y_1 = v_1 whatever q_1)."""
    u = u.detach().requires_grad_()
    w = torch.randn(u.shape, dtype=u.dtype, generator=torch.Generator().manual_seed(7))
    params = list(m.parameters())
    grads = [torch.autograd.grad((y * w).sum(), [u, *params]) for y in three_paths(m, u)]
    names = ["u"] + [n for n, _ in m.named_parameters()]
    zero = 1e-12 * max(g.abs().max() for g in grads[1])
    for name, fast, ref, rec in zip(names, *grads, strict=True):
        if ref.abs().max() <= zero:
            assert name != "u" and fast.abs().max() <= zero and rec.abs().max() <= zero, name
            continue
        assert rel_err(fast, ref) <= tol, (name, rel_err(fast, ref))
        assert rel_err(rec, ref) <= tol, (name, rel_err(rec, ref))


def assert_causal(m, n: int):
    u = torch.randn(1, n, m.d_model, dtype=torch.float64, requires_grad=True)
    y = m(u)
    for t in (0, n // 2, n - 2):
        (g,) = torch.autograd.grad(y[0, t].sum(), u, retain_graph=True)
        assert g[0, t + 1 :].abs().max() == 0  # nothing from the future
        assert g[0, : t + 1].abs().max() > 1e-6  # and the present/past do reach it


def count_flops_with_solve(m, u: torch.Tensor) -> int:
    """``mqar_theory.flops.count_flops`` plus a registry entry for the unit-triangular solve (forward
    substitution, ``unit_triangular_solve_flops``), which torch's FlopCounterMode does not count."""
    mapping = {**EXTRA_FORMULAS, torch.ops.aten.linalg_solve_triangular: unit_triangular_solve_flops}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        m(u)
    return counter.get_total_flops()


def learn_mqar(mixer, seed: int = 0, mixer_kwargs=None) -> dict:
    """tests/test_train.py's calibrated attention run at (c, N, K) = (64, 32, 4) (d = 64, 2 layers, init_std 0.1,
    lr 3e-3, batch 64, 4,000 fixed rows), evaluated every 16 steps on 256 test rows and stopped at 0.95 (the slow
    climb from 0.95 to 0.99 would double the test's time and show nothing more)."""
    return run_mqar(
        mixer, d_model=64, n_layers=2, vocab_size=64, seq_len=32, num_kv_pairs=4, num_train=4000, num_test=256,
        init_std=0.1, lr=3e-3, batch_size=64, epochs=8, target_accuracy=0.95, seed=seed, data_seed=0,
        device="cpu", progress=False, mixer_kwargs=mixer_kwargs, eval_every=16, train_eval_examples=256,
    )  # fmt: skip


def assert_learned(rec: dict, max_steps: int):
    assert rec["test_accuracy"] >= 0.9
    assert rec["train_accuracy"] >= 0.9
    assert rec["history"][0]["test_accuracy"] < 0.5  # it started on the plateau: this was learned
    assert rec["stopped_early"] and rec["steps"] <= max_steps
