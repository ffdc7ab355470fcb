"""Sweeps: YAML specs -> runs of ``run_mqar`` -> one JSON record per run -> a table, resumable after a kill.

    from mqar_theory.sweep import run_sweep, select_best, figure2_claims
    df = run_sweep("figure2_smoke", "build/smoke/results/figure2_smoke", workers=2)
    best = select_best(df)                       # the paper's rule: last test accuracy, max over lr

Modules: ``spec`` (the YAML format and its validation, ``SpecError``), ``runs`` (expansion and hashes),
``execute`` (one run -> one record), ``store`` (atomic records, ``load_results``, ``table.csv``),
``backends`` (local processes, Ray), ``sweep`` (``run_sweep``), ``analysis`` (``select_best``,
``figure2_claims``), ``gap`` (Figure 2 bottom and Sec. 5 hybrid claims), ``figures`` (Figure 2 style plots),
``cli`` (``mqar-theory sweep``).
"""

from .analysis import (
    CLAIMS,
    GATED_CONVOLUTIONS,
    below_solved_attention,
    cell_table,
    check_declared,
    figure2_claims,
    lr_table,
    reference_failures,
    seed_spread,
    select_best,
    threshold_table,
)
from .execute import execute_run, model_sizes, provenance
from .gap import HYBRID_CLAIMS, hybrid_claims, hybrid_summary, input_dependence_claims, selection_rule
from .runs import Run, canonical, expand, run_hash
from .spec import Spec, SpecError, load_spec, parse_spec, resolve_spec_path
from .store import load_records, load_results, read_record, write_record, write_table
from .sweep import RETRAIN_ENV, all_runs, plan, run_sweep

__all__ = [
    "run_sweep", "plan", "all_runs", "RETRAIN_ENV",
    "Spec", "SpecError", "load_spec", "parse_spec", "resolve_spec_path",
    "Run", "expand", "run_hash", "canonical",
    "execute_run", "model_sizes", "provenance",
    "load_results", "load_records", "read_record", "write_record", "write_table",
    "select_best", "figure2_claims", "cell_table", "CLAIMS", "GATED_CONVOLUTIONS",
    "lr_table", "seed_spread", "threshold_table", "reference_failures",
    "below_solved_attention", "check_declared",
    "input_dependence_claims", "hybrid_summary", "hybrid_claims", "selection_rule", "zoology_table2",
    "ZOOLOGY_TABLE2", "HYBRID_CLAIMS",
]  # fmt: skip


def __getattr__(name):  # the paper's Table 2 lives in its own module (imported on first use)
    if name in ("ZOOLOGY_TABLE2", "zoology_table2"):
        from . import table2

        return getattr(table2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
