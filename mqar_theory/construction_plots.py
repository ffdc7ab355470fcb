"""The figures of notebook 02 as plain functions: sizes against N, and float32 margins against N.

* ``plot_parameter_efficiency(tables, profile)``: measured parameters and width of each construction
  against N (its profile's N sweep at fixed c), log-log, each with the curve of the claim it is
  checked against (the bound's sympy expression, lambdified, times its constant in the
  construction's claim record); which bounds, markers and units: each construction's ``style``. Attention is flat in N;
  the all-distances BaseConv grows like N² log c; the sorting-network BaseConv follows Thm 4.4's
  N log c · polylog; the input-dependent one t·N·c.
* ``float32_margins(tables, profile)``: the N-sweep rows with the smallest float32 decision margin
  (re-measured in float32 when the profile runs in float64), asserting exactness and margin > 0.
* ``plot_margins(margin_tables)``: those margins against N, one panel per construction (their
  units differ; each is 1/2 when ideal).

Each returns the figure; saving is ``plotting.savefig``'s job. The tables are ``bounds.verify``'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from . import bounds as B
from .constructions import BUILDERS, CONSTRUCTIONS
from .plotting import MIXER_COLORS

__all__ = ["CURVES", "STYLES", "MARGIN_UNITS", "float32_margins", "plot_parameter_efficiency",
           "plot_margins"]

def _style(name: str) -> dict:
    """The plot style a construction declares in its own file (``Construction.style``)."""
    return dict(CONSTRUCTIONS[name].style) if name in CONSTRUCTIONS else {}


def _color(name: str) -> str:
    return _style(name).get("color") or MIXER_COLORS.get(name, "0.3")


class _ByName(Mapping):
    """A read-only view {construction name: one entry of its ``style``} (kept for old callers)."""

    def __init__(self, key, default):
        self.key, self.default = key, default

    def __getitem__(self, name):
        st = _style(name)
        if self.key == "marker":
            return (st.get("marker", "o"), st.get("size", 6))
        return st.get(self.key, self.default)

    def __iter__(self):
        return iter(CONSTRUCTIONS)

    def __len__(self):
        return len(CONSTRUCTIONS)


CURVES = _ByName("curves", (None, None))  # construction -> (bound on the parameters panel, on the width panel)
STYLES = _ByName("marker", ("o", 6))  # construction -> (marker, size)
MARGIN_UNITS = _ByName("margin_units", "score units")  # construction -> the units of its ``margin``


def _tex(name: str, bound_id: str) -> tuple[str, str]:
    return _style(name).get("tex", {}).get(bound_id, (bound_id, ""))


def _n_sweep_points(profile: B.Profile, name: str, table: pd.DataFrame) -> list[dict]:
    """The grid points of ``name``'s N sweep that ``table`` measured (so max_N / max_c carry over)."""
    done = set(zip(table["N"], table["c"], strict=True))
    return [pt for pt in profile.grids[name]
            if pt["c"] == profile.fixed_c[name] and (pt["N"], pt["c"]) in done]


def float32_margins(tables: dict, profile: B.Profile, device="auto", num_instances: int | None = None,
                    seed: int = 0, progress: bool = False) -> dict[str, pd.DataFrame]:
    """{construction: its N-sweep rows with ``margin_min`` in float32}, sorted by N.

    A float32 profile's tables already hold the margins; for a float64 profile the N-sweep points are
    measured again in float32 with margins (``num_instances`` None: the profile's). Asserts, per
    construction, accuracy 1.0 and margin_min > 0 at every point (AssertionError naming it).
    A construction whose N sweep lies outside the measured grid (max_c below its fixed c) is left out.
    """
    out = {}
    for name, table in tables.items():
        if profile.dtype == torch.float32:
            df = profile.n_sweep(name, table)
        else:
            pts = _n_sweep_points(profile, name, table)
            if not pts:
                continue
            df = B.measure(BUILDERS[name], pts, num_instances=num_instances or profile.num_instances,
                           device=device, dtype=torch.float32, seed=seed, margins=True, progress=progress,
                           bounds=[])
        if df.empty:
            continue
        bad = df[(df["accuracy"] < 1.0) | ~(df["margin_min"] > 0)]
        if len(bad):
            raise AssertionError(f"{name}: float32 answers not exact or margin <= 0 at\n"
                                 + bad[["N", "c", "accuracy", "margin_min"]].to_string(index=False))
        out[name] = df.sort_values("N").reset_index(drop=True)
    return out


def _label(name: str, bound_id: str) -> str:
    const = B.claim_const(name, bound_id)
    tex, source = _tex(name, bound_id)
    factor = "" if const == 1 else f"{const:g}\\,"
    return f"${factor}{tex}$ ({source})"


def plot_parameter_efficiency(tables: dict, profile: B.Profile, ax=None):
    """Parameters (left) and width (right) against N at each construction's fixed c, log-log, with
    the claim curves. ``ax``: None (a new figure) or a pair of Axes (parameters, width).
    Returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError(f"ax: must be None or a pair of Axes (parameters, width), got {len(axes)}")
        fig = axes[0].figure
    for name, table in tables.items():
        rows = profile.n_sweep(name, table)
        if rows.empty:
            continue
        color = _color(name)
        marker, size = STYLES[name]
        N_ = rows["N"].to_numpy(float)
        values = {"N": N_, "c": rows["c"].to_numpy(float),
                  "t": rows["t"].to_numpy(float)}
        for axis, col, bid in zip(axes, ["params", "width"], CURVES[name], strict=True):
            axis.plot(N_, rows[col], "-", marker=marker, ms=size, color=color,
                      label=f"{name} ($c$ = {profile.fixed_c[name]})")
            if bid is not None:  # the claim's expression times its constant, at the measured points
                curve = B.claim_const(name, bid) * B.get_bound(bid).evaluate(**values)
                axis.plot(N_, curve, "--", color=color, alpha=0.6, label=_label(name, bid))
    for axis, ylabel, title in zip(axes, ["parameters (stored hand-set numbers)", "width $d$"],
                                   ["parameters vs $N$", "model width vs $N$"], strict=True):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("sequence length $N$")
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        axis.legend(fontsize=6.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return fig


def plot_margins(margin_tables: dict, axes=None):
    """Smallest float32 decision margin of each construction against N, one panel per construction
    (each margin is in its own units, named in the panel; the dotted line is the ideal 1/2 and the
    panel's text the smallest value). ``axes``: None or a sequence of one Axes per construction.
    Returns the figure."""
    import matplotlib.pyplot as plt

    names = [n for n, df in margin_tables.items() if len(df)]
    if axes is None:
        fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.1 * max(1, len(names)), 3.3), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(axes))
        if len(axes) != len(names):
            raise ValueError(f"axes: must be None or {len(names)} Axes, one per construction, got {len(axes)}")
    fig = axes[0].figure
    for ax, name in zip(axes, names, strict=True):
        df = margin_tables[name]
        marker, size = STYLES[name]
        ax.plot(df["N"], df["margin_min"], "-", marker=marker, ms=size, color=_color(name))
        ax.axhline(0.5, color="gray", lw=0.8, ls=":")
        low = float(np.nanmin(df["margin_min"]))
        ax.text(0.03, 0.06, f"min {low:.7g}", transform=ax.transAxes, fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, max(0.6, 1.15 * float(np.nanmax(df["margin_min"]))) if math.isfinite(low) else 0.6)
        ax.set_xlabel("sequence length $N$")
        ax.set_title(f"{name}\n{MARGIN_UNITS[name]}", fontsize=8)
    axes[0].set_ylabel("smallest float32 margin (ideal 1/2)")
    fig.tight_layout()
    return fig
