"""Every notebook: committed clean (one parameters cell, no outputs) and executable by papermill in smoke mode."""

from pathlib import Path

import pytest

from mqar_theory.notebooks import NotebookFailed, check_structure, notebook_paths, run_notebook

NOTEBOOKS = notebook_paths()
FIGURES = {
    "01_mqar_task": ["mqar_example", "query_gap_distribution"],
    "02_constructions": ["parameter_efficiency", "construction_margins"],
    "03_circuits": ["circuit_compilation"],
    "05_input_dependence": ["figure2_input_dependent"],
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
