"""Which construction is held to which bound, with which constant (``CLAIMS``), the claims that must
fail (``EXPECTED_FAILURES``), and the closed-form sizes the constructions' docstrings derive."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from ..constructions.baseconv_data_independent import data_independent_counts
from ..constructions.baseconv_sorting import sorting_counts
from .bound import c
from .registry import h27_parameter_count

__all__ = ["CLAIMS", "EXPECTED_FAILURES", "claim_const", "closed_form_sizes", "check_sizes"]

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
