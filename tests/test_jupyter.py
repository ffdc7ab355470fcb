"""`make kernel` installs the named kernel "mqar_theory" (this environment's python) that `make lab` uses, and
`make lab` passes LAB_FLAGS (e.g. --allow-root, needed as root in a container) to JupyterLab."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _make(*args: str, **kw) -> subprocess.CompletedProcess:
    # -o: treat the install stamp as up to date (never reinstall the environment from a test)
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", f"BIN={BIN}", *args],
                          cwd=ROOT, capture_output=True, text=True, check=True, timeout=300, **kw)


def test_make_lab_installs_the_kernel_first_and_passes_lab_flags():
    plan = _make("-n", "lab", "LAB_FLAGS=--allow-root").stdout.splitlines()
    install = next(i for i, ln in enumerate(plan) if "ipykernel install" in ln)
    lab = next(i for i, ln in enumerate(plan) if "jupyter lab" in ln)
    assert install < lab
    assert "--name mqar_theory" in plan[install] and '"Python (mqar_theory)"' in plan[install]
    assert plan[lab].rstrip().endswith("--allow-root") and "--notebook-dir=notebooks" in plan[lab]


@pytest.mark.timeout(300)
def test_make_kernel_installs_a_kernelspec_jupyter_finds(tmp_path):
    _make("kernel", f"KERNEL_PREFIX=--prefix {tmp_path}")
    spec_file = tmp_path / "share" / "jupyter" / "kernels" / "mqar_theory" / "kernel.json"
    spec = json.loads(spec_file.read_text())
    assert spec["display_name"] == "Python (mqar_theory)"
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()  # this environment's python
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    out = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"], env=env,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    specs = json.loads(out)["kernelspecs"]
    assert Path(specs["mqar_theory"]["resource_dir"]).resolve() == spec_file.parent.resolve()
