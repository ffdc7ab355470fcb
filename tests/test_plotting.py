"""plotting: savefig writes deterministic bytes, figure_dir keeps smoke and interactive output out of figures/
(only a run under make figures, $MQAR_PUBLISH=1, publishes there), and a figure
renders to the same bytes in another process, with other thread counts and another font-cache order."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mqar_theory.plotting import (  # noqa: E402
    FIGURE_TOLERANCE,
    INTERACTIVE_DIR,
    PUBLISH_ENV,
    REPO_ROOT,
    SMOKE_DIR,
    figure_dir,
    image_difference,
    publish_dir,
    publishing,
    savefig,
)


def test_savefig_writes_png_and_pdf_with_identical_bytes_each_time(tmp_path):
    def draw():
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [1, 4, 9])
        return fig

    a = savefig(draw(), "curve", tmp_path / "a")
    b = savefig(draw(), "curve", tmp_path / "b")
    assert [p.suffix for p in a] == [".png", ".pdf"]
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    with pytest.raises(ValueError, match="name"):
        savefig(draw(), "curve.png", tmp_path)
    plt.close("all")


def _curve(title="Query gaps", shift=0.0):
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot([1, 2, 3, 4], [1, 4, 9 + shift, 16], "o-")
    ax.set_title(title)
    return fig


def _nudge(png: Path, pixels: int, levels: int) -> None:
    """Rewrite ``png`` with ``pixels`` random pixels moved by ``levels`` intensity levels: the drift of another CPU."""
    import numpy as np
    from PIL import Image

    im = np.asarray(Image.open(png).convert("RGB")).astype(int)
    flat = im.reshape(-1, 3)
    idx = np.random.default_rng(0).choice(len(flat), pixels, replace=False)
    flat[idx] = np.clip(flat[idx] + levels, 0, 255)
    Image.fromarray(im.astype("uint8")).save(png)


def test_savefig_keeps_a_committed_pair_within_the_tolerance_and_replaces_a_changed_drawing(tmp_path):
    png, pdf = savefig(_curve(), "curve", tmp_path)
    _nudge(png, pixels=2000, levels=2)  # what another machine's rendering looks like: invisible, not byte-equal
    drifted, pdf_bytes = png.read_bytes(), pdf.read_bytes()
    fresh = savefig(_curve(), "fresh", tmp_path / "fresh")[0]
    assert 0 < image_difference(png, fresh) <= FIGURE_TOLERANCE
    savefig(_curve(), "curve", tmp_path)  # the same drawing again: the committed pair is left untouched
    assert png.read_bytes() == drifted and pdf.read_bytes() == pdf_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.pdf", "curve.png", "fresh"]  # no temporary left
    for changed in (_curve(title="Query gapz"), _curve(shift=0.05)):  # one character; a marker moved a little
        savefig(changed, "changed", tmp_path / "changed")
        assert image_difference(png, tmp_path / "changed" / "changed.png") > FIGURE_TOLERANCE
        savefig(changed, "curve", tmp_path)  # a drawing that differs beyond the tolerance replaces both files
        assert png.read_bytes() != drifted and pdf.read_bytes() != pdf_bytes
        _nudge(png, pixels=2000, levels=2)
        drifted, pdf_bytes = png.read_bytes(), pdf.read_bytes()
    (tmp_path / "curve.pdf").unlink()  # a missing half of the pair: both are written
    savefig(_curve(), "curve", tmp_path)
    assert pdf.is_file() and png.read_bytes() != drifted
    with pytest.raises(ValueError, match="tol"):
        savefig(_curve(), "curve", tmp_path, tol=-1)
    plt.close("all")


def test_smoke_figures_never_go_to_figures(tmp_path, monkeypatch):
    monkeypatch.delenv("MQAR_FIG_DIR", raising=False)
    monkeypatch.setenv(PUBLISH_ENV, "1")  # even under make figures
    assert figure_dir(None, smoke=True) == SMOKE_DIR / "figures"
    assert figure_dir("", smoke=True) == SMOKE_DIR / "figures"
    assert figure_dir(tmp_path, smoke=True) == tmp_path  # asked for explicitly
    assert publish_dir(smoke=True) == SMOKE_DIR


@pytest.mark.parametrize("value", [None, "", "0", "true"])
def test_only_make_figures_publishes_into_figures(monkeypatch, value):
    """An interactive run (JupyterLab: no $MQAR_PUBLISH="1") writes under build/interactive, never figures/."""
    monkeypatch.delenv("MQAR_FIG_DIR", raising=False)
    if value is None:
        monkeypatch.delenv(PUBLISH_ENV, raising=False)
    else:
        monkeypatch.setenv(PUBLISH_ENV, value)
    assert not publishing()
    assert publish_dir() == INTERACTIVE_DIR == REPO_ROOT / "build" / "interactive"
    assert figure_dir(None, smoke=False) == figure_dir("", smoke=False) == INTERACTIVE_DIR / "figures"
    monkeypatch.setenv(PUBLISH_ENV, "1")  # what run_notebook sets for a non-smoke run (make figures)
    assert publishing() and publish_dir() == REPO_ROOT
    assert figure_dir(None, smoke=False) == REPO_ROOT / "figures"


def test_mqar_fig_dir_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MQAR_FIG_DIR", str(tmp_path))
    monkeypatch.delenv(PUBLISH_ENV, raising=False)
    assert figure_dir(None, smoke=False) == tmp_path
    assert figure_dir(None, smoke=True) == SMOKE_DIR / "figures"  # smoke output stays under build/


# Draws the query-gap figure of notebook 01 (the one that once differed on a fresh clone). With SYSTEM_FONTS_FIRST
# the font cache lists the machine's fonts before matplotlib's own, as another machine's cache may: a system
# DejaVu Sans of another version (or an Arial) would then win the look-up and move glyphs by a few pixels.
SCRIPT = textwrap.dedent("""
    import os, sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    torch.set_num_threads(int(os.environ["THREADS"]))
    from matplotlib import font_manager as fm
    if os.environ.get("SYSTEM_FONTS_FIRST"):
        bundled = os.path.realpath(os.path.join(matplotlib.get_data_path(), "fonts", "ttf"))
        fm.fontManager.ttflist.sort(key=lambda f: os.path.dirname(os.path.realpath(f.fname)) == bundled)
        fm.fontManager._findfont_cached.cache_clear()
    from mqar_theory.data import MQARConfig, make_mqar
    from mqar_theory.plotting import savefig, set_style
    from mqar_theory.teaching import plot_query_gaps
    set_style()
    gaps = make_mqar(MQARConfig(vocab_size=8192, seq_len=64, num_kv_pairs=4, num_examples=3000, seed=0))
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    plot_query_gaps(gaps, ax=ax)
    ax.set_title("Query slots, c = 8192, N = 64, K = 4, a = 0.01 $(g+1)^{a-1}$")
    savefig(fig, "gaps", sys.argv[1])
""")


def _render(out: Path, threads: int, hash_seed: str, system_fonts_first: bool) -> dict[str, bytes]:
    env = {**os.environ, "THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": hash_seed,
           "MPLBACKEND": "Agg"}
    env.pop("SYSTEM_FONTS_FIRST", None)
    if system_fonts_first:
        env["SYSTEM_FONTS_FIRST"] = "1"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env, cwd=REPO_ROOT, timeout=300,
                   capture_output=True)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.timeout(300)
def test_a_figure_has_the_same_bytes_in_another_process_thread_count_and_font_order(tmp_path):
    a = _render(tmp_path / "a", threads=1, hash_seed="1", system_fonts_first=False)
    b = _render(tmp_path / "b", threads=2, hash_seed="2", system_fonts_first=True)
    assert sorted(a) == ["gaps.pdf", "gaps.png"]
    for name in a:
        assert a[name] == b[name], f"{name} differs between processes"
