"""``mqar-theory sweep SPEC --results DIR [...]``: the command-line face of ``run_sweep`` (the flags are
defined in ``mqar_theory.cli``, which calls ``main(args)`` here).

Exit status: 0 when every run of the spec is recorded ``ok`` or ``diverged``; 1 when some run failed (its
record holds the error; rerunning retries it); 2 for an invalid spec or argument, reported in one line on
stderr, before any run starts.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(args) -> int:
    """Run the ``sweep`` subcommand for parsed ``args``; returns the exit status."""
    import pandas as pd

    from .analysis import select_best
    from .spec import load_spec
    from .sweep import plan, run_sweep

    try:
        spec = load_spec(args.spec)
        if args.dry_run:
            df = plan(spec, args.results, retrain=True if args.retrain else None)
            steps = _max_steps(df)
            print(f"sweep {spec.name}: {len(df)} runs, {int(df['recorded'].sum())} already recorded in "
                  f"{args.results}; at most {steps:,} optimizer steps in all")
            cols = [c for c in ("model", "seq_len", "num_kv_pairs", "d_model", "n_layers", "lr", "seed",
                                "recorded", "hash") if c in df]
            with pd.option_context("display.width", 200, "display.max_rows", 2000):
                print(df[cols].to_string(index=False))
            return 0
        df = run_sweep(spec, args.results, workers=args.workers, device=args.device, backend=args.backend,
                       progress=sys.stderr.isatty(), retrain=True if args.retrain else None, threads=args.threads,
                       gpus_per_run=args.gpus_per_run)
    except ValueError as e:  # SpecError included: one line, no traceback
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    failed = df[df["status"] == "failed"]
    best = select_best(df, spec.select["metric"], spec.select["over"])
    cols = [c for c in ("model", "seq_len", "d_model", "seed", "lr", "test_accuracy", "train_accuracy", "steps")
            if c in best]
    with pd.option_context("display.width", 200, "display.max_rows", 2000):
        print(best[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"sweep {spec.name}: {len(df)} runs recorded in {args.results} ({len(failed)} failed)")
    for _, r in failed.iterrows():
        print(f"failed: {r['model']} {r['hash']}: {r['error']}", file=sys.stderr)
    return 1 if len(failed) else 0


def _max_steps(df) -> int:
    """Upper bound on optimizer steps of a plan (epochs x ceil(num_train / batch_size), capped by max_steps)."""
    from .spec import run_mqar_keys

    d = run_mqar_keys()
    total = 0
    for _, r in df.iterrows():
        row = {k: v for k, v in r.items() if v is not None and v == v}  # drop NaN / None cells
        epochs, n, batch, cap = (row.get(k, d[k]) for k in ("epochs", "num_train", "batch_size", "max_steps"))
        steps = epochs * -(-n // batch)
        total += steps if cap is None else min(steps, cap)
    return int(total)
