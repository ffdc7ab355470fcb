"""What a Sec. 5 selection rule can see, measured on the data alone (no training): which rows of an MQAR test set
each rule selects within a budget of k rows, and how many of the query rows that covers.

``selection_coverage`` runs ``SparseAttention.selected`` (the very selection the trained hybrids use) on the
token ids of a ``make_mqar`` test set. A query row that is not selected gets no attention output in the hybrid,
so its answer must come from the BaseConv layer alone: the coverage of the programmatic rules bounds what their
hybrids gain over plain BaseConv, and on random filler it is the result (``coverage_prediction``: accuracy =
coverage x the full hybrid's accuracy + chance on the rest, checked against the records in notebook 06).
(Zoology, arXiv 2312.04927, §5, eq. (3); the rules are documented in ``mqar_theory.mixers.sparse_attention``.)

On zero filler (the paper's MQAR configs) the tokens that repeat are the K queries and the filler token, so
``repeats="first"`` keeps the K queries plus one filler row and covers every query once k >= K + 1: the easy
case, where the programmatic hybrid is full attention on the rows that matter by construction. With random
filler (``random_non_queries=True``) filler tokens repeat each other and the keys, and the rules differ:
``"first"`` misses every query whose key already recurred in the filler, ``"all"`` (eq. (3) literally) finds
every query but spends the budget on filler repeats.
"""

from __future__ import annotations

__all__ = ["selection_coverage", "spec_coverage", "coverage_prediction", "selection_rows", "learned_selection",
           "paired_curves", "recorded_or_trained",
           "PROGRAMMATIC_RULES", "CELL_KEYS", "TABLE2_ANALOGUES", "table2_beside"]

#: (rule name as ``hybrid_rule`` gives it, SparseAttention's ``repeats``)
PROGRAMMATIC_RULES = (("programmatic/first", "first"), ("programmatic/all", "all"))


def selection_coverage(ks, *, vocab_size: int, seq_len: int, num_kv_pairs: int, num_examples: int = 500,
                       seed: int = 0, random_non_queries: bool = False, power_a: float = 0.01):
    """One row per (rule, k) for the programmatic rules on the test set ``make_mqar(vocab_size, seq_len,
    num_kv_pairs, num_examples, seed, random_non_queries, power_a)``: ``query_coverage`` (fraction of the query
    rows selected), ``rows_selected`` (mean rows selected per sequence), ``candidates`` (mean rows the rule
    would select without a budget) and ``queries`` (K)."""
    import pandas as pd
    import torch

    from ..data import IGNORE_INDEX, make_mqar
    from ..mixers.sparse_attention import SparseAttention
    from ..utils import is_int

    ks = list(ks)
    if not ks or not all(is_int(k) and k >= 1 for k in ks):
        raise ValueError(f"ks={ks!r}: must be a non-empty list of integers >= 1")
    data = make_mqar(vocab_size=vocab_size, seq_len=seq_len, num_kv_pairs=num_kv_pairs, num_examples=num_examples,
                     seed=seed, random_non_queries=random_non_queries, power_a=power_a)
    query = data.labels != IGNORE_INDEX  # (B, N)
    u = torch.zeros(*data.inputs.shape, 1)  # (B, N, 1): the programmatic rules read the tokens only
    rows = []
    for rule, repeats in PROGRAMMATIC_RULES:
        unbounded = SparseAttention(1, seq_len, selection="programmatic", k=seq_len, repeats=repeats)
        cand = unbounded.selected(u, data.inputs)
        for k in ks:
            sel = SparseAttention(1, seq_len, selection="programmatic", k=int(k), repeats=repeats).selected(
                u, data.inputs)  # (B, N) bool
            rows.append(dict(rule=rule, k=int(k), query_coverage=float((sel & query).sum() / query.sum()),
                             rows_selected=float(sel.sum(1).double().mean()),
                             candidates=float(cand.sum(1).double().mean()), queries=int(num_kv_pairs)))
    return pd.DataFrame(rows)


def coverage_prediction(summary, coverage, *, vocab_size: int, full: str = "hybrid_attention"):
    """Is a programmatic hybrid's accuracy its rule's coverage and nothing more? One row per programmatic (rule, k)
    of ``summary`` (a ``hybrid_summary`` table of one (N, d) cell) with its ``coverage`` row (``selection_coverage``
    / ``spec_coverage``, same N): ``coverage``, ``accuracy`` (mean over seeds; ``accuracy_min`` / ``_max``),
    ``full_accuracy`` (the model ``full``: the same backbone with full attention), ``chance`` = 2 / ``vocab_size``
    (one of the c/2 value tokens), ``predicted`` = coverage · full_accuracy + (1 − coverage) · chance and
    ``residual`` = accuracy − predicted.

    The hypothesis the prediction states: a query the rule selects attends to every earlier row, as in the full
    hybrid, so it is answered as there; a query it does not select outputs 0 from the sparse layer and is answered
    from the residual stream and the hybrid's other layer (a k = 3 BaseConv, which sees two tokens back: no recall),
    i.e. at chance among the values. Small residuals say the selection rule is the whole result: the trained
    hybrid adds nothing to what the rule, which reads the token ids from outside the residual stream, already
    decided. It is a measurement the records could contradict (a hybrid that learned to answer uncovered queries
    some other way would sit above the line), not a bound."""
    import pandas as pd

    from ..utils import is_int
    from .gap import _check_columns

    if not (is_int(vocab_size) and vocab_size >= 2):
        raise ValueError(f"vocab_size={vocab_size!r}: must be an integer >= 2")
    _check_columns(summary, ["seq_len", "model", "rule", "k", "accuracy", "accuracy_min", "accuracy_max"], "summary")
    if summary["seq_len"].nunique() != 1 or ("d_model" in summary and summary["d_model"].nunique() != 1):
        raise ValueError("summary: must hold one (seq_len, d_model) cell")
    n = int(summary["seq_len"].iloc[0])
    top = summary[summary["model"] == full]
    if top.empty:
        raise ValueError(f"full={full!r}: no such model in summary")
    acc_full, chance = float(top["accuracy"].iloc[0]), 2.0 / vocab_size
    cov = coverage[coverage["seq_len"] == n].set_index(["rule", "k"])["query_coverage"]
    rows = []
    for r in summary[summary["rule"].isin([rule for rule, _ in PROGRAMMATIC_RULES])].itertuples(index=False):
        key = (r.rule, int(r.k))
        if key not in cov.index:
            raise ValueError(f"coverage: no row for rule {r.rule!r}, k = {int(r.k)} at seq_len {n}")
        c = float(cov[key])
        predicted = c * acc_full + (1 - c) * chance
        rows.append(dict(rule=r.rule, k=int(r.k), model=r.model, coverage=c, accuracy=float(r.accuracy),
                         accuracy_min=float(r.accuracy_min), accuracy_max=float(r.accuracy_max),
                         full_accuracy=acc_full, chance=chance, predicted=predicted,
                         residual=float(r.accuracy) - predicted))
    return pd.DataFrame(rows).sort_values(["rule", "k"]).reset_index(drop=True)


def selection_rows(records):
    """One row per (record, measured sparse layer) of the records that carry ``selection`` (what the layer selected
    on the test set, ``mqar_theory.selection``): ``hash``, ``model``, ``layer``, ``selection``, ``budget``, ``k``,
    ``rows_per_sequence``, ``queries_per_sequence``, ``precision``, ``recall``. Records without it (trained before
    the measurement existed, or with no learned or programmatic sparse layer) give no row."""
    import pandas as pd

    cols = ["hash", "model", "layer", "selection", "budget", "k", "rows_per_sequence", "queries_per_sequence",
            "precision", "recall"]
    rows = [{"hash": r["hash"], "model": r["model"], **s} for r in records for s in (r.get("selection") or [])]
    return pd.DataFrame(rows, columns=cols)


def learned_selection(best, records, *, baseconv: float, full: dict, min_gap: float = 0.2):
    """The learned selectors of a ``select_best`` table, one row per model: its sparse layer's options read from
    the record (``k``, ``budget``, ``straight_through``, ``aux_weight``, ``filter``: the BaseConv below it, "long"
    for kernel_size -1 else "short"), ``accuracy`` (mean over seeds; min, max), ``rows_per_sequence``,
    ``precision``, ``recall`` (means over the seeds' best runs, ``selection_rows``) and ``gap_closed``
    ((accuracy - ``baseconv``) / (``full[filter]`` - ``baseconv``): the gap from plain BaseConv to the same
    backbone, the same filter below, with full attention; ``full`` maps "long" and "short" to those accuracies;
    NaN when that gap is below ``min_gap``)."""
    import math

    import pandas as pd

    from .gap import _layers

    sel = selection_rows(records).drop(columns=["model"])
    b = best.merge(sel, on="hash", how="inner")
    out = []
    for model, g in b.groupby("model", sort=False):
        kw = _layers(g["mixer_kwargs"].iloc[0])
        layer = kw[int(g["layer"].iloc[0]) % len(kw)]
        below = kw[(int(g["layer"].iloc[0]) - 1) % len(kw)]
        acc = float(g["test_accuracy"].mean())
        filt = "long" if below.get("kernel_size") == -1 else "short"
        if filt not in full:
            raise ValueError(f"full: no accuracy for the {filt!r} filter (model {model!r}); got {sorted(full)}")
        gap = full[filt] - baseconv
        out.append(dict(model=model, k=int(layer.get("k", 64)), budget=layer.get("budget", "causal"),
                        straight_through=bool(layer.get("straight_through", False)),
                        aux_weight=float(layer.get("aux_weight", 1.0)), filter=filt,
                        accuracy=acc, accuracy_min=float(g["test_accuracy"].min()),
                        accuracy_max=float(g["test_accuracy"].max()), seeds=len(g),
                        rows_per_sequence=float(g["rows_per_sequence"].mean()),
                        precision=float(g["precision"].mean()) if g["precision"].notna().all() else math.nan,
                        recall=float(g["recall"].mean()),
                        gap_closed=(acc - baseconv) / gap if gap >= min_gap else math.nan))
    return pd.DataFrame(out)


#: the config keys that name a cell of a hybrids sweep (two models are compared run by run on these)
CELL_KEYS = ("seq_len", "num_kv_pairs", "d_model", "lr", "seed", "random_non_queries")


def paired_curves(records, model_a: str, model_b: str):
    """Run-by-run comparison of two models of a sweep (``load_records`` output): one row per cell
    (``CELL_KEYS`` of the config) that both models ran, with both final test accuracies, ``same_accuracy`` and
    ``same_curve`` (the per-epoch test accuracies of the two records' histories equal, exactly)."""
    import pandas as pd

    def runs(model):
        out = {}
        for r in records:
            if r.get("model") == model and r.get("status") == "ok":
                key = tuple(r["config"].get(k) for k in CELL_KEYS)
                out[key] = (r["metrics"]["test_accuracy"], [h.get("test_accuracy") for h in r.get("history", [])])
        return out

    a, b = runs(model_a), runs(model_b)
    rows = []
    for key in sorted(set(a) & set(b), key=repr):
        (acc_a, cur_a), (acc_b, cur_b) = a[key], b[key]
        rows.append({**dict(zip(CELL_KEYS, key, strict=True)), f"accuracy_{model_a}": acc_a,
                     f"accuracy_{model_b}": acc_b, "same_accuracy": acc_a == acc_b, "same_curve": cur_a == cur_b})
    return pd.DataFrame(rows)


def spec_coverage(spec, num_examples: int | None = None):
    """``selection_coverage`` for every task of a hybrids sweep spec (a name, path, mapping or ``Spec``) on the
    test set its runs are evaluated on (``make_mqar`` with the spec's vocabulary, filler and ``test_seed``,
    default ``data_seed + TEST_SEED_OFFSET``; ``num_examples`` default: the spec's ``num_test``), at the budgets
    k of its sparse models: one row per (seq_len, num_kv_pairs, rule, k)."""
    import pandas as pd

    from ..train import TEST_SEED_OFFSET
    from .gap import hybrid_rule
    from .spec import load_spec

    s = load_spec(spec)
    rows = []
    for run in s.runs():
        c = run.config
        rule, k = hybrid_rule(c.get("mixer", "attention"), c.get("mixer_kwargs"))
        if k is not None and rule.startswith("programmatic"):
            test_seed = c.get("test_seed")
            rows.append(dict(seq_len=c["seq_len"], num_kv_pairs=c["num_kv_pairs"], vocab_size=c["vocab_size"],
                             random_non_queries=bool(c.get("random_non_queries", False)),
                             power_a=c.get("power_a", 0.01), num_test=c.get("num_test", 1000), k=k,
                             seed=int(c.get("data_seed", 0)) + TEST_SEED_OFFSET if test_seed is None else test_seed))
    if not rows:
        raise ValueError(f"spec={s.name!r}: no sparse model with programmatic selection")
    cells = pd.DataFrame(rows).drop_duplicates()
    out = []
    keys = ["seq_len", "num_kv_pairs", "vocab_size", "random_non_queries", "power_a", "num_test", "seed"]
    for key, g in cells.groupby(keys, sort=True):
        kw = dict(zip(keys, key, strict=True))
        n_test = int(kw.pop("num_test")) if num_examples is None else int(num_examples)
        cov = selection_coverage(sorted(set(g["k"])), num_examples=n_test, **{k: v for k, v in kw.items()})
        out.append(cov.assign(seq_len=kw["seq_len"], num_kv_pairs=kw["num_kv_pairs"],
                              random_non_queries=kw["random_non_queries"]))
    cols = ["seq_len", "num_kv_pairs", "random_non_queries", "rule", "k", "query_coverage", "rows_selected",
            "candidates"]
    return pd.concat(out, ignore_index=True)[cols]


def recorded_or_trained(spec, results_dir, *, train: bool, **run_kw):
    """The records of a sweep, without writing anything when every run is already recorded.

    Returns ``(df, status)``: every run recorded -> (``load_results`` rows of the spec's runs, ``"recorded"``);
    else with ``train`` -> (``run_sweep(spec, results_dir, **run_kw)``, ``"trained"``); else -> (None,
    ``"pending: m of n runs not recorded"``). Reading only (no ``table.csv`` rewrite) keeps a redraw from
    touching the committed results."""
    from .spec import load_spec
    from .store import load_results
    from .sweep import plan, run_sweep

    s = load_spec(spec)
    p = plan(s, results_dir)
    if len(p) and bool(p["recorded"].all()):
        df = load_results(results_dir)
        return df[df["hash"].isin(set(p["hash"]))].reset_index(drop=True), "recorded"
    if train:
        return run_sweep(s, results_dir, **run_kw), "trained"
    return None, f"pending: {int((~p['recorded']).sum())} of {len(p)} runs not recorded"


#: Table 2 row -> our rules (``hybrid_rule`` names) of the MQAR analogue
TABLE2_ANALOGUES = {
    "+ random selection": ("random",),
    "+ programmatic selection": ("programmatic/all", "programmatic/first"),
    "+ learned selection": ("learned",),
    "+ full attention in 3 of 48 layers": ("full",),
}


def table2_beside(summaries: dict):
    """The paper's Table 2 gap closed (360M block; AR-hit slice in log space, the paper's reading, and overall
    in perplexity) beside ours: one row per (Table 2 row, our rule) and one column per profile of
    ``summaries`` ({profile: ``hybrid_summary``}) holding our fraction of the MQAR accuracy gap closed at each
    budget ("k=4: 0.35; k=8: 0.61"; "" where not measured; one entry per (N, d) cell, prefixed by it when the
    profile has several)."""
    import math

    import pandas as pd

    from .table2 import gap_closed

    rows = []
    for paper_row, rules in TABLE2_ANALOGUES.items():
        for rule in rules:
            row = {"Table 2 row (360M, Pile)": paper_row,
                   "paper: AR gap closed, log (%)": 100 * gap_closed(paper_row, "AR hits", "log"),
                   "paper: overall gap closed, ppl (%)": 100 * gap_closed(paper_row, "overall", "ppl"),
                   "our rule (MQAR)": rule}
            for profile, s in summaries.items():
                at = s[s["rule"] == rule]
                cells = sorted(set(zip(at["seq_len"], at["d_model"], strict=True)))
                parts = []
                for n, d in cells:
                    r = at[(at["seq_len"] == n) & (at["d_model"] == d)].sort_values("k")
                    vals = "; ".join((f"k={int(k)}: " if not math.isnan(k) else "") +
                                     ("n/m" if math.isnan(g) else f"{g:.2f}") for k, g in zip(r["k"], r["gap_closed"],
                                                                                               strict=True))
                    parts.append(f"N={n}, d={d}: {vals}" if len(cells) > 1 else vals)
                row[f"ours: {profile}"] = " | ".join(parts)
            rows.append(row)
    return pd.DataFrame(rows)
