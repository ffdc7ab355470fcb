"""MQAR generator: Algorithm 1 invariants, determinism, distribution, errors, oracle."""

import math

import numpy as np
import pytest
import torch

from mqar_theory.data import (
    IGNORE_INDEX,
    MQARConfig,
    distinct_rows,
    make_ar,
    make_mqar,
    mqar_oracle,
    query_slot_probabilities,
)

CONFIGS = [
    dict(vocab_size=8192, seq_len=64, num_kv_pairs=4),
    dict(vocab_size=16, seq_len=16, num_kv_pairs=3),
    dict(vocab_size=16, seq_len=28, num_kv_pairs=7),  # every key of [1, c/2) used: K = c/2 - 1
    dict(vocab_size=256, seq_len=128, num_kv_pairs=32),  # 4K = N: every query slot used
    dict(vocab_size=1024, seq_len=256, num_kv_pairs=16, power_a=1.0),
    dict(vocab_size=64, seq_len=32, num_kv_pairs=2, random_non_queries=True),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_algorithm_1_invariants(kw):
    cfg = MQARConfig(num_examples=300, seed=3, **kw)
    d = make_mqar(cfg)
    x, y = d.inputs, d.labels
    c, N, K = cfg.vocab_size, cfg.seq_len, cfg.num_kv_pairs
    assert x.shape == y.shape == (300, N) and x.dtype == y.dtype == torch.int64
    keys, vals = x[:, 0 : 2 * K : 2], x[:, 1 : 2 * K : 2]
    assert ((keys >= 1) & (keys < c // 2)).all() and ((vals >= c // 2) & (vals < c)).all()
    assert all(len(set(r)) == K for r in keys.tolist()) and all(len(set(r)) == K for r in vals.tolist())
    lab = y != IGNORE_INDEX
    assert (lab.sum(1) == K).all()  # K queries per example
    assert not lab[:, : 2 * K].any()  # no label inside the context
    pos = lab.nonzero()[:, 1]
    assert ((pos - 2 * K) % 2 == 0).all()  # even offsets after the context
    for r in range(0, 300, 7):
        kv = dict(zip(keys[r].tolist(), vals[r].tolist()))
        qs = x[r][lab[r]].tolist()
        assert sorted(qs) == sorted(kv)  # each key queried exactly once
        assert y[r][lab[r]].tolist() == [kv[q] for q in qs]  # label = the key's value
    rest = ~lab
    rest[:, : 2 * K] = False
    if not cfg.random_non_queries:
        assert (x[rest] == 0).all()
    else:
        assert (x[rest] != 0).float().mean() > 0.9  # filler drawn from the whole vocabulary


def test_same_seed_same_data_and_different_seed_differs():
    cfg = MQARConfig(vocab_size=512, seq_len=64, num_kv_pairs=4, random_non_queries=True, num_examples=50, seed=7)
    a, b = make_mqar(cfg), make_mqar(cfg)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    torch.manual_seed(123)  # the global torch RNG plays no part (unlike the official filler)
    c = make_mqar(cfg)
    assert torch.equal(a.inputs, c.inputs)
    d = make_mqar(cfg, seed=8)
    assert not torch.equal(a.inputs, d.inputs)


def test_keyword_and_override_forms_agree():
    cfg = MQARConfig(vocab_size=64, seq_len=32, num_kv_pairs=2, num_examples=10)
    assert torch.equal(make_mqar(cfg).inputs, make_mqar(vocab_size=64, seq_len=32, num_kv_pairs=2,
                                                        num_examples=10).inputs)
    assert make_mqar(cfg, seed=1).config.seed == 1


def test_first_query_slot_follows_power_law():
    """Key 1 draws first, so its slot follows p(g) exactly; official code measured slot-0 use ≈ 0.72."""
    cfg = MQARConfig(vocab_size=8192, seq_len=64, num_kv_pairs=4, num_examples=40_000, seed=1)
    d = make_mqar(cfg)
    p = query_slot_probabilities(cfg.num_slots, cfg.power_a)
    key1 = d.inputs[:, 0:1]
    qpos = ((d.inputs[:, 8:] == key1) & (d.labels[:, 8:] != IGNORE_INDEX)).float().argmax(1)
    emp = np.bincount((qpos // 2).numpy(), minlength=cfg.num_slots) / cfg.num_examples
    se = np.sqrt(p * (1 - p) / cfg.num_examples)
    assert np.all(np.abs(emp - p) < 5 * se + 1e-4)
    slot0_used = (d.labels[:, 8] != IGNORE_INDEX).float().mean().item()
    assert abs(slot0_used - 0.72) < 0.02


def test_second_draw_is_successive_sampling_without_replacement():
    """P(slot of key 2 = g) = sum_f p(f) p(g) / (1 - p(f)) for f != g."""
    cfg = MQARConfig(vocab_size=64, seq_len=16, num_kv_pairs=2, power_a=0.3, num_examples=60_000, seed=2)
    d = make_mqar(cfg)
    S = cfg.num_slots
    p = query_slot_probabilities(S, cfg.power_a)
    exact = np.array([sum(p[f] * p[g] / (1 - p[f]) for f in range(S) if f != g) for g in range(S)])
    key2 = d.inputs[:, 2:3]
    qpos = ((d.inputs[:, 4:] == key2) & (d.labels[:, 4:] != IGNORE_INDEX)).float().argmax(1)
    emp = np.bincount((qpos // 2).numpy(), minlength=S) / cfg.num_examples
    assert np.all(np.abs(emp - exact) < 5 * np.sqrt(exact * (1 - exact) / cfg.num_examples) + 1e-4)


def test_distinct_rows_uniform_and_full_range():
    rng = np.random.default_rng(0)
    r = distinct_rows(rng, 5, 9, 20_000, 4)  # k == range: every row a permutation of 5..8
    assert (np.sort(r, 1) == np.arange(5, 9)).all()
    first = np.bincount(r[:, 0] - 5, minlength=4) / 20_000  # uniform random order
    assert np.all(np.abs(first - 0.25) < 0.02)
    r = distinct_rows(rng, 0, 10, 50_000, 3)
    counts = np.bincount(r.ravel(), minlength=10) / r.size  # uniform subset
    assert np.all(np.abs(counts - 0.1) < 0.005)


def test_large_vocab_memory_is_per_token_not_per_vocab():
    # 20k rows at c = 2^20 would need ~80 GB with an O(n*c) generator; here it is instant.
    d = make_mqar(vocab_size=2**20, seq_len=64, num_kv_pairs=16, num_examples=20_000)
    assert d.inputs.shape == (20_000, 64)


BAD = [
    (dict(vocab_size=3), "vocab_size"),
    (dict(vocab_size=15), "vocab_size"),
    (dict(vocab_size=8.0), "vocab_size"),
    (dict(seq_len=63), "seq_len"),
    (dict(seq_len=2), "seq_len"),
    (dict(seq_len=0), "seq_len"),
    (dict(num_kv_pairs=0), "num_kv_pairs"),
    (dict(num_kv_pairs=-1), "num_kv_pairs"),
    (dict(seq_len=64, num_kv_pairs=17), "num_kv_pairs"),
    (dict(vocab_size=16, seq_len=64, num_kv_pairs=8), "num_kv_pairs"),  # only 7 keys in [1, 8)
    (dict(power_a=0.0), "power_a"),
    (dict(power_a=-1.0), "power_a"),
    (dict(power_a=math.nan), "power_a"),
    (dict(num_examples=0), "num_examples"),
    (dict(seed=-1), "seed"),
    (dict(random_non_queries=1), "random_non_queries"),
]


@pytest.mark.parametrize("kw,field", BAD)
def test_invalid_config_raises_value_error_naming_field(kw, field):
    with pytest.raises(ValueError, match=field):
        MQARConfig(**kw)
    with pytest.raises(ValueError, match=field):
        make_mqar(**kw)


def test_oracle_agrees_with_labels_everywhere_labelled():
    for kw in CONFIGS:
        d = make_mqar(num_examples=200, seed=5, **kw)
        ans = mqar_oracle(d.inputs)
        lab = d.labels != IGNORE_INDEX
        assert torch.equal(ans[lab], d.labels[lab])


def test_oracle_on_the_paper_worked_example():
    # "A 4 B 3 C 6 F 1 E 2 -> A ? C ? F ? E ? B ?": outputs 4, 6, 1, 2, 3
    seq = "A 4 B 3 C 6 F 1 E 2 A ? C ? F ? E ? B ?".split()
    ids = {t: i for i, t in enumerate(dict.fromkeys(seq))}
    ans = mqar_oracle(torch.tensor([ids[t] for t in seq]))
    inv = {i: t for t, i in ids.items()}
    got = [inv[a] for a, t in zip(ans.tolist(), seq) if t in "ACFEB" and a >= 0]
    assert got == ["4", "6", "1", "2", "3"]
    assert ans[0] == -1 and ans.shape == (len(seq),)


def test_make_ar_single_query_at_the_end():
    d = make_ar(vocab_size=40, seq_len=31, num_examples=500, seed=0)
    lab = d.labels != IGNORE_INDEX
    assert (lab.sum(1) == 1).all() and lab[:, -1].all()
    assert torch.equal(mqar_oracle(d.inputs)[:, -1], d.labels[:, -1])
    # consistent dictionary: a repeated key always comes with the same value
    for row in d.inputs[:50].tolist():
        seen = {}
        for k, v in zip(row[0:30:2], row[1:30:2]):
            assert seen.setdefault(k, v) == v
    with pytest.raises(ValueError, match="vocab_size"):
        make_ar(vocab_size=5)
    with pytest.raises(ValueError, match="seq_len"):
        make_ar(seq_len=2)


# --- num_passes (JRT: the context read twice) ---------------------------------------------------------------
def test_one_pass_is_algorithm_1_bit_for_bit():
    """Digests of the tensors make_mqar gave before num_passes existed: P = 1 must not move a single token."""
    import hashlib

    for rnq, digest in ((False, "1d7ae23b7e29a22f"), (True, "8695fd64e0f53919")):
        d = make_mqar(vocab_size=64, seq_len=64, num_kv_pairs=4, num_examples=50, seed=3, random_non_queries=rnq)
        got = hashlib.sha256(d.inputs.numpy().tobytes() + d.labels.numpy().tobytes()).hexdigest()[:16]
        assert got == digest and make_mqar(vocab_size=64, seq_len=64, num_kv_pairs=4, num_examples=50, seed=3,
                                           random_non_queries=rnq, num_passes=1).inputs.equal(d.inputs)


@pytest.mark.parametrize("rnq", [False, True])
def test_two_passes_write_the_context_twice_then_the_queries(rnq):
    K, N, P = 3, 40, 2
    d = make_mqar(vocab_size=32, seq_len=N, num_kv_pairs=K, num_examples=200, seed=1, random_non_queries=rnq,
                  num_passes=P)
    C = 2 * K
    x, y = d.inputs, d.labels
    assert torch.equal(x[:, :C], x[:, C : 2 * C])  # the same pairs, in the same order, twice
    assert bool((x[:, 0:C:2] < 16).all() and (x[:, 1:C:2] >= 16).all())
    q = y != IGNORE_INDEX
    assert bool((q.sum(1) == K).all()) and not bool(q[:, : P * C].any())  # K queries, all after both passes
    assert bool(((q.nonzero()[:, 1] - P * C) % 2 == 0).all())  # at even offsets after the context
    assert torch.equal(mqar_oracle(x)[q], y[q])  # Definition 3.1 still answers every query
    assert d.config.num_slots == (N - 2 * K * P) // 2
    if not rnq:
        assert bool((x[:, P * C :][~q[:, P * C :]] == 0).all())


def test_num_passes_is_checked():
    with pytest.raises(ValueError, match="num_passes=0"):
        make_mqar(vocab_size=32, seq_len=40, num_kv_pairs=3, num_passes=0)
    with pytest.raises(ValueError, match=r"num_passes=5: needs 2 \* num_kv_pairs \* num_passes"):
        make_mqar(vocab_size=32, seq_len=40, num_kv_pairs=4, num_passes=5)  # 40 + 8 > 40
    make_mqar(vocab_size=32, seq_len=40, num_kv_pairs=4, num_passes=4, num_examples=2)  # 32 + 8 = 40 fits exactly


def test_a_run_records_its_passes_only_when_set():
    from mqar_theory.train import run_mqar

    kw = dict(d_model=8, vocab_size=16, seq_len=16, num_kv_pairs=2, num_train=16, num_test=8, epochs=1,
              device="cpu", progress=False)
    assert "num_passes" not in run_mqar("attention", **kw)["config"]["train_data"]
    assert run_mqar("attention", num_passes=2, **kw)["config"]["test_data"]["num_passes"] == 2
