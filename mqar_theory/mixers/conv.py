"""Channel-wise convolutions along the sequence: a fast FFT path and a naive reference.

Conventions (arXiv 2312.04927, §4.1 eq. (1), and the cyclic variant its appendix allows for simplified Hyena):
for u of shape (B, N, d) and a filter h of shape (L, d),

* causal:  (h * u)[i, q] = sum_{k <= i, k < L} h[k, q] u[i - k, q]
* cyclic:  (h ⊛ u)[i, q] = sum_{k < N}        h[k, q] u[(i - k) mod N, q]   (needs L <= N)

Only the first min(L, N) taps can reach a position of a length-N input causally, so an input
shorter than the filter uses a cropped filter and never wraps around: the future-leak of the
official long convolution (``docs/official-code.md``, "BaseConv") cannot happen here.
"""

from __future__ import annotations

import torch

from ..flops import fft_flops

__all__ = ["causal_conv", "causal_conv_direct", "cyclic_conv", "cyclic_conv_direct", "causal_conv_flops"]

#: filters of at most this many taps (after cropping to the input) are shifted adds in ``causal_conv``, not FFTs
SHORT_FILTER_TAPS = 8


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def causal_conv(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """FFT causal convolution. u: (B, N, d), h: (L, d) -> (B, N, d)."""
    N = u.shape[1]
    h = h[:N]  # (L', d) taps that can reach the sequence
    if h.shape[0] <= SHORT_FILTER_TAPS:  # short filters: a few shifted adds beat an FFT
        return causal_conv_direct(u, h)
    n = _next_pow2(N + h.shape[0] - 1)  # linear (not circular) convolution: no wrap-around
    uf = torch.fft.rfft(u, n=n, dim=1)  # (B, n/2+1, d)
    hf = torch.fft.rfft(h, n=n, dim=0)  # (n/2+1, d)
    return torch.fft.irfft(uf * hf, n=n, dim=1)[:, :N]


def causal_conv_flops(n: int, taps: int, d: int) -> float:
    """FLOPs of ``causal_conv`` of d channels of length n with a ``taps``-tap filter (``mqar_theory.flops``
    convention), per sequence: 0 when min(taps, n) <= ``SHORT_FILTER_TAPS`` (shifted adds, elementwise), else
    rfft of the input and of the filter and one irfft, d vectors each of length the power of two >= n + L' - 1."""
    taps = min(taps, n)
    return 0.0 if taps <= SHORT_FILTER_TAPS else 3 * d * fft_flops(_next_pow2(n + taps - 1))


def causal_conv_direct(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Reference: the sum of shifted copies, straight from the definition."""
    N = u.shape[1]
    y = torch.zeros_like(u)
    for k in range(min(h.shape[0], N)):
        y[:, k:] += h[k] * u[:, : N - k]
    return y


def cyclic_conv(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """FFT cyclic convolution over the input length N (filter zero-padded to N). u: (B, N, d), h: (L<=N, d)."""
    N = u.shape[1]
    if h.shape[0] > N:
        raise ValueError(f"h has {h.shape[0]} taps: a cyclic convolution of length N={N} needs at most N")
    uf = torch.fft.rfft(u, n=N, dim=1)
    hf = torch.fft.rfft(h, n=N, dim=0)
    return torch.fft.irfft(uf * hf, n=N, dim=1)


def cyclic_conv_direct(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Reference cyclic convolution: sum_k h[k] * roll(u, k)."""
    N = u.shape[1]
    if h.shape[0] > N:
        raise ValueError(f"h has {h.shape[0]} taps: a cyclic convolution of length N={N} needs at most N")
    y = torch.zeros_like(u)
    for k in range(h.shape[0]):
        y += h[k] * torch.roll(u, shifts=k, dims=1)
    return y
