"""Where runs execute: ``local`` (in-process, or K spawned worker processes) and ``ray`` (Ray tasks).

* ``local``, ``workers=1``: the runs execute one after the other in this process.
* ``local``, ``workers=K > 1``: a ``ProcessPoolExecutor`` of K *spawned* processes (spawn works with CUDA
  and in notebooks), each with ``threads`` torch threads (1 by default: on a shared CPU one thread per run
  is the efficient split, and it fixes the reduction order). Each worker writes its own records, so a
  record is on disk the moment its run ends. On Linux every worker asks the kernel to kill it when the
  sweep process dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of the sweep leaves no orphan still training.
  With ``device="cuda"`` (or ``auto`` on a GPU machine) the K workers share the one GPU.
* ``ray``: the same runs as Ray tasks with ``num_cpus=1`` each and, when they use a GPU, a fraction
  ``gpus_per_run`` of one (default 0.25: four runs share a GPU). Uses the Ray instance already initialised
  by the caller, else ``ray.init()`` (a cluster named by ``RAY_ADDRESS``, or a local instance with
  ``workers`` CPUs). Tasks return their record; this process writes it, so the tasks may run on other
  machines.

Every backend calls ``on_record(record)`` in this process as each run finishes (the progress bar).
"""

from __future__ import annotations

import os
import sys

__all__ = ["run_local", "run_ray", "DEFAULT_GPUS_PER_RUN"]

DEFAULT_GPUS_PER_RUN = 0.25


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # the parent died before prctl: do not start training
                os._exit(1)
        except (OSError, AttributeError):
            pass


def _init_worker(threads: int | None) -> None:
    _die_with_parent()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _work(run, results_dir: str, spec_name: str, device, threads, prov) -> dict:
    from .execute import execute_run
    from .store import write_record

    record = execute_run(run, spec_name=spec_name, device=device, threads=threads, prov=prov)
    write_record(results_dir, record)
    return record


def run_local(runs, results_dir, *, spec_name: str, workers: int, device, threads, prov, on_record) -> None:
    """Execute ``runs`` here (``workers == 1``) or in ``workers`` spawned processes; write every record."""
    if workers == 1 or len(runs) <= 1:
        for run in runs:
            on_record(_work(run, str(results_dir), spec_name, device, threads, prov))
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=ctx, initializer=_init_worker,
                               initargs=(threads,))
    try:
        futures = [pool.submit(_work, run, str(results_dir), spec_name, device, threads, prov) for run in runs]
        for fut in as_completed(futures):
            on_record(fut.result())
    except BrokenProcessPool as e:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError(f"a sweep worker process died ({e}); the finished runs are recorded, "
                           "rerun the sweep to resume") from None
    except BaseException:  # Ctrl-C included: do not wait for the running runs (they die with this process)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _ray_task(run, spec_name, device, threads, prov):
    from .execute import execute_run

    return execute_run(run, spec_name=spec_name, device=device, threads=threads, prov=prov)


def _uses_gpu(ray, device) -> bool:
    d = str(device)
    if d.startswith("cuda"):
        return True
    return d == "auto" and ray.cluster_resources().get("GPU", 0) > 0


def run_ray(runs, results_dir, *, spec_name: str, workers: int, device, threads, prov, on_record,
            gpus_per_run: float | None = None) -> None:
    """Execute ``runs`` as Ray tasks (see the module docstring); write every record here as it returns."""
    try:
        import ray
    except ImportError:
        raise ValueError("backend='ray': the ray package is not installed (pip install 'mqar_theory[sweep]')") \
            from None
    from .execute import SCHEMA
    from .store import write_record

    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init()
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        gpu = gpus_per_run if gpus_per_run is not None else DEFAULT_GPUS_PER_RUN
        num_gpus = gpu if _uses_gpu(ray, device) else 0
        task = ray.remote(_ray_task).options(num_cpus=1, num_gpus=num_gpus, max_retries=0)
        pending = {task.remote(run, spec_name, device, threads, prov): run for run in runs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            run = pending.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as e:  # noqa: BLE001 (the task itself died: record it as failed, retried next time)
                record = {"schema": SCHEMA, "hash": run.hash, "model": run.model, "spec": spec_name,
                          "config": run.config, "status": "failed", "metrics": {}, "history": [],
                          "error": f"ray task failed: {type(e).__name__}: {e}".splitlines()[0][:500], **prov}
            write_record(results_dir, record)
            on_record(record)
    finally:
        if started:
            ray.shutdown()
