"""The one figure helper: ``savefig(fig, name)`` writes ``<name>.png`` and ``<name>.pdf``.

File contents are deterministic for the same figure: PNG and PDF metadata that would change from
run to run (software version, creation date) are dropped, and SVG hashes salted. ``set_style`` also pins the
fonts to the DejaVu files that ship inside matplotlib: seaborn's style asks for Arial, then DejaVu Sans, and a
machine's own fonts (an Arial, or a system DejaVu Sans of another version, picked or not depending on the order
of the font cache) changed glyphs by a few pixels between machines. With the bundled files only, the same
matplotlib version renders the same bytes everywhere (tests/test_plotting.py renders a figure in two processes
with different thread counts, and with the system fonts listed first).

Across machines bytes cannot be promised: floating-point results differ in the last bits between CPUs, and a
curve's antialiasing moves a few dozen pixels by one intensity level. So a drawing is compared with the committed
one as an image, the way matplotlib's own test suite does (``matplotlib.testing.compare.compare_images``: the RMS
of the per-pixel difference, in 0-255 levels), and ``savefig`` leaves a committed pair (PNG and PDF) untouched when
the new PNG is within ``FIGURE_TOLERANCE`` of it; ``make figures`` then leaves ``git status`` clean on any machine.
Decision: the PNG decides for the pair. The PDF holds the same drawing as vector text, whose coordinates drift in
the last printed digit the same way; a change that moves what a reader sees moves the PNG beyond the tolerance and
replaces both files. Colours per mixer are fixed so every figure of the project speaks the same language.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["savefig", "MIXER_COLORS", "set_style", "pin_bundled_fonts", "default_fig_dir", "figure_dir", "REPO_ROOT",
           "publishing", "publish_dir", "PUBLISH_ENV", "INTERACTIVE_DIR",
           "SMOKE_DIR", "FIGURE_TOLERANCE", "image_difference", "same_drawing"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: where smoke runs write figures and results unless told otherwise (git-ignored): never figures/ or results/
SMOKE_DIR = REPO_ROOT / "build" / "smoke"

MIXER_COLORS = {
    "attention": "#0072B2",
    "baseconv": "#D55E00",
    "baseconv_input_dependent": "#009E73",
    "attention_h27": "#56B4E9",
    "attention_softmax": "#0072B2",
    "baseconv_data_independent": "#D55E00",
    "baseconv_sorting": "#E69F00",
    "hybrid": "#CC79A7",
    "baseconv_programmatic": "#009E73",
    "baseconv+baseconv_programmatic": "#009E73",
    "baseconv_autocorrelation": "#882255",
    "baseconv+baseconv_autocorrelation": "#882255",
    "hybrid_attention": "#56B4E9",
    "sparse_programmatic": "#117733",
    "sparse_learned": "#DDCC77",
    "sparse_random": "#888888",
    "hyena": "#009E73",
    "h3": "#E69F00",
    "long_conv": "#999999",
    "rwkv": "#AA4499",
    "based": "#44AA99",
    "mamba": "#332288",
    "sliding_window": "#882255",
}


#: RMS difference (0-255 levels, ``compare_images``' measure) up to which two renderings are the same drawing.
#: Measured on a 708x525 figure: the drift seen between CPUs (39 pixels of one curve off by one level) is RMS 0.004,
#: 2000 pixels off by two levels 0.04; a visible change is 1 or more (a line 1.5 -> 1.6 pt wide: 1.0; one
#: character of a title: 3.1; a marker moved by 1/60 of the axis: 4.4). 0.3 leaves room for denser drift and is
#: below every visible change (tests/test_plotting.py pins both sides).
FIGURE_TOLERANCE = 0.3

#: set to "1" by ``mqar-theory notebooks`` (``make figures``) in the kernels it starts: only then do notebooks
#: write the tracked outputs (``figures/``, ``docs/results.md``); an interactive session writes under build/.
PUBLISH_ENV = "MQAR_PUBLISH"
#: where an interactive (JupyterLab) run writes what ``make figures`` would publish (git-ignored)
INTERACTIVE_DIR = REPO_ROOT / "build" / "interactive"


def publishing() -> bool:
    """True inside a run started by ``make figures`` (``$MQAR_PUBLISH == "1"``)."""
    return os.environ.get(PUBLISH_ENV) == "1"


def publish_dir(smoke: bool = False) -> Path:
    """The root under which a notebook writes tracked outputs (``figures/``, ``docs/results.md``):
    ``SMOKE_DIR`` for a smoke run; the repository root under ``make figures`` (``publishing()``);
    else ``INTERACTIVE_DIR``, so a JupyterLab session never rewrites a tracked file."""
    if smoke:
        return SMOKE_DIR
    return REPO_ROOT if publishing() else INTERACTIVE_DIR


def default_fig_dir() -> Path:
    """``$MQAR_FIG_DIR`` if set, else ``publish_dir()/figures`` (``figures/`` only under ``make figures``)."""
    env = os.environ.get("MQAR_FIG_DIR")
    return Path(env) if env else publish_dir() / "figures"


def figure_dir(fig_dir: str | os.PathLike | None = None, smoke: bool = False) -> Path:
    """Where a notebook writes its figures: ``fig_dir`` when given; else ``SMOKE_DIR/figures`` for a smoke
    run (so smoke output never replaces the committed figures); else ``default_fig_dir()``."""
    if fig_dir not in (None, ""):
        return Path(fig_dir)
    return SMOKE_DIR / "figures" if smoke else default_fig_dir()


def set_style() -> None:
    """The project's figure style (seaborn "paper", colorblind palette) with fonts pinned to matplotlib's own."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="colorblind")
    mpl.rcParams["svg.hashsalt"] = "mqar"
    mpl.rcParams["pdf.fonttype"] = 42
    pin_bundled_fonts()


def pin_bundled_fonts() -> None:
    """Use only the fonts inside matplotlib's package (DejaVu Sans, and DejaVu for mathtext), never the system's."""
    import matplotlib as mpl
    from matplotlib import font_manager as fm

    bundled = (Path(mpl.get_data_path()) / "fonts" / "ttf").resolve()
    manager = fm.fontManager
    keep = [f for f in manager.ttflist if Path(f.fname).resolve().parent == bundled]
    if keep and len(keep) != len(manager.ttflist):
        manager.ttflist = keep
        manager._findfont_cached.cache_clear()  # look-ups cached before the pin would still name system files
    mpl.rcParams["font.family"] = ["sans-serif"]
    mpl.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    mpl.rcParams["mathtext.fontset"] = "dejavusans"


def image_difference(expected: str | os.PathLike, actual: str | os.PathLike) -> float:
    """RMS difference of two PNG files in 0-255 levels (``compare_images``' measure); ``inf`` when their sizes
    differ. Nothing is written (``compare_images`` would put a diff image beside ``actual``)."""
    import numpy as np
    from matplotlib.testing.compare import calculate_rms
    from PIL import Image

    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(np.int16) for p in (expected, actual))
    return float("inf") if a.shape != b.shape else float(calculate_rms(a, b))


def same_drawing(expected: str | os.PathLike, actual: str | os.PathLike, tol: float = FIGURE_TOLERANCE) -> bool:
    """True when the PNG ``actual`` is within ``tol`` (RMS, 0-255 levels) of ``expected``; False if either is
    missing."""
    if not (Path(expected).is_file() and Path(actual).is_file()):
        return False
    return image_difference(expected, actual) <= tol


def savefig(fig, name: str, fig_dir: str | os.PathLike | None = None, dpi: int = 150,
            tol: float = FIGURE_TOLERANCE) -> list[Path]:
    """Save ``fig`` as PNG and PDF under ``fig_dir`` (default: ``default_fig_dir()``); returns the paths.

    Both files are drawn into a temporary folder first; when ``<name>.png`` and ``<name>.pdf`` exist and the new
    PNG is the same drawing (``same_drawing`` within ``tol``), the existing pair is kept byte for byte, else both
    are replaced. ``tol=0`` replaces unless the pixels are identical."""
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"name={name!r}: must be a bare file stem such as 'mqar_example'")
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol >= 0):
        raise ValueError(f"tol={tol!r}: must be a number >= 0 (an RMS difference in 0-255 levels)")
    out = Path(fig_dir) if fig_dir is not None else default_fig_dir()
    out.mkdir(parents=True, exist_ok=True)
    pin_bundled_fonts()  # also without set_style: text is laid out at save time, from matplotlib's own fonts
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    with tempfile.TemporaryDirectory(prefix="mqar-savefig-") as tmp:  # never a leftover in figures/
        new = [Path(tmp) / p.name for p in paths]
        fig.savefig(new[0], dpi=dpi, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(new[1], bbox_inches="tight", metadata={"Creator": None, "Producer": None, "CreationDate": None})
        if not (paths[1].is_file() and same_drawing(paths[0], new[0], tol)):
            for src, dst in zip(new, paths):
                shutil.move(src, dst)
    return paths
