"""The sweep's figures, in the style of Zoology's Figure 2 (arXiv 2312.04927): one panel per sequence length,
accuracy (best over the learning rate) against the model width on a log axis, one line per model; and the
same accuracy against the recurrent state size."""

from __future__ import annotations

__all__ = ["plot_accuracy_vs_width", "plot_accuracy_vs_state", "plot_hybrids", "model_palette"]


def model_palette(models, mixers: dict | None = None) -> dict:
    """A colour per model: the project's ``MIXER_COLORS`` colour of its mixer when no other model has taken
    it, else the next free colour of seaborn's colorblind palette."""
    import seaborn as sns

    from ..plotting import MIXER_COLORS

    spare = iter(c for c in sns.color_palette("colorblind", 20).as_hex() if c not in MIXER_COLORS.values())
    used, out = set(), {}
    for m in models:
        c = MIXER_COLORS.get((mixers or {}).get(m, m))
        if c is None or c in used:
            c = next(spare)
        used.add(c)
        out[m] = c
    return out


def _facets(best, x: str, metric: str, title: str, logx: bool, ticks=None):
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    models = list(dict.fromkeys(best["model"]))
    palette = model_palette(models, dict(zip(best["model"], best["mixer"], strict=True)))
    g = sns.relplot(data=best, x=x, y=metric, hue="model", hue_order=models, col="seq_len", kind="line",
                    marker="o", palette=palette, height=2.25, aspect=1, errorbar=None,
                    facet_kws={"sharex": True, "sharey": True})
    for ax in g.axes.flat:
        if logx:
            ax.set_xscale("log")
        if ticks is not None:
            ax.set_xticks(ticks)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    g.set_titles("Sequence Length: {col_name}")
    g.set_ylabels("MQAR accuracy")
    g.figure.suptitle(title, y=1.04, fontsize=9)
    plt.close(g.figure)
    return g.figure


def plot_accuracy_vs_width(best, metric: str = "test_accuracy", title: str = ""):
    """Figure 2 (top row): ``metric`` against d_model, one panel per sequence length, one line per model
    (means over seeds of a ``select_best`` table)."""
    ticks = sorted(best["d_model"].unique().tolist())
    fig = _facets(best, "d_model", metric, title, logx=True, ticks=ticks)
    for ax in fig.axes:
        ax.set_xlabel("Model dimension")
    return fig


def plot_accuracy_vs_state(best, metric: str = "test_accuracy", title: str = "", exclude=("attention",)):
    """``metric`` against the recurrent state size (numbers, summed over layers; log x), one panel per
    sequence length, for the models with a fixed-size state (``exclude`` leaves out mixers by name)."""
    sub = best[best["state_size"].notna() & ~best["mixer"].isin(exclude)].copy()
    if sub.empty:
        raise ValueError("best: no model with a fixed-size recurrent state in the table")
    sub["state_size"] = sub["state_size"].astype(float)
    fig = _facets(sub, "state_size", metric, title, logx=True)
    for ax in fig.axes:
        ax.set_xlabel("State size (numbers)")
    return fig


def plot_hybrids(summary, models=None, title: str = ""):
    """The Sec. 5 hybrids (Zoology, arXiv 2312.04927) from a ``hybrid_summary`` table: accuracy against the
    sequence length (left) and against the mixers' FLOPs per token (right, log x), one colour per model
    (``models`` gives the order; default: the table's)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    _need = [c for c in ("seq_len", "model", "accuracy", "mixer_flops_per_token") if c not in summary.columns]
    if _need:
        raise ValueError(f"summary: missing column(s) {_need}")
    models = list(dict.fromkeys(summary["model"])) if models is None else list(models)
    palette = model_palette(models)  # colours by model name (plotting.MIXER_COLORS)
    ns = sorted(summary["seq_len"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for m in models:
        r = summary[summary["model"] == m].sort_values("seq_len")
        axes[0].plot(r["seq_len"], r["accuracy"], "o-", color=palette[m], label=m)
        axes[1].scatter(r["mixer_flops_per_token"], r["accuracy"], color=palette[m], label=m)
    axes[0].set(xlabel="sequence length N", ylabel="MQAR accuracy", ylim=(-0.03, 1.03), xscale="log",
                xticks=ns, xticklabels=ns)
    axes[1].set(xlabel="mixer FLOPs per token (both layers)", ylabel="MQAR accuracy", ylim=(-0.03, 1.03),
                xscale="log")
    axes[0].xaxis.set_minor_formatter(NullFormatter())  # only the N of the grid are labelled
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title, fontsize=9)
    plt.close(fig)
    return fig
