"""Run the project's notebooks with papermill, and check and strip them.

``run_notebooks()`` is what ``make figures`` calls (through the CLI): every ``notebooks/NN_*.ipynb``
is executed with its default parameters (the CPU profile), executed copies go to ``build/notebooks/``
(git-ignored), figures to ``figures/``. A failing notebook raises ``NotebookFailed`` naming the notebook
and the cell.

A smoke run (``SMOKE=True``) without an explicit ``FIG_DIR`` writes its figures to ``build/smoke/figures`` and its
executed copies to ``build/smoke/notebooks``: smoke output never replaces the committed figures.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NotebookFailed", "notebook_paths", "select_notebooks", "run_notebook", "run_notebooks", "check_structure",
           "strip_outputs"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BUILD_DIR = ROOT / "build" / "notebooks"
SMOKE_BUILD_DIR = ROOT / "build" / "smoke" / "notebooks"


#: environment variables that size the thread pools of torch / numpy in the kernel process
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextmanager
def _kernel_threads(threads: int | None):
    """Set the thread variables the kernel inherits (None: leave them), restoring them afterwards."""
    if threads is None:
        yield
        return
    before = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names the notebook, the cell and the error."""


def notebook_paths(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(Path(directory).glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path, out_path=None, parameters: dict | None = None, log_output: bool = False,
                 threads: int | None = None) -> Path:
    """Execute one notebook with papermill in its own folder; return the executed copy's path.

    With ``SMOKE=True`` and no ``FIG_DIR`` among ``parameters``, ``FIG_DIR`` is set to ``build/smoke/figures``
    (``plotting.figure_dir``), whatever the notebook's own default, and the executed copy goes to
    ``build/smoke/notebooks`` unless ``out_path`` is given.

    ``threads`` sets OMP/MKL/OpenBLAS threads of the kernel. A smoke run defaults to 1 (unless OMP_NUM_THREADS is
    already set): its models are tiny, and on a busy 2-core machine a second torch thread spin-waits for a core
    (measured at a load of 5-7 on 2 cores: notebook 01 in smoke mode took 270 s with torch's default threads, 32 s
    with one).
    """
    import papermill as pm

    from .plotting import figure_dir

    path = Path(path).resolve()
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such notebook")
    params = {"PROGRESS": False, **(parameters or {})}
    smoke = bool(params.get("SMOKE"))
    if smoke and params.get("FIG_DIR") in (None, ""):
        params["FIG_DIR"] = str(figure_dir(None, smoke=True))
    out = Path(out_path) if out_path is not None else (SMOKE_BUILD_DIR if smoke else BUILD_DIR) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    if threads is None and smoke and "OMP_NUM_THREADS" not in os.environ:
        threads = 1
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        raise ValueError(f"threads={threads!r}: must be None or an integer >= 1")
    try:
        with _kernel_threads(threads):
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


def select_notebooks(names: list[str] | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """Every notebook, or those whose file name contains one of ``names``; ``ValueError`` naming any name that
    matches no notebook (checked before anything runs)."""
    paths = notebook_paths(directory)
    if not names:
        return paths
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names={names!r}: must be a list of non-empty strings")
    unknown = [n for n in names if not any(n in p.name for p in paths)]
    if unknown:
        raise ValueError(f"names={unknown!r}: no notebook matches; the notebooks are {[p.name for p in paths]}")
    return [p for p in paths if any(n in p.name for n in names)]


def run_notebooks(names: list[str] | None = None, parameters: dict | None = None, log_output: bool = False,
                  paths: list[Path] | None = None):
    """Execute every notebook (or those whose name contains one of ``names``, or ``paths``); stop at the first
    failure. Arguments are validated before the first notebook runs."""
    paths = select_notebooks(names) if paths is None else list(paths)
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
