"""Learning-rate grids that bracket their optimum: a spec's ``lr_bracket``.

A grid whose best learning rate sits at its edge has not found the optimum: the next value beyond the edge might
do better. With ``lr_bracket`` set, a sweep looks at each (model, cell) after its grid has run: a cell is the
group of runs that differ only in ``lr`` and ``seed``. Its score per lr is the spec's selection metric (``select.
metric``, the last evaluation's test accuracy by default) averaged over the cell's seeds; a diverged run scores its
metric, 0 where that is not a number (a divergence is clearly worse). Then, round by round:

* the cell is **solved** when its best mean reaches ``solved`` (default: ``base.target_accuracy``, else 0.99):
  nothing to bracket, the lr only changes how fast;
* it is **bracketed** when one of the lrs with the best mean lies strictly inside the lrs run (a tie between an
  edge and an interior lr counts as interior);
* otherwise each edge holding a best mean gets the next lr beyond it, for every seed of the cell (both edges of a
  one-lr grid), unless that edge has been extended ``max_rounds`` times already: the cell is then **open** and
  reported as such (its best lr is still at an edge).

The next lr: ``step: half_decade`` (default) walks the ladder 1, 3, 10, 30, ... x 10^k that the CPU profiles' grids
use (3e-3 -> 1e-2 -> 3e-2; 1e-3 -> 3e-4); a number > 1 multiplies (or divides) the edge by it (``step: 3.1623``
for a half-decade logspace grid). Every added run's record carries ``bracket``: the round, the edge, the lr it
extends and the reason in words.

The rounds are a function of the records alone (``bracket_runs``): a sweep killed between rounds recomputes the
same added runs from the records on disk and resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .runs import Run, canonical

__all__ = ["BracketRule", "parse_bracket", "next_lr", "bracket_runs", "bracket_status", "STEPS"]

STEPS = ("half_decade",)
DEFAULT_SOLVED = 0.99
DEFAULT_MAX_ROUNDS = 3


@dataclass(frozen=True)
class BracketRule:
    """How a sweep extends its lr grid (module docstring): ``step`` ("half_decade" or a factor > 1), at most
    ``max_rounds`` extensions per edge of a cell, cells whose best mean ``metric`` reaches ``solved`` left alone."""

    step: str | float = "half_decade"
    max_rounds: int = DEFAULT_MAX_ROUNDS
    solved: float = DEFAULT_SOLVED
    metric: str = "test_accuracy"


def parse_bracket(value, base: dict, metric: str, error=ValueError) -> BracketRule | None:
    """The ``lr_bracket`` entry of a spec -> a ``BracketRule`` (None when absent or false). ``true`` takes the
    defaults; a mapping may set ``step``, ``max_rounds`` and ``solved``. ``error`` is the exception class raised
    (the spec parser passes ``SpecError``)."""
    if value is None or value is False:
        return None
    solved = base.get("target_accuracy", DEFAULT_SOLVED)
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise error(f"lr_bracket: must be true, false or a mapping {{step, max_rounds, solved}}, got {value!r}")
    unknown = sorted(set(value) - {"step", "max_rounds", "solved"})
    if unknown:
        raise error(f"lr_bracket.{unknown[0]}: unknown key; allowed are ['max_rounds', 'solved', 'step']")
    step = value.get("step", "half_decade")
    if not (step in STEPS or (isinstance(step, (int, float)) and not isinstance(step, bool) and step > 1
                              and math.isfinite(step))):
        raise error(f"lr_bracket.step: {step!r} must be 'half_decade' or a finite number > 1")
    rounds = value.get("max_rounds", DEFAULT_MAX_ROUNDS)
    if not (isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1):
        raise error(f"lr_bracket.max_rounds: {rounds!r} must be an integer >= 1")
    solved = value.get("solved", solved)
    if not (isinstance(solved, (int, float)) and not isinstance(solved, bool) and 0 < solved <= 1):
        raise error(f"lr_bracket.solved: {solved!r} must be a number in (0, 1]")
    return BracketRule(step=step if isinstance(step, str) else float(step), max_rounds=rounds, solved=float(solved),
                       metric=metric)


def next_lr(lr: float, direction: str, step: str | float = "half_decade") -> float:
    """The lr beyond ``lr`` upwards (``direction="up"``) or downwards (``"down"``): the next rung of the ladder
    1, 3 x 10^k (``step="half_decade"``), or ``lr`` times / divided by ``step``; rounded to 12 significant
    digits like every config value (``runs.canonical``)."""
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r}: must be a finite number > 0")
    if direction not in ("up", "down"):
        raise ValueError(f"direction={direction!r}: must be 'up' or 'down'")
    if step == "half_decade":
        k = math.floor(math.log10(lr)) - 1
        ladder = [m * 10.0**e for e in range(k, k + 4) for m in (1, 3)]
        ladder = [float(f"{v:.12g}") for v in ladder]
        tol = 1.05  # a grid value written as 3.16e-3 is the rung 3e-3
        out = min(v for v in ladder if v > lr * tol) if direction == "up" else max(v for v in ladder if v < lr / tol)
    elif isinstance(step, (int, float)) and step > 1:
        out = lr * step if direction == "up" else lr / step
    else:
        raise ValueError(f"step={step!r}: must be 'half_decade' or a number > 1")
    return canonical(float(out))


def _cell_key(run: Run) -> str:
    rest = {k: v for k, v in run.config.items() if k not in ("lr", "seed")}
    return json.dumps({"model": run.model, "config": rest}, sort_keys=True)


def _score(record: dict, metric: str) -> float:
    value = (record.get("metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


_DONE = ("ok", "diverged")


def _walk(grid_runs: list[Run], records: dict[str, dict], rule: BracketRule):
    """Replay the rounds on the records: (added runs, one status row per cell)."""
    cells: dict[str, list[Run]] = {}
    for run in grid_runs:
        cells.setdefault(_cell_key(run), []).append(run)
    added: list[Run] = []
    rows = []
    for runs in cells.values():
        seeds = sorted({r.config.get("seed") for r in runs}, key=str)
        template = runs[0]
        by_lr: dict[float, list[Run]] = {}
        for r in runs:
            by_lr.setdefault(r.config["lr"], []).append(r)
        extended = {"up": 0, "down": 0}
        new_lrs: list[float] = []
        state, reason = "pending", "the grid has not run yet"
        for rnd in range(1, 2 * rule.max_rounds + 2):
            means = {}
            for lr, rs in by_lr.items():
                recs = [records.get(r.hash) for r in rs]
                if any(rec is None or rec.get("status") not in _DONE for rec in recs):
                    break
                means[lr] = sum(_score(rec, rule.metric) for rec in recs) / len(recs)
            if len(means) < len(by_lr):
                state, reason = "pending", ("the grid has not run yet" if rnd == 1 else
                                            f"waiting for the runs added in round {rnd - 1}")
                break
            best = max(means.values())
            lrs = sorted(means)
            top, bottom = lrs[-1], lrs[0]
            best_lrs = [lr for lr in lrs if means[lr] == best]
            if best >= rule.solved:
                state, reason = "solved", f"best mean {rule.metric} {best:.3f} >= {rule.solved:g}"
                break
            if any(bottom < lr < top for lr in best_lrs):
                state, reason = "bracketed", f"best mean {rule.metric} {best:.3f} at an interior lr"
                break
            directions = [d for d, edge in (("up", top), ("down", bottom)) if edge in best_lrs]
            directions = [d for d in directions if extended[d] < rule.max_rounds]
            if not directions:
                state, reason = "open", (f"best mean {rule.metric} {best:.3f} at the edge lr "
                                         f"{best_lrs[-1]:g} after {rule.max_rounds} extensions")
                break
            for d in directions:
                edge = top if d == "up" else bottom
                lr = next_lr(edge, d, rule.step)
                extended[d] += 1
                new_lrs.append(lr)
                why = (f"round {rnd}: best mean {rule.metric} {best:.3f} (over {len(seeds)} seeds) at lr {edge:g}, "
                       f"the {'top' if d == 'up' else 'bottom'} of the lrs run, below {rule.solved:g}")
                note = {"round": rnd, "edge": "top" if d == "up" else "bottom", "from_lr": edge, "lr": lr,
                        "reason": why}
                by_lr[lr] = []
                for seed in seeds:
                    config = dict(template.config, lr=lr)
                    if seed is not None:
                        config["seed"] = seed
                    else:
                        config.pop("seed", None)
                    sources = dict(template.sources, lr=f"lr_bracket ({why})")
                    run = Run(model=template.model, config=config, sources=sources, note=note)
                    by_lr[lr].append(run)
                    added.append(run)
        rows.append({"model": template.model, **{k: v for k, v in template.config.items() if k not in ("lr", "seed")},
                     "state": state, "reason": reason, "added_lrs": new_lrs,
                     "lrs": sorted(by_lr)})
    return added, rows


def bracket_runs(grid_runs: list[Run], records: dict[str, dict], rule: BracketRule) -> list[Run]:
    """Every run the bracketing adds to ``grid_runs`` given the ``records`` present (hash -> record): the rounds
    replayed in order, each decided on records only (module docstring). Runs of a round whose records are missing
    are returned too (to be executed); later rounds of that cell wait for them."""
    return _walk(grid_runs, records, rule)[0]


def bracket_status(grid_runs: list[Run], records: dict[str, dict], rule: BracketRule):
    """One row per cell: its config (without lr, seed), ``state`` (solved / bracketed / open / pending), the
    ``reason`` in words, ``added_lrs`` and every lr run; a ``pandas.DataFrame``."""
    import pandas as pd

    return pd.DataFrame(_walk(grid_runs, records, rule)[1])
