"""The Sec. 5 hybrids figure (Zoology, arXiv 2312.04927) from a ``hybrid_summary`` table.

One column of panels per (seq_len, d_model) cell of the sweep (facets: the sequence lengths are never drawn on a
shared axis). Top: MQAR accuracy against the budget k of the sparse layer (log2 axis), one line per selection
rule, each with its own marker and colour and a small horizontal offset so that coinciding lines stay visible;
the bars span the seeds (min to max); the ends of the comparison sit on the same axis: 2-layer attention and
BaseConv + full attention at k = N (every row attends), plain BaseConv at k = 0 (drawn one octave left of the
smallest k). Bottom: the fraction of the attention-BaseConv gap closed against the mixers' FLOPs per token (log
axis), every model a point, the sparse ones of a rule joined by a thin line and dodged sideways by a few percent
so that equal FLOPs do not hide each other; their budgets k are named once each, on a top axis.
"""

from __future__ import annotations

import math

__all__ = ["plot_hybrids", "plot_accuracy_vs_coverage", "plot_learned_selection", "RULE_STYLE", "END_STYLE"]

#: sparse rule -> (label, colour, marker); colours from seaborn's colorblind palette
RULE_STYLE = {
    "programmatic/all": ("programmatic, eq. (3): all repeats", "#0173b2", "o"),
    "programmatic/first": ("programmatic: first repeat only", "#de8f05", "s"),
    "learned": ("learned (sigmoid + aux. loss)", "#029e73", "^"),
    "random": ("random (control)", "#cc78bc", "v"),
}
#: end model rule -> (label, colour, marker); drawn at k = N (every row attended) and at k = 0 (BaseConv)
END_STYLE = {
    "attention": ("attention (2 layers), k = N", "#000000", "*"),
    "full": ("BaseConv + full attention, k = N", "#555555", "P"),
    "-": ("BaseConv (2 layers), k = 0", "#949494", "D"),
}
_DODGE = 0.06  # horizontal offset between rules, in log2(k) units


def plot_hybrids(summary, title: str = ""):
    """The figure described in the module docstring; ``summary`` is a ``hybrid_summary`` table."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import wrap_title

    need = [c for c in ("seq_len", "d_model", "model", "rule", "k", "accuracy", "accuracy_min", "accuracy_max",
                        "mixer_flops_per_token", "gap_closed") if c not in summary.columns]
    if need:
        raise ValueError(f"summary: missing column(s) {need}")
    if summary.empty:
        raise ValueError("summary: no rows to plot")
    cells = sorted(set(zip(summary["seq_len"], summary["d_model"], strict=True)))
    fig, axes = plt.subplots(2, len(cells), figsize=(4.2 * len(cells) + 2.4, 6.0), squeeze=False)
    rules = [r for r in RULE_STYLE if r in set(summary["rule"])]
    for j, (n, d) in enumerate(cells):
        at = summary[(summary["seq_len"] == n) & (summary["d_model"] == d)]
        top, bottom = axes[0, j], axes[1, j]
        ks = sorted({int(k) for k in at["k"].dropna()})
        for i, rule in enumerate(rules):
            r = at[at["rule"] == rule].sort_values("k")
            if r.empty:
                continue
            label, colour, marker = RULE_STYLE[rule]
            off = i - (len(rules) - 1) / 2
            x = np.log2(r["k"].to_numpy(float)) + _DODGE * off
            y = r["accuracy"].to_numpy(float)
            err = np.vstack([y - r["accuracy_min"].to_numpy(float), r["accuracy_max"].to_numpy(float) - y])
            top.errorbar(x, y, yerr=err, color=colour, marker=marker, ms=5, lw=1.2, capsize=2, label=label)
            if r["gap_closed"].notna().any():
                flops = r["mixer_flops_per_token"] * 2 ** (_DODGE * off / 2)  # dodged: equal FLOPs stay visible
                bottom.plot(flops, r["gap_closed"], color=colour, lw=0.8, alpha=0.6, zorder=2)
                bottom.scatter(flops, r["gap_closed"], color=colour, marker=marker, s=28, label=label, zorder=3)
        x_none = math.log2(min(ks)) - 1 if ks else 0.0  # BaseConv: no row attended
        for i, (rule, (label, colour, marker)) in enumerate(END_STYLE.items()):
            r = at[at["rule"] == rule]
            if r.empty:
                continue
            x = x_none if rule == "-" else math.log2(n) + _DODGE * (i - 1.5)
            y = float(r["accuracy"].mean())
            err = [[y - float(r["accuracy_min"].min())], [float(r["accuracy_max"].max()) - y]]
            top.errorbar([x], [y], yerr=err, color=colour, marker=marker, ms=6, ls="none", capsize=2, label=label,
                         mfc="white" if rule == "-" else colour)
            if r["gap_closed"].notna().any():
                bottom.scatter(r["mixer_flops_per_token"], r["gap_closed"], marker=marker, s=30, label=label,
                               edgecolors=colour, facecolors="white" if rule == "-" else colour, zorder=3)
        kk = at["num_kv_pairs"].iloc[0] if "num_kv_pairs" in at else None
        top.set_title(f"N = {n}" + (f", K = {int(kk)}" if kk is not None else "") + f", d = {d}", fontsize=9)
        top.set(xlabel="budget k (rows attended per sequence)", ylabel="MQAR accuracy", ylim=(-0.03, 1.05))
        ticks = {x_none: "0"} if (at["rule"] == "-").any() else {}
        ticks.update({math.log2(k): str(k) for k in ks})
        if (at["rule"].isin(["attention", "full"])).any():
            ticks[math.log2(n)] = f"N={n}" if n not in ks else str(n)
        top.set_xticks(list(ticks))
        top.set_xticklabels(list(ticks.values()))
        bottom.set(xlabel="mixer FLOPs per token (both layers)", ylabel="fraction of the gap closed")
        if at["gap_closed"].isna().all():
            bottom.set_xticks([])
            bottom.set_yticks([])
            bottom.text(0.5, 0.5, "attention - BaseConv gap below min_gap:\nnot measured", ha="center",
                        va="center", transform=bottom.transAxes, fontsize=8)
        else:
            bottom.set_xscale("log")
            bottom.axhline(1.0, color="#bbbbbb", lw=0.8, zorder=0)
            bottom.axhline(0.0, color="#bbbbbb", lw=0.8, zorder=0)
            # each budget k once, on a top axis over the FLOPs its sparse models cost (not a label per point)
            sparse = at[at["k"].notna() & at["gap_closed"].notna()]
            at_k = {int(k): float(np.exp(np.log(g["mixer_flops_per_token"].astype(float)).mean()))
                    for k, g in sparse.groupby("k")}
            if at_k:
                top_k = bottom.secondary_xaxis("top")
                top_k.set_xticks(list(at_k.values()), [str(k) for k in at_k])
                top_k.xaxis.set_minor_locator(plt.NullLocator())
                top_k.tick_params(labelsize=7, length=3)
                top_k.set_xlabel("budget k of the sparse models", fontsize=7)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    h2, l2 = axes[1, -1].get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    for lab, h in zip(l2, h2, strict=True):
        seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    fig.suptitle(wrap_title(fig, title), fontsize=9)  # wrapped to the panels' width, never widening the figure
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_accuracy_vs_coverage(table, title: str = ""):
    """Accuracy against query coverage (``hybrids.coverage_prediction``): one point per programmatic (rule, k),
    bars over the seeds, its budget k written beside it; the line is the prediction coverage · full accuracy +
    (1 − coverage) · chance, from chance at coverage 0 to the full hybrid at 1."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import wrap_title

    need = [c for c in ("rule", "k", "coverage", "accuracy", "accuracy_min", "accuracy_max", "full_accuracy",
                        "chance") if c not in table.columns]
    if need:
        raise ValueError(f"table: missing column(s) {need}")
    if table.empty:
        raise ValueError("table: no rows to plot")
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    x = np.linspace(0, 1, 50)
    full, chance = float(table["full_accuracy"].iloc[0]), float(table["chance"].iloc[0])
    ax.plot(x, x * full + (1 - x) * chance, color="#555555", lw=1, ls="--",
            label=f"coverage x full hybrid ({full:.3f}) + chance ({chance:.3f}) on the rest")
    for rule, r in table.groupby("rule", sort=False):
        label, colour, marker = RULE_STYLE[rule]
        ax.errorbar(r["coverage"], r["accuracy"], yerr=[r["accuracy"] - r["accuracy_min"],
                                                        r["accuracy_max"] - r["accuracy"]],
                    fmt=marker, color=colour, label=label, capsize=2, ms=6)
        dx, dy = (6, -11) if rule == "programmatic/all" else (-34, 5)  # the two rules' labels on opposite sides
        for i, (c, a, k) in enumerate(zip(r["coverage"], r["accuracy"], r["k"], strict=True)):
            ax.annotate(f"k={int(k)}", (c, a), textcoords="offset points", xytext=(dx, dy + 11 * (i % 2) * (dy > 0)),
                        fontsize=8, color=colour)  # neighbours of the upper row staggered: close points stay legible
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="query coverage of the rule (data alone, no training)",
           ylabel="MQAR test accuracy (trained hybrid)")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(wrap_title(fig, title, 9), fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _variant(r) -> str:
    st = "straight-through" if r.straight_through else "no straight-through"
    return f"{r.filter} filter below, {r.budget} budget, {st}, aux {r.aux_weight:g}"


def plot_learned_selection(table, title: str = ""):
    """What the learned selectors select (``hybrids.learned_selection``), against the budget k (log2 axis), one
    line per variant (the filter below, budget, gradient, aux weight): accuracy (bars over the seeds), rows
    selected per sequence (the dotted line is k), and the precision and recall of the selected rows against the
    query positions."""
    import matplotlib.pyplot as plt

    from .figures import figure_legend, wrap_title

    need = [c for c in ("k", "budget", "straight_through", "aux_weight", "filter", "accuracy", "accuracy_min",
                        "accuracy_max", "rows_per_sequence", "precision", "recall") if c not in table.columns]
    if need:
        raise ValueError(f"table: missing column(s) {need}")
    if table.empty:
        raise ValueError("table: no rows to plot")
    t = table.assign(variant=[_variant(r) for r in table.itertuples(index=False)]).sort_values("k")
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    colours = ["#0173b2", "#de8f05", "#029e73", "#cc78bc", "#ca9161", "#949494"]
    handles = []
    for i, (variant, g) in enumerate(t.groupby("variant", sort=False)):
        c, m = colours[i % len(colours)], "os^vDP"[i % 6]
        h = axes[0].errorbar(g["k"], g["accuracy"], yerr=[g["accuracy"] - g["accuracy_min"],
                                                          g["accuracy_max"] - g["accuracy"]],
                             color=c, marker=m, capsize=2, label=variant)
        handles.append(h)
        axes[1].plot(g["k"], g["rows_per_sequence"], color=c, marker=m)
        axes[2].plot(g["k"], g["precision"], color=c, marker=m)
        axes[3].plot(g["k"], g["recall"], color=c, marker=m)
    ks = sorted(set(t["k"]))
    axes[1].plot(ks, ks, color="#555555", ls=":", lw=1)
    for ax, label in zip(axes, ("MQAR test accuracy", "rows selected per sequence (dotted: k)",
                                "precision: selected rows that are queries", "recall: queries selected"),
                         strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set(xlabel="budget k", ylabel=label)
    for ax in (axes[0], axes[2], axes[3]):
        ax.set_ylim(-0.02, 1.02)
    figure_legend(fig, handles, [h.get_label() for h in handles], ncol=2)
    if title:
        fig.suptitle(wrap_title(fig, title), fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig
