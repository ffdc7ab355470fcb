"""The explorers: the pure functions behind the widgets, and that moving a widget changes what it shows."""

import json

import pytest
import torch

from mqar_theory import explorers as E
from mqar_theory.constructions import BUILDERS, expected_answers
from mqar_theory.data import mqar_oracle


# --- the instance explorer: pure functions ---------------------------------------------------------------------
def test_instance_tokens_is_one_make_mqar_row():
    x = E.instance_tokens(16, 16, 3, seed=2)
    assert x.shape == (16,)
    keys = x[0:6:2].tolist()
    assert sorted(t for t in x[6:].tolist() if t) == sorted(keys)  # each key queried once after the context
    with pytest.raises(ValueError, match="num_kv_pairs"):
        E.instance_tokens(16, 8, 3)


def test_build_construction_names_a_bad_name():
    with pytest.raises(ValueError, match="construction='nope'"):
        E.build_construction("nope", 8, 8)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_construction_traces_and_its_table_matches_the_oracle(name):
    con = E.build_construction(name, 8, 12)
    x = E.instance_tokens(8, 12, 2, seed=1)
    streams = E.instance_trace(con, x)
    assert len(streams) >= 2 and all(s.dim() == 2 for s in streams)
    table = E.instance_trace_table(con, x, streams, len(streams) - 1)
    want = [str(a) if a >= 0 else "" for a in expected_answers(x[None], 8)[0].tolist()]
    assert table["expected"].tolist()[:12] == want
    assert table["answer"].tolist()[:12] == want  # the construction solves the instance
    assert table["token"].tolist()[:12] == [str(t) for t in x.tolist()]
    with pytest.raises(ValueError, match="layer="):
        E.instance_trace_table(con, x, streams, len(streams))


def test_h27_blocks_show_the_copy_and_the_lookup():
    c, N = 16, 16
    con = E.build_construction("attention_h27", c, N)
    x = E.instance_tokens(c, N, 3, seed=0)
    streams = E.instance_trace(con, x)
    assert len(streams) == 3
    b0, b1, b2 = (E.decode_blocks("attention_h27", s, c) for s in streams)
    roles = E.token_roles(x, c)
    oracle = mqar_oracle(x).tolist()
    for i, (t, role) in enumerate(zip(x.tolist(), roles)):
        if role in ("key", "query"):
            assert b0["key block"][i] == b0["query block"][i] == str(t)
        if role == "value":
            assert b0["value block"][i] == str(t) and b0["key block"][i] == ""
            assert b1["key block"][i] == str(int(x[i - 1]))  # layer 1: the key moved onto its value slot
        if role == "query":
            assert b1["value block"][i] == "" and b2["value block"][i] == str(oracle[i])  # layer 2: the lookup
    with pytest.raises(ValueError, match="stream"):
        E.decode_blocks("attention_h27", streams[0][None], c)
    assert E.decode_blocks("baseconv_sorting", streams[0], c) == {}


def test_softmax_blocks_show_the_previous_key_and_the_retrieved_value():
    c, N = 16, 16
    con = E.build_construction("attention_softmax", c, N)
    x = E.instance_tokens(c, N, 3, seed=0)
    streams = E.instance_trace(con, x)
    last = E.decode_blocks("attention_softmax", streams[-1], c)
    roles, oracle = E.token_roles(x, c), mqar_oracle(x).tolist()
    for i, role in enumerate(roles):
        if role == "value":
            assert last["prevk"][i] == str(int(x[i - 1]))
        if role == "query":
            assert last["out"][i] == str(oracle[i])


def test_token_roles():
    assert E.token_roles(torch.tensor([1, 5, 2, 6, 0, 1, 0, 2]), 8) == [
        "key", "value", "key", "value", "filler", "query", "filler", "query"]


def test_plot_stream_marks_the_blocks():
    import matplotlib.pyplot as plt

    s = torch.zeros(5, 12)
    fig = E.plot_stream(s, 1, "attention_h27", 4, tokens=[1, 2, 3, 0, 0])
    ax = fig.axes[0]
    assert "after layer 1" in ax.get_title() and len(ax.lines) == 2 and len(ax.get_yticklabels()) == 5
    plt.close(fig)


# --- the instance explorer: widgets ----------------------------------------------------------------------------
def test_moving_the_layer_slider_changes_the_output():
    ex = E.instance_explorer(c=16, N=16, K=3, seed=0, construction="attention_h27")
    assert ex.widget.children[0] is ex.layer and ex.layer.description == "layer" and ex.layer.max == 2
    html0, png0, table0 = ex.html.value, ex.image.value, ex.table
    assert png0[:4] == b"\x89PNG" and "<table" in html0
    ex.layer.value = 1
    assert ex.html.value != html0 and ex.image.value != png0
    assert "layer 1: key block" in ex.table.columns and "layer 0: key block" in table0.columns
    ex.layer.value = 0
    assert ex.html.value == html0


def test_changing_the_instance_or_the_construction_rebuilds():
    ex = E.instance_explorer(c=8, N=12, K=2, seed=0, construction="attention_h27", layer=2)
    assert ex.layer.value == 2 and "layer 2: key block" in ex.table.columns and "layer 2: key block" in ex.html.value
    tokens0 = ex.tokens.clone()
    ex.seed.value = 5
    assert not torch.equal(ex.tokens, tokens0) and ex.layer.value == 2
    ex.construction.value = "baseconv_data_independent"
    assert ex.con.name == "baseconv_data_independent" and ex.layer.max == len(ex.streams) - 1 > 2
    html = ex.html.value
    ex.K.value = 6  # impossible for N = 12: reported, the last good state kept
    assert "not built" in ex.status.value and ex.html.value == html
    ex.K.value = 2
    assert ex.status.value == ""


def test_instance_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="construction="):
        E.instance_explorer(construction="nope")
    with pytest.raises(ValueError, match="layer="):
        E.instance_explorer(layer=-1)
    with pytest.raises(ValueError, match="num_kv_pairs"):
        E.instance_explorer(c=8, N=8, K=3)


# --- the results explorer --------------------------------------------------------------------------------------
def _record(h, model, N, d, lr, seed, acc):
    return {"hash": h, "model": model, "seed": seed, "status": "ok",
            "config": {"mixer": "baseconv" if model == "conv" else "attention", "seq_len": N, "num_kv_pairs": 2,
                       "d_model": d, "lr": lr, "seed": seed, "vocab_size": 64},
            "metrics": {"test_accuracy": acc, "train_accuracy": min(1.0, acc + 0.1), "steps": 10}}


@pytest.fixture
def results_root(tmp_path):
    i = 0
    for model in ("attn", "conv"):
        for N in (16, 32):
            for d in (8, 16, 32):
                for lr in (1e-3, 3e-3):
                    for seed in (0, 1):
                        acc = round(min(1.0, d / 32 * (1 if model == "attn" else 0.5) + lr * 10 + seed * 0.01), 4)
                        rec = _record(f"{i:016x}", model, N, d, lr, seed, acc)
                        (tmp_path / "prof_a").mkdir(exist_ok=True)
                        (tmp_path / "prof_a" / f"{rec['hash']}.json").write_text(json.dumps(rec))
                        i += 1
    (tmp_path / "figure2_b").mkdir()
    rec = _record(f"{i:016x}", "conv", 64, 8, 1e-3, 0, 0.25)
    (tmp_path / "figure2_b" / f"{rec['hash']}.json").write_text(json.dumps(rec))
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_results_frame_and_choices(results_root):
    assert E.results_profiles(results_root) == ["figure2_b", "prof_a"]
    assert E.default_profile(["a", "figure2_x", "figure2_y"]) == "figure2_x" and E.default_profile(["b"]) == "b"
    df = E.results_frame("prof_a", results_root)
    assert len(df) == 48 and {"model", "seq_len", "d_model", "lr", "seed", "test_accuracy"} <= set(df.columns)
    assert E.results_choices(df) == {"model": ["attn", "conv"], "N": [16, 32]}
    with pytest.raises(ValueError, match="profile='nope'"):
        E.results_frame("nope", results_root)
    with pytest.raises(ValueError, match="profile='empty'"):
        E.results_frame("empty", results_root)


def test_plot_results_draws_a_line_per_lr_and_the_selection(results_root):
    import matplotlib.pyplot as plt

    df = E.results_frame("prof_a", results_root)
    fig = E.plot_results(df, "conv", 32)
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    assert labels == ["best over lr", "lr 0.001", "lr 0.003"]
    best = ax.lines[0].get_ydata().tolist()
    sub = df[(df.model == "conv") & (df.seq_len == 32)]
    want = sub.groupby(["d_model", "seed"])["test_accuracy"].max().groupby("d_model").mean().tolist()
    assert best == pytest.approx(want)
    assert len(ax.collections) == 2 * 2 + 2  # a marker set per (lr, seed), plus the two seed legend entries
    plt.close(fig)
    with pytest.raises(ValueError, match="no records"):
        E.plot_results(df, "conv", 64)
    with pytest.raises(ValueError, match="metric="):
        E.plot_results(df, "conv", 32, metric="nope")


def test_moving_a_results_widget_changes_the_output(results_root):
    rx = E.results_explorer(profile="prof_a", results_root=results_root)
    assert rx.model.value == "attn" and rx.N.value == 16 and len(rx.table) == 12
    png, html = rx.image.value, rx.html.value
    rx.N.value = 32
    assert rx.image.value != png and rx.html.value != html and set(rx.table["seq_len"]) == {32}
    rx.model.value = "conv"
    assert set(rx.table["model"]) == {"conv"}
    rx.metric.value = "train_accuracy"
    rx.profile.value = "figure2_b"
    assert rx.model.options == ("conv",) and rx.N.value == 64 and len(rx.table) == 1
    with pytest.raises(ValueError, match="profile="):
        E.results_explorer(profile="nope", results_root=results_root)
    with pytest.raises(ValueError, match="results_root"):
        E.results_explorer(results_root=results_root / "empty")


def test_the_committed_results_open():
    profiles = E.results_profiles()
    if not profiles:
        pytest.skip("no committed results")
    rx = E.results_explorer()
    assert rx.profile.value == E.default_profile(profiles) and len(rx.table) > 0
