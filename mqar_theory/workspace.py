"""The student's own copy: ``workspace/``, where notebooks are opened, edited, run and handed in.

The tracked notebooks under ``notebooks/`` are what ``make figures`` and ``make test`` execute: stub exercises, no
outputs. A student works in ``workspace/`` (git-ignored), which ``make lab`` fills with a copy of every notebook
that is not there yet and opens JupyterLab on. There answers, right or wrong, and outputs are saved as they are
(no pre-save stripping outside ``notebooks/``), so an executed notebook can be handed in, or exported to HTML
(``export_html``); nothing there is read by the build, and nothing there shows in ``git status``.

``prepare_workspace(reset=True)`` puts fresh copies back; the replaced ones are kept under
``workspace/.previous/`` (one generation), so a reset by mistake loses nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .notebooks import ROOT, notebook_paths, render_html, select_notebooks

__all__ = ["WORKSPACE_DIR", "prepare_workspace", "export_html"]

#: the student's folder (git-ignored)
WORKSPACE_DIR = ROOT / "workspace"


def prepare_workspace(names: list[str] | None = None, reset: bool = False,
                      directory: str | Path = WORKSPACE_DIR) -> dict[str, str]:
    """Copy the tracked notebooks (all, or those whose name contains one of ``names``) into ``directory``.

    A copy that is already there is kept (``"kept"``: the student's work) unless ``reset``, which moves it to
    ``directory/.previous/`` and copies the tracked one again (``"reset"``). Returns ``{file name: action}``
    with actions ``"copied"``, ``"kept"``, ``"reset"``."""
    if not isinstance(reset, bool):
        raise ValueError(f"reset={reset!r}: must be a bool")
    paths = select_notebooks(names)  # ValueError naming a name that matches no notebook
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    actions = {}
    for src in paths:
        dst = out / src.name
        if not dst.exists():
            actions[src.name] = "copied"
        elif not reset:
            actions[src.name] = "kept"
            continue
        else:
            (out / ".previous").mkdir(exist_ok=True)
            shutil.move(dst, out / ".previous" / src.name)
            actions[src.name] = "reset"
        shutil.copyfile(src, dst)
    return actions


def export_html(names: list[str] | None = None, directory: str | Path = WORKSPACE_DIR) -> list[Path]:
    """Render the workspace's notebooks (all, or those matching ``names``), with the outputs they were saved with,
    as static HTML pages under ``directory/html/``; returns their paths. ``ValueError`` when one is missing."""
    directory = Path(directory)
    have = notebook_paths(directory)
    if names:
        tracked = [p.name for p in select_notebooks(names)]
        missing = [n for n in tracked if not (directory / n).is_file()]
        if missing:
            raise ValueError(f"names: {missing} not in {directory} (`mqar-theory workspace` copies them there)")
        have = [directory / n for n in tracked]
    if not have:
        raise ValueError(f"directory={str(directory)!r}: holds no notebook (`mqar-theory workspace` fills it)")
    return [render_html(p, directory / "html") for p in have]
