"""Sabotage: each way to hide size from the measurement, applied to each construction, must be caught by
the bound check (``bounds.verify``'s rows: closed-form sizes, exactness, claims) or the locality test
(encode / decode position-wise)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from mqar_theory import bounds as B
from mqar_theory.constructions import BUILDERS, CONSTRUCTIONS, MixerLayer
from mqar_theory.constructions import base as base_mod

NAMES = sorted(BUILDERS)
GRID = [{"N": 12, "c": 8, "K": 3}]


class Widen(MixerLayer):
    """A layer that reads one extra channel it carries along: the stream is one wider."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, u):
        return torch.cat([self.inner(u[..., :-1]), u[..., -1:]], dim=-1)


def _build(name):
    pt = GRID[0]
    return BUILDERS[name](pt["c"], pt["N"], **CONSTRUCTIONS[name].grid_constants(pt)).double()


def _wrap_program(con, edit):
    """Replace ``con.program`` (per input or not) by ``edit(program)``."""
    orig = con.program
    con.program = lambda x, **kw: edit(orig(x, **kw))


def unused_parameter(con):
    con.junk = nn.Parameter(torch.zeros(7, dtype=torch.float64), requires_grad=False)


def unused_buffer(con):
    con.register_buffer("junk", torch.zeros(7, dtype=torch.float64))


def tensor_attribute(con):
    object.__setattr__(con, "stash", torch.ones(7, dtype=torch.float64))


def tensors_in_a_list(con):
    con.layers[0].kept = [torch.ones(3, dtype=torch.float64), {"w": torch.ones(4, dtype=torch.float64)}]


def widened_stream(con):
    enc, dec = con.encode, con.decode
    con.encode = lambda x: torch.cat([enc(x), enc(x)[..., :1] * 0], dim=-1)
    con.decode = lambda v: dec(v[..., :-1])
    _wrap_program(con, lambda layers: nn.ModuleList(Widen(m) for m in layers))


def extra_layer_in_runner(con, monkeypatch):
    """The runner applies one more layer than the program lists (a copy of the last one)."""
    runner = base_mod.run_layers

    def patched(layers, u, widths=None, keep=True):
        return runner([*layers, layers[-1]], u, widths=None, keep=keep)

    monkeypatch.setattr(base_mod, "run_layers", patched)
    monkeypatch.setattr("mqar_theory.bounds.sizes.run_layers", patched)


def layer_hidden_in_decode(con):
    """The last layer is taken out of the program and applied inside decode (sequence mixing there)."""
    held, dec = {}, con.decode

    def cut(layers):
        held["last"] = layers[-1]
        return nn.ModuleList(list(layers)[:-1])

    _wrap_program(con, cut)
    con.decode = lambda v: dec(held["last"](v))


def mixing_in_decode(con):
    """decode sums a little of the previous rows into every row."""
    dec = con.decode
    con.decode = lambda v: dec(v + 1e-3 * (v.cumsum(1) - v))


SABOTAGES = [unused_parameter, unused_buffer, tensor_attribute, tensors_in_a_list, widened_stream,
             extra_layer_in_runner, layer_hidden_in_decode, mixing_in_decode]


def _caught(name, con) -> list[str]:
    df = B.measure(lambda c, N, **kw: con, GRID, num_instances=3, dtype=torch.float64, name=name)
    report = pd.DataFrame(B._verify_construction(name, df, torch.float64))
    return report.loc[~report.ok, "bound"].tolist()


@pytest.mark.parametrize("name", NAMES)
def test_honest_constructions_pass(name):
    assert _caught(name, _build(name)) == []


@pytest.mark.parametrize("sabotage", SABOTAGES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_every_sabotage_is_caught(name, sabotage, monkeypatch):
    con = _build(name)
    if sabotage is extra_layer_in_runner:
        sabotage(con, monkeypatch)
    else:
        sabotage(con)
    failed = _caught(name, con)
    assert failed, f"{sabotage.__name__} on {name} was not caught"
    if sabotage in (unused_parameter, unused_buffer, tensor_attribute, tensors_in_a_list, widened_stream,
                    extra_layer_in_runner):
        assert "measured = closed-form sizes" in failed
    if sabotage is mixing_in_decode:
        assert "encode / decode position-wise" in failed
