"""The committed run records under ``results/``: each names a clean commit of this history, and the cheapest
record of each profile retrains to the same accuracies, bitwise, at one thread.

The records are what notebooks 04-06 draw and assert on, so these tests check the evidence itself, not the
machinery (``test_provenance.py`` tests that on records it makes in a tmp folder). They need the git history
(a clone, not a tarball); without a repository they are skipped with that reason.
"""

from __future__ import annotations

import json

import pytest

from mqar_theory.plotting import REPO_ROOT
from mqar_theory.sweep import audit

RESULTS = REPO_ROOT / "results"
PROFILES = sorted(p.name for p in RESULTS.iterdir() if p.is_dir()) if RESULTS.is_dir() else []


needs_git = pytest.mark.skipif(not audit._is_repository(REPO_ROOT),  # the check check_records makes
                               reason="no git repository: record revisions unverifiable")


def _cheapest(profile: str):
    """The record of ``results/<profile>/`` that trained fastest (chosen from the records, not named here)."""
    paths = audit.record_files(RESULTS / profile)
    assert paths, f"results/{profile}/ holds no record"
    return min(paths, key=lambda p: (json.loads(p.read_text())["wall_seconds"], p.name))


def test_the_committed_profiles_are_the_shipped_specs():
    """Every folder of results/ is the record store of a spec under sweeps/ (no orphaned records)."""
    assert PROFILES, "results/ holds no profile"
    missing = [p for p in PROFILES if not (REPO_ROOT / "sweeps" / f"{p}.yaml").is_file()]
    assert not missing, f"results/ folders without a spec: {missing}"


@needs_git
def test_every_committed_record_names_a_clean_commit_of_this_history():
    rows = audit.check_records(RESULTS)
    assert len(rows) >= 100, f"only {len(rows)} records under results/"
    bad = [r for r in rows if not r["ok"]]
    assert not bad, audit.format_check(rows)
    assert {r["revision"] for r in rows} == {"clean"}


@needs_git
@pytest.mark.parametrize("profile", PROFILES)
def test_the_cheapest_record_of_each_profile_reruns_bitwise(profile):
    path = _cheapest(profile)
    result = audit.rerun_record(path, threads=1)
    assert result["rerun_status"] == "ok", audit.format_rerun(result)
    assert result["reproduced"] and not result["mismatches"], audit.format_rerun(result)
    assert result["record_device"] == "cpu" and result["record_threads"] == 1, audit.format_rerun(result)
