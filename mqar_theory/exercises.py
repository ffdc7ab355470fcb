"""Exercises with checkers for the notebooks: the reader writes the code, a checker judges it.

Five exercises (``EXERCISES``: name -> checker; ``SOLUTIONS``: name -> reference answer), the first four in
``notebooks/00_exercises.ipynb``, ``delta_step`` in ``notebooks/08_state_frontier.ipynb`` (``NOTEBOOK``):

``mqar_oracle``
    Definition 3.1 of Zoology (arXiv 2312.04927, §3.2): ``answer(x: list[int]) -> list[int]`` gives, at every
    position i, the token x[j+1] after the *first* earlier occurrence j < i of x[i], and -1 where x[i] has no
    earlier occurrence (the project's convention, ``mqar_theory.data.mqar_oracle``).
``baseconv``
    Eq. (1): ``answer(u, W, b1, b2, h) -> y = (u W + b1) ⊙ (h ∗ u + b2)`` with a causal long convolution,
    u (B, N, d), W (d, d), b1, b2, h (N, d), float64.
``attention_h27``
    Prop 4.3 / Prop H.27: ``answer(c, N) -> dict`` of the weights of two layers of linear-bias attention
    (W_Q1, W_K1, W_V1, W_Q2, W_K2, W_V2 of shape (3c, 3c); the biases B1, B2 of shape (N, N)) that solve MQAR
    on the role-blocked one-hot encoding ``h27_encoding`` (given), run by ``h27_forward`` (given).
``smallest_width``
    ``answer(accuracy_of, widths, solved=0.9) -> int | None``: the smallest width d in ``widths`` with
    ``accuracy_of(d) >= solved`` (None if none), training each width at most once and no width above the answer.
    The notebook then runs it with a short BaseConv training (``cell_accuracy``).
``delta_step``
    One step of the delta rule (DeltaNet, arXiv 2406.06484): ``answer(S, k, v, q, beta) -> (o, S_new)`` with
    S_new = S (I - β k kᵀ) + β v kᵀ and o = S_new q; S (d_v, d_k), k, q (d_k,), v (d_v,), β a float, float64.

A checker returns the number of instances it ran on a correct answer and raises ``AssertionError`` naming the
failing instance (its input, the expected and the got value) on a wrong one. Its oracle never calls the reference
solution: a dictionary lookup (``mqar_oracle``) for the oracle; a loop over taps for eq. (1); a loop over the
entries of S for the delta rule; for H.27 the weights are *run* on MQAR instances (all ``make_mqar``-shaped sequences
of tiny (c, N), then random ones) and their answers compared with the dictionary oracle, never compared with the
solution's matrices; for the width search a table lookup over every ordering of small width sets. Numeric checks are
in float64.

``run_exercise(name, answer, use_solution=False)`` is what the notebook calls: it checks ``answer``; an answer that
still raises ``NotImplementedError`` (an untouched stub) is reported as not attempted and the reference solution is
checked in its place, so "Run all" (and papermill under ``make figures``) goes through; a *wrong* answer fails
with ``ExerciseFailed`` (an ``AssertionError``), which a notebook shows as a short verdict (what was checked, the
counterexample, a hint: ``HINTS``) instead of a traceback through the checker.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .data import make_mqar, mqar_oracle
from .mixers.linear_bias_attention import linear_bias_attention
from .utils import is_int, is_number

__all__ = ["EXERCISES", "SOLUTIONS", "check", "run_exercise", "Outcome", "show_solution", "ExerciseFailed",
           "CHECKED", "HINTS", "NOTEBOOK",
           "check_mqar_oracle", "check_baseconv", "check_attention_h27", "check_smallest_width", "check_delta_step",
           "solution_mqar_oracle", "solution_baseconv", "solution_attention_h27", "solution_smallest_width",
           "solution_delta_step",
           "h27_encoding", "h27_forward", "h27_predict", "H27_WEIGHTS", "mqar_shaped_sequences",
           "cell_accuracy", "CELLS"]

H27_WEIGHTS = ("W_Q1", "W_K1", "W_V1", "B1", "W_Q2", "W_K2", "W_V2", "B2")


# --------------------------------------------------------------------------------------------------------------
# reference solutions (what a reader might write; the checkers never call them)
# --------------------------------------------------------------------------------------------------------------
def solution_mqar_oracle(x: list[int]) -> list[int]:
    """Definition 3.1 read literally: for each i, scan j = 0, 1, .., i-1 and stop at the first x[j] == x[i]."""
    out = []
    for i in range(len(x)):
        ans = -1
        for j in range(i):
            if x[j] == x[i]:
                ans = x[j + 1]  # j < i, so j + 1 <= i is inside the sequence
                break
        out.append(ans)
    return out


def solution_baseconv(u, W, b1, b2, h):
    """Eq. (1) with the causal convolution as a lower-triangular Toeplitz matrix per channel:
    (h ∗ u)[i, q] = Σ_{k <= i} h[k, q] u[i - k, q] = Σ_j T_q[i, j] u[j, q] with T_q[i, j] = h[i - j, q] for j <= i."""
    N = u.shape[1]
    i = torch.arange(N)
    lag = i[:, None] - i[None, :]  # (N, N) i - j
    T = torch.where((lag >= 0)[..., None], h[lag.clamp(min=0)], torch.zeros((), dtype=h.dtype))  # (N, N, d)
    conv = torch.einsum("ijq,bjq->biq", T, u)  # (B, N, d)
    return (u @ W + b1) * (conv + b2)


def solution_attention_h27(c: int, N: int) -> dict[str, torch.Tensor]:
    """Prop H.27's weights on the blocks key [0, c), value [c, 2c), query [2c, 3c) (causal mirror of the printed
    layer-1 bias: the key moves forward onto its value slot)."""
    d = 3 * c
    key, val, qry = slice(0, c), slice(c, 2 * c), slice(2 * c, 3 * c)
    eye = torch.eye(c, dtype=torch.float64)
    w = {name: torch.zeros(d, d, dtype=torch.float64) for name in ("W_Q1", "W_K1", "W_V1", "W_Q2", "W_K2", "W_V2")}
    # layer 1: Q K^T = 0; the bias B1[i, i-1] = 1 copies the key block of slot i-1 into slot i
    w["W_V1"][key, key] = eye
    B1 = torch.diag(torch.ones(N - 1, dtype=torch.float64), -1)  # (N, N) ones at [i, i-1]
    # layer 2: the query block of slot i against the key blocks of slots j < i; read their value blocks
    w["W_Q2"][qry, key] = eye
    w["W_K2"][key, key] = eye
    w["W_V2"][val, val] = eye
    B2 = torch.zeros(N, N, dtype=torch.float64)
    return {**w, "B1": B1, "B2": B2}


def solution_smallest_width(accuracy_of: Callable[[int], float], widths, solved: float = 0.9) -> int | None:
    """Train the widths in increasing order and stop at the first that reaches ``solved``."""
    for d in sorted(set(widths)):
        if accuracy_of(d) >= solved:
            return d
    return None


def solution_delta_step(S, k, v, q, beta):
    """Erase what S recalls for k, write v in its place (both scaled by β), then read with q."""
    S_new = S - beta * torch.outer(S @ k - v, k)  # = S (I - β k kᵀ) + β v kᵀ
    return S_new @ q, S_new


SOLUTIONS: dict[str, Callable] = {
    "mqar_oracle": solution_mqar_oracle,
    "baseconv": solution_baseconv,
    "attention_h27": solution_attention_h27,
    "smallest_width": solution_smallest_width,
    "delta_step": solution_delta_step,
}


# --------------------------------------------------------------------------------------------------------------
# helpers shared by the checkers
# --------------------------------------------------------------------------------------------------------------
def _short(x, limit: int = 12) -> str:
    """A readable rendering of a tensor / list: the values when small, the shape otherwise."""
    if isinstance(x, torch.Tensor):
        if x.numel() <= limit:
            vals = x.tolist()
            return str([round(v, 6) if isinstance(v, float) else v for v in vals]) if x.dim() <= 1 else str(vals)
        return f"tensor of shape {tuple(x.shape)}"
    return repr(x)


def _call(name: str, fn: Callable, args: tuple, instance: str, expected: str):
    """Call the reader's function; a NotImplementedError passes through (an untouched stub), any other exception
    becomes an AssertionError that names the instance, the expected value and what was got (the exception)."""
    try:
        return fn(*args)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as e:  # noqa: BLE001 - the reader's code may raise anything
        raise AssertionError(f"{name}: your function raised {type(e).__name__}: {e}\n  on {instance}\n"
                             f"  expected {expected}\n  got      {type(e).__name__} instead of a value") from e


def _as_tensor(name: str, what: str, got, shape: tuple, instance: str, dims: str = "") -> torch.Tensor:
    """The reader's ``got`` as a float64 tensor of ``shape``, else an AssertionError naming ``what`` was expected
    (``dims``: the axes' names, e.g. " (B, N, d)") on ``instance``."""
    try:
        got = torch.as_tensor(got, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(f"{name}: expected {what} a tensor of shape {shape} on {instance}, "
                             f"got {type(got).__name__}") from None
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"{name}: expected {what} of shape {shape}{dims}, got {tuple(got.shape)} on {instance}")
    return got


def _as_int_list(name: str, got, n: int, instance: str) -> list[int]:
    if isinstance(got, torch.Tensor):
        got = got.tolist()
    elif hasattr(got, "tolist"):
        got = got.tolist()
    if not isinstance(got, (list, tuple)) or len(got) != n:
        raise AssertionError(f"{name}: expected a list of {n} ints on {instance}, got {got!r}")
    try:
        ints = [int(v) for v in got]
    except (TypeError, ValueError):
        raise AssertionError(f"{name}: expected a list of {n} ints on {instance}, got {got!r}") from None
    if any(float(a) != b for a, b in zip(got, ints)):
        raise AssertionError(f"{name}: expected integer answers on {instance}, got {got!r}")
    return ints


# --------------------------------------------------------------------------------------------------------------
# exercise 1: the MQAR oracle
# --------------------------------------------------------------------------------------------------------------
def _oracle_instances(seed: int = 0):
    """(label, tokens) pairs: every sequence of length 1..6 over {0, 1, 2} (repeats of every kind, an answer at
    j + 1 = i), random make_mqar rows (filler 0, and random filler that repeats keys), random uniform rows."""
    for n in range(1, 7):
        for x in itertools.product(range(3), repeat=n):
            yield "exhaustive", list(x)
    for rnq in (False, True):
        data = make_mqar(vocab_size=16, seq_len=24, num_kv_pairs=4, num_examples=30, random_non_queries=rnq,
                         seed=seed)
        for row in data.inputs.tolist():
            yield f"make_mqar(c=16, N=24, K=4, random_non_queries={rnq})", row
    g = torch.Generator().manual_seed(seed)
    for _ in range(60):
        n = int(torch.randint(1, 41, (1,), generator=g))
        yield "random", torch.randint(0, 6, (n,), generator=g).tolist()


def check_mqar_oracle(answer: Callable[[list[int]], list[int]]) -> int:
    """Check ``answer(x) -> list`` against the dictionary oracle ``mqar_theory.data.mqar_oracle``."""
    count = 0
    for label, x in _oracle_instances():
        want = mqar_oracle(torch.tensor(x)).tolist()
        instance = f"tokens x = {x} ({label})"
        got = _call("mqar_oracle", answer, (list(x),), instance, str(want))
        got = _as_int_list("mqar_oracle", got, len(x), instance)
        if got != want:
            i = next(k for k, (a, b) in enumerate(zip(got, want)) if a != b)
            raise AssertionError(
                f"mqar_oracle: wrong answer at position {i} (token {x[i]}) of {instance}\n"
                f"  expected {want}\n  got      {got}\n"
                "  (answer x[j+1] for the FIRST j < i with x[j] == x[i]; -1 when there is none)")
        count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# exercise 2: BaseConv, eq. (1)
# --------------------------------------------------------------------------------------------------------------
def _baseconv_loops(u, W, b1, b2, h):
    """The checker's eq. (1): explicit sums, one tap and one input channel at a time (float64)."""
    B, N, d = u.shape
    proj = torch.zeros(B, N, d, dtype=torch.float64)
    for p in range(d):  # (u W)[b, i, q] = Σ_p u[b, i, p] W[p, q]
        proj += u[:, :, p : p + 1] * W[p][None, None, :]
    conv = torch.zeros(B, N, d, dtype=torch.float64)
    for i in range(N):  # (h ∗ u)[b, i, q] = Σ_{k=0..i} h[k, q] u[b, i-k, q]
        for k in range(i + 1):
            conv[:, i] += h[k] * u[:, i - k]
    return (proj + b1) * (conv + b2)


def _baseconv_instances(seed: int = 0):
    """(label, (u, W, b1, b2, h)) in float64: every setting of N = 2, d = 1 with entries in {-1, 0, 2} (the 9
    inputs u batched), every one-hot input at N = 3, d = 2 with random weights, and random instances."""
    vals = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    u_all = torch.cartesian_prod(vals, vals).reshape(9, 2, 1)  # (9, N=2, d=1)
    for w, b1a, b1b, b2a, b2b, h0, h1 in itertools.product(range(3), repeat=7):
        W = vals[w].reshape(1, 1)
        b1 = vals[[b1a, b1b]].reshape(2, 1)
        b2 = vals[[b2a, b2b]].reshape(2, 1)
        h = vals[[h0, h1]].reshape(2, 1)
        yield "exhaustive N=2, d=1, entries in {-1, 0, 2}", (u_all, W, b1, b2, h)
    g = torch.Generator().manual_seed(seed)
    N, d = 3, 2
    onehots = torch.eye(N * d, dtype=torch.float64).reshape(N * d, N, d)  # every (position, channel) impulse
    u = torch.cat([onehots, torch.zeros(1, N, d, dtype=torch.float64)])
    for _ in range(4):
        W, b1, b2, h = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((d, d), (N, d), (N, d), (N, d)))
        yield "one-hot inputs, N=3, d=2, random weights", (u, W, b1, b2, h)
    for B, N, d in ((1, 1, 1), (2, 5, 3), (3, 8, 2), (2, 16, 4), (1, 33, 2)):
        for _ in range(3):
            u, W, b1, b2, h = (torch.randn(s, generator=g, dtype=torch.float64)
                               for s in ((B, N, d), (d, d), (N, d), (N, d), (N, d)))
            yield f"random B={B}, N={N}, d={d}", (u, W, b1, b2, h)


def check_baseconv(answer: Callable) -> int:
    """Check ``answer(u, W, b1, b2, h) -> y`` against explicit loops over the taps (float64, tolerance 1e-9)."""
    count = 0
    for label, args in _baseconv_instances():
        u, W, b1, b2, h = args
        want = _baseconv_loops(*args)
        shown = ", ".join(f"{n}={_short(t)}" for n, t in zip(("u", "W", "b1", "b2", "h"), args))
        instance = f"{label}: {shown}"
        got = _call("baseconv", answer, tuple(t.clone() for t in args), instance, _short(want, 40))
        got = _as_tensor("baseconv", "y", got, tuple(want.shape), instance, " (B, N, d)")
        bad = ~torch.isclose(got, want, rtol=1e-9, atol=1e-9)
        if bad.any():
            b, i, q = (int(v) for v in bad.nonzero()[0])
            raise AssertionError(
                f"baseconv: wrong y[b={b}, i={i}, q={q}]: expected {want[b, i, q].item():.6g}, "
                f"got {got[b, i, q].item():.6g}\n  on {instance}\n"
                f"  u[b={b}] = {_short(u[b], 40)}\n  expected y[b={b}] = {_short(want[b], 40)}\n"
                f"  got      y[b={b}] = {_short(got[b], 40)}")
        count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# exercise 3: the weights of Prop H.27
# --------------------------------------------------------------------------------------------------------------
def h27_encoding(c: int) -> torch.Tensor:
    """(c, 3c) float64 table of Remark H.26's role-blocked one-hot input: token x writes onehot(x) into the key
    block [0, c) and the query block [2c, 3c) if it is a key (1 <= x < c/2), into the value block [c, 2c) if it is
    a value (c/2 <= x < c); filler 0 is the zero row. The stream is u = E[x], shape (N, 3c)."""
    if not (is_int(c) and c >= 4 and c % 2 == 0):
        raise ValueError(f"c={c!r}: must be an even integer >= 4")
    E = torch.zeros(c, 3 * c, dtype=torch.float64)
    for x in range(1, c // 2):
        E[x, x] = E[x, 2 * c + x] = 1.0
    for x in range(c // 2, c):
        E[x, c + x] = 1.0
    return E


def h27_forward(weights: dict, tokens, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run two residual layers of linear-bias attention with the strict mask (j < i) on the encoded tokens:
    u1 = E[x]; O1 = ((u1 W_Q1 (u1 W_K1)ᵀ + B1) ⊙ M) u1 W_V1; u2 = u1 + O1; O2 likewise on u2 with layer 2's weights.
    tokens: (N,) or (B, N). Returns (u1, O1, O2), each (B, N, 3c)."""
    x = torch.as_tensor(tokens).long()
    x = x[None] if x.dim() == 1 else x
    w = {k: torch.as_tensor(weights[k], dtype=torch.float64) for k in H27_WEIGHTS}
    u1 = h27_encoding(c)[x]  # (B, N, 3c)
    O1 = linear_bias_attention(u1, w["W_Q1"], w["W_K1"], w["W_V1"], w["B1"], "strict")  # (B, N, 3c)
    u2 = u1 + O1
    O2 = linear_bias_attention(u2, w["W_Q2"], w["W_K2"], w["W_V2"], w["B2"], "strict")  # (B, N, 3c)
    return u1, O1, O2


def h27_predict(weights: dict, tokens, c: int, threshold: float = 0.5) -> torch.Tensor:
    """(B, N) answers: the argmax of the value block that layer 2 writes (O2[..., c:2c]) where its top score is
    >= ``threshold``, else -1."""
    scores = h27_forward(weights, tokens, c)[2][..., c : 2 * c]  # (B, N, c)
    top, arg = scores.max(dim=-1)
    return torch.where(top >= threshold, arg, torch.full_like(arg, -1))


def mqar_shaped_sequences(c: int, N: int) -> torch.Tensor:
    """Every sequence ``make_mqar`` can produce for vocabulary c and even length N with filler 0, (M, N): for
    every K >= 1, ordered distinct keys from [1, c/2), distinct values from [c/2, c) in the context
    k1 v1 .. kK vK, and every injective placement of the K queries on the slots 2K + 2g < N."""
    if not (is_int(c) and c >= 4 and c % 2 == 0):
        raise ValueError(f"c={c!r}: must be an even integer >= 4")
    if not (is_int(N) and N >= 4 and N % 2 == 0):
        raise ValueError(f"N={N!r}: must be an even integer >= 4")
    rows = []
    for K in range(1, c // 2):
        S = (N - 2 * K) // 2
        if K > S:
            break
        for keys in itertools.permutations(range(1, c // 2), K):
            for values in itertools.permutations(range(c // 2, c), K):
                for slots in itertools.permutations(range(S), K):
                    row = [0] * N
                    for j, (k, v, s) in enumerate(zip(keys, values, slots)):
                        row[2 * j], row[2 * j + 1], row[2 * K + 2 * s] = k, v, k
                    rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def _check_h27_weights(weights, c: int, N: int) -> None:
    instance = f"c={c}, N={N}"
    if not isinstance(weights, dict):
        raise AssertionError(f"attention_h27: expected a dict with keys {list(H27_WEIGHTS)} for {instance}, "
                             f"got {type(weights).__name__}")
    missing = [k for k in H27_WEIGHTS if k not in weights]
    extra = sorted(set(weights) - set(H27_WEIGHTS))
    if missing or extra:
        raise AssertionError(f"attention_h27: for {instance} the dict must have exactly the keys "
                             f"{list(H27_WEIGHTS)}; missing {missing}, unexpected {extra}")
    for k in H27_WEIGHTS:
        want = (N, N) if k.startswith("B") else (3 * c, 3 * c)
        try:
            t = torch.as_tensor(weights[k], dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(f"attention_h27: {k} for {instance} is not a tensor: {weights[k]!r}") from None
        if tuple(t.shape) != want:
            raise AssertionError(f"attention_h27: {k} for {instance} must have shape {want}, got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise AssertionError(f"attention_h27: {k} for {instance} has non-finite entries")


def _h27_instances(seed: int = 0):
    """(c, N, label, tokens (M, N)): every make_mqar-shaped sequence at (6, 8) and (8, 8), then random make_mqar
    batches at larger (c, N)."""
    for c, N in ((6, 8), (8, 8)):
        yield c, N, "every make_mqar-shaped sequence", mqar_shaped_sequences(c, N)
    for i, (c, N, K) in enumerate(((8, 16, 2), (16, 16, 4), (20, 32, 6), (32, 24, 5))):
        data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=40, seed=seed + i)
        yield c, N, f"make_mqar(c={c}, N={N}, K={K})", data.inputs


def _expected_at_keys(X: torch.Tensor, c: int) -> torch.Tensor:
    """The constructions' answer convention: the dictionary oracle at key tokens (1 <= x < c/2), -1 elsewhere."""
    is_key = (X >= 1) & (X < c // 2)
    return torch.where(is_key, mqar_oracle(X), torch.full_like(X, -1))


def check_attention_h27(answer: Callable[[int, int], dict]) -> int:
    """Check ``answer(c, N) -> weights`` by running the weights (``h27_predict``) on MQAR instances and comparing
    every position with the dictionary oracle at key tokens (-1 elsewhere: ``constructions.expected_answers``)."""
    count = 0
    for c, N, label, X in _h27_instances():
        instance = f"c={c}, N={N}"
        weights = _call("attention_h27", answer, (c, N), instance, f"a dict of the weights {list(H27_WEIGHTS)}")
        _check_h27_weights(weights, c, N)
        got = h27_predict(weights, X, c)  # (M, N)
        want = _expected_at_keys(X, c)  # (M, N)
        bad = (got != want).any(dim=1)
        if bad.any():
            r = int(bad.nonzero()[0])
            i = int((got[r] != want[r]).nonzero()[0])
            _, O1, O2 = h27_forward(weights, X[r], c)
            s = O2[0, i, c : 2 * c]
            raise AssertionError(
                f"attention_h27: with your weights for {instance}, position {i} (token {int(X[r, i])}) of tokens "
                f"{X[r].tolist()} ({label}) answers {int(got[r, i])}, MQAR expects {int(want[r, i])}\n"
                f"  expected {want[r].tolist()}\n  got      {got[r].tolist()}\n"
                f"  value block of O2 at position {i} (scores of the value tokens {c // 2}..{c - 1}): "
                f"{[round(v, 3) for v in s[c // 2:].tolist()]}")
        count += X.shape[0]
    return count


# --------------------------------------------------------------------------------------------------------------
# exercise 5 (notebook 08): one step of the delta rule
# --------------------------------------------------------------------------------------------------------------
def _delta_loops(S, k, v, q, beta):
    """S_new[a, b] = S[a, b] - β (Σ_c S[a, c] k[c]) k[b] + β v[a] k[b]; o[a] = Σ_b S_new[a, b] q[b], entry by
    entry."""
    dv, dk = S.shape
    S_new = torch.empty_like(S)
    for a in range(dv):
        recalled = sum(S[a, c] * k[c] for c in range(dk))
        for b in range(dk):
            S_new[a, b] = S[a, b] - beta * recalled * k[b] + beta * v[a] * k[b]
    o = torch.stack([sum(S_new[a, b] * q[b] for b in range(dk)) for a in range(dv)])
    return o, S_new


def _delta_instances():
    g = torch.Generator().manual_seed(0)
    unit = lambda x: x / x.norm()  # noqa: E731
    k = unit(torch.randn(4, generator=g, dtype=torch.float64))
    v1, v2 = torch.eye(3, dtype=torch.float64)[0], torch.eye(3, dtype=torch.float64)[2]
    S1 = torch.outer(v1, k)  # (k, v1) already written with β = 1
    yield "overwrite: S holds (k, v1), write (k, v2) with β = 1 and read q = k (the answer is v2 exactly)", (
        S1, k, v2, k.clone(), 1.0)
    yield "empty state, β = 0.5", (torch.zeros(3, 4, dtype=torch.float64), k, v1, k.clone(), 0.5)
    for dv, dk in ((1, 1), (2, 3), (3, 2), (4, 4), (5, 8)):
        for beta in (1.0, 0.3):
            S, q = torch.randn(dv, dk, generator=g, dtype=torch.float64), torch.randn(dk, generator=g,
                                                                                      dtype=torch.float64)
            kk, vv = unit(torch.randn(dk, generator=g, dtype=torch.float64)), torch.randn(dv, generator=g,
                                                                                          dtype=torch.float64)
            for _ in range(10):
                yield f"random d_v={dv}, d_k={dk}, β={beta}", (S, kk, vv, q, beta)
                S = _delta_loops(S, kk, vv, q, beta)[1]
                kk = unit(torch.randn(dk, generator=g, dtype=torch.float64))


def check_delta_step(answer: Callable) -> int:
    """Check ``answer(S, k, v, q, beta) -> (o, S_new)`` against a loop over the entries of S (float64, 1e-9)."""
    count = 0
    for label, args in _delta_instances():
        S, k, v, q, beta = args
        want_o, want_S = _delta_loops(*args)
        instance = f"{label}: S={_short(S)}, k={_short(k)}, v={_short(v)}, q={_short(q)}"
        got = _call("delta_step", answer, tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args),
                    instance, f"(o={_short(want_o)}, S_new={_short(want_S)})")
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise AssertionError(f"delta_step: expected a pair (o, S_new) on {instance}, got {type(got).__name__}")
        for what, g_, w in (("S_new", got[1], want_S), ("o", got[0], want_o)):
            g_ = _as_tensor("delta_step", what, g_, tuple(w.shape), instance)
            if not torch.allclose(g_, w, rtol=1e-9, atol=1e-9):
                raise AssertionError(f"delta_step: wrong {what} on {instance}\n  expected {what} = {_short(w, 40)}"
                                     f"\n  got      {what} = {_short(g_, 40)}")
        count += 1
    return count


# --------------------------------------------------------------------------------------------------------------
# exercise 4: the smallest width that solves a cell
# --------------------------------------------------------------------------------------------------------------
class _Table:
    """A fake training: accuracy_of(d) looks d up in a table and records the calls."""

    def __init__(self, table: dict[int, float]):
        self.table, self.calls = table, []

    def __call__(self, d):
        if d not in self.table:
            raise AssertionError(f"smallest_width: accuracy_of({d!r}) asked for a width that is not in widths "
                                 f"{list(self.table)}")
        self.calls.append(d)
        return self.table[d]


def _width_instances(seed: int = 0):
    """(widths, accuracies, solved): every ordering of every subset of {4, 8, 16, 32} with every accuracy in
    {0.5, 0.9, 0.95} per width and solved in {0.9, 0.95} (ties at the threshold included), then random ones."""
    base = (4, 8, 16, 32)
    for k in range(1, len(base) + 1):
        for widths in itertools.permutations(base, k):
            for accs in itertools.product((0.5, 0.9, 0.95), repeat=k):
                for solved in (0.9, 0.95):
                    yield list(widths), dict(zip(widths, accs)), solved
    g = torch.Generator().manual_seed(seed)
    for _ in range(200):
        k = int(torch.randint(1, 11, (1,), generator=g))
        widths = torch.randperm(200, generator=g)[:k].add(1).tolist()
        accs = torch.rand(k, generator=g, dtype=torch.float64).tolist()
        yield widths, dict(zip(widths, accs)), float(torch.rand(1, generator=g, dtype=torch.float64))


def check_smallest_width(answer: Callable) -> int:
    """Check ``answer(accuracy_of, widths, solved)`` on fake trainings (table look-ups): the answer must be
    min{d in widths : accuracy(d) >= solved} (None if empty), with no width trained twice and no width above the
    answer trained."""
    count = 0
    for widths, accs, solved in _width_instances():
        reached = [d for d in widths if accs[d] >= solved]
        want = min(reached) if reached else None
        fake = _Table(accs)
        instance = f"widths={widths}, accuracies={accs}, solved={solved}"
        got = _call("smallest_width", answer, (fake, list(widths), solved), instance, str(want))
        if got != want or (got is not None and not is_int(got)):
            raise AssertionError(f"smallest_width: expected {want}, got {got!r}\n  on {instance}\n"
                                 f"  (widths trained, in order: {fake.calls})")
        twice = sorted({d for d in fake.calls if fake.calls.count(d) > 1})
        if twice:
            raise AssertionError(f"smallest_width: trained the widths {twice} more than once (training is "
                                 f"expensive)\n  on {instance}\n  expected each width trained at most once, "
                                 f"got the calls {fake.calls}")
        above = [d for d in fake.calls if want is not None and d > want]
        if above:
            raise AssertionError(f"smallest_width: trained {above}, wider than the answer {want}: try the widths "
                                 f"in increasing order and stop at the first that solves\n  on {instance}\n"
                                 f"  expected no width above {want} trained, got the calls {fake.calls}")
        count += 1
    return count


#: the cells of the notebook's width search: a short BaseConv training (2 layers, short then long filter) that
#: solves (N, K, c) = (8, 2, 8) first at d = 16 and (16, 2, 16) first at d = 32 among 4, 8, 16, 32, 64 (measured
#: with seed 0 on a CPU, one thread: 1-6 s per width)
CELLS = {
    "N=8": dict(seq_len=8, num_kv_pairs=2, vocab_size=8),
    "N=16": dict(seq_len=16, num_kv_pairs=2, vocab_size=16),
}


def cell_accuracy(d_model: int, *, seq_len: int, num_kv_pairs: int, vocab_size: int, device="cpu", seed: int = 0,
                  epochs: int = 20, lr: float = 1e-2, num_train: int = 1000, num_test: int = 200,
                  progress: bool = False) -> dict:
    """Train a 2-layer BaseConv ([3, -1]: a short then a long filter) of width ``d_model`` on one MQAR cell with
    ``mqar_theory.train.run_mqar`` and return its record (``test_accuracy``, ``train_accuracy``, ``steps``,
    ``seconds``, ...). A short budget: ``num_train`` fixed examples, ``epochs`` epochs of batch 32, init std 0.1;
    ``progress`` shows the run's tqdm bar."""
    from .train import run_mqar

    if not (is_int(d_model) and d_model >= 1):
        raise ValueError(f"d_model={d_model!r}: must be an integer >= 1")
    if not (is_number(lr) and lr > 0):
        raise ValueError(f"lr={lr!r}: must be a number > 0")
    return run_mqar("baseconv", d_model=int(d_model), n_layers=2,
                    mixer_kwargs=[{"kernel_size": 3}, {"kernel_size": -1}], vocab_size=vocab_size, seq_len=seq_len,
                    num_kv_pairs=num_kv_pairs, num_train=num_train, num_test=num_test, lr=lr, init_std=0.1,
                    epochs=epochs, batch_size=32, seed=seed, data_seed=seed, device=device, progress=bool(progress))


# --------------------------------------------------------------------------------------------------------------
# the registry and the notebook's entry points
# --------------------------------------------------------------------------------------------------------------
EXERCISES: dict[str, Callable[[Callable], int]] = {
    "mqar_oracle": check_mqar_oracle,
    "baseconv": check_baseconv,
    "attention_h27": check_attention_h27,
    "smallest_width": check_smallest_width,
    "delta_step": check_delta_step,
}
#: the notebook each exercise lives in (a fresh copy: ``mqar-theory workspace --reset NAME``)
NOTEBOOK = {"delta_step": "08"}


def _name(name: str) -> str:
    if name not in EXERCISES:
        raise ValueError(f"name={name!r}: not an exercise; the exercises are {sorted(EXERCISES)}")
    return name


def check(name: str, answer: Callable) -> int:
    """Run the checker of exercise ``name`` on ``answer``; returns the number of instances checked, raises
    ``AssertionError`` naming the failing instance (and lets a stub's ``NotImplementedError`` through)."""
    if not callable(answer):
        raise ValueError(f"answer: must be a function, got {type(answer).__name__}")
    return EXERCISES[_name(name)](answer)


#: what each checker compares an answer with, in one line (the first line of a failed verdict)
CHECKED = {
    "mqar_oracle": "your oracle against a dictionary lookup (Definition 3.1) on MQAR instances",
    "baseconv": "your y against eq. (1) computed tap by tap, float64, on random u, W, b1, b2, h",
    "attention_h27": "your weights *run* as two linear-bias attention layers on MQAR instances, answers against the "
                     "dictionary oracle",
    "smallest_width": "your search against a table of accuracies, over every ordering of small width sets",
    "delta_step": "your (o, S_new) against the delta rule computed entry by entry, float64, on random states and "
                  "an overwrite",
}
#: one hint per exercise, shown under the counterexample
HINTS = {
    "mqar_oracle": "the answer comes from the *first* earlier occurrence j < i of x[i], and is x[j + 1]; "
                   "-1 when x[i] has not occurred before",
    "baseconv": "(h * u)[i] = sum over k <= i of h[k] * u[i - k], channel by channel (causal: no future u); "
                "b1 and b2 are added before the product",
    "attention_h27": "layer 1 needs no scores: its bias B1[i, i-1] = 1 copies slot i-1's key block into slot i "
                     "(beside that slot's value); layer 2 scores the query block against those copied keys and "
                     "reads the value blocks (Prop H.27, App. H)",
    "smallest_width": "try the widths from the smallest up and stop at the first that solves; train each width "
                      "once, and none above the answer",
    "delta_step": "S k is what the state recalls for k now: subtract β (S k - v) kᵀ (erase the old, write the new), "
                  "then read o = S_new q with the *new* state",
}


class ExerciseFailed(AssertionError):
    """A wrong answer: ``str(e)`` is the verdict block; in IPython (``_render_traceback_``) the notebook shows the
    block alone, not ~35 lines of traceback through the checker."""

    def __init__(self, name: str, detail: str):
        self.name, self.detail = name, detail
        lines = [f"✗ {name}: your answer is wrong", f"  checked:        {CHECKED[name]}"]
        detail_lines = detail.splitlines() or [""]
        lines.append(f"  counterexample: {detail_lines[0]}")
        lines += [f"                  {ln.strip()}" for ln in detail_lines[1:]]
        lines.append(f"  hint:           {HINTS[name]}")
        lines.append(f"  (the reference: show_solution({name!r}); fresh copy: mqar-theory workspace --reset "
                     f"{NOTEBOOK.get(name, '00')})")
        super().__init__("\n".join(lines))

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


@dataclass(frozen=True)
class Outcome:
    """What ``run_exercise`` checked: ``answer`` is the function that passed (yours, or the reference)."""

    name: str
    answer: Callable
    source: str  # "yours" | "reference"
    instances: int
    message: str

    def __str__(self) -> str:
        return self.message


def run_exercise(name: str, answer: Callable, use_solution: bool = False, verbose: bool = True) -> Outcome:
    """Check ``answer`` for exercise ``name`` (or the reference solution when ``use_solution``).

    Decision (so that "Run all" and papermill go through while the reader's copy starts with stubs): an answer
    that raises ``NotImplementedError`` is an untouched stub; it is reported as not attempted and the reference
    solution is checked in its place. A wrong answer raises ``ExerciseFailed`` (an ``AssertionError``) holding
    the checker's message as the counterexample, with what was checked and a hint.
    """
    _name(name)
    if not isinstance(use_solution, bool):
        raise ValueError(f"use_solution={use_solution!r}: must be a bool")
    note = ""
    if not use_solution:
        try:
            n = check(name, answer)
            out = Outcome(name, answer, "yours", n, f"✓ {name}: your answer passed {n} instances")
            if verbose:
                print(out.message)
            return out
        except NotImplementedError as e:
            note = f"· {name}: your function is still a stub ({e or 'NotImplementedError'}); "
        except ExerciseFailed:
            raise
        except AssertionError as e:
            raise ExerciseFailed(name, str(e)) from None
    n = check(name, SOLUTIONS[name])
    msg = (note or f"· {name}: USE_SOLUTIONS is set; ") + f"checked the reference solution instead: {n} instances"
    out = Outcome(name, SOLUTIONS[name], "reference", n, msg)
    if verbose:
        print(out.message)
    return out


def show_solution(name: str) -> str:
    """The source code of the reference solution of exercise ``name`` (print it when stuck)."""
    return inspect.getsource(SOLUTIONS[_name(name)])

