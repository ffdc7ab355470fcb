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
