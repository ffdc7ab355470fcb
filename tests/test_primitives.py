"""The appendix primitives as BaseConv parameter sets (arXiv 2312.04927, App. H, behind Thm 4.2).

Each builder is checked in float64 against a direct tensor expression of what it should compute,
on random inputs of shape (B, N, d); the gate algebra is re-derived symbolically with sympy from the
builders' own tensors.
"""

import pytest
import sympy as sp
import torch

from mqar_theory.constructions import primitives as P
from mqar_theory.mixers import baseconv_direct

B_, N_, D_ = 3, 8, 4


@pytest.fixture
def u():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B_, N_, D_, generator=g, dtype=torch.float64)  # (B, N, d)


def exact(a, b):
    assert a.shape == b.shape
    assert torch.equal(a, b), (a - b).abs().max()


def close(a, b, tol=1e-12):
    assert a.shape == b.shape
    assert torch.allclose(a, b, atol=tol, rtol=0), (a - b).abs().max()


# ---------------------------------------------------------------------------------------------
# BaseConvParams and apply
# ---------------------------------------------------------------------------------------------
def test_params_apply_eq1_as_the_naive_reference(u):
    g = torch.Generator().manual_seed(1)
    W, b1, b2, h = (torch.randn(*s, generator=g, dtype=torch.float64) for s in
                    [(D_, D_), (N_, D_), (N_, D_), (N_, D_)])
    for cyclic in (False, True):
        p = P.BaseConvParams(W, b1, b2, h, cyclic=cyclic)
        close(p(u), baseconv_direct(u, W, b1, b2, h, cyclic=cyclic))
        assert p.num_parameters == D_ * D_ + 3 * N_ * D_ and p.d == D_ and p.N == N_
    short = P.BaseConvParams(W, b1, b2, h[:3])  # a short filter (L = 3)
    assert short.num_parameters == D_ * D_ + 2 * N_ * D_ + 3 * D_
    close(short(u), baseconv_direct(u, W, b1, b2, h[:3]))


def test_params_cast_to_the_input_dtype(u):
    p = P.shift_down(D_, N_, 2)
    y = p(u.float())
    assert y.dtype == torch.float32
    exact(y, p(u).float())  # a shift moves values: float32 copies them exactly


def test_causal_layers_accept_shorter_inputs_cyclic_ones_do_not(u):
    for p in [P.shift_down(D_, N_, 3), P.block_add(D_, N_, 3)[0], P.multiply_gate(D_, N_, 0, 1),
              P.feature_shift([0, 1, 2, 3], N_, cyclic=False)]:
        for n in (1, 5, N_):
            close(p(u[:, :n]), p(u)[:, :n])
    with pytest.raises(ValueError, match="cyclic layer needs the full length N=8"):
        P.shift_up(D_, N_, 1)(u[:, :5])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: P.BaseConvParams(torch.zeros(2, 3), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2)),
         "W: must be square"),
        (lambda: P.BaseConvParams(torch.zeros(2, 2), torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, 2)),
         r"b1: must have shape \(N, d=2\)"),
        (lambda: P.BaseConvParams(torch.zeros(2, 2), torch.zeros(4, 2), torch.zeros(3, 2), torch.zeros(4, 2)),
         "b2: must have the shape of b1"),
        (lambda: P.BaseConvParams(torch.zeros(2, 2), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(5, 2)),
         r"h: must have shape \(L, d=2\) with 1 <= L <= N=4"),
        (lambda: P.BaseConvParams(torch.zeros(2), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2)),
         "W: must be a 2-D tensor"),
        (lambda: P.BaseConvParams(torch.zeros(2, 2), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2),
                                  cyclic=1), "cyclic=1: must be a bool"),
    ],
)
def test_params_reject_bad_shapes(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_apply_rejects_bad_inputs(u):
    p = P.identity(D_, N_)
    with pytest.raises(ValueError, match=r"u: must be a tensor of shape \(B, n, d\)"):
        p(u[0])
    with pytest.raises(ValueError, match="u: has 3 features, the layer expects d=4"):
        p(u[..., :3])
    with pytest.raises(ValueError, match=r"u: length 9 must lie in \[1, N=8\]"):
        p(torch.zeros(1, 9, D_, dtype=torch.float64))
    with pytest.raises(ValueError, match="params: must be a BaseConvParams"):
        P.apply("identity", u)
    with pytest.raises(ValueError, match=r"layers\[1\]: must be a BaseConvParams"):
        P.compose([p, None], u)


# ---------------------------------------------------------------------------------------------
# every primitive against a direct tensor expression
# ---------------------------------------------------------------------------------------------
def test_linear_projection_convolution_identity(u):
    g = torch.Generator().manual_seed(2)
    W = torch.randn(D_, D_, generator=g, dtype=torch.float64)
    close(P.linear_projection(W, N_)(u), u @ W)
    h = torch.randn(5, D_, generator=g, dtype=torch.float64)
    want = torch.zeros_like(u)  # (h ∗ u)[i, q] = Σ_{k <= i, k < 5} h[k, q] u[i - k, q]
    for i in range(N_):
        for k in range(min(5, i + 1)):
            want[:, i] += h[k] * u[:, i - k]
    close(P.convolution(h, N_)(u), want)
    exact(P.identity(D_, N_)(u), u)


@pytest.mark.parametrize("s", range(N_))
def test_shift_down_and_up(u, s):
    down = torch.zeros_like(u)
    down[:, s:] = u[:, : N_ - s]
    exact(P.shift_down(D_, N_, s)(u), down)
    up = torch.zeros_like(u)
    up[:, : N_ - s] = u[:, s:]
    close(P.shift_up(D_, N_, s)(u), up)
    close(P.compose(P.shift_up_paper(D_, N_, s), u), up)  # the paper's 3-layer count, same function
    assert len(P.shift_up_paper(D_, N_, s)) == 3


@pytest.mark.parametrize("s", [1, 2, 3, 4])
def test_block_add(u, s):
    layers = P.block_add(D_, N_, s)
    assert len(layers) == 2
    want = torch.zeros_like(u)
    want[:, :s] = 1.0
    want[:, s : 2 * s] = u[:, s : 2 * s] + u[:, : s]
    close(P.compose(layers, u), want)


@pytest.mark.parametrize("a, b", [(0, 1), (2, 0), (3, 3)])
def test_multiply_gate(u, a, b):
    y = P.multiply_gate(D_, N_, a, b)(u)
    want = torch.zeros_like(u)
    want[..., a] = u[..., a] * u[..., b]
    exact(y, want)
    kept = u.clone()
    kept[..., a] = u[..., a] * u[..., b]
    exact(P.multiply_gate(D_, N_, a, b, keep=True)(u), kept)


def test_add_and_constant_gates(u):
    want = torch.zeros_like(u)
    want[..., 2] = u[..., 0] + u[..., 3]
    close(P.add_gate(D_, N_, 0, 3, out=2)(u), want)
    kept = u.clone()
    kept[..., 2] = u[..., 0] + u[..., 3]
    close(P.add_gate(D_, N_, 0, 3, out=2, keep=True)(u), kept)
    close(P.add_gate(D_, N_, 1, 1, out=1)(u)[..., 1], 2 * u[..., 1])
    want = torch.zeros_like(u)
    want[..., 1] = -2.5
    exact(P.constant_gate(D_, N_, -2.5, feature=1)(u), want)
    kept = u.clone()
    kept[..., 1] = -2.5
    exact(P.constant_gate(D_, N_, -2.5, feature=1, keep=True)(u), kept)


def test_feature_dependent_shift(u):
    shifts = [0, 3, 1, 7]
    cyc = P.feature_shift(shifts, N_)(u)
    causal = P.feature_shift(shifts, N_, cyclic=False)(u)
    for q, s in enumerate(shifts):
        close(cyc[..., q], torch.roll(u[..., q], shifts=s, dims=1))
        want = torch.zeros_like(u[..., q])
        want[:, s:] = u[:, : N_ - s, q]
        exact(causal[..., q], want)


# ---------------------------------------------------------------------------------------------
# causal vs cyclic semantics, and the erratum of the printed shift-up proof
# ---------------------------------------------------------------------------------------------
def test_causal_and_cyclic_differ_by_the_wrapped_taps(u):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(N_, D_, generator=g, dtype=torch.float64)
    causal, cyclic = P.convolution(h, N_)(u), P.convolution(h, N_, cyclic=True)(u)
    wrapped = torch.zeros_like(u)  # taps k > i read u[i - k + N]
    for i in range(N_):
        for k in range(i + 1, N_):
            wrapped[:, i] += h[k] * u[:, i - k + N_]
    close(cyclic - causal, wrapped)
    assert wrapped.abs().max() > 0.1


def test_a_causal_stack_never_reads_ahead_the_cyclic_shift_up_does(u):
    g = torch.Generator().manual_seed(4)
    stack = [P.BaseConvParams(*(torch.randn(*s, generator=g, dtype=torch.float64) for s in
                                [(D_, D_), (N_, D_), (N_, D_), (N_, D_)])) for _ in range(3)]
    stack += P.block_add(D_, N_, 2) + [P.shift_down(D_, N_, 1)]
    v = u.clone()
    v[:, 5:] = torch.randn(B_, N_ - 5, D_, generator=g, dtype=torch.float64)  # change rows >= 5 only
    close(P.compose(stack, u)[:, :5], P.compose(stack, v)[:, :5])  # (rounding aside: BLAS blocking)
    up = P.shift_up(D_, N_, 1)  # row 4 of a shift up is u[5]: it must see the change
    assert not torch.equal(up(u)[:, 4], up(v)[:, 4])
    close(up(v)[:, 4], v[:, 5])


def test_erratum_identity_filter_does_not_reverse(u):
    """prop: prim-shift's printed proof: "the identity filter reverses" the sequence. It does not."""
    ident = P.convolution(torch.ones(1, D_, dtype=torch.float64), N_, cyclic=True)  # impulse_0
    close(ident(u), u)  # the identity filter is the identity (FFT rounding aside) ...
    assert not torch.allclose(ident(u), torch.flip(u, dims=[1]))  # ... not the reversal
    # and no cyclic filter reverses: every cyclic convolution commutes with the cyclic shift, the
    # reversal does not (rev(roll(u)) = roll(rev(u), -1))
    g = torch.Generator().manual_seed(5)
    conv = P.convolution(torch.randn(N_, D_, generator=g, dtype=torch.float64), N_, cyclic=True)
    roll = lambda x: torch.roll(x, 1, dims=1)
    rev = lambda x: torch.flip(x, dims=[1])
    close(conv(roll(u)), roll(conv(u)))
    assert not torch.allclose(rev(roll(u)), roll(rev(u)))


# ---------------------------------------------------------------------------------------------
# sympy: the builders' own tensors, run through eq. (1) on symbolic inputs
# ---------------------------------------------------------------------------------------------
def sym(t: torch.Tensor) -> sp.Matrix:
    return sp.Matrix(t.tolist()).applyfunc(sp.nsimplify)


def sym_eq1(p: P.BaseConvParams, u: sp.Matrix, b1=None) -> sp.Matrix:
    """Eq. (1) from the definition on sympy matrices, with the builder's tensors made exact
    (``b1`` may replace the builder's b1 by a symbolic one)."""
    n, d = u.shape
    W, b2, h = sym(p.W), sym(p.b2)[:n, :], sym(p.h)
    b1 = (sym(p.b1) if b1 is None else b1)[:n, :]
    conv = sp.zeros(n, d)
    for i in range(n):
        for q in range(d):
            taps = range(h.shape[0]) if p.cyclic else range(min(h.shape[0], i + 1))
            conv[i, q] = sum((h[k, q] * u[(i - k) % n, q] for k in taps), sp.Integer(0))
    return (u * W + b1).multiply_elementwise(conv + b2)


def test_sympy_gate_algebra_of_the_builders():
    a, b, c = sp.symbols("a b c")
    tok = sp.Matrix([[a, b, c]])  # one token, three features
    assert sp.expand(sym_eq1(P.multiply_gate(3, 1, 0, 1), tok) - sp.Matrix([[a * b, 0, 0]])) == sp.zeros(1, 3)
    assert sp.expand(sym_eq1(P.multiply_gate(3, 1, 2, 0, keep=True), tok) - sp.Matrix([[a, b, a * c]])) == (
        sp.zeros(1, 3))
    assert sym_eq1(P.add_gate(3, 1, 0, 2, out=1), tok) == sp.Matrix([[0, a + c, 0]])
    assert sym_eq1(P.constant_gate(3, 1, 7, feature=2), tok) == sp.Matrix([[0, 0, 7]])
    half = sp.Rational(1, 2)
    assert sym_eq1(P.constant_gate(3, 1, 0.5, feature=0, keep=True), tok) == sp.Matrix([[half, b, c]])
    # a symbolic r in the builder's b1 (built with r = 1): the output is r, whatever the input
    r = sp.Symbol("r")
    p = P.constant_gate(3, 2, 1.0, feature=1)
    seq = sp.Matrix([[a, b, c], [c, a, b]])
    assert sym_eq1(p, seq, b1=r * sym(p.b1)) == sp.Matrix([[0, r, 0], [0, r, 0]])
    # multiply gate on a sequence: the product row by row (h = impulse_0 reads no other row)
    seq_out = sym_eq1(P.multiply_gate(3, 2, 1, 2), seq)
    assert sp.expand(seq_out - sp.Matrix([[0, b * c, 0], [0, a * b, 0]])) == sp.zeros(2, 3)


@pytest.mark.parametrize("s", [1, 2, 3])
def test_sympy_shifts_and_block_add(s):
    n = 6
    x = sp.Matrix(n, 1, sp.symbols(f"x0:{n}"))
    assert list(sym_eq1(P.shift_down(1, n, s), x)) == [x[i - s] if i >= s else 0 for i in range(n)]
    assert list(sym_eq1(P.shift_up(1, n, s), x)) == [x[i + s] if i + s < n else 0 for i in range(n)]
    y = x
    for layer in P.block_add(1, n, s):
        y = sym_eq1(layer, y)
    want = [1 if i < s else (x[i] + x[i - s] if i < 2 * s else 0) for i in range(n)]
    assert [sp.expand(v) for v in y] == want
    # a feature-dependent shift moves each channel by its own amount
    xs = sp.Matrix(n, 2, sp.symbols(f"z0:{2 * n}"))
    y = sym_eq1(P.feature_shift([0, s], n), xs)
    assert [y[i, 1] for i in range(n)] == [xs[(i - s) % n, 1] for i in range(n)]
    assert [y[i, 0] for i in range(n)] == [xs[i, 0] for i in range(n)]


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: P.shift_down(4, 8, 8), r"s=8: must be an integer in \[0, N=8\)"),
        (lambda: P.shift_down(4, 8, -1), r"s=-1: must be an integer in \[0, N=8\)"),
        (lambda: P.shift_up(4, 8, 9), r"s=9: must be an integer in \[0, N=8\)"),
        (lambda: P.shift_up(4, 8, 1.0), r"s=1.0: must be an integer"),
        (lambda: P.block_add(4, 8, 5), "s=5: block add needs 2s <= N=8"),
        (lambda: P.block_add(4, 8, 0), "s=0: must be an integer >= 1"),
        (lambda: P.multiply_gate(4, 8, 4, 0), r"a=4: must be a feature index in \[0, d=4\)"),
        (lambda: P.multiply_gate(4, 8, 0, -1), r"b=-1: must be a feature index"),
        (lambda: P.add_gate(4, 8, 0, 1, out=7), r"out=7: must be a feature index"),
        (lambda: P.constant_gate(4, 8, "1"), "r='1': must be a real number"),
        (lambda: P.constant_gate(4, 8, 1.0, feature=4), r"feature=4: must be a feature index"),
        (lambda: P.feature_shift([0, 8], 8), r"shifts\[1\]=8: must be an integer in \[0, N=8\)"),
        (lambda: P.feature_shift([], 8), "d=0: must be an integer >= 1"),
        (lambda: P.identity(0, 8), "d=0: must be an integer >= 1"),
        (lambda: P.identity(4, 0), "N=0: must be an integer >= 1"),
        (lambda: P.linear_projection(torch.zeros(2, 3), 4), r"W: must be a square \(d, d\) matrix"),
        (lambda: P.convolution(torch.zeros(5, 2), 4), "h: has 5 taps, must have between 1 and N=4"),
        (lambda: P.convolution(torch.zeros(5), 4), r"h: must be a \(L, d\) filter"),
    ],
)
def test_builders_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_params_are_the_dense_form_of_the_one_sparse_layer(u):
    from mqar_theory.constructions.layers import SparseBaseConv

    prims = [P.identity(D_, N_), P.shift_down(D_, N_, 3), P.shift_up(D_, N_, 2), *P.block_add(D_, N_, 3),
             P.multiply_gate(D_, N_, 0, 1, keep=True), P.add_gate(D_, N_, 1, 2, 3), P.constant_gate(D_, N_, 2.5, 1),
             P.feature_shift([0, 1, 2, 3], N_, cyclic=True), P.convolution(torch.ones(3, D_), N_)]
    for p in prims:
        layer = p.to_layer()
        assert type(layer) is SparseBaseConv and layer.cyclic == p.cyclic and layer.filter_len == p.h.shape[0]
        back = P.BaseConvParams.from_layer(layer)
        for name in ("W", "b1", "b2", "h"):
            exact(getattr(back, name), getattr(p, name))
        assert back.cyclic == p.cyclic and layer.num_dense_parameters == p.num_parameters
        close(layer(u), p(u))
    with pytest.raises(ValueError, match="layer: must be a SparseBaseConv"):
        P.BaseConvParams.from_layer(P.identity(D_, N_))
