"""Every mixer as a recurrence (``init_state`` / ``step``, ``mqar_theory.mixers.base``): stepping token by token
gives the parallel forward's outputs (two-path agreement, float64, eval mode, <= 1e-10 relative, at lengths 1, 7
and seq_len), and ``state_size(n)`` is the number of numbers the state ``step`` carries after n tokens, counted
from its tensors. Parametrised over ``MIXERS`` (a mixer registered later is included automatically and fails
here until it implements ``step``, unless it declares ``no_recurrence``), plus variants (short filters, heads,
selection rules) and ``BaseConvOfficial``, the baseconv layer of ``recipe="official"`` models."""

import re

import pytest
import torch

from mqar_theory.mixers import MIXERS, BaseConv, BaseConvOfficial, Mamba, get_mixer
from mqar_theory.mixers.base import measured_state_size, run_recurrent, state_numbers

d, N = 8, 12  # small: the whole file runs in seconds; d = 8 has divisors 1, 2, 4, 8 for heads

#: small keyword arguments per registered name (a name not listed uses its defaults)
SMALL = {
    "hyena": dict(filter_order=8),
    "h3": dict(d_state=6),
    "rwkv": dict(chunk_size=4),
    "based": dict(feature_dim=3, chunk_size=4),
    "mamba": dict(d_state=3),
    "sliding_window": dict(window=5, num_heads=2),
    "sparse_attention": dict(k=3),
}

#: variants beyond the defaults: (case id, registered name or a class, kwargs)
VARIANTS = [
    ("baseconv-k3", "baseconv", dict(kernel_size=3)),
    ("baseconv-k1", "baseconv", dict(kernel_size=1)),
    ("official-baseconv-long", BaseConvOfficial, {}),
    ("official-baseconv-k3", BaseConvOfficial, dict(kernel_size=3)),
    ("attention-heads2", "attention", dict(num_heads=2)),
    ("hyena-official", "hyena", dict(filter_order=8, positional="official")),
    ("h3-head_dim2", "h3", dict(d_state=4, head_dim=2)),
    ("h3-m2", "h3", dict(d_state=2)),
    ("mamba-k1", "mamba", dict(d_state=2, d_conv=1, expand=1)),
    ("sliding_window-w1", "sliding_window", dict(window=1)),
    ("sliding_window-wide", "sliding_window", dict(window=N + 3)),
    ("linear_bias_attention-strict", "linear_bias_attention", dict(mask="strict")),
    ("sparse_attention-all", "sparse_attention", dict(k=3, repeats="all")),
    ("sparse_attention-learned", "sparse_attention", dict(k=3, selection="learned")),
    ("baseconv_autocorrelation-top2", "baseconv_autocorrelation", dict(top_k=2)),
    ("baseconv_autocorrelation-sharp", "baseconv_autocorrelation", dict(sharpness=3.0)),
]
CASES = [(name, name, SMALL.get(name, {})) for name in MIXERS] + VARIANTS
IDS = [c[0] for c in CASES]


def _build(kind, kw, seed=0):
    """The mixer in float64, eval mode, every parameter moved off its structured init (as test_zoo_mixers)."""
    torch.manual_seed(seed)
    m = (get_mixer(kind, d, N, **kw) if isinstance(kind, str) else kind(d, N, **kw)).to(torch.float64).eval()
    with torch.no_grad():
        if isinstance(m, Mamba):  # steps Δ ~ 0.5 and no skip, so the scan dominates the output
            m.dt_bias.fill_(0.5)
            m.D.zero_()
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def _input(n, seed=1):
    """(2, n, d): sequence 0 has repeated rows (5 distinct random rows, so the matching mixers find repeats),
    sequence 1 is Gaussian."""
    g = torch.Generator().manual_seed(seed)
    vocab = torch.randn(5, d, dtype=torch.float64, generator=g)
    rows = vocab[torch.randint(0, 5, (n,), generator=g)]
    return torch.stack([rows, torch.randn(n, d, dtype=torch.float64, generator=g)])


def _skip_without_recurrence(m):
    if m.no_recurrence is not None:
        with pytest.raises(NotImplementedError, match=re.escape(m.no_recurrence)):
            m.init_state(1)
        pytest.skip(f"no recurrence: {m.no_recurrence}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 7, N])
def test_stepping_equals_the_parallel_forward(case, n):
    _, kind, kw = case
    m = _build(kind, kw)
    _skip_without_recurrence(m)
    u = _input(n)
    with torch.no_grad():
        y = m(u)
        ys, state = run_recurrent(m, u)
    assert ys.shape == y.shape
    if n > 1:  # at n = 1 a strict mask or a selection rule that needs a repeat gives exactly 0, checked below
        assert y.abs().max() > 1e-3  # a non-trivial output
    assert (ys - y).abs().max() <= 1e-10 * y.abs().max()
    assert state["t"] == n


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stepping_has_the_parallel_forwards_gradients(case):
    """The two paths are the same function, so the gradients of a random projection of the output, with respect
    to the input and to every parameter, agree too (float64, <= 1e-10 relative per tensor)."""
    _, kind, kw = case
    m = _build(kind, kw)
    _skip_without_recurrence(m)
    u = _input(7).requires_grad_()
    w = torch.randn(2, 7, d, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    leaves = [u, *(p for p in m.parameters() if p.requires_grad)]
    grads = []
    for f in (m, lambda x: run_recurrent(m, x)[0]):
        g = torch.autograd.grad((f(u) * w).sum(), leaves, allow_unused=True)
        grads.append([torch.zeros_like(x) if gi is None else gi for x, gi in zip(leaves, g, strict=True)])
    names = ["u"] + [name for name, p in m.named_parameters() if p.requires_grad]
    for pname, fast, step in zip(names, *grads, strict=True):
        assert torch.isfinite(step).all(), pname
        assert (step - fast).abs().max() <= 1e-10 * fast.abs().max(), pname


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_size_is_the_state_step_carries(case):
    """state_size(n) == the numbers in the state after n tokens, at every n in [1, seq_len] (one run), and
    ``measured_state_size`` agrees; a fixed-size mixer's count never exceeds state_size(seq_len) (its bound),
    one without a fixed-size state (a KV cache) grows with n."""
    _, kind, kw = case
    m = _build(kind, kw)
    _skip_without_recurrence(m)
    u = _input(N)
    state, counts = m.init_state(2), []
    with torch.no_grad():
        for t in range(N):
            _, state = m.step(state, u[:, t])
            counts.append(state_numbers(state))
    assert counts == [m.state_size(n) for n in range(1, N + 1)]
    for n in (1, 3, N):
        assert measured_state_size(m, n) == m.state_size(n)
    assert m.state_size() == counts[-1]
    if m.fixed_size_state:
        assert max(counts) <= m.state_size(N)
    else:
        assert counts[-1] > counts[0]


def test_attention_state_grows_as_two_n_d():
    m = _build("attention", {})
    assert not m.fixed_size_state
    assert [measured_state_size(m, n) for n in (1, 5, N)] == [2 * n * d for n in (1, 5, N)]


def test_state_is_not_mutated_by_step():
    """``step`` returns a new state; the one passed in still describes the position before the token."""
    m = _build("baseconv", dict(kernel_size=3))
    u = _input(3)
    s0 = m.init_state(2)
    _, s1 = m.step(s0, u[:, 0])
    _, s2 = m.step(s1, u[:, 1])
    assert s0["t"] == 0 and s1["t"] == 1 and s1["hist"].shape == (2, 1, d) and s2["hist"].shape == (2, 2, d)


@pytest.mark.parametrize("kind,kw", [("baseconv", dict(cyclic=True)), ("linear_bias_attention", dict(mask="none")),
                                     ("sparse_attention", dict(selection="random"))])
def test_mixers_without_a_causal_recurrence_say_why(kind, kw):
    m = get_mixer(kind, d, N, **kw)
    assert isinstance(m.no_recurrence, str) and m.no_recurrence
    assert m.state_size(N) is None
    with pytest.raises(NotImplementedError, match=re.escape(m.no_recurrence)):
        m.init_state(1)


def test_cyclic_baseconv_step_raises():
    m = BaseConv(d, N, cyclic=True)
    with pytest.raises(NotImplementedError, match="cyclic=True"):
        m.step({"t": 0}, torch.zeros(1, d))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_step_arguments_name_the_argument(case):
    _, kind, kw = case
    m = _build(kind, kw)
    if m.no_recurrence is not None:
        pytest.skip(m.no_recurrence)
    state = m.init_state(2)
    u_t = torch.zeros(2, d, dtype=torch.float64)
    bad = [
        ({"t": "0"}, u_t, "state"),
        (state, torch.zeros(2, d + 1, dtype=torch.float64), "u_t"),
        (state, torch.zeros(2, 1, d, dtype=torch.float64), "u_t"),
        (state, u_t.float(), "u_t"),
        (state, torch.zeros(2, d, dtype=torch.long), "u_t"),
        (state, torch.zeros(3, d, dtype=torch.float64), "u_t"),
        ({**state, "t": N}, u_t, "state"),
    ]
    for s, x, arg in bad:
        with pytest.raises(ValueError, match=arg):
            m.step(s, x)
    with pytest.raises(ValueError, match="batch"):
        m.init_state(0)


def test_rwkv_step_is_stable_where_the_plain_recurrence_overflows():
    """Keys of size ~300 overflow e^k in float32 (max ~e^88); the log-space state (a/b, log b) of ``step`` does
    not, and agrees with the float64 forward."""
    m64 = _build("rwkv", SMALL["rwkv"])
    u = _input(N)
    with torch.no_grad():
        m64.key.weight.mul_(300 / m64._kvr(u)[0].abs().max())  # max |k| = 300
        ref = m64(u)
        m32 = m64.to(torch.float32)
        assert not torch.isfinite(m32.forward_reference(u.float())).all()
        ys, state = run_recurrent(m32, u.float())
    assert torch.isfinite(ys).all() and all(torch.isfinite(state[k]).all() for k in ("r", "logb"))
    assert (ys.double() - ref).abs().max() < 1e-3 * max(1.0, ref.abs().max().item())
