"""mqar_theory.sweep: spec validation, run expansion and hashes, atomic records, resume after kill -9, the CLI,
the Ray backend, load/select and the Figure 2 claims. Tiny configs (N=16, d=16, a few steps)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mqar_theory.cli import main as cli_main
from mqar_theory.sweep import (
    SpecError,
    below_solved_attention,
    check_declared,
    figure2_claims,
    load_results,
    load_spec,
    parse_spec,
    run_hash,
    run_sweep,
    select_best,
    write_record,
)
from mqar_theory.sweep.spec import SWEEPS_DIR
from mqar_theory.sweep.store import clean_temporaries, recorded_hashes

ROOT = Path(__file__).resolve().parent.parent


def tiny(**over) -> dict:
    """A 4-run spec: attention and baseconv, N=16, d=16, two lrs; 16 optimizer steps each."""
    spec = {
        "name": "tiny",
        "base": {"vocab_size": 32, "num_train": 128, "num_test": 32, "epochs": 2, "batch_size": 16,
                 "init_std": 0.1, "eval_batch_size": 64},
        "models": {"attention": {"mixer": "attention", "n_layers": 1},
                   "baseconv": {"mixer": "baseconv", "n_layers": 2,
                                "mixer_kwargs": [{"kernel_size": 3}, {"kernel_size": -1}]}},
        "axes": {"task": [[16, 2]], "d_model": [16], "lr": [1.0e-3, 3.0e-3]},
    }  # fmt: skip
    for k, v in over.items():
        spec[k] = v
    return spec


def write_spec(tmp_path, spec: dict, name="spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


# --- validation ------------------------------------------------------------------------------------------------
BAD = [
    (lambda s: s["models"]["attention"].update(mixer="nosuch"), r"^models\.attention\.mixer: unknown mixer 'nosuch'"),
    (lambda s: s["axes"].update(task=[[16, 5]]), r"^axes\.task\[0\]\.num_kv_pairs: num_kv_pairs=5"),
    (lambda s: s["axes"].update(task=[[15, 2]]), r"^axes\.task\[0\]\.seq_len: seq_len=15"),
    (lambda s: s["base"].update(num_passes=8), r"^base\.num_passes: num_passes=8: needs 2 \* num_kv_pairs"),
    (lambda s: s["axes"].update(d_model=[16, "x"]), r"^axes\.d_model\[1\]: d_model='x' must be an integer"),
    (lambda s: s["axes"].update(d_model=16), r"^axes\.d_model: must be a non-empty list"),
    (lambda s: s["axes"].update(lr=[-1.0]), r"^axes\.lr\[0\]: lr=-1\.0 must be > 0"),
    (lambda s: s["base"].update(foo=1), r"^base\.foo: unknown key"),
    (lambda s: s["base"].update(device="cpu"), r"^base\.device: unknown key.*sweep options"),
    (lambda s: s["base"].update(epochs=1.5), r"^base\.epochs: epochs=1\.5 must be an integer"),
    (lambda s: s.update(extra=1), r"^extra: unknown top-level key"),
    (lambda s: s["models"]["baseconv"].update(mixer_kwargs={"bogus": 1}), r"^models\.baseconv\.mixer_kwargs: "),
    (lambda s: s["models"]["attention"].update(mixer_kwargs={"num_heads": 3}), r"num_heads=3"),
    (lambda s: s["models"]["attention"].pop("mixer"), r"^models\.attention\.mixer: missing"),
    (lambda s: s["axes"].update(n_layers=[1, 2]), r"^models: sets 'n_layers', which axes\.n_layers sets too"),
    (lambda s: s["axes"].update(lr={"logspace": [-4, -2]}), r"^axes\.lr\.logspace: must be \[lo, hi, n\]"),
    (lambda s: s.update(select={"metric": "loss"}), r"^select\.metric: 'loss' is not one of"),
    (lambda s: s.update(select={"over": ["nope"]}), r"^select\.over: 'nope' is not a run_mqar argument"),
]


@pytest.mark.parametrize("mutate,message", BAD, ids=[m for _, m in BAD])
def test_invalid_specs_name_the_offending_key(mutate, message):
    spec = tiny()
    mutate(spec)
    with pytest.raises(SpecError, match=message) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match=r"^spec: file .*nope\.yaml.* not found"):
        load_spec(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("axes: [\n")
    with pytest.raises(SpecError, match=r"^spec: .*bad\.yaml is not valid YAML at line"):
        load_spec(tmp_path / "bad.yaml")


def test_yaml_exponent_floats_and_logspace(tmp_path):
    p = tmp_path / "s.yaml"
    text = write_spec(tmp_path, tiny()).read_text().replace("0.001", "1e-3")
    assert "1e-3" in text
    p.write_text(text)
    assert [r.config["lr"] for r in load_spec(p).runs()][:2] == [1e-3, 3e-3]
    spec = parse_spec(tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": {"logspace": [-4, -2, 4]}}))
    lrs = sorted({r.config["lr"] for r in spec.runs()})
    assert lrs == pytest.approx([1e-4, 10 ** (-4 + 2 / 3), 10 ** (-4 + 4 / 3), 1e-2], rel=1e-10)


# --- expansion and hashes ---------------------------------------------------------------------------------------
def test_expansion_order_and_merge():
    spec = parse_spec(tiny(axes={"task": [[16, 2], {"seq_len": 32, "num_kv_pairs": 4, "batch_size": 8}],
                                 "d_model": [16, 32], "lr": [1e-3]}))
    runs = spec.runs()
    assert len(runs) == 2 * 2 * 2
    assert [r.model for r in runs] == ["attention"] * 4 + ["baseconv"] * 4
    assert [(r.config["seq_len"], r.config["d_model"]) for r in runs[:4]] == [(16, 16), (16, 32), (32, 16), (32, 32)]
    assert runs[2].config["batch_size"] == 8 and runs[0].config["batch_size"] == 16
    assert runs[4].config["mixer_kwargs"] == [{"kernel_size": 3}, {"kernel_size": -1}]
    assert len({r.hash for r in runs}) == len(runs)


def test_hash_is_stable_and_canonical():
    cfg = {"mixer": "attention", "d_model": 16, "lr": 0.001, "seq_len": 16}
    h = run_hash("attention", cfg)
    # the documented format: SHA-256 of the sorted, compact JSON of {"model", "config"}, first 16 hex digits;
    # a change here orphans every committed record, so it must be deliberate
    text = '{"config":{"d_model":16,"lr":0.001,"mixer":"attention","seq_len":16},"model":"attention"}'
    assert h == hashlib.sha256(text.encode()).hexdigest()[:16] == "492774c7d5ad3434"
    assert run_hash("attention", dict(reversed(list(cfg.items())))) == h  # key order
    assert run_hash("attention", cfg | {"lr": 1e-3 + 1e-18}) == h  # float noise below 12 digits
    assert run_hash("attention", cfg | {"lr": 0.002}) != h
    assert run_hash("other", cfg) != h
    spec = tiny()
    a = [r.hash for r in parse_spec(spec).runs()]
    spec["name"], spec["description"] = "renamed", "the sweep name is not part of a run's identity"
    assert [r.hash for r in parse_spec(spec).runs()] == a


# --- records -------------------------------------------------------------------------------------------------------
def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    rec = {"hash": "0123456789abcdef", "model": "m", "status": "ok", "config": {}, "metrics": {}}
    real_fsync = os.fsync

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path, rec)
    assert list(tmp_path.iterdir()) == []  # neither the record nor the temporary file
    monkeypatch.setattr(os, "fsync", real_fsync)
    path = write_record(tmp_path, rec)
    assert path.name == "0123456789abcdef.json" and json.loads(path.read_text()) == rec
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    # a temporary file left by a killed writer is invisible to readers and cleaned once its pid is gone
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".tmp-{dead.pid}-x.json").write_text('{"hash": "trunc')
    assert recorded_hashes(tmp_path) == {"0123456789abcdef"} and len(load_results(tmp_path)) == 1
    assert clean_temporaries(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_run_sweep_records_and_table(tmp_path):
    df = run_sweep(tiny(), tmp_path, progress=False)
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    rec = json.loads((tmp_path / f"{df['hash'][0]}.json").read_text())
    for key in ("config", "resolved", "seed", "metrics", "history", "num_parameters", "num_parameters_non_embedding",
                "state_size", "flops_per_token", "status", "library_version", "git_revision", "device",
                "wall_seconds", "spec", "created", "trained_config"):
        assert key in rec, key
    assert rec["spec"] == "tiny" and rec["device"] == "cpu" and rec["metrics"]["steps"] == 16
    assert set(rec["metrics"]) >= {"train_accuracy", "test_accuracy", "train_loss", "test_loss",
                                   "best_test_accuracy", "steps", "stopped_early"}
    assert rec["history"] and rec["history"][-1]["step"] == 16
    att = df[df["model"] == "attention"].iloc[0]
    assert att["state_size"] == 2 * 16 * 16  # one attention layer: its KV cache 2 N d
    assert att["flops_per_token"] == 8 * 16 * 16 + 4 * 16 * 16
    assert att["num_parameters"] - att["num_parameters_non_embedding"] == (32 + 16) * 16  # E and P
    table = pd.read_csv(tmp_path / "table.csv")
    assert sorted(table["hash"]) == sorted(df["hash"])
    # rerun: everything is recorded, nothing is retrained
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}
    again = run_sweep(tiny(), tmp_path, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")} == mtimes
    pd.testing.assert_frame_equal(again, df)


def test_retrain_env_reruns(tmp_path, monkeypatch):
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3]})
    df = run_sweep(spec, tmp_path, progress=False)
    created = {h: json.loads((tmp_path / f"{h}.json").read_text())["wall_seconds"] for h in df["hash"]}
    monkeypatch.setenv("MQAR_RETRAIN", "1")
    df2 = run_sweep(spec, tmp_path, progress=False)
    assert {h: json.loads((tmp_path / f"{h}.json").read_text())["wall_seconds"] for h in df2["hash"]} != created
    assert list(df2["test_accuracy"]) == list(df["test_accuracy"])  # deterministic on the CPU


def test_failed_run_is_recorded_and_retried(tmp_path, monkeypatch):
    import mqar_theory.train as train_mod

    @functools.wraps(train_mod.run_mqar)  # keeps the signature the spec validation reads
    def broken(*a, **k):
        raise RuntimeError("simulated crash\nsecond line")

    monkeypatch.setattr(train_mod, "run_mqar", broken)
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3]})
    df = run_sweep(spec, tmp_path, progress=False)
    assert set(df["status"]) == {"failed"} and set(df["error"]) == {"RuntimeError: simulated crash"}
    assert recorded_hashes(tmp_path) == set()
    monkeypatch.undo()
    assert set(run_sweep(spec, tmp_path, progress=False)["status"]) == {"ok"}


# --- resume after kill -9 -----------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PR_SET_PDEATHSIG")
@pytest.mark.timeout(120)
def test_resume_after_kill_9(tmp_path):
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3, 2e-3, 3e-3]})  # 6 runs
    spec["base"]["epochs"] = 4
    path = write_spec(tmp_path, spec)
    results = tmp_path / "results"
    code = (f"from mqar_theory.sweep import run_sweep; run_sweep({str(path)!r}, {str(results)!r}, workers=2, "
            "device='cpu', progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.time() + 90
        while not list(results.glob("*.json")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the sweep process only
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    first = {p.name: p.read_bytes() for p in results.glob("*.json")}
    assert 1 <= len(first) < 6, "the sweep must be killed after its first record and before its last"
    for text in first.values():
        assert json.loads(text)["status"] == "ok"  # complete records only
    time.sleep(0.5)  # the workers die with the sweep (PR_SET_PDEATHSIG): no orphan keeps training
    alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text()
             .rsplit(")", 1)[1].split()[0]]
    assert alive == []
    df = run_sweep(path, results, progress=False)
    assert len(df) == 6 and df["hash"].is_unique and set(df["status"]) == {"ok"}
    assert sorted(p.name for p in results.glob("*.json")) == sorted(f"{h}.json" for h in df["hash"])
    assert not list(results.glob(".tmp-*"))  # a killed writer's temporary file is cleaned on resume
    for name, text in first.items():  # finished runs were not retrained
        assert (results / name).read_bytes() == text


def test_local_workers_match_in_process(tmp_path):
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3]})
    here = run_sweep(spec, tmp_path / "one", progress=False)
    pool = run_sweep(spec, tmp_path / "two", workers=2, device="cpu", progress=False)
    assert list(pool["hash"]) == list(here["hash"]) and set(pool["status"]) == {"ok"}
    assert list(pool["test_accuracy"]) == list(here["test_accuracy"])  # one thread each: the same numbers
    assert list(pool["threads"]) == [1, 1]


# --- the CLI ------------------------------------------------------------------------------------------------------
def test_cli_bad_spec_exits_2_with_one_line(tmp_path):
    spec = tiny()
    spec["models"]["attention"]["mixer"] = "nosuch"
    path = write_spec(tmp_path, spec)
    out = subprocess.run([sys.executable, "-m", "mqar_theory.cli", "sweep", str(path), "--results",
                          str(tmp_path / "r")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: models.attention.mixer: unknown mixer 'nosuch'")
    assert "Traceback" not in out.stderr and not (tmp_path / "r").exists()


def test_cli_dry_run_and_bad_arguments(tmp_path, capsys):
    path = write_spec(tmp_path, tiny())
    assert cli_main(["sweep", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep tiny: 4 runs, 0 already recorded" in out and "64 optimizer steps" in out
    assert not (tmp_path / "r").exists()
    assert cli_main(["sweep", str(path), "--results", str(tmp_path / "r"), "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: workers=0: must be an integer >= 1"
    assert cli_main(["sweep", str(tmp_path / "none.yaml"), "--results", str(tmp_path / "r")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_runs_a_sweep(tmp_path, capsys):
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3]})
    path = write_spec(tmp_path, spec)
    assert cli_main(["sweep", str(path), "--results", str(tmp_path / "r"), "--device", "cpu"]) == 0
    assert "2 runs recorded" in capsys.readouterr().out
    assert len(list((tmp_path / "r").glob("*.json"))) == 2 and (tmp_path / "r" / "table.csv").is_file()


# --- Ray --------------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(240)
def test_ray_backend_matches_local(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'mqar_theory[sweep]')")
    spec = tiny(axes={"task": [[16, 2]], "d_model": [16], "lr": [1e-3]})
    local = run_sweep(spec, tmp_path / "local", progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(spec, tmp_path / "ray", workers=2, backend="ray", device="cpu", progress=False)
    finally:
        ray.shutdown()
    assert set(remote["status"]) == {"ok"} and list(remote["hash"]) == list(local["hash"])
    assert list(remote["test_accuracy"]) == list(local["test_accuracy"])  # same seed, one thread: same numbers
    assert len(list((tmp_path / "ray").glob("*.json"))) == 2


# --- selection and claims -------------------------------------------------------------------------------------
def _fake(tmp_path, acc: dict, lrs=(1e-3, 3e-3)):
    """Records for models x (N, d) with the given best accuracy; the other lr gets accuracy/2."""
    for (model, N, d), a in acc.items():
        for lr in lrs:
            cfg = {"mixer": model, "seq_len": N, "num_kv_pairs": N // 16, "d_model": d, "lr": lr}
            value = a if lr == lrs[-1] else a / 2
            write_record(tmp_path, {"hash": run_hash(model, cfg), "model": model, "config": cfg, "seed": 0,
                                    "status": "ok", "metrics": {"test_accuracy": value}, "state_size": d * 2})
    return load_results(tmp_path)


def test_select_best_takes_the_max_over_lr(tmp_path):
    df = _fake(tmp_path, {("attention", 64, 64): 0.9, ("baseconv", 64, 64): 0.4})
    failed = {"hash": "f" * 16, "model": "baseconv", "status": "failed", "config": {
        "mixer": "baseconv", "seq_len": 64, "num_kv_pairs": 4, "d_model": 64, "lr": 1e-2}, "metrics": {}}
    write_record(tmp_path, failed)
    df = load_results(tmp_path)
    best = select_best(df)
    assert len(best) == 2 and list(best["candidates"]) == [2, 2]
    assert dict(zip(best["model"], best["test_accuracy"])) == {"attention": 0.9, "baseconv": 0.4}
    assert list(best["lr"]) == [3e-3, 3e-3]
    with pytest.raises(ValueError, match="metric='nope'"):
        select_best(df, metric="nope")


def test_figure2_claims_hold_and_fail_as_the_numbers_say(tmp_path):
    acc = {}
    for N in (32, 64, 128):
        for d in (32, 64, 128):
            acc[("attention", N, d)] = 0.99
            acc[("baseconv", N, d)] = 0.95 if d >= N else 0.3  # needs d >= N
    claims = figure2_claims(_fake(tmp_path / "a", acc)).set_index(["id", "model"])["holds"]
    assert bool(claims[("attention_small_width", "attention")])
    assert bool(claims[("gated_below_attention", "baseconv")]) and bool(claims[("width_grows_with_N", "baseconv")])
    acc2 = dict(acc)
    acc2[("attention", 128, 32)] = 0.5  # attention fails at the smallest width for N=128
    acc2[("baseconv", 64, 32)] = 0.995  # baseconv beats attention at d < N
    for d in (32, 64, 128):
        acc2[("baseconv", 32, d)] = 0.2  # and never solves N=32: needed width does not grow
    c2 = figure2_claims(_fake(tmp_path / "b", acc2)).set_index(["id", "model"])
    assert not c2.loc[("attention_small_width", "attention"), "holds"]
    assert "N=128: 0.500" in c2.loc[("attention_small_width", "attention"), "detail"]
    assert not c2.loc[("gated_below_attention", "baseconv"), "holds"]
    assert "N=64,d=32" in c2.loc[("gated_below_attention", "baseconv"), "detail"]
    assert not c2.loc[("width_grows_with_N", "baseconv"), "holds"]
    one_n = figure2_claims(_fake(tmp_path / "c", {("baseconv", 64, 32): 0.3, ("attention", 64, 32): 0.9}))
    assert one_n.set_index("id").loc["width_grows_with_N", "holds"] is None


def test_below_solved_attention_counts_only_the_cells_attention_solves(tmp_path):
    # attention solves 3 of the 4 cells (0.5 at N=64, d=32); baseconv is below it in 2 of those 3 (a tie at 1.0 is
    # not below), and the unsolved cell, where baseconv is above attention, does not count
    acc = {("attention", 32, 32): 0.995, ("attention", 32, 64): 1.0, ("attention", 64, 32): 0.5,
           ("attention", 64, 64): 0.999, ("baseconv", 32, 32): 0.6, ("baseconv", 32, 64): 1.0,
           ("baseconv", 64, 32): 0.7, ("baseconv", 64, 64): 0.899, ("hyena", 32, 32): 0.2, ("hyena", 32, 64): 0.3,
           ("hyena", 64, 32): 0.2, ("hyena", 64, 64): 0.3}
    df = _fake(tmp_path, acc)
    table = below_solved_attention(select_best(df)).set_index("model")
    assert list(table.index) == ["baseconv", "hyena"]
    assert table.loc["baseconv", ["cells", "below", "solved_cells"]].tolist() == [3, 2, 3]
    assert table.loc["baseconv", "smallest_gap"] == pytest.approx(0.0)
    assert table.loc["hyena", ["cells", "below"]].tolist() == [3, 3]
    assert table.loc["hyena", "smallest_gap"] == pytest.approx(0.699)
    claims = figure2_claims(df).set_index(["id", "model"])
    assert not claims.loc[("gated_below_solved_attention", "baseconv"), "holds"]
    assert claims.loc[("gated_below_solved_attention", "hyena"), "holds"]
    assert "3/3 cells" in claims.loc[("gated_below_solved_attention", "hyena"), "detail"]
    # a stricter target leaves attention's 0.995 and 0.999 cells out: only (32, 64) remains, baseconv ties there
    strict = below_solved_attention(select_best(df), target=1.0).set_index("model")
    assert strict.loc["baseconv", ["cells", "below"]].tolist() == [1, 0]
    # no cell solved: not evaluable, never True
    low = {k: min(v, 0.5) for k, v in acc.items()}
    c = figure2_claims(_fake(tmp_path / "low", low)).set_index(["id", "model"])
    assert c.loc[("gated_below_solved_attention", "hyena"), "holds"] is None
    with pytest.raises(ValueError, match="target=0"):
        below_solved_attention(select_best(df), target=0)
    with pytest.raises(ValueError, match="reference_target=2"):
        figure2_claims(df, reference_target=2)


def test_load_results_of_an_empty_directory(tmp_path):
    df = load_results(tmp_path / "missing")
    assert df.empty and "test_accuracy" in df.columns


# --- the shipped specs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["figure2_smoke", "figure2_cpu", "figure2_paper"])
def test_shipped_specs_are_valid(name):
    from mqar_theory.mixers import MIXERS

    raw = yaml.safe_load((SWEEPS_DIR / f"{name}.yaml").read_text())
    missing = sorted({m["mixer"] if isinstance(m["mixer"], str) else x for m in raw["models"].values()
                      for x in ([m["mixer"]] if isinstance(m["mixer"], str) else m["mixer"])} - set(MIXERS))
    if missing:
        with pytest.raises(SpecError, match="unknown mixer"):
            load_spec(name)
        pytest.skip(f"mixers not registered yet: {missing}")
    spec = load_spec(name)
    assert spec.name == name and spec.runs()


def test_paper_spec_is_the_papers_grid():
    raw = yaml.safe_load((SWEEPS_DIR / "figure2_paper.yaml").read_text())
    base, axes = raw["base"], raw["axes"]
    assert (base["vocab_size"], base["num_train"], base["num_test"], base["epochs"]) == (8192, 100_000, 3_000, 64)
    tasks = [(t["seq_len"], t["num_kv_pairs"], t["batch_size"]) for t in axes["task"]]
    assert tasks == [(64, 4, 512), (128, 8, 512), (256, 16, 256), (512, 64, 128)]
    assert axes["d_model"] == [64, 128, 256, 512] and axes["lr"] == {"logspace": [-4, -2, 4]}
    figure2 = {"attention", "baseconv", "hyena", "h3", "rwkv", "long_conv", "mamba", "sliding_window"}
    assert figure2 <= {m["mixer"] for m in raw["models"].values() if isinstance(m["mixer"], str)}
    assert raw["models"]["based"]["mixer"] == ["baseconv", "based"]  # the official per-layer hybrid
    assert raw["base"]["recipe"] == "official"
    spec = load_spec("figure2_paper")
    head, iclr = spec.model_sets["head"], spec.model_sets["iclr"]
    assert all(spec.models[m]["n_layers"] == 2 for m in head)  # HEAD depth: two layers for every model
    assert spec.models["attention"]["n_layers"] == 2 and all(
        spec.models[m]["n_layers"] == 4 for m in iclr if m != "attention")  # ICLR-era: four for non-attention


def test_cpu_profile_sweeps_three_lrs_and_two_seeds_with_the_official_recipe():
    spec = load_spec("figure2_cpu")
    assert spec.model_set in spec.model_sets and spec.base["recipe"] == "official"
    lrs = spec.axes["lr"]
    assert len(lrs) >= 3 and max(lrs) / min(lrs) >= 10 and len(spec.axes["seed"]) >= 2
    assert {"attention", "baseconv", "hyena", "h3", "rwkv"} <= {spec.models[m]["mixer"] for m in
                                                               spec.model_sets[spec.model_set]}
    smoke = load_spec("figure2_smoke")
    assert smoke.base["recipe"] == "official" and len(smoke.axes["lr"]) >= 2 and len(smoke.axes["seed"]) >= 2


def test_early_stopping_does_not_split_a_cell_over_lr(tmp_path):
    """The record's metric ``epochs`` (epochs run) must not overwrite the config's ``epochs`` (the budget): a run
    stopped early at one lr once made select_best keep one row per lr instead of the best."""
    for lr, acc, done in ((1e-3, 0.3, 8.0), (3e-3, 0.99, 5.0)):
        cfg = {"mixer": "attention", "seq_len": 64, "num_kv_pairs": 4, "d_model": 32, "lr": lr, "epochs": 8}
        write_record(tmp_path, {"hash": run_hash("attention", cfg), "model": "attention", "config": cfg, "seed": 0,
                                "status": "ok", "metrics": {"test_accuracy": acc, "epochs": done}})
    df = load_results(tmp_path)
    assert list(df["epochs"]) == [8, 8] and sorted(df["epochs_trained"]) == [5.0, 8.0]
    best = select_best(df)
    assert len(best) == 1 and best["lr"].iloc[0] == 3e-3 and best["test_accuracy"].iloc[0] == 0.99


def _rows(entries):
    """A load_results-like table from (model, mixer, seq_len, d_model, lr, seed, accuracy) tuples."""
    import pandas as pd

    return pd.DataFrame([dict(model=m, mixer=x, seq_len=n, num_kv_pairs=n // 16, d_model=d, lr=lr, seed=s,
                              test_accuracy=a, status="ok") for m, x, n, d, lr, s, a in entries])


def test_lr_table_threshold_table_and_reference_failures_by_hand():
    from mqar_theory.sweep import lr_table, reference_failures, seed_spread, threshold_table

    rows = []
    for s, accs in ((0, {32: 0.5, 64: 0.95, 128: 0.99}), (1, {32: 0.4, 64: 0.6, 128: 0.92})):
        for d, a in accs.items():
            rows += [("baseconv", "baseconv", 32, d, 1e-3, s, a), ("baseconv", "baseconv", 32, d, 3e-3, s, a - 0.1)]
    for s in (0, 1):
        for d in (32, 64, 128):
            rows += [("attention", "attention", 32, d, 1e-3, s, 1.0 if d < 128 else 0.5),
                     ("attention", "attention", 32, d, 3e-3, s, 0.999 if d < 128 else 0.6 + 0.1 * s)]
    df = _rows(rows)
    by_lr = lr_table(df)
    assert len(by_lr) == 2 * 3 * 2 and set(by_lr["n_seeds"]) == {2}
    one = by_lr[(by_lr["model"] == "baseconv") & (by_lr["d_model"] == 64) & (by_lr["lr"] == 1e-3)].iloc[0]
    assert (one["mean"], one["min"], one["max"]) == pytest.approx((0.775, 0.6, 0.95))
    best = select_best(df)
    t = threshold_table(best).iloc[0]  # seed 0 reaches 0.9 at d=64, seed 1 at d=128; the mean curve at 128
    assert (t["model"], t["threshold"], t["threshold_min"], t["threshold_max"], t["seeds_solved"]) == (
        "baseconv", 128.0, 64.0, 128.0, 2)
    spread = seed_spread(best)
    assert spread.set_index(["model", "d_model"]).loc[("attention", 128), "max"] == pytest.approx(0.7)
    fail = reference_failures(best)
    assert list(zip(fail["seq_len"], fail["d_model"])) == [(32, 128)]
    assert fail["mean"].iloc[0] == pytest.approx(0.65) and fail["best_lr"].iloc[0] == "0.003/0.003"
    with pytest.raises(ValueError, match="reference"):
        reference_failures(best, reference="mamba")
    with pytest.raises(ValueError, match="solved"):
        threshold_table(best, solved=0)


# --- the budget figure of notebook 04 --------------------------------------------------------------------------
def _budget_table():
    import pandas as pd

    rows = [{"model": "attention", "d_model": 32, "seq_len": n, "lr": lr, "seed": s, "epochs": e,
             "steps": 10 * e, "status": "ok", "test_accuracy": 0.5 + 0.1 * s + (0.4 if e == 64 else 0.0)}
            for n in (32, 64) for lr in (1e-3, 3e-3) for s in (0, 1) for e in (16, 64)]
    return pd.DataFrame(rows)


def test_plot_accuracy_by_budget_draws_one_line_per_budget_and_panel_per_n():
    from mqar_theory.sweep.figures import plot_accuracy_by_budget

    fig = plot_accuracy_by_budget(_budget_table(), title="t")
    axes = [ax for ax in fig.axes if ax.get_title().startswith("N = ")]
    assert sorted(ax.get_title() for ax in axes) == ["N = 32", "N = 64"]
    labels = sorted(t.get_text() for t in fig.legends[0].get_texts())
    assert labels == ["16 epochs (<= 160 steps)", "64 epochs (<= 640 steps)"]
    means = sorted(tuple(line.get_ydata()) for line in axes[0].get_lines() if len(line.get_ydata()) == 2)
    # the mean over the two seeds per lr at each budget, and the dashed 0.99 reference line
    assert [tuple(round(float(v), 12) for v in m) for m in means] == [(0.55, 0.55), (0.95, 0.95), (0.99, 0.99)]


def test_plot_accuracy_by_budget_rejects_mixed_tables():
    from mqar_theory.sweep.figures import plot_accuracy_by_budget

    df = _budget_table()
    with pytest.raises(ValueError, match="one d_model"):
        plot_accuracy_by_budget(df.assign(d_model=[32, 64] * (len(df) // 2)))
    with pytest.raises(ValueError, match="no run"):
        plot_accuracy_by_budget(df.assign(status="failed"))


def test_plot_accuracy_by_lr_draws_every_lr_per_model_row_and_wraps_long_names():
    import pandas as pd

    from mqar_theory.sweep.figures import plot_accuracy_by_lr

    rows = [{"model": m, "mixer": "baseconv", "d_model": d, "seq_len": 64, "lr": lr, "seed": s, "status": "ok",
             "test_accuracy": 0.25 + (0.5 if lr == 3e-3 else 0.0) + 0.01 * s}
            for m in ("baseconv", "baseconv_autocorrelation_top4") for d in (16, 32) for lr in (1e-3, 3e-3)
            for s in (0, 1)]
    fig = plot_accuracy_by_lr(pd.DataFrame(rows), title="t")
    labels = sorted(t.get_text() for t in fig.legends[0].get_texts())
    assert labels == ["0.001", "0.003"]
    margin = sorted(t.get_text() for ax in fig.axes for t in ax.texts)
    assert margin == ["baseconv", "baseconv\nautocorrelation\ntop4"]  # the long name wrapped, the short one kept
    ax = fig.axes[0]
    means = sorted(tuple(round(float(v), 12) for v in line.get_ydata()) for line in ax.get_lines()
                   if len(line.get_ydata()) == 2)
    assert means == [(0.255, 0.255), (0.755, 0.755)]  # one line per lr: the mean over the two seeds
    with pytest.raises(ValueError, match="no run"):
        plot_accuracy_by_lr(pd.DataFrame(rows).assign(status="failed"))


def test_model_palette_keeps_the_project_colours_and_gives_the_rest_distinct_ones():
    from mqar_theory.plotting import MIXER_COLORS
    from mqar_theory.sweep.figures import _close, model_palette

    models = ["attention", "baseconv", "auto", "auto_sharp", "auto_top4", "programmatic"]
    mixers = {"attention": "attention", "baseconv": "baseconv", "auto": "baseconv+baseconv_autocorrelation",
              "auto_sharp": "baseconv+baseconv_autocorrelation", "auto_top4": "baseconv+baseconv_autocorrelation",
              "programmatic": "baseconv+baseconv_programmatic"}
    pal = model_palette(models, mixers)
    assert pal["attention"] == MIXER_COLORS["attention"] and pal["auto"] == MIXER_COLORS["baseconv_autocorrelation"]
    colours = list(pal.values())
    # seaborn's colorblind blue (#0173b2) is one hex digit from the attention blue: it must not be handed out
    assert not any(_close(a, b) for i, a in enumerate(colours) for b in colours[i + 1:]), pal
    assert _close("#0173b2", "#0072B2") and not _close("#0072B2", "#D55E00")


def test_check_declared_reports_every_kind_of_disagreement():
    measured = {("a", "m"): True, ("b", "m"): False, ("c", "m"): None, ("d", "m"): True, ("e", "m"): False}
    details = {("b", "m"): "0.5 < 0.9", ("d", "m"): "0.95 >= 0.9"}
    assert check_declared(measured, {("a", "m"): True, ("b", "m"): "too small a budget", ("e", "m"): False}) == []
    problems = check_declared(measured, {("b", "m"): True, ("c", "m"): True, ("d", "m"): "beyond the grid",
                                         ("z", "m"): True}, details)
    assert problems == ["('b', 'm'): does not hold (0.5 < 0.9)", "('c', 'm'): could not be evaluated ()",
                        "('d', 'm'): now holds (0.95 >= 0.9): update the declaration",
                        "('z', 'm'): declared, but nothing measured it"]
    assert check_declared(measured, {("c", "m"): "not here"}) == ["('c', 'm'): could not be evaluated ()"]


def test_load_results_takes_sizes_from_the_current_library_unless_asked_for_the_recorded(tmp_path):
    """A record's size fields are functions of its architecture: a stale stored value is replaced by the current
    one (``sizes="current"``), and kept with ``sizes="recorded"``."""
    import json as _json

    from mqar_theory.sweep.execute import model_sizes
    from mqar_theory.sweep.store import load_results

    model = {"d_model": 8, "mixer": "baseconv", "n_layers": 1, "seq_len": 16, "vocab_size": 16}
    want = model_sizes(model)
    rec = {"hash": "0" * 16, "model": "baseconv", "config": {"d_model": 8}, "trained_config": {"model": model},
           "state_size": 999, "num_parameters": 1, "num_parameters_non_embedding": 1, "flops_per_token": 1.0,
           "status": "ok", "metrics": {"test_accuracy": 0.5}}
    (tmp_path / f"{rec['hash']}.json").write_text(_json.dumps(rec))
    now = load_results(tmp_path)
    assert now.loc[0, "state_size"] == want["state_size"] != 999
    assert now.loc[0, "num_parameters"] == want["num_parameters"]
    assert load_results(tmp_path, sizes="recorded").loc[0, "state_size"] == 999
    with pytest.raises(ValueError, match="sizes"):
        load_results(tmp_path, sizes="stale")
