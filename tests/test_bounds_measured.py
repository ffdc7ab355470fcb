"""Sizes are measured from the modules (stored tensors, traced layers), never declared; one test per
finding of the review of the bound checks (each failed on the code before the redesign)."""

import importlib
import math

import pandas as pd
import pytest
import sympy
import torch

from mqar_theory import bounds as B
from mqar_theory.cli import main as cli_main
from mqar_theory.constructions import BUILDERS, attention_h27, attention_softmax, baseconv_input_dependent
from mqar_theory.constructions.base import Construction, expected_answers, mixer_layer, trace_layers
from mqar_theory.data import make_mqar


def _data(c, N, K, n=4, seed=0):
    return make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=n, seed=seed).inputs


# ------------------------------------------------------------------------------------------------
# the counting hooks against hand-counted tiny models
# ------------------------------------------------------------------------------------------------
def test_trace_counts_every_decorated_call_and_the_widest_stream():
    @mixer_layer(lambda u: u.shape[-1])
    def layer(u):
        return u

    class Three(Construction):
        def predict(self, tokens):
            u = torch.zeros(1, 4, 5)
            for w in (5, 7, 3):
                layer(torch.zeros(1, 4, w))
            return u

    with trace_layers() as outer:
        assert B.trace(Three(4, 4), torch.zeros(4, dtype=torch.long)) == {"layers": 3, "width": 7}
    assert outer == [5, 7, 3]  # nested traces both record


def test_tiny_h27_counted_by_hand():
    c, N = 4, 4
    con = attention_h27(c, N)
    x = torch.tensor([1, 2, 1, 0])
    s = B.measure_sizes(con, x[None])
    # six (3c)² = 144-entry matrices + r¹ (2) + r² (1); nonzeros: four c×c identities, r¹ = (0, 1)
    assert s["params"] == 6 * 144 + 3 == 54 * c * c + 3
    assert s["params_nnz"] == 4 * c + 1 - 0  # W_V¹, W_Q², W_K², W_V² identities (c each), r¹[1]
    assert s["fixed"] == c * 3 * c and s["index"] == 0  # the table E only, no N×N bias
    assert s["layers"] == 2 and s["width"] == 3 * c


def test_tiny_softmax_counted_by_hand():
    con = attention_softmax(4, 4)  # b = 2, d = 10
    s = B.measure_sizes(con, torch.tensor([[1, 2, 1, 0]]))
    assert s["params"] == 10 * 2 * 4 + 2 * 10 * 3 + 10 * 2 + 2 * 10 + 6 == 186  # L1: 3·(d×b)+(b×d); L2; r¹, r²
    assert s["fixed"] == 4 * 10 and s["layers"] == 2 and s["width"] == 10


@pytest.mark.parametrize("name", ["baseconv_data_independent", "baseconv_sorting"])
def test_tiny_sparse_baseconv_counts(name):
    c, N = 4, 4
    con = BUILDERS[name](c, N)
    s = B.measure_sizes(con, torch.tensor([[1, 2, 1, 0]]))
    dense = sum(p.numel() for p in con.parameters())
    assert s["params"] == dense and s["params_nnz"] <= dense
    # the int64 positions of the sparse weights are 'index', not 'fixed' (the code table)
    ints = sum(b.numel() for b in con.buffers() if b.dtype == torch.long)
    assert s["index"] == ints > 0 and s["fixed"] == con.codes.numel()
    want = {"baseconv_data_independent": (5, N * 3), "baseconv_sorting": (41, 33)}[name]
    assert (s["layers"], s["width"]) == want  # ⌈log2 ⌈log2 4⌉⌉ + 4 = 5, N(b+1) = 12; docstring: 41, 33


def test_tiny_input_dependent_counted_by_hand():
    c, N = 8, 8
    con = baseconv_input_dependent(c, N)  # N - 1 = 7 slots
    x = torch.tensor([[1, 5, 2, 6, 1, 0, 2, 0]])  # keys 1, 2 repeat at distances 4, 4: t = 1
    s = B.measure_sizes(con, x)
    assert s["t_filters"] == 1
    assert s["params"] == 2 * 1 * N * c + N + 8 * c  # what Thm 4.5 counts: 2 filters N×c, mask, 8c
    assert s["params_stored"] == 2 * 1 * N + N + 8 * c  # the impulses are (1, N, 1), expanded over c
    assert s["layers"] == 4 and s["width"] == 3 * c


# ------------------------------------------------------------------------------------------------
# finding 1: Thm 4.5's parameter check was circular
# ------------------------------------------------------------------------------------------------
def test_input_dependent_module_reports_what_it_stores():
    con = baseconv_input_dependent(16, 32, max_distances=5)
    assert con.num_parameters == sum(p.numel() for p in con.parameters()) == 8 * 16  # not 2·t·N·c + ...


def test_thm45_reads_t_from_the_input_not_the_slots():
    grid = [{"N": 32, "c": 16, "K": 4, "max_distances": 31}]  # 31 slots, inputs need <= 4 distances
    row = B.measure(BUILDERS["baseconv_input_dependent"], grid, num_instances=4, device="cpu").iloc[0]
    x = _data(16, 32, 4, n=4, seed=0)
    assert row["t"] == int(B.interaction_distances(x, 16).max()) <= 4
    assert row["t_filters"] <= row["t"] and row["params"] == 2 * row["t_filters"] * 32 * 16 + 32 + 128
    assert row["bound:thm4.5-params"] == row["t"] * 32 * 16  # not 31 · N · c


def test_thm45_check_fails_when_the_program_holds_more_filters_than_needed(monkeypatch):
    mod = importlib.import_module("mqar_theory.constructions.baseconv_input_dependent")
    monkeypatch.setattr(mod, "interaction_distances", lambda x, c: list(range(1, x.shape[-1])))
    df = B.measure(BUILDERS["baseconv_input_dependent"], [{"N": 32, "c": 16, "K": 4}], num_instances=2,
                   device="cpu")
    with pytest.raises(AssertionError, match="exceeds"):
        B.check(df, "thm4.5-params", B.claim_const("baseconv_input_dependent", "thm4.5-params"))


# ------------------------------------------------------------------------------------------------
# finding 3: identity checks; sizes come from the module, not from class attributes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_measure_ignores_declared_sizes(name, monkeypatch):
    cls = type(BUILDERS[name](6, 10))
    monkeypatch.setattr(cls, "num_layers", 1, raising=False)
    monkeypatch.setattr(cls, "width", 1, raising=False)
    row = B.measure(BUILDERS[name], [{"N": 10, "c": 6, "K": 2}], num_instances=2, device="cpu").iloc[0]
    assert row["layers"] == row["layers_formula"] > 1 and row["width"] == row["width_formula"] > 1


def test_a_construction_that_skips_a_layer_is_caught(monkeypatch):
    mod = importlib.import_module("mqar_theory.constructions.attention_h27")
    real = mod._layer
    calls = {"n": 0}

    def one_layer_only(u, *a):  # the second layer applied without the traced mixer: not counted
        calls["n"] += 1
        return real(u, *a) if calls["n"] % 2 else mod.linear_bias_attention(u, *a)

    monkeypatch.setattr(mod, "_layer", one_layer_only)
    df = B.measure(attention_h27, [{"N": 10, "c": 6, "K": 2}], num_instances=2, device="cpu")
    assert df["layers"].iloc[0] == 1
    with pytest.raises(AssertionError, match="closed form"):
        B.check_sizes("attention_h27", df)


def test_lower_bounds_are_context_not_claims():
    for name, claims in B.CLAIMS.items():
        assert all(B.get_bound(bid).kind == "upper" for bid, _ in claims), name
    assert "based-thm3.2-layers" in B.CONTEXT["baseconv_sorting"]


# ------------------------------------------------------------------------------------------------
# finding 4: counts that left things out
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("N", [8, 40])
def test_attention_biases_are_counted_parameters_independent_of_N(N):
    c = 6
    h, s = attention_h27(c, N), attention_softmax(c, N)
    assert not any(b.shape[-1] == N for b in h.buffers()) and not any(b.shape[-1] == N for b in s.buffers())
    assert h.num_parameters == 54 * c * c + 3 and h.num_fixed == 3 * c * c
    b = 3
    assert s.num_parameters == 32 * b * b + 24 * b + 10 and s.num_fixed == c * (4 * b + 2)


def test_softmax_readout_uses_only_the_network_output():
    c, N = 16, 32
    con = attention_softmax(c, N)
    x = _data(c, N, 4)
    assert (con.predict(x) == expected_answers(x, c)).all()
    with torch.no_grad():
        con.E[:, 4 * con.bits] = 0.0  # the network no longer marks keys: no answer may survive
    assert (con.predict(x) == -1).all()


# ------------------------------------------------------------------------------------------------
# finding 5: K was capped at 16; user grids
# ------------------------------------------------------------------------------------------------
def test_K_reaches_N_over_4():
    assert B.default_K(1000, 1000) == 250 and B.default_K(66, 1000) == 16 and B.default_K(66, 6) == 2
    cpu_K = max(pt["K"] for g in B.CPU_GRID.grids.values() for pt in g)
    assert cpu_K > 16
    assert any(pt["K"] == pt["N"] // 4 for pt in B.CPU_GRID.grids["attention_h27"] if pt["N"] >= 64)
    pows = {pt[k] for g in B.CPU_GRID.grids.values() for pt in g for k in ("N", "c")}
    assert any(v & (v - 1) for v in pows)  # not only powers of two


def test_user_grid_checks_every_claim_there():
    tables, report = B.verify("cpu", vocab_sizes=[6, 10], seq_lens=[22, 30], num_instances=2,
                              constructions=["attention_softmax", "baseconv_input_dependent"])
    assert sorted(tables["attention_softmax"]["c"].unique()) == [6, 10]
    assert sorted(tables["attention_softmax"]["N"].unique()) == [22, 30]
    claimed = {bid for n in ("attention_softmax", "baseconv_input_dependent") for bid, _ in B.CLAIMS[n]}
    assert claimed <= set(report["bound"]) and report["ok"].all()
    with pytest.raises(ValueError, match="vocab_sizes"):
        B.verify("cpu", vocab_sizes=[7], seq_lens=[22])
    with pytest.raises(ValueError, match="give both"):
        B.verify("cpu", vocab_sizes=[6])


def test_cli_user_grid_exit_codes(capsys, monkeypatch):
    args = ["check-bounds", "--device", "cpu", "--vocab-sizes", "6,10", "--seq-lens", "22", "--instances", "2",
            "--only", "attention_h27"]
    assert cli_main(args) == 0
    assert cli_main(["check-bounds", "--vocab-sizes", "7", "--seq-lens", "22"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "vocab_sizes" in err and "Traceback" not in err
    assert cli_main(["check-bounds", "--vocab-sizes", "6,x", "--seq-lens", "22"]) == 2
    monkeypatch.setitem(B.CLAIMS, "attention_h27", [("prop4.3-params", 54)])  # 54c² + 3 > 54c²
    assert cli_main(args) == 1


def test_report_says_how_each_constant_was_obtained():
    for spec in B.CLAIM_SPECS:
        assert spec.basis in ("proved", "fitted") and spec.derivation
    assert not math.isnan(B.claim_spec("baseconv_sorting", "sort-layers").const)
    df = pd.DataFrame(B.CPU_GRID.grids["attention_h27"])
    assert set(df.columns) >= {"N", "c", "K"}


def test_another_module_can_register_a_construction_and_its_claims(monkeypatch):
    from mqar_theory import constructions

    name = "softmax_copy"
    monkeypatch.setitem(constructions.BUILDERS, name, None)  # restored (removed) after the test
    monkeypatch.setitem(B.CLAIMS, name, [])
    monkeypatch.setattr(B.claims, "CLAIM_SPECS", list(B.CLAIM_SPECS))
    bound = B.Bound("test-copy-layers", "test", "upper", "layers", sympy.Integer(1),
                    "two layers", applies_to={name: {}})
    monkeypatch.setitem(B.BOUNDS, bound.id, bound)
    try:
        B.register_construction(name, attention_softmax)
        B.register_claim(B.Claim(name, bound.id, 2, "proved", "the traced pass applies two layers"))
        _, report = B.verify("cpu", smoke=True, constructions=[name], num_instances=1)
        by = report.set_index("bound")
        assert by.loc[bound.id, "status"] == "holds" and by.loc["measured = closed-form sizes", "ok"]
        B.register_claim(B.Claim(name, bound.id, 1.5, "proved", "wrong on purpose"))
        with pytest.raises(B.ClaimFailed, match="test-copy-layers"):
            B.verify("cpu", smoke=True, constructions=[name], num_instances=1)
    finally:
        for prof in (B.CPU_GRID, B.GPU_GRID, B.SMOKE_GRID):
            prof.grids.pop(name, None)
            prof.fixed_c.pop(name, None)


def test_verify_reports_the_circuit_claims_and_fails_on_a_broken_one(monkeypatch):
    """Thm 4.2's rows come from measuring the compilers; a circuit claim that stops holding fails verify."""
    from mqar_theory import bounds, circuits

    _, report = bounds.verify("cpu", smoke=True, constructions=None, circuits=True, max_N=16, max_c=16)
    rows = report[report["construction"].str.startswith("circuits/")]
    assert {"circuits/levels", "circuits/preserving", "circuits/sequential"} <= set(rows["construction"])
    assert rows["ok"].all() and (rows["status"] == "fails as expected").any()

    real = circuits.check_claims

    def broken(**kw):
        df = real(**kw).copy()
        df.loc[0, ["ok", "holds"]] = False  # "levels: evaluate == circuit" no longer holds
        return df

    monkeypatch.setattr(circuits, "check_claims", broken)
    with pytest.raises(bounds.ClaimFailed, match="circuits/levels"):
        bounds.verify("cpu", smoke=True, circuits=True, max_N=16, max_c=16)
