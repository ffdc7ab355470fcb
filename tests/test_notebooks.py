"""Every notebook: committed clean (one parameters cell, no outputs, the project's kernel, in the form Jupyter
saves) and executable by papermill in smoke mode; make figures' runs publish and render static HTML."""

from pathlib import Path

import pytest

from mqar_theory.notebooks import (
    KERNELSPEC,
    NotebookFailed,
    check_structure,
    notebook_paths,
    render_html,
    run_notebook,
    run_notebooks,
    saved_form,
    strip_outputs,
)
from mqar_theory.plotting import PUBLISH_ENV

NOTEBOOKS = notebook_paths()
FIGURES = {
    "01_mqar_task": ["mqar_example", "query_gap_distribution"],
    "02_constructions": ["parameter_efficiency", "construction_margins"],
    "03_circuits": ["circuit_compilation"],
    "05_input_dependence": ["figure2_input_dependent", "figure2_input_dependent_by_lr"],
    "06_hybrids": ["hybrids_mqar"],
    "04_figure2": ["figure2_mqar_dmodel", "figure2_mqar_state_size"],
}


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    assert check_structure(path) == []


@pytest.mark.notebooks
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    fig_dir = tmp_path / "figures"
    run_notebook(path, tmp_path / path.name, parameters=dict(SMOKE=True, DEVICE="cpu", FIG_DIR=str(fig_dir)))
    for name in FIGURES.get(path.stem, []):
        for ext in ("png", "pdf"):
            f = fig_dir / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f"{path.name} did not write {f.name}"
    if path.stem not in FIGURES:
        assert list(fig_dir.glob("*.png")), f"{path.name} wrote no figure"
    page = render_html(tmp_path / path.name, tmp_path / "html")  # the static page make figures also writes
    html = page.read_text(encoding="utf-8")
    assert page.name == f"{path.stem}.html" and "<html" in html and "data:image/png;base64," in html


def test_a_failing_notebook_names_the_notebook_and_cell(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x == 2, 'claim'")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(NotebookFailed, match=r"99_broken.ipynb failed in cell \d+.*AssertionError: claim"):
        run_notebook(src, tmp_path / "out.ipynb")


def test_structure_check_catches_outputs_and_missing_tags(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nb.cells = [cell]
    p = Path(tmp_path) / "00_x.ipynb"
    nbformat.write(nb, p)
    problems = check_structure(p)
    assert any("parameters" in m for m in problems) and any("outputs" in m for m in problems)


def _env_probe(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False\nOUT = ''\nFIG_DIR = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os, pathlib\npathlib.Path(OUT).write_text(repr(os.environ.get('MQAR_PUBLISH')))\n"
        "print('published' if os.environ.get('MQAR_PUBLISH') == '1' else 'not published')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "98_env.ipynb"
    nbformat.write(nb, src)
    return src


@pytest.mark.timeout(300)
def test_only_a_full_run_publishes_and_every_run_renders_html(tmp_path, monkeypatch):
    monkeypatch.delenv(PUBLISH_ENV, raising=False)
    src, seen = _env_probe(tmp_path), tmp_path / "seen.txt"
    run_notebook(src, tmp_path / "a.ipynb", parameters={"OUT": str(seen), "FIG_DIR": str(tmp_path)})
    assert seen.read_text() == "'1'"  # make figures: the kernel writes the tracked outputs
    (done,) = run_notebooks(paths=[src], parameters={"OUT": str(seen), "SMOKE": True, "FIG_DIR": str(tmp_path)},
                            html_dir=tmp_path / "html")
    assert seen.read_text() == "'0'"  # a smoke run never publishes
    assert "not published" in (tmp_path / "html" / "98_env.html").read_text(encoding="utf-8")
    assert done.parent.name == "notebooks" and "smoke" in done.parts
    assert PUBLISH_ENV not in __import__("os").environ  # restored in this process
    with pytest.raises(ValueError, match="publish"):
        run_notebook(src, tmp_path / "b.ipynb", publish="yes")


def test_structure_check_wants_the_project_kernel_and_the_saved_form(tmp_path):
    import json

    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False\nDEVICE = 'cpu'\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = tmp_path / "01_k.ipynb"
    p.write_text(saved_form(nb))
    assert any("kernelspec" in m for m in check_structure(p))
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    p.write_text(saved_form(nb))
    assert check_structure(p) == []
    unsorted = json.dumps(json.loads(saved_form(nb)), indent=2) + "\n"  # not as Jupyter writes it
    p.write_text(unsorted)
    assert any("saved form" in m for m in check_structure(p))
    assert strip_outputs(p) is True and check_structure(p) == [] and strip_outputs(p) is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_first_cell_links_the_paper_and_states_both_run_times(path):
    import json
    import re

    first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown" and "https://arxiv.org/abs/2312.04927" in text
    pattern = r"\*\*Run time\*\*.*about [\d.]+ (s|min) with the defaults.*about [\d.]+ (s|min) with `SMOKE = True`"
    assert re.search(pattern, text, flags=re.S), "the first cell states the full and the smoke run time"
