"""Executing one run: ``run_mqar`` on the run's config, turned into a self-describing record.

The record (a JSON-ready dict) holds:

* ``hash``, ``model``, ``spec`` (the sweep's name), ``config`` (what the spec set; the hash covers it),
  ``resolved`` (every ``run_mqar`` argument, defaults filled in), ``trained_config`` (the model, train
  and data configs as ``train`` reports them), ``seed``;
* ``status``: ``ok``; ``diverged`` (a non-finite training or test loss; the metrics are kept as measured);
  or ``failed`` with ``error`` (one line) and ``traceback``;
* ``metrics``: ``test_accuracy`` and ``test_loss`` (the last evaluation, the quantity the paper's Figure 2
  plots), ``best_test_accuracy``, ``train_accuracy`` and ``train_loss`` (memorisation shows as train >> test),
  ``steps``, ``epochs``, ``stopped_early``; ``history``: the learning curve, one entry per evaluation;
* ``selection`` (sparse-attention models with a learned or programmatic rule): per such layer, the rows it
  selected on the test set against the queries (``mqar_theory.selection.selection_stats``);
* sizes: ``num_parameters`` and ``num_parameters_non_embedding`` (without the token and position
  embeddings), ``state_size`` (recurrent state in numbers after ``seq_len`` tokens, summed over the
  layers; ``None`` if some layer has no fixed-size state) and ``flops_per_token`` (forward, mixers only,
  summed over the layers; ``None`` if a mixer does not define it);
* provenance: ``library_version``, ``git_revision`` (or ``"unknown"``), ``torch_version``, ``device``,
  ``device_name``, ``threads``, ``wall_seconds``, ``created`` (UTC, ISO 8601).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
import subprocess
import time
import traceback
from pathlib import Path

__all__ = ["execute_run", "provenance", "model_sizes", "SCHEMA"]

SCHEMA = 1
_METRICS = ("test_accuracy", "test_loss", "best_test_accuracy", "train_accuracy", "train_loss", "steps", "epochs",
            "stopped_early", "stop_reason")


def provenance() -> dict:
    """Library version, git revision of the source tree (``"unknown"`` outside a checkout), torch version."""
    import torch

    from .. import __version__

    root = Path(__file__).resolve().parent.parent.parent
    rev = "unknown"
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            rev = out.stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "mqar_theory"],
                                   cwd=root, capture_output=True, text=True, timeout=10)
            if dirty.returncode == 0 and dirty.stdout.strip():
                rev += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"library_version": __version__, "git_revision": rev, "torch_version": torch.__version__}


def model_sizes(model_config: dict) -> dict:
    """Parameter counts, summed state size and mixer FLOPs per token of the model ``model_config`` describes
    (built on the meta device when the mixers allow it, so no memory is used)."""
    import torch

    from ..model import LanguageModel

    try:
        with torch.device("meta"):
            model = LanguageModel(**model_config)
    except Exception:  # noqa: BLE001 (a mixer whose init needs real tensors)
        model = LanguageModel(**model_config)
    N = model.seq_len
    states, flops = [], []
    for block in model.blocks:
        m = block.mixer
        states.append(m.state_size(N) if hasattr(m, "state_size") else None)
        try:
            flops.append(float(m.flops_per_token(N)))
        except (NotImplementedError, AttributeError):
            flops.append(None)
    return {
        "num_parameters": model.num_parameters(),
        "num_parameters_non_embedding": model.num_parameters(include_embeddings=False),
        "state_size": None if any(s is None for s in states) else int(sum(states)),
        "flops_per_token": None if any(f is None for f in flops) else float(sum(flops)),
    }


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def execute_run(run, *, spec_name: str, device="auto", threads: int | None = 1, prov: dict | None = None) -> dict:
    """Train ``run`` (a ``Run``) with ``run_mqar`` and return its record; never raises for a failed run
    (the record says ``failed``), except on KeyboardInterrupt. ``threads``: torch intra-op threads for the
    run (restored afterwards); None leaves torch's setting."""
    import torch

    from ..train import run_mqar
    from ..utils import resolve_device
    from .spec import run_mqar_keys

    prov = provenance() if prov is None else prov
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    resolved = {k: v for k, v in run_mqar_keys().items() if v is not inspect.Parameter.empty}
    resolved.update(run.config)
    record = {
        "schema": SCHEMA, "hash": run.hash, "model": run.model, "spec": spec_name, "config": run.config,
        "resolved": resolved, "seed": resolved.get("seed"), "status": "failed", "error": None,
        "metrics": {}, "history": [], "threads": torch.get_num_threads(), **prov,
    }  # fmt: skip
    if getattr(run, "note", None) is not None:
        record["bracket"] = run.note  # an lr the sweep added beyond its grid's edge (sweep.bracket)
    t0 = time.perf_counter()
    try:
        dev = resolve_device(device)
        record["device"] = str(dev)
        record["device_name"] = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        out = run_mqar(**run.config, device=dev, progress=False)
        record["metrics"] = {k: out[k] for k in _METRICS}
        record["history"] = out["history"]
        if out.get("selection"):  # what a sparse layer selected on the test set (mqar_theory.selection)
            record["selection"] = out["selection"]
        record["trained_config"] = out["config"]
        record["data_seconds"] = out.get("data_seconds")
        finite = all(_finite(v) for v in out["loss_history"]) and _finite(out["train_loss"]) and _finite(
            out["test_loss"])
        record["status"] = "ok" if finite else "diverged"
        record.update(model_sizes(out["config"]["model"]))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 (recorded, and retried by the next resume)
        record["status"] = "failed"
        record["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        record["traceback"] = traceback.format_exc()[-4000:]
    finally:
        if threads is not None:
            torch.set_num_threads(before)
    record["wall_seconds"] = time.perf_counter() - t0
    record["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return record
