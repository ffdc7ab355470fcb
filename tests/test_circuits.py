"""Arithmetic circuits <-> BaseConv stacks (Thm 4.2): exactness, counting formulas, converse, causality limit."""

import pytest
import torch

from mqar_theory.circuits import (
    LAYOUTS,
    ArithmeticCircuit,
    BaseConvStack,
    check_claims,
    circuit_of,
    compile_to_baseconv,
    converse_sizes,
    make_layer,
    predicted_sizes,
    random_circuit,
)
from mqar_theory.circuits.claims import COLUMNS, measure_converse
from mqar_theory.circuits.stack import as_layer
from mqar_theory.constructions.layers import SparseBaseConv
from mqar_theory.mixers import BaseConv, baseconv_direct

F64 = torch.float64


def _u(N, d, B=6, seed=0):
    return torch.rand(B, N, d, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 - 1


def _rel_err(y, ref):
    return float(((y - ref).abs() / (1 + ref.abs())).max())


def test_circuit_sizes_and_evaluate_by_hand():
    # out0 = (u00 + u11) * u01, out1 = 3 * u00
    c = ArithmeticCircuit(2, 2, [("input", 0, 0), ("input", 1, 1), ("add", 0, 1), ("input", 0, 1),
                                 ("mul", 2, 3), ("const", 3.0), ("mul", 5, 0)], [4, 6])
    assert (c.size, c.depth, c.num_outputs, c.num_inputs) == (7, 2, 2, 3)
    assert c.level == [0, 0, 1, 0, 2, 0, 1]
    # live at 0: u00 u11 u01 3; at 1: those + the add and 3·u00; at 2: the add, u01, both outputs
    assert c.live_counts() == [4, 6, 4] and c.width == 6
    u = _u(2, 2)
    expect = torch.stack([(u[:, 0, 0] + u[:, 1, 1]) * u[:, 0, 1], 3 * u[:, 0, 0]], 1)
    assert torch.equal(c.evaluate(u), expect)
    assert torch.equal(c.evaluate(u[0]), expect[0])


def test_gates_may_be_listed_out_of_order():
    c = ArithmeticCircuit(1, 2, [("mul", 1, 2), ("input", 0, 0), ("input", 0, 1)], [0])
    assert c.order.index(0) > c.order.index(1) and c.depth == 1
    u = _u(1, 2)
    assert torch.equal(c.evaluate(u)[:, 0], u[:, 0, 0] * u[:, 0, 1])


@pytest.mark.parametrize("gates, outputs, match", [
    ([("input", 0, 0), ("add", 0, 2), ("mul", 1, 0)], [2], r"gates\[\d\]: lies on a cycle"),
    ([("input", 0, 0), ("add", 1, 0)], [1], r"gates\[1\]: reads itself"),
    ([("input", 0, 0), ("sub", 0, 0)], [1], r"gates\[1\]: unknown gate kind 'sub'"),
    ([("input", 0, 5)], [0], r"gates\[0\]: reads a missing input u\[0, 5\]"),
    ([("input", 0, 0), ("add", 0, 7)], [1], r"gates\[1\]: reads a missing gate 7"),
    ([("input", 0, 0)], [], r"outputs: must be a non-empty"),
    ([("input", 0, 0), ("input", 0, 0)], [0], r"gates\[1\]: input \(0, 0\) duplicates gates\[0\]"),
    ([("const", float("nan"))], [0], r"gates\[0\]"),
    ([("input", 0, 0)], [3], r"outputs\[0\]=3"),
])
def test_invalid_circuits_are_rejected_naming_the_gate(gates, outputs, match):
    with pytest.raises(ValueError, match=match):
        ArithmeticCircuit(1, 2, gates, outputs)


def test_random_circuit_has_the_requested_size_and_depth_and_is_seeded():
    for N, d, s, D in [(2, 2, 30, 5), (3, 4, 300, 12), (1, 1, 3, 0), (2, 3, 13, 12)]:
        c = random_circuit(N, d, s, D, seed=1)
        assert (c.size, c.depth) == (s, D)
        assert c.gates == random_circuit(N, d, s, D, seed=1).gates
    assert random_circuit(2, 2, 40, 4, seed=1).gates != random_circuit(2, 2, 40, 4, seed=2).gates
    with pytest.raises(ValueError, match="size=3"):
        random_circuit(2, 2, 3, 5)
    with pytest.raises(ValueError, match="depth"):
        random_circuit(2, 2, 3, -1)


CASES = [(2, 2, 12, 3, 0), (3, 2, 60, 6, 1), (2, 3, 120, 12, 2), (4, 3, 300, 12, 3), (1, 1, 4, 0, 4),
         (3, 3, 40, 1, 5), (2, 2, 9, 8, 6)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("N, d, s, depth, seed", CASES)
def test_compiled_stack_equals_circuit_and_its_formulas(layout, N, d, s, depth, seed):
    if layout == "sequential" and s > 120:
        pytest.skip("sequential: 2 layers per gate of width N·d + s; covered at smaller s")
    c = random_circuit(N, d, s, depth, seed=seed, num_outputs=min(4, s, N * d))
    stack = compile_to_baseconv(c, layout)
    assert isinstance(stack, BaseConvStack) and all(type(m) is SparseBaseConv for m in stack.layers)
    u = _u(N, d, seed=seed)
    with torch.no_grad():
        y = stack.evaluate(u)
    ref = c.evaluate(u)
    assert y.shape == ref.shape
    # one-token layouts use no FFT: the same operations as the circuit, up to the order of float64 sums
    assert _rel_err(y, ref) <= (1e-12 if layout != "preserving" else 1e-9)
    # the counts, measured from the stored layers, against the docstring formulas
    pred = predicted_sizes(c, layout)
    assert stack.num_layers == pred["num_layers"] and stack.width == pred["width"]
    assert stack.seq_len == pred["seq_len"]
    assert stack.num_parameters == pred["num_parameters"]
    assert stack.num_parameters == sum(t.numel() for m in stack.layers for t in m.dense())
    assert stack.num_parameters == sum(m.num_dense_parameters for m in stack.layers)
    dp = max(c.depth, 1)
    if layout == "levels":
        assert stack.num_layers == 2 * dp and stack.width <= max(N * d, c.width) <= N * d + s
    elif layout == "preserving":
        assert stack.num_layers == 2 * dp + 5 and stack.seq_len == N
        assert all(m.cyclic for m in stack.layers)
    else:
        assert stack.num_layers <= 2 * s and stack.width == N * d + s - c.num_inputs


def test_levels_width_uses_liveness():
    # a long chain: each level needs one new value, so the width stays at N·d + O(1) while s grows
    gates = [("input", 0, 0), ("input", 0, 1)]
    for k in range(30):
        gates.append(("mul" if k % 2 else "add", len(gates) - 1, 1))
    c = ArithmeticCircuit(1, 2, gates, [len(gates) - 1])
    assert c.depth == 30
    assert compile_to_baseconv(c, "levels").width == 3
    assert compile_to_baseconv(c, "sequential").width == 32


def test_preserving_layout_writes_outputs_into_the_input_shape():
    c = random_circuit(2, 3, 40, 4, seed=0, num_outputs=5)
    stack = compile_to_baseconv(c, "preserving")
    u = _u(2, 3)
    with torch.no_grad():
        inner = stack.run(stack.read(u))  # (B, N, D)
    full = inner[:, :2, :3].reshape(len(u), -1)
    assert _rel_err(full[:, :5], c.evaluate(u)) <= 1e-9
    assert full[:, 5:].abs().max() <= 1e-12  # the unused corner entries are 0
    with pytest.raises(ValueError, match="at most N·d"):
        compile_to_baseconv(random_circuit(1, 2, 10, 2, num_outputs=3), "preserving")


def test_compile_rejects_bad_arguments():
    with pytest.raises(ValueError, match="layout="):
        compile_to_baseconv(random_circuit(2, 2, 10, 2), "diagonal")
    with pytest.raises(ValueError, match="circuit"):
        compile_to_baseconv("x + y")


def _later_input_circuit():
    """N = 2, d = 1: output 0 (written at row 0 by the layout-preserving compiler) = u[1, 0] · u[1, 0]."""
    return ArithmeticCircuit(2, 1, [("input", 1, 0), ("mul", 0, 0)], [1])


def _causal_copy(stack):
    layers = []
    for m in stack.layers:
        layers.append(make_layer(*m.dense(), cyclic=False))
    return BaseConvStack(layers, stack.num_rows, stack.num_cols, read_in="pad", out_index=stack.out_index)


def test_causal_stack_cannot_simulate_a_circuit_reading_a_later_input():
    c = _later_input_circuit()
    stack = compile_to_baseconv(c, "preserving")
    u = _u(2, 1, B=16)
    u2 = u.clone()
    u2[:, 1] += 1.0  # change the later row only
    with torch.no_grad():
        assert _rel_err(stack.evaluate(u), c.evaluate(u)) <= 1e-9  # the cyclic stack simulates it
        assert (c.evaluate(u2) - c.evaluate(u)).abs().min() > 0  # the circuit's output 0 reads row 1
        # any causal stack of the same shape: its row 0 ignores row 1, so it cannot match both u and u2
        gen = torch.Generator().manual_seed(0)
        candidates = [_causal_copy(stack)]
        for _ in range(5):
            layers = [BaseConv(stack.width, 2, cyclic=False).double() for _ in range(3)]
            for m in layers:
                for p in m.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
            layers = [as_layer(m) for m in layers]
            candidates.append(BaseConvStack(layers, 2, 1, read_in="pad", out_index=stack.out_index))
        for cand in candidates:
            assert torch.equal(cand.evaluate(u), cand.evaluate(u2))
            assert (cand.evaluate(u) - c.evaluate(u)).abs().max() > 1e-3 or \
                (cand.evaluate(u2) - c.evaluate(u2)).abs().max() > 1e-3


def _random_layers(n, D, L, cyclic, K, seed):
    gen = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(K):
        m = BaseConv(D, n, kernel_size=L, cyclic=cyclic).double()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * 0.5)
        layers.append(m)
    return layers


@pytest.mark.parametrize("cyclic", [False, True])
@pytest.mark.parametrize("n, D, L, K", [(3, 2, None, 2), (4, 3, 2, 3), (5, 2, None, 1), (2, 4, 1, 2)])
def test_converse_on_random_stacks(n, D, L, K, cyclic):
    layers = _random_layers(n, D, L, cyclic, K, seed=n * 10 + D)
    c = circuit_of(layers)
    u = torch.randn(5, n, D, dtype=F64)
    y = u
    with torch.no_grad():
        for m in layers:
            y = m(y)
    assert (c.evaluate(u) - y.reshape(5, -1)).abs().max() <= 1e-12 * (1 + y.abs().max())
    pred = converse_sizes(layers)
    assert c.size == pred["size"]
    assert c.depth <= pred["depth_bound"]
    assert (c.num_rows, c.num_cols, c.num_outputs) == (n, D, n * D)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_round_trip_circuit_to_stack_to_circuit(layout):
    c = random_circuit(2, 2, 40, 5, seed=3)
    stack = compile_to_baseconv(c, layout)
    c2 = circuit_of(stack)
    u = _u(2, 2)
    assert _rel_err(c2.evaluate(u), c.evaluate(u)) <= 1e-12
    if layout == "levels":  # sparse weights give a circuit of comparable size and depth
        assert c2.depth <= 3 * stack.num_layers and c2.size <= 10 * c.size


def test_check_claims_smoke_report():
    tables = {}
    rep = check_claims(smoke=True, tables=tables)
    assert list(rep.columns[: len(COLUMNS)]) == COLUMNS
    assert rep["ok"].all(), rep[~rep["ok"]].to_string()
    # exactness and formula rows hold; the expected failures really fail
    assert rep.loc[~rep["expected_failure"], "holds"].all()
    assert not rep.loc[rep["expected_failure"], "holds"].any()
    assert set(tables) == {"compilers", "converse"} and len(tables["compilers"]) > 0
    exp = rep[rep["expected_failure"]]
    assert (exp["reason"].str.len() > 10).all()
    assert {"levels: Thm 4.2 layers Õ(Δ)", "preserving: Thm 4.2 layers Õ(Δ)"} <= set(rep.loc[rep["holds"], "claim"])


def test_measure_converse_matches_formulas():
    df = measure_converse(shapes=((3, 2, None, 1),))
    assert (df["size"] == df["pred_size"]).all() and (df["max_abs_error"] <= 1e-12).all()


def _dense_forward(layer, x):
    W, b1, b2, h = layer.dense()
    return baseconv_direct(x, W, b1, b2, h, cyclic=layer.cyclic)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_stack_layers_are_the_one_sparse_layer_and_their_dense_form_is_their_forward(layout):
    c = random_circuit(3, 2, 40, 5, seed=7, num_outputs=4)
    stack = compile_to_baseconv(c, layout)
    gen = torch.Generator().manual_seed(1)
    x = stack.read(_u(3, 2, seed=2))  # (B, N', D)
    for k, layer in enumerate(stack.layers):
        assert type(layer) is SparseBaseConv
        W, b1, b2, h = layer.dense()
        assert W.dtype == F64 and W.shape == (stack.width, stack.width)
        assert b1.shape == b2.shape == (stack.seq_len, stack.width) and h.shape == (layer.filter_len, stack.width)
        r = torch.randn(x.shape, generator=gen, dtype=F64)  # a generic state, not only the reachable one
        with torch.no_grad():
            for v in (x, r):
                y, ref = layer(v), _dense_forward(layer, v)
                assert (y - ref).abs().max() <= 1e-12 * (1 + ref.abs().max()), (layout, k)
            x = layer(x)
    # the dense forms, run by mixers.baseconv one after the other, are the stack
    y, u = stack.read(_u(3, 2, seed=3)), _u(3, 2, seed=3)
    for W, b1, b2, h, cyclic in stack.dense_layers():
        y = baseconv_direct(y, W, b1, b2, h, cyclic=cyclic)
    with torch.no_grad():
        assert _rel_err(stack.write(y), stack.evaluate(u)) <= 1e-12


def test_make_layer_stores_a_dense_layer_losslessly():
    gen = torch.Generator().manual_seed(0)
    n, D = 5, 3
    W, b1, b2 = (torch.randn(*s, generator=gen, dtype=F64) for s in ((D, D), (n, D), (n, D)))
    W[0, 1] = 0.0
    b1[:, 2] = 0.25  # a column constant over positions (stored as a row), the others position-dependent
    b2[:, 0] = -1.0
    for L in (1, 2, n):
        h = torch.randn(L, D, generator=gen, dtype=F64)
        h[0, 1] = 0.0
        for cyclic in (False, True):
            layer = make_layer(W, b1, b2, h, cyclic=cyclic)
            assert isinstance(layer, SparseBaseConv) and layer.filter_len == L and layer.cyclic == cyclic
            assert layer.W_val.numel() == D * D - 1 and layer.b1_chan.tolist() == [0, 1]
            assert layer.b2_chan.tolist() == [1, 2]
            for got, want in zip(layer.dense(), (W, b1, b2, h), strict=True):
                assert torch.equal(got, want)
            assert layer.num_dense_parameters == D * D + 2 * n * D + L * D
            u = torch.randn(4, n, D, generator=gen, dtype=F64)
            ref = baseconv_direct(u, W, b1, b2, h, cyclic=cyclic)
            assert (layer(u) - ref).abs().max() <= 1e-12 * (1 + ref.abs().max())
            if not cyclic:  # causal: a shorter input uses the first rows
                assert (layer(u[:, :3]) - ref[:, :3]).abs().max() <= 1e-12 * (1 + ref.abs().max())


def test_stack_parts_reject_bad_layers():
    eye, z = torch.eye(2, dtype=F64), torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="W, b1, b2, h"):
        make_layer(eye, z, z, torch.zeros(4, 2, dtype=F64))  # L = 4 > N' = 3
    with pytest.raises(ValueError, match="W, b1, b2, h"):
        make_layer(eye, z, torch.zeros(3, 3, dtype=F64), z)
    with pytest.raises(ValueError, match=r"layers\[0\]: must be a constructions.layers.SparseBaseConv"):
        BaseConvStack([BaseConv(2, 3).double()], 3, 2)
    with pytest.raises(ValueError, match=r"layers\[1\]: inner shape"):
        BaseConvStack([make_layer(eye, z, z, z), make_layer(eye, z[:2], z[:2], z[:2])], 2, 2)
    with pytest.raises(ValueError, match=r"stack\[0\]"):
        circuit_of(["not a layer"])
