"""Progress bars that tell the truth: the one place that opens and closes the project's tqdm bars.

tqdm's notebook bar turns red when it is closed short of its total (it takes that for an error), and a bar
opened with ``leave=False`` vanishes when it closes. Training that stops early because it reached its target
accuracy is a success, so ``close_bar(bar, reached=...)`` first shrinks the total to the steps done (the bar
reads e.g. ``300/300``, full and green, never ``1000/1000``: the count stays true) and appends the reason to
the postfix. A run that failed (``failed=...``) keeps its short count, shows the reason and is marked red
even when its count is full. Bars are left on screen (``leave=True``), so each model trained in a notebook
keeps its own finished bar. Papermill runs get no bar at all (``run_notebook`` passes ``PROGRESS=False``).
"""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["progress_bar", "close_bar"]


def progress_bar(total: int, desc: str, enabled: bool = True, **kwargs):
    """A tqdm bar (a widget in a notebook, text in a terminal) over ``total`` steps, left visible when closed.
    ``enabled=False`` gives a disabled bar whose methods do nothing."""
    if not (isinstance(total, int) and not isinstance(total, bool) and total >= 0):
        raise ValueError(f"total={total!r}: must be an integer >= 0")
    kwargs.setdefault("leave", True)
    return tqdm(total=total, desc=desc, disable=not enabled, **kwargs)


def _widget(bar):
    """The notebook bar's ``FloatProgress`` widget, or None for a text bar."""
    container = getattr(bar, "container", None)
    children = getattr(container, "children", None)
    return children[1] if children and len(children) == 3 else None


def close_bar(bar, *, reached: str | None = None, failed: str | None = None) -> None:
    """Close ``bar``. ``reached``: the run stopped early because it reached its goal (the reason, e.g.
    ``"reached target 0.99"``): the total becomes the count done, so the bar ends full (green in a notebook).
    ``failed``: the reason the run stopped short (e.g. ``"diverged at step 12"``): the bar ends red.
    At most one of them may be given."""
    if reached and failed:
        raise ValueError(f"reached={reached!r}, failed={failed!r}: give at most one of them")
    if bar.disable:
        bar.close()
        return
    reason = reached or failed
    if reason:
        postfix = bar.postfix or ""
        bar.set_postfix_str(f"{postfix}, {reason}" if postfix else reason, refresh=False)
    widget = _widget(bar)
    if reached and bar.n > 0 and (bar.total is None or bar.n < bar.total):
        bar.total = bar.n
        if widget is not None:
            widget.max = bar.n
    if failed:
        if widget is not None:
            bar.disp(bar_style="danger", check_delay=False)  # stays red: close() never overrides danger
        elif hasattr(bar, "colour"):
            bar.colour = "red"
    elif reached and widget is None and hasattr(bar, "colour"):
        bar.colour = "green"
    bar.refresh()
    bar.close()
