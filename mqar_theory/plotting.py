"""The one figure helper: ``savefig(fig, name)`` writes ``<name>.png`` and ``<name>.pdf``.

File contents are deterministic for the same figure: PNG and PDF metadata that would change from
run to run (software version, creation date) are dropped, and SVG hashes salted. ``set_style`` also pins the
fonts to the DejaVu files that ship inside matplotlib: seaborn's style asks for Arial, then DejaVu Sans, and a
machine's own fonts (an Arial, or a system DejaVu Sans of another version, picked or not depending on the order
of the font cache) changed glyphs by a few pixels between machines. With the bundled files only, the same
matplotlib version renders the same bytes everywhere (tests/test_plotting.py renders a figure in two processes
with different thread counts, and with the system fonts listed first). Colours per mixer
are fixed so every figure of the project speaks the same language.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["savefig", "MIXER_COLORS", "set_style", "pin_bundled_fonts", "default_fig_dir", "figure_dir", "REPO_ROOT",
           "publishing", "publish_dir", "PUBLISH_ENV", "INTERACTIVE_DIR",
           "SMOKE_DIR"]

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


def savefig(fig, name: str, fig_dir: str | os.PathLike | None = None, dpi: int = 150) -> list[Path]:
    """Save ``fig`` as PNG and PDF under ``fig_dir`` (default: ``default_fig_dir()``); returns the paths."""
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"name={name!r}: must be a bare file stem such as 'mqar_example'")
    out = Path(fig_dir) if fig_dir is not None else default_fig_dir()
    out.mkdir(parents=True, exist_ok=True)
    pin_bundled_fonts()  # also without set_style: text is laid out at save time, from matplotlib's own fonts
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Creator": None, "Producer": None, "CreationDate": None})
    return paths
