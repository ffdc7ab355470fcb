"""BaseConv, the canonical gated convolution of Zoology eq. (1):

    y = (u W + b1) ⊙ (h ∗ u + b2),     u ∈ R^{N×d}

with W ∈ R^{d×d} (right-multiplied, shared over positions), b1, b2 ∈ R^{N×d} (position-dependent,
as in the theory) and a channel-wise causal filter h ∈ R^{L×d}: L = N for a long filter, L = k for a
short one. No residual inside the layer: the block adds it (the official code adds ``+u`` here).
The appendix also allows a cyclic convolution (``cyclic=True``), needed by its shift-up primitive.

A shorter input (n < N) uses the first n rows of b1, b2 and h.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..flops import fft_flops
from ..utils import is_int
from .base import Mixer
from .conv import causal_conv, causal_conv_direct, causal_conv_flops, cyclic_conv, cyclic_conv_direct

__all__ = ["BaseConv", "baseconv", "baseconv_direct"]


def baseconv(u, W, b1, b2, h, *, cyclic: bool = False) -> torch.Tensor:
    """Eq. (1), fast path. u: (B, n, d); W: (d, d); b1, b2: (>=n, d); h: (L, d) -> (B, n, d).

    With ``cyclic=True`` the convolution wraps over the input length n, so h needs at most n taps.
    """
    n = u.shape[1]
    conv = cyclic_conv if cyclic else causal_conv
    return (u @ W + b1[:n]) * (conv(u, h) + b2[:n])


def baseconv_direct(u, W, b1, b2, h, *, cyclic: bool = False) -> torch.Tensor:
    """Eq. (1), naive reference (explicit sum over taps); the fast path is tested against it."""
    n = u.shape[1]
    conv = cyclic_conv_direct if cyclic else causal_conv_direct
    return (u @ W + b1[:n]) * (conv(u, h) + b2[:n])


class BaseConv(Mixer):
    """Trainable BaseConv layer: ``BaseConv(d_model, seq_len, kernel_size=None)``.

    kernel_size=None (or -1) gives a long filter h of shape (seq_len, d); an int k a short one (k, d).
    Init: W like ``nn.Linear`` (uniform ±1/sqrt(d)), b1 = 0, b2 = 1 (the gate starts open, so the
    layer starts near a random linear map of u), h small with h[0] += 1 for long filters (the D-skip
    of the official long convolution), PyTorch's Conv1d init for short ones.
    """

    def __init__(self, d_model: int, seq_len: int, kernel_size: int | None = None, cyclic: bool = False):
        super().__init__(d_model, seq_len)
        d_model, seq_len = self.d_model, self.seq_len
        if kernel_size == -1:
            kernel_size = None
        if kernel_size is not None and not (is_int(kernel_size) and 1 <= kernel_size <= seq_len):
            raise ValueError(f"kernel_size={kernel_size!r}: must be None/-1 (long) or an integer in [1, seq_len]")
        d, N = d_model, seq_len
        kernel_size = None if kernel_size is None else int(kernel_size)
        L = N if kernel_size is None else kernel_size
        self.kernel_size, self.cyclic = kernel_size, bool(cyclic)
        bound = 1 / math.sqrt(d)
        self.W = nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))  # (d, d)
        self.b1 = nn.Parameter(torch.zeros(N, d))  # (N, d)
        self.b2 = nn.Parameter(torch.ones(N, d))  # (N, d)
        if kernel_size is None:
            h = 0.02 * torch.randn(L, d)
            h[0] += 1.0
        else:
            h = torch.empty(L, d).uniform_(-1 / math.sqrt(L), 1 / math.sqrt(L))
        self.h = nn.Parameter(h)  # (L, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return baseconv(u, self.W, self.b1, self.b2, self.h, cyclic=self.cyclic)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        return baseconv_direct(u, self.W, self.b1, self.b2, self.h, cyclic=self.cyclic)

    def state_size(self, seq_len: int | None = None) -> int:
        """A recurrent BaseConv keeps the last L inputs its filter reaches: min(L, n)·d numbers."""
        n = self._n(seq_len)
        return min(self.h.shape[0], n) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2d² for u W, plus the FFT convolution when the filter reaching the input has more than 8 taps:
        rfft of u and of h and one irfft, each of d vectors of length m (the power of two >= n + L' - 1,
        m = n for a cyclic filter), per sequence, divided by n. Short filters (<= 8 taps) are shifted adds,
        elementwise and not counted (``mqar_theory.flops`` convention)."""
        n, d = self._n(seq_len), self.d_model
        conv = 3 * d * fft_flops(n) if self.cyclic else causal_conv_flops(n, self.h.shape[0], d)
        return 2.0 * d * d + conv / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, seq_len={self.seq_len}, kernel_size={self.kernel_size}"
