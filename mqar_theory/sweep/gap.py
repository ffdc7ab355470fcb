"""Closing the gap to attention (Zoology, arXiv 2312.04927): the claims of Figure 2's bottom row (Sec. 4.3,
input-dependent filters) and of the Sec. 5 sparse-attention hybrids, checked on a ``select_best`` table.

``input_dependence_claims``: per sequence length, the widths at which the programmatic input-dependent filter
reaches ``solved`` while plain BaseConv stays below it; the claim holds at N when there is at least one such
width. The autocorrelation filter is reported (widths where it beats plain BaseConv), not claimed;
``autocorrelation_gain`` gives its accuracy minus plain BaseConv's per width, for the plain filter and its variants.
``plateau_excess`` asks whether a gain could be hidden by the learning rate: per (model, N, d), the highest accuracy
any lr and seed of the grid reached, against 1/K, the accuracy of a model that has learned which K values the
sequence holds but not which key each belongs to (the plateau MQAR training sits on before recall is learned).

``hybrid_rule``: what a model's attention layer does, read from its record (``mixer`` and ``mixer_kwargs``):
``attention`` (every layer attention), ``full`` (a hybrid with a full attention layer), ``programmatic/first``,
``programmatic/all`` (eq. (3) with ``repeats="first"`` / ``"all"``), ``learned``, ``random``, or ``-`` (no
attention at all: plain BaseConv), with the budget k of a sparse layer.

``hybrid_summary``: per (seq_len, d_model, model) the rule, k, the mean and spread over seeds of the accuracy,
the mixers' FLOPs per token, and the fraction of the attention-BaseConv gap closed, (acc - acc_BaseConv) /
(acc_attention - acc_BaseConv), measured only where the gap is at least ``min_gap``. ``hybrid_claims``: one row
per sparse model with whether it closes at least ``most`` of the gap (programmatic and learned selection are
claimed to, random selection is claimed not to); ``claim_verdicts`` condenses them per claim and rule.

Decisions: accuracies are means over seeds of the per-seed best (as ``cell_table``); a claim with nothing to
check (a model missing at (N, d), a gap below ``min_gap``) reports ``holds = None``, never True; every sparse
model is judged on its own (a rule at several budgets k gives one verdict per k, none is picked after the fact).
The paper's Table 2 (Pile language models) is quoted in ``mqar_theory.sweep.table2``.
"""

from __future__ import annotations

import json
import math

from .store import succeeded

__all__ = ["input_dependence_claims", "autocorrelation_gain", "plateau_excess", "hybrid_summary", "hybrid_claims",
           "claim_verdicts", "selection_rule", "hybrid_rule", "HYBRID_CLAIMS", "SPARSE_RULES"]  # fmt: skip

#: claim id -> (selection family, closes the gap?, statement); "programmatic" covers both repeats variants
HYBRID_CLAIMS = {
    "programmatic_closes_gap": ("programmatic", True, "programmatic selection closes most of the gap"),
    "learned_closes_gap": ("learned", True, "learned selection closes most of the gap"),
    "random_does_not_close_gap": ("random", False, "random selection (control) does not close most of the gap"),
}
#: the rules of a sparse-attention layer, as ``hybrid_rule`` names them
SPARSE_RULES = ("programmatic/first", "programmatic/all", "learned", "random")


def _check_fraction(name: str, v) -> None:
    if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v <= 1):
        raise ValueError(f"{name}={v!r}: must be a number in (0, 1]")


def _check_columns(df, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}")


def _acc(best, metric: str):
    """Mean over seeds of ``metric``: a Series indexed by (seq_len, model, d_model)."""
    return best.groupby(["seq_len", "model", "d_model"])[metric].mean()


def input_dependence_claims(best, solved: float = 0.9, metric: str = "test_accuracy", baseconv: str = "baseconv",
                            programmatic: str = "baseconv_programmatic",
                            autocorrelation: str = "baseconv_autocorrelation"):
    """Figure 2 (bottom row) on a ``select_best`` table: one row per sequence length with the widths where
    ``programmatic`` reaches ``solved`` and ``baseconv`` does not (``widths_programmatic_solves_baseconv_fails``),
    each model's smallest solving width (None if none), the widths where ``autocorrelation`` is above
    ``baseconv`` (reported only), ``holds`` (True: at least one such width; False: none; None: the two models
    share no width at that N) and ``detail``."""
    import pandas as pd

    _check_fraction("solved", solved)
    _check_columns(best, ["model", "seq_len", "d_model", metric], "best")
    acc = _acc(best, metric)
    rows = []
    for n in sorted(best["seq_len"].unique()):
        at = acc.xs(n, level="seq_len")

        def widths(model, at=at):
            return at.xs(model, level="model") if model in at.index.get_level_values("model") else pd.Series(
                dtype=float)

        base, prog, auto = widths(baseconv), widths(programmatic), widths(autocorrelation)
        shared = sorted(set(base.dropna().index) & set(prog.dropna().index))
        wins = [int(d) for d in shared if base[d] < solved <= prog[d]]
        above = [int(d) for d in sorted(set(base.dropna().index) & set(auto.dropna().index)) if auto[d] > base[d]]

        def smallest(s):
            solving = [int(d) for d, a in s.items() if a >= solved]
            return min(solving) if solving else None

        holds = None if not shared else bool(wins)
        if holds is None:
            detail = f"no width with both {baseconv} and {programmatic} runs"
        else:
            detail = (f"{programmatic} >= {solved} > {baseconv} at d in {wins}" if wins else
                      f"no width where {programmatic} >= {solved} > {baseconv} (widths {[int(d) for d in shared]})")
        rows.append(dict(seq_len=int(n), widths_programmatic_solves_baseconv_fails=wins,
                         programmatic_min_width=smallest(prog), baseconv_min_width=smallest(base),
                         widths_autocorrelation_above_baseconv=above, holds=holds, detail=detail))
    cols = ["seq_len", "widths_programmatic_solves_baseconv_fails", "programmatic_min_width", "baseconv_min_width",
            "widths_autocorrelation_above_baseconv", "holds", "detail"]
    # object columns: a width that no model reaches stays None (not NaN), holds stays True/False/None
    return pd.DataFrame(rows, columns=cols, dtype=object).astype({"seq_len": int})


def autocorrelation_gain(best, metric: str = "test_accuracy", baseconv: str = "baseconv",
                         prefix: str = "baseconv_autocorrelation"):
    """Figure 2 (bottom row), the autocorrelation filters against plain BaseConv on a ``select_best`` table: one
    row per (model, seq_len) for every model whose name starts with ``prefix`` (the plain filter and its
    variants), with ``gain_per_width`` ({d: acc - acc_BaseConv}, means over seeds, widths both models ran),
    ``max_gain`` and ``mean_gain`` (NaN where no width is shared)."""
    import pandas as pd

    _check_columns(best, ["model", "seq_len", "d_model", metric], "best")
    acc = _acc(best, metric)
    rows = []
    for m in sorted(x for x in best["model"].unique() if str(x).startswith(prefix)):
        for n in sorted(best.loc[best["model"] == m, "seq_len"].unique()):
            gains = {int(d): float(acc[(n, m, d)] - acc[(n, baseconv, d)])
                     for (nn, mm, d) in acc.index if nn == n and mm == m and (n, baseconv, d) in acc.index}
            vals = list(gains.values())
            rows.append(dict(model=m, seq_len=int(n), gain_per_width=gains,
                             max_gain=max(vals) if vals else math.nan,
                             mean_gain=sum(vals) / len(vals) if vals else math.nan))
    return pd.DataFrame(rows, columns=["model", "seq_len", "gain_per_width", "max_gain", "mean_gain"])


def plateau_excess(df, models, metric: str = "test_accuracy"):
    """Per (model, seq_len, d_model) of a ``load_results`` table (every lr and seed, failed runs left out) for the
    named ``models``: ``num_kv_pairs`` K, ``max_accuracy`` (the highest ``metric`` of any lr and seed), ``lr_of_max``,
    ``runs`` (how many were compared), ``chance`` = 1/K and ``excess`` = max_accuracy - 1/K. A small excess at every
    lr says the model never left the 1/K plateau within the budget, whatever the lr (module docstring)."""
    import pandas as pd

    if isinstance(models, str) or not models:
        raise ValueError(f"models={models!r}: must be a non-empty list of model names")
    _check_columns(df, ["model", "seq_len", "num_kv_pairs", "d_model", "lr", metric], "df")
    ok = succeeded(df)
    rows = []
    for model in models:
        sub = ok[ok["model"] == model]
        if sub.empty:
            raise ValueError(f"models: {model!r} has no run in the table")
        for (n, k, d), g in sub.groupby(["seq_len", "num_kv_pairs", "d_model"]):
            i = g[metric].astype(float).idxmax()
            top = float(g.loc[i, metric])
            rows.append(dict(model=model, seq_len=int(n), num_kv_pairs=int(k), d_model=int(d), max_accuracy=top,
                             lr_of_max=float(g.loc[i, "lr"]), runs=len(g), chance=1 / k, excess=top - 1 / k))
    return pd.DataFrame(rows, columns=["model", "seq_len", "num_kv_pairs", "d_model", "max_accuracy", "lr_of_max",
                                       "runs", "chance", "excess"])


def _layers(mixer_kwargs, name: str = "mixer_kwargs") -> list:
    """A record's mixer_kwargs as a list of per-layer dicts ([] for none): JSON string, dict, list or NaN."""
    kw = mixer_kwargs
    if isinstance(kw, str):
        try:
            kw = json.loads(kw)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}={mixer_kwargs!r}: not valid JSON ({e})") from None
    if kw is None or (isinstance(kw, float) and math.isnan(kw)):
        return []
    layers = kw if isinstance(kw, list) else [kw]
    if not all(isinstance(k, dict) for k in layers):
        raise ValueError(f"{name}={mixer_kwargs!r}: must be a dict or a list of dicts")
    return layers


def _mixers(mixer) -> list[str]:
    if isinstance(mixer, str):
        try:
            m = json.loads(mixer)
        except json.JSONDecodeError:
            return [mixer]
        return [m] if isinstance(m, str) else list(m)
    if isinstance(mixer, (list, tuple)):
        return [str(m) for m in mixer]
    raise ValueError(f"mixer={mixer!r}: must be a mixer name or a list of names")


def selection_rule(mixer_kwargs) -> str:
    """The selection rule(s) a record's ``mixer_kwargs`` names (a JSON string as in ``load_results``, a dict,
    or a per-layer list of dicts): the distinct ``selection`` values in layer order joined by '+', or '-' for
    none (no sparse-attention layer, or no kwargs at all)."""
    rules = list(dict.fromkeys(k["selection"] for k in _layers(mixer_kwargs) if k.get("selection")))
    return "+".join(rules) if rules else "-"


def hybrid_rule(mixer, mixer_kwargs=None) -> tuple[str, int | None]:
    """(rule, k) of a model from its record's ``mixer`` (a name, a list, or the JSON/'+'-joined form of a
    table) and ``mixer_kwargs``: ``("attention", None)`` when every layer is attention, ``("full", None)``
    for a hybrid with a full attention layer, ``("programmatic/first" | "programmatic/all" | "learned" |
    "random", k)`` for a ``sparse_attention`` layer (k its budget; the mixer's defaults when unset:
    programmatic, repeats "first", k 64), ``("-", None)`` for no attention. Several sparse layers with
    different rules or budgets are a ``ValueError`` (not a model of the Sec. 5 sweeps)."""
    import inspect

    from ..mixers.sparse_attention import SparseAttention

    names = _mixers(mixer)
    if len(names) == 1 and "+" in names[0]:
        names = names[0].split("+")
    layers = _layers(mixer_kwargs)
    defaults = {k: p.default for k, p in inspect.signature(SparseAttention).parameters.items()}
    rules = set()
    for i, name in enumerate(names):
        if name != "sparse_attention":
            continue
        kw = {**defaults, **(layers[i % len(layers)] if layers else {})}
        sel = kw["selection"]
        rules.add((f"programmatic/{kw['repeats']}" if sel == "programmatic" else sel, int(kw["k"])))
    if len(rules) > 1:
        raise ValueError(f"mixer={mixer!r}, mixer_kwargs={mixer_kwargs!r}: sparse layers with different rules {rules}")
    if rules:
        return rules.pop()
    if names and all(n == "attention" for n in names):
        return "attention", None
    return ("full", None) if "attention" in names else ("-", None)


def hybrid_summary(best, min_gap: float = 0.2, metric: str = "test_accuracy", attention: str = "attention",
                   baseconv: str = "baseconv"):
    """Sec. 5 hybrids on a ``select_best`` table: one row per (seq_len, d_model, model) with ``num_kv_pairs``
    (when the table has it), ``rule`` and ``k``
    (``hybrid_rule``; k NaN for a model without a sparse layer), ``selection`` (``selection_rule``),
    ``accuracy`` (mean over seeds of ``metric``), ``accuracy_min`` / ``accuracy_max`` (over seeds), ``seeds``,
    ``mixer_flops_per_token`` (the record's, all layers), ``gap`` (acc_attention - acc_BaseConv at that
    (N, d); NaN if either is missing) and ``gap_closed`` ((acc - acc_BaseConv) / gap where gap >= ``min_gap``,
    else NaN: not measured where there is no gap to close). Models keep the table's first-seen order."""
    import pandas as pd

    _check_fraction("min_gap", min_gap)
    _check_columns(best, ["model", "seq_len", "d_model", metric, "flops_per_token"], "best")
    kw = best["mixer_kwargs"] if "mixer_kwargs" in best else pd.Series([None] * len(best), index=best.index)
    mixer = best["mixer"] if "mixer" in best else best["model"]
    rk = [hybrid_rule(m, k) for m, k in zip(mixer, kw, strict=True)]
    b = best.assign(rule=[r for r, _ in rk], k=[math.nan if k is None else float(k) for _, k in rk],
                    selection=kw.map(selection_rule), seeds=1)
    order = {m: i for i, m in enumerate(dict.fromkeys(b["model"]))}
    extra = {"num_kv_pairs": ("num_kv_pairs", "first")} if "num_kv_pairs" in b else {}
    s = b.groupby(["seq_len", "d_model", "model"], as_index=False, sort=True).agg(
        **extra, rule=("rule", "first"), k=("k", "first"), selection=("selection", "first"),
        accuracy=(metric, "mean"), accuracy_min=(metric, "min"), accuracy_max=(metric, "max"),
        seeds=("seeds", "sum"), mixer_flops_per_token=("flops_per_token", "mean"))
    s = s.sort_values(["seq_len", "d_model", "model"], key=lambda c: c.map(order) if c.name == "model" else c,
                      kind="stable").reset_index(drop=True)
    acc = s.set_index(["seq_len", "d_model", "model"])["accuracy"]

    def at(n, d, m):
        return float(acc[(n, d, m)]) if (n, d, m) in acc.index else math.nan

    cells = list(zip(s["seq_len"], s["d_model"], strict=True))
    s["gap"] = [at(n, d, attention) - at(n, d, baseconv) for n, d in cells]
    base = pd.Series([at(n, d, baseconv) for n, d in cells], index=s.index)
    s["gap_closed"] = (s["accuracy"] - base) / s["gap"].where(s["gap"] >= min_gap)
    return s


def hybrid_claims(summary, most: float = 0.8):
    """The Sec. 5 claims on a ``hybrid_summary`` table, judged per sparse model: one row per (claim, seq_len,
    d_model, model) with ``rule``, ``k``, ``gap_closed``, ``holds`` and ``detail``. Programmatic (both
    repeats variants) and learned selection close at least ``most`` of the gap; random selection closes less.
    ``holds`` is None where the gap is not measured (below ``min_gap``, or attention / BaseConv missing)."""
    import pandas as pd

    _check_fraction("most", most)
    _check_columns(summary, ["seq_len", "d_model", "model", "rule", "k", "gap", "gap_closed"], "summary")
    rows = []
    for cid, (family, closes, statement) in HYBRID_CLAIMS.items():
        sel = summary[summary["rule"].str.split("/").str[0] == family]
        for r in sel.itertuples(index=False):
            k = None if math.isnan(r.k) else int(r.k)
            if math.isnan(r.gap_closed):
                why = ("no attention/BaseConv gap measured (a model is missing)" if math.isnan(r.gap)
                       else f"gap {r.gap:.3f} below min_gap: not measured")
                rows.append((cid, statement, int(r.seq_len), int(r.d_model), r.model, r.rule, k, r.gap_closed,
                             None, why))
                continue
            good = (r.gap_closed >= most) if closes else (r.gap_closed < most)
            detail = f"gap {r.gap:.3f}; closed {r.gap_closed:.3f} ({'>=' if closes else '<'} {most})"
            rows.append((cid, statement, int(r.seq_len), int(r.d_model), r.model, r.rule, k, r.gap_closed,
                         bool(good), detail))
    cols = ["id", "claim", "seq_len", "d_model", "model", "rule", "k", "gap_closed", "holds", "detail"]
    return pd.DataFrame(rows, columns=cols).astype({"holds": object, "k": object})


def claim_verdicts(claims):
    """``hybrid_claims`` condensed: one row per (id, seq_len, d_model, rule) with the budgets k at which the
    claim holds (``k_holds``), fails (``k_fails``) and is not evaluable (``k_none``)."""
    import pandas as pd

    _check_columns(claims, ["id", "seq_len", "d_model", "rule", "k", "holds"], "claims")
    rows = []
    for (cid, n, d, rule), g in claims.groupby(["id", "seq_len", "d_model", "rule"], sort=False):
        def ks(mask, g=g):
            return sorted(int(k) for k in g.loc[mask, "k"] if k is not None)

        rows.append((cid, int(n), int(d), rule, ks(g["holds"].map(lambda h: h is True)),
                     ks(g["holds"].map(lambda h: h is False)), ks(g["holds"].map(lambda h: h is None))))
    return pd.DataFrame(rows, columns=["id", "seq_len", "d_model", "rule", "k_holds", "k_fails", "k_none"])
