"""Channel-wise convolutions along the sequence: a fast FFT path and a naive reference.

Conventions (arXiv 2312.04927, §4.1 eq. (1), and the cyclic variant its appendix allows for simplified Hyena):
for u of shape (B, N, d) and a filter h of shape (L, d),

* causal:  (h * u)[i, q] = sum_{k <= i, k < L} h[k, q] u[i - k, q]
* cyclic:  (h ⊛ u)[i, q] = sum_{k < N}        h[k, q] u[(i - k) mod N, q]   (needs L <= N)

Only the first min(L, N) taps can reach a position of a length-N input causally, so an input
shorter than the filter uses a cropped filter and never wraps around: the future-leak of the
official long convolution (``docs/official-code.md``, "BaseConv") cannot happen here.

Fast path (``causal_conv``): shifted multiply-adds up to ``SHORT_FILTER_TAPS`` taps, FFT beyond, both with a
hand-written backward (``_CausalConvFn``); ``causal_conv_direct`` is the reference it is tested against
(``tests/test_fast_paths.py``, float64, forward and gradients). Crossovers measured (forward + backward, batch 64,
d = 64, 1 thread, a shared 2-core machine, so +-30%): shifted adds against FFT at N = 64, L = 4 / 8 / 16 / 24 taps:
2.5 / 7.8 / 6.7 / 8.4 ms against 10.6 / 9.7 / 10.3 / 11.9 ms; at N = 128, L = 16 / 24: 16 / 20 ms against
21 / 21 ms. The shifted adds would still win up to ~16-24 taps; the switch stays at 8 taps, where
``causal_conv_flops`` (and the FLOPs of every record) counts it. A Toeplitz matmul (one N x N banded matrix
per channel, with the two layout copies (B, N, d) <-> (d, N, B) it needs) took 0.6-1.1x the FFT's time at
N = 16, 0.9-1.4x at N = 32, 1.2-1.5x at N = 64 and 1.7-2.8x at N >= 128 (d = 32 / 64 / 128), so it is not used.
"""

from __future__ import annotations

import torch

from ..flops import fft_flops

__all__ = ["causal_conv", "causal_conv_direct", "cyclic_conv", "cyclic_conv_direct", "causal_conv_flops"]

#: filters of at most this many taps (after cropping to the input) are shifted adds in ``causal_conv``, not FFTs
SHORT_FILTER_TAPS = 8


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


class _CausalConvFn(torch.autograd.Function):
    """Causal convolution with a hand-written backward (module docstring's definition, h cropped to L <= N taps).

    Forward, y[:, i] = Σ_{k<L} h[k] u[:, i-k]. Backward, from the same sums read the other way:
    ∂/∂u: g_u[:, j] = Σ_{k<L} h[k] g[:, j+k] (a correlation with h); ∂/∂h: g_h[k] = Σ_{b, i} g[b, i] u[b, i-k].
    Short filters (L <= ``SHORT_FILTER_TAPS``): y and g_u as L in-place multiply-adds on shifted slices (no zero
    fill, no padding), g_h as L products of shifted slices summed over (b, i). Longer ones use FFTs of length
    n = the power of two >= N + L - 1 (so the circular products never wrap onto a used index):
    y = irfft(û ĥ), g_u = irfft(ĝ conj(ĥ)), g_h = irfft(Σ_b ĝ conj(û)), each cropped, reusing û and ĥ from
    the forward: four length-n transforms of (B, ·, d) per step, as autograd's, without its zero-padded
    intermediates and copies."""

    @staticmethod
    def forward(ctx, u, h):  # u: (B, N, d), h: (L <= N, d)
        N, L = u.shape[1], h.shape[0]
        if L <= SHORT_FILTER_TAPS:
            ctx.save_for_backward(u, h)
            ctx.fft = None
            y = u * h[0]  # (B, N, d)
            for k in range(1, L):
                y[:, k:].addcmul_(u[:, : N - k], h[k])
            return y
        n = _next_pow2(N + L - 1)
        uf = torch.fft.rfft(u, n=n, dim=1)  # (B, n/2+1, d)
        hf = torch.fft.rfft(h, n=n, dim=0)  # (n/2+1, d)
        ctx.save_for_backward(uf, hf)
        ctx.fft, ctx.N, ctx.L = n, N, L
        return torch.fft.irfft(uf * hf, n=n, dim=1)[:, :N]

    @staticmethod
    def backward(ctx, g):  # g: (B, N, d)
        if ctx.fft is None:
            u, h = ctx.saved_tensors
            N, L = u.shape[1], h.shape[0]
            gu = gh = None
            if ctx.needs_input_grad[0]:
                gu = g * h[0]
                for k in range(1, L):
                    gu[:, : N - k].addcmul_(g[:, k:], h[k])
            if ctx.needs_input_grad[1]:
                gh = torch.stack([(g[:, k:] * u[:, : N - k]).sum((0, 1)) for k in range(L)])  # (L, d)
            return gu, gh
        uf, hf = ctx.saved_tensors
        n, N, L = ctx.fft, ctx.N, ctx.L
        gf = torch.fft.rfft(g, n=n, dim=1)  # (B, n/2+1, d)
        gu = torch.fft.irfft(gf * hf.conj(), n=n, dim=1)[:, :N] if ctx.needs_input_grad[0] else None
        gh = torch.fft.irfft((gf * uf.conj()).sum(0), n=n, dim=0)[:L] if ctx.needs_input_grad[1] else None
        return gu, gh


def causal_conv(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Causal convolution, fast path (``_CausalConvFn``). u: (B, N, d), h: (L, d) -> (B, N, d)."""
    if u.dim() != 3 or h.dim() != 2 or h.shape[1] != u.shape[2]:
        raise ValueError(f"u, h: need u (B, N, d) and h (L, d) with the same d, got {tuple(u.shape)}, "
                         f"{tuple(h.shape)}")
    return _CausalConvFn.apply(u, h[: u.shape[1]])  # only the first N taps can reach the sequence


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

