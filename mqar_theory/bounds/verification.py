"""``verify``: measure every construction over a profile's grid and run every claim, closed-form
size and float32 margin check, returning the tables and a tidy report (or raising ``ClaimFailed``)."""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..constructions import BUILDERS
from ..utils import is_int, resolve_device
from .bound import Bound
from .checking import check, growth_slopes
from .circuit_rows import circuit_rows
from .claims import CLAIMS, CONTEXT, EXPECTED_FAILURES, check_sizes, claim_spec
from .grids import CPU_GRID, GPU_GRID, SMOKE_GRID, Profile, profile, user_profile
from .measurement import measure
from .registry import get_bound

__all__ = ["ClaimFailed", "REPORT_COLUMNS", "verify", "register_construction"]


class ClaimFailed(AssertionError):
    """``verify`` found a claim that does not hold, or an expected failure that does not fail; the
    message names each construction and bound; ``tables`` and ``report`` are what was measured."""

    def __init__(self, message: str, tables: dict, report: pd.DataFrame):
        super().__init__(message)
        self.tables, self.report = tables, report


def _ratio_stats(df: pd.DataFrame, b: Bound) -> dict:
    """rows where the hypothesis holds, min/max ratio and growth slopes of ``b``'s ratio column."""
    col, hcol = f"ratio:{b.id}", f"holds:{b.id}"
    if col not in df.columns:
        return {"rows": 0, "min_ratio": math.nan, "max_ratio": math.nan, "slope_N": math.nan,
                "slope_c": math.nan}
    rows = df[df[hcol].astype(bool)] if hcol in df.columns else df
    slopes = growth_slopes(rows, col) if len(rows) else {"N": math.nan, "c": math.nan}
    slopes = {k: round(v, 9) + 0.0 for k, v in slopes.items()}  # a flat ratio reads 0, not ±1e-16 or -0
    return {"rows": len(rows), "min_ratio": float(rows[col].min()) if len(rows) else math.nan,
            "max_ratio": float(rows[col].max()) if len(rows) else math.nan,
            "slope_N": slopes["N"], "slope_c": slopes["c"]}


def _verify_construction(name: str, df: pd.DataFrame, dtype: torch.dtype) -> list[dict]:
    """Report rows of one construction: measured sizes against the closed forms, float32 margins,
    CLAIMS, EXPECTED_FAILURES, and the CONTEXT lower bounds (tabulated, not tested)."""
    out = []
    base = {"construction": name, "const": math.nan, "rows": len(df), "min_ratio": math.nan,
            "max_ratio": math.nan, "slope_N": math.nan, "slope_c": math.nan, "basis": "measured"}
    try:
        check_sizes(name, df)
        out.append({**base, "bound": "measured = closed-form sizes", "kind": "sizes", "expected": "holds",
                    "status": "holds", "ok": True, "message": ""})
    except AssertionError as e:
        out.append({**base, "bound": "measured = closed-form sizes", "kind": "sizes", "expected": "holds",
                    "status": "FAILED", "ok": False, "message": str(e)})
    except ValueError as e:  # a registered construction without closed forms: sizes are measured only
        out.append({**base, "bound": "measured = closed-form sizes", "kind": "sizes", "expected": "holds",
                    "status": "no closed form", "ok": True, "message": str(e)})
    if dtype == torch.float32:
        bad = df[~(df["margin_min"] > 0)]
        out.append({**base, "bound": "float32 margin > 0", "kind": "identity", "expected": "holds",
                    "min_ratio": float(df["margin_min"].min()), "status": "FAILED" if len(bad) else "holds",
                    "ok": not len(bad), "message": "" if not len(bad) else
                    f"{name}: margin_min <= 0 (or none) at N = {bad['N'].tolist()}, c = {bad['c'].tolist()}"})
    entries = [(bid, const, None) for bid, const in CLAIMS[name]]
    entries += [tuple(e) for e in EXPECTED_FAILURES.get(name, [])]
    for bid, const, phrase in entries:
        b = get_bound(bid)
        row = {**base, "bound": bid, "kind": b.kind, "const": float(const), **_ratio_stats(df, b),
               "expected": "holds" if phrase is None else f"fails: {phrase}",
               "basis": claim_spec(name, bid).basis if phrase is None else "expected failure"}
        try:
            check(df, b, const)
            passed, msg = True, ""
        except AssertionError as e:
            passed, msg = False, str(e)
        if phrase is None and passed:
            status, ok = "holds", True
        elif phrase is None and b.kind == "lower" and "holds at no grid point" in msg:
            status, ok = "vacuous (hypothesis holds at no grid point)", True
        elif phrase is None:
            status, ok = "FAILED", False
        elif passed and phrase == "grows" and math.isnan(row["slope_N"]) and math.isnan(row["slope_c"]):
            status, ok, msg = "undecided (the grid has no N or c sweep)", True, ""
        elif passed:
            status, ok, msg = "UNEXPECTED PASS", False, f"{bid}: expected to fail ({phrase}) but holds"
        elif phrase in msg:
            status, ok = f"fails as expected ({phrase})", True
        else:
            status, ok = f"FAILED (expected '{phrase}')", False
        # a failure keeps the whole message (it names the failing rows); ok keeps its first line
        out.append({**row, "status": status, "ok": ok, "message": msg if not ok else msg.split("\n")[0]})
    for bid in CONTEXT.get(name, []):
        b = get_bound(bid)
        stats = _ratio_stats(df, b)
        status = ("context: hypothesis holds at no grid point" if stats["rows"] == 0 else
                  f"context: measured/bound in [{stats['min_ratio']:.3g}, {stats['max_ratio']:.3g}]")
        out.append({**base, "bound": bid, "kind": b.kind, "const": math.nan, **stats, "basis": "context",
                    "expected": "not a test", "status": status, "ok": True, "message": b.source})
    return out


def register_construction(name: str, builder, like: str = "attention_softmax") -> None:
    """Make ``verify`` run ``builder(vocab_size, seq_len)`` as ``name``: adds it to
    ``constructions.BUILDERS`` and gives it, in every profile, the grid of the construction ``like``
    (its N and c sweeps). Its claims come from ``claims.register_claim``; sizes are measured as for
    every construction (``sizes.measure_sizes``)."""
    if not callable(builder):
        raise ValueError(f"builder={builder!r}: must be callable as builder(vocab_size, seq_len)")
    BUILDERS[name] = builder
    for prof in (CPU_GRID, GPU_GRID, SMOKE_GRID):
        if like not in prof.grids:
            raise ValueError(f"like={like!r}: not a construction of profile {prof.name!r}")
        prof.grids[name] = [{k: pt[k] for k in ("N", "c", "K")} for pt in prof.grids[like]]
        prof.fixed_c[name] = prof.fixed_c[like]


REPORT_COLUMNS = ["construction", "bound", "kind", "basis", "const", "expected", "status", "rows", "min_ratio",
                  "max_ratio", "slope_N", "slope_c", "ok", "message"]


def _positive_int_or_none(name: str, value, least: int = 1):
    if value is not None and not (is_int(value) and value >= least):
        raise ValueError(f"{name}={value!r}: must be None or an integer >= {least}")


def verify(profile_or_device="auto", smoke: bool = False, num_instances: int | None = None,
           max_N: int | None = None, max_c: int | None = None, seed: int = 0, progress: bool = False, *,
           device=None, constructions=None, vocab_sizes=None,
           seq_lens=None, circuits: bool | None = None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Measure every construction over a profile's grid and run every claim of ``CLAIMS`` and
    ``EXPECTED_FAILURES``, plus the closed-form sizes (``check_sizes``) and, in float32, margin > 0.

    profile_or_device: a ``Profile``, or a device ("auto" | "cpu" | "cuda" | torch.device) whose
    profile (``profile(device)``, or ``SMOKE_GRID`` with ``smoke=True``) is used. With a Profile,
    ``device`` (default "auto") says where to run it. num_instances: random instances per point
    (None: the profile's). max_N, max_c: drop grid points above them (None: keep all).
    constructions: names to run (default: every construction of the profile).
    vocab_sizes, seq_lens: a user grid instead of the profile (``grids.user_profile``: every pair,
    float64 on CPU and float32 on CUDA, 8 instances per point unless ``num_instances``); give both.
    circuits: also report Thm 4.2's claims on the arithmetic-circuit compilers (``circuit_rows``; their own
    grid of circuit sizes, the smoke one with ``smoke=True``). Default: only when neither ``constructions``
    nor a user grid narrows the check.

    Returns ``(tables, report)``: the ``measure`` table of each construction, and a tidy report
    with one row per check (``REPORT_COLUMNS``: construction, bound, kind, const, expected, status,
    rows checked, min/max ratio, log-log slopes of the ratio in N and c, ok, message; on the
    "float32 margin > 0" row of a float32 profile, min_ratio is the smallest margin). Raises
    ``ClaimFailed`` (an AssertionError naming each failing construction and bound, carrying the
    tables and report) if any row is not ok: a claim that fails (accuracy below 1.0 fails every
    claim), or an expected failure that passes or fails for another reason.
    """
    if (vocab_sizes is None) != (seq_lens is None):
        raise ValueError("vocab_sizes, seq_lens: give both or neither")
    if vocab_sizes is not None:
        if isinstance(profile_or_device, Profile) or smoke:
            raise ValueError("vocab_sizes, seq_lens: give a device, not a Profile or smoke=True")
        if device is not None:
            raise ValueError(f"device={device!r}: give the device as profile_or_device")
        dev = resolve_device(profile_or_device)
        prof = user_profile(vocab_sizes, seq_lens, torch.float32 if dev.type == "cuda" else torch.float64)
    elif isinstance(profile_or_device, Profile):
        if smoke:
            raise ValueError("smoke=True: give a device (not a Profile) to run SMOKE_GRID")
        prof, dev = profile_or_device, resolve_device("auto" if device is None else device)
    else:
        if device is not None:
            raise ValueError(f"device={device!r}: give the device as profile_or_device")
        dev = resolve_device(profile_or_device)
        prof = SMOKE_GRID if smoke else profile(dev)
    _positive_int_or_none("num_instances", num_instances)
    _positive_int_or_none("max_N", max_N, 4)
    _positive_int_or_none("max_c", max_c, 4)
    if isinstance(constructions, str):
        constructions = [constructions]
    names = list(prof.grids) if constructions is None else list(constructions)
    for name in names:
        if name not in prof.grids or name not in BUILDERS or name not in CLAIMS:
            raise ValueError(f"constructions: {name!r} is not one of the profile's {sorted(prof.grids)} "
                             "with a builder and CLAIMS")
    if not names:
        raise ValueError("constructions: is empty")
    tables, rows = {}, []
    for name in names:
        grid = [pt for pt in prof.grids[name]
                if (max_N is None or pt["N"] <= max_N) and (max_c is None or pt["c"] <= max_c)]
        if not grid:
            raise ValueError(f"max_N={max_N}, max_c={max_c}: leave no grid point of {name} "
                             f"in profile {prof.name!r}")
        df = measure(BUILDERS[name], grid, num_instances=num_instances or prof.num_instances, device=dev,
                     dtype=prof.dtype, seed=seed, progress=progress, name=name)
        tables[name] = df
        rows += _verify_construction(name, df, prof.dtype)
    if circuits is None:
        circuits = constructions is None and vocab_sizes is None
    if circuits:
        rows += circuit_rows(smoke=prof is SMOKE_GRID, seed=seed)
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    failed = report[~report["ok"]]
    if len(failed):
        lines = [f"{r.construction} / {r.bound}: {r.status}: {r.message}" for r in failed.itertuples()]
        raise ClaimFailed(f"{len(failed)} claim check(s) failed on profile {prof.name!r}:\n"
                          + "\n".join(lines), tables, report)
    return tables, report
