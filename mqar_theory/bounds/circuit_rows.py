"""Thm 4.2's claims (``mqar_theory.circuits.check_claims``) as rows of the bounds report, so
``bounds.verify``, ``mqar-theory check-bounds`` and notebook 02 report them with the construction claims.

Each circuits row becomes one report row: ``construction`` is ``circuits/<compiler>`` (the part of the claim
before the colon), ``bound`` the claim, ``kind`` "upper" for a Thm 4.2 bound and "identity" for an
exactness or formula check, ``basis`` "measured"; an expected failure reads ``fails as expected`` when it
fails and ``UNEXPECTED PASS`` (not ok) when it holds, as for the constructions.
"""

from __future__ import annotations

import math

__all__ = ["circuit_rows"]


def circuit_rows(smoke: bool = False, seed: int = 0) -> list[dict]:
    """Run ``circuits.check_claims(smoke=..., seed=...)`` and return its rows in ``REPORT_COLUMNS`` form."""
    from ..circuits import check_claims

    out = []
    for r in check_claims(smoke=smoke, seed=seed).itertuples(index=False):
        compiler, _, claim = r.claim.partition(": ")
        expected_failure = bool(r.expected_failure)
        holds = bool(r.holds)
        if not expected_failure:
            status = "holds" if holds else "FAILED"
        else:
            status = "fails as expected" if not holds else "UNEXPECTED PASS"
        out.append({
            "construction": f"circuits/{compiler}", "bound": f"{claim} [{r.bound}]",
            "kind": "upper" if "Thm 4.2" in claim else "identity", "basis": "measured", "const": math.nan,
            "expected": f"fails: {r.reason}" if expected_failure else "holds", "status": status,
            "rows": math.nan, "min_ratio": float(r.ratio), "max_ratio": float(r.ratio), "slope_N": math.nan,
            "slope_c": math.nan, "ok": status in ("holds", "fails as expected"),
            "message": "" if status in ("holds", "fails as expected") else f"{r.claim}: {status} ({r.reason})",
        })
    return out
