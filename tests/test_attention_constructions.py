"""The two attention constructions: Prop H.27 (linear-bias attention, no softmax) and the
two-layer softmax lookup on binary codes. Reference: ``expected_answers`` (a dictionary lookup)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import all_mqar_sequences

from mqar_theory.bounds import measure_sizes
from mqar_theory.constructions.attention_h27 import attention_h27
from mqar_theory.constructions.attention_softmax import attention_softmax
from mqar_theory.constructions.base import Construction, expected_answers
from mqar_theory.data import IGNORE_INDEX, make_mqar

BUILDERS = {"h27": attention_h27, "softmax": attention_softmax}
builders = pytest.mark.parametrize("name", sorted(BUILDERS))

# The paper's worked example ``A 4 B 3 C 6 F 1 E 2 -> A ? C ? F ? E ? B ?`` (answers 4 6 1 2 3) in
# make_mqar layout with c = 12: letters A B C E F -> keys 1 2 3 4 5, digit k -> value 5 + k, filler 0.
PAPER_C = 12
PAPER_EXAMPLE = torch.tensor([1, 9, 2, 8, 3, 11, 5, 6, 4, 7, 1, 0, 3, 0, 5, 0, 4, 0, 2, 0])
PAPER_ANSWERS = {10: 9, 12: 11, 14: 6, 16: 7, 18: 8}  # query position -> value token (4 6 1 2 3)


def build(name: str, c: int, N: int, **kw) -> Construction:
    return BUILDERS[name](c, N, **kw).double()


def repeated_query_sequences(c: int, N: int) -> torch.Tensor:
    """Context k1 v1 .. kK vK, then every way of filling the query slots 2K, 2K+2, .. with filler or
    any context key (so a key may be queried several times, or never); odd offsets are filler."""
    half, rows = c // 2, []
    for K in range(1, min(half - 1, N // 2) + 1):
        slots = list(range(2 * K, N, 2))
        for keys in itertools.permutations(range(1, half), K):
            for values in itertools.permutations(range(half, c), K):
                for fill in itertools.product((0, *keys), repeat=len(slots)):
                    row = [0] * N
                    row[0 : 2 * K : 2], row[1 : 2 * K : 2] = keys, values
                    for p, t in zip(slots, fill, strict=True):
                        row[p] = t
                    rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


# --- exactness ---------------------------------------------------------------------------------
@builders
def test_repeated_queries_of_a_key(name):
    """Beyond make_mqar: a context key queried several times (the filler after its first query then
    follows a key too) or never; every query still finds the context value."""
    X = repeated_query_sequences(8, 8)
    assert torch.equal(build(name, 8, 8).predict(X), expected_answers(X, 8))


RANDOM_CASES = {
    # (c, N, K, num_examples, power_a): K at its maximum min(c/2 - 1, N/4) in several rows
    "h27": [(4, 16, 1, 64, 0.01), (8, 32, 3, 64, 1.0), (16, 64, 7, 64, 0.01), (64, 128, 31, 16, 0.01),
            (256, 64, 16, 8, 0.5), (1024, 64, 16, 2, 0.01)],
    "softmax": [(4, 16, 1, 64, 0.01), (8, 32, 3, 64, 1.0), (16, 64, 7, 64, 0.01), (64, 128, 31, 16, 0.01),
                (1024, 256, 64, 16, 0.01), (1024, 1024, 256, 2, 1.0), (8192, 256, 32, 4, 0.01)],
}


@pytest.mark.parametrize("name,case", [(n, c) for n in sorted(RANDOM_CASES) for c in RANDOM_CASES[n]])
def test_random_make_mqar(name, case):
    c, N, K, n, a = case
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=n, power_a=a, seed=7 + K)
    model = build(name, c, N)
    pred = model.predict(data.inputs)
    assert torch.equal(pred, expected_answers(data.inputs, c))
    labelled = data.labels != IGNORE_INDEX
    assert labelled.sum() == n * K
    assert torch.equal(pred[labelled], data.labels[labelled])


# --- causality, shapes, dtypes -------------------------------------------------------------------
@builders
def test_causal(name):
    """Replacing every token after position p by arbitrary tokens never changes answers at <= p."""
    c, N = 16, 32
    model = build(name, c, N)
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=6, num_examples=16, seed=3).inputs
    base = model.predict(x)
    g = torch.Generator().manual_seed(0)
    for p in (0, 1, 5, 11, 12, 20, 30):
        y = x.clone()
        y[:, p + 1 :] = torch.randint(0, c, (x.shape[0], N - p - 1), generator=g)
        assert torch.equal(model.predict(y)[:, : p + 1], base[:, : p + 1]), p
        assert torch.equal(model(y)[:, : p + 1], model(x)[:, : p + 1]), p


@builders
def test_shorter_inputs_and_shapes(name):
    c, N = 16, 32
    model = build(name, c, N)
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=5, num_examples=6, seed=1).inputs
    full = model.predict(x)
    assert full.shape == (6, N) and full.dtype == torch.long
    for n in (4, 9, 16, 31):
        assert torch.equal(model.predict(x[:, :n]), full[:, :n])
    one = model.predict(x[2])  # (N,) -> (1, N)
    assert one.shape == (1, N) and torch.equal(one[0], full[2])
    assert model.predict(x[:0]).shape == (0, N)
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.zeros(1, N + 2, dtype=torch.long))
    with pytest.raises(ValueError, match="tokens"):
        model.predict(torch.full((1, 8), c))


@builders
def test_dtypes_and_frozen_weights(name):
    c, N = 16, 32
    model = BUILDERS[name](c, N)
    assert all(not p.requires_grad for p in model.parameters())
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=6, num_examples=32, seed=5).inputs
    p32 = model.float().predict(x)
    assert model.dtype == torch.float32 and model.final_stream(x).dtype == torch.float32
    model.double()
    assert model.dtype == torch.float64 and model.final_stream(x).dtype == torch.float64
    assert all(b.dtype == torch.float64 for b in model.buffers())
    assert torch.equal(model.predict(x), p32)
    assert torch.equal(p32, expected_answers(x, c))


@builders
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(name):
    c, N = 64, 128
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=16, num_examples=32, seed=2).inputs
    model = BUILDERS[name](c, N).to("cuda")
    assert torch.equal(model.predict(x).cpu(), expected_answers(x, c))


# --- float32 margins -------------------------------------------------------------------------------
FLOAT32_GRID = [(8, 16, 2), (64, 128, 31), (256, 256, 64), (1024, 512, 128)]


@builders
def test_float32_margins(name):
    """float32 answers stay exact on a moderate grid; the minimum margins are printed (run with -s)."""
    rows = []
    for c, N, K in FLOAT32_GRID:
        if name == "h27" and c > 256:
            continue  # 54c² float weights: c = 1024 is covered in float64 by test_random_make_mqar
        x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=4, seed=11).inputs
        m32 = BUILDERS[name](c, N).float()
        m64 = BUILDERS[name](c, N).double()
        assert torch.equal(m32.predict(x), expected_answers(x, c))
        mg32, mg64 = m32.margin(x).min().item(), m64.margin(x).min().item()
        rows.append((c, N, K, mg32, mg64))
        assert mg32 > 0.4 and abs(mg32 - mg64) < 1e-4
        if name == "h27":
            assert mg32 == mg64 == 0.5  # integer counts: exact in float32 too
        else:
            assert mg32 >= m64.margin_bound - 1e-5
    for r in rows:
        print(f"{name}: c={r[0]} N={r[1]} K={r[2]} min margin float32={r[3]:.7f} float64={r[4]:.7f}")


# --- sizes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [4, 8, 34, 100])
def test_h27_sizes(c):
    counts = set()
    for N in (4, 16, 64):
        m = attention_h27(c, N)
        s = measure_sizes(m, torch.zeros(1, N, dtype=torch.long))
        assert s["layers"] == len(m.layers) == 2 and s["width"] == m.width == 3 * c
        assert s["fixed"] == 3 * c * c  # the encoding table E; the biases are 3 stored parameters
        assert s["values"] == 54 * c * c + 3  # six (3c)² matrices and r¹, r²
        counts.add(s["params"])
    assert counts == {54 * c * c + 3 + 3}  # + the read-out's gate 1/2, threshold and -1


@pytest.mark.parametrize("c", [4, 6, 8, 100, 1024, 65536])
def test_softmax_sizes(c):
    b = math.ceil(math.log2(c))
    counts, widths = set(), set()
    for N in (4, 64, 4096):
        m = attention_softmax(c, N)
        s = measure_sizes(m, torch.zeros(1, 4, dtype=torch.long))
        assert s["layers"] == len(m.layers) == 2 and m.bits == b
        assert s["fixed"] == c * (4 * b + 2)  # encoding table; the biases r¹, r² are parameters
        counts.add(s["params"])
        widths.add(s["width"])
    # stored 32b² + 24b + 10, and the read-out's b + 7: independent of N
    assert widths == {4 * b + 2} and counts == {32 * b * b + 25 * b + 17}
    assert 4 * math.log2(c) + 2 <= 4 * b + 2 < 4 * math.log2(c) + 6  # O(log c)


def test_softmax_beta_grows_like_log_n():
    m = 3.0
    Ns = [2**k for k in range(2, 21, 2)]
    betas = [attention_softmax(8, N, margin_nats=m).beta for N in Ns]
    for N, beta in zip(Ns, betas, strict=True):
        assert beta == pytest.approx(math.log(N) / 2 + m, rel=1e-12)
    # each factor 4 in N adds ln(4)/2 to beta
    steps = [b2 - b1 for b1, b2 in itertools.pairwise(betas)]
    assert steps == pytest.approx([math.log(4) / 2] * len(steps), rel=1e-12)
    ratios = [beta / math.log(N) for N, beta in zip(Ns, betas, strict=True)]
    assert all(r2 < r1 for r1, r2 in itertools.pairwise(ratios)) and ratios[-1] < 0.75  # -> 1/2
    # the temperature really is in W_Q of layer 2 (bits of the query code scaled by beta)
    model = attention_softmax(8, 1024, margin_nats=m)
    assert model.layers[1].W_Q.abs().max().item() == pytest.approx(2 * model.beta, rel=1e-6)


# --- bad arguments -------------------------------------------------------------------------------
@builders
@pytest.mark.parametrize(
    "args,kw,param",
    [((7, 16), {}, "vocab_size"), ((2, 16), {}, "vocab_size"), ((8.0, 16), {}, "vocab_size"),
     ((8, 3), {}, "seq_len"), ((8, True), {}, "seq_len"), ((8, 16), {"threshold": 0}, "threshold"),
     ((8, 16), {"threshold": 1.5}, "threshold")],
)
def test_bad_arguments(name, args, kw, param):
    with pytest.raises(ValueError, match=param):
        BUILDERS[name](*args, **kw)


@pytest.mark.parametrize("mask", ["prior", "", None])
def test_h27_bad_mask(mask):
    with pytest.raises(ValueError, match="mask"):
        attention_h27(8, 16, mask=mask)


@pytest.mark.parametrize("param", ["margin_nats", "beta1"])
@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan, "4", True])
def test_softmax_bad_constants(param, value):
    with pytest.raises(ValueError, match=param):
        attention_softmax(8, 16, **{param: value})


# --- Prop H.27 specifics: the layers and the erratum ------------------------------------------------
def test_h27_layer1_moves_each_key_onto_its_value_slot():
    c = PAPER_C
    model = attention_h27(c, 20).double()
    u1, O1, O2 = model.layer_outputs(PAPER_EXAMPLE)
    u2 = u1 + O1
    x = PAPER_EXAMPLE.tolist()
    for i in range(1, 20):
        want = torch.zeros(c, dtype=torch.float64)
        if 1 <= x[i - 1] < c // 2:
            want[x[i - 1]] += 1  # the previous key, moved forward
        if 1 <= x[i] < c // 2:
            want[x[i]] += 1  # its own key one-hot
        assert torch.equal(u2[0, i, :c], want), i
    assert torch.equal(u2[..., c:], u1[..., c:])  # value and query blocks untouched
    # layer 2 writes onehot(value) exactly at the query positions, nothing elsewhere
    scores = O2[0, :, c : 2 * c]
    for i in range(20):
        want = torch.zeros(c, dtype=torch.float64)
        if i in PAPER_ANSWERS:
            want[PAPER_ANSWERS[i]] = 1
        assert torch.equal(scores[i], want), i
    assert O2[..., :c].abs().sum() == 0 and O2[..., 2 * c :].abs().sum() == 0


def test_h27_paper_example_and_unmasked_erratum():
    """The printed, unmasked layer 2 reads the future: at position 0 (A, first occurrence, no answer
    yet) it already "answers" 4, the value at position 1. The strict prior mask fixes it."""
    want = torch.full((1, 20), -1)
    for i, v in PAPER_ANSWERS.items():
        want[0, i] = v
    assert torch.equal(expected_answers(PAPER_EXAMPLE[None], PAPER_C), want)
    strict = attention_h27(PAPER_C, 20).double().predict(PAPER_EXAMPLE)
    assert torch.equal(strict, want)
    unmasked = attention_h27(PAPER_C, 20, mask="none").double().predict(PAPER_EXAMPLE)
    assert unmasked[0, 0].item() == 9  # the value "4" of A, read from position 1
    assert torch.equal(unmasked[0, 0:10:2], torch.tensor([9, 8, 11, 6, 7]))  # every context key
    assert torch.equal(unmasked[0, 10:], want[0, 10:])  # queries themselves are still right
    # and it is not causal: changing the value after A changes the answer at position 0
    y = PAPER_EXAMPLE.clone()
    y[1] = 10
    assert attention_h27(PAPER_C, 20, mask="none").double().predict(y)[0, 0].item() == 10


def test_h27_unmasked_fails_on_every_tiny_sequence():
    X = all_mqar_sequences(8, 8)
    wrong = attention_h27(8, 8, mask="none").double().predict(X) != expected_answers(X, 8)
    assert wrong[:, 0].all()  # position 0 always holds k1 and always reads v1 from the future


def test_h27_causal_mask_equals_strict():
    """The diagonal term <query_i, key_i>·value_i is 0 for every token (query block only at keys,
    value block only at values), so "causal" gives the same scores as "strict" on any input."""
    c, N = 8, 24
    strict, causal = attention_h27(c, N).double(), attention_h27(c, N, mask="causal").double()
    g = torch.Generator().manual_seed(1)
    X = torch.cat([torch.randint(0, c, (200, N), generator=g),
                   make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=3, num_examples=50, seed=0).inputs])
    assert torch.equal(strict(X), causal(X))
    T = all_mqar_sequences(8, 8)
    assert torch.equal(attention_h27(8, 8).double()(T), attention_h27(8, 8, mask="causal").double()(T))


def test_h27_margin_is_exactly_half():
    X = all_mqar_sequences(8, 8)
    assert torch.equal(attention_h27(8, 8).double().margin(X), torch.full(X.shape, 0.5, dtype=torch.float64))


# --- softmax specifics -----------------------------------------------------------------------------
def test_softmax_codes_inner_product():
    """<code(x), code(y)> = b - 2·hamming(x, y): b on the diagonal, <= b - 2 off it."""
    c = 64
    model = attention_softmax(c, 8)
    b = model.bits
    codes = model.E[:, b : 2 * b] + model.E[:, :b]  # kcode or vcode: each token's code in one block
    codes[0] = -1.0  # filler has no block; its code would be all -1
    ids = torch.arange(c)
    ham = ((ids[:, None] ^ ids[None, :])[..., None] >> torch.arange(b) & 1).sum(-1)
    assert torch.equal(codes @ codes.T, (b - 2 * ham).float())


def test_softmax_layer1_is_a_previous_token_head():
    c, N = 16, 64
    model = attention_softmax(c, N).double()
    x = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=7, num_examples=8, seed=4).inputs
    u1, O1, _ = model.layer_outputs(x)
    b = model.bits
    prevk, kcode = O1[..., 2 * b : 3 * b], u1[..., :b]
    e = math.exp(-model.beta1)
    eta = 2 * e / (1 - e)
    assert (prevk[:, 1:] - kcode[:, :-1]).abs().max() <= 2 * eta
    assert torch.equal(prevk[:, 0], kcode[:, 0])  # slot 0 can only read itself (harmless: a non-value slot)
    assert O1[..., : 2 * b].abs().sum() == 0 and O1[..., 3 * b :].abs().sum() == 0


def test_softmax_margins_respect_the_derived_bound():
    for c, N in [(4, 8), (8, 8)]:
        X = all_mqar_sequences(c, N)
        model = attention_softmax(c, N).double()
        assert model.margin_bound > 0.48
        assert model.margin(X).min().item() >= model.margin_bound
    data = make_mqar(vocab_size=1024, seq_len=512, num_kv_pairs=128, num_examples=4, seed=9)
    model = attention_softmax(1024, 512).double()
    assert model.margin(data.inputs).min().item() >= model.margin_bound


@pytest.mark.parametrize("m", [1.0, 2.0, 8.0])
def test_softmax_exact_for_every_margin_at_least_one(m):
    X = all_mqar_sequences(8, 8)
    model = attention_softmax(8, 8, margin_nats=m).double()
    assert model.margin_bound > 0
    assert torch.equal(model.predict(X), expected_answers(X, 8))
    assert model.margin(X).min().item() >= model.margin_bound


@pytest.mark.parametrize("kw", [{"margin_nats": 0.05}, {"beta1": 1.0}])
def test_softmax_constants_too_small_break_it(kw):
    """Too little margin (the sink swallows the match) or a too-soft previous-token head (the match
    logit falls below the sink): the paper's worked example loses its answers; the bound says so."""
    model = attention_softmax(PAPER_C, 20, **kw).double()
    assert model.margin_bound < 0
    pred = model.predict(PAPER_EXAMPLE)
    assert not torch.equal(pred, expected_answers(PAPER_EXAMPLE[None], PAPER_C))
    assert (pred[0, list(PAPER_ANSWERS)] == -1).all()


def test_key_after_key_is_outside_the_softmax_guarantee():
    """``1 4 3 1`` (c = 8): the query 1 directly follows key 3, whose code differs from 1's in one
    bit, so the sink's logit rises by β and swallows the match. Prop H.27 has no such limit."""
    x = torch.tensor([[1, 4, 3, 1]])
    assert expected_answers(x, 8)[0, 3].item() == 4
    assert attention_h27(8, 4).double().predict(x)[0, 3].item() == 4
    assert attention_softmax(8, 4).double().predict(x)[0, 3].item() == -1


@builders
def test_repr_names_the_program(name):
    m = BUILDERS[name](8, 16)
    assert m.name == f"attention_{name}" and len(m.layers) == 2
    assert repr(m) == f"{type(m).__name__}(c=8, N=16, layers=2, width={m.width})"
