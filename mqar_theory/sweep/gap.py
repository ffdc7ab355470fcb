"""Closing the gap to attention (Zoology, arXiv 2312.04927): the claims of Figure 2's bottom row (Sec. 4.3,
input-dependent filters) and of the Sec. 5 sparse-attention hybrids, checked on a ``select_best`` table.

``input_dependence_claims``: per sequence length, the widths at which the programmatic input-dependent filter
reaches ``solved`` while plain BaseConv stays below it; the claim holds at N when there is at least one such
width. The autocorrelation filter is reported (widths where it beats plain BaseConv), not claimed.

``hybrid_summary`` / ``hybrid_claims``: per (N, model) the selection rule (read from the record's
``mixer_kwargs``), accuracy, mixer FLOPs per token and the fraction of the attention-BaseConv gap closed,
(acc - acc_BaseConv) / (acc_attention - acc_BaseConv), measured only where the gap is at least ``min_gap``;
then the claims: programmatic and learned selection close at least ``most`` of the gap, random does not.

``ZOOLOGY_TABLE2``: the paper's Table 2 (Sec. 5), quoted, not measured (see its comment).

Decisions: accuracies are means over seeds of the per-seed best (as ``cell_table``); a claim with nothing to
check (a model missing at N, no width shared by the two models, a gap below ``min_gap``) reports
``holds = None``, never True; when several models share a selection rule, the rule's claim at N holds only
if it holds for every one of them.
"""

from __future__ import annotations

import json
import math

__all__ = ["input_dependence_claims", "hybrid_summary", "hybrid_claims", "selection_rule",
           "zoology_table2", "ZOOLOGY_TABLE2", "ZOOLOGY_TABLE2_COLUMNS", "HYBRID_CLAIMS"]  # fmt: skip

#: claim id -> (selection rule, closes the gap?, statement)
HYBRID_CLAIMS = {
    "programmatic_closes_gap": ("programmatic", True, "programmatic selection closes most of the gap"),
    "learned_closes_gap": ("learned", True, "learned selection closes most of the gap"),
    "random_does_not_close_gap": ("random", False, "random selection (control) does not close most of the gap"),
}

# Zoology (Arora, Eyuboglu et al., arXiv 2312.04927), Sec. 5, Table 2: Pile language models at 360M
# parameters, 10B tokens; test perplexity overall, on the AR-hit slice and on the other tokens, and the FLOPs
# of a forward pass. QUOTED as published (transcribed from the paper; check against the PDF before citing
# further), NOT measured here: reproducing them needs Pile pretraining.
ZOOLOGY_TABLE2_COLUMNS = ("model (360M)", "ppl overall", "ppl AR hits", "ppl other", "FLOPs / note")
ZOOLOGY_TABLE2 = (
    ("Attention", 9.44, 1.98, 10.62, "6.23 TFLOPs"),
    ("BaseConv + 3 full-attention layers", 8.59, 1.95, 8.91, "5.10 TFLOPs"),
    ("BaseConv + 3 programmatic-selection layers", 9.54, 2.35, 10.50, "5.06 TFLOPs"),
    ("BaseConv + learned selection (k = 256)", None, None, None, "72% of the AR gap closed"),
)


def zoology_table2():
    """``ZOOLOGY_TABLE2`` as a DataFrame indexed by model: the published Table 2 of Zoology (arXiv
    2312.04927, Sec. 5), quoted, not measured."""
    import pandas as pd

    return pd.DataFrame(list(ZOOLOGY_TABLE2), columns=list(ZOOLOGY_TABLE2_COLUMNS)).set_index(
        ZOOLOGY_TABLE2_COLUMNS[0])


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


def selection_rule(mixer_kwargs) -> str:
    """The selection rule(s) a record's ``mixer_kwargs`` names (a JSON string as in ``load_results``, a dict,
    or a per-layer list of dicts): the distinct ``selection`` values in layer order joined by '+', or '-' for
    none (no sparse-attention layer, or no kwargs at all)."""
    kw = mixer_kwargs
    if isinstance(kw, str):
        try:
            kw = json.loads(kw)
        except json.JSONDecodeError as e:
            raise ValueError(f"mixer_kwargs={mixer_kwargs!r}: not valid JSON ({e})") from None
    if kw is None or (isinstance(kw, float) and math.isnan(kw)):
        return "-"
    layers = kw if isinstance(kw, list) else [kw]
    if not all(isinstance(k, dict) for k in layers):
        raise ValueError(f"mixer_kwargs={mixer_kwargs!r}: must be a dict or a list of dicts")
    rules = list(dict.fromkeys(k["selection"] for k in layers if k.get("selection")))
    return "+".join(rules) if rules else "-"


def hybrid_summary(best, min_gap: float = 0.2, metric: str = "test_accuracy", attention: str = "attention",
                   baseconv: str = "baseconv"):
    """Sec. 5 hybrids on a ``select_best`` table: one row per (seq_len, model) with ``selection``
    (``selection_rule`` of its ``mixer_kwargs``), ``accuracy`` (mean over seeds and widths of ``metric``),
    ``mixer_flops_per_token`` (the record's, both layers), ``gap`` (acc_attention - acc_BaseConv at that N;
    NaN if either is missing) and ``gap_closed`` ((acc - acc_BaseConv) / gap where gap >= ``min_gap``, else
    NaN: the fraction is not measured where there is no gap to close)."""
    _check_fraction("min_gap", min_gap)
    _check_columns(best, ["model", "seq_len", metric, "flops_per_token"], "best")
    b = best.assign(selection=best["mixer_kwargs"].map(selection_rule) if "mixer_kwargs" in best else "-")
    s = b.groupby(["seq_len", "model"], as_index=False, sort=True).agg(
        selection=("selection", "first"), accuracy=(metric, "mean"),
        mixer_flops_per_token=("flops_per_token", "mean"))
    acc = s.set_index(["seq_len", "model"])["accuracy"]

    def at(n, m):
        return float(acc[(n, m)]) if (n, m) in acc.index else math.nan

    gap = {n: at(n, attention) - at(n, baseconv) for n in s["seq_len"].unique()}
    s["gap"] = s["seq_len"].map(gap).astype(float)
    measured = s["gap"].where(s["gap"] >= min_gap)
    s["gap_closed"] = (s["accuracy"] - s["seq_len"].map(lambda n: at(n, baseconv))) / measured
    return s


def hybrid_claims(summary, most: float = 0.8):
    """The Sec. 5 claims on a ``hybrid_summary`` table: one row per (claim, seq_len) with columns ``id,
    claim, seq_len, models, holds, detail``. Programmatic and learned selection close at least ``most`` of
    the gap, random selection closes less. ``holds`` is None where the gap is not measured (below
    ``min_gap``, or attention / BaseConv missing) or no model uses the rule at that N."""
    import pandas as pd

    _check_fraction("most", most)
    _check_columns(summary, ["seq_len", "model", "selection", "gap", "gap_closed"], "summary")
    rows = []
    for cid, (rule, closes, statement) in HYBRID_CLAIMS.items():
        for n in sorted(summary["seq_len"].unique()):
            at = summary[(summary["seq_len"] == n)]
            gap = float(at["gap"].iloc[0]) if len(at) else math.nan
            sel = at[at["selection"] == rule]
            models = sorted(sel["model"])
            if sel.empty:
                rows.append((cid, statement, int(n), models, None, f"no model with {rule} selection"))
                continue
            if sel["gap_closed"].isna().any():
                if math.isnan(gap):
                    why = "no attention/BaseConv gap measured (a model is missing)"
                elif at["gap_closed"].isna().all():
                    why = f"gap {gap:.3f} below min_gap: not measured"
                else:
                    why = "accuracy missing for " + ", ".join(sel.loc[sel["gap_closed"].isna(), "model"])
                rows.append((cid, statement, int(n), models, None, why))
                continue
            ok = list(zip(sel["model"], sel["gap_closed"], strict=True))
            good = all((f >= most) if closes else (f < most) for _, f in ok)
            detail = (f"gap {gap:.3f}; closed: " + ", ".join(f"{m} {f:.3f}" for m, f in ok)
                      + f" ({'>=' if closes else '<'} {most})")
            rows.append((cid, statement, int(n), models, bool(good), detail))
    out = pd.DataFrame(rows, columns=["id", "claim", "seq_len", "models", "holds", "detail"])
    return out.astype({"holds": object})
