"""Project set-up: the environment files agree with each other."""

from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_parses_and_matches_the_pip_install():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-e .[notebooks,dev]" in pip and "-c constraints.txt" in pip


def test_torch_is_pinned_only_through_constraints():
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    assert "torch==2.13.0" in lines
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.3" in deps
    make = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt -e '.[notebooks,dev]'" in make


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make figures" in readme and "make test" in readme
