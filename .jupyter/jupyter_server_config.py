"""The project's Jupyter server configuration, loaded by `make lab` (JUPYTER_CONFIG_PATH=.jupyter).

Every notebook saved under notebooks/ -- by hand or by autosave -- is written in its committed form: no outputs,
no execution counts, no widget state (mqar_theory.notebooks.strip_before_save). A JupyterLab session therefore
leaves `git status` clean; the open document keeps its outputs until it is reloaded. Figures and results of an
interactive run go under build/interactive/ (mqar_theory.plotting.publish_dir).
"""

import sys
from pathlib import Path

try:
    from mqar_theory.notebooks import strip_before_save
except ImportError:  # a Jupyter outside the project's environment: import the package from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mqar_theory.notebooks import strip_before_save

c = get_config()  # noqa: F821 (provided by the config loader)
c.ContentsManager.pre_save_hook = strip_before_save
