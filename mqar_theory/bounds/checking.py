"""``check``: one column of a ``measure`` table as an assertion (ratio bounded and not growing)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .bound import MEASURED
from .registry import get_bound

__all__ = ["growth_slopes", "check"]


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
