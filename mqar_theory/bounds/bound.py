"""The symbols of the bounds and the ``Bound`` record (one claim as a sympy expression).

See the package docstring (``mqar_theory.bounds``) for how the asymptotic notation is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

__all__ = ["N", "c", "t", "d", "p", "eps", "s", "Delta", "SYMBOLS", "QUANTITIES", "MEASURED", "POLYLOG_POWER",
           "log2", "Bound"]

N, c, t, d, p = sp.symbols("N c t d p", positive=True)
eps = sp.Symbol("eps", positive=True)
s, Delta = sp.symbols("s Delta", positive=True)  # Thm 4.2: circuit size s* and depth Δ
SYMBOLS = {"N": N, "c": c, "t": t, "d": d, "p": p, "eps": eps, "s": s, "Delta": Delta}

QUANTITIES = ("params", "layers", "width", "state_bits")
MEASURED = {"params": "params", "layers": "layers", "width": "width"}  # quantity -> measure() column
POLYLOG_POWER = 2  # Õ(f) is compared against f * log2(N·c)**POLYLOG_POWER


def log2(x) -> sp.Expr:
    """log base 2 as a sympy expression (the reading of every unqualified log, see the package doc)."""
    return sp.log(x, 2)


# ----------------------------------------------------------------------------------------------
# the Bound record
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bound:
    """One claim: ``quantity`` of a model solving MQAR is ≤ (upper) or ≥ (lower) a multiple of ``expr``.

    ``statement`` is the claim as the paper words it (or, for a ``source`` that names no paper
    theorem, the fact our construction's docstring derives); ``expr`` is the comparison expression we
    evaluate (for Õ claims it includes the polylog factor, see the module doc); ``given`` are
    substitutions the statement itself fixes (e.g. d = log2 c in Based Thm 3.2); ``condition`` is
    the hypothesis as a sympy relation, checked per grid point; ``verified`` says whether the statement
    is confirmed verbatim (checked against the paper's text), ``notes`` what is not.
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
