"""`make kernel` installs the named kernel "mqar_theory" (this environment's python) that `make lab` uses,
`make lab` fills the student's workspace/ and opens JupyterLab there, passes LAB_FLAGS (e.g. --allow-root, needed as
root in a container), and loads the project's Jupyter config, whose contents manager keeps every notebook saved
under notebooks/ in its committed form, without a warning."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mqar_theory import notebooks as notebooks_module
from mqar_theory.notebooks import KERNELSPEC, check_structure, strip_before_save

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
    workspace = next(i for i, ln in enumerate(plan) if "mqar_theory.cli workspace" in ln)
    lab = next(i for i, ln in enumerate(plan) if "jupyter lab" in ln)
    assert install < lab and workspace < lab
    assert "--name mqar_theory" in plan[install] and '"Python (mqar_theory)"' in plan[install]
    assert plan[lab].rstrip().endswith("--allow-root") and "--notebook-dir=\"workspace\"" in plan[lab]


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


def _notebook_with_outputs():
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False\nDEVICE = 'cpu'\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    cell = nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider()", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "IntSlider(value=0)"}, execution_count=3),
                    nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    cell.metadata.update(scrolled=True, execution={"iopub.status.busy": "2026-01-01"}, jupyter={"outputs_hidden": True})
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, cell]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def test_the_pre_save_hook_strips_notebooks_under_notebooks_only(tmp_path):
    nb = _notebook_with_outputs()
    model = {"type": "notebook", "content": nb}

    class Manager:
        root_dir = str(notebooks_module.NOTEBOOK_DIR)

    strip_before_save(model, "scratch.ipynb", Manager())  # nothing is written: the hook only edits the model
    cells = model["content"]["cells"]
    assert cells[2]["outputs"] == [] and cells[2]["execution_count"] is None
    assert cells[2]["metadata"] == {} and cells[1]["metadata"] == {"tags": ["parameters"]}
    assert model["content"]["metadata"] == {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}

    elsewhere = {"type": "notebook", "content": _notebook_with_outputs()}
    Manager.root_dir = str(tmp_path)
    strip_before_save(elsewhere, "scratch.ipynb", Manager())  # not under notebooks/: left alone
    assert elsewhere["content"]["cells"][2]["outputs"]
    strip_before_save({"type": "file", "content": "x"}, "notes.txt", Manager())  # other files: untouched


def test_a_jupyter_save_through_the_project_config_writes_the_committed_form(tmp_path, monkeypatch):
    """The contents manager the project's config names (.jupyter/jupyter_server_config.py), built without a warning:
    saving a notebook full of outputs under notebooks/ writes exactly the committed form, which check_structure
    accepts; elsewhere (the student's workspace/) the notebook is saved as it is."""
    import asyncio
    import warnings

    from traitlets.config.loader import PyFileConfigLoader

    from mqar_theory.lab import StrippingContentsManager

    config = PyFileConfigLoader("jupyter_server_config.py", path=str(ROOT / ".jupyter")).load_config()
    assert config.ServerApp.contents_manager_class == "mqar_theory.lab.StrippingContentsManager"
    monkeypatch.setattr(notebooks_module, "NOTEBOOK_DIR", tmp_path / "notebooks")
    (tmp_path / "notebooks").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # `make lab` once printed "Overriding existing pre_save_hook" at every start
        manager = StrippingContentsManager(root_dir=str(tmp_path), config=config)

    def save(nb, path):
        asyncio.run(manager.save({"type": "notebook", "format": "json", "content": nb}, path))

    save(_notebook_with_outputs(), "notebooks/01_x.ipynb")
    saved = tmp_path / "notebooks" / "01_x.ipynb"
    assert check_structure(saved) == []
    assert '"outputs": []' in saved.read_text() and "hello" not in saved.read_text()
    (tmp_path / "workspace").mkdir()
    save(_notebook_with_outputs(), "workspace/01_x.ipynb")
    assert "hello" in (tmp_path / "workspace" / "01_x.ipynb").read_text()  # the student's copy: as it is


def test_make_lab_loads_the_project_jupyter_config():
    plan = _make("-n", "lab").stdout
    assert f'JUPYTER_CONFIG_PATH="{ROOT / ".jupyter"}' in plan
    assert (ROOT / ".jupyter" / "jupyter_server_config.py").is_file()
