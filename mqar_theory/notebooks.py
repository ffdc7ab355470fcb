"""Run the project's notebooks with papermill, and check and strip them.

``run_notebooks()`` is what ``make figures`` calls (through the CLI): every ``notebooks/NN_*.ipynb``
is executed with its default parameters (the CPU profile), executed copies go to ``build/notebooks/``
(git-ignored), figures to ``figures/``, and each executed copy is also rendered as static HTML under
``build/html/`` for readers who do not run them. A failing notebook raises ``NotebookFailed`` naming the notebook
and the cell.

A smoke run (``SMOKE=True``) without an explicit ``FIG_DIR`` writes its figures to ``build/smoke/figures`` and its
executed copies to ``build/smoke/notebooks``: smoke output never replaces the committed figures.

A notebook is committed in its *saved form* (``clean_notebook``): no outputs, no execution counts, no volatile
metadata (widget state, papermill's, the kernel's full ``language_info``), the project's kernelspec, written
exactly as Jupyter writes it (``nbformat.write``). ``strip_before_save`` is the Jupyter server's pre-save hook
(loaded by ``make lab`` from ``.jupyter/jupyter_server_config.py``): it puts every notebook under ``notebooks/`` in
that form before JupyterLab writes it, so a lab session -- opening, running, autosaving -- changes no tracked byte.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["NotebookFailed", "notebook_paths", "select_notebooks", "run_notebook", "run_notebooks", "check_structure",
           "strip_outputs", "clean_notebook", "saved_form", "strip_before_save", "render_html", "KERNELSPEC",
           "parameter_names", "check_parameters", "check_injected_parameters", "filtered"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
BUILD_DIR = ROOT / "build" / "notebooks"
SMOKE_BUILD_DIR = ROOT / "build" / "smoke" / "notebooks"
HTML_DIR = ROOT / "build" / "html"
SMOKE_HTML_DIR = ROOT / "build" / "smoke" / "html"

#: the kernel every notebook declares (``make kernel`` installs it: this environment's python)
KERNELSPEC = {"display_name": "Python (mqar_theory)", "language": "python", "name": "mqar_theory"}
#: notebook-level metadata that a session or a run adds and that is never committed
VOLATILE_METADATA = ("widgets", "papermill", "toc", "varInspector", "vscode", "execution", "celltoolbar")
#: cell-level metadata that a session or a run adds and that is never committed
VOLATILE_CELL_METADATA = ("execution", "papermill", "scrolled", "collapsed", "trusted", "ExecuteTime")


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


def _assigned_names(source: str) -> list[str]:
    """Names a cell's source assigns at top level (``X = 1`` and ``X: int = 1``), in order."""
    import ast

    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def parameter_names(path) -> list[str]:
    """The parameters a notebook declares: the names its ``parameters`` cell assigns (in order)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"path={str(path)!r}: has {len(cells)} cells tagged 'parameters' (want exactly one)")
    return _assigned_names("".join(cells[0].get("source", "")))


def check_parameters(path, parameters: dict | None) -> None:
    """``ValueError`` naming the unknown ones and the known ones when ``parameters`` has a name the notebook's
    parameters cell does not declare (papermill itself only warns, then runs with the defaults)."""
    known = parameter_names(path)
    unknown = sorted(set(parameters or {}) - set(known))
    if unknown:
        raise ValueError(f"parameters: {', '.join(unknown)} unknown to {Path(path).name}; its parameters are "
                         f"{', '.join(known)}")


#: the first line of the cell papermill injects after the parameters cell (its Python translator's comment)
INJECTED_HEADER = "# Parameters"


def check_injected_parameters(history=None) -> None:
    """The same check from inside a running notebook, for a plain ``papermill -p NAME VALUE``: called in the cell
    after the parameters cell, it reads the kernel's input history (IPython's ``In``; or ``history``, a list of
    cell sources, oldest first). When the previous cell is papermill's injected one (it starts with
    ``# Parameters``), every name it assigns must be assigned by the cell before it (the notebook's parameters
    cell), else ``ValueError`` naming the unknown and the known parameters. In an interactive session there is no
    injected cell, and outside IPython no history: nothing is checked."""
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        history = shell.user_ns.get("In", []) if shell is not None else []
    cells = [c for c in history if isinstance(c, str) and c.strip()]
    if len(cells) < 3 or not cells[-2].lstrip().startswith(INJECTED_HEADER):
        return
    injected, known = _assigned_names(cells[-2]), _assigned_names(cells[-3])
    unknown = sorted(set(injected) - set(known))
    if unknown:
        raise ValueError(f"parameters: {', '.join(unknown)} unknown to this notebook; its parameters are "
                         f"{', '.join(known)}")


def run_notebook(path, out_path=None, parameters: dict | None = None, log_output: bool = False,
                 threads: int | None = None, publish: bool | None = None) -> Path:
    """Execute one notebook with papermill in its own folder; return the executed copy's path.

    With ``SMOKE=True`` and no ``FIG_DIR`` among ``parameters``, ``FIG_DIR`` is set to ``build/smoke/figures``
    (``plotting.figure_dir``), whatever the notebook's own default, and the executed copy goes to
    ``build/smoke/notebooks`` unless ``out_path`` is given.

    ``threads`` sets OMP/MKL/OpenBLAS threads of the kernel. A smoke run defaults to 1 (unless OMP_NUM_THREADS is
    already set): its models are tiny, and on a busy 2-core machine a second torch thread spin-waits for a core
    (measured at a load of 5-7 on 2 cores: notebook 01 in smoke mode took 270 s with torch's default threads, 32 s
    with one).

    ``publish`` (default: not a smoke run) sets ``$MQAR_PUBLISH=1`` in the kernel, so the notebook writes the
    tracked outputs (``figures/``, ``docs/results.md``; ``plotting.publish_dir``); an interactive session,
    which does not have it, writes them under ``build/interactive/``.
    """
    import papermill as pm

    from .plotting import PUBLISH_ENV, figure_dir

    path = Path(path).resolve()
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such notebook")
    check_parameters(path, parameters)
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
    if publish is None:
        publish = not smoke
    if not isinstance(publish, bool):
        raise ValueError(f"publish={publish!r}: must be None (publish unless smoke) or a bool")
    before = os.environ.get(PUBLISH_ENV)
    os.environ[PUBLISH_ENV] = "1" if publish else "0"
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
    finally:
        if before is None:
            os.environ.pop(PUBLISH_ENV, None)
        else:
            os.environ[PUBLISH_ENV] = before
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
                  paths: list[Path] | None = None, html_dir=None, html: bool = True):
    """Execute every notebook (or those whose name contains one of ``names``, or ``paths``); stop at the first
    failure. Arguments are validated before the first notebook runs. With ``html`` (default) each executed copy
    is also rendered as static HTML into ``html_dir`` (default ``build/html``, ``build/smoke/html`` in smoke
    mode)."""
    paths = select_notebooks(names) if paths is None else list(paths)
    if html_dir is None:
        html_dir = SMOKE_HTML_DIR if (parameters or {}).get("SMOKE") else HTML_DIR
    for p in paths:  # every notebook's parameters are checked before the first one runs
        check_parameters(p, parameters)
    done = []
    for p in paths:
        print(f"running {p.name} ...", flush=True)
        start = time.perf_counter()
        out = run_notebook(p, parameters=parameters, log_output=log_output)
        print(f"  {p.name}: {time.perf_counter() - start:.0f} s", flush=True)
        if html and out.is_file():  # papermill always writes it; a stand-in executor (tests) may not
            render_html(out, html_dir)
        done.append(out)
    return done


def render_html(path, out_dir=HTML_DIR) -> Path:
    """Render an (executed) notebook as a self-contained static HTML page ``<out_dir>/<stem>.html`` (nbconvert's
    lab template: figures embedded, no kernel needed to read it); return its path."""
    import nbconvert
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such notebook")
    body, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(path, as_version=4))
    out = Path(out_dir) / f"{path.stem}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def check_structure(path) -> list[str]:
    """Problems with a notebook as committed: want exactly one ``parameters`` cell (defining SMOKE, DEVICE and
    SEED), no outputs, the project's kernelspec (``KERNELSPEC``), and the file in its saved form
    (``saved_form``: what JupyterLab's save, through ``strip_before_save``, would write), so that a lab session
    leaves it unchanged."""
    text = Path(path).read_text(encoding="utf-8")
    nb = json.loads(text)
    problems = []
    spec = nb.get("metadata", {}).get("kernelspec")
    if spec != KERNELSPEC:
        problems.append(f"kernelspec is {spec!r} (want {KERNELSPEC!r})")
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
    if not problems and saved_form(nb) != text:
        problems.append("not in its saved form (volatile metadata, or not written as nbformat writes it): "
                        "run `mqar-theory strip-notebooks`")
    return problems


def clean_notebook(nb: dict) -> dict:
    """Put a notebook (a dict or ``NotebookNode``, changed in place and returned) in its committed form: code
    cells without outputs and execution counts, no volatile cell or notebook metadata (``VOLATILE_*``), a
    ``language_info`` reduced to its ``name``. Cell tags (``parameters``), ids and the kernelspec are kept."""
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
        meta = c.get("metadata", {})
        for k in VOLATILE_CELL_METADATA:
            meta.pop(k, None)
        jupyter = meta.get("jupyter")
        if isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                meta.pop("jupyter")
        if not meta.get("tags", True):
            meta.pop("tags")
    meta = nb.get("metadata", {})
    for k in VOLATILE_METADATA:
        meta.pop(k, None)
    info = meta.get("language_info")
    if isinstance(info, dict) and "name" in info:
        meta["language_info"] = {"name": info["name"]}
    return nb


def saved_form(nb: dict) -> str:
    """The text of ``nb`` cleaned (``clean_notebook``, on a copy) and written as a Jupyter server writes a save.

    A save from JupyterLab reaches the server with every source as one string, and nbformat writes it (v4's JSON
    writer: sources split into lines, transient metadata dropped, sorted keys, one-space indent, non-ASCII kept),
    so a source stored as ``["text\\n", ""]`` comes back as ``["text\\n"]``. The same steps are done here in plain
    ``json`` (nbformat's import takes seconds, too slow for git's clean filter); tests/test_workspace.py saves every
    tracked notebook through jupyter_server's contents managers and finds these bytes."""
    import copy

    nb = clean_notebook(copy.deepcopy(dict(nb)))
    meta = nb.get("metadata", {})
    for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
        meta.pop(key, None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("trusted", None)
        if "source" in cell:
            cell["source"] = _lines(cell["source"])
        for attachment in cell.get("attachments", {}).values():
            for key in [k for k in attachment if _split_mime(k)]:
                attachment[key] = _lines(attachment[key])
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def _lines(text) -> list[str]:
    """A source (a string, or a list of pieces) as nbformat stores it: joined, then split after each newline."""
    return ("".join(text) if isinstance(text, list) else str(text)).splitlines(True)


def _split_mime(key: str) -> bool:
    """Mime types whose strings nbformat stores as lists of lines."""
    return key.startswith("text/") or key in ("application/javascript", "image/svg+xml")


def strip_before_save(model: dict, path: str, contents_manager, **kwargs) -> None:
    """Jupyter server pre-save hook (``FileContentsManager.pre_save_hook``): a notebook saved under the
    repository's ``notebooks/`` is put in its committed form (``clean_notebook``) before it is written, so
    outputs, execution counts and widget state never reach a tracked file, whatever happens in JupyterLab (the
    open document keeps its outputs until it is reloaded). Other files, and notebooks elsewhere, are left as
    they are."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    root = Path(getattr(contents_manager, "root_dir", "") or ".")
    target = (root / path.lstrip("/")).resolve()
    if not target.is_relative_to(NOTEBOOK_DIR.resolve()):
        return
    clean_notebook(model["content"])


def filtered(data: bytes) -> bytes:
    """git's clean filter (``mqar-theory notebook-filter``, which ``make`` registers in the clone as filter
    ``notebook``, applied to ``*.ipynb`` by ``.gitattributes``): a notebook's bytes in, its saved form out, so a
    notebook saved with outputs from any Jupyter (without the project's pre-save hook) is stored, and compared by
    ``git status``, without them. Bytes that are not a notebook pass through unchanged: a filter never loses
    content."""
    try:
        nb = json.loads(data.decode("utf-8"))
        if not isinstance(nb, dict) or "cells" not in nb:
            return data
        return saved_form(nb).encode("utf-8")
    except Exception:  # not JSON, not a notebook nbformat can read: leave it to git as it is
        return data


def strip_outputs(path) -> bool:
    """Write a notebook in its saved form (``saved_form``: no outputs, execution counts or volatile metadata;
    cell tags are kept). Returns True if it changed."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    new = saved_form(json.loads(text))
    if new != text:
        p.write_text(new, encoding="utf-8")
        return True
    return False
