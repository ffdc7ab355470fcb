"""mqar_theory.sweep.table2: the quoted 360M block of Zoology's Table 2 and the text's percentages recomputed from
it (85% derives, 72% does not, the abstract's 97.4% does not), with hand-computed values and the rounding rule."""

from __future__ import annotations

import math

import pytest

from mqar_theory.sweep import ZOOLOGY_TABLE2, zoology_table2
from mqar_theory.sweep.table2 import (
    TABLE2,
    TABLE2_CITATION,
    TABLE2_PROVENANCE,
    gap_closed,
    gap_closed_grid,
    gap_closed_interval,
    table2,
    table2_claims,
)


def test_the_block_as_quoted():
    t = table2()
    assert list(t.index) == ["Attention", "BaseConv", "+ random selection", "+ programmatic selection",
                             "+ learned selection", "+ full attention in 3 of 48 layers"]
    assert tuple(t.loc["Attention", ["ppl overall", "ppl AR hits", "ppl other"]]) == (9.44, 1.98, 10.62)
    assert tuple(t.loc["BaseConv", ["ppl overall", "ppl AR hits", "ppl other"]]) == (11.01, 5.98, 11.52)
    assert t.loc["+ programmatic selection", "compute"] == "5.06 TFLOPs"
    assert zoology_table2 is table2 and ZOOLOGY_TABLE2 is TABLE2
    assert "2312.04927" in TABLE2_CITATION and "Table 2" in TABLE2_CITATION
    assert "transcription" in TABLE2_PROVENANCE and "PDF" in TABLE2_PROVENANCE


def test_printed_logs_are_natural_logs_of_the_perplexities():
    """Both are rounded: some loss l rounds to the printed log and exp(l) to the printed perplexity
    (e.g. l = 0.6852: 0.69 and 1.98), i.e. the two rounding intervals overlap; a transcription error in
    either number (a swapped digit, bits instead of nats) breaks this."""
    for model, row in TABLE2.items():
        for ppl, ln in zip(row[1:4], row[4:7], strict=True):
            lo, hi = math.log(ppl - 0.005), math.log(ppl + 0.005)
            assert lo <= ln + 0.005 and ln - 0.005 <= hi, (model, ppl, ln)
            assert not (math.log2(ppl) - 0.005 <= ln <= math.log2(ppl) + 0.005)  # nats, not bits


def test_gap_closed_by_hand():
    assert gap_closed("+ programmatic selection", "AR hits", "ppl") == pytest.approx((5.98 - 2.35) / (5.98 - 1.98))
    want = (math.log(5.98) - math.log(2.35)) / (math.log(5.98) - math.log(1.98))
    assert gap_closed("+ programmatic selection", "AR hits", "log") == pytest.approx(want)
    assert gap_closed("+ learned selection", "AR hits", "log_printed") == pytest.approx((1.79 - 0.96) / 1.10)
    assert gap_closed("BaseConv", "overall") == 0.0 and gap_closed("Attention", "overall") == pytest.approx(1.0)
    lo, hi = gap_closed_interval("+ programmatic selection", "overall", "ppl")
    # increasing in BaseConv's and attention's number, decreasing in the hybrid's (the hybrid is above attention)
    assert lo == pytest.approx((11.005 - 9.545) / (11.005 - 9.435)) and hi == pytest.approx(
        (11.015 - 9.535) / (11.015 - 9.445))
    assert lo < gap_closed("+ programmatic selection", "overall", "ppl") < hi
    for kw, name in ((dict(model="GPT"), "model="), (dict(model="BaseConv", slice_="tail"), "slice_="),
                     (dict(model="BaseConv", space="bits"), "space=")):
        with pytest.raises(ValueError, match=name):
            gap_closed(**kw)


def test_grid_covers_every_hybrid_slice_and_space():
    g = gap_closed_grid()
    assert len(g) == 4 * 3 * 3 and (g["low_pct"] <= g["gap_closed_pct"]).all()
    assert (g["gap_closed_pct"] <= g["high_pct"]).all()


def test_text_claims():
    c = table2_claims().set_index("id")
    assert c.loc["programmatic_85_ar", "derives"] is True  # log 84.50% rounds to 85
    assert "log 84.5%" in c.loc["programmatic_85_ar", "computed"]
    assert c.loc["learned_72_ar", "derives"] is False  # log 75.0%, ppl 84.3%, printed logs 75.5%
    assert "log 75.0%" in c.loc["learned_72_ar", "computed"]
    assert c.loc["abstract_97_4", "derives"] is False
    assert "programmatic" in c.loc["programmatic_85_ar", "of"]
    # programmatic selection overall, the abstract's most natural reading: 93.6% (ppl), 93.2% (log)
    assert 100 * gap_closed("+ programmatic selection", "overall", "ppl") == pytest.approx(93.63, abs=0.01)
    assert 100 * gap_closed("+ programmatic selection", "overall", "log") == pytest.approx(93.15, abs=0.01)
