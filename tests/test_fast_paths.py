"""The fast training paths against their naive references, in float64, forward and gradients (<= 1e-10 relative).

* ``conv.causal_conv`` (hand-written backward; shifted multiply-adds up to ``SHORT_FILTER_TAPS`` taps, FFT beyond)
  against ``causal_conv_direct`` (the sum of shifted copies, autograd's backward), on both sides of the crossover;
* ``conv.causal_conv_rows`` (H3's channel-major rows: a Toeplitz product or FFTs with a hand-written backward)
  against ``causal_conv_rows_direct``, each method and the automatic choice on both sides of its crossovers;
* the mixers whose forward uses it or was reorganised (BaseConv, the official BaseConv, Hyena, H3 with its
  real-arithmetic SSM kernel, RWKV with detached stabilisers) against their ``forward_reference``, gradients with
  respect to the input and to every parameter;
* the rerun of a record at the commit it names (``sweep.audit``): it runs the package unpacked from that commit.
"""

from __future__ import annotations

import subprocess

import pytest
import torch

from mqar_theory.mixers import get_mixer
from mqar_theory.mixers.baseconv import BaseConvOfficial
from mqar_theory.mixers.conv import (
    ROWS_TOEPLITZ_MAX_N,
    SHORT_FILTER_TAPS,
    causal_conv,
    causal_conv_direct,
    causal_conv_rows,
    causal_conv_rows_direct,
)
from mqar_theory.plotting import REPO_ROOT
from mqar_theory.sweep import audit

pytestmark = pytest.mark.usefixtures("float64_default")

TOL = 1e-10


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both vanish)."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item()


def _compare(fast, slow, inputs: list[torch.Tensor], seed: int = 0):
    """Forward and the gradients of <y, g> for a random g, with respect to every tensor of ``inputs``."""
    torch.manual_seed(seed)
    y_fast, y_slow = fast(), slow()
    assert y_fast.shape == y_slow.shape
    g = torch.randn_like(y_slow)
    grads_fast = torch.autograd.grad((y_fast * g).sum(), inputs, allow_unused=True)
    grads_slow = torch.autograd.grad((y_slow * g).sum(), inputs, allow_unused=True)
    assert _rel(y_fast, y_slow) <= TOL, _rel(y_fast, y_slow)
    for i, (a, b) in enumerate(zip(grads_fast, grads_slow, strict=True)):
        assert (a is None) == (b is None), i
        if a is not None:
            assert _rel(a, b) <= TOL, (i, _rel(a, b))


# (N, L): filters of 1..SHORT_FILTER_TAPS taps (shifted adds) and longer (FFT), lengths on both sides of
# a power of two, a filter longer than the input (cropped to N taps: shifted adds when N <= 8), a 1-token input
CASES = [(12, 1), (12, 3), (12, SHORT_FILTER_TAPS), (12, SHORT_FILTER_TAPS + 1), (16, 16), (33, 64), (64, 64),
         (100, 17), (5, 64), (1, 64)]


@pytest.mark.parametrize("N,L", CASES)
def test_causal_conv_matches_the_sum_of_shifted_copies(N, L):
    torch.manual_seed(N * 100 + L)
    u = torch.randn(3, N, 5, requires_grad=True)
    h = torch.randn(L, 5, requires_grad=True)
    _compare(lambda: causal_conv(u, h), lambda: causal_conv_direct(u, h), [u, h])


@pytest.mark.parametrize("L", [3, 20])
def test_causal_conv_of_a_strided_view(L):
    """A non-contiguous input (a slice of a wider projection, as Hyena's split) gives the same result."""
    torch.manual_seed(L)
    wide = torch.randn(2, 30, 12, requires_grad=True)
    h = torch.randn(L, 4, requires_grad=True)
    _compare(lambda: causal_conv(wide[..., 4:8], h), lambda: causal_conv_direct(wide[..., 4:8], h), [wide, h])


def test_causal_conv_only_one_input_needs_a_gradient():
    torch.manual_seed(7)
    u, h = torch.randn(2, 20, 3), torch.randn(20, 3, requires_grad=True)
    _compare(lambda: causal_conv(u, h), lambda: causal_conv_direct(u, h), [h])
    u, h = torch.randn(2, 20, 3, requires_grad=True), torch.randn(3, 3)
    _compare(lambda: causal_conv(u, h), lambda: causal_conv_direct(u, h), [u])


# (N, L, R): filter shorter / longer than the input, 1 token, and lengths either side of the crossover of "auto"
ROW_CASES = [(12, 3, 2), (12, 20, 3), (1, 5, 2), (ROWS_TOEPLITZ_MAX_N, 9, 2),
             (ROWS_TOEPLITZ_MAX_N + 2, ROWS_TOEPLITZ_MAX_N + 2, 3), (ROWS_TOEPLITZ_MAX_N + 3, 40, 5)]


@pytest.mark.parametrize("method", ["toeplitz", "fft", "auto"])
@pytest.mark.parametrize("N,L,R", ROW_CASES)
def test_causal_conv_rows_matches_the_sum_of_shifted_copies(N, L, R, method):
    torch.manual_seed(N * 1000 + L * 10 + R)
    x = torch.randn(2, R, N, requires_grad=True)
    h = torch.randn(L, 2, requires_grad=True)
    _compare(lambda: causal_conv_rows(x, h, method=method), lambda: causal_conv_rows_direct(x, h), [x, h])


def test_causal_conv_rows_is_causal_conv_along_the_last_dimension():
    torch.manual_seed(3)
    x, h = torch.randn(3, 4, 30), torch.randn(30, 3)
    rows = causal_conv_rows(x, h)
    direct = causal_conv(x.permute(1, 2, 0), h).permute(2, 0, 1)  # (R, N, G) convolved per channel g
    assert _rel(rows, direct) <= TOL


def test_causal_conv_rows_rejects_bad_input():
    with pytest.raises(ValueError, match="x, h"):
        causal_conv_rows(torch.randn(2, 3, 8), torch.randn(4, 3))
    with pytest.raises(ValueError, match="method"):
        causal_conv_rows(torch.randn(2, 3, 8), torch.randn(4, 2), method="dense")


def test_causal_conv_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="u, h"):
        causal_conv(torch.randn(2, 8, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match="u, h"):
        causal_conv(torch.randn(8, 4), torch.randn(3, 4))


def _randomised(module: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """Parameters redrawn N(0, scale²) (H3's and RWKV's decays kept in their ranges), so nothing is 0 or 1."""
    torch.manual_seed(11)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in ("log_dt", "log_A_real", "time_decay"):
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.copy_(scale * torch.randn_like(p))
    return module


MIXERS = [
    ("baseconv", {}), ("baseconv", {"kernel_size": 3}),
    ("baseconv_official", {}), ("baseconv_official", {"kernel_size": 3}),
    ("hyena", {}), ("hyena", {"positional": "official"}),
    ("h3", {}), ("h3", {"head_dim": 2, "d_state": 12}), ("h3", {"d_state": 6}),
    ("rwkv", {}), ("rwkv", {"chunk_size": 1}), ("rwkv", {"chunk_size": 5, "layer_idx": 3}),
]  # fmt: skip


@pytest.mark.parametrize("name,kw", MIXERS, ids=[f"{n}-{kw}" for n, kw in MIXERS])
@pytest.mark.parametrize("seq_len,n", [(6, 6), (20, 20), (20, 13)])  # long filters: shifted adds; FFT; shorter input
def test_mixer_fast_forward_matches_its_reference(name, kw, seq_len, n):
    d = 4
    if name == "baseconv_official":
        layer = BaseConvOfficial(d, seq_len, **kw)
    else:
        layer = get_mixer(name, d, seq_len, **kw)
    _randomised(layer)
    torch.manual_seed(n)
    u = torch.randn(2, n, d, requires_grad=True)
    params = [p for p in layer.parameters() if p.requires_grad]
    _compare(lambda: layer(u), lambda: layer.forward_reference(u), [u, *params])


@pytest.mark.parametrize("n", [ROWS_TOEPLITZ_MAX_N + 4, 9])
def test_h3_channel_major_forward_on_both_sides_of_the_row_crossover(n):
    """Zoology's H3 (head_dim 2, d_state = N) at a length whose convolutions take the FFTs, and a shorter input
    of the same layer (Toeplitz products, filters cropped)."""
    N = ROWS_TOEPLITZ_MAX_N + 4
    layer = _randomised(get_mixer("h3", 4, N, head_dim=2, d_state=N))
    torch.manual_seed(n)
    u = torch.randn(2, n, 4, requires_grad=True)
    params = [p for p in layer.parameters() if p.requires_grad]
    _compare(lambda: layer(u), lambda: layer.forward_reference(u), [u, *params])


def test_rwkv_fast_path_stays_finite_where_the_reference_overflows():
    """The detached stabilisers still subtract every exponent's maximum: huge keys give finite values and
    gradients in float32 (the reference's plain recurrence overflows to inf/NaN)."""
    torch.manual_seed(5)
    layer = get_mixer("rwkv", 8, 16).float()
    with torch.no_grad():
        layer.key.weight.mul_(400.0)
    u = torch.randn(2, 16, 8, dtype=torch.float32, requires_grad=True)
    y = layer(u)
    (gu,) = torch.autograd.grad(y.sum(), u)
    assert torch.isfinite(y).all() and torch.isfinite(gu).all()
    assert not torch.isfinite(layer.forward_reference(u)).all()


def _head() -> str | None:
    out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


needs_git = pytest.mark.skipif(_head() is None, reason="no git repository: no commit to rerun at")

TINY_RUN = {"mixer": "attention", "n_layers": 1, "vocab_size": 32, "seq_len": 16, "num_kv_pairs": 2,
            "d_model": 16, "num_train": 64, "num_test": 32, "epochs": 1, "batch_size": 16, "init_std": 0.1,
            "lr": 3e-3, "eval_batch_size": 64}


@needs_git
def test_rerun_record_retrains_at_the_commit_the_record_names():
    """A record naming HEAD is retrained by HEAD's package, unpacked and run in a subprocess (which refuses to run
    a package imported from anywhere else), unless the working tree's package is HEAD's (then in process); a
    record naming no clean commit (here: dirty) is retrained in process; an unknown commit is an error."""
    from mqar_theory.sweep.execute import execute_run
    from mqar_theory.sweep.runs import Run

    head = _head()
    run = Run(model="attention", config=dict(TINY_RUN))
    record = execute_run(run, spec_name="tiny", device="cpu", threads=1, prov={"git_revision": head})
    assert record["status"] == "ok" and record["metrics"]["steps"] == 4
    result = audit.rerun_record(record)
    expected = "working tree" if audit._same_package(head, REPO_ROOT) else head
    assert result["rerun_revision"] == expected and result["rerun_status"] == "ok", audit.format_rerun(result)
    assert "metrics.steps" in result["compared"]
    assert not [m for m in result["mismatches"] if m["field"] in ("hash", "status", "metrics.steps")]
    dirty = audit.rerun_record(record | {"git_revision": f"{head}-dirty"})
    assert dirty["rerun_revision"] == "working tree" and dirty["reproduced"], audit.format_rerun(dirty)
    with pytest.raises(RuntimeError, match="git archive"):
        audit._execute_at("0" * 40, REPO_ROOT, run, "tiny", 1)
