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

__all__ = ["plot_hybrids", "RULE_STYLE", "END_STYLE"]

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
