"""Tables and figures of notebook 03: a circuit drawn by levels, a stack as a table of (W, b1, b2, h), and
the compilers' layers and parameters against s and Δ with Thm 4.2's curves (Zoology, arXiv 2312.04927)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from .circuit import ArithmeticCircuit
from .claims import thm42_layers_bound, thm42_params_bound
from .stack import BaseConvStack

__all__ = ["draw_circuit", "layer_table", "plot_compilation", "LAYOUT_COLORS"]

LAYOUT_COLORS = {"levels": "#0072B2", "sequential": "#D55E00", "preserving": "#009E73", "theorem": "#000000"}


def draw_circuit(ax, circuit: ArithmeticCircuit) -> None:
    """Gates as labelled nodes, one row per level (inputs and constants at the bottom), outputs ringed."""
    by_level: dict[int, list[int]] = {}
    for k in circuit.order:
        by_level.setdefault(circuit.level[k], []).append(k)
    pos = {k: (i - (len(ks) - 1) / 2, lv) for lv, ks in by_level.items() for i, k in enumerate(ks)}
    for k, g in enumerate(circuit.gates):
        if g[0] in ("add", "mul"):
            for a in g[1:]:
                ax.annotate("", xy=pos[k], xytext=pos[a], arrowprops=dict(arrowstyle="->", color="0.5", lw=0.8,
                                                                          shrinkA=9, shrinkB=9))
    label = {"input": lambda g: f"u[{g[1]},{g[2]}]", "const": lambda g: f"{g[1]:g}", "add": lambda g: "+",
             "mul": lambda g: "×"}
    for k, (x, y) in pos.items():
        g = circuit.gates[k]
        ring = "k" if k in circuit.outputs else "none"
        ax.scatter([x], [y], s=700, c="#f0f0f0" if g[0] in ("input", "const") else "#cfe3f5", edgecolors=ring,
                   linewidths=1.5, zorder=2)
        ax.text(x, y, label[g[0]](g), ha="center", va="center", fontsize=7, zorder=3)
        ax.text(x + 0.22, y + 0.22, str(k), fontsize=6, color="0.4")
    ax.set_yticks(range(circuit.depth + 1))
    ax.set_ylabel("level")
    ax.set_xticks([])
    ax.set_title(f"size {circuit.size}, depth {circuit.depth}, width {circuit.width} (outputs ringed)")


def _nonzeros(t, max_items: int = 6) -> str:
    idx = t.nonzero().tolist()
    items = [f"{tuple(i) if len(i) > 1 else i[0]}:{t[tuple(i)].item():g}" for i in idx[:max_items]]
    return (", ".join(items) + (f", … ({len(idx)} in all)" if len(idx) > max_items else "")) or "0"


def layer_table(stack: BaseConvStack) -> pd.DataFrame:
    """One row per layer: the nonzero entries of W, b1, b2 and h (index:value), and what the layer is."""
    rows = []
    for i, m in enumerate(stack.layers):
        W, b1, b2, h = m.dense()  # the layer's dense form, eq. (1)
        kind = ("linear" if (h == 0).all() and (b2 == 1).all() else
                "convolution" if (W == 0).all() else "product / mixed")
        rows.append({"layer": i, "kind": kind, "W (row, col): value": _nonzeros(W), "b1": _nonzeros(b1),
                     "b2": _nonzeros(b2), "h (tap, ch)": _nonzeros(h), "cyclic": m.cyclic})
    return pd.DataFrame(rows)


def plot_compilation(df_depth: pd.DataFrame, df_size: pd.DataFrame):
    """Two panels: layers against Δ (``df_depth``, fixed s) and parameters against s (``df_size``,
    fixed Δ), one colour per layout (dense: solid, nonzero: dashed), and in black Thm 4.2's *rates* (Zoology,
    arXiv 2312.04927, §4.2): Õ(Δ) layers and Õ(sΔ) parameters read as Δ'·log2(s*)² and s*·Δ'·log2(s*)² with the
    constant the Õ hides set to 1. The theorem bounds a stack by a constant times these, a constant it does not
    state, so a measured curve above a black line is no violation: what can be read is how fast each grows. The
    legends sit below the panels (not over the curves) and a caption says what s* and Δ' are."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.9))
    for layout, g in df_depth.groupby("layout"):
        g = g.sort_values("depth")
        a.plot(g["depth"], g["layers"], "o-", color=LAYOUT_COLORS[layout], label=layout)
    g = df_depth.groupby("depth", as_index=False)["s_star"].max()
    ys = [thm42_layers_bound(s, dd) for s, dd in zip(g["s_star"], g["depth"])]
    a.plot(g["depth"], ys, "k--", label="Thm 4.2 rate Õ(Δ) as Δ'·log2(s*)², constant 1 (not a limit)")
    a.set_xlabel("circuit depth Δ")
    a.set_ylabel("BaseConv layers")
    a.set_yscale("log")
    a.set_title(f"BaseConv layers against circuit depth Δ (size s = {int(df_depth['s'].iloc[0])})", fontsize=9)
    for layout, g in df_size.groupby("layout"):
        g = g.sort_values("s")
        b.plot(g["s"], g["params"], "o-", color=LAYOUT_COLORS[layout], label=f"{layout} (dense)")
        b.plot(g["s"], g["nonzero_params"], "s--", color=LAYOUT_COLORS[layout], label=f"{layout} (nonzero)")
    g = df_size.groupby("s", as_index=False)[["s_star", "depth"]].max()
    ys = [thm42_params_bound(s, dd) for s, dd in zip(g["s_star"], g["depth"])]
    b.plot(g["s"], ys, "k-", label="Thm 4.2 rate Õ(sΔ) as s*·Δ'·log2(s*)², constant 1 (not a limit)")
    b.set_xscale("log")
    b.set_yscale("log")
    ticks = sorted(int(v) for v in df_size["s"].unique())
    b.set_xticks(ticks, [str(t) for t in ticks])
    b.minorticks_off()
    b.set_xlabel("circuit size s")
    b.set_ylabel("stored parameters")
    b.set_title(f"stored parameters against circuit size s (depth Δ = {int(np.max(df_size['depth']))})",
                fontsize=9)
    fig.tight_layout(rect=(0, 0.25, 1, 1))
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    b.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    caption = ("Coloured: the measured compiled stacks (dense: every stored number; nonzero: the nonzero entries). "
               "Black: the growth rates of Zoology Thm 4.2 (arXiv 2312.04927) with the constant their Õ hides set "
               "to 1; the theorem bounds a stack by an unstated constant times these, so a curve above a black line "
               "does not violate it: compare slopes. s* = s − #input gates + N·d (every entry of u an input), "
               "Δ' = max(Δ, 1).")
    fig.text(0.5, 0.01, textwrap.fill(caption, 150), ha="center", va="bottom", fontsize=7)
    return fig
