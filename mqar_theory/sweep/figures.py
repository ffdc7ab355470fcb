"""The sweep's figures, in the style of Zoology's Figure 2 (arXiv 2312.04927): one panel per sequence length,
accuracy (best over the learning rate) against the model width on a log axis, one line per model (the mean over
seeds, with a min–max band over the seeds); every learning rate's curve (``plot_accuracy_by_lr``); and the same
accuracy against the recurrent state size. ``sweep_summary`` says in words what a table swept, for titles."""

from __future__ import annotations

from .store import succeeded

__all__ = ["plot_accuracy_vs_width", "plot_accuracy_vs_state", "plot_accuracy_by_lr", "model_palette", "sweep_summary",
           "figure_legend", "wrap_title"]


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


#: one marker and one dash pattern per model of a panel, so lines that lie on each other stay apart
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DASHES = ("", (4, 1.5), (1, 1), (3, 1, 1, 1), (6, 2), (2, 2), (5, 1, 1, 1, 1, 1), (8, 2, 2, 2), (1, 2), (4, 4))


def wrap_title(fig, title: str, fontsize: float = 9) -> str:
    """``title`` broken into lines that fit the figure's width (about 0.55 em per character)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    glued = title.replace(" = ", "\u00a0=\u00a0")  # never break "c = 64" (textwrap splits at ASCII spaces only)
    return textwrap.fill(glued, width=width, break_on_hyphens=False)


def figure_legend(fig, handles, labels, ncol: int | None = None):
    """The one legend of a panel figure, below the panels, centred (it does not take width from them)."""
    for old in list(fig.legends):
        old.remove()
    ncol = ncol or (len(labels) if len(labels) <= 5 else -(-len(labels) // 2))
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False,
                      fontsize=8, handlelength=3.2)


def _dodged(df, x: str, models, dodge: float):
    """``df`` with ``x`` moved by ``dodge`` octaves per model, centred on the true value (log axis)."""
    if not dodge:
        return df
    mid = (len(models) - 1) / 2
    shift = {m: 2.0 ** (dodge * (i - mid)) for i, m in enumerate(models)}
    return df.assign(**{x: df[x].astype(float) * df["model"].map(shift)})


def _facets(best, x: str, metric: str, title: str, logx: bool, ticks=None, dodge: float = 0.0):
    """One panel per sequence length; per model a colour, a marker and a dash pattern, the mean over the seeds
    with a min–max band; ``dodge`` shifts the models apart by that many octaves (their values are unchanged)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    models = list(dict.fromkeys(best["model"]))
    if len(models) > len(MARKERS):
        raise ValueError(f"best: at most {len(MARKERS)} models per figure, got {len(models)}")
    palette = model_palette(models, dict(zip(best["model"], best["mixer"], strict=True)))
    markers = dict(zip(models, MARKERS, strict=False))
    dashes = dict(zip(models, DASHES, strict=False))
    # the line is the mean over seeds, the band the min-max over seeds (the 0-100 percentile interval)
    g = sns.relplot(data=_dodged(best, x, models, dodge), x=x, y=metric, hue="model", hue_order=models,
                    style="model", style_order=models, markers=markers, dashes=dashes, col="seq_len", kind="line",
                    palette=palette, height=2.6, aspect=1.3, errorbar=("pi", 100), legend=False,
                    facet_kws={"sharex": True, "sharey": True})
    _format_axes(g, logx, ticks)
    g.set_titles("Sequence Length: {col_name}")
    g.set_ylabels("MQAR accuracy")
    g.tight_layout()
    handles = [Line2D([], [], color=palette[m], marker=markers[m], lw=1.5,
                      **({"dashes": dashes[m]} if dashes[m] else {})) for m in models]
    figure_legend(g.figure, handles, models)
    g.figure.suptitle(wrap_title(g.figure, title), y=1.0, va="bottom", fontsize=9)
    plt.close(g.figure)
    return g.figure


def _clear_spot(ax, x0: float, y0: float) -> tuple[float, float]:
    """Where (axes fraction) a short label for the point (x0, y0) overlaps least with what the panel draws:
    the candidate farthest from every drawn point (lines sampled along their segments), a box 0.4 x 0.1 wide."""
    import numpy as np

    (xa, xb), (ya, yb) = ax.get_xlim(), ax.get_ylim()
    fx = (lambda v: (np.log(v) - np.log(xa)) / (np.log(xb) - np.log(xa))) if ax.get_xscale() == "log" else (
        lambda v: (np.asarray(v) - xa) / (xb - xa))

    def fy(v):
        return (np.asarray(v) - ya) / (yb - ya)

    pts = []
    for line in ax.get_lines():
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if len(xs) == 0:
            continue
        px, py = fx(xs), fy(ys)
        for i in range(len(px)):
            pts.append((px[i], py[i]))
            if i + 1 < len(px):
                for t in np.linspace(0, 1, 12)[1:-1]:
                    pts.append((px[i] + t * (px[i + 1] - px[i]), py[i] + t * (py[i + 1] - py[i])))
    pts = np.array(pts) if pts else np.zeros((0, 2))
    best, spot = -1.0, (0.5, 0.1)
    for cy in (0.1, 0.22, 0.78, 0.9):
        for cx in (0.3, 0.5, 0.7):
            # distance from the label's box (0.4 wide, 0.1 tall, centred at cx, cy) to the nearest drawn point
            dx = np.maximum(np.abs(pts[:, 0] - cx) - 0.2, 0) if len(pts) else np.array([1.0])
            dy = np.maximum(np.abs(pts[:, 1] - cy) - 0.05, 0) if len(pts) else np.array([1.0])
            # clear by 0.12 is clear enough; among those, the one nearest the point (a short arrow)
            near = float(np.hypot(cx - float(fx(x0)), cy - float(fy(y0))))
            score = min(float(np.min(np.hypot(dx, dy))), 0.12) - 0.05 * near
            if score > best + 1e-9:
                best, spot = score, (cx, cy)
    return spot


def plot_accuracy_vs_width(best, metric: str = "test_accuracy", title: str = "", failures=None, dodge: float = 0.0):
    """Figure 2 (top row): ``metric`` against d_model, one panel per sequence length, one line per model
    (the mean over seeds of a ``select_best`` table, with a min–max band over the seeds). ``failures`` (a
    ``reference_failures`` table) marks the reference model's failing cells with a red ring, labelled with its
    value in the clearest part of the panel, an arrow to the ring. ``dodge``: octaves between adjacent models'
    points (0: none), for models whose lines lie on each other."""
    ticks = sorted(best["d_model"].unique().tolist())
    fig = _facets(best, "d_model", metric, title, logx=True, ticks=ticks, dodge=dodge)
    models = list(dict.fromkeys(best["model"]))
    ns = sorted(best["seq_len"].unique().tolist())
    for ax, n in zip(fig.axes, ns, strict=False):
        ax.set_xlabel("Model dimension d")
        if failures is None:
            continue
        for _, r in failures[failures["seq_len"] == n].iterrows():
            x = float(_dodged(r.to_frame().T, "d_model", models, dodge)["d_model"].iloc[0]) if r["model"] in models \
                else float(r["d_model"])
            ax.plot([x], [r["mean"]], "o", ms=11, mfc="none", mec="red", mew=1.5)
            ax.annotate(f"{r['model']} {r['mean']:.2f} (< 0.99)", (x, r["mean"]), xytext=_clear_spot(ax, x, r["mean"]),
                        textcoords="axes fraction", ha="center", va="center", fontsize=7, color="red",
                        arrowprops={"arrowstyle": "-", "color": "red", "lw": 0.8, "shrinkB": 6},
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "red", "lw": 0.5})
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
