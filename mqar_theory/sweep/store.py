"""The record store: one JSON file per run, ``<results_dir>/<hash>.json``, written atomically.

``write_record`` writes a temporary file in the same directory (``.tmp-<pid>-<random>.json``), flushes and
fsyncs it, then ``os.replace``-s it onto the final name and fsyncs the directory: a reader sees either no
record or a complete one, and a process killed at any moment (``kill -9`` included) leaves at most a
temporary file, which readers ignore and ``clean_temporaries`` removes once its writer is gone.

``load_results(dir)`` reads every record into a ``pandas.DataFrame`` (one row per run, the config flattened
into columns); ``write_table`` writes the same table as ``<results_dir>/table.csv``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

__all__ = ["write_record", "read_record", "record_path", "recorded_hashes", "load_records", "load_results",
           "succeeded", "write_table", "clean_temporaries", "TABLE_NAME", "RECORD_RE"]

TABLE_NAME = "table.csv"
RECORD_RE = re.compile(r"^[0-9a-f]{16}\.json$")
#: statuses that count as done: a resumed sweep skips them (a ``failed`` run is retried)
DONE = ("ok", "diverged")


def record_path(results_dir, run_hash: str) -> Path:
    return Path(results_dir) / f"{run_hash}.json"


def write_record(results_dir, record: dict) -> Path:
    """Write ``record`` (it must have a ``hash``) atomically as ``<results_dir>/<hash>.json``."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".tmp-{os.getpid()}-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        final = record_path(out, record["hash"])
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return final


def read_record(path) -> dict:
    return json.loads(Path(path).read_text())


def _record_files(results_dir) -> list[Path]:
    d = Path(results_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if RECORD_RE.match(p.name))


def load_records(results_dir) -> list[dict]:
    """Every record under ``results_dir`` (sorted by file name); temporary files are ignored."""
    return [read_record(p) for p in _record_files(results_dir)]


def recorded_hashes(results_dir, statuses=DONE) -> set[str]:
    """Hashes of the records whose status is in ``statuses`` (default: the ones a resume skips)."""
    done = set()
    for p in _record_files(results_dir):
        try:
            rec = read_record(p)
        except (OSError, json.JSONDecodeError):
            continue  # cannot happen with atomic writes; a hand-damaged file is retrained
        if rec.get("status") in statuses:
            done.add(p.stem)
    return done


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed writer whose parent has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def clean_temporaries(results_dir) -> int:
    """Remove ``.tmp-<pid>-*`` files whose writer process no longer exists; returns how many."""
    d = Path(results_dir)
    removed = 0
    if not d.is_dir():
        return 0
    for p in d.glob(".tmp-*"):
        m = re.match(r"^\.tmp-(\d+)-", p.name)
        if m is None:
            continue
        if not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _flat(v):
    if isinstance(v, (list, dict)):
        return json.dumps(v, sort_keys=True)
    return v


#: metric fields copied into the table, in order
METRICS = ("test_accuracy", "best_test_accuracy", "train_accuracy", "test_loss", "train_loss", "steps",
           "epochs", "stopped_early")
#: table names of metrics whose record name is also a config key (``epochs`` done vs the ``epochs`` budget):
#: a metric must never overwrite the config column that ``select_best`` groups by
METRIC_COLUMNS = {"epochs": "epochs_trained"}
#: the size fields of a record: functions of the architecture alone, recomputed by ``load_results``
SIZES = ("num_parameters", "num_parameters_non_embedding", "state_size", "flops_per_token")
#: record fields copied into the table after the metrics
INFO = (*SIZES, "status", "error",
        "device", "threads", "wall_seconds", "library_version", "git_revision", "spec", "created")


def record_row(rec: dict) -> dict:
    """One flat table row of a record: hash, model, seed, the resolved config, metrics and provenance."""
    cfg = rec.get("resolved", {}) | rec.get("config", {})
    row = {"hash": rec["hash"], "model": rec["model"]}
    mixer = cfg.get("mixer", "attention")
    row["mixer"] = mixer if isinstance(mixer, str) else "+".join(mixer)
    for k in sorted(cfg):
        if k != "mixer":
            row[k] = _flat(cfg[k])
    row["seed"] = rec.get("seed", cfg.get("seed"))
    for k in METRICS:
        col = METRIC_COLUMNS.get(k, k)
        if col in row:
            raise ValueError(f"record {rec['hash']}: metric {k!r} would overwrite the config column {col!r}")
        row[col] = rec.get("metrics", {}).get(k)
    for k in INFO:
        row[k] = rec.get(k)
    row["bracket"] = (rec.get("bracket") or {}).get("reason")  # why a bracketing sweep added this lr (else None)
    return row


def succeeded(df):
    """The rows of a results table whose run did not fail (all rows of a table without a ``status`` column)."""
    return df[df["status"] != "failed"] if "status" in df.columns else df


_SIZES_CACHE: dict[str, dict | None] = {}  # model config (JSON) -> its sizes under this process's library


def current_sizes(records) -> list[dict | None]:
    """``model_sizes`` of each record's trained model (``trained_config["model"]``) under the current library, one
    build per distinct model; None where a record has no model config or the model no longer builds."""
    from .execute import model_sizes

    out = []
    for rec in records:
        model = (rec.get("trained_config") or {}).get("model")
        if not isinstance(model, dict):
            out.append(None)
            continue
        key = json.dumps(model, sort_keys=True, default=str)
        if key not in _SIZES_CACHE:
            try:
                _SIZES_CACHE[key] = model_sizes(model)
            except Exception:  # noqa: BLE001 (an old config the current mixers reject: keep the recorded sizes)
                _SIZES_CACHE[key] = None
        out.append(_SIZES_CACHE[key])
    return out


def load_results(results_dir, sizes: str = "current"):
    """A ``pandas.DataFrame`` with one row per record under ``results_dir`` (see ``record_row``), sorted by
    model, seq_len, d_model, lr, seed. Columns: ``hash, model, mixer``, every config key, the metrics
    (``test_accuracy`` = the last evaluation's, ``best_test_accuracy``, train accuracy and losses, steps,
    ``epochs_trained`` = the epochs actually run, which early stopping makes fewer than the ``epochs`` budget),
    sizes (``num_parameters``, ``num_parameters_non_embedding``, ``state_size``, ``flops_per_token``) and
    provenance (``status, error, device, wall_seconds, library_version, git_revision, spec, created``).

    ``sizes="current"`` (default) takes the size columns from the current library (``current_sizes``): they are
    functions of the architecture, not results of training, and a corrected formula (e.g. the state an L-tap filter
    carries, L-1 inputs, now measured from the recurrence) applies to old records too; ``"recorded"`` keeps the
    values stored when the run trained."""
    import pandas as pd

    if sizes not in ("current", "recorded"):
        raise ValueError(f"sizes={sizes!r}: must be 'current' or 'recorded'")
    records = load_records(results_dir)
    rows = [record_row(r) for r in records]
    if sizes == "current":
        for row, new in zip(rows, current_sizes(records)):
            if new is not None:
                row.update({k: new[k] for k in SIZES})
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["hash", "model", "mixer", *(METRIC_COLUMNS.get(k, k) for k in METRICS), *INFO])
    keys = [k for k in ("model", "seq_len", "num_kv_pairs", "d_model", "lr", "seed", "hash") if k in df]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def write_table(results_dir, df=None) -> Path:
    """Write the merged table (``load_results``) as ``<results_dir>/table.csv``, atomically."""
    df = load_results(results_dir) if df is None else df
    out = Path(results_dir) / TABLE_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".tmp-{os.getpid()}-", suffix=".csv")
    with os.fdopen(fd, "w") as f:
        df.to_csv(f, index=False, float_format="%.6g")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return out
