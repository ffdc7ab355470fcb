"""The paper's Table 2 (Zoology, Arora, Eyuboglu et al., arXiv 2312.04927v1, §5), 360M block: Pile language
models with convolution-attention hybrids. QUOTED, not measured (reproducing it needs Pile pretraining).

Provenance (``TABLE2_PROVENANCE``): the numbers are a third-party transcription of the arXiv v1 HTML table,
corroborated on four rows by a second note written from the PDF; the compute column comes from that second
note only. Check them against the PDF before citing them further.

Columns: test perplexity overall, on the AR-hit slice and on the other tokens, each with the printed
ln(perplexity) in parentheses (the transcription's header calls these "bits"; they are natural logarithms:
ln 9.44 = 2.245), and the compute of a forward pass where the second note gives one.

Derived claims (``table2_claims``). The gap closed by a hybrid on a slice is

    (BaseConv - hybrid) / (BaseConv - Attention)

computed in one of three spaces (``SPACES``): ``ppl`` (the perplexities), ``log`` (ln of the perplexities)
and ``log_printed`` (the printed two-decimal logs). A percentage in the paper's text *derives* from the block
when, in some space, the interval of values the fraction can take when every printed number is moved within
its rounding (± half a unit of its last digit) meets the interval of numbers that round to the text's
percentage (85% ↦ [84.5, 85.5), 97.4% ↦ [97.35, 97.45)). The text's figures checked: 85% of the AR gap for
programmatic selection (§5), 72% for learned selection (§5), both in all three spaces, and 97.4% of the gap
(abstract), searched over every hybrid row and slice in the ``ppl`` and ``log`` spaces (see ``TEXT_CLAIMS``
for why not ``log_printed``).
"""

from __future__ import annotations

import itertools
import math

__all__ = ["TABLE2", "TABLE2_CITATION", "TABLE2_PROVENANCE", "SLICES", "SPACES", "TEXT_CLAIMS", "table2",
           "gap_closed", "gap_closed_interval", "gap_closed_grid", "table2_claims", "ZOOLOGY_TABLE2",
           "zoology_table2"]  # fmt: skip

TABLE2_CITATION = ("Arora, Eyuboglu, Timalsina, Johnson, Poli, Zou, Rudra, Ré. Zoology: Measuring and Improving "
                   "Recall in Efficient Language Models. arXiv 2312.04927v1 (2023), ICLR 2024; §5, Table 2, "
                   "360M block")
TABLE2_PROVENANCE = ("transcribed: a third-party transcription of the arXiv v1 HTML table, corroborated on four "
                     "rows by a second note written from the PDF (compute column: second note only); not checked "
                     "against the PDF here")

SLICES = ("overall", "AR hits", "other")
SPACES = ("ppl", "log", "log_printed")

#: model -> (params in M, ppl overall, AR hits, other, printed ln overall, AR hits, other, compute or None)
TABLE2 = {
    "Attention": (360, 9.44, 1.98, 10.62, 2.25, 0.69, 2.36, "6.23 TFLOPs"),
    "BaseConv": (354, 11.01, 5.98, 11.52, 2.40, 1.79, 2.44, None),
    "+ random selection": (365, 12.94, 6.17, 13.62, 2.56, 1.82, 2.61, None),
    "+ programmatic selection": (365, 9.54, 2.35, 10.50, 2.26, 0.86, 2.35, "5.06 TFLOPs"),
    "+ learned selection": (351, 9.59, 2.61, 10.58, 2.26, 0.96, 2.36, None),
    "+ full attention in 3 of 48 layers": (351, 8.59, 1.95, 8.91, 2.15, 0.67, 2.19, "5.10 TFLOPs"),
}
HYBRIDS = ("+ random selection", "+ programmatic selection", "+ learned selection",
           "+ full attention in 3 of 48 layers")

#: claim id -> (where the paper says it, percentage as printed, its precision (decimals), model, slice, spaces);
#: model None: search every hybrid row and slice. The abstract's figure is searched in the spaces computed from
#: the perplexities only: the printed logs have two decimals over gaps of 0.08-0.15 (overall, other), so there
#: the rounding interval spans tens of points and would "contain" almost any percentage.
TEXT_CLAIMS = {
    "programmatic_85_ar": ("§5", 85.0, 0, "+ programmatic selection", "AR hits", SPACES),
    "learned_72_ar": ("§5", 72.0, 0, "+ learned selection", "AR hits", SPACES),
    "abstract_97_4": ("abstract", 97.4, 1, None, None, ("ppl", "log")),
}


def table2():
    """``TABLE2`` as a DataFrame indexed by model (the quoted 360M block; see the module docstring)."""
    import pandas as pd

    cols = ["params (M)", "ppl overall", "ppl AR hits", "ppl other", "ln overall", "ln AR hits", "ln other",
            "compute"]
    return pd.DataFrame.from_dict(TABLE2, orient="index", columns=cols).rename_axis("model (360M)")


#: the names ``mqar_theory.sweep`` exports
ZOOLOGY_TABLE2 = TABLE2
zoology_table2 = table2


def _values(model: str, slice_: str, space: str) -> tuple[float, float]:
    """(printed value in ``space``, half a unit of its last printed digit)."""
    if model not in TABLE2:
        raise ValueError(f"model={model!r}: must be one of {list(TABLE2)}")
    if slice_ not in SLICES:
        raise ValueError(f"slice_={slice_!r}: must be one of {list(SLICES)}")
    if space not in SPACES:
        raise ValueError(f"space={space!r}: must be one of {list(SPACES)}")
    i = SLICES.index(slice_)
    return (TABLE2[model][4 + i], 0.005) if space == "log_printed" else (TABLE2[model][1 + i], 0.005)


def _fraction(base: float, att: float, hyb: float, log: bool) -> float:
    f = math.log if log else float
    return (f(base) - f(hyb)) / (f(base) - f(att))


def gap_closed(model: str, slice_: str = "AR hits", space: str = "log") -> float:
    """(BaseConv - model) / (BaseConv - Attention) on ``slice_`` in ``space``, from the printed numbers."""
    (b, _), (a, _), (h, _) = (_values(m, slice_, space) for m in ("BaseConv", "Attention", model))
    return _fraction(b, a, h, space == "log")


def gap_closed_interval(model: str, slice_: str = "AR hits", space: str = "log") -> tuple[float, float]:
    """(min, max) of the gap closed when each of the three printed numbers moves within ± half a unit of its
    last digit (the fraction is monotone in each number, so the extremes are at the corners)."""
    vals = [_values(m, slice_, space) for m in ("BaseConv", "Attention", model)]
    corners = [_fraction(*(v + s * e for (v, e), s in zip(vals, signs, strict=True)), space == "log")
               for signs in itertools.product((-1, 1), repeat=3)]
    return min(corners), max(corners)


def gap_closed_grid():
    """Every hybrid row x slice x space: ``gap_closed`` and its rounding interval, in percent."""
    import pandas as pd

    rows = []
    for m, s, sp in itertools.product(HYBRIDS, SLICES, SPACES):
        lo, hi = gap_closed_interval(m, s, sp)
        rows.append((m, s, sp, 100 * gap_closed(m, s, sp), 100 * lo, 100 * hi))
    return pd.DataFrame(rows, columns=["model", "slice", "space", "gap_closed_pct", "low_pct", "high_pct"])


def table2_claims():
    """The text's percentages checked against the block (module docstring): one row per ``TEXT_CLAIMS`` entry
    with ``computed`` (what the block gives, per space: "ppl 90.8%, log 84.5%, ..."; for the abstract's
    figure the closest row/slice/space), ``derives`` (True/False) and ``detail`` (what matched, or the
    nearest miss)."""
    import pandas as pd

    grid = gap_closed_grid()
    out = []
    for cid, (where, pct, decimals, model, slice_, spaces) in TEXT_CLAIMS.items():
        half = 0.5 * 10.0 ** (-decimals)
        cand = grid[grid["space"].isin(spaces)]
        cand = cand if model is None else cand[(cand["model"] == model) & (cand["slice"] == slice_)]
        meets = cand[(cand["high_pct"] >= pct - half) & (cand["low_pct"] < pct + half)]
        if model is None:
            near = cand.iloc[(cand["gap_closed_pct"] - pct).abs().argsort().iloc[0]]
            computed = (f"closest: {near['model']}, {near['slice']}, {near['space']}: "
                        f"{near['gap_closed_pct']:.1f}%")
        else:
            computed = ", ".join(f"{r.space} {r.gap_closed_pct:.1f}%" for r in cand.itertuples())
        what = f"{model}, {slice_}" if model else f"any hybrid row and slice, spaces {', '.join(spaces)}"
        if len(meets):
            detail = "derives in " + ", ".join(f"{r.space} ({r.low_pct:.2f}-{r.high_pct:.2f}%)"
                                               for r in meets.itertuples())
        else:
            detail = f"no space gives [{pct - half:g}, {pct + half:g})% for {what}"
        out.append((cid, where, f"{pct:g}%", what, computed, bool(len(meets)), detail))
    df = pd.DataFrame(out, columns=["id", "where", "text", "of", "computed", "derives", "detail"])
    df["derives"] = pd.Series([r[5] for r in out], dtype=object)  # Python bools, as the other claim tables
    return df
