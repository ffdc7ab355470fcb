"""Selection and claims over a sweep's table (``load_results`` / ``run_sweep`` rows).

``select_best``: the paper's rule for Figure 2 (Zoology, arXiv 2312.04927, Sec. 4 and Appendix E.1): for
every cell (model, d_model, task, and any other varied setting), the **last evaluation's** test accuracy,
maximised over the learning rate. With several seeds, the best learning rate is chosen per seed (each seed
is a repetition of the whole protocol).

``figure2_claims``: the claims of Figure 2 (top row) and Sec. 4.1, checked on a selected table:

* ``attention_small_width``: attention is near-perfect (>= ``near_perfect``) at the smallest width for
  every sequence length;
* ``gated_below_attention``: each gated convolution (BaseConv, Hyena, H3, RWKV) is below attention in every
  cell with d < N;
* ``gated_below_solved_attention``: each gated convolution is below attention in every cell where attention
  reaches ``reference_target`` (0.99): the stronger reading when a grid has few cells with d < N, or when
  attention itself fails there (a budget, not the width; notebook 04). The per-model table behind it is
  ``below_solved_attention``;
* ``width_grows_with_N``: the smallest width at which a gated convolution reaches ``solved`` (``inf`` if
  none of the widths does) does not decrease with N and is larger at the largest N than at the smallest.

Decisions: accuracies are means over seeds of the per-seed best; "attention" in a cell is the best model
whose mixer is attention; "below" is strict (a tie at 1.0 does not count as below); a claim with no cell to
check reports ``holds = None`` (not evaluable), never True.
"""

from __future__ import annotations

import math

from .store import succeeded

__all__ = ["select_best", "figure2_claims", "cell_table", "lr_table", "seed_spread", "threshold_table",
           "reference_failures", "below_solved_attention", "check_declared", "GATED_CONVOLUTIONS", "CLAIMS"]

#: mixers the paper calls gated convolutions (Sec. 3; Figure 2's non-attention rows)
GATED_CONVOLUTIONS = ("baseconv", "hyena", "h3", "rwkv")
CLAIMS = {
    "attention_small_width": "attention near-perfect at the smallest width for every N",
    "gated_below_attention": "gated convolution below attention in every cell with d < N",
    "gated_below_solved_attention": "gated convolution below attention in every cell where attention reaches 0.99",
    "width_grows_with_N": "width a gated convolution needs to solve MQAR grows with N",
}


def _config_columns(df, over) -> list[str]:
    from .spec import run_mqar_keys

    keys = [k for k in run_mqar_keys() if k in df.columns and k not in over]
    return ["model", *keys]


def select_best(df, metric: str = "test_accuracy", over=("lr",)):
    """The best row (highest ``metric``) over the ``over`` settings for every other combination of the
    config (model, d_model, task, seed, ...); failed runs are left out. Adds ``candidates`` (rows compared)."""
    import pandas as pd

    if metric not in df.columns:
        raise ValueError(f"metric={metric!r}: not a column of the table")
    over = [over] if isinstance(over, str) else list(over)
    for o in over:
        if o not in df.columns:
            raise ValueError(f"over={o!r}: not a column of the table")
    ok = succeeded(df)
    if ok.empty:
        return ok.assign(candidates=pd.Series(dtype=int))
    keys = _config_columns(ok, over)
    score = ok[metric].astype(float).fillna(-math.inf)
    groups = ok.assign(_score=score).groupby(keys, dropna=False, sort=False)
    idx = groups["_score"].idxmax()
    best = ok.loc[idx.values].copy()
    best["candidates"] = groups.size().values
    sort = [k for k in ("model", "seq_len", "num_kv_pairs", "d_model", "seed") if k in best]
    return best.sort_values(sort, kind="stable").reset_index(drop=True)


def cell_table(best, metric: str = "test_accuracy"):
    """Mean (over seeds) of ``metric`` per (model, mixer, seq_len, d_model) of a ``select_best`` table."""
    return best.groupby(["model", "mixer", "seq_len", "d_model"], as_index=False)[metric].mean()


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.3f}"


def _attention_by_cell(cells, metric: str, attention: str):
    """The best model with mixer ``attention`` per (seq_len, d_model) of a ``cell_table``."""
    return cells[cells["mixer"] == attention].groupby(["seq_len", "d_model"])[metric].max()


def below_solved_attention(best, metric: str = "test_accuracy", target: float = 0.99, attention: str = "attention",
                           gated=GATED_CONVOLUTIONS):
    """Per gated convolution of a ``select_best`` table, against attention in the cells where attention (the best
    model with mixer ``attention``; means over seeds) reaches ``target``: ``model, cells`` (such cells where the
    model has a run), ``below`` (how many of them it is strictly below attention in), ``smallest_gap`` (the least
    attention-minus-model margin; NaN without cells), ``solved_cells`` (how many cells attention reaches
    ``target`` in)."""
    if not (isinstance(target, (int, float)) and 0 < target <= 1):
        raise ValueError(f"target={target!r}: must be a number in (0, 1]")
    if metric not in best.columns:
        raise ValueError(f"metric={metric!r}: not a column of the table")
    return _below_solved(cell_table(best, metric), metric, target, attention, gated)


def _below_solved(cells, metric: str, target: float, attention: str, gated):
    """``below_solved_attention`` on a ``cell_table`` (``figure2_claims`` has one already)."""
    import pandas as pd

    att = _attention_by_cell(cells, metric, attention)
    att = att[att >= target]
    rows = []
    models = sorted(m for m, mx in cells[["model", "mixer"]].drop_duplicates().values if mx in gated)
    for model in models:
        g = cells[cells["model"] == model].set_index(["seq_len", "d_model"])[metric]
        on = [c for c in att.index if c in g.index]
        rows.append({"model": model, "cells": len(on), "below": sum(bool(g[c] < att[c]) for c in on),
                     "smallest_gap": min((float(att[c] - g[c]) for c in on), default=math.nan),
                     "solved_cells": len(att)})
    return pd.DataFrame(rows, columns=["model", "cells", "below", "smallest_gap", "solved_cells"])


def figure2_claims(df, metric: str = "test_accuracy", near_perfect: float = 0.9, solved: float = 0.9,
                   attention: str = "attention", gated=GATED_CONVOLUTIONS, selected: bool = False,
                   reference_target: float = 0.99):
    """The Figure 2 claims on ``df`` (a ``load_results`` table, or a ``select_best`` one with
    ``selected=True``): a DataFrame with columns ``id, claim, model, holds, detail``; ``holds`` is
    True / False, or None when the table has no cell to check it (see the module docstring)."""
    import pandas as pd

    for k, v in (("near_perfect", near_perfect), ("solved", solved), ("reference_target", reference_target)):
        if not (isinstance(v, (int, float)) and 0 < v <= 1):
            raise ValueError(f"{k}={v!r}: must be a number in (0, 1]")
    best = df if selected else select_best(df, metric)
    cells = cell_table(best, metric)
    rows = []

    att_cells = cells[cells["mixer"] == attention]
    att = _attention_by_cell(cells, metric, attention)
    if att_cells.empty:
        rows.append(("attention_small_width", attention, None, f"no {attention} runs in the table"))
    else:
        for model, g in att_cells.groupby("model"):
            d0 = int(g["d_model"].min())
            at = g[g["d_model"] == d0].set_index("seq_len")[metric].sort_index()
            holds = bool((at >= near_perfect).all())
            detail = f"d={d0}: " + ", ".join(f"N={n}: {_fmt(a)}" for n, a in at.items()) + f" (>= {near_perfect})"
            rows.append(("attention_small_width", model, holds, detail))

    conv_models = sorted(m for m, mx in cells[["model", "mixer"]].drop_duplicates().values if mx in gated)
    solved_rows = _below_solved(cells, metric, reference_target, attention, gated).set_index("model")
    for model in conv_models:
        g = cells[cells["model"] == model].set_index(["seq_len", "d_model"])[metric]
        pairs = [(n, d, g[(n, d)], att[(n, d)]) for n, d in g.index if d < n and (n, d) in att.index]
        if not pairs:
            rows.append(("gated_below_attention", model, None, "no cell with d < N and an attention run"))
        else:
            bad = [f"N={n},d={d}: {_fmt(a)} >= {_fmt(b)}" for n, d, a, b in pairs if not a < b]
            detail = (f"{len(pairs) - len(bad)}/{len(pairs)} cells below attention"
                      + (f"; not below: {'; '.join(bad)}" if bad else ""))
            rows.append(("gated_below_attention", model, not bad, detail))

        s = solved_rows.loc[model]
        if not s["cells"]:
            rows.append(("gated_below_solved_attention", model, None,
                         f"no cell where attention reaches {reference_target} and {model} has a run"))
        else:
            rows.append(("gated_below_solved_attention", model, bool(s["below"] == s["cells"]),
                         f"{int(s['below'])}/{int(s['cells'])} cells where attention >= {reference_target} below it; "
                         f"smallest gap {_fmt(s['smallest_gap'])}"))

        ns = sorted({n for n, _ in g.index})
        if len(ns) < 2:
            rows.append(("width_grows_with_N", model, None, "needs at least two sequence lengths"))
            continue
        need = {}
        for n in ns:
            gn = g.xs(n, level="seq_len").sort_index()
            reached = [d for d, a in gn.items() if a >= solved]
            need[n] = min(reached) if reached else math.inf
        seq = [need[n] for n in ns]
        holds = all(a <= b for a, b in zip(seq, seq[1:])) and seq[-1] > seq[0]
        widths = sorted({d for _, d in g.index})
        detail = ", ".join(f"N={n}: {'>' + str(max(widths)) if need[n] == math.inf else int(need[n])}"
                           for n in ns) + f" (smallest d with accuracy >= {solved})"
        rows.append(("width_grows_with_N", model, holds, detail))

    out = pd.DataFrame(rows, columns=["id", "model", "holds", "detail"])
    out.insert(1, "claim", out["id"].map(CLAIMS))
    return out


def check_declared(measured: dict, declared: dict, details: dict | None = None) -> list[str]:
    """What a notebook declares of its checks against what was measured: the list of disagreements (empty when
    every declaration holds). ``measured`` maps a key (e.g. ``(claim id, model)``) to True / False, or None when it
    could not be evaluated; ``declared`` maps a key to True (asserted to hold) or to the reason it does not hold at
    that scale (a string, or False), which is an assertion too: a check that starts to hold is reported, so the
    declaration is revisited. ``details``: per key, the measurement's words for the message."""
    details = details or {}
    problems = []
    for key, want in declared.items():
        got, why = measured.get(key), details.get(key, "")
        if key not in measured:
            problems.append(f"{key}: declared, but nothing measured it")
        elif got is None:
            problems.append(f"{key}: could not be evaluated ({why})")
        elif want is True and not got:
            problems.append(f"{key}: does not hold ({why})")
        elif want is not True and got:
            problems.append(f"{key}: now holds ({why}): update the declaration")
    return problems


# --- every learning rate, every seed -----------------------------------------------------------------------
def _cell_keys(df) -> list[str]:
    return [k for k in ("model", "mixer", "seq_len", "num_kv_pairs", "d_model") if k in df.columns]


def lr_table(df, metric: str = "test_accuracy"):
    """Every learning rate's result, not only the best: per (model, mixer, seq_len, num_kv_pairs, d_model, lr),
    the mean, min and max of ``metric`` over the seeds and their number (``n_seeds``); failed runs left out."""
    if metric not in df.columns:
        raise ValueError(f"metric={metric!r}: not a column of the table")
    if "lr" not in df.columns:
        raise ValueError("df: has no 'lr' column")
    ok = succeeded(df)
    keys = [*_cell_keys(ok), "lr"]
    g = ok.groupby(keys, as_index=False)[metric]
    out = g.agg(mean="mean", min="min", max="max", n_seeds="count")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def seed_spread(best, metric: str = "test_accuracy"):
    """Per cell (model, mixer, seq_len, num_kv_pairs, d_model) of a ``select_best`` table: the mean, min and
    max over the seeds of the per-seed best (over lr) ``metric``, and ``n_seeds``."""
    if metric not in best.columns:
        raise ValueError(f"metric={metric!r}: not a column of the table")
    keys = _cell_keys(best)
    return (best.groupby(keys, as_index=False)[metric].agg(mean="mean", min="min", max="max", n_seeds="count")
            .sort_values(keys, kind="stable").reset_index(drop=True))


def _first_width(widths_acc, solved: float) -> float:
    """The smallest width whose accuracy is >= ``solved`` (``inf`` when none)."""
    reached = [d for d, a in sorted(widths_acc) if a >= solved]
    return float(min(reached)) if reached else math.inf


def threshold_table(best, metric: str = "test_accuracy", solved: float = 0.9, models=None, gated=GATED_CONVOLUTIONS):
    """Each model's threshold width per sequence length: the first d at which ``metric`` (best over lr) reaches
    ``solved``, per seed, in a ``select_best`` table. Columns: ``model, mixer, seq_len, threshold`` (on the
    seed-mean curve), ``threshold_min, threshold_max`` (over the seeds; ``inf``: that seed never reaches
    ``solved`` at any width of the grid), ``seeds_solved`` (seeds that reach it), ``n_seeds``, ``widths``
    (the grid). ``models``: the models to tabulate (default: those whose mixer is a gated convolution)."""
    import pandas as pd

    if not (isinstance(solved, (int, float)) and 0 < solved <= 1):
        raise ValueError(f"solved={solved!r}: must be a number in (0, 1]")
    if metric not in best.columns:
        raise ValueError(f"metric={metric!r}: not a column of the table")
    if models is None:
        models = sorted(set(best.loc[best["mixer"].isin(gated), "model"]))
    rows = []
    seed_col = "seed" if "seed" in best.columns else None
    for model in models:
        sub = best[best["model"] == model]
        if sub.empty:
            raise ValueError(f"models: {model!r} has no row in the table")
        for n, g in sub.groupby("seq_len"):
            mean = g.groupby("d_model")[metric].mean()
            per_seed = ([_first_width(list(zip(s["d_model"], s[metric], strict=True)), solved)
                         for _, s in g.groupby(seed_col)] if seed_col else
                        [_first_width(list(mean.items()), solved)])
            rows.append({"model": model, "mixer": g["mixer"].iloc[0], "seq_len": int(n),
                         "threshold": _first_width(list(mean.items()), solved),
                         "threshold_min": min(per_seed), "threshold_max": max(per_seed),
                         "seeds_solved": sum(w != math.inf for w in per_seed), "n_seeds": len(per_seed),
                         "widths": "/".join(str(int(d)) for d in sorted(g["d_model"].unique()))})
    return pd.DataFrame(rows, columns=["model", "mixer", "seq_len", "threshold", "threshold_min", "threshold_max",
                                       "seeds_solved", "n_seeds", "widths"])


def reference_failures(best, metric: str = "test_accuracy", reference: str = "attention", target: float = 0.99):
    """The cells where the reference model (by name) is below ``target`` in a ``select_best`` table, on the
    seed mean: columns ``model, seq_len, d_model, mean, min, max, n_seeds, best_lr`` (the per-seed best lrs,
    "/"-joined). Empty when the reference solves every cell; a ``ValueError`` when it has no row at all."""
    sub = best[best["model"] == reference]
    if sub.empty:
        raise ValueError(f"reference={reference!r}: no row of that model in the table")
    spread = seed_spread(sub, metric)
    bad = spread[spread["mean"] < target].copy()
    lrs = sub.groupby(["seq_len", "d_model"])["lr"].agg(lambda s: "/".join(f"{v:g}" for v in s))
    bad["best_lr"] = [lrs[(n, d)] for n, d in zip(bad["seq_len"], bad["d_model"], strict=True)]
    cols = ["model", "seq_len", "d_model", "mean", "min", "max", "n_seeds", "best_lr"]
    return bad[cols].reset_index(drop=True)
