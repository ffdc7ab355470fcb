"""The exercise checkers: every reference solution passes, every typical mistake fails with an AssertionError
that names the failing instance (its input, the expected and the got value)."""

import pytest
import torch
from conftest import all_mqar_sequences

from mqar_theory import exercises as X
from mqar_theory.constructions import attention_h27
from mqar_theory.constructions.attention_h27 import relative_bias


@pytest.mark.parametrize("name", sorted(X.EXERCISES))
def test_every_solution_passes_its_checker(name):
    assert X.check(name, X.SOLUTIONS[name]) > 100


def test_registries_agree():
    assert set(X.EXERCISES) == set(X.SOLUTIONS) == {"mqar_oracle", "baseconv", "attention_h27", "smallest_width",
                                                    "delta_step"}


def _fails(name, answer, *fragments):
    with pytest.raises(AssertionError) as e:
        X.check(name, answer)
    msg = str(e.value)
    assert msg.startswith(name), msg
    for f in ("expected", "got", *fragments):
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


# --- exercise 1: the oracle ------------------------------------------------------------------------------------
def _last_occurrence(x):
    return [next((x[j + 1] for j in reversed(range(i)) if x[j] == x[i]), -1) for i in range(len(x))]


def _off_by_one(x):  # answers the earlier occurrence itself, not its successor
    return [next((x[j] for j in range(i) if x[j] == x[i]), -1) for i in range(len(x))]


def _zero_for_none(x):
    return [next((x[j + 1] for j in range(i) if x[j] == x[i]), 0) for i in range(len(x))]


def _includes_itself(x):  # j <= i: the current position matches itself and reads the future
    return [next((x[j + 1] for j in range(i + 1) if x[j] == x[i]), -1) for i in range(len(x))]


def _reads_future(x):  # the next occurrence instead of an earlier one
    return [next((x[j + 1] for j in range(i + 1, len(x) - 1) if x[j] == x[i]), -1) for i in range(len(x))]


def _too_short(x):
    return X.solution_mqar_oracle(x)[:-1]


@pytest.mark.parametrize("wrong", [_last_occurrence, _off_by_one, _zero_for_none, _reads_future, _too_short])
def test_oracle_mistakes_fail_naming_the_tokens(wrong):
    _fails("mqar_oracle", wrong, "tokens x = [")


def test_oracle_that_raises_names_the_instance():
    msg = _fails("mqar_oracle", _includes_itself, "IndexError", "tokens x = [")
    assert "raised" in msg


def test_oracle_message_shows_position_expected_and_got():
    msg = _fails("mqar_oracle", _last_occurrence)
    assert "position" in msg and "\n  expected [" in msg and "\n  got      [" in msg


# --- exercise 2: eq. (1) ---------------------------------------------------------------------------------------
def _conv(u, h, lags):
    N = u.shape[1]
    y = torch.zeros_like(u)
    for i in range(N):
        for k in lags(i, N):
            if 0 <= i - k < N:
                y[:, i] += h[abs(k)] * u[:, i - k]
    return y


def _anticausal(u, W, b1, b2, h):  # y[i] = Σ_k h[k] u[i + k]
    return (u @ W + b1) * (_conv(u, h, lambda i, N: range(0, -N, -1)) + b2)


def _skips_current_tap(u, W, b1, b2, h):  # Σ_{k < i}: the current token does not reach itself
    return (u @ W + b1) * (_conv(u, h, lambda i, N: range(1, i + 1)) + b2)


def _shifted_filter(u, W, b1, b2, h):  # h[k] applied at lag k + 1
    N = u.shape[1]
    y = torch.zeros_like(u)
    for i in range(N):
        for k in range(i):
            y[:, i] += h[k] * u[:, i - k - 1]
    return (u @ W + b1) * (y + b2)


def _no_b1(u, W, b1, b2, h):
    return (u @ W) * (_conv_ok(u, h) + b2)


def _conv_ok(u, h):
    return _conv(u, h, lambda i, N: range(i + 1))


def _no_b2(u, W, b1, b2, h):
    return (u @ W + b1) * _conv_ok(u, h)


def _transposed_W(u, W, b1, b2, h):
    return (u @ W.T + b1) * (_conv_ok(u, h) + b2)


def _cyclic(u, W, b1, b2, h):  # an FFT convolution without zero padding wraps around
    N = u.shape[1]
    conv = torch.fft.irfft(torch.fft.rfft(u, n=N, dim=1) * torch.fft.rfft(h, n=N, dim=0), n=N, dim=1)
    return (u @ W + b1) * (conv + b2)


def _sum_not_product(u, W, b1, b2, h):
    return (u @ W + b1) + (_conv_ok(u, h) + b2)


def _wrong_shape(u, W, b1, b2, h):
    return X.solution_baseconv(u, W, b1, b2, h)[:, -1]


@pytest.mark.parametrize("wrong", [_anticausal, _skips_current_tap, _shifted_filter, _no_b1, _no_b2, _transposed_W,
                                   _cyclic, _sum_not_product])
def test_baseconv_mistakes_fail_naming_the_instance(wrong):
    _fails("baseconv", wrong, "u=", "W=", "h=", "y[b=")


def test_baseconv_wrong_shape_fails():
    _fails("baseconv", _wrong_shape, "shape", "u=")


def test_transposed_W_is_caught_only_where_d_is_at_least_2():
    msg = _fails("baseconv", _transposed_W)
    assert "d=1" not in msg.split("\n")[1]


# --- exercise 3: Prop H.27 -------------------------------------------------------------------------------------
def _edit(**changes):
    """The reference weights with some entries replaced: changes maps a name to fn(c, N, tensor) -> tensor."""
    def answer(c, N):
        w = X.solution_attention_h27(c, N)
        for k, f in changes.items():
            w[k] = f(c, N, w[k].clone())
        return w
    return answer


def _future_bias(c, N, B):  # the printed B1[key slot, value slot]: reads the next token (erratum)
    return torch.diag(torch.ones(N - 1, dtype=torch.float64), 1)


def _bias_two_back(c, N, B):
    return torch.diag(torch.ones(N - 2, dtype=torch.float64), -2)


def _transpose(c, N, W):
    return W.T.contiguous()


def _copy_into_value_block(c, N, W):
    W = torch.zeros_like(W)
    W[:c, c : 2 * c] = torch.eye(c)
    return W


def _read_key_block(c, N, W):
    W = torch.zeros_like(W)
    W[:c, c : 2 * c] = torch.eye(c)
    return W


def _diagonal_bias(c, N, B):
    return torch.eye(N, dtype=torch.float64)


def _zeros(c, N):
    return {k: torch.zeros((N, N) if k.startswith("B") else (3 * c, 3 * c)) for k in X.H27_WEIGHTS}


@pytest.mark.parametrize("wrong", [
    _edit(B1=_future_bias), _edit(B1=_bias_two_back), _edit(W_Q2=_transpose), _edit(W_V1=_copy_into_value_block),
    _edit(W_V2=_read_key_block), _edit(B2=lambda c, N, B: torch.tril(torch.ones(N, N, dtype=torch.float64), -1)),
    _edit(W_K2=lambda c, N, W: torch.zeros_like(W)), _zeros,
], ids=["printed-future-bias", "bias-two-back", "transposed-W_Q2", "V1-into-value-block", "V2-reads-keys",
        "B2-all-ones", "no-W_K2", "all-zero"])
def test_h27_mistakes_fail_naming_the_tokens(wrong):
    _fails("attention_h27", wrong, "c=", "N=", "tokens", "position")


def test_h27_bias_on_the_diagonal_is_harmless_under_the_strict_mask_but_a_full_B2_is_not():
    assert X.check("attention_h27", _edit(B2=_diagonal_bias)) > 0  # the strict mask (j < i) removes the diagonal


def test_h27_bad_shapes_and_keys_fail_naming_the_weight():
    with pytest.raises(AssertionError, match=r"W_V1 for c=6, N=8 must have shape \(18, 18\), got \(12, 12\)"):
        X.check("attention_h27", _edit(W_V1=lambda c, N, W: torch.zeros(2 * c, 2 * c)))
    def missing(c, N):
        w = X.solution_attention_h27(c, N)
        del w["B2"]
        return w
    with pytest.raises(AssertionError, match=r"missing \['B2'\]"):
        X.check("attention_h27", missing)


def test_the_project_construction_passes_the_h27_checker():
    def library(c, N):
        layer1, layer2 = attention_h27(c, N).double().layers
        w = {}
        for k, layer in ((1, layer1), (2, layer2)):
            w |= {f"W_Q{k}": layer.W_Q, f"W_K{k}": layer.W_K, f"W_V{k}": layer.W_V, f"B{k}": relative_bias(layer.r, N)}
        return w
    assert X.check("attention_h27", library) > 0


@pytest.mark.parametrize("c,N", [(4, 4), (6, 8), (8, 10)])
def test_mqar_shaped_sequences_match_the_test_enumerator(c, N):
    got = {tuple(r) for r in X.mqar_shaped_sequences(c, N).tolist()}
    assert got == {tuple(r) for r in all_mqar_sequences(c, N).tolist()}


def test_h27_encoding_is_remark_h26():
    E = X.h27_encoding(8)
    assert E[0].sum() == 0 and E[1, 1] == E[1, 17] == 1 and E[1].sum() == 2 and E[5, 13] == 1 and E[5].sum() == 1
    with pytest.raises(ValueError, match="c=5"):
        X.h27_encoding(5)


# --- exercise 4: the width search ------------------------------------------------------------------------------
def _largest(accuracy_of, widths, solved=0.9):
    ok = [d for d in widths if accuracy_of(d) >= solved]
    return max(ok) if ok else None


def _strict(accuracy_of, widths, solved=0.9):
    return next((d for d in sorted(widths) if accuracy_of(d) > solved), None)


def _given_order(accuracy_of, widths, solved=0.9):
    return next((d for d in widths if accuracy_of(d) >= solved), None)


def _bisect(accuracy_of, widths, solved=0.9):  # assumes accuracy grows with the width
    ws = sorted(widths)
    lo, hi = 0, len(ws)
    while lo < hi:
        mid = (lo + hi) // 2
        if accuracy_of(ws[mid]) >= solved:
            hi = mid
        else:
            lo = mid + 1
    return ws[lo] if lo < len(ws) else None


def _trains_everything(accuracy_of, widths, solved=0.9):
    accs = {d: accuracy_of(d) for d in widths}
    return min((d for d, a in accs.items() if a >= solved), default=None)


def _returns_index(accuracy_of, widths, solved=0.9):
    ws = sorted(widths)
    return next((i for i, d in enumerate(ws) if accuracy_of(d) >= solved), None)


def _twice(accuracy_of, widths, solved=0.9):
    for d in sorted(widths):
        accuracy_of(d)
        if accuracy_of(d) >= solved:
            return d
    return None


@pytest.mark.parametrize("wrong", [_largest, _strict, _given_order, _bisect, _trains_everything, _returns_index,
                                   _twice])
def test_width_search_mistakes_fail_naming_the_table(wrong):
    msg = _fails("smallest_width", wrong, "widths=", "accuracies=", "solved=")
    assert "calls" in msg or "trained" in msg


# --- the notebook's entry points -------------------------------------------------------------------------------
def _stub(*args):
    raise NotImplementedError("your code here")


def test_run_exercise_checks_the_reference_in_place_of_a_stub(capsys):
    out = X.run_exercise("mqar_oracle", _stub)
    assert out.source == "reference" and out.answer is X.SOLUTIONS["mqar_oracle"] and out.instances > 0
    assert "stub" in capsys.readouterr().out


def test_run_exercise_checks_a_correct_answer_and_fails_a_wrong_one():
    assert X.run_exercise("mqar_oracle", X.solution_mqar_oracle, verbose=False).source == "yours"
    with pytest.raises(AssertionError, match="tokens x ="):
        X.run_exercise("mqar_oracle", _last_occurrence, verbose=False)
    assert X.run_exercise("mqar_oracle", _last_occurrence, use_solution=True, verbose=False).source == "reference"


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="name='nope'"):
        X.check("nope", _stub)
    with pytest.raises(ValueError, match="answer"):
        X.check("baseconv", 3)
    with pytest.raises(ValueError, match="use_solution"):
        X.run_exercise("baseconv", _stub, use_solution="yes")
    with pytest.raises(ValueError, match="d_model"):
        X.cell_accuracy(0, **X.CELLS["N=8"])


def test_show_solution_returns_source():
    assert "def solution_baseconv" in X.show_solution("baseconv")


@pytest.mark.timeout(60)
def test_cell_accuracy_is_a_short_deterministic_training():
    a = X.cell_accuracy(4, **X.CELLS["N=8"], epochs=1, num_train=64, num_test=32)
    b = X.cell_accuracy(4, **X.CELLS["N=8"], epochs=1, num_train=64, num_test=32)
    assert 0 <= a["test_accuracy"] <= 1 and a["steps"] == 2
    assert a["test_accuracy"] == b["test_accuracy"] and a["loss_history"] == b["loss_history"]


# --- other correct answers (the hints' routes) pass too -------------------------------------------------------
def _one_pass_oracle(x):
    first, out = {}, []
    for i, t in enumerate(x):
        out.append(x[first[t] + 1] if t in first else -1)
        first.setdefault(t, i)
    return out


def _shift_add_baseconv(u, W, b1, b2, h):
    N = u.shape[1]
    conv = torch.zeros_like(u)
    for k in range(N):
        conv[:, k:] += h[k] * u[:, : N - k]
    return (u @ W + b1) * (conv + b2)


def _padded_fft_baseconv(u, W, b1, b2, h):
    N = u.shape[1]
    n = 2 * N
    conv = torch.fft.irfft(torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(h, n=n, dim=0), n=n, dim=1)[:, :N]
    return (u @ W + b1) * (conv + b2)


@pytest.mark.parametrize("name,answer", [("mqar_oracle", _one_pass_oracle), ("baseconv", _shift_add_baseconv),
                                         ("baseconv", _padded_fft_baseconv)])
def test_other_correct_answers_pass(name, answer):
    assert X.check(name, answer) > 100


def test_a_wrong_answer_is_a_short_verdict_not_a_traceback():
    """What the notebook shows: IPython prints ``_render_traceback_()`` in place of the traceback."""
    with pytest.raises(X.ExerciseFailed) as e:
        X.run_exercise("mqar_oracle", _last_occurrence, verbose=False)
    block = e.value._render_traceback_()
    assert block[0] == "✗ mqar_oracle: your answer is wrong"
    assert [ln.split(":")[0].strip() for ln in block[1:3]] == ["checked", "counterexample"]
    assert "tokens x =" in block[2] and any(ln.strip().startswith("hint:") for ln in block)
    assert len(block) <= 12 and isinstance(e.value, AssertionError)
    for name in X.EXERCISES:
        assert X.CHECKED[name] and X.HINTS[name]


@pytest.mark.timeout(120)
def test_ipython_shows_the_verdict_alone():
    """In a real IPython shell (the kernel's): the failing call prints the block, without checker frames."""
    import subprocess
    import sys

    code = ("from mqar_theory import exercises as X\n"
            "def bad(x):\n    return [-1] * len(x)\n"
            "X.run_exercise('mqar_oracle', bad)\n")
    out = subprocess.run([sys.executable, "-m", "IPython", "--colors=NoColor", "--quick", "-c", code],
                         capture_output=True, text=True, timeout=100)
    text = out.stdout + out.stderr
    assert "✗ mqar_oracle: your answer is wrong" in text and "hint:" in text
    assert "check_mqar_oracle" not in text and "Traceback" not in text


# --- exercise 5: the delta rule's step (notebook 08) -------------------------------------------------------------
def _no_erase(S, k, v, q, beta):  # linear attention's write: interference instead of overwrite
    S_new = S + beta * torch.outer(v, k)
    return S_new @ q, S_new


def _read_before_write(S, k, v, q, beta):
    S_new = S - beta * torch.outer(S @ k - v, k)
    return S @ q, S_new


def _erase_on_the_left(S, k, v, q, beta):  # (I - β k kᵀ) S: only defined when d_v == d_k, wrong even then
    S_new = S - beta * torch.outer(k, k @ S) + beta * torch.outer(v, k) if S.shape[0] == S.shape[1] else S
    return S_new @ q, S_new


def _beta_on_the_write_only(S, k, v, q, beta):
    S_new = S - torch.outer(S @ k, k) + beta * torch.outer(v, k)
    return S_new @ q, S_new


@pytest.mark.parametrize("answer", [_no_erase, _read_before_write, _erase_on_the_left, _beta_on_the_write_only])
def test_delta_step_mistakes_fail(answer):
    _fails("delta_step", answer)


def test_delta_step_matches_the_mixer_recurrence():
    """Stepping the reference solution over a sequence equals ``delta_rule_recurrent``, the recurrence the
    library's DeltaNet trains (its fast chunked form is tested against it), so the exercise asks for that rule."""
    from mqar_theory.mixers.delta_net import delta_rule_recurrent, l2_normalize

    g = torch.Generator().manual_seed(0)
    n, dk, dv = 7, 4, 3
    q, k = (l2_normalize(torch.randn(1, 1, n, dk, generator=g, dtype=torch.float64)) for _ in range(2))
    v = torch.randn(1, 1, n, dv, generator=g, dtype=torch.float64)
    beta = torch.rand(1, 1, n, generator=g, dtype=torch.float64)
    want = delta_rule_recurrent(q, k, v, beta)[0, 0]  # (n, d_v)
    S, outs = torch.zeros(dv, dk, dtype=torch.float64), []
    for t in range(n):
        o, S = X.solution_delta_step(S, k[0, 0, t], v[0, 0, t], q[0, 0, t], float(beta[0, 0, t]))
        outs.append(o)
    assert torch.allclose(torch.stack(outs), want, rtol=1e-12, atol=1e-12)
