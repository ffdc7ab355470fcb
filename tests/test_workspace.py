"""A student's work never touches the build: the workspace copy (kept, reset, exported), saving any tracked notebook
through a Jupyter server leaves its bytes unchanged (the project's server and a plain one, rooted at notebooks/ or at
the repository), git's notebook filter keeps a save with outputs out of `git status`, and a misspelt parameter is an
error naming the known ones (through run_notebook, the CLI's -p, and a plain papermill -p)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mqar_theory import notebooks as nbs
from mqar_theory.cli import main
from mqar_theory.workspace import export_html, prepare_workspace

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = nbs.notebook_paths()


def _answer(path: Path, marker: str) -> None:
    """Edit a notebook as a student would: a new line in its last code cell, and an output."""
    nb = json.loads(path.read_text())
    cell = [c for c in nb["cells"] if c["cell_type"] == "code"][-1]
    cell["source"] = "".join(cell["source"]) + f"\n{marker}"
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"{marker}\n"]}]
    cell["execution_count"] = 7
    path.write_text(json.dumps(nb, indent=1))


def test_the_workspace_keeps_a_students_copy_and_resets_it_on_request(tmp_path):
    ws = tmp_path / "ws"
    assert set(prepare_workspace(directory=ws).values()) == {"copied"}
    assert sorted(p.name for p in ws.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    mine = ws / "00_exercises.ipynb"
    _answer(mine, "# my answer")
    assert prepare_workspace(directory=ws)["00_exercises.ipynb"] == "kept"
    assert "# my answer" in mine.read_text()  # make lab again: the answer is still there
    assert prepare_workspace(["00"], reset=True, directory=ws) == {"00_exercises.ipynb": "reset"}
    assert mine.read_bytes() == (ROOT / "notebooks" / "00_exercises.ipynb").read_bytes()
    assert "# my answer" in (ws / ".previous" / "00_exercises.ipynb").read_text()  # nothing lost by a reset
    with pytest.raises(ValueError, match="no notebook matches"):
        prepare_workspace(["no_such"], directory=ws)
    with pytest.raises(ValueError, match="reset"):
        prepare_workspace(reset="yes", directory=ws)


def test_an_executed_workspace_notebook_exports_to_html_with_its_outputs(tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(["00"], directory=ws)
    _answer(ws / "00_exercises.ipynb", "print('handed in')")
    (page,) = export_html(["00"], directory=ws)
    assert page == ws / "html" / "00_exercises.html" and "handed in" in page.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="not in"):
        export_html(["01"], directory=ws)
    with pytest.raises(ValueError, match="holds no notebook"):
        export_html(directory=tmp_path / "empty")


def _contents_manager(kind: str, root: Path):
    """The contents manager of `make lab` (the project's config) or of a plain `jupyter lab` / a user's own."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    from mqar_theory.lab import StrippingContentsManager

    cls = StrippingContentsManager if kind == "project" else AsyncLargeFileManager
    return cls(root_dir=str(root))


@pytest.mark.parametrize("kind,root", [("project", "notebooks"), ("project", "."), ("plain", "notebooks"),
                                       ("plain", ".")])
def test_saving_every_tracked_notebook_through_a_jupyter_server_changes_no_byte(kind, root, tmp_path):
    """What a save from JupyterLab does on the server: the model is read (sources joined into strings), sent back,
    and written by nbformat. Run on copies of the tracked notebooks laid out as in the repository."""
    import asyncio

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "notebooks", repo / "notebooks")
    base = repo / root
    manager = _contents_manager(kind, base)
    for path in NOTEBOOKS:
        api = str((repo / "notebooks" / path.name).relative_to(base))

        async def roundtrip(api=api):
            model = await manager.get(api, content=True, type="notebook")
            await manager.save({"type": "notebook", "format": "json", "content": model["content"]}, api)

        asyncio.run(roundtrip())
        assert (repo / "notebooks" / path.name).read_bytes() == path.read_bytes(), f"saving changed {path.name}"


def test_the_saved_form_is_what_a_server_save_writes():
    """A source list with a trailing "" (which nbformat keeps as written, and a server save drops) is normalised."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False\nDEVICE = 'cpu'\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params]
    nb.metadata["kernelspec"] = dict(nbs.KERNELSPEC)
    raw = json.loads(nbs.saved_form(nb))
    raw["cells"][0]["source"] = ["# t\n", ""]
    text = nbs.saved_form(raw)
    assert json.loads(text)["cells"][0]["source"] == ["# t\n"]
    again = nbformat.writes(nbformat.reads(text, as_version=4))
    assert (again if again.endswith("\n") else again + "\n") == text


def test_the_notebook_filter_strips_outputs_and_passes_anything_else_through():
    tracked = NOTEBOOKS[0].read_bytes()
    assert nbs.filtered(tracked) == tracked
    nb = json.loads(tracked)
    nb["cells"][-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}] if nb["cells"][-1][
        "cell_type"] == "code" else []
    nb["metadata"]["widgets"] = {"state": {}}
    assert nbs.filtered(json.dumps(nb).encode()) == tracked
    for junk in (b"", b"not json", b"[1, 2]", b'{"no": "cells"}'):
        assert nbs.filtered(junk) == junk


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.timeout(240)
def test_a_save_with_outputs_from_a_plain_jupyter_is_no_change_to_git(tmp_path):
    """In a repository laid out like this one, with the filter registered as `make` registers it: a notebook saved
    with outputs (no pre-save hook) is no change to git (no diff; staging it stages nothing); an edited answer in a
    tracked notebook is one, and its diff shows the edit, not the outputs."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo)
    shutil.copy(NOTEBOOKS[1], repo / "notebooks")
    _git(repo, "init", "-q")
    _git(repo, "config", "filter.notebook.clean", f"{sys.executable} -m mqar_theory.cli notebook-filter")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    path = repo / "notebooks" / NOTEBOOKS[1].name
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
            c["execution_count"] = 1
    path.write_text(json.dumps(nb, indent=2))  # another writer's layout, too
    # git lists a file whose size changed until its index entry is refreshed; the content is compared through
    # the filter: no difference, and staging it stages nothing
    assert _git(repo, "diff") == "" and _git(repo, "diff", "--stat") == ""
    _git(repo, "add", "-A")
    assert _git(repo, "status", "--porcelain") == "" and _git(repo, "diff", "--cached", "HEAD") == ""
    _answer(path, "# an edit")
    assert _git(repo, "status", "--porcelain").split() == ["M", f"notebooks/{NOTEBOOKS[1].name}"]
    assert "# an edit" in _git(repo, "diff") and "stream" not in _git(repo, "diff")


def test_make_registers_the_notebook_filter():
    plan = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "git-filter"], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60).stdout
    assert "filter.notebook.clean" in plan and "notebook-filter" in plan
    assert "filter=notebook" in (ROOT / ".gitattributes").read_text()


def test_an_unknown_parameter_is_an_error_naming_the_known_ones(tmp_path, capsys):
    first = NOTEBOOKS[1]
    assert nbs.parameter_names(first)[:3] == ["SMOKE", "DEVICE", "SEED"]
    with pytest.raises(ValueError, match=r"SMOKEE unknown to .*its parameters are SMOKE, DEVICE, SEED"):
        nbs.run_notebook(first, tmp_path / "x.ipynb", parameters={"SMOKEE": True})
    assert main(["notebooks", first.stem[:2], "-p", "SMOKEE", "True"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "SMOKEE" in err and "SMOKE, DEVICE, SEED" in err


def _probe(tmp_path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE: bool = False\nX: int = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from mqar_theory.notebooks import check_injected_parameters\ncheck_injected_parameters()\nprint(X)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_in_notebook_check_rejects_an_injected_unknown_parameter():
    params = "SMOKE: bool = False\nX: int = 1"
    nbs.check_injected_parameters(["", params, "# Parameters\nX = 2\n", "check"])  # known: fine
    nbs.check_injected_parameters(["", params, "check"])  # interactive: no injected cell, nothing to check
    with pytest.raises(ValueError, match="SMOKEE unknown to this notebook; its parameters are SMOKE, X"):
        nbs.check_injected_parameters(["", params, "# Parameters\nSMOKEE = True\n", "check"])


@pytest.mark.timeout(240)
def test_plain_papermill_fails_on_a_misspelt_parameter(tmp_path):
    path = _probe(tmp_path)
    cmd = [sys.executable, "-m", "papermill", str(path), str(tmp_path / "out.ipynb"), "-k", "python3",
           "--no-progress-bar"]
    ok = subprocess.run(cmd + ["-p", "X", "5"], capture_output=True, text=True, timeout=200)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = subprocess.run(cmd + ["-p", "SMOKEE", "True"], capture_output=True, text=True, timeout=200)
    assert bad.returncode != 0 and "SMOKEE unknown to this notebook" in bad.stderr + bad.stdout
