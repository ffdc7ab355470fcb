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
N = 16, 0.9-1.4x at N = 32, 1.2-1.5x at N = 64 and 1.7-2.8x at N >= 128 (d = 32 / 64 / 128), so it is not used
here. ``causal_conv_rows`` is the layout without those copies: rows (G, R, N) already contiguous along the sequence
(H3 computes its projections channel-major), where the Toeplitz product wins up to N = 64.
"""

from __future__ import annotations

import torch

from ..flops import fft_flops

__all__ = ["causal_conv", "causal_conv_direct", "causal_conv_rows", "causal_conv_rows_direct", "causal_conv_rows_flops",
           "cyclic_conv", "cyclic_conv_direct", "causal_conv_flops"]

#: filters of at most this many taps (after cropping to the input) are shifted adds in ``causal_conv``, not FFTs
SHORT_FILTER_TAPS = 8

#: ``causal_conv_rows`` multiplies by the dense Toeplitz matrix up to this input length, FFTs beyond (crossover of
#: ``benchmarks/conv_rows.py``; a rule of the length alone, so that FLOPs per token do not depend on the batch)
ROWS_TOEPLITZ_MAX_N = 64


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


def toeplitz(h: torch.Tensor, N: int) -> torch.Tensor:
    """The causal convolution by h (L, G) of length-N rows as G matrices: S (G, N, N), S[g, j, i] = h[i - j, g] for
    0 <= i - j < L (zero elsewhere), so that ``x @ S`` convolves every row of x (G, R, N). Built as a view of the
    padded filter (an ``unfold``) and one flip: autograd's backward sums the gradient of S along its diagonals."""
    L, G = min(h.shape[0], N), h.shape[1]
    padded = torch.cat([h.new_zeros(N - 1, G), h[:L], h.new_zeros(N - L, G)])  # (2N-1, G): padded[N-1+s] = h[s]
    return padded.T.unfold(1, N, 1).flip(1)  # (G, N, N): [g, j, i] = padded[N-1-j+i]


class _RowConvFFTFn(torch.autograd.Function):
    """``_CausalConvFn``'s FFT path for rows: x (G, R, N), h (L <= N, G) -> (G, R, N), transforms along the last,
    contiguous dimension (about twice as fast on a CPU as along the middle one of (B, N, d)).
    Backward: g_x = irfft(ĝ conj(ĥ)), g_h = irfft(Σ_r ĝ conj(x̂)), reusing x̂ and ĥ from the forward."""

    @staticmethod
    def forward(ctx, x, h):
        N, L = x.shape[-1], h.shape[0]
        n = _next_pow2(N + L - 1)
        xf = torch.fft.rfft(x, n=n)  # (G, R, n/2+1)
        hf = torch.fft.rfft(h.T, n=n)[:, None]  # (G, 1, n/2+1)
        ctx.save_for_backward(xf, hf)
        ctx.n, ctx.N, ctx.L = n, N, L
        return torch.fft.irfft(xf * hf, n=n)[..., :N]

    @staticmethod
    def backward(ctx, g):
        xf, hf = ctx.saved_tensors
        n, N, L = ctx.n, ctx.N, ctx.L
        gf = torch.fft.rfft(g, n=n)
        gx = torch.fft.irfft(gf * hf.conj(), n=n)[..., :N] if ctx.needs_input_grad[0] else None
        gh = torch.fft.irfft((gf * xf.conj()).sum(1), n=n)[:, :L].T if ctx.needs_input_grad[1] else None
        return gx, gh


def causal_conv_rows(x: torch.Tensor, h: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Causal convolution of every row of x (G, R, N) by its group's filter h (L, G): the layout in which G groups
    of R rows share a filter (H3's heads, whose p² outer-product channels share one SSM kernel). Same sums as
    ``causal_conv`` (module docstring), along the last dimension: ``causal_conv_rows(x, h)[g, r]`` equals
    ``causal_conv(x[g, r][None, :, None], h[:, g, None])``.

    ``method="toeplitz"``: one batched product x @ S with the dense (N, N) Toeplitz matrix of each group
    (``toeplitz``): 2N² FLOPs per row against the FFT's O(N log N), but one large matmul instead of three
    transforms and complex products, which a CPU runs several times faster per FLOP. ``"fft"``: ``_RowConvFFTFn``.
    ``"auto"`` takes the Toeplitz product up to N = ``ROWS_TOEPLITZ_MAX_N`` = 64. Measured (forward + backward, one
    thread, ``benchmarks/conv_rows.py``, H3's shapes at d = 32 / 64 / 128, batch 64, time Toeplitz / FFT): 64 rows
    per group (the shift SSM): 0.8 at N = 32, 0.7-1.2 at 64, 1.3-1.4 at 96, 2.5-2.6 at 128; 256 rows (the diagonal
    SSM): 0.4-0.5 at 32, 0.6 at 64, 0.7 at 96, 1.2-1.3 at 128, 0.9-1.8 at 256. A larger group would move the
    crossover up (its product runs closer to the matmul peak); the rule is the length alone, so that
    ``causal_conv_rows_flops``, and a model's FLOPs per token, do not depend on the batch.
    ``causal_conv_rows_direct`` is the reference (``tests/test_fast_paths.py``, both methods, both sides)."""
    if x.dim() != 3 or h.dim() != 2 or h.shape[1] != x.shape[0]:
        raise ValueError(f"x, h: need x (G, R, N) and h (L, G) with the same G, got {tuple(x.shape)}, "
                         f"{tuple(h.shape)}")
    if method not in ("auto", "toeplitz", "fft"):
        raise ValueError(f"method={method!r}: must be 'auto', 'toeplitz' or 'fft'")
    N = x.shape[-1]
    h = h[:N]  # only the first N taps can reach the sequence
    if method == "toeplitz" or (method == "auto" and N <= ROWS_TOEPLITZ_MAX_N):
        return torch.bmm(x, toeplitz(h, N))
    return _RowConvFFTFn.apply(x, h)


def causal_conv_rows_flops(n: int, taps: int, groups: int, rows: int) -> float:
    """FLOPs of ``causal_conv_rows`` (``method="auto"``) of one sequence's ``groups`` x ``rows`` rows of length n by
    a ``taps``-tap filter per group (``mqar_theory.flops`` convention): the dense product 2·rows·n² per group up to
    ``ROWS_TOEPLITZ_MAX_N``, else the transforms of the rows (forward and inverse) and of each group's filter."""
    if n <= ROWS_TOEPLITZ_MAX_N:
        return 2.0 * groups * rows * n * n
    return (2 * groups * rows + groups) * fft_flops(_next_pow2(n + min(taps, n) - 1))


def causal_conv_rows_direct(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Reference for ``causal_conv_rows``: the sum of shifted copies along the last dimension."""
    N = x.shape[-1]
    y = torch.zeros_like(x)
    for k in range(min(h.shape[0], N)):
        y[..., k:] += h[k][:, None, None] * x[..., : N - k]
    return y


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

