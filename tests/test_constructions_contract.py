"""The contract every registered construction keeps (``constructions.BUILDERS``), checked in one place.

Exact against the dictionary oracle on every make_mqar-shaped sequence for c <= 8 and N <= 8 (one model
built for N = 8 reads every shorter length, and a model built for each length), and on random
make_mqar instances; causal; frozen hand-set weights that move with ``.double()`` / ``.float()``;
sizes measured equal to the closed forms; an explicit program (encode, listed layers, decode) whose
encode and decode are position-wise; bad arguments refused by name.
Construction-specific checks live in each one's file.
"""

import pytest
import torch
from conftest import all_mqar_sequences
from torch import nn

from mqar_theory.bounds import measure_sizes, position_wise_violations
from mqar_theory.constructions import BUILDERS, Construction, MixerLayer, expected_answers, run_layers
from mqar_theory.data import IGNORE_INDEX, make_mqar

NAMES = sorted(BUILDERS)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c", [4, 6, 8])
def test_exhaustive_make_mqar_sequences(name, c):
    built = BUILDERS[name](c, 8).double()  # one model for every length 4 .. 8
    for n in range(4, 9):
        X = all_mqar_sequences(c, n)
        expected = expected_answers(X, c)
        assert (expected >= c // 2).any()  # queries with answers are present
        assert torch.equal(built.predict(X), expected), (name, c, n)
        assert torch.equal(BUILDERS[name](c, n).double().predict(X), expected), (name, c, n)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c,N,K", [(16, 32, 4), (64, 64, 16), (256, 64, 3)])
def test_random_make_mqar_matches_oracle_and_labels(name, c, N, K):
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=24, seed=11)
    pred = BUILDERS[name](c, N).double().predict(data.inputs)
    assert torch.equal(pred, expected_answers(data.inputs, c))
    lab = data.labels != IGNORE_INDEX
    assert torch.equal(pred[lab], data.labels[lab])


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    c, N = 32, 32
    model = BUILDERS[name](c, N).double()
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=6, num_examples=8, seed=3).inputs
    base = model.predict(x)
    gen = torch.Generator().manual_seed(0)
    for i in (9, 15, 24):
        y = x.clone()
        y[:, i + 1 :] = torch.randint(0, c, (x.shape[0], N - i - 1), generator=gen)
        assert torch.equal(model.predict(y)[:, : i + 1], base[:, : i + 1]), (name, i)


@pytest.mark.parametrize("name", NAMES)
def test_frozen_weights_dtypes_and_sizes(name):
    model = BUILDERS[name](16, 16)
    assert isinstance(model, Construction)
    assert all(not p.requires_grad for p in model.parameters())
    x = make_mqar(vocab_size=16, seq_len=16, num_kv_pairs=3, num_examples=4, seed=1).inputs
    for dtype in (torch.float64, torch.float32):
        model = model.to(dtype)
        assert model.dtype == dtype
        assert torch.equal(model.predict(x), expected_answers(x, 16))
    assert torch.equal(model.predict(x[0]), model.predict(x[:1]))  # (N,) reads as a batch of one
    s = measure_sizes(model, x)
    want = type(model).closed_form(16, 16, s.get("t_filters"))
    assert {q: s[q] for q in want} == want and s["params"] > 0 and s["layers"] >= 1 and s["width"] >= 1
    assert s["fixed_mismatch"] == 0 and s["fixed"] >= 0
    assert f"c=16, N=16, layers={len(model.layers)}, width=" in repr(model)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("c,N,param", [(7, 16, "vocab_size"), (2, 16, "vocab_size"), (16, 3, "seq_len")])
def test_bad_arguments_name_the_parameter(name, c, N, param):
    with pytest.raises(ValueError, match=param):
        BUILDERS[name](c, N)


@pytest.mark.parametrize("name", NAMES)
def test_bad_tokens_name_the_parameter(name):
    model = BUILDERS[name](16, 8)
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.zeros(1, 9, dtype=torch.long))  # longer than built
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.full((1, 8), 16))  # outside the vocabulary


@pytest.mark.parametrize("name", NAMES)
def test_program_contract_trace_predict_and_repr(name):
    model = BUILDERS[name](16, 20).double()
    x = make_mqar(vocab_size=16, seq_len=20, num_kv_pairs=4, num_examples=3, seed=2).inputs
    assert isinstance(model.layers, nn.ModuleList) and all(isinstance(m, MixerLayer) for m in model.layers)
    assert model.c == 16 and model.N == 20
    for row in x:
        streams = model.trace(row)
        prog = model.program(row[None])
        assert len(streams) == len(prog) + 1 and streams[0].shape[:2][0] == 1
        assert torch.equal(streams[0], model.encode(row))
        assert all(torch.equal(a, b) for a, b in zip(streams, run_layers(prog, model.encode(row)), strict=True))
        assert torch.equal(model.decode(streams[-1])[:, : x.shape[1]], model.predict(row))
    assert model.predict(x).shape == x.shape
    assert repr(model).startswith(type(model).__name__ + "(c=16, N=20, layers=")


@pytest.mark.parametrize("name", NAMES)
def test_encode_and_decode_are_position_wise(name):
    """Perturb position j of the tokens (encode) or of the final stream (decode): only output j changes."""
    model = BUILDERS[name](16, 24).double()
    x = make_mqar(vocab_size=16, seq_len=24, num_kv_pairs=5, num_examples=2, seed=3).inputs
    for row in x:
        assert position_wise_violations(model, row, positions=24) == []


def test_position_wise_check_sees_a_mixing_decode():
    model = BUILDERS["attention_h27"](16, 24).double()
    x = make_mqar(vocab_size=16, seq_len=24, num_kv_pairs=5, num_examples=1, seed=3).inputs
    dec = model.decode
    model.decode = lambda v: dec(v.cumsum(1))
    assert position_wise_violations(model, x, positions=24)
