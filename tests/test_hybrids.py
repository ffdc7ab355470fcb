"""The Sec. 5 hybrids on random filler: the selection rules on hand-made and generated MQAR instances (eq. (3)
literally, repeats="all", against the first-repeat variant), the query coverage against a naive loop, the k sweep
of the shipped specs, the zero-filler profile kept with its records, the run-by-run comparison, the figure."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import yaml

from mqar_theory.data import IGNORE_INDEX, make_mqar
from mqar_theory.mixers import get_mixer
from mqar_theory.sweep import load_spec, plan
from mqar_theory.sweep.gap import hybrid_rule, hybrid_summary
from mqar_theory.sweep.hybrids import paired_curves, selection_coverage
from mqar_theory.sweep.spec import SWEEPS_DIR

REPO = SWEEPS_DIR.parent


def select(x, repeats, k=64):
    x = torch.as_tensor([x])
    m = get_mixer("sparse_attention", 4, x.shape[1], selection="programmatic", k=k, repeats=repeats)
    return m.selected(torch.zeros(1, x.shape[1], 4), x)[0].long().tolist()


# --- the rules on a hand-made random-filler instance ----------------------------------------------------------
#  positions  0  1  2  3 | 4  5  6  7  8  9 10 11
#  tokens     5  9  6 11 | 5  3  3  6  7  5  3  8      K = 2 keys (5, 6); filler 3, 7, 8 and key 5 recurring
#  queries          -    |             6 (pos 7)  5 (pos 9): key 5 repeated in the filler at pos 4 first
HAND = [5, 9, 6, 11, 5, 3, 3, 6, 7, 5, 3, 8]
QUERIES = [7, 9]


def test_first_and_all_select_different_rows_on_random_filler():
    first, every = select(HAND, "first"), select(HAND, "all")
    assert first == [0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0]  # second occurrences only: 5@4, 3@6, 6@7
    assert every == [0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0]  # eq. (3): every row whose token occurred earlier
    assert first != every
    assert [first[q] for q in QUERIES] == [1, 0]  # "first" misses the query of key 5 (its 3rd occurrence)
    assert [every[q] for q in QUERIES] == [1, 1]


def test_causal_budget_is_first_come_first_served():
    assert select(HAND, "all", k=2) == [0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]  # budget spent on filler repeats
    assert select(HAND, "all", k=4) == [0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0]
    assert select(HAND, "first", k=2) == [0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0]


def test_zero_filler_first_selects_exactly_the_queries_and_one_filler_row():
    d = make_mqar(vocab_size=64, seq_len=64, num_kv_pairs=4, num_examples=50, seed=3)
    m = get_mixer("sparse_attention", 4, 64, selection="programmatic", k=64)
    sel = m.selected(torch.zeros(50, 64, 4), d.inputs)
    query = d.labels != IGNORE_INDEX
    assert bool((sel & query).sum() == query.sum())  # every query
    extra = sel & ~query
    assert extra.sum(1).tolist() == [1] * 50  # plus the filler 0's second occurrence
    assert bool((d.inputs[extra] == 0).all())


def coverage_reference(inputs, labels, repeats, k):
    """Naive: walk each row, count candidates, keep the first k, count the covered queries."""
    hit = total = 0
    rows = 0
    for x, y in zip(inputs.tolist(), labels.tolist(), strict=True):
        seen, used = {}, 0
        for i, t in enumerate(x):
            c = seen.get(t, 0)
            cand = c >= 1 if repeats == "all" else c == 1
            take = cand and used < k
            used += take
            if y[i] != IGNORE_INDEX:
                total += 1
                hit += take
            seen[t] = c + 1
        rows += used
    return hit / total, rows / len(inputs)


@pytest.mark.parametrize("random_non_queries", [False, True])
def test_selection_coverage_against_a_loop(random_non_queries):
    kw = dict(vocab_size=32, seq_len=32, num_kv_pairs=2, num_examples=40, seed=5, random_non_queries=random_non_queries)
    cov = selection_coverage([2, 4, 8], **kw).set_index(["rule", "k"])
    d = make_mqar(vocab_size=32, seq_len=32, num_kv_pairs=2, num_examples=40, seed=5,
                  random_non_queries=random_non_queries)
    for rule, repeats in (("programmatic/first", "first"), ("programmatic/all", "all")):
        for k in (2, 4, 8):
            want, rows = coverage_reference(d.inputs, d.labels, repeats, k)
            assert cov.loc[(rule, k), "query_coverage"] == pytest.approx(want)
            assert cov.loc[(rule, k), "rows_selected"] == pytest.approx(rows)
    if random_non_queries:  # the rules differ; with zero filler "first" covers every query once k > K
        assert cov.loc[("programmatic/first", 8), "query_coverage"] < cov.loc[("programmatic/all", 8),
                                                                                "query_coverage"]
    else:
        assert cov.loc[("programmatic/first", 4), "query_coverage"] == 1.0
    with pytest.raises(ValueError, match="ks="):
        selection_coverage([0], **kw)


# --- the shipped specs ----------------------------------------------------------------------------------------
def spec_models(name):
    return yaml.safe_load((SWEEPS_DIR / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["hybrids_smoke", "hybrids_cpu", "hybrids_paper"])
def test_random_filler_specs_sweep_k_and_both_rules(name):
    raw = spec_models(name)
    spec = load_spec(name)
    assert spec.name == name and raw["base"]["random_non_queries"] is True
    rules = {m: hybrid_rule(c["mixer"], c.get("mixer_kwargs")) for m, c in raw["models"].items()}
    ends = {r for r, _ in rules.values() if r in ("attention", "full", "-")}
    assert ends == {"attention", "full", "-"}
    tasks = [t if isinstance(t, list) else [t["seq_len"], t["num_kv_pairs"]] for t in raw["axes"]["task"]]
    for rule in ("programmatic/first", "programmatic/all", "learned", "random"):
        ks = {k for r, k in rules.values() if r == rule}
        for _, K in tasks:  # at least K and 2K everywhere; K, 2K, 4K outside the smoke profile
            want = {K, 2 * K} if name == "hybrids_smoke" else {K, 2 * K, 4 * K}
            assert want <= ks, (rule, K, ks)
    if name == "hybrids_cpu":
        axes = raw["axes"]
        assert len(axes["lr"]) >= 2 and len(axes["seed"]) >= 2
        assert "mqar-theory sweep hybrids_cpu" in (SWEEPS_DIR / "hybrids_cpu.yaml").read_text()


def test_zero_filler_profile_keeps_its_records():
    p = plan("hybrids_zero_filler_cpu", REPO / "results" / "hybrids_zero_filler_cpu")
    assert p["bracket"].isna().sum() == 24 and p["recorded"].all()  # the grid's 24 and the lrs lr_bracket added
    assert not spec_models("hybrids_zero_filler_cpu")["base"].get("random_non_queries", False)


def test_zero_filler_programmatic_equals_full_attention_run_by_run():
    """The review finding the random-filler profile answers: on zero filler the programmatic hybrid's records
    are those of BaseConv + full attention (same accuracy and curve in every cell)."""
    from mqar_theory.sweep import load_records

    pairs = paired_curves(load_records(REPO / "results" / "hybrids_zero_filler_cpu"), "sparse_programmatic",
                          "hybrid_attention")
    assert len(pairs) == 4 and pairs["same_accuracy"].all() and pairs["same_curve"].all()
    other = paired_curves(load_records(REPO / "results" / "hybrids_zero_filler_cpu"), "sparse_random",
                          "hybrid_attention")
    assert len(other) == 4 and not other["same_accuracy"].any()


def test_paired_curves_hand_case():
    def rec(model, acc, curve, seed=0):
        return {"model": model, "status": "ok", "config": {"seq_len": 8, "num_kv_pairs": 1, "d_model": 4, "lr": 1e-3,
                                                           "seed": seed}, "metrics": {"test_accuracy": acc},
                "history": [{"test_accuracy": a} for a in curve]}

    recs = [rec("a", 0.5, [0.1, 0.5]), rec("b", 0.5, [0.2, 0.5]), rec("a", 0.9, [0.9], seed=1), rec("b", 0.9, [0.9], 1),
            rec("c", 0.1, [0.1])]
    p = paired_curves(recs, "a", "b")
    assert p["same_accuracy"].tolist() == [True, True] and p["same_curve"].tolist() == [False, True]
    assert paired_curves(recs, "a", "missing").empty


# --- rules read from records; the figure ---------------------------------------------------------------------
def test_hybrid_rule():
    sp = ["baseconv", "sparse_attention"]
    assert hybrid_rule(sp, [{"kernel_size": 3}, {"selection": "programmatic", "k": 8}]) == ("programmatic/first", 8)
    assert hybrid_rule(json.dumps(sp), json.dumps([{}, {"selection": "programmatic", "repeats": "all", "k": 4}])) == (
        "programmatic/all", 4)
    assert hybrid_rule("baseconv+sparse_attention", [{}, {"selection": "random", "k": 2}]) == ("random", 2)
    assert hybrid_rule(sp, math.nan) == ("programmatic/first", 64)  # the mixer's defaults
    assert hybrid_rule("attention") == ("attention", None)
    assert hybrid_rule(["baseconv", "attention"], [{"kernel_size": 3}, {}]) == ("full", None)
    assert hybrid_rule("baseconv", [{"kernel_size": 3}, {"kernel_size": -1}]) == ("-", None)
    with pytest.raises(ValueError, match="different rules"):
        hybrid_rule(sp * 2, [{}, {"selection": "random", "k": 2}, {}, {"selection": "learned", "k": 2}])
    with pytest.raises(ValueError, match="mixer="):
        hybrid_rule(3)


def k_sweep_table():
    rows = []
    ends = {"attention": ("attention", None, 0.99, 30000.0), "baseconv": ("baseconv", None, 0.25, 7000.0),
            "hybrid_attention": (["baseconv", "attention"], [{"kernel_size": 3}, {}], 0.999, 18000.0)}
    for m, (mixer, kw, acc, fl) in ends.items():
        for seed in (0, 1):
            rows.append(dict(model=m, mixer=mixer, mixer_kwargs=kw, seq_len=64, d_model=32, num_kv_pairs=4, seed=seed,
                             test_accuracy=acc, flops_per_token=fl))
    for rule, repeats in (("programmatic", "first"), ("programmatic", "all"), ("learned", None), ("random", None)):
        for k in (4, 8, 16):
            kw = [{"kernel_size": 3}, {"selection": rule, "k": k, **({"repeats": repeats} if repeats else {})}]
            for seed in (0, 1):
                rows.append(dict(model=f"{rule}_{repeats}_k{k}", mixer=["baseconv", "sparse_attention"],
                                 mixer_kwargs=kw, seq_len=64, d_model=32, num_kv_pairs=4, seed=seed,
                                 test_accuracy=0.2 + 0.04 * k + 0.01 * seed, flops_per_token=8000.0 + 60 * k))
    return pd.DataFrame(rows)


def test_summary_of_a_k_sweep_and_its_figure():
    from mqar_theory.sweep.hybrid_figures import plot_hybrids

    s = hybrid_summary(k_sweep_table()).set_index("model")
    assert s.loc["programmatic_all_k8", "rule"] == "programmatic/all" and s.loc["programmatic_all_k8", "k"] == 8
    assert s.loc["programmatic_first_k4", "accuracy"] == pytest.approx(0.365)  # mean of two seeds
    assert s.loc["programmatic_first_k4", "accuracy_max"] - s.loc["programmatic_first_k4", "accuracy_min"] == (
        pytest.approx(0.01))
    assert s.loc["programmatic_first_k4", "seeds"] == 2
    assert s.loc["random_None_k16", "gap_closed"] == pytest.approx((0.845 - 0.25) / 0.74)
    fig = plot_hybrids(s.reset_index(), title="t")
    top = fig.axes[0]
    assert len(top.containers) == 4 + 3  # a line per rule, a point per end model
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == ["0", "4", "8", "16", "N=64"]
    with pytest.raises(ValueError, match="summary: missing column"):
        plot_hybrids(s.reset_index().drop(columns="gap_closed"))


# --- coverage as the result; what a learned selector selects ---------------------------------------------------
def _summary(rows):
    return pd.DataFrame([dict(seq_len=64, d_model=32, model=m, rule=r, k=k, accuracy=a, accuracy_min=a - 0.01,
                              accuracy_max=a + 0.01) for m, r, k, a in rows])


def test_coverage_prediction_is_coverage_times_the_full_hybrid_plus_chance():
    from mqar_theory.sweep.hybrids import coverage_prediction

    s = _summary([("hybrid_attention", "full", math.nan, 0.9), ("baseconv", "-", math.nan, 0.25),
                  ("p_all_4", "programmatic/all", 4, 0.5), ("p_first_8", "programmatic/first", 8, 0.3),
                  ("learned_4", "learned", 4, 0.05)])
    cov = pd.DataFrame([dict(seq_len=64, rule="programmatic/all", k=4, query_coverage=0.5),
                        dict(seq_len=64, rule="programmatic/first", k=8, query_coverage=0.25)])
    t = coverage_prediction(s, cov, vocab_size=64)
    assert list(zip(t["rule"], t["k"])) == [("programmatic/all", 4), ("programmatic/first", 8)]  # not learned
    assert t["predicted"].tolist() == pytest.approx([0.5 * 0.9 + 0.5 / 32, 0.25 * 0.9 + 0.75 / 32])
    assert t["residual"].tolist() == pytest.approx([0.5 - 0.45 - 0.5 / 32, 0.3 - 0.225 - 0.75 / 32])
    with pytest.raises(ValueError, match="full='attention'"):
        coverage_prediction(s, cov, vocab_size=64, full="attention")
    with pytest.raises(ValueError, match="vocab_size"):
        coverage_prediction(s, cov, vocab_size=1)
    with pytest.raises(ValueError, match="no row for rule 'programmatic/first', k = 8"):
        coverage_prediction(s, cov.iloc[:1], vocab_size=64)
    from mqar_theory.sweep.hybrid_figures import plot_accuracy_vs_coverage

    fig = plot_accuracy_vs_coverage(t, title="t")
    assert len(fig.axes[0].lines) >= 1 and len(fig.axes[0].texts) == 2
    with pytest.raises(ValueError, match="no rows"):
        plot_accuracy_vs_coverage(t.iloc[:0])


def test_learned_selection_reads_the_records_selection():
    from mqar_theory.sweep.hybrids import learned_selection, selection_rows

    kw = json.dumps([{"kernel_size": -1}, {"selection": "learned", "k": 8, "budget": "threshold",
                                           "straight_through": True, "aux_weight": 0.1}])
    records = [{"hash": h, "model": "m", "selection": [{"layer": 1, "selection": "learned", "budget": "threshold",
                                                        "k": 8, "rows_per_sequence": rows, "queries_per_sequence": 4.0,
                                                        "precision": p, "recall": r}]}
               for h, rows, p, r in (("a", 10.0, 0.4, 1.0), ("b", 6.0, 0.5, 0.75), ("c", 3.0, 0.1, 0.1))]
    records.append({"hash": "d", "model": "baseconv"})
    assert selection_rows(records)["hash"].tolist() == ["a", "b", "c"]
    best = pd.DataFrame([dict(hash=h, model="m", mixer_kwargs=kw, test_accuracy=a) for h, a in (("a", 0.9),
                                                                                                  ("b", 0.7))])
    # "c" is not a best run
    (row,) = learned_selection(best, records, baseconv=0.3, full={"long": 0.9}).to_dict("records")
    assert (row["k"], row["budget"], row["straight_through"], row["aux_weight"], row["filter"]) == (
        8, "threshold", True, 0.1, "long")
    assert row["rows_per_sequence"] == 8.0 and row["precision"] == pytest.approx(0.45)
    assert row["recall"] == pytest.approx(0.875) and row["gap_closed"] == pytest.approx((0.8 - 0.3) / 0.6)
    assert math.isnan(learned_selection(best, records, baseconv=0.3, full={"long": 0.4})["gap_closed"].iloc[0])
    with pytest.raises(ValueError, match="no accuracy for the 'long' filter"):
        learned_selection(best, records, baseconv=0.3, full={"short": 0.9})


def test_learned_selection_figure():
    from mqar_theory.sweep.hybrid_figures import plot_learned_selection

    rows = [dict(k=k, budget="threshold", straight_through=st, aux_weight=1.0, filter="long", accuracy=0.5,
                 accuracy_min=0.4, accuracy_max=0.6, rows_per_sequence=1.5 * k, precision=0.3, recall=0.8)
            for st in (True, False) for k in (4, 8, 16, 32)]
    fig = plot_learned_selection(pd.DataFrame(rows), title="t")
    assert len(fig.axes) == 4 and len(fig.legends[0].get_texts()) == 2
    with pytest.raises(ValueError, match="missing column"):
        plot_learned_selection(pd.DataFrame(rows).drop(columns=["recall"]))
