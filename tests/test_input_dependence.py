"""Input-dependent filters (Figure 2, bottom row): baseconv_programmatic and baseconv_autocorrelation against
their naive references, causality, FLOP formulas, and the token matching they rely on."""

import pytest
import torch
from conftest import randomise_, token_input

from mqar_theory.flops import count_flops
from mqar_theory.mixers import MIXERS, BaseConvAutocorrelation, BaseConvProgrammatic, get_mixer
from mqar_theory.mixers.matching import (
    earlier_count,
    earlier_count_reference,
    grouped_prefix_sum,
    grouped_prefix_sum_reference,
    match_ids,
)
from mqar_theory.model import LanguageModel

NAMES = ["baseconv_programmatic", "baseconv_autocorrelation"]


pytestmark = pytest.mark.usefixtures("float64_default")


def randomised(name, d=4, N=20):
    torch.manual_seed(0)
    return randomise_(get_mixer(name, d, N))


def test_registered():
    assert MIXERS["baseconv_programmatic"] is BaseConvProgrammatic
    assert MIXERS["baseconv_autocorrelation"] is BaseConvAutocorrelation


def test_matching_helpers_against_pair_loops():
    tokens, u = token_input(B=3, n=23)
    ids = match_ids(u)
    assert torch.equal(earlier_count(ids), earlier_count_reference(ids))
    assert torch.equal(earlier_count(tokens), earlier_count_reference(tokens))
    assert torch.allclose(grouped_prefix_sum(tokens, u), grouped_prefix_sum_reference(tokens, u), atol=1e-12)
    # rows of u equal exactly when the tokens are equal (distinct random embeddings)
    assert torch.equal(ids[:, :, None] == ids[:, None, :], tokens[:, :, None] == tokens[:, None, :])


def test_earlier_count_hand_case():
    x = torch.tensor([[3, 1, 3, 3, 1, 2]])
    assert earlier_count(x).tolist() == [[0, 0, 1, 2, 1, 0]]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [20, 13])
def test_matches_naive_reference(name, n):
    m = randomised(name)
    tokens, u = token_input(n=n)
    assert torch.allclose(m(u), m.forward_reference(u), atol=1e-9, rtol=1e-9)
    if name == "baseconv_programmatic":
        assert torch.allclose(m(u, tokens=tokens), m.forward_reference(u, tokens=tokens), atol=1e-9, rtol=1e-9)
        assert torch.allclose(m(u, tokens=tokens), m(u), atol=1e-12)  # distinct embeddings: same matches


def test_programmatic_filter_spikes_after_the_earlier_occurrence():
    """Tokens a b a: row 2's filter is h plus g at lag 1, which reads u[1] (the token after the earlier a)."""
    m = randomised("baseconv_programmatic", d=3, N=6)
    tokens = torch.tensor([[7, 9, 7]])
    u = torch.randn(1, 3, 3)
    hu = m.input_filter(u, tokens)
    expected = torch.zeros(3, 3, 3)
    for i in range(3):
        expected[i, : i + 1] = m.h[: i + 1].detach()
    expected[2, 1] += m.g.detach()
    assert torch.allclose(hu[0], expected)
    spike = m.spike_term(u, tokens)[0]
    assert torch.allclose(spike[2], m.g * u[0, 1]) and torch.all(spike[:2] == 0)


def test_programmatic_averages_several_earlier_occurrences():
    m = randomised("baseconv_programmatic", d=2, N=8)
    tokens = torch.tensor([[5, 1, 5, 2, 5]])
    u = torch.randn(1, 5, 2)
    spike = m.spike_term(u, tokens)[0]
    assert torch.allclose(spike[4], m.g * (u[0, 1] + u[0, 3]) / 2)


def test_autocorrelation_rho_by_fft_matches_direct_sums():
    torch.manual_seed(3)
    u = torch.randn(2, 16, 3)
    for p in (2, 4, 8):
        r = BaseConvAutocorrelation.rho(u, p)
        R = torch.stack([sum((u[:, t] * u[:, t - s]).sum(-1) for t in range(s, p)) for s in range(p)], 1)
        assert torch.allclose(r[:, 1:], R[:, 1:] / R[:, :1], atol=1e-12) and torch.all(r[:, 0] == 0)
        assert r.abs().max() <= 1 + 1e-12  # Cauchy-Schwarz


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    m = randomised(name)
    tokens, u = token_input(n=20)
    u2, t2 = u.clone(), tokens.clone()
    i = 11
    u2[:, i + 1 :] = torch.randn_like(u2[:, i + 1 :])
    t2[:, i + 1 :] = (t2[:, i + 1 :] + 1) % 5
    kw, kw2 = ({"tokens": tokens}, {"tokens": t2}) if name == "baseconv_programmatic" else ({}, {})
    y, y2 = m(u, **kw), m(u2, **kw2)
    assert torch.allclose(y[:, : i + 1], y2[:, : i + 1], atol=1e-10)
    assert not torch.allclose(y[:, i + 1 :], y2[:, i + 1 :])  # the test can fail: the future does change
    assert torch.allclose(m(u[:, : i + 1], **({"tokens": tokens[:, : i + 1]} if kw else {})), y[:, : i + 1],
                          atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [64, 37, 5])
def test_flops_formula_matches_count(name, n):
    m = get_mixer(name, 8, 64)
    u = torch.randn(1, n, 8)
    assert count_flops(m, u) / n == pytest.approx(m.flops_per_token(n), rel=1e-6, abs=1.0)


def test_programmatic_gets_the_tokens_inside_a_language_model():
    """LanguageModel passes its token ids: a model whose first layer is programmatic equals that layer run
    by hand with the tokens."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=11, d_model=8, seq_len=16, n_layers=1, mixer="baseconv_programmatic")
    x = torch.randint(0, 11, (2, 16))
    with torch.no_grad():
        e = model.embedding(x)
        block = model.blocks[0]
        manual = model.norm(e + block.mixer(block.norm1(e), tokens=x))
        assert torch.allclose(model.hidden(x), manual, atol=1e-12)
        # and layer norm of the embedding maps equal tokens to bitwise equal rows: the u-match agrees
        assert torch.equal(match_ids(block.norm1(e))[:, :, None] == match_ids(block.norm1(e))[:, None, :],
                           x[:, :, None] == x[:, None, :])


@pytest.mark.parametrize("name", NAMES)
def test_language_model_trains(name):
    from mqar_theory.train import run_mqar

    rec = run_mqar(["baseconv", name], d_model=16, vocab_size=16, seq_len=16, num_kv_pairs=2, num_train=64,
                   num_test=32, mixer_kwargs=[{"kernel_size": 3}, {}], epochs=1, batch_size=16, lr=3e-3,
                   init_std=0.1, device="cpu", progress=False)
    assert rec["steps"] == 4 and all(torch.isfinite(torch.tensor(rec["loss_history"])))
    assert rec["history"][-1]["aux_loss"] == 0.0


# --- autocorrelation variants: top-k repeat distances, learned sharpness --------------------------------------
VARIANTS = [dict(top_k=1), dict(top_k=3), dict(sharpness=2.0), dict(top_k=3, sharpness=-1.5)]


def variant(kw, d=4, N=40):
    torch.manual_seed(0)
    m = randomise_(get_mixer("baseconv_autocorrelation", d, N, **kw))
    if "sharpness" in kw:
        assert m.beta.requires_grad
    return m


@pytest.mark.parametrize("kw", VARIANTS, ids=str)
@pytest.mark.parametrize("n", [20, 37])
def test_autocorrelation_variants_match_naive_reference(kw, n):
    m = variant(kw)
    u = torch.randn(2, n, 4, generator=torch.Generator().manual_seed(5))  # continuous: no tied lags
    assert torch.allclose(m(u), m.forward_reference(u), atol=1e-10, rtol=1e-10)
    plain = variant({})
    with torch.no_grad():  # same weights, plain filter: the variant changes the output
        for name, p in plain.named_parameters():
            p.copy_(dict(m.named_parameters())[name])
    assert not torch.allclose(m(u), plain(u))


@pytest.mark.parametrize("kw", VARIANTS, ids=str)
def test_autocorrelation_variants_are_causal(kw):
    m = variant(kw)
    u = torch.randn(2, 24, 4, generator=torch.Generator().manual_seed(6))
    u2 = u.clone()
    i = 13
    u2[:, i + 1 :] = torch.randn_like(u2[:, i + 1 :])
    y, y2 = m(u), m(u2)
    assert torch.allclose(y[:, : i + 1], y2[:, : i + 1], atol=1e-12)
    assert not torch.allclose(y[:, i + 1 :], y2[:, i + 1 :])
    assert torch.allclose(m(u[:, : i + 1]), y[:, : i + 1], atol=1e-10)


def test_autocorrelation_weights_hand_case():
    r = torch.tensor([[0.0, 0.2, -0.5, 0.9, 0.2, 0.1]])  # rho_p for p = 6, lag 0 unused
    top2 = get_mixer("baseconv_autocorrelation", 2, 8, top_k=2)
    assert top2.weights(r).tolist() == [[0.0, 0.2, 0.0, 0.9, 0.0, 0.0]]  # lags 3 and 1 (tie 1 vs 4: smaller lag)
    assert get_mixer("baseconv_autocorrelation", 2, 8, top_k=9).weights(r).tolist() == [[0.0, 0.2, -0.5, 0.9,
                                                                                         0.2, 0.1]]
    sharp = get_mixer("baseconv_autocorrelation", 2, 8, sharpness=3.0)
    e = torch.exp(3.0 * r[0, 1:])
    assert torch.allclose(sharp.weights(r)[0, 1:], e / e.sum()) and sharp.weights(r)[0, 0] == 0
    both = get_mixer("baseconv_autocorrelation", 2, 8, top_k=2, sharpness=3.0)
    w = both.weights(r)[0]
    assert w[2] == w[4] == w[5] == 0 and torch.isclose(w[1] + w[3], torch.tensor(1.0, dtype=w.dtype))
    assert torch.isclose(w[3] / w[1], torch.exp(torch.tensor(3.0 * 0.7, dtype=w.dtype)))


def test_learned_sharpness_gets_a_gradient():
    m = variant(dict(sharpness=1.0))
    u = torch.randn(2, 20, 4, generator=torch.Generator().manual_seed(7))
    m(u).sum().backward()
    assert m.beta.grad is not None and m.beta.grad.abs() > 0


@pytest.mark.parametrize("kw", [dict(top_k=0), dict(top_k=2.5), dict(sharpness=float("inf")), dict(sharpness="x")],
                         ids=str)
def test_autocorrelation_variant_bad_arguments(kw):
    with pytest.raises(ValueError, match=next(iter(kw)) + "="):
        get_mixer("baseconv_autocorrelation", 4, 16, **kw)


@pytest.mark.parametrize("kw", VARIANTS, ids=str)
def test_autocorrelation_variant_flops_are_the_plain_filters(kw):
    m, plain = get_mixer("baseconv_autocorrelation", 8, 64, **kw), get_mixer("baseconv_autocorrelation", 8, 64)
    u = torch.randn(1, 37, 8)
    assert m.flops_per_token(37) == plain.flops_per_token(37)
    assert count_flops(m, u) / 37 == pytest.approx(m.flops_per_token(37), rel=1e-6, abs=1.0)


# --- the programmatic filter as an oracle (hand-set, untrained) ----------------------------------------------
def test_hand_set_programmatic_reads_the_value_after_the_key():
    from mqar_theory.sweep.oracle import hand_set_programmatic

    torch.manual_seed(0)
    model = LanguageModel(vocab_size=16, d_model=8, seq_len=10, n_layers=2, mixer=["baseconv", "baseconv_programmatic"],
                          mixer_kwargs=[{"kernel_size": 3}, {}], init_std=0.1)
    hand_set_programmatic(model, gain=10.0)
    x = torch.tensor([[3, 12, 5, 9, 0, 5, 0, 3, 0, 0]])  # keys 3, 5; queries 5@5 and 3@7
    with torch.no_grad():
        e = model.embedding(x)
        b1, b2 = model.blocks
        assert torch.all(b1.mixer(b1.norm1(e)) == 0)  # layer 1 switched off
        y = b2.mixer(b2.norm1(e), tokens=x)
        assert torch.allclose(y[0, 5], 10.0 * b2.norm1(e)[0, 3]) and torch.allclose(y[0, 7], 10.0 * b2.norm1(e)[0, 1])
        assert torch.all(y[0, :5] == 0)  # no earlier occurrence (the filler 0 at 4 is its first)
    with pytest.raises(ValueError, match="gain="):
        hand_set_programmatic(model, gain=0)
    with pytest.raises(ValueError, match="model:"):
        hand_set_programmatic(LanguageModel(vocab_size=16, d_model=8, seq_len=10, mixer="baseconv"))


def test_programmatic_oracle_accuracy_grows_with_width_without_training():
    from mqar_theory.sweep.oracle import programmatic_oracle_accuracy

    kw = dict(vocab_size=64, seq_len=32, num_kv_pairs=2, num_test=200)
    narrow, wide = programmatic_oracle_accuracy(d_model=4, **kw), programmatic_oracle_accuracy(d_model=32, **kw)
    assert narrow < wide == 1.0  # decoding a random embedding among 64 tokens: hard at d = 4, exact at d = 32
    assert narrow > 1 / 32  # but far above chance without any training


def test_oracle_table_and_its_lines_on_the_width_figure():
    import pandas as pd

    from mqar_theory.sweep.figures import plot_accuracy_vs_width
    from mqar_theory.sweep.oracle import add_oracle_lines, oracle_table

    spec = {"name": "t", "base": {"vocab_size": 16, "num_test": 32, "init_std": 0.1},
            "models": {"baseconv_programmatic": {"mixer": ["baseconv", "baseconv_programmatic"], "n_layers": 2,
                                                 "mixer_kwargs": [{"kernel_size": 3}, {}]},
                       "baseconv": {"mixer": "baseconv"}},
            "axes": {"task": [[16, 2]], "d_model": [4, 8]}}
    o = oracle_table(spec)
    assert list(o["d_model"]) == [4, 8] and o["oracle_accuracy"].between(0, 1).all()
    best = pd.DataFrame([dict(model="baseconv", mixer="baseconv", seq_len=16, d_model=d, seed=0, test_accuracy=0.2)
                         for d in (4, 8)])
    fig = add_oracle_lines(plot_accuracy_vs_width(best), o)
    assert any(ln.get_linestyle() == "--" for ln in fig.axes[0].lines)
    assert "programmatic, hand-set (untrained)" in [t.get_text() for t in fig.legends[0].get_texts()]
    with pytest.raises(ValueError, match="no \\[baseconv, baseconv_programmatic\\] model"):
        oracle_table({**spec, "models": {"baseconv": {"mixer": "baseconv"}}})
