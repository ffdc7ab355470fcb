"""Grid points and the profiles ``verify`` runs: ``CPU_GRID``, ``GPU_GRID``, ``SMOKE_GRID``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import torch

from ..utils import resolve_device

__all__ = ["default_K", "grid_points", "Profile", "CPU_GRID", "GPU_GRID", "SMOKE_GRID", "profile", "user_profile"]


def default_K(N: int, c: int) -> int:
    """Key-value pairs of a grid point: the most Algorithm 1 allows, min(N // 4, c/2 - 1)."""
    return min(N // 4, c // 2 - 1)


def grid_points(Ns, cs, K=None, **constants) -> list[dict]:
    """Every (N, c) pair as a grid point; K is ``default_K(N, c)``, a fixed int, or a callable ``K(N, c)``."""
    out = []
    for n_ in Ns:
        for c_ in cs:
            k = default_K(n_, c_) if K is None else (K(n_, c_) if callable(K) else K)
            out.append({"N": n_, "c": c_, "K": k, **constants})
    return out


@dataclass(frozen=True)
class Profile:
    """A grid per construction (N varied at c = ``fixed_c[name]``, then c varied at a fixed N), with
    the dtype and the number of random instances per point to run it with."""

    name: str
    dtype: torch.dtype
    num_instances: int
    grids: Mapping  # construction name -> list of grid points
    fixed_c: Mapping  # construction name -> the c of its N sweep
    notes: str = ""

    def n_sweep(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of a ``measure`` table of ``name`` that belong to its N sweep, sorted by N."""
        return df[df["c"] == self.fixed_c[name]].sort_values("N")


def _sweep(Ns, c_fixed, cs, N_fixed, K=None) -> list[dict]:
    """N varied at c = c_fixed, then c varied at N = N_fixed (no duplicate point)."""
    return grid_points(Ns, [c_fixed], K) + grid_points([N_fixed], [x for x in cs if x != c_fixed], K)


def _with_slots(points) -> list[dict]:
    """baseconv_input_dependent is built with K distance slots, the most a make_mqar input with K
    pairs (filler 0) needs (the slots only bound what it accepts; the bound reads the t measured
    from each input and the filters its program holds)."""
    return [dict(pt, max_distances=pt["K"]) for pt in points]


def _profile(name, dtype, num_instances, sweeps: dict, notes: str) -> Profile:
    grids = {k: (_with_slots(_sweep(*v)) if k == "baseconv_input_dependent" else _sweep(*v))
             for k, v in sweeps.items()}
    return Profile(name, dtype, num_instances, grids, {k: v[1] for k, v in sweeps.items()}, notes)


_N_CPU, _C_CPU = [16, 22, 66, 150, 256, 1000], [6, 10, 16, 66, 256, 1000]
CPU_GRID = _profile(
    "cpu", torch.float64, 16,
    {name: (_N_CPU, 66, _C_CPU, 66) for name in ("attention_h27", "attention_softmax", "baseconv_data_independent",
                                                  "baseconv_sorting", "baseconv_input_dependent")},
    "float64, off the power-of-two grid: N in {16, 22, 66, 150, 256, 1000} at c = 66, c in {6, 10, 16, "
    "66, 256, 1000} at N = 66; K = min(N/4, c/2 - 1) (K = N/4 = 16 on the c sweep from c = 34). The "
    "heaviest points are baseconv_data_independent and baseconv_sorting at N = 1000.",
)
GPU_GRID = _profile(
    "gpu", torch.float32, 8,
    {
        "attention_h27": ([66, 1000, 16000], 66, [66, 1000, 4000], 1000),
        "attention_softmax": ([66, 1000, 16000], 1000, [66, 1000, 65000], 1000),
        "baseconv_data_independent": ([66, 250, 1000, 2000], 1000, [66, 1000, 65000], 250),
        "baseconv_sorting": ([66, 1000, 16000], 1000, [66, 1000, 65000], 1000),
        "baseconv_input_dependent": ([66, 1000, 4000], 1000, [66, 1000, 65000], 1000,
                                     lambda n, c: min(default_K(n, c), 64)),
    },
    "float32 with margins, off the power-of-two grid. attention_h27 stops at c = 4000 (54c² dense "
    "weights); baseconv_data_independent at N = 2000 (O(N² log c) stored numbers) and "
    "baseconv_input_dependent at N = 4000 with K <= 64 (a stream of (2t+1)·c channels per example); "
    "baseconv_sorting goes to N = 16000.",
)
SMOKE_GRID = _profile(
    "smoke", torch.float64, 4,
    {name: ([10, 22, 46], 10, [6, 10, 34], 22) for name in CPU_GRID.grids},
    "a few seconds per construction, for SMOKE runs and tests; non-powers of two, K = min(N/4, c/2 - 1)",
)


def user_profile(vocab_sizes, seq_lens, dtype: torch.dtype = torch.float64, num_instances: int = 8) -> Profile:
    """Every (N, c) pair of the user's sizes for every construction (K = ``default_K``); ValueError
    naming the argument unless each is a non-empty list of integers >= 4 (vocab sizes even)."""
    from ..utils import is_int

    lists = {}
    for arg, given in (("vocab_sizes", vocab_sizes), ("seq_lens", seq_lens)):
        try:  # materialised once, so a generator is read once and a scalar is refused
            vals = None if given is None or isinstance(given, str) else list(given)
        except TypeError:
            vals = None
        if not vals:
            raise ValueError(f"{arg}={given!r}: must be a non-empty list of integers >= 4")
        for v in vals:
            if not (is_int(v) and v >= 4):
                raise ValueError(f"{arg}: {v!r} must be an integer >= 4")
            if arg == "vocab_sizes" and v % 2:
                raise ValueError(f"vocab_sizes: {v} must be even (keys [1, c/2), values [c/2, c))")
        lists[arg] = vals
    cs, Ns = sorted(set(lists["vocab_sizes"])), sorted(set(lists["seq_lens"]))
    names = list(CPU_GRID.grids)
    grids = {n: grid_points(Ns, cs) for n in names}
    grids["baseconv_input_dependent"] = _with_slots(grids["baseconv_input_dependent"])
    return Profile("user", dtype, num_instances, grids, {n: cs[0] for n in names},
                   f"every pair of N in {Ns} and c in {cs}; K = min(N/4, c/2 - 1)")


def profile(device="auto") -> Profile:
    """``GPU_GRID`` when ``device`` resolves to CUDA, else ``CPU_GRID``."""
    return GPU_GRID if resolve_device(device).type == "cuda" else CPU_GRID
