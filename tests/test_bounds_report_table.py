"""check-bounds' text table: at most 120 columns, and no cell cut off (a long bound name wraps onto the next line of
its row), so two rows whose names share a long prefix never read alike."""

import math

import pandas as pd

from mqar_theory.bounds import format_report


def test_long_cells_wrap_instead_of_being_cut():
    common = "Thm 4.2 parameters Õ(sΔ log(s)) over a long explanation"
    rows = [dict(construction="circuit", bound=f"{common}: holds", basis="fit", const=2.0, status="holds",
                 min_ratio=0.5, max_ratio=0.9, slope_N=0.1, slope_c=math.nan, ok=True),
            dict(construction="circuit", bound=f"{common}: the dense one", basis="fit", const=math.nan,
                 status="fails as expected (grows: shown over a sweep)", min_ratio=1.5, max_ratio=math.nan,
                 slope_N=math.nan, slope_c=math.nan, ok=True)]
    text = format_report(pd.DataFrame(rows))
    lines = text.splitlines()
    assert max(len(ln) for ln in lines) <= 120 and "…" not in text
    flat = " ".join(" ".join(ln.split()) for ln in lines)
    for r in rows:  # every word of every cell is printed
        for word in (r["bound"] + " " + r["status"]).split():
            assert word in flat, word
    assert len(lines) > 3  # the long cells took continuation lines
