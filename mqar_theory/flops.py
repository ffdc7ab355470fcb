"""FLOP counting: ``count_flops(module, u)`` measures what ``Mixer.flops_per_token`` states by formula.

Convention (the one every ``flops_per_token`` formula follows):

* dense products count 2 FLOPs per multiply-add, as torch's ``FlopCounterMode`` counts them: matrix
  products (``mm``, ``bmm``, ``addmm``, ``baddbmm``, ``einsum``/``@`` lowered to them), convolutions and
  ``scaled_dot_product_attention``;
* an FFT of length n counts 2.5·n·log2(n) FLOPs per transformed real vector (``rfft``/``irfft``: half of
  the classic 5·n·log2(n) of a complex FFT) and 5·n·log2(n) per complex vector (``fft``/``ifft``);
* elementwise operations (gates, biases, activations, softmax normalisation, masks, cumulative sums, index
  selection) are not counted: they are O(n·d) for every mixer here and do not separate them.

``count_flops`` runs one forward pass under ``FlopCounterMode`` with the FFT formulas added and returns the
total; ``flops_per_token`` formulas are tested against ``count_flops(m, u) / (B·n)``.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops", "fft_flops"]

aten = torch.ops.aten


def fft_flops(n: int, complex_input: bool = False) -> float:
    """FLOPs of one length-n FFT of one vector: 2.5 n log2 n (real), 5 n log2 n (complex); 0 for n <= 1."""
    if n <= 1:
        return 0.0
    return (5.0 if complex_input else 2.5) * n * math.log2(n)


def _vectors(shape, dims) -> int:
    """How many vectors a transform over ``dims`` of a tensor of ``shape`` acts on."""
    total = math.prod(shape)
    return total // math.prod(shape[d] for d in dims)


def _r2c(x_shape, dim, normalization, onesided, out_shape=None, **kw) -> int:
    n = math.prod(x_shape[d] for d in dim)
    return int(round(_vectors(x_shape, dim) * fft_flops(n)))


def _c2r(x_shape, dim, normalization, last_dim_size, out_shape=None, **kw) -> int:
    n = math.prod(out_shape[d] for d in dim)
    return int(round(_vectors(out_shape, dim) * fft_flops(n)))


def _c2c(x_shape, dim, normalization, forward, out_shape=None, **kw) -> int:
    n = math.prod(x_shape[d] for d in dim)
    return int(round(_vectors(x_shape, dim) * fft_flops(n, complex_input=True)))


def _sdpa_cpu(q_shape, k_shape, v_shape, *args, out_shape=None, **kw) -> int:
    """The CPU kernel of scaled_dot_product_attention (not in torch's registry): dense Q Kᵀ and A V."""
    b, h, s_q, d_qk = q_shape
    s_k, d_v = k_shape[-2], v_shape[-1]
    return 2 * b * h * s_q * s_k * (d_qk + d_v)


EXTRA_FORMULAS = {aten._fft_r2c: _r2c, aten._fft_c2r: _c2r, aten._fft_c2c: _c2c}
if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
    EXTRA_FORMULAS[aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu


@torch.no_grad()
def count_flops(module, u: torch.Tensor) -> int:
    """FLOPs of one forward pass ``module(u)`` in this module's convention (see the module docstring)."""
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as counter:
        module(u)
    return counter.get_total_flops()
