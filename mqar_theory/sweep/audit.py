"""Provenance of the committed run records: which code made each one, and does it make it again.

(Named ``audit``, not ``provenance``: ``mqar_theory.sweep.provenance`` is already the function of ``execute`` that
stamps a record, and a submodule of that name would rebind it on import.)

Every record (``mqar_theory.sweep.execute``) names the ``git_revision`` of the source tree it was trained at,
with ``-dirty`` appended when ``mqar_theory/`` had uncommitted changes. Two checks:

* ``check_records(results_root)`` (``mqar-theory check-records``): for every record under ``results_root``
  (default the repository's ``results/``), whether its revision is a clean commit that exists in this
  repository (``git cat-file -e REV^{commit}``) and is an ancestor of ``HEAD``, and whether its file name, its
  ``hash`` and the hash of its ``model`` and ``config`` (``runs.run_hash``) agree. Revision statuses:
  ``clean``; ``dirty`` (uncommitted changes: the code is not recoverable); ``missing`` (no such commit here);
  ``not_in_history`` (the commit exists but ``HEAD`` does not descend from it, e.g. an amended commit);
  ``unknown`` (the record names none, or ``"unknown"``); ``invalid`` (not a hexadecimal commit id);
  ``unverifiable`` (no git repository to look in).
* ``rerun_record(path_or_record, threads=1)``: trains the record's run again on the CPU from its stored
  ``model`` and ``config``, through the sweep's own ``execute_run`` (the same call a sweep makes), on
  ``threads`` torch threads, and compares the status, the steps, the accuracies of ``metrics`` and every
  evaluation's test accuracy in ``history`` **bitwise** (the IEEE-754 bytes, not a tolerance; the final
  losses are compared too and reported apart):
  training is deterministic on the CPU for a seed (``mqar_theory.train``), so any difference means the record
  was not made by that code, at this thread count, from this config.
  **Which code**: a record that names a clean commit of this history is retrained by the package *at that
  commit*: ``git archive REV mqar_theory`` is unpacked into a temporary folder and ``execute_run`` runs in a
  subprocess of the same interpreter with that folder first on ``PYTHONPATH`` (the subprocess checks that it
  imported the unpacked package). A faster path that rounds float32 differently (``mixers/conv.py``) thus does
  not invalidate the records made before it, and a record still has to be the output of the code it names.
  When ``mqar_theory/`` of the working tree equals the commit's (no change, no untracked file), or the record
  names no clean commit (``dirty``, ``unknown``, ...: nothing else to run), the rerun uses the imported package
  in this process; ``rerun_revision`` of the result says which (the commit, or ``"working tree"``).

Decisions: a rerun uses the stored ``config`` (what the spec set), not ``resolved`` (the defaults of the
library at recording time): that is the call the sweep made; when today's defaults differ from the recorded
ones, the difference is reported (``resolved_differs``) beside the comparison. A rerun happens on the CPU
whatever device the record names (GPU kernels are not deterministic); the record's device and thread count
are reported so a mismatch can be read.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ..plotting import REPO_ROOT
from .runs import Run, run_hash
from .store import RECORD_RE, read_record

__all__ = ["revision_status", "record_files", "check_records", "format_check", "rerun_record", "format_rerun",
           "REVISION_STATUSES", "COMPARED_METRICS", "DEFAULT_RESULTS"]

DEFAULT_RESULTS = REPO_ROOT / "results"
REVISION_STATUSES = ("clean", "dirty", "missing", "not_in_history", "unknown", "invalid", "unverifiable")
#: ``metrics`` entries a rerun must reproduce bit for bit (with ``status`` and every ``history`` test accuracy)
COMPARED_METRICS = ("test_accuracy", "best_test_accuracy", "train_accuracy", "steps")
#: compared bit for bit too, but reported apart (``loss_mismatches``): a reduction reordered in the library moves
#: a float32 loss by an ulp while every prediction, and so every accuracy, stays the same
LOSS_METRICS = ("test_loss", "train_loss")
_SHA_RE = re.compile(r"[0-9a-f]{7,40}")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def _is_repository(repo: Path) -> bool:
    out = _git(repo, "rev-parse", "--git-dir")
    return out is not None and out.returncode == 0


def revision_status(revision, repo=REPO_ROOT) -> str:
    """The status (one of ``REVISION_STATUSES``, module docstring) of a record's ``git_revision`` in ``repo``."""
    if revision in (None, "", "unknown"):
        return "unknown"
    if not isinstance(revision, str):
        return "invalid"
    if revision.endswith("-dirty"):
        return "dirty"  # whatever it names, the code that made the record was never committed
    if not _SHA_RE.fullmatch(revision):
        return "invalid"
    repo = Path(repo)
    if not _is_repository(repo):
        return "unverifiable"
    exists = _git(repo, "cat-file", "-e", f"{revision}^{{commit}}")
    if exists is None or exists.returncode != 0:
        return "missing"
    ancestor = _git(repo, "merge-base", "--is-ancestor", revision, "HEAD")
    if ancestor is None or ancestor.returncode != 0:
        return "not_in_history"
    return "clean"


def record_files(results_root=DEFAULT_RESULTS) -> list[Path]:
    """Every record file (``<16 hex>.json``) under ``results_root``, at any depth, sorted; temporaries ignored."""
    root = Path(results_root)
    if not root.exists():
        raise ValueError(f"results_root={str(results_root)!r}: no such directory")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.json") if RECORD_RE.match(p.name))


def check_records(results_root=DEFAULT_RESULTS, repo=REPO_ROOT) -> list[dict]:
    """One row per record under ``results_root``: ``path``, ``hash``, ``model``, ``spec``, ``git_revision``,
    ``revision`` (its status), ``hash_ok`` (file name, ``hash`` and ``run_hash(model, config)`` agree) and
    ``ok`` (a clean revision and a consistent hash). A file that is not a readable record gets ``revision``
    ``"unreadable"`` and ``ok`` False."""
    root = Path(results_root)
    statuses: dict = {}
    rows = []
    for path in record_files(root):
        rel = path.relative_to(root.parent) if root.is_dir() else path
        try:
            rec = read_record(path)
            model, config, h = rec["model"], rec["config"], rec["hash"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            rows.append({"path": str(rel), "hash": path.stem, "model": None, "spec": None, "git_revision": None,
                         "revision": "unreadable", "hash_ok": False, "ok": False, "error": f"{type(e).__name__}: {e}"})
            continue
        rev = rec.get("git_revision")
        key = rev if isinstance(rev, (str, type(None))) else repr(rev)
        if key not in statuses:
            statuses[key] = revision_status(rev, repo)
        try:
            hash_ok = h == path.stem == run_hash(model, config)
        except (TypeError, AttributeError):
            hash_ok = False
        status = statuses[key]
        rows.append({"path": str(rel), "hash": h, "model": model, "spec": rec.get("spec"), "git_revision": rev,
                     "revision": status, "hash_ok": hash_ok, "ok": status == "clean" and hash_ok})
    return rows


def format_check(rows: list[dict], verbose: bool = False) -> str:
    """A plain-text report of ``check_records``: one line per (folder, revision, status) group, every record
    that is not ok when there are few of them (or all with ``verbose``), and a summary line."""
    lines = []
    groups = Counter((str(Path(r["path"]).parent), str(r["git_revision"]), r["revision"], r["hash_ok"]) for r in rows)
    for (folder, rev, status, hash_ok), n in sorted(groups.items()):
        lines.append(f"{folder}: {n} record{'s' * (n != 1)}, revision {rev} ({status})"
                     + ("" if hash_ok else ", HASH MISMATCH"))
    bad = [r for r in rows if not r["ok"]]
    if verbose or len(bad) <= 10:
        for r in rows if verbose else bad:
            why = [] if r["ok"] else [r["revision"]] + ([] if r["hash_ok"] else ["hash mismatch"])
            lines.append(f"  {r['path']}: {'ok' if r['ok'] else ', '.join(why)}")
    lines.append(f"{len(rows) - len(bad)} of {len(rows)} records name a clean commit of this history"
                 + ("" if not bad else f"; {len(bad)} do not (dirty, missing or unknown revision, or a bad hash)"))
    return "\n".join(lines)


def _same(a, b) -> bool:
    """Bitwise equality: floats by their IEEE-754 bytes (so 0.0 != -0.0 and NaN == NaN), others by type and ==."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def _load(path_or_record) -> tuple[dict, str | None]:
    if isinstance(path_or_record, dict):
        return path_or_record, None
    if isinstance(path_or_record, (str, Path)):
        path = Path(path_or_record)
        if not path.is_file():
            raise ValueError(f"path_or_record={str(path_or_record)!r}: no such record file")
        try:
            return read_record(path), str(path)
        except json.JSONDecodeError as e:
            raise ValueError(f"path_or_record={str(path_or_record)!r}: not a JSON record ({e})") from None
    raise ValueError(f"path_or_record: must be a record path or a record dict, got {type(path_or_record).__name__}")


#: what the subprocess of ``_execute_at`` runs: ``execute_run`` of the unpacked package at a commit
_RERUN_SCRIPT = """
import json, sys
from pathlib import Path
args = json.loads(sys.stdin.read())
import mqar_theory
here = Path(mqar_theory.__file__).resolve()
if Path(args["root"]).resolve() not in here.parents:
    raise SystemExit(f"imported mqar_theory from {here}, not from the unpacked commit under {args['root']}")
from mqar_theory.sweep.execute import execute_run
from mqar_theory.sweep.runs import Run
new = execute_run(Run(model=args["model"], config=args["config"]), spec_name=args["spec"], device="cpu",
                  threads=args["threads"], prov={})
Path(args["out"]).write_text(json.dumps(new, allow_nan=True, default=str))
"""


def _same_package(revision: str, repo: Path) -> bool:
    """Whether ``mqar_theory/`` of the working tree is the one of ``revision``: no tracked change, no untracked file."""
    diff = _git(repo, "diff", "--quiet", revision, "--", "mqar_theory")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", "mqar_theory")
    return (diff is not None and diff.returncode == 0 and untracked is not None and untracked.returncode == 0
            and not untracked.stdout.strip())


def _execute_at(revision: str, repo: Path, run: Run, spec: str, threads: int) -> dict:
    """``execute_run(run)`` by the package of commit ``revision``, in a subprocess (module docstring)."""
    with tempfile.TemporaryDirectory(prefix="mqar-rerun-") as tmp:
        root = Path(tmp) / "src"
        root.mkdir()
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", revision, "mqar_theory"],
                                 capture_output=True, timeout=120)
        if archive.returncode != 0:
            raise RuntimeError(f"git archive {revision} failed: {archive.stderr.decode(errors='replace').strip()}")
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True, capture_output=True)
        out = Path(tmp) / "record.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
        args = {"root": str(root), "out": str(out), "model": run.model, "config": run.config, "spec": spec,
                "threads": threads}
        proc = subprocess.run([sys.executable, "-c", _RERUN_SCRIPT], input=json.dumps(args), text=True,
                              capture_output=True, env=env, cwd=tmp)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"the rerun at {revision} failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-2000:]}")
        return json.loads(out.read_text())


def rerun_record(path_or_record, threads: int = 1, repo=REPO_ROOT) -> dict:
    """Retrain a record's run on the CPU at ``threads`` torch threads and compare it bitwise with the record.

    Returns ``{"hash", "model", "path", "reproduced", "mismatches", "compared", "loss_mismatches",
    "resolved_differs", "record_device", "record_threads", "threads", "rerun_status", "rerun_seconds",
    "rerun_revision"}``:
    ``reproduced`` is True when every compared field (the hash, ``status``, ``COMPARED_METRICS``, the number of
    evaluations and each one's ``test_accuracy``) is bitwise equal; ``mismatches`` lists
    ``{"field", "recorded", "rerun"}`` otherwise. ``loss_mismatches`` does the same for ``LOSS_METRICS``
    (informative: it does not decide ``reproduced``). ``rerun_revision``: the commit whose package retrained the
    run (one of this history, looked up in ``repo``), or ``"working tree"`` (module docstring).
    Raises RuntimeError when the retraining subprocess at the commit fails."""
    from .execute import execute_run

    if not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"threads={threads!r}: must be an integer >= 1")
    rec, path = _load(path_or_record)
    for key in ("model", "config", "hash"):
        if key not in rec:
            raise ValueError(f"path_or_record: the record has no {key!r} (not a sweep record)")
    if not isinstance(rec["config"], dict):
        raise ValueError("path_or_record: the record's 'config' must be a mapping of run_mqar arguments")
    run = Run(model=rec["model"], config=dict(rec["config"]))
    spec, rev, repo = str(rec.get("spec", "rerun")), rec.get("git_revision"), Path(repo)
    at_commit = revision_status(rev, repo) == "clean" and not _same_package(rev, repo)
    t0 = time.perf_counter()
    if at_commit:  # the code the record names, not today's (module docstring)
        new = _execute_at(rev, repo, run, spec, threads)
    else:
        new = execute_run(run, spec_name=spec, device="cpu", threads=threads, prov={})
        new = json.loads(json.dumps(new, allow_nan=True, default=str))  # as write_record stores it: like for like
    seconds = time.perf_counter() - t0

    pairs = [("hash", rec["hash"], run.hash), ("status", rec.get("status"), new.get("status"))]
    old_m, new_m = rec.get("metrics") or {}, new.get("metrics") or {}
    pairs += [(f"metrics.{k}", old_m.get(k), new_m.get(k)) for k in COMPARED_METRICS]
    old_h, new_h = rec.get("history") or [], new.get("history") or []
    pairs.append(("len(history)", len(old_h), len(new_h)))
    for i, (a, b) in enumerate(zip(old_h, new_h)):
        pairs.append((f"history[{i}].test_accuracy", a.get("test_accuracy"), b.get("test_accuracy")))
    mismatches = [{"field": f, "recorded": a, "rerun": b} for f, a, b in pairs if not _same(a, b)]
    losses = [(f"metrics.{k}", old_m.get(k), new_m.get(k)) for k in LOSS_METRICS]
    loss_mismatches = [{"field": f, "recorded": a, "rerun": b} for f, a, b in losses if not _same(a, b)]
    if new.get("status") == "failed":
        mismatches.append({"field": "error", "recorded": rec.get("error"), "rerun": new.get("error")})
    old_resolved = rec.get("resolved")
    resolved_differs = (sorted(k for k in set(old_resolved) | set(new["resolved"])
                               if not _same(old_resolved.get(k), new["resolved"].get(k)))
                        if isinstance(old_resolved, dict) else None)
    return {
        "hash": rec["hash"], "model": rec["model"], "path": path, "reproduced": not mismatches,
        "mismatches": mismatches, "compared": [f for f, _, _ in pairs], "loss_mismatches": loss_mismatches,
        "resolved_differs": resolved_differs,
        "record_device": rec.get("device"), "record_threads": rec.get("threads"), "threads": threads,
        "rerun_status": new.get("status"), "rerun_seconds": seconds,
        "rerun_revision": rev if at_commit else "working tree",
    }


def format_rerun(result: dict) -> str:
    """One line (and one per mismatch) for a ``rerun_record`` result."""
    name = result["path"] or result["hash"]
    if result["reproduced"]:
        at = result.get("rerun_revision", "working tree")
        at = at if at == "working tree" else f"commit {at[:10]}"
        head = f"{name}: reproduced bitwise ({len(result['compared'])} fields, {result['rerun_seconds']:.1f} s, {at})"
    else:
        head = f"{name}: NOT reproduced ({len(result['mismatches'])} of {len(result['compared'])} fields differ)"
    lines = [head]
    lines += [f"  {m['field']}: recorded {m['recorded']!r}, rerun {m['rerun']!r}" for m in result["mismatches"][:10]]
    lines += [f"  note: {m['field']} differs (recorded {m['recorded']!r}, rerun {m['rerun']!r})"
              for m in result["loss_mismatches"]]
    if result["resolved_differs"]:
        lines.append(f"  note: library defaults changed since the record for {result['resolved_differs']}")
    if result["record_device"] not in (None, "cpu") or result["record_threads"] not in (None, result["threads"]):
        lines.append(f"  note: recorded on {result['record_device']} with {result['record_threads']} thread(s), "
                     f"rerun on cpu with {result['threads']}")
    return "\n".join(lines)
