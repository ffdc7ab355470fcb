"""Which construction is held to which bound, with which constant and why (``CLAIM_SPECS``, ``CLAIMS``),
the claims that must fail (``EXPECTED_FAILURES``), the lower bounds shown for context (``CONTEXT``),
and the closed-form sizes the constructions' docstrings derive (a second column beside the
measured sizes, never in their place).

Every constant is either **proved** for every even c >= 4 and every N >= 4 (the derivation is in the
claim's ``derivation``; ``tests/test_bounds_sweep.py`` checks it on every c, N in [4, 300] and on
random large non-powers of two), or **fitted**: the supremum of the ratio over the fit range, rounded
up, and then checked on a held-out range. Notation: L = log2 c >= 2, b = ⌈log2 c⌉ < L + 1,
P = ⌈log2 N⌉ < log2 N + 1, λ = log2 L >= 1, T = ⌈log2 b⌉ < λ + 1.585 (as (L + 1)/L <= 3/2).
``register_claim`` adds a claim (e.g. from another module of the package).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from ..constructions.baseconv_data_independent import data_independent_counts
from ..constructions.baseconv_sorting import sorting_counts

__all__ = ["Claim", "CLAIM_SPECS", "CLAIMS", "EXPECTED_FAILURES", "CONTEXT", "FIT_RANGE", "register_claim",
           "claim_const", "claim_spec", "closed_form_sizes", "check_sizes"]

FIT_RANGE = {"c": (4, 64), "N": (4, 64)}  # where fitted constants were fitted (every even c, every N)


@dataclass(frozen=True)
class Claim:
    """``construction``'s measured quantity is ≤ ``const`` · (bound ``bound``'s expression).

    basis: "proved" (``derivation`` proves it for every even c >= 4, N >= 4, t >= 1) or "fitted"
    (``const`` is the supremum over ``FIT_RANGE``, rounded up; checked on held-out sizes).
    """

    construction: str
    bound: str
    const: float
    basis: str
    derivation: str

    def __post_init__(self):
        if self.basis not in ("proved", "fitted"):
            raise ValueError(f"basis={self.basis!r}: must be 'proved' or 'fitted'")
        if not (isinstance(self.const, (int, float)) and self.const > 0):
            raise ValueError(f"const={self.const!r}: must be a number > 0")


CLAIM_SPECS: list[Claim] = [
    # --- attention_h27 (Zoology Prop 4.3) ---
    Claim("attention_h27", "prop4.3-params", 55, "proved",
          "stored 54c² + 3 (six (3c)² matrices, biases r¹, r²); (54c² + 3)/c² <= 54 + 3/16 for c >= 4"),
    Claim("attention_h27", "prop4.3-layers", 2, "proved", "the traced forward pass applies two layers"),
    Claim("attention_h27", "prop4.3-width", 1, "proved", "the layers read a stream of width 3c"),
    # --- attention_softmax (ours) ---
    Claim("attention_softmax", "softmax-width", 7, "proved",
          "4b + 2 < 4L + 6 <= 7L for L >= 2"),
    Claim("attention_softmax", "softmax-params", 76, "proved",
          "32b² + 24b + 10: at c = 4 (b = 2) 186/4 = 46.5; for c >= 6, b < L + 1 gives "
          "32 + 88/L + 66/L² <= 75.9 at L >= log2 6"),
    Claim("attention_softmax", "softmax-layers", 2, "proved", "the traced forward pass applies two layers"),
    # --- baseconv_data_independent (ours, all distances) ---
    Claim("baseconv_data_independent", "di-layers", 5, "proved",
          "T + 4 with T = ⌈log2 b⌉: 5 at c = 4 (ratio 5); for c >= 6, T + 4 < log2(L + 1) + 5 and "
          "(log2(L + 1) + 5)/log2 L decreases, 4.99 at L = log2 6"),
    Claim("baseconv_data_independent", "di-width", 1.8, "proved",
          "N(b + 1)/(N L) < 1 + 2/L: 1.5 at c = 4, <= 1.774 for c >= 6"),
    Claim("baseconv_data_independent", "di-params", 14, "proved",
          "stored = 2N²r + Nr(3T + 9) + (N-1)(6b+1) + r(T+2) + 1 (r = b + 1 <= 2L); over "
          "N L (N + λ): <= 4 + 2(3λ + 13.76)/(λ + 4) + 9.5/5 + (2λ + 7.7)/(4(λ + 4)) <= 4 + 6.71 + 1.9 + 0.5"),
    Claim("baseconv_data_independent", "thm4.4-layers", 1, "proved",
          "T + 4 < log2(L + 1) + 5 <= (L + 2)² <= log2²(Nc) for L >= 2, N >= 4"),
    # --- baseconv_sorting (ours, bitonic) ---
    Claim("baseconv_sorting", "thm4.4-params", 61, "fitted",
          "sup of params / (N L log2²(Nc)) over FIT_RANGE is 60.92 (c = 4, N = 5; N' = 8 rows)"),
    Claim("baseconv_sorting", "sort-width", 13, "proved",
          "8b + 6P + 5 < 8L + 6 log2 N + 19 <= 8 log2(Nc) + 19, and log2(Nc) >= 4"),
    Claim("baseconv_sorting", "sort-layers", 7.8, "fitted",
          "sup of layers / (log2² N · log2 log2(Nc)) over FIT_RANGE is 7.73 (c = 4, N = 5)"),
    # --- baseconv_input_dependent (Zoology Thm 4.5) ---
    Claim("baseconv_input_dependent", "thm4.5-params", 4.25, "proved",
          "the program of an input holds 2 t' N c + N + 8c numbers as Thm 4.5 counts them (t' filters per "
          "bank); if t' <= t (the input's distinct distances) the ratio is <= 2 + 1/(tc) + 8/(tN) <= 4.25 "
          "for t >= 1, c, N >= 4"),
    Claim("baseconv_input_dependent", "thm4.5-layers", 4, "proved", "the traced forward pass applies four layers"),
]
"""Every claim ``verify`` asserts with ``check(df, bound, const)``; see the module docstring."""

EXPECTED_FAILURES: dict[str, list[tuple[str, float, str]]] = {
    "baseconv_data_independent": [
        # O(N² log c) parameters: the ratio to N log c · log²(Nc) grows like N / log²(Nc)
        ("thm4.4-params", 100, "grows"),
    ],
    "baseconv_sorting": [
        # Θ(log² N · log log(Nc)) layers are polylog (Õ(1), checked as sort-layers), but one log log
        # factor above the concrete reading log2²(Nc) of Õ(1): the ratio grows slowly in N
        ("thm4.4-layers", 10, "grows"),
    ],
}
"""construction -> [(bound id, constant, phrase)]: claims that must *fail* ``check`` with an
AssertionError containing ``phrase``; passing, or failing for another reason, is an error (unless the
grid cannot show the failure: "grows" needs two N or two c values at some fixed other size)."""

CONTEXT: dict[str, list[str]] = {
    # the Based lower bounds (Arora et al. 2024, arXiv 2402.18668, §3.2: Thm 3.2, Remark 3.3, Thm 3.4)
    # are tabulated beside the measured layers for comparison. They are not tests: a construction far
    # above a lower bound confirms nothing (ratios 1.5 to 2000 on the grids).
    "baseconv_data_independent": ["based-thm3.2-layers", "based-thm3.4-layers", "based-combined-layers"],
    "baseconv_sorting": ["based-thm3.2-layers", "based-thm3.4-layers", "based-combined-layers"],
    "baseconv_input_dependent": ["based-rem3.3-layers"],
}


def _as_dict(specs) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for s in specs:
        out.setdefault(s.construction, []).append((s.bound, s.const))
    return out


CLAIMS: dict[str, list[tuple[str, float]]] = _as_dict(CLAIM_SPECS)
"""construction -> [(bound id, constant)], the view of ``CLAIM_SPECS`` that ``verify`` runs."""


def register_claim(claim: Claim) -> None:
    """Add ``claim`` to ``CLAIM_SPECS`` and ``CLAIMS`` (its bound must be in ``BOUNDS``, see
    ``registry.register_bound``; its construction in ``constructions.BUILDERS`` and a ``Profile``'s
    grids for ``verify`` to run it). A claim already present for the same construction and bound is
    replaced."""
    from .registry import get_bound

    if not isinstance(claim, Claim):
        raise ValueError(f"claim: must be a Claim, got {type(claim).__name__}")
    get_bound(claim.bound)
    CLAIM_SPECS[:] = [s for s in CLAIM_SPECS if (s.construction, s.bound) != (claim.construction, claim.bound)]
    CLAIM_SPECS.append(claim)
    CLAIMS[claim.construction] = [(b, k) for b, k in CLAIMS.get(claim.construction, []) if b != claim.bound]
    CLAIMS[claim.construction].append((claim.bound, claim.const))


def claim_spec(name: str, bound_id: str) -> Claim:
    """The ``Claim`` of ``bound_id`` on the construction ``name``."""
    for s in CLAIM_SPECS:
        if (s.construction, s.bound) == (name, bound_id):
            return s
    raise ValueError(f"bound_id={bound_id!r}: not a claim of {name!r} in CLAIMS")


def claim_const(name: str, bound_id: str) -> float:
    """The constant ``CLAIMS`` checks ``bound_id`` with on the construction ``name``."""
    return claim_spec(name, bound_id).const


def closed_form_sizes(name: str, row: Mapping) -> dict[str, int]:
    """The (params, layers, width) each construction's docstring derives, at one ``measure`` row (its
    c, N and, for baseconv_input_dependent, the number of filters ``t_filters`` its largest program
    holds; the measured input ``t`` if that column is absent)."""
    c_, n_ = int(row["c"]), int(row["N"])
    b = math.ceil(math.log2(c_))
    if name == "attention_h27":
        return {"params": 54 * c_ * c_ + 3, "layers": 2, "width": 3 * c_}
    if name == "attention_softmax":
        return {"params": 32 * b * b + 24 * b + 10, "layers": 2, "width": 4 * b + 2}
    if name in ("baseconv_data_independent", "baseconv_sorting"):
        k = (data_independent_counts if name == "baseconv_data_independent" else sorting_counts)(c_, n_)
        return {q: int(k[q]) for q in ("params", "layers", "width")}
    if name == "baseconv_input_dependent":
        t_ = row.get("t_filters")
        t_ = int(row["t"]) if t_ is None or pd.isna(t_) else int(t_)
        return {"params": 2 * t_ * n_ * c_ + n_ + 8 * c_, "layers": 4, "width": (2 * t_ + 1) * c_}
    raise ValueError(f"name={name!r}: no closed form; known: {sorted(CLAIMS)}")


def check_sizes(name: str, df: pd.DataFrame) -> None:
    """Assert that the sizes ``measure`` counted (stored tensors, traced layers and width) equal the
    closed forms at every row; AssertionError naming the construction and the rows."""
    bad = []
    for _, r in df.iterrows():
        want = closed_form_sizes(name, r)
        got = {q: int(r[q]) for q in want}
        if got != want:
            bad.append(f"  N={r.N}, c={r.c}: measured {got}, closed form {want}")
    if bad:
        raise AssertionError(f"{name}: measured sizes differ from the closed form at {len(bad)} point(s):\n"
                             + "\n".join(bad))
    if "t_filters" in df and (df["t_filters"] > df["t"]).any():
        raise AssertionError(f"{name}: a program holds more filters than its input has distinct distances")
