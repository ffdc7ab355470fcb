"""The figure of notebook 08's capacity experiment as a plain function.

``plot_recall_capacity(table)``: the fraction of wrong recalls against the key dimension d_k (log2 axis), one panel
per regime (the table's ``regime`` column: distinct or shared values), one line per write rule (``rule``) with its
min-max band over the key draws, the rule's prediction dashed in the same colour where its theory gives one, and a
dotted vertical line at d_k = K (as many dimensions as keys). The table is ``recall_error_vs_key_dim``'s rows with
``regime`` and ``rule`` added (``mqar_theory.constructions.recall_capacity``); saving is ``plotting.savefig``'s job.
"""

from __future__ import annotations

__all__ = ["plot_recall_capacity"]

_COLOURS = ["#0173b2", "#de8f05", "#029e73", "#cc78bc", "#ca9161", "#949494"]
_MARKERS = "os^vDP"


def plot_recall_capacity(table, num_keys: int | None = None, title: str = ""):
    """The figure of the module docstring; ``num_keys`` (K) draws the d_k = K line (None: no line)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .sweep.figures import figure_legend, wrap_title

    need = [c for c in ("regime", "rule", "d_k", "mean", "min", "max", "predicted") if c not in table.columns]
    if need:
        raise ValueError(f"table: missing column(s) {need}")
    if table.empty:
        raise ValueError("table: no rows to plot")
    regimes = list(dict.fromkeys(table["regime"]))
    rules = list(dict.fromkeys(table["rule"]))
    fig, axes = plt.subplots(1, len(regimes), figsize=(5.6 * len(regimes), 4.2), squeeze=False, sharey=True)
    handles = {}
    for ax, regime in zip(axes[0], regimes, strict=True):
        for i, rule in enumerate(rules):
            r = table[(table["regime"] == regime) & (table["rule"] == rule)].sort_values("d_k")
            if r.empty:
                continue
            colour, marker = _COLOURS[i % len(_COLOURS)], _MARKERS[i % len(_MARKERS)]
            (line,) = ax.plot(r["d_k"], r["mean"], color=colour, marker=marker, label=rule)
            ax.fill_between(r["d_k"], r["min"], r["max"], color=colour, alpha=0.15, lw=0)
            handles.setdefault(rule, line)
            pred = r["predicted"].to_numpy(dtype=float)
            if np.isfinite(pred).any() and not (pred[np.isfinite(pred)] == 0).all():
                ax.plot(r["d_k"], pred, color=colour, ls="--", lw=1)
        if num_keys is not None:
            ax.axvline(num_keys, color="#555555", ls=":", lw=1)
        ks = sorted(set(table["d_k"]))
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set(xlabel="key dimension d_k", title=regime, ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("fraction of keys recalled wrong")
    names = list(handles)
    figure_legend(fig, [handles[n] for n in names], names, ncol=min(4, len(names)))
    if title:
        fig.suptitle(wrap_title(fig, title + " (dashed: the theory's prediction; dotted: d_k = K)"), fontsize=9)
    fig.tight_layout()
    plt.close(fig)  # shown by display(fig), not a second time by the inline backend
    return fig
