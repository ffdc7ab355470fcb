"""The claim record: which bound a construction is held to, with which constant and why.

One ``Claim`` per (construction, bound): ``expect`` is "holds" (``check`` must pass with ``const``; the
constant is ``basis`` "proved", with the derivation in ``why``, or "fitted", the supremum of the ratio over
``FIT_RANGE`` rounded up and checked on held-out sizes), "fails" (``check`` must fail with an
AssertionError containing ``phrase``; ``why`` says why) or "context" (a lower bound tabulated beside the
measurement, not a test). ``values`` are symbol values the construction fixes (p = 1 for a one-hot input).
Each construction declares its claims in its own file (``Construction.claims``); ``claims_of(name)``
returns them with ``construction`` filled in. Notation of the derivations: L = log2 c >= 2,
b = ⌈log2 c⌉ < L + 1, P = ⌈log2 N⌉ < log2 N + 1, λ = log2 L >= 1, T = ⌈log2 b⌉ < λ + 1.585.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

__all__ = ["Claim", "EXPECTS", "FIT_RANGE", "claims_of", "all_claims", "claim_spec", "claim_const",
           "closed_form_sizes", "check_sizes"]

FIT_RANGE = {"c": (4, 64), "N": (4, 64)}  # where fitted constants were fitted (every even c, every N)
EXPECTS = ("holds", "fails", "context")


@dataclass(frozen=True)
class Claim:
    """``bound`` (an id of ``bounds.BOUNDS`` or of the construction's ``own_bounds``) on a construction."""

    bound: str
    expect: str = "holds"
    const: float | None = None
    basis: str = ""
    why: str = ""
    phrase: str = ""
    values: Mapping = field(default_factory=dict)
    construction: str = ""

    def __post_init__(self):
        if self.expect not in EXPECTS:
            raise ValueError(f"expect={self.expect!r}: must be one of {EXPECTS}")
        if self.expect == "holds" and self.basis not in ("proved", "fitted"):
            raise ValueError(f"basis={self.basis!r}: a claim that holds must be 'proved' or 'fitted'")
        if self.expect != "context" and not (isinstance(self.const, (int, float)) and self.const > 0):
            raise ValueError(f"const={self.const!r}: must be a number > 0")
        if self.expect == "fails" and not self.phrase:
            raise ValueError("phrase: a claim expected to fail names the phrase its failure must contain")


def _spec(name: str):
    from ..constructions import CONSTRUCTIONS

    if name not in CONSTRUCTIONS:
        raise ValueError(f"name={name!r}: not a registered construction; known: {sorted(CONSTRUCTIONS)}")
    return CONSTRUCTIONS[name]


def claims_of(name: str, expect: str | None = None) -> list[Claim]:
    """The claims the construction ``name`` declares (``expect``: only those of that kind)."""
    return [replace(k, construction=name) for k in _spec(name).claims if expect is None or k.expect == expect]


def all_claims() -> list[Claim]:
    """Every registered construction's claims."""
    from ..constructions import CONSTRUCTIONS

    return [k for name in CONSTRUCTIONS for k in claims_of(name)]


def claim_spec(name: str, bound_id: str) -> Claim:
    """The ``Claim`` of ``bound_id`` on the construction ``name``."""
    for k in claims_of(name):
        if k.bound == bound_id:
            return k
    raise ValueError(f"bound_id={bound_id!r}: not a claim of {name!r}")


def claim_const(name: str, bound_id: str) -> float:
    """The constant ``bound_id`` is checked with on the construction ``name``."""
    return claim_spec(name, bound_id).const


def closed_form_sizes(name: str, row: Mapping) -> dict[str, int]:
    """The (params, layers, width) the construction's docstring derives at one ``measure`` row (its c, N
    and, for an input-dependent one, the filters ``t_filters`` of its largest program, else ``t``)."""
    t_ = row.get("t_filters")
    if t_ is None or pd.isna(t_):
        t_ = row.get("t")
    t_ = None if t_ is None or pd.isna(t_) else int(t_)
    try:
        out = _spec(name).closed_form(int(row["c"]), int(row["N"]), t_)
    except NotImplementedError as e:
        raise ValueError(f"name={name!r}: {e}") from None
    return {q: int(out[q]) for q in ("params", "layers", "width")}


def check_sizes(name: str, df: pd.DataFrame) -> None:
    """Assert that the sizes ``measure`` counted (stored numbers, listed layers, widest stream read) equal
    the closed forms at every row, that every fixed table equals its recomputation from (c, N), and that
    encode / decode are position-wise; AssertionError naming the construction and the rows."""
    bad = []
    for _, r in df.iterrows():
        want = closed_form_sizes(name, r)
        got = {q: int(r[q]) for q in want}
        if got != want:
            bad.append(f"  N={r.N}, c={r.c}: measured {got}, closed form {want}")
        if int(r.get("fixed_mismatch", 0)):
            bad.append(f"  N={r.N}, c={r.c}: {int(r['fixed_mismatch'])} stored numbers of declared fixed tables "
                       "differ from their recomputation from (c, N) (counted as parameters)")
    if bad:
        raise AssertionError(f"{name}: measured sizes differ from the closed form at {len(bad)} point(s):\n"
                             + "\n".join(bad))
    if "t_filters" in df and (df["t_filters"] > df["t"]).any():
        raise AssertionError(f"{name}: a program holds more filters than its input has distinct distances")
