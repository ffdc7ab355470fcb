"""The data-independent BaseConv construction: exactness against the dictionary
oracle, causality, shorter inputs, float32, the layer stack against eq. (1), and its counts."""

import itertools
import math

import pytest
import sympy as sp
import torch

from mqar_theory.bounds import measure_sizes
from mqar_theory.constructions.base import expected_answers
from mqar_theory.constructions.baseconv_data_independent import (
    BaseConvDataIndependent,
    baseconv_data_independent,
    data_independent_counts,
)
from mqar_theory.data import IGNORE_INDEX, make_mqar
from mqar_theory.mixers import baseconv, baseconv_direct


def SC(model, x):
    """(B, n, b+1) scores (Y_0 .. Y_{b-1}, M): the shared group of the runner's final stream."""
    return model.map_final(x, model.scores)


def consistent_positions(x: torch.Tensor, c: int) -> torch.Tensor:
    """(B, N) bool: positions where Definition 3.1 is unambiguous (every earlier occurrence of the
    token was followed by the same token, or there is none), by a direct scan."""
    out = torch.ones_like(x, dtype=torch.bool)
    for r, row in enumerate(x.tolist()):
        for i, tok in enumerate(row):
            out[r, i] = len({row[j + 1] for j in range(i) if row[j] == tok}) <= 1
    return out


def match_reference(x: torch.Tensor, s: int) -> torch.Tensor:
    """m_s[i] = [x_i = x_{i-s}], a position before the start reading as token 0 (the padding)."""
    prev = torch.zeros_like(x)
    prev[:, s:] = x[:, :-s]
    return (x == prev).double()


# ---------------------------------------------------------------------------------------------
# exactness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c,n", [(4, 6), (6, 5), (8, 4)])
def test_exhaustive_every_consistent_sequence(c, n):
    """Every sequence over [0, c)^n, keys anywhere (odd positions, repeated, right after each
    other): exact wherever the dictionary is consistent, which covers several earlier matches."""
    X = torch.tensor(list(itertools.product(range(c), repeat=n)))
    ok = consistent_positions(X, c)
    model = baseconv_data_independent(c, n)
    pred, expected = model.predict(X), expected_answers(X, c)
    assert torch.equal(pred[ok], expected[ok])
    M = SC(model, X)[..., model.bits]
    assert (M[ok] >= 2).any()  # some key has two or more earlier occurrences


def test_inconsistent_dictionary_shows_as_zero_margin():
    """Outside the consistent case (Definition 3.1 with repeated keys) the sum over matches mixes the two
    successors: the tie shows as a zero margin, while a single earlier match keeps margin 1/2."""
    model = baseconv_data_independent(8, 5)
    x = torch.tensor([[1, 4, 1, 5, 1]])  # key 1 followed first by 4, then by 5
    margin = model.margin(x)[0]
    assert model.predict(x)[0, 2] == 4 and margin[2] == 0.5
    assert margin[4] == 0.0  # Y_0 = a_0(4) + a_0(5) = 0


@pytest.mark.parametrize(
    "c,N,K,power_a",
    [(16, 32, 4, 0.01), (64, 64, 8, 1.0), (10, 64, 4, 0.01), (256, 128, 32, 0.01), (1024, 128, 20, 1.0),
     (6, 32, 2, 1.0)],
)
def test_random_make_mqar(c, N, K, power_a):
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=24, power_a=power_a, seed=c + N)
    model = baseconv_data_independent(c, N)
    pred = model.predict(data.inputs)
    assert torch.equal(pred, expected_answers(data.inputs, c))
    labelled = data.labels != IGNORE_INDEX
    assert torch.equal(pred[labelled], data.labels[labelled])
    assert torch.all(model.margin(data.inputs) == 0.5)  # one match per query: exact scores


def test_long_sequence_one_instance():
    data = make_mqar(vocab_size=64, seq_len=512, num_kv_pairs=31, num_examples=2, seed=3)
    model = baseconv_data_independent(64, 512)
    assert torch.equal(model.predict(data.inputs), expected_answers(data.inputs, 64))


def test_random_filler_exact_where_consistent():
    data = make_mqar(vocab_size=64, seq_len=64, num_kv_pairs=8, num_examples=16, random_non_queries=True,
                     seed=5)
    x = data.inputs
    ok = consistent_positions(x, 64)
    pred, expected = baseconv_data_independent(64, 64).predict(x), expected_answers(x, 64)
    is_key = (x >= 1) & (x < 32)
    assert (ok & is_key & (expected >= 0)).sum() > 8 * 16  # beyond the labelled queries
    assert torch.equal(pred[ok], expected[ok])


def test_shorter_inputs_and_prefixes():
    model = baseconv_data_independent(32, 64)
    for n in (4, 16, 34, 48):
        data = make_mqar(vocab_size=32, seq_len=n, num_kv_pairs=max(1, n // 8), num_examples=8, seed=n)
        assert torch.equal(model.predict(data.inputs), expected_answers(data.inputs, 32)), n
    x = torch.randint(0, 32, (6, 64), generator=torch.Generator().manual_seed(0))
    full = SC(model, x)
    for n in (1, 5, 33, 64):
        assert torch.equal(SC(model, x[:, :n]), full[:, :n]), n


def test_causal():
    c, N = 16, 40
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, c, (8, N), generator=g)
    model = baseconv_data_independent(c, N)
    scores, pred = SC(model, x), model.predict(x)
    for i in (0, 3, 17, 38):
        y = x.clone()
        y[:, i + 1 :] = torch.randint(0, c, (8, N - i - 1), generator=g)
        assert not torch.equal(y, x)
        assert torch.equal(SC(model, y)[:, : i + 1], scores[:, : i + 1]), i
        assert torch.equal(model.predict(y)[:, : i + 1], pred[:, : i + 1]), i


@pytest.mark.parametrize("c,N", [(1024, 128), (16, 256)])
def test_float32_margins(c, N):
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=min(16, c // 2 - 1), num_examples=8, seed=7)
    model = baseconv_data_independent(c, N).float()
    assert model.dtype == torch.float32
    assert torch.equal(model.predict(data.inputs), expected_answers(data.inputs, c))
    margin = model.margin(data.inputs)
    print(f"float32 margin c={c} N={N}: min {float(margin.min()):.6g}")
    assert float(margin.min()) > 0.499  # integers and halves: float32 is exact here


def test_chunking_does_not_change_scores():
    data = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=10, seed=2)
    whole = baseconv_data_independent(16, 32)(data.inputs)
    sliced = baseconv_data_independent(16, 32, chunk_elements=1)(data.inputs)
    assert torch.equal(whole, sliced)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float32():
    data = make_mqar(vocab_size=1024, seq_len=256, num_kv_pairs=32, num_examples=4, seed=9)
    model = baseconv_data_independent(1024, 256).to("cuda", torch.float32)
    pred = model.predict(data.inputs.cuda()).cpu()
    assert torch.equal(pred, expected_answers(data.inputs, 1024))
    assert float(model.margin(data.inputs.cuda()).min()) > 0.499


# ---------------------------------------------------------------------------------------------
# the layer stack is eq. (1) with data-independent weights
# ---------------------------------------------------------------------------------------------


def test_each_layer_is_baseconv_on_its_dense_weights():
    model = baseconv_data_independent(8, 8)
    u = torch.randn(3, 8, model.width, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for layer, (W, b1, b2, h) in zip(model.layers, model.dense_layers(), strict=True):
        assert W.shape == (model.width, model.width) and b1.shape == b2.shape == h.shape == (8, model.width)
        ref = baseconv_direct(u, W, b1, b2, h)
        torch.testing.assert_close(layer(u), ref, rtol=0, atol=1e-12)
        short = baseconv_direct(u[:, :5], W, b1, b2, h)  # a shorter input uses the first rows
        torch.testing.assert_close(layer(u[:, :5]), short, rtol=0, atol=1e-12)


def test_dense_stack_reproduces_the_scores():
    model = baseconv_data_independent(8, 8)
    x = torch.randint(0, 8, (32, 8), generator=torch.Generator().manual_seed(4))
    u = model.encode(x)
    for W, b1, b2, h in model.dense_layers():
        u = baseconv(u, W, b1, b2, h)  # the FFT path of mixers.baseconv
    torch.testing.assert_close(u[..., : model.slots], SC(model, x), rtol=0, atol=1e-9)


def test_general_filter_falls_back_to_the_fft_convolution():
    model = baseconv_data_independent(8, 8)
    layer = model.layers[1]  # bit products: one impulse per channel
    with torch.no_grad():
        layer.h[0, 5] = 0.25  # a second tap on a channel: no longer a pure shift
        layer.h[3, 7] = -1.5
    W, b1, b2, h = layer.dense()
    assert h[0, 5] == 0.25 and h[3, 7] == -1.5
    u = torch.randn(2, 8, model.width, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(layer(u), baseconv_direct(u, W, b1, b2, h), rtol=0, atol=1e-10)


def test_filters_are_impulses_at_the_shift_distances():
    model = baseconv_data_independent(8, 8)
    b, N = model.bits, 8
    layers = dict(zip([layer.name for layer in model.layers], model.dense_layers(), strict=True))
    h_prod, h_val = layers["bit products"][3], layers["value gate"][3]
    for s in range(1, N):
        for j in range(b):
            expected = torch.zeros(N, dtype=torch.float64)
            expected[s] = 2.0
            assert torch.equal(h_prod[:, int(model.ch(s, j))], expected)
            expected = torch.zeros(N, dtype=torch.float64)
            expected[s - 1] = 2.0
            assert torch.equal(h_val[:, int(model.ch(s, 1 + j))], expected)
    for _, b1, b2, _ in model.dense_layers():  # biases do not depend on the position
        assert torch.equal(b1, b1[:1].expand_as(b1)) and torch.equal(b2, b2[:1].expand_as(b2))


def test_intermediate_streams_follow_the_derivation():
    c, N = 16, 12
    model = baseconv_data_independent(c, N)
    x = torch.randint(0, c, (20, N), generator=torch.Generator().manual_seed(6))
    x[:, 6] = x[:, 2]  # make sure some matches occur
    streams = model.trace(x)
    assert len(streams) == len(model.layers) + 1
    b, T = model.bits, model.tree_levels
    after_tree = streams[2 + T]  # output of the last tree level
    value_gate = streams[3 + T]
    for s in range(1, N):
        m = match_reference(x, s)
        assert torch.equal(after_tree[..., int(model.ch(s, 0))], m), s
        for k in range(b):
            src = torch.zeros_like(x)  # token at i - s + 1, padding 0
            src[:, s - 1 :] = x[:, : N - s + 1]
            a = 2.0 * ((src >> k) & 1).double() - 1
            assert torch.equal(value_gate[..., int(model.ch(s, 1 + k))], m * a), (s, k)
    torch.testing.assert_close(streams[-1][..., : model.slots], SC(model, x), rtol=0, atol=0)
    assert torch.count_nonzero(streams[-1][..., model.slots :]) == 0


def test_sympy_identities():
    x, y, p, q = sp.symbols("x y p q")
    a, a2 = 2 * x - 1, 2 * y - 1  # ±1 codes of the bits x, y
    # the equality test of one bit: (1 + a a')/2 = xy + (1-x)(1-y) = [x = y] on {0,1}
    assert sp.expand((1 + a * a2) / 2 - (x * y + (1 - x) * (1 - y))) == 0
    for xv, yv in itertools.product([0, 1], repeat=2):
        assert ((1 + a * a2) / 2).subs({x: xv, y: yv}) == int(xv == yv)
    # layer 1 as eq. (1): (W u + b1)(h u' + b2) with W = h = 2, b1 = b2 = -1 is a·a'
    assert sp.expand((2 * x - 1) * (2 * y - 1) - a * a2) == 0
    # tree level 1 as eq. (1): (p/2 + 1/2)(q/2 + 1/2) = e(p) e(q) with e = (1 + ·)/2
    assert sp.expand((p / 2 + sp.Rational(1, 2)) * (q / 2 + sp.Rational(1, 2)) - (1 + p) * (1 + q) / 4) == 0
    # value gate: m (2 bit - 1) with a padding bit 0 reads -1 (token 0's code)
    assert (2 * x - 1).subs(x, 0) == -1


# ---------------------------------------------------------------------------------------------
# counts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c,N", [(4, 4), (6, 7), (8, 8), (16, 33), (64, 64), (1000, 20), (1024, 128)])
def test_counts_match_the_formula(c, N):
    model = baseconv_data_independent(c, N)
    f = data_independent_counts(c, N)
    b = math.ceil(math.log2(c))
    assert f["bits"] == model.bits == b and 2**b >= c > 2 ** (b - 1)
    sizes = measure_sizes(model, torch.zeros(1, N, dtype=torch.long))
    assert sizes["layers"] == f["layers"] == len(model.layers)
    assert sizes["width"] == model.width == f["width"] == N * (b + 1)
    assert sizes["values"] == f["params"]
    # params adds the index (positions of W's nonzeros) and the read-out's b + 5 numbers (bounds.observe)
    assert sizes["params"] == f["params"] + f["index"] + b + 5 == BaseConvDataIndependent.closed_form(c, N)["params"]
    assert sizes["fixed"] == f["fixed"] and sizes["index"] == f["index"] and sizes["fixed_mismatch"] == 0
    nnz = sum(layer.W_val.numel() for layer in model.layers)
    assert nnz == f["nnz"] and all(torch.all(layer.W_val != 0) for layer in model.layers)
    assert model.dense_num_parameters == f["dense_params"]
    d, L = f["width"], f["layers"]
    assert f["dense_params"] == L * (d * d + 3 * N * d)
    if N <= 16:  # materialise the dense weights and count them
        assert sum(t.numel() for layer in model.dense_layers() for t in layer) == f["dense_params"]


def test_parameters_grow_like_N_squared_log_c():
    for c in (16, 1024):
        b = math.ceil(math.log2(c))
        ratios = [data_independent_counts(c, N)["params"] / (2 * N * N * (b + 1)) for N in (256, 1024, 4096)]
        assert all(1 < r < 1.1 for r in ratios) and ratios == sorted(ratios, reverse=True), ratios


def test_layers_are_O_log_log_c_and_independent_of_N():
    for c in (4, 6, 8, 16, 64, 256, 1000, 1024, 4096, 65536):
        b = math.ceil(math.log2(c))
        layers = {len(baseconv_data_independent(c, N).layers) for N in (4, 9, 32)}
        assert len(layers) == 1, c  # independent of N
        L = layers.pop()
        assert L == math.ceil(math.log2(b)) + 4
        assert L <= math.log2(math.log2(c)) + 5  # O(log log c)
        assert L >= math.log2(2 * b)  # Based Thm 3.2's lower bound for binary inputs holds
    assert len(baseconv_data_independent(1024, 4).layers) == 8


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------


def test_invalid_arguments():
    for bad in (7, 2, 3, 0, -4, 4.0, True, "8"):
        with pytest.raises(ValueError, match="vocab_size"):
            baseconv_data_independent(bad, 8)
    for bad in (3, 0, -1, 4.5, None):
        with pytest.raises(ValueError, match="seq_len"):
            baseconv_data_independent(8, bad)
    for bad in (0, 1, -0.5, 1.5, True, "x"):
        with pytest.raises(ValueError, match="threshold"):
            baseconv_data_independent(8, 8, bad)
    with pytest.raises(ValueError, match="chunk_elements"):
        baseconv_data_independent(8, 8, chunk_elements=0)
    with pytest.raises(ValueError, match="dtype"):
        baseconv_data_independent(8, 8, dtype=torch.int64)
    model = baseconv_data_independent(8, 8)
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.tensor([[1, 4, 8]]))
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.zeros(1, 9, dtype=torch.long))


def test_interface():
    model = baseconv_data_independent(16, 32)
    assert isinstance(model, BaseConvDataIndependent) and model.name == "baseconv_data_independent"
    assert "Thm 4.4" in model.theorem
    assert all(not p.requires_grad for p in model.parameters())
    x = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=3, seed=0).inputs
    assert SC(model, x).shape == (3, 32, model.bits + 1) and model.predict(x).dtype == torch.long
    assert torch.equal(model.predict(x[0]), model.predict(x[:1]))  # (N,) is one sequence
    assert model.predict(x[:, :0]).shape == (3, 0)
    assert model.double().dtype == torch.float64
