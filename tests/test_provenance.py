"""Record provenance: revisions checked against the git history, records retrained and compared bitwise."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from mqar_theory.cli import main
from mqar_theory.plotting import REPO_ROOT
from mqar_theory.sweep import audit as pv
from mqar_theory.sweep import run_sweep
from mqar_theory.sweep.store import load_records, write_record

TINY = {
    "name": "tiny_provenance",
    "base": {"vocab_size": 32, "num_train": 128, "num_test": 32, "epochs": 2, "batch_size": 16, "init_std": 0.1,
             "eval_batch_size": 64, "eval_every": 4},
    "models": {"attention": {"mixer": "attention", "n_layers": 1}},
    "axes": {"task": [[16, 2]], "d_model": [16], "lr": [3.0e-3]},
}  # 16 optimizer steps, 4 evaluations: about a second


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """(results dir, record) of one run made by the sweep machinery, in a tmp folder."""
    out = tmp_path_factory.mktemp("results") / "tiny"
    run_sweep(TINY, out, progress=False, device="cpu")
    (record,) = load_records(out)
    assert record["status"] == "ok" and len(record["history"]) == 4
    return out, record


def _git(repo, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A throwaway git repository (plumbing only): HEAD -> c1, and a commit c2 that HEAD does not descend from."""
    path = tmp_path_factory.mktemp("repo")
    _git(path, "init", "-q")
    tree = _git(path, "hash-object", "-t", "tree", "-w", "--stdin")  # the empty tree (stdin is empty)
    c1 = _git(path, "commit-tree", tree, "-m", "one")
    _git(path, "update-ref", "HEAD", c1)
    c2 = _git(path, "commit-tree", tree, "-m", "two")
    return path, c1, c2


def test_a_fresh_record_reruns_bitwise(fresh):
    out, record = fresh
    (path,) = pv.record_files(out)
    result = pv.rerun_record(path, threads=1)
    assert result["reproduced"], result["mismatches"]
    assert result["mismatches"] == [] and result["rerun_status"] == "ok" and result["path"] == str(path)
    assert "metrics.test_accuracy" in result["compared"] and "history[3].test_accuracy" in result["compared"]
    assert result["resolved_differs"] == [] and result["loss_mismatches"] == []
    assert "reproduced bitwise" in pv.format_rerun(result)


def test_a_tampered_record_is_not_reproduced(fresh):
    _, record = fresh
    tampered = json.loads(json.dumps(record))
    acc = tampered["metrics"]["test_accuracy"]
    tampered["metrics"]["test_accuracy"] = acc - 2.0**-40 if acc > 0.5 else acc + 2.0**-40  # below any tolerance
    tampered["history"][1]["test_accuracy"] += 1.0 / 32
    tampered["metrics"]["test_loss"] = -1.0  # reported apart, not a reason on its own
    result = pv.rerun_record(tampered)
    assert not result["reproduced"]
    fields = [m["field"] for m in result["mismatches"]]
    assert fields == ["metrics.test_accuracy", "history[1].test_accuracy"], fields
    assert result["mismatches"][0]["recorded"] == tampered["metrics"]["test_accuracy"]
    assert result["mismatches"][0]["rerun"] == acc
    assert [m["field"] for m in result["loss_mismatches"]] == ["metrics.test_loss"]
    assert "NOT reproduced" in pv.format_rerun(result) and "test_loss differs" in pv.format_rerun(result)
    only_loss = json.loads(json.dumps(record))
    only_loss["metrics"]["train_loss"] += 1e-7
    result = pv.rerun_record(only_loss)
    assert result["reproduced"] and [m["field"] for m in result["loss_mismatches"]] == ["metrics.train_loss"]


def test_bitwise_means_bitwise():
    assert pv._same(0.5, 0.5) and pv._same(float("nan"), float("nan"))
    assert not pv._same(0.0, -0.0) and not pv._same(0.1 + 0.2, 0.3) and not pv._same(1, 1.0)


def test_revision_status(repo, tmp_path):
    path, c1, c2 = repo
    assert pv.revision_status(c1, path) == "clean"
    assert pv.revision_status(c1[:12], path) == "clean"
    assert pv.revision_status(c2, path) == "not_in_history"
    assert pv.revision_status("abc-dirty", path) == "dirty"
    assert pv.revision_status(c1 + "-dirty", path) == "dirty"
    assert pv.revision_status("0" * 40, path) == "missing"
    assert pv.revision_status("unknown", path) == "unknown" and pv.revision_status(None, path) == "unknown"
    assert pv.revision_status("--help", path) == "invalid" and pv.revision_status("HEAD", path) == "invalid"
    assert pv.revision_status(c1, tmp_path) == "unverifiable"  # not a repository


def test_check_records_reports_dirty_missing_and_bad_hashes(fresh, repo, tmp_path):
    _, record = fresh
    path, c1, _ = repo
    root = tmp_path / "results"
    for sub, rev in [("clean", c1), ("dirty", "abc-dirty"), ("missing", "f" * 40)]:
        write_record(root / sub, record | {"git_revision": rev})
    bad_hash = record | {"git_revision": c1, "config": record["config"] | {"lr": 0.5}}
    write_record(root / "edited", bad_hash)
    (root / "clean" / ".tmp-1-x.json").write_text("{")  # a half-written temporary is not a record
    rows = {r["path"].split("/")[1]: r for r in pv.check_records(root, repo=path)}
    assert set(rows) == {"clean", "dirty", "missing", "edited"}
    assert rows["clean"]["ok"] and rows["clean"]["revision"] == "clean" and rows["clean"]["hash_ok"]
    assert rows["dirty"]["revision"] == "dirty" and not rows["dirty"]["ok"]
    assert rows["missing"]["revision"] == "missing" and not rows["missing"]["ok"]
    assert rows["edited"]["revision"] == "clean" and not rows["edited"]["hash_ok"] and not rows["edited"]["ok"]
    text = pv.format_check(list(rows.values()))
    assert "1 of 4 records name a clean commit" in text and "abc-dirty (dirty)" in text and "HASH MISMATCH" in text


def test_check_records_bad_root(tmp_path):
    with pytest.raises(ValueError, match="results_root"):
        pv.check_records(tmp_path / "nope")
    with pytest.raises(ValueError, match="path_or_record"):
        pv.rerun_record(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="threads"):
        pv.rerun_record({"model": "m", "config": {}, "hash": "0"}, threads=0)
    with pytest.raises(ValueError, match="'config'"):
        pv.rerun_record({"model": "m", "hash": "0"})


def test_check_records_command(fresh, tmp_path, capsys):
    _, record = fresh
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    root = tmp_path / "results"
    write_record(root / "tiny", record | {"git_revision": head.stdout.strip()})
    assert main(["check-records", "--results", str(root), "--rerun", record["hash"]]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 records name a clean commit" in out and "reproduced bitwise" in out
    write_record(root / "tiny", record | {"git_revision": "abc-dirty"})
    assert main(["check-records", "--results", str(root)]) == 1
    assert "(dirty)" in capsys.readouterr().out
    assert main(["check-records", "--results", str(root), "--rerun", "0123456789abcdef"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --rerun") and len(err.splitlines()) == 1
    assert main(["check-records", "--results", str(tmp_path / "nope")]) == 2
