"""sparse_attention (§5 hybrids): the naive reference, the selection rules and their causal budget, the
cost that scales with k and not N (by FLOP count), the auxiliary loss, bad arguments, hybrids that train."""

import functools

import pytest
import torch
from conftest import randomise_, token_input

from mqar_theory.flops import count_flops
from mqar_theory.mixers import MIXERS, SparseAttention, get_mixer
from mqar_theory.model import LanguageModel
from mqar_theory.train import run_mqar

RULES = ["programmatic", "learned", "random"]


pytestmark = pytest.mark.usefixtures("float64_default")


def randomised(selection, d=4, N=20, k=5, **kw):
    torch.manual_seed(0)
    m = randomise_(get_mixer("sparse_attention", d, N, selection=selection, k=k, **kw))
    if selection == "learned":
        with torch.no_grad():
            m.b.fill_(0.3)  # some rows above the threshold, some below
    return m


token_input = functools.partial(token_input, B=3, c=6)  # conftest's, with this module's batch and vocabulary


def test_registered():
    assert MIXERS["sparse_attention"] is SparseAttention


@pytest.mark.parametrize("selection", RULES)
@pytest.mark.parametrize("num_heads", [1, 2])
@pytest.mark.parametrize("n", [20, 9])
def test_matches_naive_reference(selection, num_heads, n):
    m = randomised(selection, num_heads=num_heads)
    tokens, u = token_input(n=n)
    for kw in ({}, {"tokens": tokens}):
        torch.manual_seed(7)
        y = m(u, **kw)
        torch.manual_seed(7)
        ref = m.forward_reference(u, **kw)
        assert torch.allclose(y, ref, atol=1e-10, rtol=1e-10)
        sel = m.selected(u, **kw) if selection != "random" else None
        if sel is not None:  # unselected rows are exactly 0; the test can fail: some rows are selected
            assert torch.all(y[~sel] == 0) and sel.any()


def test_programmatic_selection_hand_case():
    x = torch.tensor([[4, 2, 4, 0, 0, 4, 2, 0, 9]])
    u = torch.randn(1, 9, 4)
    first = get_mixer("sparse_attention", 4, 16, selection="programmatic", k=64)
    every = get_mixer("sparse_attention", 4, 16, selection="programmatic", k=64, repeats="all")
    assert first.selected(u, x).long().tolist() == [[0, 0, 1, 0, 1, 0, 1, 0, 0]]  # second occurrences
    assert every.selected(u, x).long().tolist() == [[0, 0, 1, 0, 1, 1, 1, 1, 0]]  # eq. (3)
    budget = get_mixer("sparse_attention", 4, 16, selection="programmatic", k=2, repeats="all")
    assert budget.selected(u, x).long().tolist() == [[0, 0, 1, 0, 1, 0, 0, 0, 0]]  # the first k candidates


def test_random_selects_exactly_k_rows():
    m = get_mixer("sparse_attention", 4, 32, selection="random", k=5)
    sel = m.selected(torch.randn(6, 32, 4))
    assert sel.sum(1).tolist() == [5] * 6
    assert m.selected(torch.randn(2, 3, 4)).sum(1).tolist() == [3, 3]  # k' = min(k, n)


@pytest.mark.parametrize("selection", RULES)
@pytest.mark.parametrize("training", [True, False])
def test_causal_including_the_learned_budget_at_evaluation(selection, training):
    m = randomised(selection, N=24, k=6)
    m.train(training)
    tokens, u = token_input(n=24)
    i = 13
    u2, t2 = u.clone(), tokens.clone()
    u2[:, i + 1 :] = 3 * torch.randn_like(u2[:, i + 1 :])  # the future, with large (learned) scores too
    t2[:, i + 1 :] = (t2[:, i + 1 :] + 1) % 6
    torch.manual_seed(5)
    y = m(u, tokens=tokens)
    torch.manual_seed(5)
    y2 = m(u2, tokens=t2)
    assert torch.allclose(y[:, : i + 1], y2[:, : i + 1], atol=1e-12)
    assert not torch.allclose(y[:, i + 1 :], y2[:, i + 1 :])


def test_learned_budget_is_causal_where_a_global_top_k_would_not_be():
    """A late row with a higher score does not evict an earlier selected row (it would with a global top-k)."""
    m = get_mixer("sparse_attention", 2, 8, selection="learned", k=2)
    with torch.no_grad():
        m.w.copy_(torch.tensor([[1.0], [0.0]]))
        m.b.fill_(0.0)
    u = torch.tensor([[[1.0, 0], [-1, 0], [2, 0], [-1, 0], [9, 0], [-1, 0]]])
    assert m.selected(u).long().tolist() == [[1, 0, 1, 0, 0, 0]]


@pytest.mark.parametrize("selection", RULES)
def test_flops_formula_matches_count(selection):
    m = get_mixer("sparse_attention", 8, 128, selection=selection, k=16)
    for n in (128, 50, 10):
        u = torch.randn(1, n, 8)
        assert count_flops(m, u) / n == pytest.approx(m.flops_per_token(n), rel=1e-9)


def test_cost_scales_with_k_not_n():
    """At fixed k the attention FLOPs per token (count minus the 4d² + 4d²k/n projections) are 4kd for every
    N, while dense attention's grow as 4Nd; doubling k doubles them."""
    d, k = 8, 8
    per_token = {}
    for N in (64, 128, 256):
        m = get_mixer("sparse_attention", d, N, selection="random", k=k)
        dense = get_mixer("attention", d, N)
        u = torch.randn(1, N, d)
        sparse_f, dense_f = count_flops(m, u) / N, count_flops(dense, u) / N
        per_token[N] = sparse_f - 4 * d * d - 4 * d * d * k / N
        assert dense_f - 8 * d * d == 4 * N * d
    assert per_token[64] == per_token[128] == per_token[256] == 4 * k * d
    m2 = get_mixer("sparse_attention", d, 256, selection="random", k=2 * k)
    assert count_flops(m2, torch.randn(1, 256, d)) / 256 - 4 * d * d - 4 * d * d * 2 * k / 256 == 8 * k * d


def test_auxiliary_loss_hand_case():
    """f = σ(b) = 0.9 on every row, n = 10, k = 3: L_aux = max(0, 9 - 3) / 10 = 0.6 per sequence."""
    m = get_mixer("sparse_attention", 4, 10, selection="learned", k=3)
    with torch.no_grad():
        m.w.zero_()
        m.b.fill_(torch.logit(torch.tensor(0.9)).item())
    m.train()
    m(torch.randn(2, 10, 4))
    assert m.auxiliary_loss().item() == pytest.approx(0.6, abs=1e-12)
    m(torch.randn(2, 5, 4))  # n = 5: max(0, 4.5 - 3) / 5 = 0.3
    assert m.auxiliary_loss().item() == pytest.approx(0.3, abs=1e-12)
    with torch.no_grad():
        m.b.fill_(torch.logit(torch.tensor(0.2)).item())
    m(torch.randn(1, 10, 4))  # Σf = 2 <= k: 0
    assert m.auxiliary_loss().item() == 0.0
    m.eval()
    m(torch.randn(1, 10, 4))
    assert m.auxiliary_loss() is None  # kept in training mode only
    assert get_mixer("sparse_attention", 4, 10, selection="programmatic").auxiliary_loss() is None


def test_model_sums_auxiliary_losses_and_gradients_reach_the_score():
    torch.manual_seed(0)
    model = LanguageModel(16, 8, 12, n_layers=2, mixer="sparse_attention",
                          mixer_kwargs={"selection": "learned", "k": 2})
    x = torch.randint(0, 16, (3, 12))
    model.train()
    model(x)
    aux = model.auxiliary_loss()
    assert aux.item() == pytest.approx(sum(b.mixer.auxiliary_loss().item() for b in model.blocks)) and aux > 0
    aux.backward()
    assert all(b.mixer.w.grad is not None and b.mixer.w.grad.abs().sum() > 0 for b in model.blocks)
    assert LanguageModel(16, 8, 12, mixer="baseconv").auxiliary_loss() == 0.0


@pytest.mark.parametrize("kw", [dict(selection="topk"), dict(selection=None), dict(k=0), dict(k=-3), dict(k=2.5),
                                dict(repeats="some"), dict(threshold=1.5), dict(num_heads=3), dict(budget="top"),
                                dict(budget="threshold"), dict(straight_through=True),
                                dict(straight_through=1, selection="learned")])
def test_bad_arguments_rejected(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        get_mixer("sparse_attention", 4, 16, **kw)


@pytest.mark.parametrize("selection", RULES)
def test_hybrids_train(selection):
    """BaseConv backbone with sparse attention in every second layer, and with full attention."""
    rec = run_mqar(["baseconv", "sparse_attention"], d_model=16, n_layers=2, vocab_size=16, seq_len=16,
                   num_kv_pairs=2, num_train=64, num_test=32,
                   mixer_kwargs=[{"kernel_size": 3}, {"selection": selection, "k": 4}], epochs=1, batch_size=16,
                   lr=3e-3, init_std=0.1, device="cpu", progress=False)
    assert rec["steps"] == 4 and all(torch.isfinite(torch.tensor(rec["loss_history"])))
    assert rec["config"]["model"]["mixer_kwargs"][1]["selection"] == selection
    assert (rec["history"][-1]["aux_loss"] > 0) == (selection == "learned")


def test_full_attention_hybrid_trains():
    rec = run_mqar(["baseconv", "attention"], d_model=16, n_layers=2, vocab_size=16, seq_len=16, num_kv_pairs=2,
                   num_train=64, num_test=32, mixer_kwargs=[{"kernel_size": 3}, {}], epochs=1, batch_size=16,
                   device="cpu", progress=False)
    assert rec["steps"] == 4


@pytest.mark.parametrize("k", [2, 5, 64])
def test_eq3_literally_matches_naive_reference(k):
    """repeats="all" (eq. (3) read literally) against the loop reference, at budgets below and above the
    number of candidates; it selects a superset of the first-repeat rule's rows when the budget is not binding."""
    m = randomised("programmatic", k=k, repeats="all")
    tokens, u = token_input(n=20)
    y, ref = m(u, tokens=tokens), m.forward_reference(u, tokens=tokens)
    assert torch.allclose(y, ref, atol=1e-10, rtol=1e-10)
    sel = m.selected(u, tokens)
    assert torch.all(sel.sum(1) <= k) and torch.all(y[~sel] == 0)
    if k == 64:
        first = randomised("programmatic", k=k).selected(u, tokens)
        assert torch.all(sel | ~first) and bool((sel & ~first).any())


# --- the learned rule's threshold budget and straight-through gradient ----------------------------------------
def test_threshold_budget_selects_every_candidate_and_matches_naive_reference():
    """budget="threshold": every row with f >= threshold, however many (k = 2 here, more are selected); the forward
    equals the loop reference and the token-by-token step, and unselected rows are exactly 0."""
    m = randomised("learned", k=2, budget="threshold")
    tokens, u = token_input(n=20)
    sel = m.selected(u)
    assert torch.equal(sel, m.scores(u) >= 0.5) and bool((sel.sum(1) > 2).all())
    y = m(u)
    assert torch.allclose(y, m.forward_reference(u), atol=1e-10, rtol=1e-10) and torch.all(y[~sel] == 0)
    capped = randomised("learned", k=2)  # the causal budget on the same weights keeps the first 2
    assert torch.equal(capped.selected(u), sel & (sel.long().cumsum(1) <= 2))
    state, steps = m.init_state(u.shape[0]), []
    for t in range(u.shape[1]):
        y_t, state = m.step(state, u[:, t])
        steps.append(y_t)
    assert torch.allclose(torch.stack(steps, 1), y, atol=1e-10, rtol=1e-10)


def _grads(m, u, R):
    m.zero_grad()
    (m(u) * R).sum().backward()  # a loss linear in y: the upstream gradient R is the same for every layer
    return {name: p.grad.clone() for name, p in m.named_parameters()}


def test_straight_through_gives_the_scores_the_soft_gradient_and_attention_the_hard_one():
    """With a loss linear in y, the straight-through layer's score gradient (w, b) equals the soft layer's
    y_i = f_i o_i over every row (computed here densely, with the gate forced to f), its attention gradient equals
    the plain threshold layer's, and its output equals the plain threshold layer's; without it the score gradient
    differs (the unselected rows give none)."""
    st = randomised("learned", k=2, budget="threshold", straight_through=True)
    hard = randomised("learned", k=2, budget="threshold")
    soft = randomised("learned", k=2, budget="threshold")
    soft.threshold = 1e-300  # every row selected, gate f_i: the soft layer
    _, u = token_input(n=20)
    assert bool((~hard.selected(u)).any()) and bool(soft.selected(u).all())
    R = torch.randn_like(u)
    assert torch.equal(st(u), hard(u))
    g_st, g_hard, g_soft = _grads(st, u, R), _grads(hard, u, R), _grads(soft, u, R)
    for name in ("w", "b"):
        assert torch.allclose(g_st[name], g_soft[name], atol=1e-12, rtol=1e-10)
        assert not torch.allclose(g_st[name], g_hard[name], atol=1e-6)
    for name in g_st:
        if name not in ("w", "b"):
            assert torch.allclose(g_st[name], g_hard[name], atol=1e-12, rtol=1e-10), name


def test_selection_stats_count_against_a_loop():
    """selection_stats' rows, precision and recall equal a count by loops over the (row, query) pairs, for the
    programmatic rule and a learned one; on zero-filler MQAR the first-repeat rule finds every query."""
    from mqar_theory.data import IGNORE_INDEX, MQARConfig, make_mqar
    from mqar_theory.selection import selection_stats

    data = make_mqar(MQARConfig(vocab_size=16, seq_len=24, num_kv_pairs=3, num_examples=10, seed=3))
    torch.manual_seed(0)
    model = LanguageModel(16, 8, 24, n_layers=3, mixer=["baseconv", "sparse_attention", "sparse_attention"],
                          mixer_kwargs=[{"kernel_size": 3}, {"selection": "programmatic", "k": 64},
                                        {"selection": "learned", "k": 2, "budget": "threshold"}])
    with torch.no_grad():
        model.blocks[2].mixer.b.fill_(0.1)
    stats = selection_stats(model, data, batch_size=4)
    assert [s["layer"] for s in stats] == [1, 2] and [s["selection"] for s in stats] == ["programmatic", "learned"]
    masks = {}
    hooks = [model.blocks[i].mixer.register_forward_hook(
        lambda mod, args, kwargs, out, i=i: masks.__setitem__(i, mod.selected(args[0], kwargs.get("tokens"))),
        with_kwargs=True) for i in (1, 2)]
    model.eval()
    with torch.no_grad():
        model(data.inputs)
    for h in hooks:
        h.remove()
    q = data.labels != IGNORE_INDEX
    for s in stats:
        sel = masks[s["layer"]]
        chosen = sum(int(sel[b, i]) for b in range(10) for i in range(24))
        hits = sum(int(sel[b, i] and q[b, i]) for b in range(10) for i in range(24))
        assert s["rows_per_sequence"] == chosen / 10 and s["queries_per_sequence"] == 3.0
        assert s["precision"] == hits / chosen and s["recall"] == hits / 30
    assert stats[0]["recall"] == 1.0 and stats[0]["precision"] < 1.0  # the filler's first repeat is selected too
    assert selection_stats(LanguageModel(16, 8, 24, mixer="baseconv"), data) == []
    with pytest.raises(ValueError, match="batch_size"):
        selection_stats(model, data, batch_size=0)


def test_a_learned_hybrid_records_what_it_selects():
    rec = run_mqar(["baseconv", "sparse_attention"], d_model=16, n_layers=2, vocab_size=16, seq_len=16,
                   num_kv_pairs=2, num_train=64, num_test=32, epochs=1, batch_size=16, lr=3e-3, init_std=0.1,
                   mixer_kwargs=[{"kernel_size": -1}, {"selection": "learned", "k": 4, "budget": "threshold",
                                                       "straight_through": True}], device="cpu", progress=False)
    (s,) = rec["selection"]
    assert s["budget"] == "threshold" and s["k"] == 4 and 0 <= s["recall"] <= 1 and s["queries_per_sequence"] == 2
    assert "selection" not in run_mqar("baseconv", d_model=16, vocab_size=16, seq_len=16, num_kv_pairs=2,
                                       num_train=32, num_test=16, epochs=1, device="cpu", progress=False)
