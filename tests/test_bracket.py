"""Learning-rate grids that bracket their optimum (``sweep.bracket``), on fake objectives: the lrs added and why,
the stopping rules, resumption from the records, the spec's errors."""

from __future__ import annotations

import math

import pytest

from mqar_theory.sweep import bracket as B
from mqar_theory.sweep import execute as execute_module
from mqar_theory.sweep.spec import SpecError, parse_spec
from mqar_theory.sweep.store import load_records
from mqar_theory.sweep.sweep import all_runs, plan, run_sweep


@pytest.mark.parametrize("lr, direction, expected", [
    (3e-3, "up", 1e-2), (1e-3, "up", 3e-3), (1e-2, "up", 3e-2), (1e-3, "down", 3e-4), (3e-4, "down", 1e-4),
    (3.16e-3, "up", 1e-2), (1e-1, "up", 3e-1), (3e-5, "down", 1e-5),
])  # fmt: skip
def test_half_decade_ladder(lr, direction, expected):
    assert B.next_lr(lr, direction) == pytest.approx(expected, rel=1e-12)


def test_numeric_step_multiplies_or_divides():
    assert B.next_lr(1e-3, "up", 10**0.5) == pytest.approx(10**-2.5, rel=1e-11)
    assert B.next_lr(1e-3, "down", 2.0) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="direction"):
        B.next_lr(1e-3, "sideways")
    with pytest.raises(ValueError, match="lr"):
        B.next_lr(0.0, "up")


def _spec(lrs, seeds=(0, 1), bracket=True, **base):
    return parse_spec({"name": "fake", "base": {"mixer": "attention", "d_model": 8, **base},
                       "axes": {"seq_len": [16, 32], "lr": list(lrs), "seed": list(seeds)}, "lr_bracket": bracket})


def _record(run, acc: float, status: str = "ok") -> dict:
    return {"hash": run.hash, "model": run.model, "spec": "fake", "config": run.config, "status": status,
            "metrics": {"test_accuracy": acc}, "history": [], "seed": run.config.get("seed"),
            **({"bracket": run.note} if run.note else {})}


def _replay(spec, objective, rounds: int = 10) -> dict:
    """Run the bracketing to its end on a fake objective(run) -> (accuracy, status): the records it writes."""
    records = {r.hash: _record(r, *objective(r)) for r in spec.runs()}
    for _ in range(rounds):
        new = [r for r in B.bracket_runs(spec.runs(), records, spec.lr_bracket) if r.hash not in records]
        if not new:
            break
        records.update({r.hash: _record(r, *objective(r)) for r in new})
    return records


def _peaked(peak: float, top: float = 0.9):
    """Accuracy falling off quadratically in log10(lr) around ``peak``; seed 1 a little worse."""
    return lambda run: (top - 0.1 * math.log10(run.config["lr"] / peak) ** 2 - 0.01 * run.config["seed"], "ok")


def test_a_grid_below_the_optimum_is_extended_until_the_best_is_interior():
    spec = _spec([3e-4, 1e-3, 3e-3])
    records = _replay(spec, _peaked(2e-2))
    status = B.bracket_status(spec.runs(), records, spec.lr_bracket)
    assert list(status["state"]) == ["bracketed", "bracketed"]
    for added in status["added_lrs"]:  # 1e-2 beats 3e-3, 3e-2 beats 1e-2, 1e-1 is worse: 3e-2 is interior
        assert added == pytest.approx([1e-2, 3e-2, 1e-1])
    notes = [r["bracket"] for r in records.values() if "bracket" in r]
    assert len(notes) == 2 * 3 * 2  # 2 cells x 3 added lrs x 2 seeds
    first = [n for n in notes if n["round"] == 1][0]
    assert first["edge"] == "top" and first["from_lr"] == 3e-3 and first["lr"] == pytest.approx(1e-2)
    assert "at lr 0.003, the top of the lrs run, below 0.99" in first["reason"]


def test_the_bottom_edge_is_extended_downwards():
    spec = _spec([1e-3, 3e-3, 1e-2])
    status = B.bracket_status(spec.runs(), _replay(spec, _peaked(2e-4)), spec.lr_bracket)
    assert list(status["state"]) == ["bracketed", "bracketed"]
    assert status["added_lrs"][0] == pytest.approx([3e-4, 1e-4])


def test_an_interior_best_or_a_solved_cell_adds_nothing():
    spec = _spec([1e-3, 3e-3, 1e-2])
    records = _replay(spec, _peaked(3e-3))
    assert B.bracket_runs(spec.runs(), records, spec.lr_bracket) == []
    assert set(B.bracket_status(spec.runs(), records, spec.lr_bracket)["state"]) == {"bracketed"}
    solved = _replay(spec, lambda run: (1.0 if run.config["lr"] == 1e-2 else 0.5, "ok"))
    assert B.bracket_runs(spec.runs(), solved, spec.lr_bracket) == []
    assert set(B.bracket_status(spec.runs(), solved, spec.lr_bracket)["state"]) == {"solved"}


def test_a_divergence_beyond_the_edge_closes_the_bracket():
    spec = _spec([1e-3, 3e-3])
    records = _replay(spec, lambda run: (float("nan"), "diverged") if run.config["lr"] > 5e-3
                      else (run.config["lr"] * 100, "ok"))
    status = B.bracket_status(spec.runs(), records, spec.lr_bracket)
    assert list(status["state"]) == ["bracketed", "bracketed"]
    assert status["added_lrs"][0] == pytest.approx([1e-2])


def test_a_tie_with_an_interior_lr_counts_as_bracketed():
    spec = _spec([1e-3, 3e-3, 1e-2])
    records = _replay(spec, lambda run: (0.5 if run.config["lr"] >= 3e-3 else 0.2, "ok"))
    assert set(B.bracket_status(spec.runs(), records, spec.lr_bracket)["state"]) == {"bracketed"}


def test_a_one_lr_grid_is_extended_both_ways():
    spec = _spec([1e-3], seeds=[0])
    status = B.bracket_status(spec.runs(), _replay(spec, _peaked(1e-3 * 1.5)), spec.lr_bracket)
    assert sorted(status["added_lrs"][0]) == pytest.approx([3e-4, 3e-3])
    assert list(status["state"]) == ["bracketed", "bracketed"]


def test_max_rounds_leaves_a_cell_open():
    spec = _spec([1e-3, 3e-3], bracket={"max_rounds": 2})
    records = _replay(spec, lambda run: (run.config["lr"], "ok"))  # accuracy grows with lr without end
    status = B.bracket_status(spec.runs(), records, spec.lr_bracket)
    assert list(status["state"]) == ["open", "open"]
    assert status["added_lrs"][0] == pytest.approx([1e-2, 3e-2])
    assert "after 2 extensions" in status["reason"][0]


def test_missing_records_leave_the_cell_pending():
    spec = _spec([1e-3, 3e-3])
    records = {r.hash: _record(r, r.config["lr"]) for r in spec.runs()}
    first = B.bracket_runs(spec.runs(), records, spec.lr_bracket)
    assert {r.config["lr"] for r in first} == {1e-2} and len(first) == 4  # 2 cells x 2 seeds
    assert set(B.bracket_status(spec.runs(), records, spec.lr_bracket)["state"]) == {"pending"}
    del records[spec.runs()[0].hash]  # a grid run of the first cell lost: that cell waits
    again = B.bracket_runs(spec.runs(), records, spec.lr_bracket)
    assert len(again) == 2 and all(r.config["seq_len"] == 32 for r in again)


def _fake_execute(objective, calls):
    def execute_run(run, *, spec_name, device="auto", threads=1, prov=None):
        calls.append(run.hash)
        acc, status = objective(run)
        return _record(run, acc, status) | {"spec": spec_name}

    return execute_run


def test_run_sweep_brackets_records_why_and_resumes(tmp_path, monkeypatch):
    spec = _spec([3e-4, 1e-3, 3e-3])
    calls: list[str] = []
    monkeypatch.setattr(execute_module, "execute_run", _fake_execute(_peaked(2e-2), calls))
    df = run_sweep(spec, tmp_path, progress=False, device="cpu")
    assert len(calls) == len(df) == 12 + 12  # the grid, then 3 rounds of 2 cells x 2 seeds
    added = df[df["bracket"].notna()]
    assert sorted(set(added["lr"])) == pytest.approx([1e-2, 3e-2, 1e-1])
    recs = load_records(tmp_path)
    assert sum("bracket" in r for r in recs) == 12
    # resume after losing a round-2 record: only that run executes again, the same lrs come out
    lost = next(r for r in recs if r.get("bracket", {}).get("round") == 2)
    (tmp_path / f"{lost['hash']}.json").unlink()
    calls.clear()
    df2 = run_sweep(spec, tmp_path, progress=False, device="cpu")
    assert calls == [lost["hash"]]
    assert sorted(df2["hash"]) == sorted(df["hash"])
    assert len(plan(spec, tmp_path)) == 24 and plan(spec, tmp_path)["recorded"].all()
    assert len(all_runs(spec)) == 12  # without records, only the grid


def test_spec_errors_name_the_key():
    with pytest.raises(SpecError, match="lr_bracket.step"):
        _spec([1e-3], bracket={"step": 0.5})
    with pytest.raises(SpecError, match="lr_bracket.sharpness"):
        _spec([1e-3], bracket={"sharpness": 1})
    with pytest.raises(SpecError, match="lr_bracket.max_rounds"):
        _spec([1e-3], bracket={"max_rounds": 0})
    with pytest.raises(SpecError, match="lr_bracket.solved"):
        _spec([1e-3], bracket={"solved": 1.5})
    with pytest.raises(SpecError, match="lr_bracket: must be"):
        _spec([1e-3], bracket=3)
    with pytest.raises(SpecError, match="lr_bracket: needs lr"):
        parse_spec({"name": "x", "base": {"mixer": "attention"}, "axes": {"seed": [0]}, "lr_bracket": True})
    assert _spec([1e-3], bracket=False).lr_bracket is None
    assert _spec([1e-3], target_accuracy=0.95).lr_bracket.solved == 0.95
