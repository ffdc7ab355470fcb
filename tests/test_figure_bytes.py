"""The committed figures are reproducible: notebook 01's figures, drawn again in a fresh process under the installed
(locked, requirements.lock) versions, are the drawings in figures/, compared as images within
``plotting.FIGURE_TOLERANCE`` (bytes cannot be promised across CPUs: antialiasing differs in the last bits), and
``savefig`` then leaves the committed files untouched.

The figures are drawn by the notebook's own cells (every code cell before its training cell, which draws
nothing), with the default (non-smoke) parameters and ``FIG_DIR`` pointed at a temporary folder: the test
follows the notebook, not a copy of it, and never writes into figures/. A failure here means the environment
is not the locked one (``make`` installs ``requirements.lock``) or the committed figures are stale
(``make figures`` regenerates them)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_mqar_task.ipynb"
FIGURES = ["mqar_example", "query_gap_distribution"]


def _drawing_cells() -> list[str]:
    """The code cells of notebook 01 up to (not including) the first one that trains a model."""
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    stop = next(i for i, s in enumerate(sources) if "run_mqar(" in s)  # the first call (the import has no "(")
    assert "parameters" in cells[0]["metadata"].get("tags", []), "the first code cell is the parameters cell"
    return sources[:stop]


#: the packages whose versions decide a figure's pixels
DRAWING_PACKAGES = ("matplotlib", "numpy", "pillow", "seaborn", "pandas", "fonttools", "kiwisolver", "contourpy",
                    "torch")


def _drift() -> list[str]:
    """Drawing packages whose installed version is not the one in requirements.lock."""
    from importlib.metadata import PackageNotFoundError, version

    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, v = line.partition("==")
            pins[name.lower()] = v.strip()
    out = []
    for name in DRAWING_PACKAGES:
        try:
            have = version(name).split("+")[0]
        except PackageNotFoundError:
            have = None
        if have != pins.get(name):
            out.append(f"{name} {have} (locked {pins.get(name)})")
    return out


def test_the_drawing_cells_are_found():
    cells = _drawing_cells()
    assert all(any(f'"{name}"' in s for s in cells) for name in FIGURES), "every figure is saved before training"


@pytest.mark.timeout(180)
def test_notebook_01_figures_match_the_committed_drawings(tmp_path):
    cells = _drawing_cells()
    # the parameters cell, then the overrides papermill would inject, then the drawing cells
    script = "\n\n".join([cells[0], f"FIG_DIR = {str(tmp_path)!r}\nPROGRESS = False\n",
                          "def display(*args, **kwargs):\n    pass\n", *cells[1:]])
    script = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith(("%", "!")))
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("MQAR_FIG_DIR", None)
    out = subprocess.run([sys.executable, "-c", script], cwd=NOTEBOOK.parent, env=env, capture_output=True,
                         text=True, timeout=170)
    assert out.returncode == 0, out.stderr[-3000:]
    from mqar_theory.plotting import FIGURE_TOLERANCE, image_difference

    differ = []
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{name}.{ext}").is_file(), f"the notebook did not write {name}.{ext}"
        new, committed = tmp_path / f"{name}.png", ROOT / "figures" / f"{name}.png"
        rms = image_difference(committed, new)
        if rms > FIGURE_TOLERANCE:
            differ.append(f"{committed.relative_to(ROOT)} (RMS {rms:.3g} > {FIGURE_TOLERANCE} levels)")
    drift = _drift()
    assert not differ, ("figures differ from a fresh drawing: " + ", ".join(differ) + "; " + (
        f"the environment is not the locked one ({', '.join(drift)}): `make` installs requirements.lock" if drift
        else "under the locked versions, so the committed figures are stale: regenerate them with `make figures`"))
