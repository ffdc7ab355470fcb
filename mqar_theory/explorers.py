"""Widgets to explore: a construction's stream layer by layer, and the committed sweep records.

Pure functions do the work and are tested; the two explorer classes only wire ipywidgets to them.

Instance explorer (``instance_explorer``): one ``make_mqar`` sequence (c, N, K, seed, filler 0) run through a
hand-set construction of ``mqar_theory.constructions.BUILDERS`` in float64. ``con.trace(tokens)`` gives the stream
before the first layer and after every layer; the ``layer`` slider picks one, shown as a heatmap (positions x
channels) beside a table of every position: token, role, the construction's answer, the expected answer
(``expected_answers``: the dictionary oracle at key tokens) and, where the construction's stream has named blocks,
what each block holds at that layer (``decode_blocks``: the key / value / query blocks of Prop H.27's one-hot
stream, the code blocks of the softmax construction). Constructions that pad or sort the rows (the sorting network)
show their N' rows; positions beyond N have no token.

Results explorer (``results_explorer``): the JSON records under ``results/<profile>/`` (``sweep.load_results``):
for a profile, a model and a sequence length N, accuracy against the width d, one line per learning rate (the mean
over seeds), one marker per seed, and the paper's selection (``sweep.select_best``: best over lr per seed, then the
mean) as a wide grey line.

Static output. Each explorer renders its first state when it is built (PNG in an ``ipywidgets.Image``, the table
in an ``ipywidgets.HTML``), and ``figure()`` / ``table`` give the current state as a matplotlib figure and a
DataFrame for papermill, which records no live widget.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import pandas as pd
import torch

from .plotting import MIXER_COLORS, REPO_ROOT
from .utils import is_int

__all__ = ["instance_tokens", "build_construction", "instance_trace", "token_roles", "decode_blocks",
           "instance_trace_table", "plot_stream", "InstanceExplorer", "instance_explorer", "RESULTS_DIR",
           "results_profiles", "default_profile", "results_frame", "results_choices", "plot_results", "ResultsExplorer",
           "png_size", "RESULTS_FIGSIZE", "RESULTS_DPI",
           "results_explorer", "figure_png"]

RESULTS_DIR = REPO_ROOT / "results"


# --------------------------------------------------------------------------------------------------------------
# the instance explorer: pure functions
# --------------------------------------------------------------------------------------------------------------
def instance_tokens(c: int, N: int, K: int, seed: int = 0) -> torch.Tensor:
    """(N,) tokens of one ``make_mqar`` example (filler 0); ``make_mqar`` validates c, N, K and seed."""
    from .data import make_mqar

    return make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=1, seed=seed).inputs[0]


def build_construction(name: str, c: int, N: int):
    """``BUILDERS[name](c, N)`` in float64; ValueError naming ``name`` if it is not a builder."""
    from .constructions import BUILDERS

    if name not in BUILDERS:
        raise ValueError(f"construction={name!r}: must be one of {sorted(BUILDERS)}")
    return BUILDERS[name](c, N).double()


def instance_trace(con, tokens) -> list[torch.Tensor]:
    """The streams of one sequence: [encode(x), after layer 1, ..., after layer L], each (N', d_l), from
    ``con.trace``."""
    x = torch.as_tensor(tokens)
    if x.dim() != 1:
        raise ValueError(f"tokens: must be one sequence of shape (N,), got {tuple(x.shape)}")
    with torch.no_grad():
        return [s[0].detach().cpu() for s in con.trace(x[None])]


def token_roles(tokens, c: int) -> list[str]:
    """Role of each token: ``key`` (first occurrence of a key token, 1 <= x < c/2), ``query`` (a key token seen
    before), ``value`` (c/2 <= x < c) or ``filler`` (0)."""
    seen, roles = set(), []
    for t in torch.as_tensor(tokens).tolist():
        if 1 <= t < c // 2:
            roles.append("query" if t in seen else "key")
            seen.add(t)
        else:
            roles.append("value" if t >= c // 2 else "filler")
    return roles


def _one_hot_tokens(block: torch.Tensor) -> list[str]:
    """Per row, the tokens whose one-hot column is set (> 1/2), joined by '+' ('' if none)."""
    return ["+".join(str(int(t)) for t in (row > 0.5).nonzero().flatten()) for row in block]


def _code_tokens(block: torch.Tensor) -> list[str]:
    """Per row, the token whose ±1 binary code the block holds (every |bit| > 1/2), '' if it holds none."""
    bits = 2 ** torch.arange(block.shape[1])
    return [str(int(((row > 0).long() * bits).sum())) if bool((row.abs() > 0.5).all()) else "" for row in block]


def decode_blocks(name: str, stream: torch.Tensor, c: int) -> dict[str, list[str]]:
    """What the named blocks of a construction's stream (N', d) hold, per row; {} where the construction has no
    named blocks (or the stream is not of the block layout's width).

    * ``attention_h27`` (width 3c, Remark H.26): the one-hot tokens in the key [0, c), value [c, 2c) and query
      [2c, 3c) blocks. Layer 1 copies the key of slot i-1 into slot i's key block (each value slot then holds its
      key), layer 2 adds the looked-up value to the value block of a query slot;
    * ``attention_softmax`` (width 4b + 2): the tokens coded in kcode, vcode, prevk (the previous token's key
      code, written by layer 1) and out (the retrieved value code, layer 2).
    """
    s = torch.as_tensor(stream)
    if s.dim() != 2:
        raise ValueError(f"stream: must have shape (N', d), got {tuple(s.shape)}")
    d = s.shape[1]
    if name == "attention_h27" and d == 3 * c:
        return {f"{b} block": _one_hot_tokens(s[:, k * c : (k + 1) * c]) for k, b in enumerate(("key", "value",
                                                                                               "query"))}
    if name == "attention_softmax":
        b = (d - 2) // 4
        if d == 4 * b + 2 and 2**b >= c:
            return {blk: _code_tokens(s[:, k * b : (k + 1) * b])
                    for k, blk in enumerate(("kcode", "vcode", "prevk", "out"))}
    return {}


def instance_trace_table(con, tokens, streams: list[torch.Tensor], layer: int) -> pd.DataFrame:
    """One row per stream row: position, token, role, answer (``con.predict``), expected (dictionary oracle at key
    tokens) and the decoded blocks of the stream after ``layer`` layers (0 = the encoded input)."""
    from .constructions import expected_answers

    if not (is_int(layer) and 0 <= layer < len(streams)):
        raise ValueError(f"layer={layer!r}: must be an integer in [0, {len(streams) - 1}]")
    x = torch.as_tensor(tokens)
    c, n = con.vocab_size, x.shape[0]
    rows = streams[layer].shape[0]
    answer = con.predict(x[None])[0].tolist()
    expected = expected_answers(x[None], c)[0].tolist()
    roles = token_roles(x, c)
    show = lambda a: "" if a < 0 else str(a)  # noqa: E731
    pad = [""] * max(0, rows - n)
    table = pd.DataFrame({
        "position": range(rows),
        "token": [str(t) for t in x.tolist()][:rows] + pad,
        "role": roles[:rows] + pad,
        "answer": [show(a) for a in answer][:rows] + pad,
        "expected": [show(a) for a in expected][:rows] + pad,
    })
    for col, vals in decode_blocks(con.name, streams[layer], c).items():
        table[f"layer {layer}: {col}"] = vals
    return table.set_index("position")


def plot_stream(stream: torch.Tensor, layer: int, name: str, c: int, tokens=None, ax=None):
    """Heatmap of one stream (rows = positions, columns = channels), blocks of ``attention_h27`` marked."""
    import matplotlib.pyplot as plt

    s = torch.as_tensor(stream, dtype=torch.float64)
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(12, 3 + 0.12 * s.shape[1]), min(8, 1.5 + 0.22 * s.shape[0])))
    else:
        fig = ax.figure
    lim = max(float(s.abs().max()), 1e-12)
    im = ax.imshow(s.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    if name == "attention_h27" and s.shape[1] == 3 * c:
        for k, blk in enumerate(("key", "value", "query")):
            if k:
                ax.axvline(k * c - 0.5, color="k", lw=0.8)
            ax.text((k + 0.5) * c - 0.5, -0.8, f"{blk} block", ha="center", va="bottom", fontsize=8)
    if tokens is not None and s.shape[0] <= 64:
        tok = torch.as_tensor(tokens).tolist()
        ax.set_yticks(range(s.shape[0]))
        ax.set_yticklabels([f"{i}: {tok[i]}" if i < len(tok) else str(i) for i in range(s.shape[0])], fontsize=7)
    ax.set_xlabel("channel")
    ax.set_ylabel("position: token")
    ax.set_title(f"{name}: stream after layer {layer}" if layer else f"{name}: encoded input (layer 0)", pad=14)
    return fig


def figure_png(fig, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an ``ipywidgets.Image``); the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------------
# the instance explorer: widgets
# --------------------------------------------------------------------------------------------------------------
class InstanceExplorer:
    """Controls: ``layer`` (the first widget, an IntSlider described "layer"), ``construction``, ``c``, ``N``,
    ``K``, ``seed``; outputs ``image`` (the heatmap) and ``html`` (the table, positions as columns). ``widget`` is
    the whole box; ``table`` and ``streams`` the current state."""

    def __init__(self, c: int = 16, N: int = 16, K: int = 3, seed: int = 0, construction: str = "attention_h27",
                 layer: int = 0):
        import ipywidgets as W

        from .constructions import BUILDERS

        if construction not in BUILDERS:
            raise ValueError(f"construction={construction!r}: must be one of {sorted(BUILDERS)}")
        self.layer = W.IntSlider(value=0, min=0, max=1, description="layer", continuous_update=False)
        self.construction = W.Dropdown(options=sorted(BUILDERS), value=construction, description="construction")
        self.c = W.BoundedIntText(value=c, min=4, max=64, step=2, description="c")
        self.N = W.BoundedIntText(value=N, min=4, max=64, step=2, description="N")
        self.K = W.BoundedIntText(value=K, min=1, max=16, description="K")
        self.seed = W.BoundedIntText(value=seed, min=0, max=10**6, description="seed")
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        self.html = W.HTML()
        self.status = W.HTML()
        self.widget = W.VBox([self.layer, W.HBox([self.construction, self.seed]), W.HBox([self.c, self.N, self.K]),
                              self.status, self.image, self.html])
        if not (is_int(layer) and layer >= 0):
            raise ValueError(f"layer={layer!r}: must be an integer >= 0")
        self.con = self.tokens = self.streams = self.table = None
        self.error = ""
        self._rebuild()
        if self.con is None:
            raise ValueError(self.error)
        if layer:
            self.layer.value = min(int(layer), self.layer.max)
            self._render()
        self.layer.observe(lambda _: self._render(), names="value")
        for w in (self.construction, self.c, self.N, self.K, self.seed):
            w.observe(lambda _: self._rebuild(), names="value")

    def _rebuild(self) -> None:
        try:
            con = build_construction(self.construction.value, self.c.value, self.N.value)
            tokens = instance_tokens(self.c.value, self.N.value, self.K.value, self.seed.value)
            streams = instance_trace(con, tokens)
        except ValueError as e:  # an impossible (c, N, K): say so and keep the last good state
            self.error = str(e)
            self.status.value = f"<b>not built:</b> {html.escape(self.error)}"
            return
        self.error = ""
        self.status.value = ""
        self.con, self.tokens, self.streams = con, tokens, streams
        with self.layer.hold_trait_notifications():
            self.layer.max = len(streams) - 1
            self.layer.value = min(self.layer.value, self.layer.max)
        self._render()

    def figure(self):
        """The current stream as a matplotlib figure."""
        k = self.layer.value
        return plot_stream(self.streams[k], k, self.con.name, self.con.vocab_size, self.tokens)

    def _render(self) -> None:
        self.table = instance_trace_table(self.con, self.tokens, self.streams, self.layer.value)
        self.image.value = figure_png(self.figure())
        self.html.value = self.table.T.to_html()


def instance_explorer(c: int = 16, N: int = 16, K: int = 3, seed: int = 0, construction: str = "attention_h27",
                      layer: int = 0) -> InstanceExplorer:
    """An ``InstanceExplorer``; display its ``widget``."""
    return InstanceExplorer(c=c, N=N, K=K, seed=seed, construction=construction, layer=layer)


# --------------------------------------------------------------------------------------------------------------
# the results explorer
# --------------------------------------------------------------------------------------------------------------
def results_profiles(results_root=RESULTS_DIR) -> list[str]:
    """Names of the profiles with records under ``results_root`` (``results/<profile>/<hash>.json``)."""
    from .sweep import load_records

    root = Path(results_root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and load_records(p))


def default_profile(profiles: list[str]) -> str:
    """The profile an explorer opens: the first Figure 2 profile (name starting with "figure2"), else the first."""
    if not profiles:
        raise ValueError("profiles: empty; no results directory holds records")
    return next((p for p in profiles if p.startswith("figure2")), profiles[0])


def results_frame(profile: str, results_root=RESULTS_DIR) -> pd.DataFrame:
    """The records of ``results_root/profile`` (``sweep.load_results``), failed runs left out, with the columns
    model, mixer, seq_len, num_kv_pairs, d_model, lr, seed, test_accuracy, train_accuracy, steps, status."""
    from .sweep import load_results

    path = Path(results_root) / str(profile)
    if not path.is_dir():
        raise ValueError(f"profile={profile!r}: no such results directory {path}; the profiles are "
                         f"{results_profiles(results_root)}")
    df = load_results(path)
    if df.empty:
        raise ValueError(f"profile={profile!r}: {path} holds no records")
    df = df[df["status"] != "failed"]
    cols = ["model", "mixer", "seq_len", "num_kv_pairs", "d_model", "lr", "seed", "test_accuracy", "train_accuracy",
            "steps", "status"]
    return df[[k for k in cols if k in df.columns]].reset_index(drop=True)


def results_choices(df: pd.DataFrame, model: str | None = None) -> dict[str, list]:
    """The models of a ``results_frame``, and the sequence lengths recorded for ``model`` (all if None)."""
    sub = df if model is None else df[df["model"] == model]
    return {"model": sorted(df["model"].unique()), "N": sorted(int(n) for n in sub["seq_len"].unique())}


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: the results explorer's figure (inches) and resolution: drawn at about the size JupyterLab shows it (about
#: 1,050 px wide), and the image widget is given that width, so the browser neither stretches nor blurs it
RESULTS_FIGSIZE = (8.0, 5.0)
RESULTS_DPI = 150


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes, read from the IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("png: not PNG bytes (no PNG signature and IHDR chunk)")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def plot_results(df: pd.DataFrame, model: str, N: int, metric: str = "test_accuracy", ax=None):
    """Accuracy against d for one model and N: a line per lr (mean over seeds), a marker per seed, and the
    selected curve (best lr per seed, then the mean: the paper's rule) as a wide grey line."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .sweep import select_best

    if metric not in df.columns:
        raise ValueError(f"metric={metric!r}: not a column of the frame ({list(df.columns)})")
    sub = df[(df["model"] == model) & (df["seq_len"] == N)]
    if sub.empty:
        raise ValueError(f"model={model!r}, N={N!r}: no records; the choices are {results_choices(df)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=RESULTS_FIGSIZE)
    else:
        fig = ax.figure
    best = select_best(sub.assign(hash=range(len(sub))), metric=metric).groupby("d_model")[metric].mean()
    ax.plot(best.index, best.values, color="0.8", lw=6, zorder=0, label="best over lr")
    lrs = sorted(sub["lr"].unique())
    seeds = sorted(sub["seed"].unique())
    colors = sns.color_palette("colorblind", len(lrs))
    for lr, col in zip(lrs, colors):
        g = sub[sub["lr"] == lr]
        mean = g.groupby("d_model")[metric].mean()
        ax.plot(mean.index, mean.values, color=col, lw=1.5, label=f"lr {lr:g}")
        for seed, mk in zip(seeds, MARKERS * (len(seeds) // len(MARKERS) + 1)):
            s = g[g["seed"] == seed]
            ax.scatter(s["d_model"], s[metric], color=col, marker=mk, s=30, zorder=3)
    for seed, mk in zip(seeds, MARKERS * (len(seeds) // len(MARKERS) + 1)):  # legend entries of the markers
        ax.scatter([], [], color="0.3", marker=mk, s=30, label=f"seed {seed}")
    ax.set_xscale("log", base=2)
    widths = sorted(int(d) for d in sub["d_model"].unique())
    ax.set_xticks(widths, [str(d) for d in widths])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("model width d")
    ax.set_ylabel(metric.replace("_", " "))
    mixer = str(sub["mixer"].iloc[0])
    named = model if mixer in (model, "") else f"{model} ({mixer} mixer)"  # "attention (attention)" says it twice
    ax.set_title(f"{named}, N = {N}", color=MIXER_COLORS.get(model, "black"))
    ax.legend(fontsize=7, loc="lower right")
    return fig


class ResultsExplorer:
    """Controls ``profile``, ``model``, ``N``, ``metric`` (dropdowns); outputs ``image`` and ``html`` (the records
    of the choice). ``frame`` is the current profile's ``results_frame``, ``table`` the records shown."""

    def __init__(self, profile: str | None = None, model: str | None = None, N: int | None = None,
                 metric: str = "test_accuracy", results_root=RESULTS_DIR):
        import ipywidgets as W

        self.root = Path(results_root)
        profiles = results_profiles(self.root)
        if not profiles:
            raise ValueError(f"results_root={str(self.root)!r}: holds no profile with records")
        if profile is None:
            profile = default_profile(profiles)
        if profile not in profiles:
            raise ValueError(f"profile={profile!r}: must be one of {profiles}")
        if metric not in ("test_accuracy", "train_accuracy"):
            raise ValueError(f"metric={metric!r}: must be 'test_accuracy' or 'train_accuracy'")
        self.profile = W.Dropdown(options=profiles, value=profile, description="profile")
        self.model = W.Dropdown(description="model")
        self.N = W.Dropdown(description="N")
        self.metric = W.Dropdown(options=["test_accuracy", "train_accuracy"], value=metric, description="metric")
        self.image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
        self.html = W.HTML()
        self.widget = W.VBox([W.HBox([self.profile, self.model]), W.HBox([self.N, self.metric]), self.image,
                              self.html])
        self._busy = False
        self._load(model, N)
        self.profile.observe(lambda _: self._load(None, None), names="value")
        self.model.observe(lambda _: self._choose_N(None), names="value")
        self.N.observe(lambda _: self._render(), names="value")
        self.metric.observe(lambda _: self._render(), names="value")

    def _load(self, model, N) -> None:
        self.frame = results_frame(self.profile.value, self.root)
        models = results_choices(self.frame)["model"]
        if model is not None and model not in models:
            raise ValueError(f"model={model!r}: must be one of {models}")
        self._busy = True
        self.model.options = models
        self.model.value = model if model is not None else models[0]
        self._busy = False
        self._choose_N(N)

    def _choose_N(self, N) -> None:
        if self._busy:
            return
        Ns = results_choices(self.frame, self.model.value)["N"]
        if N is not None and N not in Ns:
            raise ValueError(f"N={N!r}: must be one of {Ns} for model {self.model.value!r}")
        self._busy = True
        self.N.options = Ns
        self.N.value = N if N is not None else Ns[0]
        self._busy = False
        self._render()

    def figure(self):
        """The current choice as a matplotlib figure."""
        return plot_results(self.frame, self.model.value, self.N.value, self.metric.value)

    def _render(self) -> None:
        if self._busy:
            return
        f = self.frame
        self.table = f[(f["model"] == self.model.value) & (f["seq_len"] == self.N.value)].reset_index(drop=True)
        png = figure_png(self.figure(), dpi=RESULTS_DPI)
        self.image.value = png
        self.image.width = str(png_size(png)[0])  # shown at its own pixel width: not stretched
        self.html.value = self.table.to_html(index=False, float_format=lambda v: f"{v:.3g}")


def results_explorer(profile: str | None = None, model: str | None = None, N: int | None = None,
                     metric: str = "test_accuracy", results_root=RESULTS_DIR) -> ResultsExplorer:
    """A ``ResultsExplorer`` over ``results_root`` (default: the committed ``results/``); display its ``widget``."""
    return ResultsExplorer(profile=profile, model=model, N=N, metric=metric, results_root=results_root)
