"""``verify``: measure every construction over a profile's grid and run every claim, closed-form
size and float32 margin check, returning the tables and a tidy report (or raising ``ClaimFailed``)."""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..utils import is_int, resolve_device
from .bound import Bound
from .checking import check, growth_slopes
from .circuit_rows import circuit_rows
from .claims import check_sizes, claims_of
from .grids import SMOKE_GRID, Profile, profile, user_profile
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


def _locality_row(name: str, df: pd.DataFrame, base: dict) -> dict:
    """encode / decode position-wise: the operator trace's dataflow verdict (``observe``) at every position of
    every grid point. A point that was not measured, or a table without the column, fails: there is no
    "not checked" that counts as ok."""
    row = {**base, "bound": "encode / decode position-wise", "kind": "identity", "expected": "holds"}
    if "position_wise" not in df and "measurement_error" not in df:  # ``closed_form_table``: nothing ran
        return {**row, "status": "closed forms only (nothing ran)", "ok": True, "message": ""}
    if "position_wise" not in df:
        return {**row, "status": "FAILED", "ok": False, "message": f"{name}: no position_wise column"}
    bad = df[~df["position_wise"].fillna(False).astype(bool)]
    return {**row, "status": "FAILED" if len(bad) else "holds", "ok": not len(bad),
            "message": "" if not len(bad) else "\n".join(
                f"{name} at N={r.N}, c={r.c}: {r.locality_message}" for r in bad.itertuples())}


def _observed_row(name: str, df: pd.DataFrame, base: dict) -> dict:
    """Every number that entered the computation is among the construction's counted tensors (``observe``)."""
    row = {**base, "bound": "every number entering is counted", "kind": "identity", "expected": "holds"}
    if "position_wise" not in df and "measurement_error" not in df:  # ``closed_form_table``: nothing ran
        return {**row, "status": "closed forms only (nothing ran)", "ok": True, "message": ""}
    errs = df["measurement_error"].fillna("") if "measurement_error" in df else pd.Series([""] * len(df))
    bad = [f"{name} at N={r.N}, c={r.c}: {e}" for r, e in zip(df.itertuples(), errs) if e]
    return {**row, "status": "FAILED" if bad else "holds", "ok": not bad, "message": "\n".join(bad)}


def _verify_construction(name: str, df: pd.DataFrame, dtype: torch.dtype, device="cpu") -> list[dict]:
    """Report rows of one construction: measured sizes against the closed forms, encode / decode
    position-wise, float32 margins, and its claims (holds, fails, context)."""
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
    out.append(_observed_row(name, df, base))
    out.append(_locality_row(name, df, base))
    if dtype == torch.float32:
        bad = df[~(df["margin_min"] > 0)]
        out.append({**base, "bound": "float32 margin > 0", "kind": "identity", "expected": "holds",
                    "min_ratio": float(df["margin_min"].min()), "status": "FAILED" if len(bad) else "holds",
                    "ok": not len(bad), "message": "" if not len(bad) else
                    f"{name}: margin_min <= 0 (or none) at N = {bad['N'].tolist()}, c = {bad['c'].tolist()}"})
    for k in claims_of(name):
        b = get_bound(k.bound)
        if k.expect == "context":
            stats = _ratio_stats(df, b)
            status = ("context: hypothesis holds at no grid point" if stats["rows"] == 0 else
                      f"context: measured/bound in [{stats['min_ratio']:.3g}, {stats['max_ratio']:.3g}]")
            out.append({**base, "bound": k.bound, "kind": b.kind, "const": math.nan, **stats, "basis": "context",
                        "expected": "not a test", "status": status, "ok": True, "message": b.source})
            continue
        phrase = None if k.expect == "holds" else k.phrase
        row = {**base, "bound": k.bound, "kind": b.kind, "const": float(k.const), **_ratio_stats(df, b),
               "expected": "holds" if phrase is None else f"fails: {phrase}",
               "basis": k.basis if phrase is None else "expected failure"}
        try:
            check(df, b, k.const)
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
            status, ok, msg = "UNEXPECTED PASS", False, f"{k.bound}: expected to fail ({phrase}) but holds"
        elif phrase in msg:
            status, ok = f"fails as expected ({phrase})", True
        else:
            status, ok = f"FAILED (expected '{phrase}')", False
        # a failure keeps the whole message (it names the failing rows); ok keeps its first line
        out.append({**row, "status": status, "ok": ok, "message": msg if not ok else msg.split("\n")[0]})
    return out


def register_construction(cls, builder=None) -> None:
    """Make ``verify`` run the construction class ``cls`` (``constructions.register``): its claims, closed
    forms and grids come from the class itself."""
    from ..constructions import register

    register(cls, builder)


REPORT_COLUMNS = ["construction", "bound", "kind", "basis", "const", "expected", "status", "rows", "min_ratio",
                  "max_ratio", "slope_N", "slope_c", "ok", "message"]


def _positive_int_or_none(name: str, value, least: int = 1):
    if value is not None and not (is_int(value) and value >= least):
        raise ValueError(f"{name}={value!r}: must be None or an integer >= {least}")


def verify(profile_or_device="auto", smoke: bool = False, num_instances: int | None = None,
           max_N: int | None = None, max_c: int | None = None, seed: int = 0, progress: bool = False, *,
           device=None, constructions=None, vocab_sizes=None,
           seq_lens=None, circuits: bool | None = None) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Measure every construction over a profile's grid and run every claim it declares (holds, fails,
    context), plus the closed-form sizes (``check_sizes``), the position-wise check of encode / decode and,
    in float32, margin > 0.

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
    from ..constructions import BUILDERS

    grids = prof.grids
    names = list(grids) if constructions is None else list(constructions)
    for name in names:
        if name not in grids or name not in BUILDERS:
            raise ValueError(f"constructions: {name!r} is not one of the profile's {sorted(grids)}")
    if not names:
        raise ValueError("constructions: is empty")
    tables, rows = {}, []
    for name in names:
        grid = [pt for pt in grids[name]
                if (max_N is None or pt["N"] <= max_N) and (max_c is None or pt["c"] <= max_c)]
        if not grid:
            raise ValueError(f"max_N={max_N}, max_c={max_c}: leave no grid point of {name} "
                             f"in profile {prof.name!r}")
        df = measure(BUILDERS[name], grid, num_instances=num_instances or prof.num_instances, device=dev,
                     dtype=prof.dtype, seed=seed, progress=progress, name=name)
        tables[name] = df
        rows += _verify_construction(name, df, prof.dtype, dev)
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
