"""The programmatic filter as an oracle: hand-set weights, no training (Zoology, arXiv 2312.04927, §4.3, Figure 2
bottom row; the filter is ``mqar_theory.mixers.BaseConvProgrammatic``).

The programmatic filter is given which earlier positions hold the current token (an exact token match,
``mqar_theory.mixers.matching``) and puts its spike after them, so it reads the value of a query's key itself.
The model of the Figure 2 (bottom) sweeps, a short BaseConv then the programmatic layer, solves MQAR with no
learned lookup at all once its weights are set by hand:

* layer 1 (BaseConv, k = 3): W = 0, b1 = 0, so y = 0 (the layer is switched off);
* layer 2 (programmatic): W = 0, b1 = 1, h = 0, b2 = 0, g = ``gain``: y[i] = gain · mean_{j < i, x_j = x_i}
  LN(E[x_{j+1}]), the (normalised) embedding of the token after each earlier occurrence;
* the embedding E stays as drawn at initialisation (N(0, ``init_std``), ``torch.manual_seed(seed)``, as the
  trained runs start), the head is tied: logits = LN(E[x_i] + y[i]) Eᵀ.

At a query the earlier occurrence is the key's context position, so y is the value's embedding; with ``gain``
large the stream is dominated by it and the tied head reads the value back (nearest embedding by inner product):
the accuracy is that of decoding a random d-dimensional embedding among c tokens, not of anything learned. This
is what a trained ``baseconv_programmatic`` model is compared with: its width need not carry a lookup.
"""

from __future__ import annotations

__all__ = ["hand_set_programmatic", "programmatic_oracle_accuracy", "oracle_table", "add_oracle_lines"]


def hand_set_programmatic(model, gain: float = 10.0):
    """Set the weights of a 2-layer ``LanguageModel`` [baseconv, baseconv_programmatic] as in the module
    docstring (in place; the embedding is left as it is); returns the model."""
    import torch

    from ..mixers import BaseConv, BaseConvProgrammatic
    from ..utils import is_number

    if not (is_number(gain) and gain > 0):
        raise ValueError(f"gain={gain!r}: must be a number > 0")
    mixers = [b.mixer for b in model.blocks]
    if len(mixers) != 2 or type(mixers[0]) is not BaseConv or not isinstance(mixers[1], BaseConvProgrammatic):
        raise ValueError(f"model: must have 2 layers [baseconv, baseconv_programmatic], got "
                         f"{[type(m).__name__ for m in mixers]}")
    first, prog = mixers
    with torch.no_grad():
        first.W.zero_()
        first.b1.zero_()
        prog.W.zero_()
        prog.b1.fill_(1.0)
        prog.h.zero_()
        prog.b2.zero_()
        prog.g.fill_(float(gain))
    return model


def programmatic_oracle_accuracy(*, vocab_size: int, seq_len: int, num_kv_pairs: int, d_model: int,
                                 num_test: int = 500, data_seed: int = 0, seed: int = 0, init_std: float = 0.1,
                                 random_non_queries: bool = False, power_a: float = 0.01, gain: float = 10.0,
                                 test_seed: int | None = None) -> float:
    """MQAR test accuracy of the hand-set model (module docstring) on the test set a sweep run with these
    settings is evaluated on (``seed=data_seed + TEST_SEED_OFFSET`` unless ``test_seed``)."""
    import torch

    from ..data import make_mqar
    from ..model import LanguageModel
    from ..train import TEST_SEED_OFFSET, evaluate

    test = make_mqar(vocab_size=vocab_size, seq_len=seq_len, num_kv_pairs=num_kv_pairs, num_examples=num_test,
                     seed=data_seed + TEST_SEED_OFFSET if test_seed is None else test_seed, power_a=power_a,
                     random_non_queries=random_non_queries)
    torch.manual_seed(seed)
    model = LanguageModel(vocab_size=vocab_size, d_model=d_model, seq_len=seq_len, n_layers=2,
                          mixer=["baseconv", "baseconv_programmatic"], mixer_kwargs=[{"kernel_size": 3}, {}],
                          init_std=init_std)
    hand_set_programmatic(model, gain)
    return float(evaluate(model, test, device="cpu")["accuracy"])


def oracle_table(spec, gain: float = 10.0):
    """``programmatic_oracle_accuracy`` at every (seq_len, d_model, seed) of a sweep spec's
    ``baseconv_programmatic`` runs (its vocabulary, test set, filler and init): one row each, column
    ``oracle_accuracy``."""
    import pandas as pd

    from .spec import load_spec

    s = load_spec(spec)
    rows, seen = [], set()
    for run in s.runs():
        c = run.config
        mixer = c.get("mixer")
        if not (isinstance(mixer, list) and mixer == ["baseconv", "baseconv_programmatic"]):
            continue
        kw = dict(vocab_size=c["vocab_size"], seq_len=c["seq_len"], num_kv_pairs=c["num_kv_pairs"],
                  d_model=c["d_model"], num_test=c.get("num_test", 1000), data_seed=c.get("data_seed", 0),
                  seed=c.get("seed", 0), init_std=c.get("init_std", 0.02),
                  random_non_queries=bool(c.get("random_non_queries", False)), power_a=c.get("power_a", 0.01),
                  test_seed=c.get("test_seed"))
        key = tuple(sorted(kw.items()))
        if key in seen:
            continue
        seen.add(key)
        rows.append(dict(model=run.model, seq_len=kw["seq_len"], num_kv_pairs=kw["num_kv_pairs"],
                         d_model=kw["d_model"], seed=kw["seed"],
                         oracle_accuracy=programmatic_oracle_accuracy(**kw, gain=gain)))
    if not rows:
        raise ValueError(f"spec={s.name!r}: no [baseconv, baseconv_programmatic] model")
    return pd.DataFrame(rows)


def add_oracle_lines(fig, oracle, label: str = "programmatic, hand-set (untrained)"):
    """Draw an ``oracle_table`` (mean over seeds per (seq_len, d_model)) onto a figure of
    ``plot_accuracy_vs_width`` as a black dashed line with crosses in the panel of each sequence length (read from
    the panel titles, "Sequence Length: N"), and add it to the figure's legend; returns the figure."""
    import re

    from matplotlib.lines import Line2D

    acc = oracle.groupby(["seq_len", "d_model"])["oracle_accuracy"].mean()
    drawn = 0
    for ax in fig.axes:
        m = re.search(r"Sequence Length: (\d+)", ax.get_title())
        if not m or int(m.group(1)) not in acc.index.get_level_values("seq_len"):
            continue
        s = acc.xs(int(m.group(1)), level="seq_len").sort_index()
        ax.plot(s.index, s.values, color="black", ls="--", marker="x", lw=1.2, zorder=5)
        drawn += 1
    if not drawn:
        raise ValueError("fig: no panel titled 'Sequence Length: N' for a sequence length of the oracle table")
    from .figures import figure_legend

    handle = Line2D([], [], color="black", ls="--", marker="x", lw=1.2)
    handles, labels = [], []
    if fig.legends:  # the width figure's one legend, below its panels: add the oracle's line to it
        handles, labels = list(fig.legends[0].legend_handles), [t.get_text() for t in fig.legends[0].get_texts()]
    figure_legend(fig, handles + [handle], labels + [label])
    return fig
