"""Views of the MQAR task for teaching: a worked example, the query-gap law, and task statistics.

The notebooks call these; they only read tensors made by ``mqar_theory.data``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .data import IGNORE_INDEX, MQARData, mqar_oracle, query_slot_probabilities

__all__ = ["example_table", "plot_example", "query_slots", "query_gap_table", "plot_query_gaps", "task_statistics"]

ROLE_COLORS = {"key": "#0072B2", "value": "#E69F00", "query": "#009E73", "filler": "#DDDDDD"}


def example_table(data: MQARData, index: int = 0) -> pd.DataFrame:
    """One example, position by position: token, role, label and the Definition 3.1 answer."""
    x = data.inputs[index]
    y = data.labels[index]
    K = data.config.num_kv_pairs if data.config is not None else 0
    ans = mqar_oracle(x)
    roles = []
    for i, lab in enumerate(y.tolist()):
        if lab != IGNORE_INDEX:
            roles.append("query")
        elif i < 2 * K:
            roles.append("key" if i % 2 == 0 else "value")
        else:
            roles.append("filler")
    return pd.DataFrame(
        {
            "position": range(len(x)),
            "token": x.tolist(),
            "role": roles,
            "label": pd.array([v if v != IGNORE_INDEX else None for v in y.tolist()], dtype="Int64"),
            "answer (Def 3.1)": pd.array([a if r == "query" else None for a, r in zip(ans.tolist(), roles)],
                                         dtype="Int64"),
        }
    ).set_index("position")


def plot_example(data: MQARData, index: int = 0, ax=None):
    """Tokens as coloured cells (key / value / query / filler) with an arc from each query to its key."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

    tab = example_table(data, index)
    N = len(tab)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.32 * N), 2.4))
    first = {}
    for i, (tok, role) in enumerate(zip(tab["token"], tab["role"])):
        ax.add_patch(Rectangle((i, 0), 0.92, 1, color=ROLE_COLORS[role]))
        ax.text(i + 0.46, 0.5, str(tok), ha="center", va="center", fontsize=6, rotation=90)
        if role == "key":
            first[tok] = i
        if role == "query" and tok in first:
            j = first[tok]
            ax.add_patch(FancyArrowPatch((i + 0.46, 1.02), (j + 0.46, 1.02), connectionstyle="arc3,rad=0.35",
                                         arrowstyle="->", color=ROLE_COLORS["query"], lw=0.8))
            ax.text(i + 0.46, -0.12, f"→{tab['label'].iloc[i]}", ha="center", va="top", fontsize=6)
    ax.set_xlim(-0.2, N + 0.2)
    ax.set_ylim(-0.6, 2.6)
    ax.set_yticks([])
    ax.set_xlabel("position")
    ax.legend(handles=[Patch(color=c, label=r) for r, c in ROLE_COLORS.items()], ncol=4, loc="upper right",
              fontsize=7, frameon=False)
    ax.grid(False)
    return ax


def query_slots(data: MQARData) -> np.ndarray:
    """(n, K) query slot g_j of key j (its query sits at position 2K + 2 g_j)."""
    K = data.config.num_kv_pairs
    x, lab = data.inputs, data.labels != IGNORE_INDEX
    keys = x[:, 0 : 2 * K : 2]  # (n, K)
    hit = (x[:, None, 2 * K :] == keys[:, :, None]) & lab[:, None, 2 * K :]  # (n, K, N - 2K)
    return (hit.float().argmax(-1) // 2).numpy()


def query_gap_table(data: MQARData) -> pd.DataFrame:
    """Empirical slot frequencies (first key, all keys pooled) against p(g) ∝ (g+1)^(a-1)."""
    cfg = data.config
    g = query_slots(data)
    S = cfg.num_slots
    return pd.DataFrame(
        {
            "g": np.arange(S),
            "p(g)": query_slot_probabilities(S, cfg.power_a),
            "key 1": np.bincount(g[:, 0], minlength=S) / len(g),
            "all keys": np.bincount(g.ravel(), minlength=S) / g.size,
        }
    ).set_index("g")


def plot_query_gaps(data: MQARData, ax=None):
    import matplotlib.pyplot as plt

    tab = query_gap_table(data)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    g = tab.index.to_numpy() + 1
    ax.plot(g, tab["p(g)"], "k-", label=r"$p(g) \propto (g+1)^{a-1}$")
    ax.plot(g, tab["key 1"], "o", ms=3, label="first key's slot (first draw)")
    ax.plot(g, tab["all keys"], "s", ms=3, mfc="none", label="all keys (without replacement)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("query slot $g + 1$ after the context")
    ax.set_ylabel("probability")
    ax.legend(fontsize=7)
    return ax


def task_statistics(data: MQARData, name: str) -> dict:
    """Queries per example, distinct key->query distances per example (t of Thm 4.5), vocabulary used."""
    x, lab = data.inputs, data.labels != IGNORE_INDEX
    n, N = x.shape
    dists = []
    for row, m in zip(x.tolist(), lab.tolist()):
        first = {}
        ds = set()
        for i, tok in enumerate(row):
            if m[i] and tok in first:
                ds.add(i - first[tok])
            first.setdefault(tok, i)
        dists.append(len(ds))
    return {
        "task": name,
        "examples": n,
        "N": N,
        "tokens used": int(torch.unique(x).numel()),
        "queries / example": float(lab.sum(1).float().mean()),
        "query positions used": int(lab.any(0).sum()),
        "distinct distances / example": float(np.mean(dists)),
    }
