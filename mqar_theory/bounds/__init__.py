"""The paper's resource bounds as sympy expressions, and their measurement on the constructions.

Every claim of Zoology (arXiv 2312.04927) and of Based (Arora et al. 2024, "Simple linear attention
language models balance the recall-throughput tradeoff", arXiv 2402.18668, §3.2) about what it costs
to solve MQAR is one ``Bound``: a sympy expression in the symbols ``N`` (sequence length), ``c``
(vocabulary size), ``t`` (distinct interaction distances), ``d`` (model width), ``p`` (p-hot
encoding), ``eps``, and for Thm 4.2 ``s`` (circuit size) and ``Delta`` (depth), tagged with its theorem
number, whether it is an upper or a lower bound, and which quantity it bounds (``params``, ``layers``,
``width`` or ``state_bits``). ``BOUNDS`` holds the paper's theorems; a construction's own facts are
``Bound``s in its own file. This package names no construction: each construction's file declares its
closed-form sizes, its ``Claim``s (bound, constant, proved or fitted, ``expect`` = holds | fails |
context), its grids and its plot style, and ``bounds`` reads them through ``constructions.CONSTRUCTIONS``.

``measure`` instantiates a construction over a grid and tabulates its sizes **observed from the computation**
(``sizes.measure_sizes`` runs the program under an operator trace, ``observe``: every number that enters
counts, one that is not among the construction's counted tensors is a ``MeasurementError``, layers are the
longest chain of sequence mixing, encode / decode are checked position-wise by the same dataflow; the
closed forms beside them), the bounds' values and their ratios, and its accuracy on fresh ``make_mqar``
instances (answers computed by the runner); ``check`` turns one column of that table into an assertion.
``verify`` measures every construction over a profile's grid (``CPU_GRID``, ``GPU_GRID``, ``SMOKE_GRID``, or
a user grid ``vocab_sizes`` × ``seq_lens``) and runs every claim, returning the tables and a tidy report.
Notebook 02 and ``python -m mqar_theory.cli check-bounds`` both call it.

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

``measure`` sets N and c from the grid point, d to the measured stream width (also in the hypotheses d < N
of Based Thm 3.4), t to the distinct interaction distances its instances need, measured from the tokens
(``distances.interaction_distances``, the one definition), and the symbol values a claim fixes (p = 1 for
a one-hot input).

Layout: ``bound`` (the symbols and the ``Bound`` record), ``registry`` (``BOUNDS``, Thm 4.2 included),
``claims`` (the ``Claim`` record, ``claims_of``, closed-form sizes), ``distances`` (Thm 4.5's t),
``sizes`` (measured sizes), ``observe`` (the operator trace),
``grids`` (profiles), ``measurement`` (``measure``), ``checking`` (``check``),
``verification`` (``verify``), ``tables`` (``constructions_markdown``). Import from this package: every
public name is re-exported here.
"""

from .bound import MEASURED as MEASURED
from .bound import POLYLOG_POWER, Bound, Delta, N, c, d, eps, log2, p, s, t
from .bound import QUANTITIES as QUANTITIES
from .bound import SYMBOLS as SYMBOLS
from .checking import check, growth_slopes  # noqa: E402,I001
from .claims import (
    EXPECTS,
    FIT_RANGE,
    Claim,
    all_claims,
    check_sizes,
    claim_const,
    claim_spec,
    claims_of,
    closed_form_sizes,
)
from .distances import interaction_distances, num_interaction_distances
from .grids import CPU_GRID, GPU_GRID, SMOKE_GRID, Profile, default_K, grid_points, profile, user_profile
from .measurement import GRID_KEYS as GRID_KEYS
from .measurement import closed_form_table, measure
from .observe import MeasurementError, observe_program
from .registry import BOUNDS, all_bounds, bounds_for, get_bound, register_bound
from .sizes import count_tensors, measure_sizes, position_wise_violations, stored_tensors, trace
from .tables import REFERENCE_SIZE, constructions_markdown, format_report  # noqa: I001
from .verification import REPORT_COLUMNS, ClaimFailed, register_construction, verify
from .verification import _verify_construction as _verify_construction  # used by tests/test_bounds.py

__all__ = [
    "N", "c", "t", "d", "p", "eps", "s", "Delta",
    "log2", "POLYLOG_POWER", "Bound", "BOUNDS", "all_bounds", "get_bound", "bounds_for", "register_bound",
    "interaction_distances", "num_interaction_distances",
    "measure", "check", "growth_slopes",
    "Profile", "CPU_GRID", "GPU_GRID", "SMOKE_GRID", "profile", "grid_points", "default_K", "user_profile",
    "Claim", "EXPECTS", "FIT_RANGE", "claims_of", "all_claims", "claim_spec", "claim_const",
    "closed_form_sizes", "check_sizes",
    "count_tensors", "stored_tensors", "measure_sizes", "trace", "position_wise_violations",
    "MeasurementError", "observe_program",
    "register_construction", "REPORT_COLUMNS", "ClaimFailed", "verify", "closed_form_table",
    "constructions_markdown", "format_report", "REFERENCE_SIZE",
]
