"""Run the project's notebooks with papermill, and check and strip them.

``run_notebooks()`` is what ``make figures`` calls (through the CLI): every ``notebooks/NN_*.ipynb``
is executed with its default parameters (the CPU profile), executed copies go to ``build/notebooks/``
(git-ignored), figures to ``figures/``. A failing notebook raises ``NotebookFailed`` naming the notebook
and the cell.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["NotebookFailed", "notebook_paths", "run_notebook", "run_notebooks", "check_structure", "strip_outputs"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BUILD_DIR = ROOT / "build" / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the notebook, the cell and the error."""


def notebook_paths(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(Path(directory).glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path, out_path=None, parameters: dict | None = None, log_output: bool = False) -> Path:
    """Execute one notebook with papermill in its own folder; return the executed copy's path."""
    import papermill as pm

    path = Path(path).resolve()
    out = Path(out_path) if out_path is not None else BUILD_DIR / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"PROGRESS": False, **(parameters or {})}
    try:
        pm.execute_notebook(
            str(path), str(out), parameters=params, kernel_name="python3", cwd=str(path.parent),
            progress_bar=False, log_output=log_output,
        )
    except pm.PapermillExecutionError as e:
        raise NotebookFailed(
            f"{path.name} failed in cell {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}"
            f"\n  executed copy with the traceback: {out}"
        ) from None
    return out


def run_notebooks(names: list[str] | None = None, parameters: dict | None = None, log_output: bool = False):
    """Execute every notebook (or those whose name contains one of ``names``); stop at the first failure."""
    paths = notebook_paths()
    if names:
        paths = [p for p in paths if any(n in p.name for n in names)]
        if not paths:
            raise ValueError(f"names={names!r}: no notebook in {NOTEBOOK_DIR} matches")
    done = []
    for p in paths:
        print(f"running {p.name} ...", flush=True)
        done.append(run_notebook(p, parameters=parameters, log_output=log_output))
    return done


def check_structure(path) -> list[str]:
    """Problems with a notebook as committed: want exactly one ``parameters`` cell and no outputs."""
    nb = json.loads(Path(path).read_text())
    problems = []
    cells = nb.get("cells", [])
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{len(tagged)} cells tagged 'parameters' (want exactly one)")
    for i, c in enumerate(cells):
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            problems.append(f"cell {i} has committed outputs or an execution count")
    for name in ("SMOKE", "DEVICE", "SEED"):
        if tagged and name not in "".join(tagged[0].get("source", "")):
            problems.append(f"the parameters cell does not define {name}")
    return problems


def strip_outputs(path) -> bool:
    """Remove outputs and execution counts in place (cell tags are kept). Returns True if it changed."""
    p = Path(path)
    text = p.read_text()
    nb = json.loads(text)
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
        c.get("metadata", {}).pop("execution", None)
        c.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("papermill", None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        p.write_text(new)
        return True
    return False
