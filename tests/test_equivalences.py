"""Hyena, H3 and Taylor linear attention as BaseConv stacks with weights mapped from the layer (float64)."""

import pytest
import torch

from mqar_theory.circuits import BaseConvStack, TaylorLinearAttention, blowup, to_baseconv_stack
from mqar_theory.constructions.layers import SparseBaseConv
from mqar_theory.mixers import MIXERS, baseconv

F64 = torch.float64


def _mixer(name, d, N, seed, **kw):
    torch.manual_seed(seed)
    cls = TaylorLinearAttention if name == "taylor" else MIXERS[name]
    m = cls(d, N, **kw).double()
    with torch.no_grad():  # move every weight off its init, as a trained layer would be
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


CASES = [("hyena", 4, 12, {"filter_order": 8}), ("hyena", 3, 20, {"filter_order": 4, "emb_dim": 5}),
         ("hyena", 2, 2, {}), ("h3", 4, 12, {"d_state": 4}), ("h3", 3, 5, {"d_state": 8}),
         ("h3", 2, 16, {"d_state": 16}), ("taylor", 3, 10, {"feature_dim": 2}), ("taylor", 2, 6, {"feature_dim": 1})]


@pytest.mark.parametrize("name, d, N, kw", CASES)
def test_stack_equals_the_layer_in_float64(name, d, N, kw):
    m = _mixer(name, d, N, seed=d * 100 + N, **kw)
    stack = to_baseconv_stack(m)
    assert isinstance(stack, BaseConvStack) and all(type(layer) is SparseBaseConv for layer in stack.layers)
    assert all(not layer.cyclic for layer in stack.layers)
    u = torch.randn(3, N, d, dtype=F64)
    with torch.no_grad():
        y, ref = stack(u), m(u)
        assert (y - ref).abs().max() <= 1e-12 * (1 + ref.abs().max())
        # shorter inputs too (the stack is causal, like the layer)
        n = max(1, N // 2)
        inner = stack.read(u)[:, :n]
        for layer in stack.layers:
            inner = layer(inner)
        assert (inner[..., :d] - m(u[:, :n])).abs().max() <= 1e-12 * (1 + ref.abs().max())
        # each layer's dense form, through mixers.baseconv, is the layer
        x = stack.read(u)
        for layer in stack.layers:
            W, b1, b2, h = layer.dense()
            y_dense, x = baseconv(x, W, b1, b2, h, cyclic=layer.cyclic), layer(x)
            assert (y_dense - x).abs().max() <= 1e-12 * (1 + x.abs().max())


def test_taylor_linear_attention_matches_its_quadratic_reference():
    m = _mixer("taylor", 3, 9, seed=0, feature_dim=3)
    u = torch.randn(2, 9, 3, dtype=F64)
    assert torch.allclose(m(u), m.forward_reference(u), atol=1e-12, rtol=1e-12)
    with pytest.raises(ValueError, match="feature_dim"):
        TaylorLinearAttention(3, 9, feature_dim=0)


@pytest.mark.parametrize("name, d, N, kw, layers", [("hyena", 4, 12, {"filter_order": 8}, 5),
                                                    ("h3", 4, 12, {"d_state": 4}, 4),
                                                    ("taylor", 3, 10, {"feature_dim": 2}, 5)])
def test_parameter_formulas_and_blowup(name, d, N, kw, layers):
    m = _mixer(name, d, N, seed=1, **kw)
    stack = to_baseconv_stack(m)
    b = blowup(m, stack)
    assert b["stack_layers"] == layers and b["stack_params"] == stack.num_parameters
    if name == "hyena":
        k = m.short_kernel
        assert stack.num_parameters == 5 * 9 * d * d + 30 * N * d + 3 * d * (k + N + 3)
        assert b["mixer_params_explicit_filter"] == b["mixer_params"] + N * d
        # the constant factor of the docstring's derivation
        assert b["param_ratio_explicit"] <= 45
    elif name == "h3":
        assert stack.num_parameters == 4 * 9 * d * d + 24 * N * d + 3 * d * (2 + min(m.d_state, N) + N)
        assert b["param_ratio_explicit"] <= 45
    else:
        f = m.feature_dim
        D = 2 * f + 2 * f * f + (1 + f + f * f) * d
        assert stack.width == D and stack.num_parameters == 5 * (D * D + 2 * N * D) + D * (1 + 1 + 1 + N + 1)
        # Prop F.8's poly-log blow-up in layers, read as layers <= log2(N·d)²: here a constant 5
        import math
        assert stack.num_layers <= math.log2(N * d) ** 2


def test_to_baseconv_stack_rejects_other_mixers():
    with pytest.raises(ValueError, match="mixer"):
        to_baseconv_stack(MIXERS["attention"](4, 8))
