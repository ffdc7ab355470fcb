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
    assert "-e .[notebooks,dev]" in pip and "-c constraints.txt" in pip and "-r requirements.lock" in pip


def test_torch_is_pinned_only_through_constraints():
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    assert "torch==2.13.0" in lines
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.3" in deps
    make = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt -r requirements.lock" in make and "--no-deps -e ." in make


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, sep, version = line.partition("==")
            assert sep and version and " " not in version, f"not an exact pin: {line!r}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_lock_pins_every_dependency_and_the_cpu_torch():
    """requirements.lock (make lock: pip-compile of pyproject's extras notebooks and dev, with constraints.txt)
    pins the whole environment; torch is 2.13.0 without a local label (constraints.txt picks the CPU build) and no
    CUDA wheel is in it."""
    import re

    pins = _lock()
    assert pins["torch"] == "2.13.0"
    assert not [n for n in pins if n.startswith(("nvidia-", "triton", "cuda-"))]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["notebooks"],
              *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in wanted}
    assert names - set(pins) == set(), "pyproject dependencies missing from requirements.lock: run `make lock`"
    assert {"matplotlib", "numpy", "pillow", "seaborn", "fonttools", "selenium", "setuptools"} <= set(pins)
    header = (ROOT / "requirements.lock").read_text()
    assert "--extra=dev --extra=notebooks" in header and "--constraint=constraints.txt" in header
    assert "\nlock:" in (ROOT / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "apt-get install" in ci and "chromium chromium-driver" in ci  # the browser test's browser, when missing
    readme = (ROOT / "README.md").read_text()
    assert "make figures" in readme and "make test" in readme


def _python(code: str) -> float:
    """Wall seconds of ``python -c code`` in a fresh process (it must succeed)."""
    import subprocess
    import sys
    import time

    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return time.perf_counter() - t


def test_import_mqar_theory_is_lazy():
    # the robust check: which modules a bare import loads (torch, sympy and pandas take seconds)
    _python("import sys, mqar_theory\n"
            "heavy = [m for m in ('torch', 'numpy', 'sympy', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(mqar_theory.make_mqar) and 'torch' in sys.modules\n"
            "assert 'sympy' not in sys.modules and 'pandas' not in sys.modules\n"
            "from mqar_theory import bounds, run_mqar, LanguageModel\n"
            "assert mqar_theory.train.train is not None  # the training module; its function is train.train\n")
    # and a generous timing check against a bare interpreter measured in the same test
    bare = min(_python("pass") for _ in range(2))
    lazy = min(_python("import mqar_theory, mqar_theory.cli") for _ in range(2))
    assert lazy < 2 * bare + 1.0, f"import took {lazy:.2f} s against {bare:.2f} s for a bare python"


def test_readme_names_the_console_script_and_the_install_per_machine():
    readme = (ROOT / "README.md").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mqar-theory"] == "mqar_theory.cli:main" and "mqar-theory" in readme
    assert "pip install -c constraints.txt -e '.[notebooks]'" in readme  # CPU
    assert "download.pytorch.org/whl/" in readme  # CUDA: torch from the PyTorch index first
    assert "LAB_FLAGS=--allow-root" in readme


def test_the_repository_cites_the_paper_not_private_notes():
    import re

    pattern = re.compile(r"paper\.md|zoology-code|shared/docs|anchors\.md|environment\.md|\bissue \d")
    skip = ("mqar_theory/bounds/", "mqar_theory/constructions/", "notebooks/02_")
    bad = []
    for path in sorted([*ROOT.glob("mqar_theory/**/*.py"), *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("docs/*.md"),
                        *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"), ROOT / "README.md",
                        ROOT / "Makefile"]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(skip) or rel == "tests/test_project.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                bad.append(f"{rel}:{i}: {line.strip()[:80]}")
    assert not bad, "\n".join(bad)
    assert (ROOT / "docs" / "official-code.md").is_file()
