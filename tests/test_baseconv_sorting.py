"""The sorting-network BaseConv (Thm 4.4's Õ(N log c) parameters): exactness against the dictionary
oracle on exhaustive and random inputs, causality, shorter inputs, float32, every layer against
eq. (1) on its dense weights, the mechanism (sort order, identities), counts and growth, errors."""

import itertools
import math

import pytest
import torch
from conftest import all_mqar_sequences

from mqar_theory.bounds import measure_sizes
from mqar_theory.constructions.base import expected_answers
from mqar_theory.constructions.baseconv_data_independent import data_independent_counts
from mqar_theory.constructions.baseconv_sorting import (
    BaseConvSorting,
    baseconv_sorting,
    bitonic_stages,
    sorting_counts,
)
from mqar_theory.data import IGNORE_INDEX, make_mqar
from mqar_theory.mixers import baseconv, baseconv_direct


@pytest.fixture(scope="module")
def model8():
    return baseconv_sorting(8, 8)


# ---------------------------------------------------------------------------------------------
# exactness
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c,n", [(4, 6), (6, 5), (8, 4), (4, 5)])
def test_exhaustive_every_sequence(c, n):
    """Every sequence over [0, c)^n (keys repeated 3+ times, inconsistent dictionaries, keys right
    after each other): the scan propagates the *first* occurrence, so it is mqar_oracle everywhere."""
    X = torch.tensor(list(itertools.product(range(c), repeat=n)))
    expected = expected_answers(X, c)
    got = baseconv_sorting(c, n).predict(X)
    assert torch.equal(got, expected)
    # the inputs do contain keys whose earlier occurrences have different successors
    assert any(len({r[j + 1] for j in range(i) if r[j] == r[i]}) > 1
               for r in X[:500].tolist() for i in range(n))


@pytest.mark.parametrize("c,N,K", [(16, 16, 4), (34, 64, 16), (64, 64, 16), (256, 128, 32),
                                   (1024, 200, 50), (12, 40, 5)])
def test_random_make_mqar(c, N, K):
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=16, seed=N + K)
    pred = baseconv_sorting(c, N).predict(data.inputs)
    assert torch.equal(pred, expected_answers(data.inputs, c))
    labelled = data.labels != IGNORE_INDEX
    assert labelled.sum() == 16 * K
    assert torch.equal(pred[labelled], data.labels[labelled])


def test_random_filler_and_arbitrary_tokens():
    c, N = 16, 32
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=6, num_examples=32, seed=3, random_non_queries=True)
    model = baseconv_sorting(c, N)
    assert torch.equal(model.predict(data.inputs), expected_answers(data.inputs, c))
    labelled = data.labels != IGNORE_INDEX
    assert torch.equal(model.predict(data.inputs)[labelled], data.labels[labelled])
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 6, (64, N), generator=g) * (torch.rand(64, N, generator=g) < 0.8)  # many repeats
    assert torch.equal(model.predict(X), expected_answers(X, c))


def test_long_sequence_largest_k():
    """N = c = 1024 at the largest K = N/4 (a few seconds on CPU)."""
    data = make_mqar(vocab_size=1024, seq_len=1024, num_kv_pairs=256, num_examples=2, seed=5)
    model = baseconv_sorting(1024, 1024)
    pred = model.predict(data.inputs)
    assert torch.equal(pred, expected_answers(data.inputs, 1024))
    assert len(model.layers) == 962 and model.width == 145


# ---------------------------------------------------------------------------------------------
# causality, shorter inputs, float32
# ---------------------------------------------------------------------------------------------
def test_causal_as_a_function():
    """Internally the stack reads ahead (successor shift, sorts); the answer at i never does."""
    c, N = 8, 16
    model = baseconv_sorting(c, N)
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, c, (24, N), generator=g)
    base = model.predict(X)
    for i in range(N - 1):
        Y = X.clone()
        Y[:, i + 1:] = torch.randint(0, c, (24, N - i - 1), generator=g)
        assert torch.equal(model.predict(Y)[:, : i + 1], base[:, : i + 1]), i


def test_shorter_inputs():
    c, N = 16, 21  # N' = 32: every input is padded
    model = baseconv_sorting(c, N)
    data = make_mqar(vocab_size=c, seq_len=20, num_kv_pairs=5, num_examples=8, seed=2)
    full = model.predict(data.inputs)
    for n in range(4, 21):
        x = data.inputs[:, :n]
        assert torch.equal(model.predict(x), full[:, :n])
        assert torch.equal(model.predict(x), expected_answers(x, c))
    assert model.predict(data.inputs[0]).shape == (1, 20)  # a single (N,) sequence


def test_float32_exact_with_margin(model8):
    c = 8
    X = all_mqar_sequences(c, 8)
    m32 = baseconv_sorting(c, 8, dtype=torch.float32)
    assert torch.equal(m32.predict(X), expected_answers(X, c))
    margins = m32.margin(X)
    print(f"float32 margin min {margins.min().item()}")
    assert torch.equal(margins, torch.full_like(margins, 0.5))  # every output channel exactly 0 or 1
    data = make_mqar(vocab_size=512, seq_len=256, num_kv_pairs=64, num_examples=4, seed=0)
    big = baseconv_sorting(512, 256, dtype=torch.float32)
    assert torch.equal(big.predict(data.inputs), expected_answers(data.inputs, 512))
    assert big.margin(data.inputs).min().item() == 0.5
    s64 = model8.map_final(X, model8.scores)
    assert torch.equal(s64, s64.round()) and set(s64.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------------------------------------
# the layers are eq. (1); the mechanism
# ---------------------------------------------------------------------------------------------
def test_each_layer_is_eq1_on_dense_weights():
    model = baseconv_sorting(6, 7)  # N' = 8
    X = torch.tensor([[1, 4, 2, 5, 1, 0, 2], [2, 3, 2, 0, 2, 1, 1], [0, 0, 1, 5, 1, 4, 1]])
    streams = model.trace(X)
    assert len(streams) == len(model.layers) + 1
    for i, (W, b1, b2, h, cyclic) in enumerate(model.dense_layers()):
        u = streams[i]  # (B, N', d)
        fast = baseconv(u, W, b1, b2, h, cyclic=cyclic)
        assert torch.allclose(fast, streams[i + 1], atol=1e-9), model.layers[i].name
        if i % 7 == 0 or cyclic and i < 20:
            assert torch.allclose(baseconv_direct(u, W, b1, b2, h, cyclic=cyclic), streams[i + 1], atol=1e-12)


def test_structure_data_independent_weights(model8):
    """Only layer 0 has position-dependent biases (the row bits and the first direction mask); every
    filter is one impulse per channel (a shift); the fetches are the only long cyclic shifts."""
    P, S = model8.P, len(bitonic_stages(model8.P))
    for i, layer in enumerate(model8.layers):
        assert (layer.b1_chan.numel() > 0) == (i == 0)
        assert layer.b1.shape == layer.b2.shape == (1, model8.width)
        if layer.h_chan.numel():
            assert layer.h_chan.unique().numel() == layer.h_chan.numel()  # one tap per channel
    assert model8.layers[0].b1_chan.numel() == P + 1
    names = [layer.name for layer in model8.layers]
    assert sum("fetch" in n for n in names) == 2 * S
    assert [layer.name for layer in model8.layers if layer.cyclic] == \
        ["successor + fan-out"] + [n for n in names if "fetch" in n]


def test_identities():
    for x, y, w in itertools.product((0, 1), repeat=3):
        assert (1 - x - y) * (1 - 2 * x) == int(x == y)
        assert (y - w) * (1 - (x + w)) == w * x * (1 - y) + (1 - w) * (1 - x) * y


def test_bitonic_stages_sort():
    """The stage schedule, simulated on integers with w(i) = [bit_k(i) = bit_q(i)], sorts."""
    g = torch.Generator().manual_seed(0)
    for P in (2, 3, 5):
        for _ in range(20):
            a = torch.randperm(2**P, generator=g).tolist()
            for q, k in bitonic_stages(P):
                b = list(a)
                for i in range(2**P):
                    j, keep_min = i ^ (1 << k), ((i >> k) & 1) == ((i >> q) & 1)
                    b[i] = min(a[i], a[j]) if keep_min else max(a[i], a[j])
                a = b
            assert a == sorted(a)


def test_sort_one_orders_rows_by_token_then_position(model8):
    """The stream entering "look back" holds the records sorted by (token, position), each with its
    successor token: the derivation's invariant after sort 1."""
    X = torch.tensor([[3, 5, 1, 6, 3, 0, 1, 3], [2, 7, 2, 7, 2, 0, 0, 1]])
    idx = [layer.name for layer in model8.layers].index("look back")
    v = model8.trace(X)[idx]  # (B, N', d)

    def bits(groups):
        val = sum((v[..., g.X] + v[..., g.Lo] + v[..., g.Hi]) * 2**j for j, g in enumerate(groups))
        assert torch.equal(val, val.round())
        return val.long()

    tok, pos, suc = bits(model8.tok), bits(model8.pos), bits(model8.suc)
    for r in range(X.shape[0]):
        row = X[r].tolist()
        order = sorted(range(8), key=lambda i: (row[i], i))
        assert pos[r].tolist() == order
        assert tok[r].tolist() == [row[i] for i in order]
        assert suc[r].tolist() == [row[(i + 1) % 8] for i in order]


# ---------------------------------------------------------------------------------------------
# counts and growth
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c,N", [(4, 4), (6, 5), (8, 8), (64, 64), (16, 200), (1024, 64)])
def test_counts_match_the_built_model(c, N):
    model = baseconv_sorting(c, N)
    k = sorting_counts(c, N)
    b, P = math.ceil(math.log2(c)), math.ceil(math.log2(N))
    S = P * (P + 1) // 2
    sizes = measure_sizes(model, torch.zeros(1, N, dtype=torch.long))
    assert k["layers"] == sizes["layers"] == len(model.layers)
    T1, T2, Tb = math.ceil(math.log2(b + P)), math.ceil(math.log2(P)), math.ceil(math.log2(b))
    assert k["layers"] == S * (T1 + T2 + 8) + Tb + 2 * P + 3
    assert k["width"] == sizes["width"] == model.width == 8 * b + 6 * P + 5
    assert k["nnz_W"] == sum(layer.W_val.numel() for layer in model.layers)
    assert k["nnz_h"] == sum(layer.h_val.numel() for layer in model.layers)
    assert k["params"] == sizes["values"]
    assert sizes["params"] == k["params"] + k["index"] + b + 5 == BaseConvSorting.closed_form(c, N)["params"]
    assert k["fixed"] == sizes["fixed"] and k["index"] == sizes["index"] and sizes["fixed_mismatch"] == 0
    assert k["dense_params"] == model.dense_num_parameters and model.padded_len == 2**P


def test_params_are_n_log_c_polylog_while_all_distances_grows_like_n():
    """params / (N·log2 c·log2(N c)²) stays bounded (decreases) for the sorting construction, while
    the all-distances construction's params / (N log2 c) grows like N."""
    c = 1024
    Ns = [64, 256, 1024, 4096, 2**14, 2**16]
    sort_ratio = [sorting_counts(c, N)["params"] / (N * math.log2(c) * math.log2(N * c) ** 2) for N in Ns]
    di_ratio = [data_independent_counts(c, N)["params"] / (N * math.log2(c)) for N in Ns[:4]]
    assert all(a >= b for a, b in zip(sort_ratio, sort_ratio[1:], strict=False)) and sort_ratio[0] < 1
    sort_lin = [sorting_counts(c, N)["params"] / (N * math.log2(c)) for N in Ns]
    assert sort_lin[-1] < 4  # → (P + 1)/b: the position code dominates at large N
    assert all(b / a > 3 for a, b in zip(di_ratio, di_ratio[1:], strict=False))  # ×4 in N, ~×4 ratio
    # layers grow like log² N · log log(cN), width like log c + log N
    for cc in (4, 1024, 2**16):
        for N in [4, *Ns, 2**20]:
            k = sorting_counts(cc, N)
            P = math.log2(N)
            ratio = k["layers"] / (P * P * math.log2(math.log2(cc * N)))
            assert ratio <= (6 if N < 64 else 3), (cc, N, ratio)
            assert k["width"] == 8 * math.log2(cc) + 6 * P + 5


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,kwargs,match", [
    ((7, 8), {}, "vocab_size"), ((2, 8), {}, "vocab_size"), ((8, 3), {}, "seq_len"),
    ((8.0, 8), {}, "vocab_size"), ((8, 8), {"threshold": 1.5}, "threshold"),
    ((8, 8), {"dtype": torch.int64}, "dtype"),
])
def test_value_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        baseconv_sorting(*args, **kwargs)


def test_bad_tokens(model8):
    with pytest.raises(ValueError, match="tokens"):
        model8.predict(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="tokens"):
        model8.predict(torch.tensor([[0, 1, 8, 2]]))
    assert isinstance(model8, BaseConvSorting)
