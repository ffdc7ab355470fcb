"""Grid points and the profiles ``verify`` runs: ``CPU_GRID``, ``GPU_GRID``, ``SMOKE_GRID``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import torch

from ..utils import resolve_device

__all__ = ["default_K", "grid_points", "Profile", "CPU_GRID", "GPU_GRID", "SMOKE_GRID", "profile"]


def default_K(N: int, c: int) -> int:
    """Key-value pairs of a grid point: the most Algorithm 1 allows, capped at 16: min(N//4, c/2 - 1, 16)."""
    return min(N // 4, c // 2 - 1, 16)


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


def _sweep(Ns, c_fixed, cs, N_fixed) -> list[dict]:
    """N varied at c = c_fixed, then c varied at N = N_fixed (no duplicate point)."""
    return grid_points(Ns, [c_fixed]) + grid_points([N_fixed], [x for x in cs if x != c_fixed])


def _with_slots(points) -> list[dict]:
    """baseconv_input_dependent is built with t = K distance slots, the most a make_mqar input with K
    pairs (filler 0) needs; its default, N - 1 slots, would make it O(N²c)."""
    return [dict(pt, max_distances=pt["K"]) for pt in points]


def _profile(name, dtype, num_instances, sweeps: dict, notes: str) -> Profile:
    grids = {k: (_with_slots(_sweep(*v)) if k == "baseconv_input_dependent" else _sweep(*v))
             for k, v in sweeps.items()}
    return Profile(name, dtype, num_instances, grids, {k: v[1] for k, v in sweeps.items()}, notes)


_N_CPU, _C_CPU = [16, 64, 256, 1024], [16, 64, 256, 1024]
CPU_GRID = _profile(
    "cpu", torch.float64, 16,
    {
        "attention_h27": (_N_CPU, 64, _C_CPU, 64),
        "attention_softmax": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_data_independent": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_sorting": (_N_CPU, 64, _C_CPU, 64),
        "baseconv_input_dependent": (_N_CPU, 64, _C_CPU, 64),
    },
    "float64, N up to 1024 and c up to 1024 (N varied at c = 64, c varied at N = 64); the heaviest "
    "points are baseconv_data_independent at N = 1024 (width 7168) and baseconv_sorting at N = 1024 "
    "(906 layers), ~10 s each for 16 instances on 2 cores.",
)
GPU_GRID = _profile(
    "gpu", torch.float32, 8,
    {
        "attention_h27": ([64, 1024, 16384], 64, [64, 1024, 4096], 1024),
        "attention_softmax": ([64, 1024, 16384], 1024, [64, 1024, 65536], 1024),
        "baseconv_data_independent": ([64, 256, 1024, 2048], 1024, [64, 1024, 65536], 256),
        "baseconv_sorting": ([64, 1024, 16384], 1024, [64, 1024, 65536], 1024),
        "baseconv_input_dependent": ([64, 1024, 4096], 1024, [64, 1024, 65536], 1024),
    },
    "float32 with margins. attention_h27 stops at c = 4096 (54c² dense weights: 0.9e9 numbers); "
    "baseconv_data_independent at N = 2048 (O(N² log c) stored numbers) and "
    "baseconv_input_dependent at N = 4096 (a Python loop over examples and distances); baseconv_sorting "
    "goes to N = 16384 (1820 layers of width 169, O(N log N) stored numbers).",
)
SMOKE_GRID = _profile(
    "smoke", torch.float64, 4,
    {name: ([16, 32, 64, 128] if name == "baseconv_sorting" else [16, 32, 64], 16, [16, 32, 64], 16)
     for name in CPU_GRID.grids},
    "a few seconds per construction, for SMOKE runs and tests; baseconv_sorting also at N = 128, the "
    "smallest N above its width (79 at c = 16), so that Based Thm 3.4's hypothesis d < N holds somewhere",
)


def profile(device="auto") -> Profile:
    """``GPU_GRID`` when ``device`` resolves to CUDA, else ``CPU_GRID``."""
    return GPU_GRID if resolve_device(device).type == "cuda" else CPU_GRID
