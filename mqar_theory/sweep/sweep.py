"""``run_sweep``: validate a spec, skip the runs already recorded, execute the rest, return the table.

Resume: every run's record is ``<results_dir>/<hash>.json`` (``mqar_theory.sweep.store``), written
atomically when the run ends. A sweep reads the records present first and executes only the runs without
an ``ok`` or ``diverged`` record (a ``failed`` run is retried), so a sweep killed at any moment resumes
with nothing lost or duplicated. ``MQAR_RETRAIN=1`` in the environment (or ``retrain=True``) executes every
run again and replaces its record.
"""

from __future__ import annotations

import os
from pathlib import Path

from .spec import SpecError, load_spec

__all__ = ["run_sweep", "plan", "all_runs", "RETRAIN_ENV"]

#: set to 1 to retrain every run of a sweep instead of reusing its records
RETRAIN_ENV = "MQAR_RETRAIN"
BACKENDS = ("local", "ray")


def _check_args(results_dir, workers, device, backend, threads, gpus_per_run) -> Path:
    if results_dir in (None, ""):
        raise ValueError("results_dir: required (a directory for the run records)")
    out = Path(results_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"results_dir={str(results_dir)!r}: exists and is not a directory")
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ValueError(f"workers={workers!r}: must be an integer >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: must be one of {list(BACKENDS)}")
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"threads={threads!r}: must be None or an integer >= 1")
    if gpus_per_run is not None and not (isinstance(gpus_per_run, (int, float)) and 0 < gpus_per_run <= 1):
        raise ValueError(f"gpus_per_run={gpus_per_run!r}: must be a number in (0, 1]")
    if backend == "local":
        from ..utils import resolve_device

        resolve_device(device)  # a ValueError naming device, before any run starts
    elif not (isinstance(device, str) and (device in ("auto", "cpu") or device.startswith("cuda"))):
        raise ValueError(f"device={device!r}: must be 'auto', 'cpu' or 'cuda[:i]' with the ray backend")
    return out


def plan(spec, results_dir=None, retrain: bool | None = None):
    """The spec's runs as a DataFrame (``hash, model, recorded``, and the config), without executing any."""
    import pandas as pd

    from .store import recorded_hashes

    spec = load_spec(spec)
    retrain = _retrain(retrain)
    done = set() if (results_dir is None or retrain) else recorded_hashes(results_dir)
    rows = []
    for run in all_runs(spec, results_dir):
        rows.append({"hash": run.hash, "model": run.model, "recorded": run.hash in done, **run.config,
                     "bracket": None if run.note is None else run.note["reason"]})
    return pd.DataFrame(rows)


def _records_by_hash(results_dir) -> dict[str, dict]:
    from .store import load_records

    if results_dir is None or not Path(results_dir).is_dir():
        return {}
    return {r["hash"]: r for r in load_records(results_dir) if "hash" in r}


def all_runs(spec, results_dir=None) -> list:
    """The spec's grid runs, then the runs its ``lr_bracket`` adds given the records under ``results_dir``
    (``sweep.bracket``: the rounds the records already decide; none without ``lr_bracket``)."""
    from .bracket import bracket_runs

    spec = load_spec(spec)
    runs = spec.runs()
    if spec.lr_bracket is None:
        return runs
    return runs + bracket_runs(runs, _records_by_hash(results_dir), spec.lr_bracket)


def _retrain(retrain: bool | None) -> bool:
    if retrain is not None:
        return bool(retrain)
    return os.environ.get(RETRAIN_ENV, "").strip().lower() in ("1", "true", "yes")


def run_sweep(spec, results_dir, workers: int = 1, device="auto", backend: str = "local", progress: bool = True,
              *, retrain: bool | None = None, threads: int | None = 1, gpus_per_run: float | None = None):
    """Run (or resume) the sweep ``spec`` into ``results_dir``; return its runs' table (``load_results``
    rows of this spec's runs, in the spec's order). Also writes ``<results_dir>/table.csv`` (all records
    in the directory).

    Args:
        spec: a YAML path, a bare name under ``sweeps/`` (``"figure2_smoke"``), a mapping, or a ``Spec``.
        results_dir: directory of the records (created).
        workers: runs executed at once (local processes, or the CPUs of a local Ray instance).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``; several runs share one GPU.
        backend: ``"local"`` or ``"ray"``.
        progress: a tqdm bar over the runs.
        retrain: retrain every run (default: the ``MQAR_RETRAIN`` environment variable, else False).
        threads: torch threads per run (default 1; None leaves torch's setting).
        gpus_per_run: fraction of a GPU per Ray task when the runs use CUDA (default 0.25).

    Raises ``SpecError`` for an invalid spec and ``ValueError`` for invalid arguments, before any run.
    """
    from ..progress import close_bar, progress_bar
    from .backends import run_local, run_ray
    from .execute import provenance
    from .store import clean_temporaries, load_results, recorded_hashes, write_table

    spec = load_spec(spec)
    out = _check_args(results_dir, workers, device, backend, threads, gpus_per_run)
    runs = spec.runs()
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)
    done = set() if _retrain(retrain) else recorded_hashes(out)
    todo = [r for r in runs if r.hash not in done]
    prov = provenance()
    bar = progress_bar(len(runs), desc=f"sweep {spec.name}", enabled=progress, initial=len(runs) - len(todo),
                       unit="run")
    failed = []

    def on_record(record: dict) -> None:
        if record.get("status") == "failed":
            failed.append(record)
        bar.update(1)
        bar.set_postfix_str(f"{record['model']} {record.get('status')}", refresh=False)

    kw = dict(spec_name=spec.name, workers=workers, device=device, threads=threads, prov=prov,
              on_record=on_record)
    executed: set[str] = set()

    def execute(batch) -> None:
        if backend == "local":
            run_local(batch, out, **kw)
        else:
            run_ray(batch, out, gpus_per_run=gpus_per_run, **kw)
        executed.update(r.hash for r in batch)

    try:
        if todo:
            execute(todo)
        while spec.lr_bracket is not None:  # bracketing rounds: each decided on the records written so far
            runs = all_runs(spec, out)
            batch = [r for r in runs if r.hash not in done and r.hash not in executed]
            if not batch:
                break
            bar.total = len(runs)
            bar.refresh()
            execute(batch)
    finally:
        close_bar(bar, failed=f"{len(failed)} of {len(todo)} runs failed" if failed else None)
        df = load_results(out)  # read the records once: the table file and the returned rows
        write_table(out, df)
    order = {r.hash: i for i, r in enumerate(runs)}
    df = df[df["hash"].isin(order)].copy()
    df["_order"] = df["hash"].map(order)
    df = df.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    df.attrs["failed"] = [f"{r['model']} {r['hash']}: {r.get('error')}" for r in failed]
    df.attrs["spec"] = spec.name
    return df


__all__ += ["SpecError"]
