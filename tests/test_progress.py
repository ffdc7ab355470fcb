"""Progress bars tell the truth: a run that stops early at its target ends full (green in a notebook) with the
reason in its postfix, a failed run ends red, bars stay on screen, and a disabled bar prints nothing."""

from __future__ import annotations

import io

import pytest
import torch
from tqdm import tqdm as text_tqdm

from mqar_theory import progress
from mqar_theory.data import make_mqar
from mqar_theory.model import LanguageModel
from mqar_theory.progress import close_bar, progress_bar
from mqar_theory.train import train

TINY = dict(vocab_size=16, seq_len=16, num_kv_pairs=2)
KW = dict(lr=3e-3, epochs=3, batch_size=32, eval_every=2, device="cpu")


@pytest.fixture(scope="module")
def tiny_data():
    return make_mqar(**TINY, num_examples=256, seed=0), make_mqar(**TINY, num_examples=128, seed=1)


def tiny_model():
    torch.manual_seed(0)
    return LanguageModel(TINY["vocab_size"], 16, TINY["seq_len"])


@pytest.fixture
def bars(monkeypatch):
    """Every bar the library opens, as text bars writing into a buffer (not the terminal)."""
    opened = []

    class Recording(text_tqdm):
        def __init__(self, *args, **kwargs):
            self.buffer, self.shown = io.StringIO(), not kwargs.get("disable")  # tqdm's close() sets disable
            super().__init__(*args, file=self.buffer, **kwargs)
            opened.append(self)

    monkeypatch.setattr(progress, "tqdm", Recording)
    return opened


def test_a_run_that_reaches_its_target_early_ends_with_a_full_bar_and_the_reason(tiny_data, bars):
    full = train(tiny_model(), *tiny_data, target_accuracy=None, progress=False, **KW)
    accs = [h["test_accuracy"] for h in full["history"]]
    i = next(i for i in range(1, len(accs) - 1) if accs[i] > max(accs[:i]))  # first reached mid-run
    assert [b.shown for b in bars] == [False] and bars[0].buffer.getvalue() == ""  # progress=False: never shown
    rec = train(tiny_model(), *tiny_data, target_accuracy=accs[i], progress=True, **KW)
    assert rec["stopped_early"] and rec["steps"] < full["steps"] == 24
    (bar,) = [b for b in bars if b.shown]
    assert bar.n == bar.total == rec["steps"]  # full, and the count is the steps really done
    assert bar.leave  # stays on screen when it closes (one finished bar per model in a notebook)
    assert f"reached target {accs[i]:g}" in bar.postfix and "test_acc=" in bar.postfix
    assert bar.colour == "green"
    text = bar.buffer.getvalue()
    assert f"{rec['steps']}/{rec['steps']}" in text and "100%" in text and "reached target" in text


def test_a_run_that_finishes_its_schedule_ends_full_without_a_reason(tiny_data, bars):
    rec = train(tiny_model(), *tiny_data, target_accuracy=None, progress=True, **{**KW, "epochs": 1})
    (bar,) = bars
    assert bar.n == bar.total == rec["steps"] == 8
    assert "reached" not in (bar.postfix or "")


def _notebook_bar(total):
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm as notebook_tqdm

    bar = notebook_tqdm(total=total, desc="train", leave=True)
    bar.update(3)
    return bar, bar.container.children[1]  # the FloatProgress widget


def test_in_a_notebook_an_early_stop_is_green_and_a_failure_red(capsys):
    bar, widget = _notebook_bar(10)
    bar.close()  # what tqdm does by itself: short of its total means an error
    assert widget.bar_style == "danger"

    bar, widget = _notebook_bar(10)
    close_bar(bar, reached="reached target 0.99")
    assert widget.bar_style == "success" and widget.value == widget.max == 3 and bar.total == 3
    assert "reached target 0.99" in bar.postfix

    bar, widget = _notebook_bar(3)  # a full count, yet the run failed
    close_bar(bar, failed="diverged at step 3")
    assert widget.bar_style == "danger" and "diverged at step 3" in bar.postfix

    bar, widget = _notebook_bar(3)
    close_bar(bar)
    assert widget.bar_style == "success" and widget.layout.visibility != "hidden"  # leave=True: still shown


def test_a_disabled_bar_prints_nothing(capsys):
    bar = progress_bar(5, desc="train", enabled=False)
    bar.update(2)
    close_bar(bar, reached="reached target 0.9")
    assert capsys.readouterr().err == "" and bar.disable


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="total"):
        progress_bar(-1, desc="train")
    bar = progress_bar(2, desc="x", enabled=False)
    with pytest.raises(ValueError, match="reached.*failed"):
        close_bar(bar, reached="a", failed="b")
