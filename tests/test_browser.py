"""A real JupyterLab session, in headless Chromium, leaves the repository as it found it.

`make lab` (the README's command: the project's kernel, the project's Jupyter config, the student's workspace) is
started on 127.0.0.1 with a free port and a token, with its workspace in a temporary folder (``WORKSPACE=``, so a
developer's own workspace/ is never touched). In one session the browser

* opens the explorer notebook (the workspace copy of ``notebooks/07_explore.ipynb``; a small temporary widget
  notebook while it does not exist), sees the kernel "Python (mqar_theory)" in the toolbar, runs all cells, finds no
  error output, moves a slider and sees the widget's output change, and saves;
* writes a wrong answer into exercise 2 of ``00_exercises`` and saves: the answer and the outputs are in the
  workspace copy, and the tracked notebook is unchanged;
* saves an unedited workspace notebook (02): the file differs from its tracked original at most by the
  kernel's full ``language_info`` that the frontend adds (a Python version: no form can be byte-stable under every
  Python), and git's notebook filter (``notebooks.filtered``) gives back the tracked bytes exactly (the frontend's
  save path, beside the server's in tests/test_workspace.py);

and ``git status --porcelain`` and every tracked notebook's bytes are what they were before (so nothing else may
edit the working tree meanwhile, as in CI's fresh clone).
Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium (the dev extra);
skipped with a one-line reason without them. The server is always killed.

The test drives the lab through its own command registry (``--LabApp.expose_app_in_browser``: the commands
behind the menus, e.g. ``notebook:run-all-cells``) and the keyboard on the slider, with explicit waits only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXPLORER = "07_explore.ipynb"
PROBE = "_browser_probe.ipynb"  # not NN_*: never taken for a project notebook
EXERCISES = "00_exercises.ipynb"
UNEDITED = "02_constructions.ipynb"
KERNEL_DISPLAY = "Python (mqar_theory)"
WAIT = 90  # seconds for any one step (the whole test has a hard timeout)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(480)]


def _missing() -> str | None:
    for tool in ("chromium", "chromedriver", "make", "git"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (the dev extra)"
    if not (ROOT / ".git").exists():
        return "needs a git checkout"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=60).stdout


def _probe_notebook() -> str:
    import nbformat

    from mqar_theory.notebooks import KERNELSPEC, saved_form

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE: bool = False\nDEVICE: str = \"cpu\"\nSEED: int = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# browser probe"), params,
        nbformat.v4.new_code_cell("import ipywidgets as w\nfrom IPython.display import display\n"
                                  "n = w.IntSlider(value=3, min=1, max=9, description='n')\n"
                                  "out = w.interactive_output(lambda n: print(f'squares: {n * n}'), {'n': n})\n"
                                  "display(n, out)"),
    ]
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return saved_form(nb)


@pytest.fixture
def lab(tmp_path):
    """`make lab` on a free port with a token, its workspace under tmp_path; yields (URL base, token, log, workspace);
    kills its process group afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    flags = [f"--port={port}", "--ip=127.0.0.1", "--no-browser", f"--ServerApp.token={token}",
             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "lab.log", "w")
    # -o: the environment is installed (never reinstall from a test); `kernel` runs: the kernelspec exists after
    workspace = tmp_path / "workspace"
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", f"BIN={BIN}", "lab",
                             f"WORKSPACE={workspace}", "LAB_FLAGS=" + " ".join(flags)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`make lab` exited with {proc.returncode}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in {WAIT} s:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)  # polling interval of the readiness check
        spec = json.loads(urllib.request.urlopen(f"{base}/api/kernelspecs?token={token}", timeout=10).read())
        assert "mqar_theory" in spec["kernelspecs"], f"no project kernel: {list(spec['kernelspecs'])}"
        yield base, token, tmp_path / "lab.log", workspace
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=20)
        log.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# JavaScript run in the page: the open notebook through the lab's application object
CURRENT = "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
CELLS = CURRENT + "const cells = w && w.content ? w.content.widgets : [];"


def _wait(driver, js: str, what: str):
    """Wait until the JavaScript expression ``js`` (the body of a function) returns a truthy value."""
    from selenium.webdriver.support.ui import WebDriverWait

    check = f"return !!(() => {{ {js} }})();"  # a boolean: lab objects (a kernel) do not serialise
    return WebDriverWait(driver, WAIT, poll_frequency=0.25).until(lambda d: d.execute_script(check), message=what)


# what the widgets show besides the slider itself: the output of the cell that holds the first slider
# (figures, printed text, tables, HTML), as one string
WIDGET_VIEW = (CURRENT + "const s = w.node.querySelector('.widget-slider');"
               "const area = s && s.closest('.jp-OutputArea');"
               "return area ? Array.from(area.querySelectorAll('img, pre, table, svg, .widget-html-content'))"
               ".filter(e => !e.closest('.widget-slider')).map(e => e.outerHTML).join('|') : '';")


def _widget_view(driver) -> str:
    return driver.execute_script(WIDGET_VIEW)


def _tracked_bytes() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}


def _open(browser, base: str, token: str, name: str) -> None:
    """Open ``name`` (a path under the lab's root) and wait for its kernel to be idle."""
    browser.get(f"{base}/lab/tree/{name}?token={token}&reset")
    _wait(browser, CURRENT + f"return w && w.context && w.context.path === {json.dumps(name)} "
                             "&& w.context.isReady && w.sessionContext.session && w.sessionContext.session.kernel;",
          f"{name} did not open with a kernel")
    _wait(browser, CURRENT + "return w.sessionContext.isReady && w.sessionContext.session.kernel.status == 'idle';",
          "the kernel did not start")  # a run-all sent to a kernel still starting is dropped


def _save(browser) -> None:
    browser.execute_script("window.jupyterapp.commands.execute('docmanager:save');")
    _wait(browser, CURRENT + "return w.context.model.dirty === false && !w.context.isDisposed;",
          "the notebook was not saved")
    time.sleep(0.5)  # the save request has returned; let the contents manager finish writing


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_a_lab_session_runs_the_explorer_saves_an_answer_and_leaves_git_status_clean(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from mqar_theory.notebooks import filtered

    base, token, log, workspace = lab
    before_status, before_tracked = _git_status(), _tracked_bytes()
    made_probe = not (workspace / EXPLORER).exists()
    name = PROBE if made_probe else EXPLORER
    if made_probe:
        (workspace / PROBE).write_text(_probe_notebook(), encoding="utf-8")
    path = workspace / name

    # 1. the explorer: kernel, run all, slider, save
    _open(browser, base, token, name)
    _wait(browser, CURRENT + "const k = w.node.querySelector('.jp-Toolbar-kernelName');"
                             f"return k && k.textContent.includes({json.dumps(KERNEL_DISPLAY)});",
          f"the toolbar does not name the kernel {KERNEL_DISPLAY!r}")
    assert browser.execute_script(CURRENT + "return w.sessionContext.session.kernel.name;") == "mqar_theory"
    _wait(browser, CURRENT + "window.jupyterapp.shell.activateById(w.id);"
                             "return window.jupyterapp.commands.isEnabled('notebook:run-all-cells');",
          "the notebook cannot be run")  # the command acts on the notebook tracker's current one
    ran = browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                       "window.jupyterapp.commands.execute('notebook:run-all-cells')"
                                       ".then(r => done(String(r)), e => done('error: ' + e));")
    assert ran == "true", f"notebook:run-all-cells answered {ran}"
    _wait(browser, CELLS + "return cells.length > 0 && cells.every(c => c.model.type !== 'code' || "
                           "(c.model.executionCount !== null && !c.node.classList.contains('jp-mod-running')))"
                           " && w.sessionContext.session.kernel.status === 'idle';",
          "the cells did not all run")
    errors = browser.execute_script(CELLS + "return cells.flatMap(c => c.model.type === 'code' ? "
                                            "c.model.outputs.toJSON() : []).filter(o => o.output_type === 'error')"
                                            ".map(o => o.ename + ': ' + o.evalue);")
    assert errors == [], f"error outputs: {errors}"
    sliders = browser.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .widget-slider")
    assert sliders, "the notebook shows no slider widget"
    before_view = _widget_view(browser)
    assert before_view, "the slider's cell shows no output next to the slider"
    handle = sliders[0].find_element(By.CSS_SELECTOR, ".noUi-handle, .ui-slider-handle, [role='slider']")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)
    _wait(browser, f"const now = (() => {{ {WIDGET_VIEW} }})();"
                   f"return now && now !== {json.dumps(before_view)} && "
                   "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle';",
          "moving the slider did not change the widget's output")
    _save(browser)
    saved = json.loads(path.read_text())
    assert any(c.get("outputs") for c in saved["cells"]), "the workspace copy was saved without its outputs"

    # 2. a wrong answer to exercise 2, run and saved: it stays in the workspace copy
    _open(browser, base, token, EXERCISES)
    wrong = "# ✏️ Exercise 2\ndef my_baseconv(u, W, b1, b2, h):\n    return u @ W  # a wrong answer"
    browser.execute_script(CELLS + "const c = cells.find(c => c.model.sharedModel.getSource()"
                                   ".startsWith('# ✏️ Exercise 2'));"
                                   f"c.model.sharedModel.setSource({json.dumps(wrong)});")
    _save(browser)
    saved = json.loads((workspace / EXERCISES).read_text())
    assert any("".join(c["source"]) == wrong for c in saved["cells"]), "the answer is not in the workspace copy"

    # 3. an unedited notebook opened and saved: the bytes of its tracked original (02, whose stored form once
    # differed from what a save writes; every notebook's server-side save is tested in tests/test_workspace.py)
    for other in [UNEDITED]:
        _open(browser, base, token, other)
        browser.execute_script(CURRENT + "w.context.model.dirty = true;")  # a save of the unchanged document
        _save(browser)
        after = (workspace / other).read_bytes()
        # the frontend adds the kernel's full language_info (its Python version): the one difference it may make,
        # and one the saved form (git's notebook filter) removes, so the file is the tracked one to git
        a, b = json.loads(after), json.loads(before_tracked[other])
        a["metadata"]["language_info"] = b["metadata"]["language_info"]
        assert a == b, f"saving {other} in JupyterLab changed more than its language_info"
        assert filtered(after) == before_tracked[other], f"{other} saved in JupyterLab is not its committed form"
    assert _tracked_bytes() == before_tracked, "a tracked notebook changed during the lab session"
    changed = sorted(set(_git_status().splitlines()) ^ set(before_status.splitlines()))
    assert not changed, f"`git status --porcelain` changed during the lab session (another process editing the " \
                        f"tree at the same time also shows here): {changed}"
