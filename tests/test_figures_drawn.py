"""The redrawn figures: what each one shows at a glance (legend placement, distinguishable lines,
labels clear of the data, honest bound labels, readable titles, an explorer image drawn at the size shown)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402


def _best(models=("baseconv", "baseconv_autocorrelation", "attention"), same=True):
    """A select_best-like table: the first models on one line (same accuracy), attention above them."""
    rows = []
    for m in models:
        for n in (64, 128):
            for d in (16, 32, 64):
                for seed in (0, 1):
                    acc = 0.9 if m == "attention" else (0.25 if same else 0.25 + 0.01 * models.index(m))
                    rows.append(dict(model=m, mixer=m.split("_")[0] if m != "attention" else m, seq_len=n,
                                     d_model=d, seed=seed, test_accuracy=acc + 0.001 * seed))
    return pd.DataFrame(rows)


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_title().startswith("Sequence Length: ")]


def test_width_figure_lines_differ_in_marker_and_dash_and_the_legend_is_below():
    from mqar_theory.sweep.figures import plot_accuracy_vs_width

    fig = plot_accuracy_vs_width(_best(), title="t " * 80, dodge=0.08)
    ax = _panels(fig)[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    assert len(lines) == 3
    assert len({ln.get_marker() for ln in lines}) == 3  # a marker per model
    assert len({str(ln.get_dashes() if hasattr(ln, "get_dashes") else ln.get_linestyle()) for ln in lines}
               | {ln.get_linestyle() for ln in lines}) >= 2
    # dodged: the two models on one line are drawn at different x, symmetric about the true widths
    xs = [np.asarray(ln.get_xdata(), float) for ln in lines]
    assert not np.allclose(xs[0], xs[1])
    assert np.allclose(np.exp(np.mean(np.log(np.vstack(xs)), axis=0)), [16, 32, 64])
    assert ax.get_xticks().tolist() == [16, 32, 64]  # the ticks stay on the true widths
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["baseconv", "baseconv_autocorrelation", "attention"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert all(box.y1 <= p.get_window_extent().y0 + 1 for p in _panels(fig))  # below every panel
    assert "\n" in fig._suptitle.get_text()  # a long title is wrapped to the figure, not widening it
    plt.close(fig)


def test_no_dodge_keeps_the_true_widths():
    from mqar_theory.sweep.figures import plot_accuracy_vs_width

    fig = plot_accuracy_vs_width(_best())
    for ln in _panels(fig)[0].get_lines():
        if len(ln.get_xdata()) == 3:
            assert np.asarray(ln.get_xdata(), float).tolist() == [16.0, 32.0, 64.0]
    plt.close(fig)


def test_failure_label_sits_clear_of_the_points_and_tick_labels():
    from mqar_theory.sweep.figures import plot_accuracy_vs_width

    best = _best(same=False)
    best.loc[(best["model"] == "attention") & (best["d_model"] == 16), "test_accuracy"] = 0.5
    fail = (best[(best["model"] == "attention") & (best["d_model"] == 16)].groupby(["model", "seq_len", "d_model"],
            as_index=False)["test_accuracy"].mean().rename(columns={"test_accuracy": "mean"}))
    fig = plot_accuracy_vs_width(best, failures=fail)
    fig.canvas.draw()
    for ax in _panels(fig):
        (label,) = [t for t in ax.texts if "(< 0.99)" in t.get_text()]
        box = label.get_window_extent()
        inside = ax.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1  # inside the panel: not over the y tick labels
        for ln in ax.get_lines():
            pts = ax.transData.transform(np.column_stack([ln.get_xdata(), ln.get_ydata()]).astype(float))
            assert not any(box.contains(x, y) for x, y in pts), ln.get_label()
    plt.close(fig)


def test_oracle_line_joins_the_legend_below():
    from matplotlib.lines import Line2D

    from mqar_theory.sweep.figures import figure_legend, plot_accuracy_vs_width

    fig = plot_accuracy_vs_width(_best())
    old = [t.get_text() for t in fig.legends[0].get_texts()]
    figure_legend(fig, list(fig.legends[0].legend_handles) + [Line2D([], [])], old + ["extra"])
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == old + ["extra"]
    plt.close(fig)


def _hybrid_summary():
    rows = []
    for rule, acc in (("programmatic/all", 0.8), ("programmatic/first", 0.8), ("learned", 0.05), ("random", 0.1)):
        for k in (4, 16):
            rows.append(dict(seq_len=64, d_model=32, num_kv_pairs=4, model=f"{rule}_{k}", rule=rule, k=k,
                             accuracy=acc, accuracy_min=acc, accuracy_max=acc,
                             mixer_flops_per_token=7000.0 + 150 * k, gap_closed=acc - 0.1))
    for rule, acc, f in (("-", 0.25, 7460.0), ("full", 1.0, 18400.0), ("attention", 0.7, 32800.0)):
        rows.append(dict(seq_len=64, d_model=32, num_kv_pairs=4, model=rule, rule=rule, k=np.nan, accuracy=acc,
                         accuracy_min=acc, accuracy_max=acc, mixer_flops_per_token=f, gap_closed=acc - 0.25))
    return pd.DataFrame(rows)


def test_hybrids_lower_panel_names_each_budget_once_on_a_top_axis():
    from mqar_theory.sweep.hybrid_figures import plot_hybrids

    fig = plot_hybrids(_hybrid_summary(), title="a long title for people " * 10)
    assert "\n" in fig._suptitle.get_text()  # wrapped to the panels, not widening the figure
    bottom = fig.axes[1]
    assert not [t for t in bottom.texts if t.get_text() in ("4", "16")]  # no label per point to collide
    (top_k,) = [c for c in bottom.child_axes]
    assert [t.get_text() for t in top_k.get_xticklabels()] == ["4", "16"]
    assert "budget k" in top_k.get_xlabel()
    plt.close(fig)


def test_circuit_figure_labels_the_black_lines_as_rates_not_limits():
    from mqar_theory.circuits.plots import plot_compilation

    depth = pd.DataFrame([dict(layout=lay, depth=dd, layers=2 * dd + (lay == "sequential") * 80, s=64, s_star=70)
                          for lay in ("levels", "preserving", "sequential") for dd in (2, 4)])
    size = pd.DataFrame([dict(layout=lay, s=s, params=100 * s, nonzero_params=10 * s, s_star=s + 6, depth=6)
                         for lay in ("levels", "preserving") for s in (32, 64)])
    fig = plot_compilation(depth, size)
    a, b = fig.axes
    assert not a.texts and not b.texts  # no label of its own, crossed by its line: the legend names it
    for ax in (a, b):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        (rate,) = [t for t in labels if "Thm 4.2" in t]
        assert "rate" in rate and "constant 1" in rate and "not a limit" in rate
        fig.canvas.draw()
        leg, panel = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert leg.y1 <= panel.y0  # below the panel, off the curves
    caption = fig.texts[0].get_text()
    assert "does not violate" in caption
    plt.close(fig)


def test_results_explorer_image_is_drawn_at_the_size_shown_and_titled_once(tmp_path):
    from mqar_theory import explorers as E

    with pytest.raises(ValueError, match="png"):
        E.png_size(b"GIF89a" + bytes(30))
    df = pd.DataFrame([dict(model=m, mixer=mx, seq_len=32, d_model=d, lr=1e-3, seed=0, test_accuracy=0.5,
                            status="ok") for m, mx in (("attention", "attention"), ("hybrid", "baseconv"))
                       for d in (16, 32)])
    fig = E.plot_results(df, "attention", 32)
    assert fig.axes[0].get_title() == "attention, N = 32"
    plt.close(fig)
    fig = E.plot_results(df, "hybrid", 32)
    assert fig.axes[0].get_title() == "hybrid (baseconv mixer), N = 32"
    w, h = E.png_size(E.figure_png(fig, dpi=E.RESULTS_DPI))
    assert w >= 900 and h >= 550  # about what JupyterLab shows (1,049 x 763), not 396 x 288 stretched


def test_results_explorer_widget_shows_the_png_at_its_own_width():
    from mqar_theory import explorers as E

    if not E.results_profiles():
        pytest.skip("no committed results")
    rx = E.results_explorer()
    assert rx.image.width == str(E.png_size(rx.image.value)[0])
    assert rx.image.layout.max_width == "100%"
