"""``constructions_markdown()``: the constructions at one reference size, measured, as a markdown table
(README.md carries it between ``<!-- constructions:begin -->`` and ``<!-- constructions:end -->``);
``format_report``: ``verify``'s report as text that fits in 120 columns (``mqar-theory check-bounds``)."""

from __future__ import annotations

__all__ = ["REFERENCE_SIZE", "constructions_markdown", "format_report"]

REFERENCE_SIZE = {"c": 64, "N": 66, "K": 16}  # c = 64 tokens, N = 66 positions, K = 16 pairs (filler 0)


def _verdicts(name: str, report) -> str:
    rows = report[(report.construction == name) & (report.basis != "context")]
    rows = rows[~rows.bound.isin(["measured = closed-form sizes", "every number entering is counted",
                                  "encode / decode position-wise"])]
    parts = []
    for r in rows.itertuples():
        if r.status == "holds":
            word = "holds"
        elif r.status.startswith("fails as"):
            word = "fails, as expected"
        elif r.status.startswith("undecided"):
            word = f"expected to fail ({r.expected.removeprefix('fails: ')}: shown over a sweep, not at one size)"
        else:
            word = r.status
        parts.append(f"{r.bound}: {word}")
    return "; ".join(parts)


def constructions_markdown(num_instances: int = 4, seed: int = 0) -> str:
    """A markdown table: construction, theorem, params / layers / width measured at ``REFERENCE_SIZE``
    (``measure`` on ``num_instances`` make_mqar instances, float64, CPU), exactness there, and the verdict
    of each claim (its constant checked at that one point: a single size cannot show growth, so "grows"
    failures read as holding there unless the constant is exceeded)."""
    import pandas as pd
    import torch

    from ..constructions import BUILDERS
    from .measurement import measure
    from .verification import _verify_construction

    pt = dict(REFERENCE_SIZE)
    lines = [f"Measured at c = {pt['c']}, N = {pt['N']} ({pt['K']} key-value pairs, {num_instances} random "
             "instances, float64); params, layers and width are observed by running each program under an operator "
             "trace (`bounds.observe`: every number that enters counts, the token table apart; layers are the "
             "longest chain of sequence mixing); `mqar-theory check-bounds` checks every claim over grids of sizes.",
             "",
             "| construction | theorem | params | layers | width | exact | claims at this size |",
             "|---|---|---:|---:|---:|---|---|"]
    from ..constructions import CONSTRUCTIONS

    for name, builder in BUILDERS.items():
        point = {**pt, **CONSTRUCTIONS[name].grid_constants(pt)}
        df = measure(builder, [point], num_instances=num_instances, device="cpu", dtype=torch.float64,
                     seed=seed, name=name)
        report = pd.DataFrame(_verify_construction(name, df, torch.float64, "cpu"))
        r = df.iloc[0]
        exact = "yes" if r["accuracy"] == 1.0 and r["label_accuracy"] == 1.0 else "NO"
        lines.append(f"| `{name}` | {r['theorem']} | {int(r['params']):,} | {int(r['layers'])} | "
                     f"{int(r['width'])} | {exact} | {_verdicts(name, report)} |")
    return "\n".join(lines) + "\n"


_REPORT_FIELDS = [  # (header, width, function of a report row)
    ("construction", 22, lambda r: str(r.construction)),
    ("bound", 24, lambda r: str(r.bound)),
    ("basis", 8, lambda r: str(r.basis)),
    ("const", 5, lambda r: "" if r.const != r.const else f"{r.const:g}"),
    ("status", 26, lambda r: str(r.status)),
    ("ratio min-max", 14, lambda r: "" if r.min_ratio != r.min_ratio else
     f"{r.min_ratio:.3g}-{r.max_ratio:.3g}" if r.max_ratio == r.max_ratio else f"{r.min_ratio:.3g}"),
    ("slope N/c", 11, lambda r: "/".join("" if v != v else f"{v:+.2f}" for v in (r.slope_N, r.slope_c)).strip("/")),
    ("ok", 3, lambda r: "ok" if r.ok else "NO"),
]


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces where it can be (never cut off)."""
    import textwrap

    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def format_report(report) -> str:
    """``verify``'s report as a plain-text table of at most 120 columns. A cell longer than its column continues on
    the next lines of its row (nothing is cut, so two rows never read alike); the full text is also in the report's
    DataFrame."""
    lines = [" ".join(f"{h:<{w}}" for h, w, _ in _REPORT_FIELDS).rstrip()]
    for r in report.itertuples():
        cells = [_wrap(f(r), w) for _, w, f in _REPORT_FIELDS]
        for i in range(max(len(c) for c in cells)):
            lines.append(" ".join(f"{c[i] if i < len(c) else '':<{w}}"
                                  for c, (_, w, _) in zip(cells, _REPORT_FIELDS)).rstrip())
    assert max(len(ln) for ln in lines) <= 120
    return "\n".join(lines)
