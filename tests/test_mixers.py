"""Mixers against naive references: BaseConv (eq. 1), softmax attention, linear-bias attention."""

import pytest
import torch

from mqar_theory.mixers import (
    MIXERS,
    Attention,
    BaseConv,
    LinearBiasAttention,
    baseconv,
    causal_conv,
    causal_conv_direct,
    cyclic_conv,
    cyclic_conv_direct,
    get_mixer,
    linear_bias_attention,
)

pytestmark = pytest.mark.usefixtures("float64_default")  # these comparisons run in float64


def eq1_loop(u, W, b1, b2, h, cyclic=False):
    """Eq. (1) one entry at a time: y[i,q] = (sum_p u[i,p] W[p,q] + b1[i,q]) (sum_k h[k,q] u[i-k,q] + b2[i,q])."""
    B, n, d = u.shape
    y = torch.zeros(B, n, d)
    for b in range(B):
        for i in range(n):
            for q in range(d):
                lin = sum(u[b, i, p] * W[p, q] for p in range(d)) + b1[i, q]
                if cyclic:
                    conv = sum(h[k, q] * u[b, (i - k) % n, q] for k in range(h.shape[0]))
                else:
                    conv = sum(h[k, q] * u[b, i - k, q] for k in range(min(h.shape[0], i + 1)))
                y[b, i, q] = lin * (conv + b2[i, q])
    return y


@pytest.mark.parametrize("kernel_size", [None, 3])
@pytest.mark.parametrize("n", [12, 7])  # full length and a shorter input
def test_baseconv_matches_loop_of_eq1(kernel_size, n):
    torch.manual_seed(0)
    layer = BaseConv(4, 12, kernel_size=kernel_size)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p))
    u = torch.randn(2, n, 4)
    ref = eq1_loop(u, layer.W, layer.b1, layer.b2, layer.h)
    assert torch.allclose(layer(u), ref, atol=1e-10, rtol=0)
    assert torch.allclose(layer.forward_reference(u), ref, atol=1e-10, rtol=0)


def test_cyclic_baseconv_matches_loop():
    torch.manual_seed(1)
    W, b1, b2, h = torch.randn(3, 3), torch.randn(9, 3), torch.randn(9, 3), torch.randn(9, 3)
    u = torch.randn(2, 9, 3)
    assert torch.allclose(baseconv(u, W, b1, b2, h, cyclic=True), eq1_loop(u, W, b1, b2, h, cyclic=True),
                          atol=1e-10, rtol=0)


@pytest.mark.parametrize("N,L", [(64, 64), (64, 5), (33, 64), (1, 64), (128, 128), (100, 17)])
def test_fft_and_direct_convolutions_agree(N, L):
    torch.manual_seed(2)
    u, h = torch.randn(3, N, 6), torch.randn(L, 6)
    assert (causal_conv(u, h) - causal_conv_direct(u, h)).abs().max() < 1e-10
    if L <= N:
        assert (cyclic_conv(u, h) - cyclic_conv_direct(u, h)).abs().max() < 1e-10


def test_long_filter_on_short_input_never_sees_the_future():
    """The official long conv wraps filter taps onto future tokens when the input is shorter than l_max."""
    torch.manual_seed(3)
    layer = BaseConv(5, 64)  # long filter, 64 taps
    with torch.no_grad():
        layer.h.copy_(torch.randn(64, 5))
    u = torch.randn(1, 20, 5, requires_grad=True)
    y = layer(u)
    for t in (0, 5, 18):
        (g,) = torch.autograd.grad(y[0, t].sum(), u, retain_graph=True)
        assert g[0, t + 1 :].abs().max() < 1e-12  # FFT round-off only (the official leak is O(1))
        assert g[0, : t + 1].abs().max() > 1e-3


def test_attention_matches_naive_softmax_loop():
    torch.manual_seed(4)
    for heads in (1, 2):
        att = Attention(8, 16, num_heads=heads)
        u = torch.randn(3, 16, 8)
        assert torch.allclose(att(u), att.forward_reference(u), atol=1e-10)


def test_linear_bias_attention_matches_loop_for_every_mask():
    torch.manual_seed(5)
    for mask in ("none", "causal", "strict"):
        m = LinearBiasAttention(4, 10, mask=mask)
        with torch.no_grad():
            m.B.copy_(torch.randn(10, 10))
        u = torch.randn(2, 10, 4)
        assert torch.allclose(m(u), m.forward_reference(u), atol=1e-10)
        assert torch.allclose(m(u[:, :6]), m.forward_reference(u[:, :6]), atol=1e-10)
    u = torch.randn(1, 5, 4)
    strict = linear_bias_attention(u, *(torch.randn(4, 4) for _ in range(3)), torch.zeros(5, 5), "strict")
    assert strict[0, 0].abs().max() == 0  # the first position has no prior key


@pytest.mark.parametrize("name", sorted(MIXERS))
def test_every_registered_mixer_is_causal_and_shape_preserving(name):
    torch.manual_seed(6)
    m = get_mixer(name, 8, 16)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    u = torch.randn(2, 16, 8)
    y = m(u)
    assert y.shape == u.shape
    v = u.clone()
    v[:, 9:] = torch.randn(2, 7, 8)
    assert torch.allclose(m(v)[:, :9], y[:, :9], atol=1e-12)


def test_errors_name_the_parameter():
    with pytest.raises(ValueError, match="mixer"):
        get_mixer("no_such_mixer", 8, 16)
    with pytest.raises(ValueError, match="kernel_size"):
        BaseConv(8, 16, kernel_size=17)
    with pytest.raises(ValueError, match="d_model"):
        BaseConv(0, 16)
    with pytest.raises(ValueError, match="num_heads"):
        Attention(8, 16, num_heads=3)
    with pytest.raises(ValueError, match="mask"):
        LinearBiasAttention(4, 8, mask="future")
    with pytest.raises(ValueError, match="seq_len"):
        BaseConv(4, 8)(torch.randn(1, 9, 4))
