"""Thm 4.5: BaseConv with input-dependent (programmatic) filters solves MQAR exactly
(arXiv 2312.04927, Thm 4.5 and its appendix proof). Float64 unless said otherwise."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from conftest import all_mqar_sequences

from mqar_theory.bounds import count_tensors, measure_sizes
from mqar_theory.constructions.base import expected_answers
from mqar_theory.constructions.baseconv_input_dependent import (
    THRESHOLD,
    BaseConvInputDependent,
    baseconv_input_dependent,
    first_occurrence_mask,
    interaction_distances,
)
from mqar_theory.constructions.primitives import compose
from mqar_theory.data import IGNORE_INDEX, make_mqar


def build(c, N, **kw) -> BaseConvInputDependent:
    return baseconv_input_dependent(c, N, **kw).double()


def check_exact(con, x, labels=None):
    pred = con.predict(x)
    want = expected_answers(x, con.vocab_size)
    assert torch.equal(pred, want), (x[(pred != want).any(1)][:3], pred[(pred != want).any(1)][:3])
    if labels is not None:
        lab = labels != IGNORE_INDEX
        assert torch.equal(pred[lab], labels[lab])
    return pred


# ---------------------------------------------------------------------------------------------
# exactness
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", [4, 6, 8])
def test_exhaustive_make_mqar_domain(c):
    """Every make_mqar-shaped sequence for c <= 8 and every length N <= 8, on one model built for 8."""
    con = build(c, 8)
    total = 0
    for N in range(4, 9):
        x = all_mqar_sequences(c, N)
        total += x.shape[0]
        pred = check_exact(con, x)
        # the label of a make_mqar sequence: each query (second occurrence of a key) gets its value
        for row, p in zip(x.tolist(), pred.tolist(), strict=True):
            ctx = {row[2 * j]: row[2 * j + 1] for j in range(len(row) // 2) if row[2 * j] and row[2 * j + 1]}
            seen = set()
            for i, tok in enumerate(row):
                if tok in ctx and tok in seen:
                    assert p[i] == ctx[tok]
                seen.add(tok)
    assert total == {4: 22, 6: 114, 8: 420}[c]


@pytest.mark.parametrize("c, N", [(4, 6), (6, 5)])
def test_exhaustive_every_token_sequence(c, N):
    """The row mask makes it exact on *every* sequence (random filler, repeated queries, keys
    followed by keys), against the first-occurrence oracle."""
    x = torch.tensor(list(itertools.product(range(c), repeat=N)))
    check_exact(build(c, N), x)


@pytest.mark.parametrize(
    "c, N, K, a",
    [(8, 16, 2, 0.01), (16, 32, 4, 0.01), (32, 64, 8, 1.0), (64, 64, 16, 0.01), (10, 40, 4, 0.5)],
)
def test_random_make_mqar_instances(c, N, K, a):
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=300, power_a=a, seed=c + N)
    check_exact(build(c, N), data.inputs, data.labels)


def test_random_filler_instances():
    data = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=100, random_non_queries=True,
                     seed=3)
    check_exact(build(16, 32), data.inputs, data.labels)


def test_shorter_inputs_and_scores_are_exact_one_hots():
    con = build(16, 48)
    for N in (8, 20, 48):
        data = make_mqar(vocab_size=16, seq_len=N, num_kv_pairs=2, num_examples=40, seed=N)
        check_exact(con, data.inputs, data.labels)
        scores = con.scores(data.inputs)  # (B, N, c)
        want = expected_answers(data.inputs, 16)
        ideal = F.one_hot(want.clamp(min=0), 16).double() * (want >= 0)[..., None]
        assert torch.allclose(scores, ideal, atol=1e-12)
        assert con.margin(data.inputs).min() > 0.5 - 1e-12


def test_no_repeat_gives_no_channel_and_no_answer():
    con = build(8, 8)
    x = torch.tensor([1, 5, 2, 6, 3, 7, 0, 0])
    prog = con.program(x)
    assert prog.distances == () and prog.width == 8
    assert torch.equal(con.predict(x), torch.full((1, 8), -1))


# ---------------------------------------------------------------------------------------------
# the fast path is eq. (1): the dense (2t+1)c-wide layers give the same scores
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [True, False])
def test_program_equals_dense_baseconv_layers(mask):
    c, N = 8, 12
    con = build(c, N, mask_query_rows=mask)
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=3, num_examples=6, random_non_queries=True, seed=5)
    for row in data.inputs:
        prog = con.program(row)
        layers = prog.dense_layers()
        assert len(layers) == len(prog) == 4 and layers[0].d == prog.width == (2 * prog.t + 1) * c
        u = F.one_hot(row, c).double()[None]  # (1, N, c)
        for n in (N, 7):  # a shorter input runs the same layers on the first n rows
            pad = torch.zeros(1, n, prog.width, dtype=torch.float64)
            pad[..., :c] = u[:, :n]
            dense = compose(layers, pad)[..., :c]
            assert torch.allclose(dense, prog.run(u[:, :n]), atol=1e-12)
        assert torch.allclose(prog.run(u), con.scores(row), atol=0)


# ---------------------------------------------------------------------------------------------
# causality, batches
# ---------------------------------------------------------------------------------------------
def test_causal_although_filters_are_chosen_from_the_whole_input():
    c, N = 16, 32
    con = build(c, N)
    g = torch.Generator().manual_seed(7)
    data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=4, num_examples=12, seed=7)
    x = data.inputs
    base = con.scores(x)
    for i in [0, 8, 9, 20, 30]:
        y = x.clone()
        y[:, i + 1 :] = torch.randint(0, c, (x.shape[0], N - i - 1), generator=g)
        changed = [con.program(a).distances != con.program(b).distances for a, b in zip(x, y, strict=True)]
        assert any(changed) or i == 30  # the later tokens do change the filter bank ...
        assert torch.allclose(con.scores(y)[:, : i + 1], base[:, : i + 1], atol=1e-12)  # ... not the past
        assert torch.equal(con.predict(y)[:, : i + 1], con.predict(x)[:, : i + 1])


def test_filters_are_programmed_per_example():
    con = build(8, 8)
    x = torch.tensor([[1, 5, 2, 6, 2, 0, 1, 0], [1, 5, 2, 6, 1, 0, 2, 0], [3, 7, 3, 0, 0, 0, 0, 0]])
    assert [con.program(r).distances for r in x] == [(2, 6), (4,), (2,)]
    assert interaction_distances(x, 8) == [2, 4, 6]  # the union a shared bank would need
    assert torch.equal(con.predict(x), torch.cat([con.predict(r) for r in x]))
    check_exact(con, x)
    with pytest.raises(ValueError, match="program takes one sequence"):
        con.program(x)


# ---------------------------------------------------------------------------------------------
# hypotheses of the theorem: coverage of the distances, the query-row mask (errata 2.5.3-4)
# ---------------------------------------------------------------------------------------------
def test_breaks_when_the_shift_set_misses_a_needed_distance():
    """Named instance (c = 8): pairs (1, 5), (2, 6); key 2 queried at distance 2, key 1 at 6."""
    con = build(8, 8)
    x = torch.tensor([1, 5, 2, 6, 2, 0, 1, 0])
    u = F.one_hot(x, 8).double()[None]
    assert con.program(x).distances == (2, 6)
    assert con.predict(x).tolist() == [[-1, -1, -1, -1, 6, -1, 5, -1]]
    scores = con.program(x, distances=[2]).run(u)  # the set misses s = 6
    pred = torch.where(scores.max(-1).values > THRESHOLD, scores.argmax(-1), -1)
    assert pred.tolist() == [[-1, -1, -1, -1, 6, -1, -1, -1]]  # the query of key 1 goes unanswered
    scores = con.program(x, distances=[1, 2, 3, 5, 6, 7]).run(u)  # a superset stays exact
    assert torch.allclose(scores, con.scores(x), atol=1e-12)
    with pytest.raises(ValueError, match="max_distances=1: this input needs 2"):
        build(8, 8, max_distances=1).predict(x)


def test_erratum_unmasked_query_rows_break_it():
    """Named instance (c = 8): pair (1, 5), then key 1 repeated twice in the filler (each time
    followed by 6) before its query at position 6; ``make_mqar(..., random_non_queries=True)`` can
    produce it (query slot 2, filler 1 6 1 6 and 0)."""
    x = torch.tensor([1, 5, 1, 6, 1, 6, 1, 0])
    u = F.one_hot(x, 8).double()
    # the key row and the query rows are the same one-hot: no shared row-wise W can zero one only
    assert torch.equal(u[0], u[2]) and torch.equal(u[0], u[4]) and torch.equal(u[0], u[6])
    assert first_occurrence_mask(x).tolist() == [[True, True, False, True, False, False, False, True]]
    want = expected_answers(x[None], 8)
    assert want.tolist() == [[-1, -1, 5, -1, 5, -1, 5, -1]]
    masked, printed = build(8, 8), build(8, 8, mask_query_rows=False)
    assert torch.equal(masked.predict(x), want)
    s = printed.scores(x)[0]  # unmasked, a query also matches the earlier repeats of its key
    assert torch.allclose(s[4, [5, 6]], torch.tensor([1.0, 1.0], dtype=torch.float64))  # a tie
    assert torch.allclose(s[6, [5, 6]], torch.tensor([1.0, 2.0], dtype=torch.float64))  # 6 outvotes 5
    assert printed.predict(x)[0, 6] == 6
    # on filler-0 make_mqar data every key occurs twice, so the printed version agrees there ...
    data = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=60, seed=9)
    check_exact(build(16, 32, mask_query_rows=False), data.inputs, data.labels)
    # ... and fails on random filler that repeats a key before its query
    data = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=60, seed=9,
                     random_non_queries=True)
    pred = build(16, 32, mask_query_rows=False).predict(data.inputs)
    lab = data.labels != IGNORE_INDEX
    assert (pred[lab] != data.labels[lab]).any()
    check_exact(build(16, 32), data.inputs, data.labels)


def test_interaction_distances_and_first_occurrences():
    c = 8  # keys [1, 4), values [4, 8)
    assert interaction_distances(torch.tensor([1, 5, 2, 6, 2, 0, 1, 0]), c) == [2, 6]
    assert interaction_distances(torch.tensor([1, 5, 1, 6, 1, 0, 0, 0]), c) == [2, 4]  # every earlier one
    assert interaction_distances(torch.tensor([0, 5, 0, 5, 0, 0, 3, 3]), c) == [1]  # values, filler: none
    assert interaction_distances(torch.tensor([[1, 1], [2, 0]]), c) == [1]
    assert first_occurrence_mask(torch.tensor([[0, 0, 4, 4, 0, 1]])).tolist() == [
        [True, False, True, False, False, True]]


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------
def test_sizes_follow_t_N_c():
    con = build(16, 32, max_distances=5)
    assert con.max_distances == 5 and len(con.layers) == 4 and con.width == 11 * 16
    stored = count_tensors(con, fixed={id(con.E): torch.eye(16)})  # E = I_c, the fixed one-hot table
    assert stored["params"] == sum(p.numel() for p in con.parameters()) == 8 * 16  # what it stores
    data = make_mqar(vocab_size=16, seq_len=32, num_kv_pairs=4, num_examples=5, seed=1)
    for row in data.inputs:
        prog = con.program(row)
        sizes = measure_sizes(con, row)
        want = BaseConvInputDependent.closed_form(16, 32, prog.t)
        assert sizes["values"] == prog.h_key.numel() + prog.h_value.numel() + prog.row_mask.numel() + 8 * 16
        assert sizes["params"] == want["params"] == sizes["values"] + prog.t + 4  # zero fills, read-out
        assert sizes["layers"] == len(prog) == 4 and sizes["width"] == want["width"] == prog.width
        assert prog.h_key.shape == prog.h_value.shape == (prog.t, 32, 16)
        assert sizes["params_stored"] == 2 * prog.t * 32 + 32 + 8 * 16  # impulses (t, N, 1) expanded over c
    # Thm 4.5's count 2tNc + N + 8c + t + 4 <= 4.6·tNc for every t >= 1 and c, N >= 4 (bounds.claims)
    for c, N, t in itertools.product([4, 64, 1024], [8, 256, 4096], [1, 7, 4095]):
        if t < N:
            ratio = BaseConvInputDependent.closed_form(c, N, t)["params"] / (t * N * c)
            assert 2 < ratio <= 4.6 and (ratio < 2.2 or min(c, N) < 64)
    assert build(8, 16).max_distances == 15  # default: every distance 1 .. N-1


def test_float32_margins(capsys):
    """float32 (FFT convolutions): the threshold decisions keep a margin close to the ideal 1/2."""
    out = []
    for c, N, K in [(16, 64, 7), (64, 256, 16), (128, 512, 32)]:
        con = baseconv_input_dependent(c, N).float()
        data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=8, seed=N)
        check_exact(con, data.inputs, data.labels)
        m = float(con.margin(data.inputs).min())
        out.append((c, N, K, m))
        assert m > 0.49
    with capsys.disabled():
        print("\nbaseconv_input_dependent float32 min margins (c, N, K, margin):", out)


def test_moves_with_dtype():
    con = baseconv_input_dependent(8, 8)
    assert con.dtype == torch.float32 and con.scores(torch.tensor([1, 5, 1, 0])).dtype == torch.float32
    con = con.double()
    prog = con.program(torch.tensor([1, 5, 1, 0]))
    assert prog.h_key.dtype == prog.row_mask.dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(vocab_size=7, seq_len=8), "vocab_size=7: must be even"),
        (dict(vocab_size=2, seq_len=8), "vocab_size=2: must be an integer >= 4"),
        (dict(vocab_size=8, seq_len=3), "seq_len=3: must be an integer >= 4"),
        (dict(vocab_size=8, seq_len=8, max_distances=0), r"max_distances=0: must be None or an integer in"),
        (dict(vocab_size=8, seq_len=8, max_distances=8), r"max_distances=8: .*seq_len-1=7"),
        (dict(vocab_size=8, seq_len=8, max_distances=2.0), "max_distances=2.0"),
        (dict(vocab_size=8, seq_len=8, mask_query_rows="yes"), "mask_query_rows='yes': must be a bool"),
    ],
)
def test_builder_rejects_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        baseconv_input_dependent(**kw)


def test_inputs_and_distances_are_checked():
    con = build(8, 8)
    with pytest.raises(ValueError, match=r"tokens: must lie in \[0, vocab_size=8\)"):
        con.predict(torch.tensor([1, 9]))
    with pytest.raises(ValueError, match="tokens: length 9 exceeds the seq_len=8"):
        con.predict(torch.zeros(9, dtype=torch.long))
    x = torch.tensor([1, 5, 1, 0])
    with pytest.raises(ValueError, match="distances: 0 must be an integer in .*distance 0 would match"):
        con.program(x, distances=[0, 2])
    with pytest.raises(ValueError, match=r"distances: 8 must be an integer in \[1, seq_len-1=7\]"):
        con.program(x, distances=[8])
    with pytest.raises(ValueError, match="distances: .* has repeats"):
        con.program(x, distances=[2, 2])


def test_the_program_sees_only_what_the_theorem_grants():
    """Two different inputs with the same interaction distances (and, with the row mask, the same first
    occurrences) get identical programs: the builder reads the grant, never the tokens."""
    c, N = 8, 8
    a = torch.tensor([1, 4, 1, 4, 2, 5, 2, 5])  # keys 1, 2 repeated at distance 2; values 4, 5
    b = torch.tensor([3, 6, 3, 6, 2, 7, 2, 7])  # other keys and values, the same distances and first occurrences
    for mask in (True, False):
        con = baseconv_input_dependent(c, N, mask_query_rows=mask).double()
        ga, gb = con.grant(a), con.grant(b)
        assert ga == gb, (ga, gb)
        pa, pb = con.program(a).state_dict(), con.program(b).state_dict()
        assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
        assert not torch.equal(con(a[None]), con(b[None]))  # the inputs do differ, and so do the answers
    other = torch.tensor([1, 4, 2, 5, 1, 4, 2, 5])  # distance 4: another grant, another program
    con = baseconv_input_dependent(c, N).double()
    assert con.grant(other)["distances"] != con.grant(a)["distances"]
    assert not torch.equal(con.program(other).h_key, con.program(a).h_key)
