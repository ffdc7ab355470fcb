"""Command line: ``python -m mqar_theory.cli {notebooks,train,check-bounds,check-notebooks,strip-notebooks}``.

Each command is a thin wrapper over a library function that notebooks and scripts call directly.
"""

from __future__ import annotations

import argparse
import sys

from . import notebooks as nbs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mqar-theory", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("notebooks", help="execute the notebooks with papermill (writes figures/)")
    run.add_argument("names", nargs="*", help="only notebooks whose file name contains one of these")
    run.add_argument("--smoke", action="store_true", help="tiny sizes (SMOKE=True)")
    run.add_argument("--device", default=None, help="DEVICE parameter: auto | cpu | cuda")
    run.add_argument("--log-output", action="store_true", help="stream cell output to the terminal")
    tr = sub.add_parser("train", help="train one model on MQAR (run_mqar) and print its metrics as JSON")
    tr.add_argument("--mixer", default="attention", help="registered mixer name (see mqar_theory.mixers.MIXERS)")
    for flag, typ, default in [("--d-model", int, 64), ("--n-layers", int, 2), ("--vocab-size", int, 64),
                               ("--seq-len", int, 32), ("--num-kv-pairs", int, 4), ("--num-train", int, 4000),
                               ("--num-test", int, 500), ("--lr", float, 3e-3), ("--init-std", float, 0.1),
                               ("--epochs", int, 10), ("--batch-size", int, 64), ("--seed", int, 0)]:
        tr.add_argument(flag, type=typ, default=default)
    tr.add_argument("--device", default="auto")
    cb = sub.add_parser("check-bounds", help="measure every hand-set construction over the grid and check "
                        "every claim (bounds.verify); prints the report, exit 1 on a failed claim")
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
    sub.add_parser("check-notebooks", help="exactly one parameters cell and no committed outputs")
    sub.add_parser("strip-notebooks", help="remove outputs and execution counts (keeps tags)")
    args = ap.parse_args(argv)

    if args.cmd == "notebooks":
        params = {}
        if args.smoke:
            params["SMOKE"] = True
        if args.device:
            params["DEVICE"] = args.device
        try:
            for out in nbs.run_notebooks(args.names, params, log_output=args.log_output):
                print(f"  ok: {out}")
        except nbs.NotebookFailed as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "train":
        import json

        from .train import run_mqar

        kw = {k: v for k, v in vars(args).items() if k not in ("cmd", "mixer")}
        record = run_mqar(args.mixer, progress=sys.stderr.isatty(), **kw)
        keep = ("test_accuracy", "train_accuracy", "steps", "epochs", "stopped_early", "seconds", "device",
                "num_parameters")
        print(json.dumps({k: record[k] for k in keep} | {"config": record["config"]}, indent=1, default=str))
        return 0
    if args.cmd == "check-bounds":
        return _check_bounds(args)
    if args.cmd == "check-notebooks":
        bad = {p.name: nbs.check_structure(p) for p in nbs.notebook_paths()}
        bad = {k: v for k, v in bad.items() if v}
        for name, problems in bad.items():
            print(f"{name}: " + "; ".join(problems), file=sys.stderr)
        return 1 if bad else 0
    if args.cmd == "strip-notebooks":
        for p in nbs.notebook_paths():
            if nbs.strip_outputs(p):
                print(f"stripped {p.name}")
        return 0
    return 2


def _check_bounds(args) -> int:
    """bounds.verify on the chosen profile; prints the report (and the failures); 0, 1 on a failed claim,
    2 on invalid arguments."""
    import pandas as pd

    from . import bounds

    try:
        tables, report = bounds.verify(args.device, smoke=args.smoke, num_instances=args.instances,
                                       max_N=args.max_n, max_c=args.max_c, seed=args.seed,
                                       progress=args.progress, constructions=args.only)
        failure = None
    except bounds.ClaimFailed as e:
        tables, report, failure = e.tables, e.report, e
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    points = sum(len(df) for df in tables.values())
    instances = sum(int(df["instances"].sum()) for df in tables.values())
    print(f"check-bounds: {len(tables)} constructions, {points} grid points, {instances} instances verified")
    cols = ["construction", "bound", "const", "status", "rows", "min_ratio", "max_ratio", "slope_N",
            "slope_c", "ok"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 48):
        print(report[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    print(f"all {len(report)} checks ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
