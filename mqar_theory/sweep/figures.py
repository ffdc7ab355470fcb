"""The sweep's figures, in the style of Zoology's Figure 2 (arXiv 2312.04927): one panel per sequence length,
accuracy (best over the learning rate) against the model width on a log axis, one line per model (the mean over
seeds, with a min–max band over the seeds); every learning rate's curve (``plot_accuracy_by_lr``); and the same
accuracy against the recurrent state size. ``sweep_summary`` says in words what a table swept, for titles."""

from __future__ import annotations

from .store import succeeded

__all__ = ["plot_accuracy_vs_width", "plot_accuracy_vs_state", "plot_accuracy_by_lr", "model_palette", "sweep_summary"]


def _values(df, col) -> list:
    return sorted(df[col].dropna().unique().tolist()) if col in df.columns else []


def sweep_summary(df) -> str:
    """What a results table swept, in words: the learning rates, the seeds, the recipe, the vocabulary."""
    lrs = ", ".join(f"{v:g}" for v in _values(df, "lr"))
    seeds = _values(df, "seed")
    recipe = ", ".join(map(str, _values(df, "recipe"))) if "recipe" in df.columns else ""
    parts = [f"lr ∈ {{{lrs}}}" if lrs else "", f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}" if seeds else "",
             f"{recipe or 'clean'} recipe", f"c = {_values(df, 'vocab_size')[0]}" if _values(df, "vocab_size") else ""]
    return "; ".join(p for p in parts if p)


def model_palette(models, mixers: dict | None = None) -> dict:
    """A colour per model: the project's ``MIXER_COLORS`` colour of its mixer when no other model has taken
    it, else the next colour of seaborn's colorblind, then dark, palette that is not close to a colour taken
    (``_close``: seaborn's colorblind blue and the project's attention blue differ by one hex digit)."""
    import seaborn as sns

    from ..plotting import MIXER_COLORS

    candidates = list(dict.fromkeys(sns.color_palette("colorblind").as_hex() + sns.color_palette("dark").as_hex()))
    used, out = [], {}
    for m in models:
        c = MIXER_COLORS.get((mixers or {}).get(m, m))
        if c is None or any(_close(c, u) for u in used):
            free = [x for x in candidates if not any(_close(x, u) for u in used)]
            if not free:
                raise ValueError(f"models: more than the {len(used)} distinct colours the palettes hold")
            c = free[0]
        used.append(c)
        out[m] = c
    return out


def _close(a: str, b: str, tol: int = 48) -> bool:
    """Whether two "#rrggbb" colours are within ``tol`` of each other in every channel."""
    return all(abs(int(a[i:i + 2], 16) - int(b[i:i + 2], 16)) <= tol for i in (1, 3, 5))


def _format_axes(g, logx: bool, ticks=None):
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for ax in g.axes.flat:
        if logx:
            ax.set_xscale("log")
        if ticks is not None:
            ax.set_xticks(ticks)
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-0.03, 1.03)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.tick_params(axis="x", labelsize=7)


def _facets(best, x: str, metric: str, title: str, logx: bool, ticks=None):
    import matplotlib.pyplot as plt
    import seaborn as sns

    models = list(dict.fromkeys(best["model"]))
    palette = model_palette(models, dict(zip(best["model"], best["mixer"], strict=True)))
    # the line is the mean over seeds, the band the min-max over seeds (the 0-100 percentile interval)
    g = sns.relplot(data=best, x=x, y=metric, hue="model", hue_order=models, col="seq_len", kind="line",
                    marker="o", palette=palette, height=2.25, aspect=1.1, errorbar=("pi", 100),
                    facet_kws={"sharex": True, "sharey": True})
    _format_axes(g, logx, ticks)
    g.set_titles("Sequence Length: {col_name}")
    g.set_ylabels("MQAR accuracy")
    g.figure.suptitle(title, y=1.04, fontsize=9)
    plt.close(g.figure)
    return g.figure


def plot_accuracy_vs_width(best, metric: str = "test_accuracy", title: str = "", failures=None):
    """Figure 2 (top row): ``metric`` against d_model, one panel per sequence length, one line per model
    (the mean over seeds of a ``select_best`` table, with a min–max band over the seeds). ``failures`` (a
    ``reference_failures`` table) marks the reference model's failing cells with a red ring and its value."""
    ticks = sorted(best["d_model"].unique().tolist())
    fig = _facets(best, "d_model", metric, title, logx=True, ticks=ticks)
    ns = sorted(best["seq_len"].unique().tolist())
    for ax, n in zip(fig.axes, ns, strict=False):
        ax.set_xlabel("Model dimension")
        if failures is None:
            continue
        for _, r in failures[failures["seq_len"] == n].iterrows():
            ax.plot([r["d_model"]], [r["mean"]], "o", ms=11, mfc="none", mec="red", mew=1.5)
            last = r["d_model"] == max(ticks)  # keep the label inside the panel, clear of the tick labels
            ax.annotate(f"{r['model']} {r['mean']:.2f} (< 0.99)", (r["d_model"], r["mean"]),
                        xytext=(-8 if last else 0, 12), textcoords="offset points", ha="right" if last else "center",
                        fontsize=6, color="red", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
    return fig


def plot_accuracy_by_lr(df, metric: str = "test_accuracy", title: str = "", models=None):
    """Every learning rate's result (not only the best): one row of panels per model, one column per sequence
    length, ``metric`` against d_model with one line per learning rate (mean over seeds, min–max band over the
    seeds), from a ``load_results`` table (failed runs left out)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = succeeded(df)
    if models is not None:
        ok = ok[ok["model"].isin(models)]
    if ok.empty:
        raise ValueError("df: no run to plot")
    ok = ok.assign(learning_rate=[f"{v:g}" for v in ok["lr"]])
    lr_order = [f"{v:g}" for v in sorted(ok["lr"].unique())]
    order = list(dict.fromkeys(ok["model"])) if models is None else [m for m in models if m in set(ok["model"])]
    # a long name, drawn vertically beside its row, would stretch the rows apart: wrap it at its underscores
    label = {m: m.replace("_", "\n") if len(m) > 14 else m for m in order}
    ok = ok.assign(model_row=ok["model"].map(label))
    g = sns.relplot(data=ok, x="d_model", y=metric, hue="learning_rate", hue_order=lr_order, row="model_row",
                    row_order=[label[m] for m in order], col="seq_len", kind="line", marker="o", palette="viridis",
                    height=1.9, aspect=1.25, errorbar=("pi", 100),
                    facet_kws={"sharex": True, "sharey": True, "margin_titles": True})
    _format_axes(g, True, sorted(ok["d_model"].unique().tolist()))
    g.set_titles(row_template="{row_name}", col_template="N = {col_name}")
    g.set_axis_labels("Model dimension", "MQAR accuracy")
    g.figure.suptitle(title, y=1.02, fontsize=9)
    plt.close(g.figure)
    return g.figure


def plot_accuracy_by_budget(df, metric: str = "test_accuracy", title: str = ""):
    """The learning-rate curve at each step budget: one panel per sequence length, ``metric`` against the
    learning rate (log x), one line per budget (the ``epochs`` of the runs, labelled by their epochs and most
    steps taken), mean over seeds with a min–max band, from a ``load_results`` table of one model and one width
    (failed runs left out). Notebook 04 draws the attention cells below 0.99 with it."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = succeeded(df)
    if ok.empty:
        raise ValueError("df: no run to plot")
    for col in ("model", "d_model"):
        if ok[col].nunique() != 1:
            raise ValueError(f"df: must hold one {col}, not {sorted(ok[col].unique())}")
    most = ok.groupby("epochs")["steps"].max()
    label = {e: f"{int(e)} epochs (<= {int(s):,} steps)" for e, s in most.items()}
    ok = ok.assign(budget=ok["epochs"].map(label))
    g = sns.relplot(data=ok, x="lr", y=metric, hue="budget", hue_order=[label[e] for e in sorted(label)],
                    col="seq_len", kind="line", marker="o", palette="rocket", height=2.4, aspect=1.2,
                    errorbar=("pi", 100), facet_kws={"sharey": True})
    _format_axes(g, True, sorted(ok["lr"].unique().tolist()))
    for ax in g.axes.flat:
        ax.axhline(0.99, color="0.5", lw=0.8, ls="--")
    g.set_titles(col_template="N = {col_name}")
    g.set_axis_labels("Learning rate", "MQAR accuracy")
    g.figure.suptitle(title, y=1.04, fontsize=9)
    plt.close(g.figure)
    return g.figure


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
