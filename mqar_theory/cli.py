"""Command line: ``python -m mqar_theory.cli {notebooks,check-notebooks,strip-notebooks}``.

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


if __name__ == "__main__":
    sys.exit(main())
