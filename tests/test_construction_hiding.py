"""Hiding places a review of the measurement found, applied to every construction: each is caught by the operator trace
(``bounds.observe``) alone, with the closed form left at the honest sizes (i.e. edited to agree with what the
saboteur claims): ``measure_sizes`` either refuses the program (``MeasurementError`` naming where the number
entered) or measures more numbers, more layers, or a locality violation than the honest construction has.
A toy construction (one class, one ``register`` line) is measured like the others."""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from mqar_theory import bounds as B
from mqar_theory.bounds.observe import MeasurementError, ObservingMode
from mqar_theory.constructions import BUILDERS, CONSTRUCTIONS, Construction, MixerLayer, register, unregister
from mqar_theory.constructions.layers import LinearBiasAttentionLayer
from mqar_theory.data import make_mqar

NAMES = sorted(BUILDERS)
C, N, HIDDEN = 8, 12, 1000
_GLOBAL = torch.ones(HIDDEN, dtype=torch.float64)  # a module-level global the sabotage reads


def _build(name):
    pt = {"N": N, "c": C, "K": 3}
    return BUILDERS[name](C, N, **CONSTRUCTIONS[name].grid_constants(pt)).double()


def _tokens():
    return make_mqar(vocab_size=C, seq_len=N, num_kv_pairs=3, num_examples=2, seed=5).inputs


def _reads(v, w):
    """v, plus 0 × every number of w: the answers stay exact, but all of w enters the computation."""
    return v + 0.0 * w.to(v.dtype).sum()


def _on_decode(con, fn):
    dec = con.decode
    con.decode = lambda v: dec(fn(v))


# --- the hiding places ----------------------------------------------------------------------------------
def closure(con):
    w = torch.ones(HIDDEN, dtype=torch.float64)
    _on_decode(con, lambda v: _reads(v, w))


def partial(con):
    _on_decode(con, functools.partial(lambda w, v: _reads(v, w), torch.ones(HIDDEN, dtype=torch.float64)))


def global_tensor(con):
    _on_decode(con, lambda v: _reads(v, _GLOBAL))


def list_of_floats(con):
    w = [1.0] * HIDDEN
    _on_decode(con, lambda v: _reads(v, torch.tensor(w)))


def floats_one_by_one(con):
    w = [0.0] * HIDDEN

    def fn(v):
        for x in w:  # each Python number enters one operation
            v = v + x
        return v

    _on_decode(con, fn)


def seeded_generator(con):
    def fn(v):
        g = torch.Generator().manual_seed(0)
        return _reads(v, torch.randn(HIDDEN, generator=g, dtype=torch.float64))

    _on_decode(con, fn)


def arange_arithmetic(con):
    _on_decode(con, lambda v: _reads(v, torch.arange(HIDDEN, dtype=torch.float64) * 0.5))


def module_in_a_dict(con):
    con.stash = {"m": nn.Linear(10, HIDDEN // 10, bias=False).double()}
    _on_decode(con, lambda v: _reads(v, con.stash["m"].weight))


@dataclass
class _Box:
    arr: np.ndarray


def numpy_in_a_dataclass(con):
    con.box = _Box(np.ones(HIDDEN))
    _on_decode(con, lambda v: _reads(v, torch.as_tensor(con.box.arr)))


def simple_namespace(con):
    con.ns = types.SimpleNamespace(w=torch.ones(HIDDEN, dtype=torch.float64))
    _on_decode(con, lambda v: _reads(v, con.ns.w))


def nested_six_deep(con):
    con.deep = [[[[[[torch.ones(HIDDEN, dtype=torch.float64)]]]]]]
    _on_decode(con, lambda v: _reads(v, con.deep[0][0][0][0][0][0]))


def class_attribute(con):
    cls = type(con.__class__.__name__ + "Sabotaged", (type(con),), {"hidden": torch.ones(HIDDEN, dtype=torch.float64)})
    con.__class__ = cls
    _on_decode(con, lambda v: _reads(v, type(con).hidden))


def int_table_as_weights(con):
    con.register_buffer("fixed_point", torch.ones(HIDDEN, dtype=torch.int64))  # registered: counted as index
    _on_decode(con, lambda v: _reads(v, con.fixed_point))


def hidden_int_table(con):
    table = torch.ones(HIDDEN, dtype=torch.int64)
    _on_decode(con, lambda v: _reads(v, table))


def view_of_hidden_buffer(con):
    big = torch.ones(HIDDEN + 7, dtype=torch.float64)
    con.register_buffer("small", big[:7])  # 7 counted, 1007 read
    _on_decode(con, lambda v: _reads(v, con.small.as_strided((HIDDEN + 7,), (1,))))


class _Merged(MixerLayer):
    """One layer that runs every real layer, held in a plain dict attribute (the review's H.27 undercount)."""

    def __init__(self, layers):
        super().__init__()
        self.held = {"layers": list(layers)}
        self.d_in = getattr(layers[0], "d_in", 0)

    def forward(self, u):
        for m in self.held["layers"]:
            u = m.forward(u)  # .forward: no module hooks either
        return u


def _replace_program(con, edit):
    """The program becomes ``edit(list of the real layers)``; the real layers are no longer registered anywhere
    (``con.layers`` is replaced too), so only what ``edit`` registers is counted."""
    if con.input_dependent:
        orig = con.program
        con.program = lambda x, **kw: edit(list(orig(x, **kw)))
    else:
        con.layers = edit(list(con.layers))


def merged_layers(con):
    _replace_program(con, lambda layers: nn.ModuleList([_Merged(layers)]))


class _Closure(MixerLayer):
    def __init__(self, fn, d):
        super().__init__()
        self.fn, self.d_in = fn, d

    def forward(self, u):
        return self.fn(u)


def layer_in_a_closure(con):
    """Layer 2's weights live in a closure: the program lists a wrapper without them."""

    def edit(layers):
        second = layers[1]
        return nn.ModuleList([layers[0], _Closure(lambda u: second.forward(u), getattr(second, "d_in", 0)),
                              *layers[2:]])

    _replace_program(con, edit)


def last_row_mixing_in_encode(con):
    enc = con.encode

    def fn(x):
        u = enc(x)
        return torch.cat([u[:, :-1], u[:, -1:] + 0.0 * u[:, :1]], dim=1)  # row 0 leaks into the last row

    con.encode = fn


def last_row_mixing_in_decode(con):
    _on_decode(con, lambda v: torch.cat([v[:, :-1], v[:, -1:] + 0.0 * v[:, :-1].sum(1, keepdim=True)], dim=1))


SABOTAGES = [closure, partial, global_tensor, list_of_floats, floats_one_by_one, seeded_generator,
             arange_arithmetic, module_in_a_dict, numpy_in_a_dataclass, simple_namespace, nested_six_deep,
             class_attribute, int_table_as_weights, hidden_int_table, view_of_hidden_buffer, merged_layers,
             layer_in_a_closure, last_row_mixing_in_encode, last_row_mixing_in_decode]
COUNTED = {floats_one_by_one, seeded_generator, arange_arithmetic, int_table_as_weights}  # measured, not refused


@functools.cache
def _honest(name):
    s = B.measure_sizes(_build(name), _tokens())
    return s["params"], s["layers"], s["width"]


@pytest.mark.parametrize("name", NAMES)
def test_honest_sizes_equal_the_closed_form(name):
    s = B.measure_sizes(_build(name), _tokens())
    t = int(B.num_interaction_distances(_tokens(), C).max())
    want = B.closed_form_sizes(name, {"c": C, "N": N, "t": t, "t_filters": s.get("t_filters")})
    assert {q: s[q] for q in want} == want
    assert s["position_wise"] and s["params"] == s["values"] + s["index"] + s["created"] + s["scalars"]


@pytest.mark.parametrize("sabotage", SABOTAGES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_every_hiding_place_is_caught_by_the_measurement(name, sabotage):
    con = _build(name)
    x = _tokens()
    exact = con.predict(x)
    sabotage(con)
    assert torch.equal(con.predict(x), exact)  # the sabotage keeps the answers exact
    params, layers, _ = _honest(name)  # what the edited closed form claims
    try:
        s = B.measure_sizes(con, x)
    except MeasurementError as e:
        assert sabotage not in COUNTED, str(e)
        assert "test_construction_hiding.py" in str(e) or "entered" in str(e)
        return
    assert sabotage in COUNTED or sabotage in (last_row_mixing_in_encode, last_row_mixing_in_decode), s
    if sabotage in COUNTED:
        assert s["params"] >= params + HIDDEN, (s["params"], params)
    else:
        assert not s["position_wise"], s["locality_message"]


def test_a_refusal_names_where_the_number_entered():
    con = _build("attention_h27")
    closure(con)
    with pytest.raises(MeasurementError, match=r"test_construction_hiding\.py:\d+: a tensor of shape \(1000,\)"):
        B.measure_sizes(con, _tokens())


def test_merged_layers_registered_properly_still_count_two():
    """The H.27 merge with the real layers registered (counted) and called through their modules: two layers."""
    con = _build("attention_h27")
    orig = con.program

    class Both(MixerLayer):
        def __init__(self, layers):
            super().__init__()
            self.inner, self.d_in = nn.ModuleList(layers), layers[0].d_in

        def forward(self, u):
            for m in self.inner:
                u = m(u)
            return u

    con.program = lambda x, **kw: nn.ModuleList([Both(list(orig(x)))])
    s = B.measure_sizes(con, _tokens())
    assert s["layers"] == 2 and s["params"] == _honest("attention_h27")[0]


def test_a_block_that_mixes_twice_counts_two():
    """Two attention mixings inside one layer's forward (no inner modules, raw ops): depth 2."""
    con = _build("attention_h27")
    l1, l2 = con.layers

    class Raw(MixerLayer):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.d_in = l1, l2, l1.d_in

        def forward(self, u):
            u = u + self.a.attend(u)
            return u + self.b.attend(u)

    con.program = lambda x, **kw: nn.ModuleList([Raw()])
    s = B.measure_sizes(con, _tokens())
    assert s["layers"] == 2


# --- the trace's own rules -------------------------------------------------------------------------------
def _depth(fn, n=6, d=3):
    u = torch.randn(1, n, d, dtype=torch.float64)
    mode = ObservingMode({})
    mode.mark(u, 0, [(1, 0, 1, n)])
    with torch.no_grad(), mode:
        y = fn(u)
    return mode.info(y)


@pytest.mark.parametrize("fn,depth", [
    (lambda u: u * 2 + u.abs(), 0),  # position-wise
    (lambda u: (u @ u.transpose(1, 2)).tril() @ u, 1),  # one attention
    (lambda u: u.cumsum(1), 1),
    (lambda u: u.sum(1, keepdim=True) + u, 1),
    (lambda u: torch.cat([u[:, :1] * 0, u[:, :-1]], 1) + u, 1),  # a shift, combined
    (lambda u: torch.nn.functional.pad(u, (0, 0, 1, 0))[:, :-1] + u, 1),
    (lambda u: u[:, -1:] + u, 1),  # the last row broadcast
    (lambda u: (u.cumsum(1) * 1).cumsum(1), 2),
    (lambda u: u.reshape(-1, 3).sum(0), 1),
    (lambda u: torch.fft.irfft(torch.fft.rfft(u, n=16, dim=1) * 2, n=16, dim=1)[:, :6], 1),
])
def test_mixing_depth_of_small_programs(fn, depth):
    assert _depth(fn)[1] == depth


def test_shift_alone_is_a_moved_axis_not_yet_mixed():
    kind = _depth(lambda u: torch.cat([torch.zeros(1, 1, 3, dtype=u.dtype), u[:, :-1]], 1))
    assert kind[1] == 0 and kind[2] == ((1, -1, 1, 6),)  # read out, it fails the locality check


def test_scalars_factories_and_fills_are_counted():
    u = torch.randn(1, 4, 2, dtype=torch.float64)
    mode = ObservingMode({})
    mode.mark(u, 0, [(1, 0, 1, 4)])
    with torch.no_grad(), mode:
        (u > 0.5) & (u < 2.0)  # two scalars
        torch.arange(10)  # a factory: 10
        torch.zeros(100)  # a constant fill: 1
        torch.full_like(u, -1)  # 1
    assert sum(n for *_, n in mode.scalars) == 2
    assert sum(n for *_, n in mode.created) == 12


def test_reading_the_input_into_python_is_refused():
    u = torch.randn(1, 4, 2, dtype=torch.float64)
    mode = ObservingMode({})
    mode.mark(u, 0, [(1, 0, 1, 4)])
    with pytest.raises(MeasurementError, match="read into Python"), torch.no_grad(), mode:
        float(u.sum())


def test_an_operator_without_a_rule_is_refused():
    u = torch.randn(1, 4, 2, dtype=torch.float64)
    mode = ObservingMode({})
    mode.mark(u, 0, [(1, 0, 1, 4)])
    with pytest.raises(MeasurementError, match="no rule"), torch.no_grad(), mode:
        u.as_strided((2,), (1,))


# --- a toy construction: one class, one register line ---------------------------------------------------
class ToyPrevious(Construction):
    """A toy (not an MQAR solver): E = I_c, one linear-bias layer copying the previous token (r = (0, 1)), and
    the argmax read-out: answers the previous token. Counted: W_Q, W_K (zero), W_V (c² each) and r (2): 3c² + 2;
    E = I_c is fixed (reported apart)."""

    name = "toy_previous"

    @classmethod
    def closed_form(cls, c, N, t=None):
        return {"params": 3 * c * c + 2, "layers": 1, "width": c}

    @classmethod
    def fixed_tables(cls, c, N):
        return {"E": torch.eye(c, dtype=torch.float64)}

    def __init__(self, vocab_size, seq_len):
        super().__init__(vocab_size, seq_len)
        c = vocab_size
        self.register_buffer("E", torch.eye(c))
        self.layers = nn.ModuleList([LinearBiasAttentionLayer(torch.zeros(c, c), torch.zeros(c, c), torch.eye(c),
                                                              torch.tensor([0.0, 1.0]), "strict")])

    def encode(self, tokens):
        return self.E[self.check_tokens(tokens)]

    def decode(self, stream):
        return stream.argmax(-1)


def test_a_toy_construction_is_measured():
    register(ToyPrevious)
    try:
        con = BUILDERS["toy_previous"](C, N).double()
        s = B.measure_sizes(con, _tokens())
        assert {q: s[q] for q in ("params", "layers", "width")} == {"params": 3 * C * C + 2, "layers": 1, "width": C}
        assert s["fixed"] == C * C and s["position_wise"]
        closure(con)
        with pytest.raises(MeasurementError):
            B.measure_sizes(con, _tokens())
    finally:
        unregister("toy_previous")


def test_the_reviews_merged_h27_fails_verify_even_with_its_closed_form_edited(monkeypatch):
    """The review's case end to end: one layer running both, the closed form edited to 0 numbers and 1 layer;
    ``verify``'s rows for this construction refuse it (the trace saw numbers no counted tensor holds)."""
    from mqar_theory.constructions.attention_h27 import AttentionH27

    monkeypatch.setattr(AttentionH27, "closed_form", classmethod(lambda cls, c, N, t=None: {
        "params": 0, "layers": 1, "width": 3 * c}))
    con = _build("attention_h27")
    merged_layers(con)
    df = B.measure(lambda c, n, **kw: con, [{"N": N, "c": C, "K": 3}], num_instances=2, dtype=torch.float64,
                   name="attention_h27")
    rows = {r["bound"]: r for r in B._verify_construction("attention_h27", df, torch.float64)}
    assert not rows["every number entering is counted"]["ok"]
    assert "not among the construction's counted tensors" in rows["every number entering is counted"]["message"]
    assert not rows["encode / decode position-wise"]["ok"] and not rows["measured = closed-form sizes"]["ok"]
