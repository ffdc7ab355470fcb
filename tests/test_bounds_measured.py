"""Sizes are measured from the modules (every stored number, the layers the runner applies), never declared;
one test per finding of the reviews of the bound checks. The sabotage tests are in
``test_construction_sabotage.py``."""

import importlib
import math

import pandas as pd
import pytest
import sympy
import torch

from mqar_theory import bounds as B
from mqar_theory.cli import main as cli_main
from mqar_theory.constructions import (
    BUILDERS,
    AttentionSoftmax,
    attention_h27,
    attention_softmax,
    baseconv_input_dependent,
)
from mqar_theory.constructions.base import Construction, MixerLayer, expected_answers
from mqar_theory.data import make_mqar


def _data(c, N, K, n=4, seed=0):
    return make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=n, seed=seed).inputs


# ------------------------------------------------------------------------------------------------
# the counting hooks against hand-counted tiny models
# ------------------------------------------------------------------------------------------------
class _Cut(MixerLayer):
    """Keeps the first ``w`` channels of the stream (test layer)."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, u):
        return u[..., : self.w]


def test_trace_counts_the_layers_the_runner_applies_and_the_widest_stream_they_read():
    class Three(Construction):
        def __init__(self):
            super().__init__(4, 4)
            self.layers = torch.nn.ModuleList([_Cut(7), _Cut(5), _Cut(3)])

        def encode(self, tokens):
            return torch.zeros(*self.check_tokens(tokens).shape, 9)

        def decode(self, stream):
            return torch.full(stream.shape[:2], -1)

    assert B.trace(Three(), torch.zeros(4, dtype=torch.long)) == {"layers": 3, "width": 9}


def test_tiny_h27_counted_by_hand():
    c, N = 4, 4
    con = attention_h27(c, N)
    x = torch.tensor([1, 2, 1, 0])
    s = B.measure_sizes(con, x[None])
    # six (3c)² = 144-entry matrices + r¹ (2) + r² (1); nonzeros: four c×c identities, r¹ = (0, 1)
    assert s["values"] == 6 * 144 + 3 == 54 * c * c + 3
    # what decode brings (the key gate 1/2, the threshold, the -1 fill) is counted too
    assert (s["created"], s["scalars"]) == (1, 2) and s["params"] == 54 * c * c + 3 + 3
    assert s["params_nnz"] == 4 * c + 1 - 0  # W_V¹, W_Q², W_K², W_V² identities (c each), r¹[1]
    assert s["fixed"] == c * 3 * c and s["index"] == 0  # the table E only, no N×N bias
    assert s["layers"] == 2 and s["width"] == 3 * c


def test_tiny_softmax_counted_by_hand():
    con = attention_softmax(4, 4)  # b = 2, d = 10
    s = B.measure_sizes(con, torch.tensor([[1, 2, 1, 0]]))
    assert s["values"] == 10 * 2 * 4 + 2 * 10 * 3 + 10 * 2 + 2 * 10 + 6 == 186  # L1: 3·(d×b)+(b×d); L2; r¹, r²
    # decode: the b = 2 bit weights (arange), the -1 fill; scalars 1/2, 2, 0, threshold, c/2, c
    assert (s["created"], s["scalars"]) == (3, 6) and s["params"] == 186 + 2 + 7
    assert s["fixed"] == 4 * 10 and s["layers"] == 2 and s["width"] == 10


@pytest.mark.parametrize("name", ["baseconv_data_independent", "baseconv_sorting"])
def test_tiny_sparse_baseconv_counts(name):
    c, N = 4, 4
    con = BUILDERS[name](c, N)
    s = B.measure_sizes(con, torch.tensor([[1, 2, 1, 0]]))
    dense = sum(p.numel() for p in con.parameters())
    assert s["values"] == dense and s["params_nnz"] <= dense
    # the index tables count toward params, and so does what encode / decode bring (b + 5, b = 2)
    assert s["params"] == s["values"] + s["index"] + s["created"] + s["scalars"]
    assert s["created"] + s["scalars"] == 2 + 5
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
    assert s["values"] == 2 * 1 * N * c + N + 8 * c  # what Thm 4.5 counts: 2 filters N×c, mask, 8c
    assert s["params"] == s["values"] + 1 + 4  # the zero fills (t + 2) and decode's threshold and -1
    assert s["params_stored"] == 2 * 1 * N + N + 8 * c  # the impulses are (1, N, 1), expanded over c
    assert s["layers"] == 4 and s["width"] == 3 * c


# ------------------------------------------------------------------------------------------------
# finding 1: Thm 4.5's parameter check was circular
# ------------------------------------------------------------------------------------------------
def test_input_dependent_module_reports_what_it_stores():
    con = baseconv_input_dependent(16, 32, max_distances=5)
    counted = B.count_tensors(con, fixed={id(con.E): torch.eye(16)})  # E = I_c, the fixed one-hot table
    assert counted["params"] == sum(p.numel() for p in con.parameters()) == 8 * 16  # not 2tNc + ...
    assert counted["fixed"] == 16 * 16


def test_thm45_reads_t_from_the_input_not_the_slots():
    grid = [{"N": 32, "c": 16, "K": 4, "max_distances": 31}]  # 31 slots, inputs need <= 4 distances
    row = B.measure(BUILDERS["baseconv_input_dependent"], grid, num_instances=4, device="cpu").iloc[0]
    x = _data(16, 32, 4, n=4, seed=0)
    assert row["t"] == int(B.num_interaction_distances(x, 16).max()) <= 4
    assert row["t_filters"] <= row["t"] and row["values"] == 2 * row["t_filters"] * 32 * 16 + 32 + 128
    assert row["params"] == row["values"] + row["t_filters"] + 4
    assert row["bound:thm4.5-params"] == row["t"] * 32 * 16  # not 31 · N · c


def test_thm45_check_fails_when_the_program_holds_more_filters_than_needed(monkeypatch):
    mod = importlib.import_module("mqar_theory.constructions.baseconv_input_dependent")
    monkeypatch.setattr(mod, "interaction_distances", lambda x, c: list(range(1, x.shape[-1])))
    monkeypatch.setattr(mod.BaseConvInputDependent, "grid_constants", classmethod(lambda cls, pt: {}))
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
    monkeypatch.setattr(cls, "width", 1, raising=False)
    row = B.measure(BUILDERS[name], [{"N": 10, "c": 6, "K": 2}], num_instances=2, device="cpu").iloc[0]
    assert row["layers"] == row["layers_formula"] > 1 and row["width"] == row["width_formula"] > 1


def test_a_construction_that_skips_a_layer_is_caught(monkeypatch):
    """The second layer dropped from the program and applied by an overriding predict: measure answers with
    the runner, so exactness fails, and the count of one layer differs from the closed form."""
    con = attention_h27(6, 10).double()
    second = con.layers[1]
    con.layers = torch.nn.ModuleList([con.layers[0]])
    con.predict = lambda x: con.decode(second(con.trace(x)[-1]))
    x = _data(6, 10, 2)
    assert torch.equal(con.predict(x), expected_answers(x, 6))  # the override still answers
    df = B.measure(lambda c, N: con, [{"N": 10, "c": 6, "K": 2}], num_instances=2, device="cpu",
                   name="attention_h27")
    assert df["layers"].iloc[0] == 1 and df["accuracy"].iloc[0] < 1
    with pytest.raises(AssertionError, match="closed form"):
        B.check_sizes("attention_h27", df)


def test_lower_bounds_are_context_not_claims():
    for k in B.all_claims():
        assert k.expect == "context" or B.get_bound(k.bound).kind == "upper", k
    assert "based-thm3.2-layers" in {k.bound for k in B.claims_of("baseconv_sorting", "context")}


# ------------------------------------------------------------------------------------------------
# finding 4: counts that left things out
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("N", [8, 40])
def test_attention_biases_are_counted_parameters_independent_of_N(N):
    c = 6
    h, s = attention_h27(c, N), attention_softmax(c, N)
    assert not any(b.shape[-1] == N for b in h.buffers()) and not any(b.shape[-1] == N for b in s.buffers())
    x = torch.zeros(1, N, dtype=torch.long)
    hs, ss = B.measure_sizes(h, x), B.measure_sizes(s, x)
    assert hs["values"] == 54 * c * c + 3 and hs["fixed"] == 3 * c * c and hs["params"] == 54 * c * c + 6
    b = 3
    assert ss["values"] == 32 * b * b + 24 * b + 10 and ss["fixed"] == c * (4 * b + 2)
    assert ss["params"] == 32 * b * b + 25 * b + 17


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
    claimed = {k.bound for n in ("attention_softmax", "baseconv_input_dependent") for k in B.claims_of(n)}
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
    from mqar_theory.constructions import AttentionH27

    monkeypatch.setattr(AttentionH27, "claims", (B.Claim("prop4.3-params", const=54, basis="proved"),))  # > 54c²
    assert cli_main(args) == 1


def test_report_says_how_each_constant_was_obtained():
    for k in B.all_claims():
        assert k.expect != "holds" or (k.basis in ("proved", "fitted") and k.why), k
        assert k.expect != "fails" or (k.phrase and k.why), k
    assert not math.isnan(B.claim_spec("baseconv_sorting", "sort-layers").const)
    df = pd.DataFrame(B.CPU_GRID.grids["attention_h27"])
    assert set(df.columns) >= {"N", "c", "K"}


class ToyCopy(Construction):
    """A toy construction in one class: the two layers of attention_softmax, its own bound and claim."""

    name = "toy_copy"
    theorem = "test"
    own_bounds = (B.Bound("toy-layers", "test", "upper", "layers", sympy.Integer(1), "two layers"),)
    claims = (B.Claim("toy-layers", const=2, basis="proved", why="the program lists two layers"),)

    def __init__(self, vocab_size, seq_len):
        super().__init__(vocab_size, seq_len)
        src = attention_softmax(vocab_size, seq_len)
        self.layers = src.layers
        self.register_buffer("E", src.E)
        self.bits, self.threshold = src.bits, src.threshold

    @classmethod
    def closed_form(cls, c, N, t=None):
        return attention_softmax(c, N).closed_form(c, N)

    @classmethod
    def fixed_tables(cls, c, N):
        return {"E": attention_softmax(c, N).fixed_tables(c, N)["E"]}

    def encode(self, tokens):
        return self.E[self.check_tokens(tokens)]

    decode = AttentionSoftmax.decode
    _read = AttentionSoftmax._read


def test_a_toy_construction_is_one_class_and_one_registry_line(monkeypatch):
    from mqar_theory import constructions

    try:
        B.register_construction(ToyCopy)  # the one registry line
        _, report = B.verify("cpu", smoke=True, constructions=["toy_copy"], num_instances=1)
        by = report.set_index("bound")
        assert by.loc["toy-layers", "status"] == "holds" and by.loc["measured = closed-form sizes", "ok"]
        assert by.loc["encode / decode position-wise", "ok"]
        monkeypatch.setattr(ToyCopy, "claims", (B.Claim("toy-layers", const=1.5, basis="proved", why="wrong"),))
        with pytest.raises(B.ClaimFailed, match="toy-layers"):
            B.verify("cpu", smoke=True, constructions=["toy_copy"], num_instances=1)
    finally:
        constructions.unregister("toy_copy")
    assert "toy_copy" not in B.SMOKE_GRID.grids


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
