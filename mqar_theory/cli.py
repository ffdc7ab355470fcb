"""Command line: ``python -m mqar_theory.cli {notebooks,train,check-bounds,sweep,check-records,workspace,
check-notebooks,strip-notebooks,notebook-filter}``.

Each command is a thin wrapper over a library function that notebooks and scripts call directly. The console
script ``mqar-theory`` is the same program. A user error (a bad value, an unknown mixer or notebook, a device that is
not there) prints one ``error: ...`` line and exits with status 2; heavy modules (torch, sympy, pandas) are imported
inside the command that needs them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time

from . import notebooks as nbs


def main(argv: list[str] | None = None) -> int:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    ap = argparse.ArgumentParser(prog="mqar-theory", description=__doc__, formatter_class=fmt)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("notebooks", formatter_class=fmt,
                         help="execute the notebooks with papermill (writes figures/; --smoke writes build/smoke/)")
    run.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these (each must "
                     "match one)")
    run.add_argument("--smoke", action="store_true",
                     help="tiny sizes (SMOKE=True); figures go to build/smoke/figures, never figures/")
    run.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"],
                     help="DEVICE parameter (default: each notebook's own, 'auto')")
    run.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter (repeatable), as papermill -p: VALUE is read as a Python "
                     "literal (True, 3, 1e-3, 'x'), else taken as a string; a name the notebook does not declare is "
                     "an error")
    tr = sub.add_parser("train", formatter_class=fmt, epilog=TRAIN_EPILOG,
                        help="train one model on MQAR (run_mqar) and print its metrics as JSON")
    tr.add_argument("--mixer", default="attention", help="registered mixer name (see mqar_theory.mixers.MIXERS)")
    for flag, typ, default in TRAIN_DEFAULTS:
        tr.add_argument(flag, type=typ, default=default, help=f"run_mqar's {flag[2:].replace('-', '_')}")
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (auto takes CUDA when present)")
    tr.add_argument("--no-progress", action="store_true",
                    help="no progress on stderr (by default a tqdm bar on a terminal, else a line every "
                    f"{PROGRESS_LINE_SECONDS:g} s); stdout holds only the JSON record either way")
    cb = sub.add_parser("check-bounds", formatter_class=fmt,
                        help="measure every hand-set construction over the grid and check every claim "
                        "(bounds.verify); prints the report, exit 1 on a failed claim")
    cb.add_argument("--smoke", action="store_true", help="the small SMOKE_GRID (seconds)")
    cb.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto takes CUDA, and with it the float32 GPU profile, when present")
    cb.add_argument("--max-n", type=int, default=None, help="drop grid points with N above this")
    cb.add_argument("--max-c", type=int, default=None, help="drop grid points with c above this")
    cb.add_argument("--instances", type=int, default=None,
                    help="random instances per point (default: the profile's)")
    cb.add_argument("--seed", type=int, default=0)
    cb.add_argument("--only", action="append", default=None, metavar="NAME",
                    help="check only this construction (repeatable)")
    cb.add_argument("--progress", action="store_true", help="tqdm bars over the grid points")
    cb.add_argument("--vocab-sizes", default=None, metavar="C1,C2,..",
                    help="a user grid: these vocabulary sizes (even, >= 4) with every --seq-lens value")
    cb.add_argument("--seq-lens", default=None, metavar="N1,N2,..",
                    help="a user grid: these sequence lengths (>= 4); give with --vocab-sizes")
    cr = sub.add_parser("check-records", formatter_class=fmt,
                        help="provenance of the run records: does each name a clean commit of this history "
                        "(and, with --rerun, retrain it and compare bitwise); exit 1 when one does not")
    cr.add_argument("--results", default=None,
                    help="folder of records, searched at any depth (default: the repository's results/)")
    cr.add_argument("--rerun", action="append", default=None, metavar="HASH|PATH",
                    help="also retrain this record on the CPU and compare it bitwise (repeatable)")
    cr.add_argument("--threads", type=int, default=1, help="torch threads of a rerun")
    cr.add_argument("--verbose", action="store_true", help="one line per record")
    ws = sub.add_parser("workspace", formatter_class=fmt,
                        help="copy the notebooks into workspace/ (git-ignored), where a student edits and runs them; "
                        "copies already there are kept unless --reset")
    ws.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these")
    ws.add_argument("--reset", action="store_true",
                    help="replace the workspace copies by fresh ones (the old ones go to workspace/.previous/)")
    ws.add_argument("--dir", default=None, help="the workspace folder (default: workspace/ in the repository)")
    ws.add_argument("--html", action="store_true",
                    help="instead, export the workspace notebooks, with their saved outputs, to workspace/html/")
    sub.add_parser("check-notebooks", help="exactly one parameters cell and no committed outputs")
    sub.add_parser("strip-notebooks", help="remove outputs and execution counts (keeps tags)")
    sub.add_parser("notebook-filter", help="git's clean filter for notebooks (installed by make): a notebook on stdin, "
                   "its committed form on stdout")
    sw = sub.add_parser("sweep", formatter_class=fmt,
                        help="run or resume a sweep (a YAML spec under sweeps/), one JSON record per run")
    _sweep_arguments(sw)
    args = ap.parse_args(argv)

    if args.cmd == "notebooks":
        params = {name: _literal(value) for name, value in args.parameter}
        if args.smoke:
            params["SMOKE"] = True
        if args.device:
            params["DEVICE"] = args.device
        try:  # every argument is checked before the first notebook runs
            paths = nbs.select_notebooks(args.names)
            for p in paths:
                nbs.check_parameters(p, params)
            if args.device == "cuda":
                _check_device(args.device)
        except ValueError as e:
            return _user_error(e)
        try:
            for out in nbs.run_notebooks(args.names, params, log_output=args.log_output, paths=paths):
                print(f"  ok: {out}")
        except nbs.NotebookFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "train":
        return _train(args)
    if args.cmd == "check-bounds":
        return _check_bounds(args)
    if args.cmd == "check-records":
        return _check_records(args)
    if args.cmd == "workspace":
        from pathlib import Path

        from .workspace import WORKSPACE_DIR, export_html, prepare_workspace

        folder = WORKSPACE_DIR if args.dir is None else Path(args.dir)
        try:
            if args.html:
                for page in export_html(args.names, directory=folder):
                    print(f"wrote {page}")
                return 0
            actions = prepare_workspace(args.names, reset=args.reset, directory=folder)
        except ValueError as e:
            return _user_error(e)
        for name, action in actions.items():
            print(f"{action:>6}: {folder / name}")
        return 0
    if args.cmd == "check-notebooks":
        bad = {p.name: nbs.check_structure(p) for p in nbs.notebook_paths()}
        bad = {k: v for k, v in bad.items() if v}
        for name, problems in bad.items():
            print(f"{name}: " + "; ".join(problems), file=sys.stderr)
        return 1 if bad else 0
    if args.cmd == "sweep":
        from .sweep.cli import main as sweep_main

        return sweep_main(args)
    if args.cmd == "notebook-filter":
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(nbs.filtered(data))
        return 0
    if args.cmd == "strip-notebooks":
        for p in nbs.notebook_paths():
            if nbs.strip_outputs(p):
                print(f"stripped {p.name}")
        return 0
    return 2


#: ``train``'s flags and defaults: exactly ``run_mqar``'s keyword defaults (tests/test_cli.py compares them with
#: its signature), so the command line and the library train the same model unless told otherwise.
TRAIN_DEFAULTS = [("--d-model", int, 64), ("--n-layers", int, 2), ("--vocab-size", int, 8192),
                  ("--seq-len", int, 64), ("--num-kv-pairs", int, 4), ("--num-train", int, 20_000),
                  ("--num-test", int, 1_000), ("--lr", float, 1e-3), ("--init-std", float, 0.02),
                  ("--epochs", int, 10), ("--batch-size", int, 64), ("--seed", int, 0)]

TRAIN_EPILOG = ("The defaults are run_mqar's: the paper's cell (c=8192, N=64, K=4) with the official init "
                "(init_std 0.02), minutes on a CPU. A seconds-long CPU run where attention reaches ~0.99: "
                "--vocab-size 64 --seq-len 32 --num-train 4000 --num-test 500 --lr 3e-3 --init-std 0.1")


def _sweep_arguments(sp) -> None:
    """The ``sweep`` flags (parsed here, so ``--help`` imports nothing; run by ``mqar_theory.sweep.cli``)."""
    sp.add_argument("spec", help="a YAML spec, or the name of one under sweeps/ (e.g. figure2_smoke)")
    sp.add_argument("--results", required=True, help="directory of the run records (created; resumed if present)")
    sp.add_argument("--workers", type=int, default=1, help="runs at once (local processes or Ray CPUs)")
    sp.add_argument("--device", default="auto", help="auto | cpu | cuda (several runs share one GPU)")
    sp.add_argument("--backend", default="local", choices=["local", "ray"])
    sp.add_argument("--threads", type=int, default=1, help="torch threads per run")
    sp.add_argument("--gpus-per-run", type=float, default=None, help="GPU fraction per Ray task (default 0.25)")
    sp.add_argument("--retrain", action="store_true", help="retrain every run (same as MQAR_RETRAIN=1)")
    sp.add_argument("--dry-run", action="store_true", help="validate and list the runs; train nothing")


def _literal(text: str):
    """A ``-p`` value: a Python literal when it parses as one (True, 3, 1e-3, 'x'), else the string itself."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _user_error(e: Exception) -> int:
    """One line on stderr and exit status 2, as argparse does for a malformed command line."""
    print(f"error: {e}", file=sys.stderr)
    return 2


def _check_device(device: str) -> None:
    from .utils import resolve_device

    resolve_device(device)  # ValueError naming the device when it is not there


def _train(args) -> int:
    import json

    from .mixers import MIXERS
    from .train import run_mqar

    try:
        if args.mixer not in MIXERS:
            raise ValueError(f"--mixer {args.mixer!r}: unknown; registered mixers are {sorted(MIXERS)}")
        _check_device(args.device)
        kw = {k: v for k, v in vars(args).items() if k not in ("cmd", "mixer", "no_progress")}
        stderr = sys.stderr if sys.stderr.isatty() else _ProgressLines(sys.stderr)
        with contextlib.redirect_stderr(stderr):  # tqdm writes to the sys.stderr of the moment it opens
            record = run_mqar(args.mixer, progress=not args.no_progress, **kw)
    except ValueError as e:
        return _user_error(e)
    keep = ("test_accuracy", "train_accuracy", "steps", "epochs", "stopped_early", "seconds", "device",
            "num_parameters", "status")
    print(json.dumps({k: record[k] for k in keep if k in record} | {"config": record["config"]}, indent=1,
                     default=str))
    return 0


def _check_records(args) -> int:
    from pathlib import Path

    from .sweep.audit import DEFAULT_RESULTS, check_records, format_check, format_rerun, record_files, rerun_record

    results = DEFAULT_RESULTS if args.results is None else Path(args.results)
    try:
        rows = check_records(results)
        if args.threads < 1:
            raise ValueError(f"--threads={args.threads}: must be an integer >= 1")
        reruns = []
        for name in args.rerun or []:
            found = [p for p in record_files(results) if p.stem == name] or (
                [Path(name)] if Path(name).is_file() else [])
            if not found:
                raise ValueError(f"--rerun {name!r}: no record with that hash under {results}, and no such file")
            reruns.append(found[0])
    except ValueError as e:
        return _user_error(e)
    print(format_check(rows, verbose=args.verbose))
    ok = all(r["ok"] for r in rows)
    for path in reruns:
        result = rerun_record(path, threads=args.threads)
        print(format_rerun(result))
        ok = ok and result["reproduced"]
    return 0 if ok else 1


#: seconds between two progress lines of ``train`` when stderr is not a terminal
PROGRESS_LINE_SECONDS = 10.0


class _ProgressLines:
    """``train``'s stderr when it is not a terminal (a pipe, a log file, CI): tqdm redraws its bar in place with
    ``\\r``, which a log keeps as one ever-growing line; here each redraw becomes a whole line, at most one every
    ``PROGRESS_LINE_SECONDS`` plus the bar's final state, and any other text passes through unchanged."""

    def __init__(self, stream):
        self._stream, self._last, self._pending, self._in_bar = stream, -math.inf, None, False

    def write(self, text: str) -> int:
        if text.startswith("\r"):
            self._pending, self._in_bar = text[1:].rstrip(), True
            if time.monotonic() - self._last >= PROGRESS_LINE_SECONDS:
                self._emit()
        elif text == "\n" and self._in_bar:  # tqdm closing a bar it leaves on screen: its last state, once
            self._emit()
            self._in_bar = False
        else:
            self._in_bar = False
            self._stream.write(text)
        return len(text)

    def _emit(self) -> None:
        if self._pending:
            self._stream.write(self._pending + "\n")
            self._stream.flush()
            self._last, self._pending = time.monotonic(), None

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):  # encoding, fileno, ...: the wrapped stream's
        return getattr(self._stream, name)


def _int_list(flag: str, text):
    """'6,10,66' -> [6, 10, 66]; None stays None; ValueError naming the flag otherwise."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()] or None
    except ValueError:
        raise ValueError(f"{flag}={text!r}: must be comma-separated integers, e.g. 6,10,66") from None


def _check_bounds(args) -> int:
    """bounds.verify on the chosen profile; prints the report (and the failures); 0, 1 on a failed claim,
    2 on invalid arguments."""
    from . import bounds

    try:
        grid = {k: _int_list(f"--{k.replace('_', '-')}", getattr(args, k)) for k in ("vocab_sizes", "seq_lens")}
        tables, report = bounds.verify(args.device, smoke=args.smoke, num_instances=args.instances,
                                       max_N=args.max_n, max_c=args.max_c, seed=args.seed,
                                       progress=args.progress, constructions=args.only, **grid)
        failure = None
    except bounds.ClaimFailed as e:
        tables, report, failure = e.tables, e.report, e
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    points = sum(len(df) for df in tables.values())
    instances = sum(int(df["instances"].sum()) for df in tables.values())
    print(f"check-bounds: {len(tables)} constructions, {points} grid points, {instances} instances verified")
    print(bounds.format_report(report))  # at most 120 columns
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    print(f"all {len(report)} checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
