"""mqar_theory.bounds: the registry of claims, the symbolic identities the constructions use,
``measure`` / ``check`` on small fake constructions, and the grid profiles."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import sympy as sp
import torch

from mqar_theory import bounds as B
from mqar_theory.constructions.attention_h27 import h27_parameter_count
from mqar_theory.constructions.base import Construction, MixerLayer, expected_answers, frozen
from mqar_theory.data import MQARConfig
from mqar_theory.mixers import baseconv

# ----------------------------------------------------------------------------------------------
# the registry
# ----------------------------------------------------------------------------------------------


def test_registry_has_every_claim_with_its_theorem():
    sources = " | ".join(b.source for b in B.BOUNDS.values())
    for thm in ["Zoology Prop 4.3", "Zoology Thm 4.4", "Zoology Thm 4.5", "2402.18668) §3.2 Thm 3.1",
                "2402.18668) §3.2 Thm 3.2", "2402.18668) §3.2 Remark 3.3", "2402.18668) §3.2 Thm 3.4",
                "Thm 3.2 + Thm 3.4"]:
        assert thm in sources, thm
    kinds = {(b.id, b.kind, b.quantity) for b in B.BOUNDS.values()}
    assert ("prop4.3-params", "upper", "params") in kinds
    assert ("thm4.4-params", "upper", "params") in kinds
    assert ("thm4.5-params", "upper", "params") in kinds
    assert ("based-thm3.2-layers", "lower", "layers") in kinds
    assert ("based-thm3.1-state", "lower", "state_bits") in kinds
    for b in B.BOUNDS.values():
        assert b.full_expr.free_symbols <= set(B.SYMBOLS.values()), b.id
        assert b.statement and b.source
    assert not B.BOUNDS["based-thm3.4-layers"].verified  # its exponent is not checked against Based (arXiv 2402.18668)


def test_bound_record_rejects_bad_fields():
    with pytest.raises(ValueError, match="kind="):
        B.Bound("x", "s", "sideways", "params", B.c, "st")
    with pytest.raises(ValueError, match="quantity="):
        B.Bound("x", "s", "upper", "flops", B.c, "st")
    with pytest.raises(ValueError, match="expr="):
        B.Bound("x", "s", "upper", "params", sp.Symbol("zeta"), "st")
    with pytest.raises(ValueError, match="bound="):
        B.get_bound("no-such-bound")
    with pytest.raises(ValueError, match=r"needs \['c'\]"):
        B.BOUNDS["prop4.3-params"].evaluate(N=3)


def test_display_writes_logs_base_2():
    assert B.BOUNDS["based-thm3.2-layers"].display == "log(2*log(c))"
    assert B.BOUNDS["thm4.4-params"].display == "N*log(c)*log(N*c)**2"
    assert "log = log2" in str(B.get_bound("di-layers"))


def test_bound_values_at_named_points():
    get = B.BOUNDS.__getitem__
    assert get("prop4.3-params").evaluate(c=8) == 64
    assert get("prop4.3-width").evaluate(c=8) == 24
    assert get("thm4.5-params").evaluate(t=3, N=16, c=8) == 3 * 16 * 8
    # Based Thm 3.2 with d = log2 c: log2(2 * 10) layers at c = 1024, exactly 4 at c = 256
    assert get("based-thm3.2-layers").evaluate(c=1024) == pytest.approx(math.log2(20))
    assert get("based-thm3.2-layers").evaluate(c=256) == 4
    # Remark 3.3: floor(log2(2p)), exact at powers of two
    assert [get("based-rem3.3-layers").evaluate(p=k) for k in range(1, 9)] == [1, 2, 2, 3, 3, 3, 3, 4]
    comb = get("based-combined-layers")
    assert comb.evaluate(c=16, N=256) == 3 and comb.evaluate(c=2**16, N=16) == 4
    # Thm 3.4 at the largest admissible eps reads log log N - log log d
    t34 = get("based-thm3.4-layers")
    assert sp.simplify(t34.full_expr - (B.log2(B.log2(B.N)) - B.log2(B.log2(B.d)))) == 0
    assert t34.evaluate(d=16, N=2**16) == pytest.approx(2.0)
    assert t34.holds(d=16, N=2**16, c=16)
    assert not t34.holds(d=2**16, N=2**16, c=16)  # width N: eps* = 0, no bound
    assert not t34.holds(d=3, N=2**16, c=16)  # d < log2 c: no encoding fits
    assert not t34.holds(d=16, N=64, c=128)  # c > N
    assert not get("based-combined-layers").holds(d=64, N=64, c=16)


@pytest.mark.parametrize("bid", sorted(B.BOUNDS))
def test_lambdified_form_agrees_with_evalf(bid):
    b = B.BOUNDS[bid]
    rng = np.random.default_rng(0)
    pts = {s: rng.integers(4, 4096, size=5).astype(float) for s in b.symbols}
    if "p" in pts:
        pts["p"] = np.array([1.0, 2, 3, 4, 8])
    vec = b.evaluate(**pts)
    one = [b.evaluate(**{s: v[i] for s, v in pts.items()}) for i in range(5)]
    np.testing.assert_allclose(vec, one, rtol=1e-12)
    # constants broadcast over the grid they are drawn on
    assert np.shape(b.evaluate(**pts, N=np.ones(5) * 64) if "N" not in pts else vec) == (5,)


# ----------------------------------------------------------------------------------------------
# symbolic identities the constructions rely on
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_pm1_code_equality_product(bits):
    """prod_b (1 + a_b a'_b) / 2 = [a == a'] on every pair of ±1 vectors (the key-equality gate)."""
    a = sp.symbols(f"a0:{bits}")
    a2 = sp.symbols(f"b0:{bits}")
    prod = sp.prod([(1 + x * y) / 2 for x, y in zip(a, a2, strict=True)])
    assert sp.Poly(sp.expand(prod), *a, *a2).total_degree() == 2 * bits  # degree 2d: Based Thm 3.2's count
    for u in itertools.product([-1, 1], repeat=bits):
        for v in itertools.product([-1, 1], repeat=bits):
            val = prod.subs(dict(zip(a, u, strict=True))).subs(dict(zip(a2, v, strict=True)))
            assert val == (1 if u == v else 0)


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_pm1_inner_product_is_bits_minus_twice_hamming(bits):
    a = sp.symbols(f"a0:{bits}")
    a2 = sp.symbols(f"b0:{bits}")
    # algebraic identity once (1 - a a')/2 is the mismatch indicator ...
    inner = sum(x * y for x, y in zip(a, a2, strict=True))
    mismatch = sum((1 - x * y) / 2 for x, y in zip(a, a2, strict=True))
    assert sp.simplify(inner - (bits - 2 * mismatch)) == 0
    # ... which it is on ±1 values
    for u in itertools.product([-1, 1], repeat=bits):
        for v in itertools.product([-1, 1], repeat=bits):
            ham = sum(x != y for x, y in zip(u, v, strict=True))
            assert sum(x * y for x, y in zip(u, v, strict=True)) == bits - 2 * ham
            assert mismatch.subs(dict(zip(a, u, strict=True))).subs(dict(zip(a2, v, strict=True))) == ham
    # the gap a softmax or threshold read-out relies on: match scores `bits`, any mismatch <= bits - 2


def sym_baseconv(u, W, b1, b2, h, cyclic=False):
    """Eq. (1) on sympy matrices: y = (u W + b1) ⊙ (h ∗ u + b2); u, b1, b2: (n, d); h: (L, d)."""
    n, dm = u.shape
    conv = sp.zeros(n, dm)
    for i in range(n):
        for q in range(dm):
            taps = range(h.shape[0]) if cyclic else range(min(h.shape[0], i + 1))
            conv[i, q] = sum((h[k, q] * u[(i - k) % n, q] for k in taps), sp.Integer(0))
    return (u * W + b1).multiply_elementwise(conv + b2)


def impulse(s, L, dm):
    h = sp.zeros(L, dm)
    h[s % L, :] = sp.ones(1, dm)
    return h


def test_sym_baseconv_is_the_library_eq1():
    rng = np.random.default_rng(1)
    n, dm = 5, 3
    arrs = [rng.integers(-3, 4, size=s) for s in [(n, dm), (dm, dm), (n, dm), (n, dm), (n, dm)]]
    for cyclic in (False, True):
        sym = sym_baseconv(*[sp.Matrix(a) for a in arrs], cyclic=cyclic)
        u, W, b1, b2, h = [torch.tensor(a, dtype=torch.float64) for a in arrs]
        lib = baseconv(u[None], W, b1, b2, h, cyclic=cyclic)[0]
        np.testing.assert_allclose(np.array(sym, dtype=float), lib.numpy(), atol=1e-9)


def test_gate_algebra_of_eq1():
    """Multiply, add, constant gates and linear/convolution primitives (arXiv 2312.04927, Thm 4.2)."""
    a, b_, r = sp.symbols("a b r")
    u = sp.Matrix([[a, b_]])  # one token, features (a, b)
    Z, O = sp.zeros(1, 2), sp.ones(1, 2)
    # multiply gate: W copies b into feature 0, the filter reads a, no biases -> a*b
    W = sp.Matrix([[0, 0], [1, 0]])
    assert sp.expand(sym_baseconv(u, W, Z, Z, impulse(0, 1, 2))[0, 0] - a * b_) == 0
    # add gate: W sums a and b into feature 0, gate open (h = 0, b2 = 1) -> a + b
    W = sp.Matrix([[1, 0], [1, 0]])
    assert sp.expand(sym_baseconv(u, W, Z, O, sp.zeros(1, 2))[0, 0] - (a + b_)) == 0
    # constant gate: W = 0, h = 0, b1 = r, b2 = 1 -> r
    assert sym_baseconv(u, sp.zeros(2, 2), sp.Matrix([[r, 0]]), O, sp.zeros(1, 2))[0, 0] == r
    # linear projection (h = 0, b1 = 0, b2 = 1) and convolution (W = 0, b1 = 1, b2 = 0) on a sequence
    n = 4
    x = sp.Matrix(n, 2, sp.symbols("x0:8"))
    Wg = sp.Matrix(2, 2, sp.symbols("w0:4"))
    hg = sp.Matrix(n, 2, sp.symbols("h0:8"))
    assert sym_baseconv(x, Wg, sp.zeros(n, 2), sp.ones(n, 2), sp.zeros(n, 2)) == x * Wg
    conv = sym_baseconv(x, sp.zeros(2, 2), sp.ones(n, 2), sp.zeros(n, 2), hg)
    assert sp.expand(conv[3, 1] - sum(hg[k, 1] * x[3 - k, 1] for k in range(4))) == 0


@pytest.mark.parametrize("s", [1, 2])
def test_shift_and_block_add_algebra(s):
    n = 6
    x = sp.Matrix(n, 1, sp.symbols(f"x0:{n}"))
    one, zero = sp.ones(n, 1), sp.zeros(n, 1)
    # shift down by s: y[i] = x[i - s] (0 for i < s)
    down = sym_baseconv(x, sp.zeros(1, 1), one, zero, impulse(s, n, 1))
    assert list(down) == [x[i - s] if i >= s else 0 for i in range(n)]
    # shift up by s: cyclic impulse at -s with the row mask 1[i + s < n] (the corrected prop: prim-shift)
    mask = sp.Matrix([[1 if i + s < n else 0] for i in range(n)])
    up = sym_baseconv(x, sp.zeros(1, 1), mask, zero, impulse(-s, n, 1), cyclic=True)
    assert list(up) == [x[i + s] if i + s < n else 0 for i in range(n)]
    # block add (2 layers): filter 1 + X^s masked to rows [s, 2s), then ones written into rows < s
    h1 = impulse(0, n, 1) + impulse(s, n, 1)
    b1 = sp.Matrix([[1 if s <= i < 2 * s else 0] for i in range(n)])
    y1 = sym_baseconv(x, sp.zeros(1, 1), b1, zero, h1)
    b2 = sp.Matrix([[1 if i < s else 0] for i in range(n)])
    y2 = sym_baseconv(y1, sp.zeros(1, 1), one, b2, impulse(0, n, 1))
    want = [1 if i < s else (x[i] + x[i - s] if i < 2 * s else 0) for i in range(n)]
    assert [sp.expand(v) for v in y2] == want


def to_sym(params):
    """A ``primitives.BaseConvParams`` as exact sympy matrices (its entries are small integers)."""
    conv = [sp.Matrix(t.tolist()).applyfunc(sp.nsimplify) for t in (params.W, params.b1, params.b2, params.h)]
    return conv, params.cyclic


def run_sym(layers, u):
    for layer in layers:
        (W, b1, b2, h), cyclic = to_sym(layer)
        u = sym_baseconv(u, W, b1, b2, h, cyclic=cyclic)
    return u.applyfunc(sp.expand)


def test_library_primitives_have_the_gate_algebra():
    """The parameter sets of ``constructions.primitives`` produce, on a symbolic input, exactly the
    algebra above (so their tests on numbers are not a coincidence of the values tried)."""
    from mqar_theory.constructions import primitives as P

    n, dm = 6, 3
    x = sp.Matrix(n, dm, lambda i, q: sp.Symbol(f"x{i}_{q}"))
    y = run_sym([P.multiply_gate(dm, n, a=0, b=2)], x)
    assert list(y[:, 0]) == [sp.expand(x[i, 0] * x[i, 2]) for i in range(n)] and y[:, 1:] == sp.zeros(n, 2)
    y = run_sym([P.multiply_gate(dm, n, a=1, b=0, keep=True)], x)
    assert list(y[:, 1]) == [sp.expand(x[i, 1] * x[i, 0]) for i in range(n)] and y[:, [0, 2]] == x[:, [0, 2]]
    y = run_sym([P.add_gate(dm, n, a=0, b=1, out=2)], x)
    assert list(y[:, 2]) == [x[i, 0] + x[i, 1] for i in range(n)]
    y = run_sym([P.constant_gate(dm, n, r=3, feature=1, keep=True)], x)
    assert list(y[:, 1]) == [3] * n and y[:, [0, 2]] == x[:, [0, 2]]
    W = torch.tensor([[1.0, 2, 0], [0, -1, 1], [3, 0, 0]])
    assert run_sym([P.linear_projection(W, n)], x) == (x * sp.Matrix(W.tolist()).applyfunc(sp.nsimplify))
    for s in (1, 2):
        y = run_sym([P.shift_down(dm, n, s)], x)
        assert y == sp.Matrix(n, dm, lambda i, q, s=s: x[i - s, q] if i >= s else 0)
        y = run_sym([P.shift_up(dm, n, s)], x)
        assert y == sp.Matrix(n, dm, lambda i, q, s=s: x[i + s, q] if i + s < n else 0)
        assert run_sym(P.shift_up_paper(dm, n, s), x) == y
        y = run_sym(P.block_add(dm, n, s), x)
        want = sp.Matrix(n, dm, lambda i, q, s=s: 1 if i < s else (x[i, q] + x[i - s, q] if i < 2 * s else 0))
        assert y == want


def test_h27_parameter_count_from_layer_shapes():
    assert sp.simplify(h27_parameter_count() - 54 * B.c**2) == 0
    # Prop 4.3's O(c^2) then holds with the constant 54, whatever N is
    for cc in (4, 64, 1024):
        count = int(h27_parameter_count().subs(B.c, cc))
        assert count / B.BOUNDS["prop4.3-params"].evaluate(c=cc) == 54


# ----------------------------------------------------------------------------------------------
# measure / check on fake constructions
# ----------------------------------------------------------------------------------------------
class _Id(MixerLayer):
    def forward(self, u):
        return u


class Fake(Construction):
    """Answers by the dictionary oracle; its sizes are set by the test (c² parameters by default)."""

    name = "fake"
    theorem = "none"

    def __init__(self, vocab_size, seq_len, params_like="c2", layers=2, broken=False, scale=1.0):
        super().__init__(vocab_size, seq_len)
        n = {"c2": vocab_size**2, "Nc": seq_len * vocab_size}[params_like]
        self.table = frozen(torch.zeros(n))
        self.register_buffer("codes", torch.zeros(vocab_size))
        self.layers = torch.nn.ModuleList(_Id() for _ in range(layers))
        self.broken, self.scale = broken, scale

    @classmethod
    def fixed_tables(cls, c, N):
        return {"codes": torch.zeros(c)}

    def encode(self, tokens):  # not position-wise (a fake): channel 0 carries the oracle's answer
        x = self.check_tokens(tokens)
        u = torch.zeros(*x.shape, 3 * self.vocab_size, dtype=self.dtype, device=x.device)
        u[..., 0] = expected_answers(x, self.vocab_size).to(x.device).to(u.dtype)
        return u

    def decode(self, stream):
        ans = stream[..., 0].round().long()
        return torch.full_like(ans, -1) if self.broken else ans

    def margin(self, tokens):
        x = self.check_tokens(tokens)
        return torch.full(x.shape, 0.5 * self.scale, dtype=self.dtype, device=x.device)


class FakeNoMargin(Fake):
    def margin(self, tokens):
        raise NotImplementedError


_MEASURE_SIZES = B.measure_sizes


def _sizes_of_a_fake(con, tokens):
    """A Fake answers by reading the oracle in Python, which the operator trace refuses (as it should: see
    ``test_a_fake_is_refused_by_the_trace``). The plumbing tests below measure it the old way: stored
    tensors and the layers the hooks see."""
    if not isinstance(con, Fake):
        return _MEASURE_SIZES(con, tokens)
    s = B.count_tensors(con, fixed={id(con.codes): torch.zeros(con.vocab_size)})
    s["values"] = s["params"]
    s.update(B.trace(con, con.check_tokens(tokens)[:1]), created=0, scalars=0, structure=0, position_wise=True,
             locality_message="")
    return s


@pytest.fixture(autouse=True)
def _measure_fakes_the_old_way(monkeypatch):
    monkeypatch.setattr("mqar_theory.bounds.measurement.measure_sizes", _sizes_of_a_fake)


def test_a_fake_is_refused_by_the_trace():
    from mqar_theory.bounds.observe import MeasurementError

    with pytest.raises(MeasurementError, match="not among the construction's counted tensors|read into Python"):
        _MEASURE_SIZES(Fake(8, 16), torch.zeros(1, 16, dtype=torch.long))


SMALL = B.grid_points([16, 32, 64], [8, 16, 32])


def test_measure_columns_and_exactness():
    df = B.measure(Fake, SMALL, num_instances=3, device="cpu", bounds=["prop4.3-params", "prop4.3-width"])
    assert isinstance(df, pd.DataFrame) and len(df) == len(SMALL)
    for col in ["construction", "theorem", "N", "c", "K", "t", "params", "fixed", "layers", "width",
                "accuracy", "label_accuracy", "errors", "margin_min", "seconds",
                "bound:prop4.3-params", "ratio:prop4.3-params"]:
        assert col in df.columns, col
    assert (df["construction"] == "fake").all()
    assert (df["accuracy"] == 1.0).all() and (df["label_accuracy"] == 1.0).all() and (df["errors"] == 0).all()
    assert (df["params"] == df["c"] ** 2).all() and (df["fixed"] == df["c"]).all()
    assert (df["ratio:prop4.3-params"] == 1.0).all() and (df["ratio:prop4.3-width"] == 1.0).all()
    assert (df["t"] >= 1).all() and (df["t"] <= df["K"]).all()
    assert df["margin_min"].isna().all()  # float64: margins only on request
    summary = B.check(df, "prop4.3-params", const=1.0)
    assert summary["max_ratio"] == 1.0 and summary["slopes"]["N"] == pytest.approx(0.0, abs=1e-12)


def test_measure_passes_builder_constants_and_reports_float32_margins():
    grid = [dict(p, scale=3.0) for p in SMALL[:2]]
    df = B.measure(Fake, grid, num_instances=2, device="cpu", dtype=torch.float32, bounds=[])
    assert (df["scale"] == 3.0).all() and (df["dtype"] == "float32").all()
    assert (df["margin_min"] == 1.5).all()
    df = B.measure(FakeNoMargin, SMALL[:1], num_instances=2, device="cpu", dtype=torch.float32, bounds=[])
    assert df["margin_min"].isna().all()


def test_check_rejects_a_ratio_above_the_constant_or_growing():
    df = B.measure(Fake, SMALL, num_instances=2, device="cpu", bounds=["prop4.3-params"])
    with pytest.raises(AssertionError, match=r"exceeds 0.5 at 9 point"):
        B.check(df, "prop4.3-params", const=0.5)
    # N*c parameters against an O(c^2) claim: ratio N/c, bounded on this grid but growing in N
    df = B.measure(lambda c_, n_: Fake(c_, n_, params_like="Nc"), SMALL, num_instances=2, device="cpu",
                   bounds=["prop4.3-params"])
    with pytest.raises(AssertionError, match=r"grows .*'N': 1\.0"):
        B.check(df, "prop4.3-params", const=100.0)
    with pytest.raises(ValueError, match="const="):
        B.check(df, "prop4.3-params", const=0)
    with pytest.raises(ValueError, match="no column 'ratio:thm4.5-params'"):
        B.check(df, "thm4.5-params", const=1.0)


def test_check_rejects_an_inexact_construction():
    df = B.measure(lambda c_, n_: Fake(c_, n_, broken=True), SMALL[:2], num_instances=2, device="cpu",
                   bounds=["prop4.3-params"])
    assert (df["accuracy"] < 1).all() and (df["label_accuracy"] == 0).all()
    with pytest.raises(AssertionError, match="not exact at 2 grid point"):
        B.check(df, "prop4.3-params", const=100.0)


def test_lower_bound_check_uses_the_hypothesis_rows():
    lower = B.Bound("test-lower", "test", "lower", "layers", B.log2(B.log2(B.N)), "layers >= log log N",
                    condition=sp.Lt(B.d, B.N))
    df = B.measure(lambda c_, n_: Fake(c_, n_, layers=2), SMALL, num_instances=2, device="cpu",
                   bounds=[lower])
    # width 3c < N only where c = 8 and N >= 32
    expect = [bool(3 * c_ < n_) for n_, c_ in zip(df["N"], df["c"], strict=True)]
    assert df["holds:test-lower"].tolist() == expect
    assert B.check(df, lower, const=0.75)["rows"] == int(df["holds:test-lower"].sum())  # 2 / log2(log2 64)
    with pytest.raises(AssertionError, match="below 0.8"):
        B.check(df, lower, const=0.8)
    wide = df[df["N"] == 16]
    with pytest.raises(AssertionError, match="holds at no grid point"):
        B.check(wide, lower, const=0.1)


def test_default_bounds_follow_the_construction_name():
    class H27Named(Fake):
        name = "attention_h27"

    df = B.measure(H27Named, SMALL[:2], num_instances=2, device="cpu")
    assert {"ratio:prop4.3-params", "ratio:prop4.3-layers", "ratio:prop4.3-width"} <= set(df.columns)
    assert not any("thm4.4" in col for col in df.columns)
    assert {b.id for b in B.bounds_for("baseconv_input_dependent")} == {"thm4.5-params", "thm4.5-layers",
                                                                       "based-rem3.3-layers"}


@pytest.mark.parametrize(
    "grid, match",
    [
        ([], "grid: is empty"),
        ({"N": 16, "c": 8, "K": 2}, "grid: must be an iterable"),
        ([{"N": 16, "c": 8}], r"grid\[0\]: missing key 'K'"),
        ([{"N": 16, "c": 8, "K": 2}, {"N": 16.0, "c": 8, "K": 2}],
         r"grid\[1\]\['N'\]=16.0: must be an integer"),
        ([{"N": 16, "c": 8, "K": 5}], r"grid\[0\].*num_kv_pairs=5"),
        ([{"N": 16, "c": 7, "K": 2}], r"grid\[0\].*vocab_size=7"),
        ([3], r"grid\[0\]: must be a dict"),
    ],
)
def test_measure_rejects_bad_grids(grid, match):
    with pytest.raises(ValueError, match=match):
        B.measure(Fake, grid, num_instances=1, device="cpu")


def test_measure_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_instances=0"):
        B.measure(Fake, SMALL, num_instances=0)
    with pytest.raises(ValueError, match="dtype="):
        B.measure(Fake, SMALL, dtype=torch.int64)
    with pytest.raises(ValueError, match="builder="):
        B.measure("attention_h27", SMALL)
    with pytest.raises(ValueError, match="state_bits"):
        B.measure(Fake, SMALL[:1], num_instances=1, device="cpu", bounds=["based-thm3.1-state"])


def test_interaction_distances():
    # keys 1, 2 (c = 8: keys [1, 4)), values 5, 6; queries: key 2 at distance 4, key 1 at distance 6
    x = torch.tensor([[1, 5, 2, 6, 0, 0, 2, 1], [1, 5, 2, 6, 1, 0, 2, 0]])
    assert B.num_interaction_distances(x, 8).tolist() == [2, 1]
    assert B.interaction_distances(x, 8) == [4, 7]  # the union over rows
    # values and filler never count as queries
    assert B.num_interaction_distances(torch.tensor([[1, 5, 0, 5, 0, 0]]), 8).tolist() == [0]


def test_growth_slopes_fits_each_variable_at_fixed_others():
    df = pd.DataFrame({"N": [16, 64, 256, 16, 16], "c": [8, 8, 8, 32, 128], "K": 2,
                       "r": [1.0, 4.0, 16.0, 1.0, 1.0]})
    s = B.growth_slopes(df, "r")
    assert s["N"] == pytest.approx(1.0) and s["c"] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# profiles
# ----------------------------------------------------------------------------------------------
NAMES = {"attention_h27", "attention_softmax", "baseconv_data_independent", "baseconv_sorting",
         "baseconv_input_dependent"}


def test_profiles_cover_every_construction_within_their_limits():
    assert B.profile("cpu") is B.CPU_GRID
    if not torch.cuda.is_available():
        assert B.profile("auto") is B.CPU_GRID
    for prof, n_max, c_max, dtype in [(B.CPU_GRID, 1000, 1000, torch.float64),
                                      (B.GPU_GRID, 16000, 65000, torch.float32)]:
        assert set(prof.grids) == NAMES and prof.dtype == dtype
        pts = [pt for g in prof.grids.values() for pt in g]
        assert max(pt["N"] for pt in pts) == n_max and max(pt["c"] for pt in pts) == c_max
        for pt in pts:  # every point is a valid Algorithm 1 setting
            MQARConfig(vocab_size=pt["c"], seq_len=pt["N"], num_kv_pairs=pt["K"], num_examples=1)
        for g in prof.grids.values():  # each construction is swept in N at least over a factor 15
            assert max(pt["N"] for pt in g) >= 15 * min(pt["N"] for pt in g)
    assert set(B.SMOKE_GRID.grids) == NAMES
    # baseconv_input_dependent is built with t = K distance slots at every point
    for prof in (B.CPU_GRID, B.GPU_GRID, B.SMOKE_GRID):
        assert all(pt["max_distances"] == pt["K"] for pt in prof.grids["baseconv_input_dependent"])
        assert all("max_distances" not in pt for name in NAMES - {"baseconv_input_dependent"}
                   for pt in prof.grids[name])


def test_profile_n_sweep_selects_the_fixed_c_rows():
    df = pd.DataFrame(B.CPU_GRID.grids["attention_h27"])
    rows = B.CPU_GRID.n_sweep("attention_h27", df)
    assert (rows.c == B.CPU_GRID.fixed_c["attention_h27"]).all() and rows.N.tolist() == [16, 22, 66, 150, 256, 1000]


# ----------------------------------------------------------------------------------------------
# the real constructions, end to end on the smoke grid
# ----------------------------------------------------------------------------------------------
def test_attention_h27_meets_prop_4_3_on_the_smoke_grid():
    from mqar_theory.constructions.attention_h27 import attention_h27

    df = B.measure(attention_h27, B.SMOKE_GRID.grids["attention_h27"], num_instances=4, device="cpu")
    assert (df["params"] == 54 * df["c"] ** 2 + 6).all()
    assert B.check(df, "prop4.3-params", const=55)["max_ratio"] == pytest.approx(54 + 6 / 36)
    with pytest.raises(AssertionError, match="exceeds 54"):
        B.check(df, "prop4.3-params", const=54)


def test_data_independent_baseconv_misses_thm_4_4_params_but_meets_its_own_count():
    from mqar_theory.constructions.baseconv_data_independent import baseconv_data_independent

    grid = B.SMOKE_GRID.grids["baseconv_data_independent"]
    df = B.measure(baseconv_data_independent, grid, num_instances=2, device="cpu")
    B.check(df, "di-params", const=B.claim_const("baseconv_data_independent", "di-params"))
    assert B.check(df, "based-thm3.2-layers")["const"] == 1.0  # binary codes: Thm 3.2 applies, constant 1
    with pytest.raises(ValueError, match="states no constant"):
        B.check(df, "di-params")
    with pytest.raises(AssertionError, match="grows"):
        B.check(df, "thm4.4-params", const=1e3)
    assert not df["holds:based-combined-layers"].any()  # width N(b+1) >= N escapes Thm 3.4


# ----------------------------------------------------------------------------------------------
# CLAIMS, EXPECTED_FAILURES and verify()
# ----------------------------------------------------------------------------------------------
def test_claims_cover_every_construction_and_every_measurable_bound():
    from mqar_theory.constructions import BUILDERS, CONSTRUCTIONS

    assert set(CONSTRUCTIONS) == NAMES == set(BUILDERS) == set(B.SMOKE_GRID.grids)
    for name in NAMES:
        claims = B.claims_of(name)
        ids = [k.bound for k in claims]
        assert len(set(ids)) == len(ids), name  # one record per bound
        for k in claims:
            assert k.construction == name and B.get_bound(k.bound)
            if k.expect == "context":
                assert B.get_bound(k.bound).kind == "lower", (name, k.bound)
            if k.expect == "fails":
                assert k.const > 0 and k.phrase in ("grows", "holds at no grid point"), k.bound
        # a construction's own bounds are all claimed; the package's bounds name no construction
        assert {b.id for b in CONSTRUCTIONS[name].own_bounds} <= set(ids), name
    assert not set(B.BOUNDS) & {b.id for cls in CONSTRUCTIONS.values() for b in cls.own_bounds}
    assert B.claim_const("attention_h27", "prop4.3-params") == 55
    with pytest.raises(ValueError, match="bound_id='thm4.4-params': not a claim of 'attention_h27'"):
        B.claim_const("attention_h27", "thm4.4-params")
    with pytest.raises(ValueError, match="expect="):
        B.Claim("prop4.3-params", expect="maybe", const=1, basis="proved")


def test_bounds_package_names_no_construction():
    import pathlib

    import mqar_theory.bounds as pkg

    for name in NAMES:
        for f in pathlib.Path(pkg.__file__).parent.glob("*.py"):
            assert name not in f.read_text(), (f.name, name)


def test_the_sorting_construction_is_under_every_data_independent_bound():
    """baseconv_sorting is a data-independent BaseConv on binary codes: Thm 4.4 and every Based lower
    bound on that class concern it; the input-dependent Remark 3.3 does not."""
    names = {b.id for b in B.bounds_for("baseconv_sorting")}
    assert {"thm4.4-params", "thm4.4-layers", "based-thm3.2-layers", "based-thm3.4-layers",
            "based-combined-layers", "sort-width", "sort-layers"} == names
    assert {b.id for b in B.bounds_for("baseconv_data_independent")} & names >= {
        "thm4.4-params", "based-thm3.2-layers", "based-thm3.4-layers", "based-combined-layers"}


def _claims(monkeypatch, name, claims):
    """Replace the claims the construction ``name`` declares (restored after the test)."""
    from mqar_theory.constructions import CONSTRUCTIONS

    monkeypatch.setattr(CONSTRUCTIONS[name], "claims", tuple(claims))


@pytest.fixture(scope="module")
def smoke():
    return B.verify("cpu", smoke=True)


def test_verify_on_the_smoke_grid_checks_every_claim(smoke):
    tables, report = smoke
    assert list(report.columns) == B.REPORT_COLUMNS and report["ok"].all()
    assert set(tables) == NAMES
    for name, df in tables.items():
        assert (df["accuracy"] == 1.0).all() and (df["label_accuracy"] == 1.0).all(), name
        assert len(df) == len(B.SMOKE_GRID.grids[name]) and (df["instances"] == 4).all()
        rows = report[report.construction == name]
        claimed = [k.bound for k in B.claims_of(name, "holds")]
        context = [k.bound for k in B.claims_of(name, "context")]
        # one row per claim record, after the measured sizes and the locality check
        assert rows.bound.tolist() == ["measured = closed-form sizes", "every number entering is counted",
                                       "encode / decode position-wise",
                                       *[k.bound for k in B.claims_of(name)]]
        assert (rows[rows.bound.isin(context)].basis == "context").all()
        assert (rows[rows.bound.isin(claimed)].status == "holds").all(), name
        assert (rows[rows.bound.isin(claimed)].rows > 0).all(), name
    by = report.set_index(["construction", "bound"])
    assert by.loc[("baseconv_data_independent", "thm4.4-params"), "status"] == "fails as expected (grows)"
    assert by.loc[("baseconv_sorting", "thm4.4-layers"), "status"] == "fails as expected (grows)"
    # the figure's point: against Thm 4.4's N log c polylog, the sorting network's ratio falls with N
    # while the all-distances construction's rises
    assert by.loc[("baseconv_sorting", "thm4.4-params"), "slope_N"] < 0
    assert by.loc[("baseconv_data_independent", "thm4.4-params"), "slope_N"] > 0.1
    assert by.loc[("attention_h27", "prop4.3-params"), "max_ratio"] == pytest.approx(54 + 6 / 36)


def test_verify_names_the_failing_construction_and_bound(monkeypatch):
    _claims(monkeypatch, "attention_h27", [B.Claim("prop4.3-params", const=54, basis="proved"),
                                           B.Claim("prop4.3-width", const=1, basis="proved")])
    with pytest.raises(B.ClaimFailed, match=r"attention_h27 / prop4\.3-params: FAILED: .*exceeds 54") as e:
        B.verify("cpu", smoke=True, constructions=["attention_h27"], num_instances=1)
    assert isinstance(e.value, AssertionError)
    rep = e.value.report.set_index("bound")
    assert not rep.loc["prop4.3-params", "ok"] and rep.loc["prop4.3-width", "ok"]
    assert set(e.value.tables) == {"attention_h27"}


def test_an_expected_failure_must_fail_and_for_its_reason(monkeypatch):
    # passing where a failure is expected is an error
    _claims(monkeypatch, "attention_h27", [B.Claim("prop4.3-params", "fails", 55, phrase="grows")])
    with pytest.raises(B.ClaimFailed, match=r"attention_h27 / prop4\.3-params: UNEXPECTED PASS"):
        B.verify("cpu", smoke=True, constructions=["attention_h27"], num_instances=1)
    # failing for another reason (the constant, not growth) is an error too
    _claims(monkeypatch, "attention_h27", [B.Claim("prop4.3-params", "fails", 54, phrase="grows")])
    with pytest.raises(B.ClaimFailed, match=r"FAILED \(expected 'grows'\): .*exceeds 54"):
        B.verify("cpu", smoke=True, constructions=["attention_h27"], num_instances=1)


def test_verify_fails_an_inexact_construction(monkeypatch):
    from mqar_theory import constructions

    class BrokenH27(Fake):
        name = "attention_h27"

        def __init__(self, c_, n_):
            super().__init__(c_, n_, broken=True)

    monkeypatch.setitem(constructions.BUILDERS, "attention_h27", BrokenH27)
    with pytest.raises(B.ClaimFailed) as e:
        B.verify("cpu", smoke=True, constructions=["attention_h27"], num_instances=1)
    rep = e.value.report
    # sizes differ from 54c² + 6, and every claim fails on exactness (the fake is measured the old way here,
    # so the two trace rows hold)
    traced = rep.bound.isin(["every number entering is counted", "encode / decode position-wise"])
    assert not rep[~traced]["ok"].any() and rep[traced]["ok"].all()
    assert rep[rep.bound == "prop4.3-params"].message.str.contains("not exact").all()
    assert "attention_h27 / measured = closed-form sizes" in str(e.value)


def test_a_lower_bound_is_vacuous_on_a_grid_without_its_hypothesis():
    _, report = B.verify("cpu", smoke=True, constructions=["baseconv_sorting"], max_N=64, num_instances=1)
    by = report.set_index("bound")
    t34 = by.loc["based-thm3.4-layers"]
    assert t34["status"] == "context: hypothesis holds at no grid point" and t34["ok"] and t34["rows"] == 0
    assert by.loc["based-thm3.2-layers", "status"].startswith("context: measured/bound in")


def test_verify_rejects_bad_arguments():
    with pytest.raises(ValueError, match="smoke=True: give a device"):
        B.verify(B.SMOKE_GRID, smoke=True)
    with pytest.raises(ValueError, match="device='cpu': give the device as profile_or_device"):
        B.verify("cpu", device="cpu")
    with pytest.raises(ValueError, match="max_N=2: must be None or an integer >= 4"):
        B.verify("cpu", smoke=True, max_N=2)
    with pytest.raises(ValueError, match="num_instances=0"):
        B.verify("cpu", smoke=True, num_instances=0)
    with pytest.raises(ValueError, match="max_N=8, max_c=None: leave no grid point of attention_h27"):
        B.verify("cpu", smoke=True, max_N=8, constructions=["attention_h27"])
    with pytest.raises(ValueError, match="constructions: 'hyena'"):
        B.verify("cpu", smoke=True, constructions=["hyena"])


def test_check_sizes_catches_a_wrong_count_and_growth_in_n(smoke):
    tables, _ = smoke
    df = tables["baseconv_sorting"].copy()
    B.check_sizes("baseconv_sorting", df)
    df.loc[df.index[0], "layers"] += 1
    with pytest.raises(AssertionError, match=r"baseconv_sorting: measured sizes differ from the closed form at 1 "):
        B.check_sizes("baseconv_sorting", df)
    h = tables["attention_h27"].copy()
    assert B.closed_form_sizes("attention_h27", h.iloc[0]) == {"params": 54 * 10**2 + 6, "layers": 2, "width": 30}
    i5 = tables["baseconv_input_dependent"]
    row = i5.iloc[0]
    assert B.closed_form_sizes("baseconv_input_dependent", row)["params"] == \
        2 * row.t_filters * row.N * row.c + row.N + 8 * row.c + row.t_filters + 4 == row.params
    with pytest.raises(ValueError, match="name='hyena'"):
        B.closed_form_sizes("hyena", row)


def test_verify_in_float32_checks_margins_and_runs_a_given_profile():
    grids = {"attention_softmax": [{"N": 16, "c": 16, "K": 4}, {"N": 64, "c": 16, "K": 7}]}
    prof = B.Profile("f32", torch.float32, 2, grids, {"attention_softmax": 16})
    tables, report = B.verify(prof, device="cpu")
    row = report.set_index("bound").loc["float32 margin > 0"]
    assert row["ok"] and row["min_ratio"] > 0  # min_ratio holds the smallest margin here
    assert (tables["attention_softmax"]["dtype"] == "float32").all()


# ----------------------------------------------------------------------------------------------
# the check-bounds command
# ----------------------------------------------------------------------------------------------
def test_check_bounds_command_prints_the_report(capsys):
    from mqar_theory.cli import main

    assert main(["check-bounds", "--smoke", "--device", "cpu", "--max-n", "46", "--instances", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 constructions" in out and "fails as expected (grows)" in out
    assert max(len(line) for line in out.splitlines()) <= 120  # the table fits in 120 columns
    from mqar_theory.circuits import check_claims

    n_checks = sum(len(B.claims_of(n)) + 3 for n in NAMES) + len(check_claims(smoke=True))  # + circuits/*
    assert f"all {n_checks} checks ok" in out and "circuits/levels" in out
    assert main(["check-bounds", "--smoke", "--device", "cpu", "--max-n", "2"]) == 2
    assert "max_N=2" in capsys.readouterr().err


def test_check_bounds_command_exits_1_naming_the_failed_claim(monkeypatch, capsys):
    from mqar_theory.cli import main

    _claims(monkeypatch, "attention_softmax", [B.Claim("softmax-width", const=4, basis="proved")])  # reaches 4.5
    assert main(["check-bounds", "--smoke", "--device", "cpu", "--only", "attention_softmax"]) == 1
    captured = capsys.readouterr()
    assert "attention_softmax / softmax-width: FAILED" in captured.err and " NO" in captured.out


def test_check_bounds_runs_as_a_module():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "mqar_theory.cli", "check-bounds", "--smoke", "--device", "cpu",
                        "--only", "attention_h27", "--only", "baseconv_input_dependent"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 constructions" in r.stdout and "prop4.3-params" in r.stdout and "thm4.5-params" in r.stdout


# ----------------------------------------------------------------------------------------------
# the figures of notebook 02 (mqar_theory.construction_plots)
# ----------------------------------------------------------------------------------------------
def test_float32_margins_remeasure_the_n_sweeps(smoke):
    from mqar_theory import construction_plots as CP

    tables, _ = smoke
    sub = {k: tables[k] for k in ("attention_h27", "baseconv_sorting")}
    m = CP.float32_margins(sub, B.SMOKE_GRID, device="cpu", num_instances=2)
    assert set(m) == set(sub)
    for name, df in m.items():
        assert (df["dtype"] == "float32").all() and (df["c"] == B.SMOKE_GRID.fixed_c[name]).all()
        assert df["N"].tolist() == sorted(pt["N"] for pt in B.SMOKE_GRID.grids[name]
                                          if pt["c"] == B.SMOKE_GRID.fixed_c[name])
        assert (df["margin_min"] > 0).all()


def test_float32_margins_assert_a_positive_margin(smoke):
    from mqar_theory import construction_plots as CP

    tables, _ = smoke
    f32 = B.Profile("f32", torch.float32, 2, B.SMOKE_GRID.grids, B.SMOKE_GRID.fixed_c)
    bad = tables["attention_h27"].assign(margin_min=0.0)
    with pytest.raises(AssertionError, match="attention_h27: float32 answers not exact or margin <= 0"):
        CP.float32_margins({"attention_h27": bad}, f32)
    good = tables["attention_h27"].assign(margin_min=0.5)
    assert len(CP.float32_margins({"attention_h27": good}, f32)["attention_h27"]) == 3


def test_figures_draw_every_construction_with_its_claim_curve(smoke):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mqar_theory import construction_plots as CP

    tables, _ = smoke
    fig = CP.plot_parameter_efficiency(tables, B.SMOKE_GRID)
    ax_p, ax_w = fig.axes[:2]
    labels = [line.get_label() for line in ax_p.lines]
    for name in NAMES:
        assert f"{name} ($c$ = 10)" in labels
    assert r"$110\,N\log_2 c\,\log_2^2(Nc)$ (Thm 4.4)" in labels and r"$55\,c^2$ (Prop 4.3)" in labels
    # the drawn claim curve is const * the bound at the measured points
    sort_rows = B.SMOKE_GRID.n_sweep("baseconv_sorting", tables["baseconv_sorting"])
    curve = next(ln for ln in ax_p.lines if ln.get_label().endswith("(Thm 4.4)"))
    const = B.claim_const("baseconv_sorting", "thm4.4-params")
    want = const * B.BOUNDS["thm4.4-params"].evaluate(N=sort_rows.N.to_numpy(float), c=sort_rows.c.to_numpy(float))
    np.testing.assert_allclose(curve.get_ydata(), want)
    assert len(ax_w.lines) == 2 * len(NAMES) - 1  # input-dependent has no width claim
    plt.close(fig)
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="ax: must be None or a pair"):
        CP.plot_parameter_efficiency(tables, B.SMOKE_GRID, ax=axes)
    plt.close(fig)
    m = {name: B.SMOKE_GRID.n_sweep(name, df).assign(margin_min=0.5) for name, df in tables.items()}
    fig = CP.plot_margins(m)
    assert len(fig.axes) == len(NAMES)  # one panel per construction: their margins have different units
    for ax, name in zip(fig.axes, m, strict=True):
        assert name in ax.get_title() and CP.MARGIN_UNITS[name] in ax.get_title()
        np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.5)
    plt.close(fig)


def test_closed_form_table_matches_what_measure_tabulates(smoke):
    tables, _ = smoke
    for name, df in tables.items():
        dry = B.closed_form_table(name, B.SMOKE_GRID.grids[name])
        cols = [col for col in df.columns if col.split(":")[0] in ("bound", "ratio", "holds")]
        cols += ["N", "c", "K", "params", "layers", "width"]
        if name == "baseconv_input_dependent":  # the dry table assumes t = K; measured t is the inputs'
            cols = [col for col in cols if col not in ("params", "width")
                    and not col.endswith("thm4.5-params")]
        assert set(cols) <= set(dry.columns), name
        pd.testing.assert_frame_equal(dry[cols], df[cols], check_dtype=False, obj=name)


@pytest.mark.parametrize("prof", [B.CPU_GRID, B.GPU_GRID], ids=lambda p: p.name)
def test_every_profile_meets_the_claims_in_closed_form(prof):
    """The sizes half of ``verify`` on the full CPU and GPU grids, from the closed forms (building
    nothing; the GPU profile cannot run here): every claim holds with its constant and slope, none
    is vacuous, and every expected failure fails for its stated reason."""
    for name, grid in prof.grids.items():
        dry = B.closed_form_table(name, grid).assign(accuracy=1.0, label_accuracy=1.0)
        rows = pd.DataFrame(B._verify_construction(name, dry, torch.float64))
        assert rows["ok"].all(), rows[~rows["ok"]][["bound", "status", "message"]].to_string()
        claimed = [k.bound for k in B.claims_of(name, "holds")]
        assert (rows[rows.bound.isin(claimed)].status == "holds").all(), (prof.name, name)
    # on the GPU grid too, the sorting network's depth ratio to log2²(Nc) grows (slope > 0.1 in N)
    dry = B.closed_form_table("baseconv_sorting", B.GPU_GRID.grids["baseconv_sorting"])
    assert B.growth_slopes(dry, "ratio:thm4.4-layers")["N"] > 0.1
