"""The project's Jupyter server configuration, loaded by `make lab` (JUPYTER_CONFIG_PATH=.jupyter).

`make lab` opens JupyterLab on workspace/, the student's own copy (git-ignored; mqar_theory.workspace): saved there,
notebooks keep their answers and outputs. A notebook saved under the tracked notebooks/ -- by hand or by autosave --
is written in its committed form instead: no outputs, no execution counts, no widget state (the contents manager
mqar_theory.lab.StrippingContentsManager runs mqar_theory.notebooks.strip_before_save before every save). Figures
and results of an interactive run go under build/interactive/ (mqar_theory.plotting.publish_dir).
"""

import sys
from pathlib import Path

try:
    import mqar_theory.lab  # noqa: F401
except ImportError:  # a Jupyter outside the project's environment: import the package from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

c = get_config()  # noqa: F821 (provided by the config loader)
c.ServerApp.contents_manager_class = "mqar_theory.lab.StrippingContentsManager"
