"""The contents manager of the project's Jupyter server (``.jupyter/jupyter_server_config.py``, loaded by
``make lab``): jupyter_server's default one with ``notebooks.strip_before_save`` registered as a pre-save hook
(``register_pre_save_hook``, the hook list; setting the ``pre_save_hook`` trait instead makes jupyter_server warn
"Overriding existing pre_save_hook" at every start). A notebook saved under the tracked ``notebooks/`` is written in
its committed form; one in ``workspace/`` (the student's copy) is written as it is, outputs included."""

from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from .notebooks import strip_before_save

__all__ = ["StrippingContentsManager"]


class StrippingContentsManager(AsyncLargeFileManager):
    """``AsyncLargeFileManager`` (jupyter_server's default) that strips notebooks saved under ``notebooks/``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_pre_save_hook(strip_before_save)
