"""Grid points and the profiles ``verify`` runs: ``CPU_GRID``, ``GPU_GRID``, ``SMOKE_GRID``, ``user_profile``.

A profile names a dtype, a number of random instances per point and which sweep of each construction to
run; the sweeps themselves belong to the constructions (``Construction.grids[profile]``: N varied at a
fixed c, then c varied at a fixed N), so a profile's ``grids`` always covers every registered construction.
"""

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


def _constructions():
    from ..constructions import CONSTRUCTIONS

    return CONSTRUCTIONS


def _with_constants(cls, points) -> list[dict]:
    return [{**pt, **cls.grid_constants(pt)} for pt in points]


@dataclass(frozen=True)
class Profile:
    """A dtype, instances per point, and the sweep ``key`` of each construction (or, for a user profile,
    every pair of ``user`` = (Ns, cs)); ``points`` and ``points_c`` give explicit grids instead (construction
    name -> points, and -> the c of its N sweep)."""

    name: str
    dtype: torch.dtype
    num_instances: int
    points: Mapping | None = None
    points_c: Mapping | None = None
    key: str = ""
    notes: str = ""
    user: tuple | None = None

    @property
    def grids(self) -> dict[str, list[dict]]:
        """construction name -> its grid points in this profile."""
        if self.points is not None:
            return {k: list(v) for k, v in self.points.items()}
        out = {}
        for name, cls in _constructions().items():
            if self.user is not None:
                pts = grid_points(*self.user)
            else:
                g = cls.grids.get(self.key)
                if g is None:
                    continue
                pts = grid_points(g["Ns"], [g["c_fixed"]], g["K"]) + grid_points(
                    [g["N_fixed"]], [x for x in g["cs"] if x != g["c_fixed"]], g["K"])
            out[name] = _with_constants(cls, pts)
        return out

    @property
    def fixed_c(self) -> dict[str, int]:
        """construction name -> the c of its N sweep."""
        if self.points is not None:
            return dict(self.points_c or {k: min(pt["c"] for pt in v) for k, v in self.points.items()})
        if self.user is not None:
            return {name: min(self.user[1]) for name in _constructions()}
        return {name: cls.grids[self.key]["c_fixed"] for name, cls in _constructions().items()
                if self.key in cls.grids}

    def n_sweep(self, name: str, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of a ``measure`` table of ``name`` that belong to its N sweep, sorted by N."""
        return df[df["c"] == self.fixed_c[name]].sort_values("N")


CPU_GRID = Profile("cpu", torch.float64, 16, key="cpu", notes=
                   "float64, off the power-of-two grid: N in {16, 22, 66, 150, 256, 1000} at c = 66, c in {6, 10, 16, "
                   "66, 256, 1000} at N = 66 (each construction's own sweep); K = min(N/4, c/2 - 1).")
GPU_GRID = Profile("gpu", torch.float32, 8, key="gpu", notes=
                   "float32 with margins, off the power-of-two grid, each construction's own sweep (the largest "
                   "sizes each can hold: see its ``grids``).")
SMOKE_GRID = Profile("smoke", torch.float64, 4, key="smoke", notes=
                     "a few seconds per construction, for SMOKE runs and tests; non-powers of two, "
                     "K = min(N/4, c/2 - 1)")


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
    return Profile("user", dtype, num_instances, notes=f"every pair of N in {Ns} and c in {cs}; K = min(N/4, c/2 - 1)",
                   user=(tuple(Ns), tuple(cs)))


def profile(device="auto") -> Profile:
    """``GPU_GRID`` when ``device`` resolves to CUDA, else ``CPU_GRID``."""
    return GPU_GRID if resolve_device(device).type == "cuda" else CPU_GRID
