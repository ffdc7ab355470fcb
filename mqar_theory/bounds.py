"""The paper's resource bounds as sympy expressions, and their measurement on the constructions.

Every claim of Zoology (arXiv 2312.04927) and of Based (arXiv 2402.18668, §3.2) about what it costs
to solve MQAR is one ``Bound``: a sympy expression in the symbols ``N`` (sequence length), ``c``
(vocabulary size), ``t`` (distinct interaction distances), ``d`` (model width), ``p`` (p-hot
encoding) and ``eps``, tagged with its theorem number, whether it is an upper or a lower bound, and
which quantity it bounds (``params``, ``layers``, ``width`` or ``state_bits``). ``BOUNDS`` is the
registry; ``measure`` instantiates a construction over a grid and tabulates its measured sizes, the
bounds' values and their ratios together with its accuracy on fresh ``make_mqar`` instances;
``check`` turns one column of that table into an assertion. ``CLAIMS`` lists, per construction, the
(bound, constant) pairs that must hold and ``EXPECTED_FAILURES`` those that must fail (and why);
``verify`` measures every construction over a profile's grid (``CPU_GRID``, ``GPU_GRID``,
``SMOKE_GRID``) and runs them all, returning the tables and a tidy report. Notebook 02 and
``python -m mqar_theory.cli check-bounds`` both call it.

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
from the grid point, d to the construction's ``width`` (the stream width, also in the hypotheses
d < N of Based Thm 3.4), and t to the construction's ``t`` attribute (the distance slots it is
built with) or else to the distinct interaction distances its instances used. A lower bound lists a
construction only when it is of the model class the theorem speaks about (data-independent or
input-dependent BaseConv); whether its hypothesis on the encoding holds is decided per row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sympy as sp
import torch

from .constructions import BUILDERS
from .constructions.base import expected_answers
from .constructions.baseconv_data_independent import data_independent_counts
from .constructions.baseconv_sorting import sorting_counts
from .data import IGNORE_INDEX, MQARConfig, make_mqar
from .utils import resolve_device

__all__ = [
    "N", "c", "t", "d", "p", "eps",
    "log2", "POLYLOG_POWER", "Bound", "BOUNDS", "get_bound", "bounds_for",
    "h27_parameter_count", "interaction_distances",
    "measure", "check", "growth_slopes",
    "Profile", "CPU_GRID", "GPU_GRID", "SMOKE_GRID", "profile", "grid_points", "default_K",
    "CLAIMS", "EXPECTED_FAILURES", "ClaimFailed", "claim_const", "closed_form_sizes", "check_sizes",
    "REPORT_COLUMNS", "verify", "closed_form_table",
]

# ----------------------------------------------------------------------------------------------
# symbols
# ----------------------------------------------------------------------------------------------
N, c, t, d, p = sp.symbols("N c t d p", positive=True)
eps = sp.Symbol("eps", positive=True)
SYMBOLS = {"N": N, "c": c, "t": t, "d": d, "p": p, "eps": eps}

QUANTITIES = ("params", "layers", "width", "state_bits")
MEASURED = {"params": "params", "layers": "layers", "width": "width"}  # quantity -> measure() column
POLYLOG_POWER = 2  # Õ(f) is compared against f * log2(N·c)**POLYLOG_POWER


def log2(x) -> sp.Expr:
    """log base 2 as a sympy expression (the reading of every unqualified log, see the module doc)."""
    return sp.log(x, 2)


# ----------------------------------------------------------------------------------------------
# the Bound record and the registry
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bound:
    """One claim: ``quantity`` of a model solving MQAR is ≤ (upper) or ≥ (lower) a multiple of ``expr``.

    ``statement`` is the claim as the paper words it (or, for a ``source`` that names no paper
    theorem, the fact our construction's docstring derives); ``expr`` is the comparison expression we
    evaluate (for Õ claims it includes the polylog factor, see the module doc); ``given`` are
    substitutions the statement itself fixes (e.g. d = log2 c in Based Thm 3.2); ``condition`` is
    the hypothesis as a sympy relation, checked per grid point; ``applies_to`` maps construction
    names to further symbol values; ``verified`` says whether the statement is confirmed verbatim
    (``shared/docs/paper.md`` tags), ``notes`` what is not.
    """

    id: str
    source: str
    kind: str  # "upper" | "lower"
    quantity: str  # one of QUANTITIES
    expr: sp.Expr
    statement: str
    verified: bool = True
    notes: str = ""
    given: Mapping = field(default_factory=dict)
    condition: sp.Basic | None = None
    applies_to: Mapping = field(default_factory=dict)
    exact_const: float | None = None  # the constant the statement itself gives, if any

    def __post_init__(self):
        if self.kind not in ("upper", "lower"):
            raise ValueError(f"kind={self.kind!r}: must be 'upper' or 'lower'")
        if self.quantity not in QUANTITIES:
            raise ValueError(f"quantity={self.quantity!r}: must be one of {QUANTITIES}")
        free = self.full_expr.free_symbols
        if not free <= set(SYMBOLS.values()):
            extra = free - set(SYMBOLS.values())
            raise ValueError(f"expr={self.expr}: symbols {extra} are not in {sorted(SYMBOLS)}")

    @property
    def full_expr(self) -> sp.Expr:
        """``expr`` with the statement's own substitutions (``given``) applied."""
        e = sp.sympify(self.expr)
        for _ in range(3):  # given values may refer to each other (eps in terms of d, N)
            e = e.subs(self.given)
        return e

    @property
    def display(self) -> str:
        """``full_expr`` as text with every log written base 2 (log(x)/log(2) shown as log(x))."""
        return sp.sstr(self.full_expr.subs(sp.log(2), 1))

    @property
    def symbols(self) -> tuple[str, ...]:
        """Names of the symbols a numeric value needs, sorted."""
        return tuple(sorted(s.name for s in self.full_expr.free_symbols))

    def evaluate(self, **values):
        """Numeric value; ``values`` maps symbol names to numbers or numpy arrays (lambdified)."""
        missing = [s for s in self.symbols if s not in values]
        if missing:
            raise ValueError(f"values: bound {self.id!r} needs {missing} (has {sorted(values)})")
        if all(np.ndim(v) == 0 for v in values.values()):  # exact: floor(log2(8)) is 3, not 2.9999
            exact = {SYMBOLS[s]: sp.nsimplify(values[s]) for s in self.symbols}
            return float(self.full_expr.subs(exact).evalf())
        f = _lambdified(self.id, self.full_expr, self.symbols)
        out = np.asarray(f(*(np.asarray(values[s], dtype=float) for s in self.symbols)), dtype=float)
        out = np.broadcast_to(out, np.broadcast_shapes(out.shape, *(np.shape(v) for v in values.values())))
        return float(out) if out.ndim == 0 else np.array(out)

    def holds(self, **values) -> bool:
        """Whether the hypothesis (``condition``) holds at these symbol values (True when it has none)."""
        if self.condition is None:
            return True
        cond = self.condition
        for _ in range(3):
            cond = cond.subs(self.given)
        need = sorted(s.name for s in cond.free_symbols)
        missing = [s for s in need if s not in values]
        if missing:
            raise ValueError(f"values: hypothesis of {self.id!r} needs {missing}")
        return bool(cond.subs({SYMBOLS[s]: sp.nsimplify(values[s]) for s in need}))

    def __str__(self) -> str:
        rel = "≤" if self.kind == "upper" else "≥"
        return f"{self.id} ({self.source}): {self.quantity} {rel} const·{self.display} (log = log2)"


_LAMBDIFY_CACHE: dict = {}


def _lambdified(key, expr, names):
    key = (key, sp.srepr(expr), names)
    if key not in _LAMBDIFY_CACHE:
        _LAMBDIFY_CACHE[key] = sp.lambdify([SYMBOLS[s] for s in names], expr, "numpy")
    return _LAMBDIFY_CACHE[key]


def h27_parameter_count() -> sp.Expr:
    """54c², derived from the layer shapes of Prop H.27: 2 layers, each W_Q, W_K, W_V of shape (3c, 3c).

    The N×N linear biases B are fixed positional tables, not counted (the paper's O(c²) excludes them).
    """
    layers = [{"W_Q": (3 * c, 3 * c), "W_K": (3 * c, 3 * c), "W_V": (3 * c, 3 * c)} for _ in range(2)]
    return sp.expand(sum(rows * cols for layer in layers for rows, cols in layer.values()))


_POLY = log2(N * c) ** POLYLOG_POWER
_SORT_SOURCE = "mqar_theory baseconv_sorting (bitonic sorting network; no paper theorem)"
_EPS_STAR = 1 - sp.log(log2(d)) / sp.log(log2(N))  # the largest eps that Based Thm 3.4 allows for (d, N)

BOUNDS: dict[str, Bound] = {
    b.id: b
    for b in [
        # --- Zoology, attention ------------------------------------------------------------------
        Bound("prop4.3-params", "Zoology Prop 4.3 (App. H Prop H.27)", "upper", "params", c**2,
              "attention (even without softmax) solves MQAR on u ∈ {0,1}^{N×3c} with O(c²) parameters",
              notes="H.27 stores 2 layers × (W_Q, W_K, W_V) of shape 3c×3c = 54c² (h27_parameter_count); the "
                    "N×N linear bias B is a fixed positional table, reported as 'fixed'.",
              applies_to={"attention_h27": {}}),
        Bound("prop4.3-layers", "Zoology Prop 4.3 (App. H Prop H.27)", "upper", "layers", sp.Integer(1),
              "O(1) layers (the H.27 proof uses two)", applies_to={"attention_h27": {}}),
        Bound("prop4.3-width", "Zoology Prop 4.3 / Remark H.26", "upper", "width", 3 * c,
              "input u ∈ {0,1}^{N×3c}: role-blocked one-hot, width 3c, independent of N",
              exact_const=1.0, applies_to={"attention_h27": {}}),
        # --- ours: softmax attention on binary codes (issue 3; no paper theorem) -----------------
        Bound("softmax-width", "mqar_theory (issue 3; no paper theorem)", "upper", "width", log2(c),
              "two layers of softmax attention on binary token codes solve MQAR with width O(log c), "
              "independent of N",
              notes="a project claim: the model dimension is a constant number of code blocks of log2 c bits",
              applies_to={"attention_softmax": {}}),
        Bound("softmax-params", "mqar_theory (issue 3; no paper theorem)", "upper", "params", log2(c) ** 2,
              "its projections are O(log c) × O(log c), so O(log² c) parameters, independent of N",
              applies_to={"attention_softmax": {}}),
        Bound("softmax-layers", "mqar_theory (issue 3; no paper theorem)", "upper", "layers", sp.Integer(1),
              "two layers: a previous-token step, then a lookup", applies_to={"attention_softmax": {}}),
        # --- Zoology, BaseConv ---------------------------------------------------------------------
        Bound("thm4.4-params", "Zoology Thm 4.4", "upper", "params", N * log2(c) * _POLY,
              "data-independent BaseConv solves MQAR on u ∈ {0,1}^{N×O(log c)} with Õ(N log c) parameters",
              notes=f"Õ read as N·log2(c)·log2(N·c)^{POLYLOG_POWER}; the paper builds it through its circuit "
                    "compiler (Thm 4.2, exact Õ form UNVERIFIED)",
              applies_to={"baseconv_data_independent": {}, "baseconv_sorting": {}}),
        Bound("thm4.4-layers", "Zoology Thm 4.4", "upper", "layers", _POLY,
              "Õ(1) layers", notes=f"Õ(1) read as log2(N·c)^{POLYLOG_POWER}; the sorting network's "
                                   "Θ(log² N · log log(Nc)) layers are polylog, but one log log factor above "
                                   "this concrete reading (see EXPECTED_FAILURES and sort-layers)",
              applies_to={"baseconv_data_independent": {}, "baseconv_sorting": {}}),
        # --- ours: the all-distances data-independent construction (its docstring derives them) ----
        Bound("di-params", "mqar_theory baseconv_data_independent (all-distances; no paper theorem)", "upper",
              "params", N**2 * log2(c),
              "one shift group of ⌈log2 c⌉ + 1 channels per distance: 2N²(b+1) + O(N log c log log c) stored "
              "numbers, O(N² log c) — a factor N/polylog above Thm 4.4's Õ(N log c)",
              applies_to={"baseconv_data_independent": {}}),
        Bound("di-width", "mqar_theory baseconv_data_independent (all-distances; no paper theorem)", "upper",
              "width", N * log2(c), "width N·(⌈log2 c⌉ + 1) = O(N log c): grows with N",
              applies_to={"baseconv_data_independent": {}}),
        Bound("di-layers", "mqar_theory baseconv_data_independent (all-distances; no paper theorem)", "upper",
              "layers", log2(log2(c)), "⌈log2 ⌈log2 c⌉⌉ + 4 = O(log log c) layers, independent of N "
              "(the order of Based Thm 3.2's lower bound)",
              applies_to={"baseconv_data_independent": {}}),
        # --- ours: the sorting-network data-independent construction (its docstring derives them) ---
        Bound("sort-width", _SORT_SOURCE, "upper", "width", log2(N * c),
              "width 8⌈log2 c⌉ + 6⌈log2 N⌉ + 5 = O(log c + log N): a stream of O(1) channels per token "
              "bit and per position bit",
              applies_to={"baseconv_sorting": {}}),
        Bound("sort-layers", _SORT_SOURCE, "upper", "layers", log2(N) ** 2 * log2(log2(N * c)),
              "S·(T1 + T2 + 8) + T_b + 2P + 3 layers, S = P(P+1)/2 bitonic stages of a ⌈log2(b + P)⌉-level "
              "comparison tree each (P = ⌈log2 N⌉, b = ⌈log2 c⌉): O(log² N · log log(Nc)), polylog = Õ(1)",
              applies_to={"baseconv_sorting": {}}),
        Bound("thm4.5-params", "Zoology Thm 4.5", "upper", "params", t * N * c,
              "BaseConv with input-dependent kernels solves MQAR on one-hot u ∈ {0,1}^{N×c} with at most t "
              "distinct interaction distances using O(t·N·c) parameters",
              notes="t is the number of distinct distances the instances need (measure's column 't' unless "
                    "the grid or the construction fixes it)",
              applies_to={"baseconv_input_dependent": {}}),
        Bound("thm4.5-layers", "Zoology Thm 4.5", "upper", "layers", sp.Integer(1), "O(1) layers",
              applies_to={"baseconv_input_dependent": {}}),
        # --- lower bounds --------------------------------------------------------------------------
        Bound("h6-state", "Zoology App. H.6", "lower", "state_bits", N,
              "the gated recurrence requires Ω(N) bits to solve MQAR for model dimension d ≤ N",
              condition=sp.Le(d, N), notes="a statement about recurrent state; no construction here is a "
                                          "fixed-state recurrence, so it is tabulated, not measured"),
        Bound("based-thm3.1-state", "Based Thm 3.1 (App. Thm F.12)", "lower", "state_bits", N,
              "any recurrent model depending causally on u ∈ {0,1}^{N×d} needs Ω(N) bits of state for MQAR",
              notes="state entries bounded (footnote); tabulated, not measured"),
        Bound("based-thm3.2-layers", "Based Thm 3.2", "lower", "layers", log2(2 * d),
              "u ∈ {0,1}^{3N×d}: a data-independent BaseConv needs log(2d) layers for d = log2(c) "
              "(natural binary codes)",
              given={d: log2(c)}, exact_const=1.0,
              notes="degree argument: L layers compute polynomials of degree ≤ 2^L, key equality of d-bit "
                    "codes has degree 2d. Holds for a construction whose input is the binary (or ±1) code "
                    "of the token; not for one that embeds tokens one-hot. Both data-independent "
                    "constructions read the natural binary code plus a key flag (a function of the token).",
              applies_to={"baseconv_data_independent": {}, "baseconv_sorting": {}}),
        Bound("based-rem3.3-layers", "Based Remark 3.3 (Def. F.22)", "lower", "layers", sp.floor(log2(2 * p)),
              "p-hot encodings, d = p·c^(1/p): input-dependent BaseConv needs ⌊log(2p)⌋ layers",
              exact_const=1.0, notes="one-hot is p = 1: at least one layer",
              applies_to={"baseconv_input_dependent": {p: 1}}),
        Bound("based-thm3.4-layers", "Based Thm 3.4 (App. Thm F.14)", "lower", "layers", eps * log2(log2(N)),
              "any encoding with log c ≤ d ≤ 2^((log N)^(1−ε)), c ≤ N, parameters of O(log N) bits: a "
              "data-independent BaseConv needs Ω(ε log log N) layers (for AR)",
              verified=False,
              given={eps: _EPS_STAR},
              condition=sp.And(sp.Le(log2(c), d), sp.Lt(d, N), sp.Le(c, N)),
              notes="the upper limit on d is UNVERIFIED (PDF extraction). We evaluate at the largest ε the "
                    "width allows, ε* = 1 − ln(log2 d)/ln(log2 N), so the bound reads log2 log2 N − "
                    "log2 log2 d; ε* > 0 iff d < N. The O(log N)-bit parameter hypothesis is not checked "
                    "(both constructions store small integers and 0/1 position bits).",
              applies_to={"baseconv_data_independent": {}, "baseconv_sorting": {}}),
        Bound("based-combined-layers", "Based §3.2 (Thm 3.2 + Thm 3.4; tight by Thm F.30)", "lower", "layers",
              sp.Max(log2(log2(c)), log2(log2(N))),
              "data-independent BaseConv needs Ω(max(log log c, log log N)) layers",
              condition=sp.And(sp.Lt(d, N), sp.Le(c, N)),
              notes="inherits the hypotheses of Thm 3.2 (binary input) and Thm 3.4 (d < N, c ≤ N); a model "
                    "whose width reaches N escapes it (baseconv_data_independent); baseconv_sorting's width "
                    "O(log Nc) falls below N once N ≥ 128 (c ≤ 1024), where it must (and does) meet it",
              applies_to={"baseconv_data_independent": {}, "baseconv_sorting": {}}),
    ]
}


def get_bound(bound) -> Bound:
    """A ``Bound`` from itself or its id."""
    if isinstance(bound, Bound):
        return bound
    if bound not in BOUNDS:
        raise ValueError(f"bound={bound!r}: unknown; known ids are {sorted(BOUNDS)}")
    return BOUNDS[bound]


def bounds_for(name: str) -> list[Bound]:
    """The registry's bounds that concern the construction called ``name``."""
    return [b for b in BOUNDS.values() if name in b.applies_to]


# ----------------------------------------------------------------------------------------------
# measurement
# ----------------------------------------------------------------------------------------------
GRID_KEYS = ("N", "c", "K")  # required; "power_a" optional; any other key is a builder constant
_DATA_KEYS = {"N", "c", "K", "power_a"}


def interaction_distances(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(B,) number t of distinct distances i − j over key-token positions i whose first earlier
    occurrence is j (the distances a Thm 4.5 model must cover)."""
    tok = torch.as_tensor(tokens).cpu()
    if tok.dim() == 1:
        tok = tok[None]
    out = []
    half = vocab_size // 2
    for row in tok.tolist():
        first: dict[int, int] = {}
        dist = set()
        for i, x in enumerate(row):
            if x in first:
                if 1 <= x < half:
                    dist.add(i - first[x])
            else:
                first[x] = i
        out.append(len(dist))
    return torch.tensor(out, dtype=torch.long)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _validate_grid(grid) -> list[dict]:
    if isinstance(grid, Mapping) or not isinstance(grid, Iterable):
        raise ValueError(f"grid: must be an iterable of dicts with keys {GRID_KEYS}, "
                         f"got {type(grid).__name__}")
    points = list(grid)
    if not points:
        raise ValueError("grid: is empty")
    for i, pt in enumerate(points):
        if not isinstance(pt, Mapping):
            raise ValueError(f"grid[{i}]: must be a dict with keys {GRID_KEYS}, got {type(pt).__name__}")
        for k in GRID_KEYS:
            if k not in pt:
                raise ValueError(f"grid[{i}]: missing key {k!r} (needs {GRID_KEYS})")
            if not _is_int(pt[k]):
                raise ValueError(f"grid[{i}][{k!r}]={pt[k]!r}: must be an integer")
        try:
            MQARConfig(vocab_size=int(pt["c"]), seq_len=int(pt["N"]), num_kv_pairs=int(pt["K"]),
                       power_a=pt.get("power_a", 0.01), num_examples=1)
        except ValueError as e:
            raise ValueError(f"grid[{i}]={dict(pt)}: not a valid MQAR setting: {e}") from None
    return [dict(pt) for pt in points]


def _symbol_values(point: dict, con, t_measured: int) -> dict:
    vals = {"N": point["N"], "c": point["c"], "d": con.width}
    for name in ("t", "p", "eps"):
        for src in (point, {k: getattr(con, k) for k in (name,) if hasattr(con, k)}):
            if name in src and src[name] is not None:
                vals[name] = src[name]
                break
    vals.setdefault("t", t_measured)
    return vals


def measure(builder, grid, num_instances: int = 32, device="auto", dtype=torch.float64, seed: int = 0,
            bounds=None, batch_size: int = 64, margins: bool | None = None,
            progress: bool = False) -> pd.DataFrame:
    """Build ``builder(c, N, **constants)`` at every grid point and measure it.

    grid: iterable of dicts with ``N`` (seq_len built for), ``c`` (vocab_size), ``K`` (key-value
    pairs of the instances), optionally ``power_a``; every other key is passed to the builder.
    Each point gets ``num_instances`` fresh ``make_mqar`` instances (seed ``seed + index``).

    Columns: construction, theorem, N, c, K, t (max distinct interaction distances over the
    instances), params, fixed, layers, width, accuracy (``predict`` == ``expected_answers`` at
    every position), label_accuracy (at the labelled positions, vs the labels), errors (wrong
    positions), margin_min (smallest ``margin`` over every position; computed when ``margins`` is
    True, by default only in float32; NaN when the construction has none), seconds (predict wall
    time), dtype, device; and for each bound b: ``bound:<b.id>`` (value of its expression),
    ``ratio:<b.id>`` (measured / value) and, if b has a hypothesis, ``holds:<b.id>``.
    ``bounds``: ids or ``Bound``s; default the registry's bounds for the construction's name
    (measurable quantities only).
    """
    points = _validate_grid(grid)
    if not _is_int(num_instances) or num_instances < 1:
        raise ValueError(f"num_instances={num_instances!r}: must be an integer >= 1")
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 1")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be an integer >= 0")
    if not callable(builder):
        raise ValueError(f"builder={builder!r}: must be callable as "
                         "builder(vocab_size, seq_len, **constants)")
    dev = resolve_device(device)
    want_margin = (dtype == torch.float32) if margins is None else bool(margins)
    explicit = None if bounds is None else [get_bound(b) for b in bounds]

    if progress:
        from tqdm.auto import tqdm

        points_iter = tqdm(points, desc=getattr(builder, "__name__", "measure"))
    else:
        points_iter = points
    rows = []
    for i, pt in enumerate(points_iter):
        consts = {k: v for k, v in pt.items() if k not in _DATA_KEYS}
        con = builder(pt["c"], pt["N"], **consts).to(device=dev, dtype=dtype)
        data = make_mqar(vocab_size=pt["c"], seq_len=pt["N"], num_kv_pairs=pt["K"],
                         num_examples=num_instances, power_a=pt.get("power_a", 0.01), seed=seed + i)
        expected = expected_answers(data.inputs, pt["c"])
        preds, margin_min, seconds = [], math.inf, 0.0
        with torch.no_grad():
            for s in range(0, num_instances, batch_size):
                x = data.inputs[s : s + batch_size].to(dev)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                preds.append(con.predict(x).cpu())
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                seconds += time.perf_counter() - t0
                if want_margin and not math.isnan(margin_min):
                    try:
                        margin_min = min(margin_min, float(con.margin(x).min()))
                    except NotImplementedError:
                        margin_min = math.nan
        pred = torch.cat(preds)
        labelled = data.labels != IGNORE_INDEX
        t_meas = int(interaction_distances(data.inputs, pt["c"]).max())
        row = {
            "construction": con.name, "theorem": con.theorem,
            "N": pt["N"], "c": pt["c"], "K": pt["K"], "t": t_meas,
            **{k: v for k, v in consts.items()},
            "params": con.num_parameters, "fixed": con.num_fixed,
            "layers": con.num_layers, "width": con.width,
            "accuracy": float((pred == expected).double().mean()),
            "label_accuracy": float((pred[labelled] == data.labels[labelled]).double().mean()),
            "errors": int((pred != expected).sum()),
            "margin_min": margin_min if want_margin else math.nan,
            "seconds": seconds, "instances": num_instances, "dtype": str(dtype).replace("torch.", ""),
            "device": str(dev),
        }
        chosen = explicit if explicit is not None else [
            b for b in bounds_for(con.name) if b.quantity in MEASURED]
        for b in chosen:
            row.update(_bound_columns(b, con.name, _symbol_values(pt, con, t_meas), row))
        rows.append(row)
    return pd.DataFrame(rows)


def _bound_columns(b: Bound, name: str, vals: dict, row: Mapping) -> dict:
    """``bound:``, ``ratio:`` and (with a hypothesis) ``holds:`` columns of bound ``b`` for the
    construction ``name`` at symbol values ``vals``, the measured sizes being in ``row``."""
    if b.quantity not in MEASURED:
        raise ValueError(f"bounds: {b.id!r} bounds {b.quantity!r}, which measure() does not measure")
    vals = dict(vals)
    extra = b.applies_to.get(name, {})
    vals.update({k.name if isinstance(k, sp.Symbol) else k: v for k, v in extra.items()})
    value = b.evaluate(**{s: vals[s] for s in b.symbols}) if set(b.symbols) <= set(vals) else math.nan
    measured = row[MEASURED[b.quantity]]
    out = {f"bound:{b.id}": value,
           f"ratio:{b.id}": math.nan if math.isnan(value) else measured / value if value > 0 else math.inf}
    if b.condition is not None:
        out[f"holds:{b.id}"] = b.holds(**vals)
    return out


def closed_form_table(name: str, grid) -> pd.DataFrame:
    """What ``measure`` tabulates about sizes and bounds, from the closed forms alone (nothing is
    built or run, so there are no accuracy columns): N, c, K, t (the slots for
    baseconv_input_dependent, else K), the grid's constants, params, layers, width and every
    registry bound's columns. It lets a grid too large for this machine (``GPU_GRID`` on a CPU) be
    checked for its sizes: ``check`` needs accuracy columns, which a caller adds knowingly."""
    rows = []
    for pt in _validate_grid(grid):
        consts = {k: v for k, v in pt.items() if k not in _DATA_KEYS}
        row = {"construction": name, "N": pt["N"], "c": pt["c"], "K": pt["K"],
               "t": consts.get("max_distances", pt["K"]), **consts, **closed_form_sizes(name, pt)}
        vals = {"N": pt["N"], "c": pt["c"], "d": row["width"], "t": row["t"]}
        for b in bounds_for(name):
            if b.quantity in MEASURED:
                row.update(_bound_columns(b, name, vals, row))
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# checking
# ----------------------------------------------------------------------------------------------
def growth_slopes(df: pd.DataFrame, column: str, over=("N", "c")) -> dict[str, float]:
    """Largest least-squares slope of log(df[column]) against log(var), for each var in ``over``,
    fitted within groups where the other variables of ``over`` are fixed (K is not held fixed: it
    follows N in the grids, and a bound that depends on it has t in its expression). Groups with
    < 2 distinct values of var are skipped; a var with no such group gives NaN."""
    out = {}
    for var in over:
        others = [v for v in over if v != var and v in df.columns]
        best = math.nan
        for _, g in df.groupby(others) if others else [(None, df)]:
            if g[var].nunique() < 2:
                continue
            x, y = np.log(g[var].to_numpy(float)), np.log(g[column].to_numpy(float))
            slope = float(np.polyfit(x, y, 1)[0])
            best = slope if math.isnan(best) else max(best, slope)
        out[var] = best
    return out


def _table(df: pd.DataFrame, cols) -> str:
    return df[[c_ for c_ in cols if c_ in df.columns]].to_string(index=False)


def check(df: pd.DataFrame, bound, const: float | None = None, *, slope_tol: float = 0.1,
          over=("N", "c")) -> dict:
    """Assert the claim of ``bound`` on a ``measure`` table; returns a summary dict.

    Always: accuracy and label_accuracy are 1.0 at every row. Upper bound: ratio ≤ const at every
    row and ``growth_slopes`` ≤ slope_tol. Lower bound: ratio ≥ const at every row where the
    hypothesis holds (AssertionError if it holds nowhere). ``const`` defaults to the constant the
    statement itself gives (``Bound.exact_const``, e.g. 1 for Based Thm 3.2). Raises AssertionError
    with a readable message, ValueError if the table lacks the bound's columns.
    """
    b = get_bound(bound)
    if const is None:
        if b.exact_const is None:
            raise ValueError(f"const=None: bound {b.id!r} states no constant, pass one")
        const = b.exact_const
    col = f"ratio:{b.id}"
    if not isinstance(df, pd.DataFrame) or col not in df.columns:
        raise ValueError(f"df: has no column {col!r}; measure the construction with bounds=[{b.id!r}]")
    if not (isinstance(const, (int, float)) and const > 0):
        raise ValueError(f"const={const!r}: must be a number > 0")
    keys = ["construction", "N", "c", "K", "t"]
    bad = df[(df["accuracy"] < 1.0) | (df["label_accuracy"] < 1.0)]
    if len(bad):
        raise AssertionError(f"{b.id}: the construction is not exact at {len(bad)} grid point(s):\n"
                             + _table(bad, keys + ["accuracy", "label_accuracy", "errors"]))
    hcol = f"holds:{b.id}"
    rows = df[df[hcol].astype(bool)] if hcol in df.columns else df
    if rows.empty:
        raise AssertionError(f"{b.id}: its hypothesis holds at no grid point:\n"
                             + _table(df, keys + ["width", hcol]))
    q = MEASURED[b.quantity]
    show = keys + [q, f"bound:{b.id}", col]
    summary = {"bound": b.id, "kind": b.kind, "const": const, "rows": len(rows),
               "min_ratio": float(rows[col].min()), "max_ratio": float(rows[col].max())}
    if b.kind == "upper":
        over_ = rows[rows[col] > const]
        if len(over_):
            raise AssertionError(f"{b.id}: {q} / ({b.display}) exceeds {const} at {len(over_)} "
                                 f"point(s) ({b.source}):\n" + _table(over_, show))
        slopes = growth_slopes(rows, col, over)
        summary["slopes"] = slopes
        grows = {k: round(v, 3) for k, v in slopes.items() if not math.isnan(v) and v > slope_tol}
        if grows:
            raise AssertionError(f"{b.id}: the ratio {q} / ({b.display}) grows (log-log slope "
                                 f"{grows} > {slope_tol}), so {q} is not O({b.display}):\n"
                                 + _table(rows, show))
    else:
        under = rows[rows[col] < const]
        if len(under):
            raise AssertionError(f"{b.id}: {q} / ({b.display}) is below {const} at {len(under)} "
                                 f"point(s) ({b.source}):\n" + _table(under, show))
    return summary


# ----------------------------------------------------------------------------------------------
# grids and profiles
# ----------------------------------------------------------------------------------------------
def default_K(N: int, c: int) -> int:
    """Key-value pairs of a grid point: the most Algorithm 1 allows, capped at 16: min(N//4, c/2 - 1, 16)."""
    return min(N // 4, c // 2 - 1, 16)


def grid_points(Ns, cs, K=None, **constants) -> list[dict]:
    """Every (N, c) pair as a grid point; K is ``default_K(N, c)``, a fixed int, or a callable ``K(N, c)``."""
    out = []
    for n_ in Ns:
        for c_ in cs:
            k = default_K(n_, c_) if K is None else (K(n_, c_) if callable(K) else K)
            out.append({"N": n_, "c": c_, "K": k, **constants})
    return out


@dataclass(frozen=True)
class Profile:
    """A grid per construction (N varied at c = ``fixed_c[name]``, then c varied at a fixed N), with
    the dtype and the number of random instances per point to run it with."""

    name: str
    dtype: torch.dtype
    num_instances: int
    grids: Mapping  # construction name -> list of grid points
    fixed_c: Mapping  # construction name -> the c of its N sweep
    notes: str = ""

    def n_sweep(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of a ``measure`` table of ``name`` that belong to its N sweep, sorted by N."""
        return df[df["c"] == self.fixed_c[name]].sort_values("N")


def _sweep(Ns, c_fixed, cs, N_fixed) -> list[dict]:
    """N varied at c = c_fixed, then c varied at N = N_fixed (no duplicate point)."""
    return grid_points(Ns, [c_fixed]) + grid_points([N_fixed], [x for x in cs if x != c_fixed])


def _with_slots(points) -> list[dict]:
    """baseconv_input_dependent is built with t = K distance slots, the most a make_mqar input with K
    pairs (filler 0) needs; its default, N - 1 slots, would make it O(N²c)."""
    return [dict(pt, max_distances=pt["K"]) for pt in points]


def _profile(name, dtype, num_instances, sweeps: dict, notes: str) -> Profile:
    grids = {k: (_with_slots(_sweep(*v)) if k == "baseconv_input_dependent" else _sweep(*v))
             for k, v in sweeps.items()}
    return Profile(name, dtype, num_instances, grids, {k: v[1] for k, v in sweeps.items()}, notes)


_N_CPU, _C_CPU = [16, 64, 256, 1024], [16, 64, 256, 1024]
CPU_GRID = _profile(
    "cpu", torch.float64, 16,
    {
        "attention_h27": (_N_CPU, 64, _C_CPU, 64),
        "attention_softmax": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_data_independent": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_sorting": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_input_dependent": (_N_CPU, 64, _C_CPU, 64),
    },
    "float64, N up to 1024 and c up to 1024 (N varied at c = 64, c varied at N = 64); the heaviest "
    "points are baseconv_data_independent at N = 1024 (width 7168) and baseconv_sorting at N = 1024 "
    "(906 layers), ~10 s each for 16 instances on 2 cores.",
)
GPU_GRID = _profile(
    "gpu", torch.float32, 8,
    {
        "attention_h27": ([64, 1024, 16384], 64, [64, 1024, 4096], 1024),
        "attention_softmax": ([64, 1024, 16384], 1024, [64, 1024, 65536], 1024),
        "baseconv_data_independent": ([64, 256, 1024, 2048], 1024, [64, 1024, 65536], 256),
        "baseconv_sorting": ([64, 1024, 16384], 1024, [64, 1024, 65536], 1024),
        "baseconv_input_dependent": ([64, 1024, 4096], 1024, [64, 1024, 65536], 1024),
    },
    "float32 with margins. attention_h27 stops at c = 4096 (54c² dense weights: 0.9e9 numbers); "
    "baseconv_data_independent at N = 2048 (O(N² log c) stored numbers) and "
    "baseconv_input_dependent at N = 4096 (a Python loop over examples and distances); baseconv_sorting "
    "goes to N = 16384 (1820 layers of width 169, O(N log N) stored numbers).",
)
SMOKE_GRID = _profile(
    "smoke", torch.float64, 4,
    {name: ([16, 32, 64, 128] if name == "baseconv_sorting" else [16, 32, 64], 16, [16, 32, 64], 16)
     for name in CPU_GRID.grids},
    "a few seconds per construction, for SMOKE runs and tests; baseconv_sorting also at N = 128, the "
    "smallest N above its width (79 at c = 16), so that Based Thm 3.4's hypothesis d < N holds somewhere",
)


def profile(device="auto") -> Profile:
    """``GPU_GRID`` when ``device`` resolves to CUDA, else ``CPU_GRID``."""
    return GPU_GRID if resolve_device(device).type == "cuda" else CPU_GRID


# ----------------------------------------------------------------------------------------------
# the claims per construction, and verify()
# ----------------------------------------------------------------------------------------------
CLAIMS: dict[str, list[tuple[str, float]]] = {
    # Prop 4.3: exactly 2·3·(3c)² = 54c² weights (h27_parameter_count), 2 layers, width 3c
    "attention_h27": [("prop4.3-params", 54), ("prop4.3-layers", 2), ("prop4.3-width", 1)],
    # width 4b + 2 ≤ 7·log2 c and 32b² + 24b + 4 ≤ 45·log2² c for c ≥ 4 (b = ⌈log2 c⌉ ≥ 2); 2 layers
    "attention_softmax": [("softmax-width", 7), ("softmax-params", 45), ("softmax-layers", 2)],
    # ⌈log2 b⌉ + 4 ≤ 5·log2 b layers (b ≥ 2), also Thm 4.4's Õ(1); width N(b+1) ≤ 1.5·N log2 c;
    # 2N²(b+1) + O(N log c log log c) ≤ 5·N² log2 c parameters; Based Thm 3.2 with its own constant 1
    "baseconv_data_independent": [("di-layers", 5), ("thm4.4-layers", 1), ("di-width", 1.5), ("di-params", 5),
                                  ("based-thm3.2-layers", 1)],
    # Thm 4.4's Õ(N log c) parameters (ratio ≤ 7.2 on every grid, falling in N and c); width 8b + 6P + 5
    # ≤ 8·log2(Nc); layers ≤ 4·log2² N·log2 log2(Nc); every Based lower bound whose hypothesis holds
    "baseconv_sorting": [("thm4.4-params", 8), ("sort-width", 8), ("sort-layers", 4),
                         ("based-thm3.2-layers", 1), ("based-thm3.4-layers", 1),
                         ("based-combined-layers", 1)],
    # built with t = K slots: 2tNc + N + 8c ≤ 3·tNc parameters, 4 layers; Remark 3.3 at p = 1 (one-hot)
    "baseconv_input_dependent": [("thm4.5-params", 3), ("thm4.5-layers", 4),
                                 ("based-rem3.3-layers", 1)],
}
"""construction -> [(bound id, constant)]: every claim ``verify`` asserts with ``check(df, bound, const)``.
The constants are derived in the constructions' docstrings (comments above); a lower bound whose
hypothesis holds at no point of a (restricted) grid is reported as vacuous, not failed."""

EXPECTED_FAILURES: dict[str, list[tuple[str, float, str]]] = {
    "baseconv_data_independent": [
        # O(N² log c) parameters: the ratio to N log c · log²(Nc) grows like N / log²(Nc)
        ("thm4.4-params", 100, "grows"),
        # width N(b+1) ≥ N: the hypothesis d < N of Based Thm 3.4 (and the combined bound) never holds
        ("based-thm3.4-layers", 1, "holds at no grid point"),
        ("based-combined-layers", 1, "holds at no grid point"),
    ],
    "baseconv_sorting": [
        # Θ(log² N · log log(Nc)) layers are polylog (Õ(1), checked as sort-layers), but one log log
        # factor above the concrete reading log2²(Nc) of Õ(1): the ratio grows slowly in N
        ("thm4.4-layers", 10, "grows"),
    ],
}
"""construction -> [(bound id, constant, phrase)]: claims that must *fail* ``check`` with an
AssertionError containing ``phrase``; passing, or failing for another reason, is an error."""

_FLAT_IN_N = {  # sizes the claims say do not depend on N (checked per c)
    "attention_h27": ("params", "layers", "width"),
    "attention_softmax": ("params", "layers", "width"),
    "baseconv_data_independent": ("layers",),
}


class ClaimFailed(AssertionError):
    """``verify`` found a claim that does not hold, or an expected failure that does not fail; the
    message names each construction and bound; ``tables`` and ``report`` are what was measured."""

    def __init__(self, message: str, tables: dict, report: pd.DataFrame):
        super().__init__(message)
        self.tables, self.report = tables, report


def claim_const(name: str, bound_id: str) -> float:
    """The constant ``CLAIMS`` checks ``bound_id`` with on the construction ``name``."""
    for bid, const in CLAIMS.get(name, []):
        if bid == bound_id:
            return const
    raise ValueError(f"bound_id={bound_id!r}: not a claim of {name!r} in CLAIMS")


def closed_form_sizes(name: str, row: Mapping) -> dict[str, int]:
    """The (params, layers, width) each construction's docstring derives, at one ``measure`` row
    (its c, N and, for baseconv_input_dependent, its ``max_distances`` slots t)."""
    c_, n_ = int(row["c"]), int(row["N"])
    b = math.ceil(math.log2(c_))
    if name == "attention_h27":
        return {"params": int(h27_parameter_count().subs(c, c_)), "layers": 2, "width": 3 * c_}
    if name == "attention_softmax":
        return {"params": 32 * b * b + 24 * b + 4, "layers": 2, "width": 4 * b + 2}
    if name in ("baseconv_data_independent", "baseconv_sorting"):
        k = (data_independent_counts if name == "baseconv_data_independent" else sorting_counts)(c_, n_)
        return {q: int(k[q]) for q in ("params", "layers", "width")}
    if name == "baseconv_input_dependent":
        slots = row.get("max_distances")
        t_ = n_ - 1 if slots is None or pd.isna(slots) else int(slots)
        return {"params": 2 * t_ * n_ * c_ + n_ + 8 * c_, "layers": 4, "width": (2 * t_ + 1) * c_}
    raise ValueError(f"name={name!r}: no closed form; known: {sorted(CLAIMS)}")


def check_sizes(name: str, df: pd.DataFrame) -> None:
    """Assert that a ``measure`` table of ``name`` has the closed-form sizes at every row, and the
    sizes of ``_FLAT_IN_N`` constant in N at each c; AssertionError naming the construction."""
    bad = []
    for _, r in df.iterrows():
        want = closed_form_sizes(name, r)
        got = {q: int(r[q]) for q in want}
        if got != want:
            bad.append(f"  N={r.N}, c={r.c}: measured {got}, closed form {want}")
    if bad:
        raise AssertionError(f"{name}: sizes differ from the closed form at {len(bad)} point(s):\n"
                             + "\n".join(bad))
    for q in _FLAT_IN_N.get(name, ()):
        varies = df.groupby("c")[q].nunique()
        if (varies > 1).any():
            raise AssertionError(f"{name}: {q} changes with N at c = {varies[varies > 1].index.tolist()}")
    if name == "baseconv_input_dependent" and "max_distances" in df and (df["t"] > df["max_distances"]).any():
        raise AssertionError(f"{name}: an instance needs more distances t than its max_distances slots")


def _ratio_stats(df: pd.DataFrame, b: Bound) -> dict:
    """rows where the hypothesis holds, min/max ratio and growth slopes of ``b``'s ratio column."""
    col, hcol = f"ratio:{b.id}", f"holds:{b.id}"
    if col not in df.columns:
        return {"rows": 0, "min_ratio": math.nan, "max_ratio": math.nan, "slope_N": math.nan,
                "slope_c": math.nan}
    rows = df[df[hcol].astype(bool)] if hcol in df.columns else df
    slopes = growth_slopes(rows, col) if len(rows) else {"N": math.nan, "c": math.nan}
    slopes = {k: round(v, 9) + 0.0 for k, v in slopes.items()}  # a flat ratio reads 0, not ±1e-16 or -0
    return {"rows": len(rows), "min_ratio": float(rows[col].min()) if len(rows) else math.nan,
            "max_ratio": float(rows[col].max()) if len(rows) else math.nan,
            "slope_N": slopes["N"], "slope_c": slopes["c"]}


def _verify_construction(name: str, df: pd.DataFrame, dtype: torch.dtype) -> list[dict]:
    """Report rows of one construction: closed-form sizes, float32 margins, CLAIMS, EXPECTED_FAILURES."""
    out = []
    base = {"construction": name, "const": math.nan, "rows": len(df), "min_ratio": math.nan,
            "max_ratio": math.nan, "slope_N": math.nan, "slope_c": math.nan}
    try:
        check_sizes(name, df)
        out.append({**base, "bound": "closed-form sizes", "kind": "identity", "expected": "holds",
                    "status": "holds", "ok": True, "message": ""})
    except AssertionError as e:
        out.append({**base, "bound": "closed-form sizes", "kind": "identity", "expected": "holds",
                    "status": "FAILED", "ok": False, "message": str(e)})
    if dtype == torch.float32:
        bad = df[~(df["margin_min"] > 0)]
        out.append({**base, "bound": "float32 margin > 0", "kind": "identity", "expected": "holds",
                    "min_ratio": float(df["margin_min"].min()), "status": "FAILED" if len(bad) else "holds",
                    "ok": not len(bad), "message": "" if not len(bad) else
                    f"{name}: margin_min <= 0 (or none) at N = {bad['N'].tolist()}, c = {bad['c'].tolist()}"})
    entries = [(bid, const, None) for bid, const in CLAIMS[name]]
    entries += [tuple(e) for e in EXPECTED_FAILURES.get(name, [])]
    for bid, const, phrase in entries:
        b = get_bound(bid)
        row = {**base, "bound": bid, "kind": b.kind, "const": float(const), **_ratio_stats(df, b),
               "expected": "holds" if phrase is None else f"fails: {phrase}"}
        try:
            check(df, b, const)
            passed, msg = True, ""
        except AssertionError as e:
            passed, msg = False, str(e)
        if phrase is None and passed:
            status, ok = "holds", True
        elif phrase is None and b.kind == "lower" and "holds at no grid point" in msg:
            status, ok = "vacuous (hypothesis holds at no grid point)", True
        elif phrase is None:
            status, ok = "FAILED", False
        elif passed:
            status, ok, msg = "UNEXPECTED PASS", False, f"{bid}: expected to fail ({phrase}) but holds"
        elif phrase in msg:
            status, ok = f"fails as expected ({phrase})", True
        else:
            status, ok = f"FAILED (expected '{phrase}')", False
        # a failure keeps the whole message (it names the failing rows); ok keeps its first line
        out.append({**row, "status": status, "ok": ok, "message": msg if not ok else msg.split("\n")[0]})
    return out


REPORT_COLUMNS = ["construction", "bound", "kind", "const", "expected", "status", "rows", "min_ratio",
                  "max_ratio", "slope_N", "slope_c", "ok", "message"]


def _positive_int_or_none(name: str, value, least: int = 1):
    if value is not None and not (_is_int(value) and value >= least):
        raise ValueError(f"{name}={value!r}: must be None or an integer >= {least}")


def verify(profile_or_device="auto", smoke: bool = False, num_instances: int | None = None,
           max_N: int | None = None, max_c: int | None = None, seed: int = 0, progress: bool = False, *,
           device=None, constructions=None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Measure every construction over a profile's grid and run every claim of ``CLAIMS`` and
    ``EXPECTED_FAILURES``, plus the closed-form sizes (``check_sizes``) and, in float32, margin > 0.

    profile_or_device: a ``Profile``, or a device ("auto" | "cpu" | "cuda" | torch.device) whose
    profile (``profile(device)``, or ``SMOKE_GRID`` with ``smoke=True``) is used. With a Profile,
    ``device`` (default "auto") says where to run it. num_instances: random instances per point
    (None: the profile's). max_N, max_c: drop grid points above them (None: keep all).
    constructions: names to run (default: every construction of the profile).

    Returns ``(tables, report)``: the ``measure`` table of each construction, and a tidy report
    with one row per check (``REPORT_COLUMNS``: construction, bound, kind, const, expected, status,
    rows checked, min/max ratio, log-log slopes of the ratio in N and c, ok, message; on the
    "float32 margin > 0" row of a float32 profile, min_ratio is the smallest margin). Raises
    ``ClaimFailed`` (an AssertionError naming each failing construction and bound, carrying the
    tables and report) if any row is not ok: a claim that fails (accuracy below 1.0 fails every
    claim), or an expected failure that passes or fails for another reason.
    """
    if isinstance(profile_or_device, Profile):
        if smoke:
            raise ValueError("smoke=True: give a device (not a Profile) to run SMOKE_GRID")
        prof, dev = profile_or_device, resolve_device("auto" if device is None else device)
    else:
        if device is not None:
            raise ValueError(f"device={device!r}: give the device as profile_or_device")
        dev = resolve_device(profile_or_device)
        prof = SMOKE_GRID if smoke else profile(dev)
    _positive_int_or_none("num_instances", num_instances)
    _positive_int_or_none("max_N", max_N, 4)
    _positive_int_or_none("max_c", max_c, 4)
    if isinstance(constructions, str):
        constructions = [constructions]
    names = list(prof.grids) if constructions is None else list(constructions)
    for name in names:
        if name not in prof.grids or name not in BUILDERS or name not in CLAIMS:
            raise ValueError(f"constructions: {name!r} is not one of the profile's {sorted(prof.grids)} "
                             "with a builder and CLAIMS")
    if not names:
        raise ValueError("constructions: is empty")
    tables, rows = {}, []
    for name in names:
        grid = [pt for pt in prof.grids[name]
                if (max_N is None or pt["N"] <= max_N) and (max_c is None or pt["c"] <= max_c)]
        if not grid:
            raise ValueError(f"max_N={max_N}, max_c={max_c}: leave no grid point of {name} "
                             f"in profile {prof.name!r}")
        df = measure(BUILDERS[name], grid, num_instances=num_instances or prof.num_instances, device=dev,
                     dtype=prof.dtype, seed=seed, progress=progress)
        tables[name] = df
        rows += _verify_construction(name, df, prof.dtype)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    failed = report[~report["ok"]]
    if len(failed):
        lines = [f"{r.construction} / {r.bound}: {r.status}: {r.message}" for r in failed.itertuples()]
        raise ClaimFailed(f"{len(failed)} claim check(s) failed on profile {prof.name!r}:\n"
                          + "\n".join(lines), tables, report)
    return tables, report
