"""The paper's resource bounds as sympy expressions, and their measurement on the constructions.

Every claim of Zoology (arXiv 2312.04927) and of Based (Arora et al. 2024, "Simple linear attention
language models balance the recall-throughput tradeoff", arXiv 2402.18668, §3.2) about what it costs
to solve MQAR is one ``Bound``: a sympy expression in the symbols ``N`` (sequence length), ``c``
(vocabulary size), ``t`` (distinct interaction distances), ``d`` (model width), ``p`` (p-hot
encoding) and ``eps``, tagged with its theorem number, whether it is an upper or a lower bound, and
which quantity it bounds (``params``, ``layers``, ``width`` or ``state_bits``). ``BOUNDS`` is the
registry; ``measure`` instantiates a construction over a grid and tabulates its sizes **measured from
the module** (``sizes.measure_sizes``: stored tensors counted, layers and width traced in a forward
pass; the docstrings' closed forms beside them), the bounds' values and their ratios, and its
accuracy on fresh ``make_mqar`` instances; ``check`` turns one column of that table into an
assertion. ``CLAIM_SPECS`` / ``CLAIMS`` list, per construction, the (bound, constant) pairs that must
hold, each constant proved or fitted (with its derivation or fit range); ``EXPECTED_FAILURES`` those
that must fail (and why); ``CONTEXT`` the lower bounds tabulated beside the measured depths. ``verify``
measures every construction over a profile's grid (``CPU_GRID``, ``GPU_GRID``, ``SMOKE_GRID``, or a
user grid ``vocab_sizes`` × ``seq_lens``) and runs them all, returning the tables and a tidy report.
Notebook 02 and ``python -m mqar_theory.cli check-bounds`` both call it. Another module adds its own
with ``register_bound``, ``register_claim`` and ``register_construction``.

How the asymptotic notation is read (our decisions):

* ``log`` without a base is ``log2`` everywhere (sizes in bits); inside O/Ω the base only moves the
  constant, which the claims do not state.
* An upper bound O(f) is *checked* by the ratio r = measured / f on a grid: r ≤ ``const`` at every
  point **and** r does not grow: the least-squares slope of log r against log N (at fixed c and the
  other grid variables) and against log c (at fixed N) is ≤ ``slope_tol`` (0.1 by default). The
  slope test is what distinguishes O(f) from "f times something that grows", which a single
  constant cannot do on a finite grid.
* Õ(f) = O(f · polylog of the input size). We compare against the concrete expression
  f · log2(N·c)², two log factors of the input size N·c (``POLYLOG_POWER``); Õ(1) layers are compared
  against log2(N·c)². A construction whose count is O(f · log N) thus shows a *decreasing* ratio,
  one that is f · N^α shows a slope ≈ α.
* A lower bound Ω(f) is checked by r = measured / f ≥ ``const`` at every grid point where the
  theorem's hypothesis holds (``Bound.condition``; rows where it fails are reported, not checked).
  Bounds stated with an explicit constant (Based Thm 3.2, Remark 3.3) are checked with const = 1.

Which bound concerns which construction is ``Bound.applies_to`` (construction name -> extra symbol
values, e.g. p = 1 for the one-hot input of ``baseconv_input_dependent``). ``measure`` sets N and c
from the grid point, d to the measured stream width (also in the hypotheses d < N of Based Thm 3.4),
and t to the distinct interaction distances its instances need, measured from the tokens. A lower bound lists a
construction only when it is of the model class the theorem speaks about (data-independent or
input-dependent BaseConv); whether its hypothesis on the encoding holds is decided per row.

Layout: ``bound`` (the symbols and the ``Bound`` record), ``registry`` (``BOUNDS``), ``claims``
(``CLAIM_SPECS``, ``CLAIMS``, ``EXPECTED_FAILURES``, ``CONTEXT``, closed-form sizes), ``sizes``
(measured sizes), ``grids`` (profiles), ``measurement`` (``measure``), ``checking`` (``check``),
``verification`` (``verify``). Import from this package:
every public name is re-exported here.
"""

from .bound import MEASURED as MEASURED
from .bound import POLYLOG_POWER, Bound, N, c, d, eps, log2, p, t
from .bound import QUANTITIES as QUANTITIES
from .bound import SYMBOLS as SYMBOLS
from .checking import check, growth_slopes
from .claims import (
    CLAIM_SPECS,
    CLAIMS,
    CONTEXT,
    EXPECTED_FAILURES,
    FIT_RANGE,
    Claim,
    check_sizes,
    claim_const,
    claim_spec,
    closed_form_sizes,
    register_claim,
)
from .grids import CPU_GRID, GPU_GRID, SMOKE_GRID, Profile, default_K, grid_points, profile, user_profile
from .measurement import GRID_KEYS as GRID_KEYS
from .measurement import closed_form_table, interaction_distances, measure
from .registry import BOUNDS, bounds_for, get_bound, h27_parameter_count, register_bound
from .sizes import count_tensors, measure_sizes, trace
from .verification import REPORT_COLUMNS, ClaimFailed, register_construction, verify
from .verification import _verify_construction as _verify_construction  # used by tests/test_bounds.py

__all__ = [
    "N", "c", "t", "d", "p", "eps",
    "log2", "POLYLOG_POWER", "Bound", "BOUNDS", "get_bound", "bounds_for",
    "h27_parameter_count", "interaction_distances",
    "measure", "check", "growth_slopes",
    "Profile", "CPU_GRID", "GPU_GRID", "SMOKE_GRID", "profile", "grid_points", "default_K",
    "CLAIMS", "EXPECTED_FAILURES", "ClaimFailed", "claim_const", "closed_form_sizes", "check_sizes",
    "Claim", "CLAIM_SPECS", "CONTEXT", "FIT_RANGE", "claim_spec", "register_claim", "register_bound",
    "user_profile", "count_tensors", "measure_sizes", "trace", "register_construction",
    "REPORT_COLUMNS", "verify", "closed_form_table",
]
