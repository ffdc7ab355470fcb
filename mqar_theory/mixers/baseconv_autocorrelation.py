"""BaseConv with an *autocorrelation* input-dependent long filter (Zoology, arXiv 2312.04927, §4.3,
Figure 2 bottom row): the filter is estimated from the input's own autocorrelation, a fuzzy version of
the programmatic filter (lags where the sequence resembles itself instead of exact token repeats).

    y[i] = (u W + b1)[i] ⊙ ( (h ∗ u)[i] + g ⊙ Σ_{s=1}^{p-1} ρ_p[s] u[i - s] + b2[i] ),   p = p(i)
    R_p[s] = Σ_{t=s}^{p-1} ⟨u_t, u_{t-s}⟩        (autocorrelation of the prefix u[0:p], summed over channels)
    ρ_p[s] = R_p[s] / R_p[0]  for 1 <= s < p     (normalised: |ρ| <= 1 by Cauchy-Schwarz; lag 0 is h's)

W, b1, b2, h as in ``BaseConv`` (long filter); g ∈ R^d a learned per-channel weight (init 1).

Causality (decision). The autocorrelation of the whole sequence, as the paper's filter is described,
looks at the future. Here the filter used at row i is estimated from a prefix that ends at or before
i: p(i) = 2^⌊log2 i⌋ (the filter is re-estimated at every power of two; rows 0 and 1 get no extra
filter). So y[i] depends on u[0..i] only, and the whole layer costs O(log n) FFTs per sequence
(O(n log² n · d)), never an (n × n) matrix. Each estimate is computed by FFT: R_p = irfft(Σ_q
|rfft(u[0:p, q], 2p)|²)[0:p] (zero-padded to 2p, so the correlation is linear, not cyclic), and the
rows [p, 2p) are convolved with ρ_p by FFT. The price of causality: a query at i sees the repeat
structure of u[0:p(i)], not its own match; we report what this filter learns, we do not tune it.

Variants (options; each keeps the same causal prefix estimate, so each is causal, and each has a loop
reference in ``forward_reference``), the ones a careful reader would try to make the fuzzy filter sharper:

* ``top_k=k``: **top-k repeat distances**. Only the k lags s in [1, p) with the largest ρ_p[s] keep their
  weight, the others are zeroed (per sequence and level; ties go to the smaller lag: a stable sort). The
  filter becomes k spikes at the distances where the prefix resembles itself most, the autocorrelation
  analogue of the programmatic filter's spikes.
* ``sharpness=β0``: **learned sharpness**. The weights are a softmax over the lags s in [1, p) (the kept lags
  under ``top_k``) of β·ρ_p[s], with β a learned scalar initialised to β0: β → ∞ gives one spike at the most
  autocorrelated lag, β = 0 the mean over lags. The softmax makes the weights sum to 1 (plain ρ does not).

Both change only which weights multiply u[i - s]: sorting and the softmax are elementwise in the FLOP
convention of ``mqar_theory.flops``, so ``flops_per_token`` is the same for every variant.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..flops import fft_flops
from ..utils import is_int, is_number
from .baseconv import BaseConv
from .conv import _next_pow2, causal_conv

__all__ = ["BaseConvAutocorrelation", "autocorrelation_levels"]


def autocorrelation_levels(n: int) -> list[tuple[int, int]]:
    """The prefixes and row ranges of the causal filter: [(p, e)]: rows [p, e) use R_p; p = 2, 4, ... < n."""
    out, p = [], 2
    while p < n:
        out.append((p, min(2 * p, n)))
        p *= 2
    return out


class BaseConvAutocorrelation(BaseConv):
    """``BaseConvAutocorrelation(d_model, seq_len, top_k=None, sharpness=None)``: BaseConv (long filter) + a
    causal autocorrelation filter; ``top_k`` / ``sharpness`` select the variants of the module docstring."""

    def __init__(self, d_model: int, seq_len: int, top_k: int | None = None, sharpness: float | None = None):
        super().__init__(d_model, seq_len, kernel_size=None)
        if top_k is not None and not (is_int(top_k) and top_k >= 1):
            raise ValueError(f"top_k={top_k!r}: must be None or an integer >= 1 (lags kept per level)")
        if sharpness is not None and not (is_number(sharpness) and math.isfinite(sharpness)):
            raise ValueError(f"sharpness={sharpness!r}: must be None or a finite number (initial β of the softmax)")
        self.top_k = None if top_k is None else int(top_k)
        self.sharpness = None if sharpness is None else float(sharpness)
        self.g = nn.Parameter(torch.ones(self.d_model))  # (d,) weight of the autocorrelation filter
        if self.sharpness is not None:
            self.beta = nn.Parameter(torch.tensor(self.sharpness))  # () learned inverse temperature β

    @staticmethod
    def rho(u: torch.Tensor, p: int) -> torch.Tensor:
        """ρ_p (B, p) by FFT: normalised channel-summed autocorrelation of u[:, :p]; ρ_p[0] = 0."""
        a = torch.fft.rfft(u[:, :p], n=2 * p, dim=1)  # (B, p+1, d)
        power = (a.real**2 + a.imag**2).sum(-1)  # (B, p+1)
        R = torch.fft.irfft(power, n=2 * p, dim=1)[:, :p]  # (B, p): R[s] for lags 0..p-1
        r = R / R[:, :1].clamp(min=torch.finfo(u.dtype).tiny)
        return torch.cat([torch.zeros_like(r[:, :1]), r[:, 1:]], dim=1)

    def weights(self, r: torch.Tensor) -> torch.Tensor:
        """The filter taps w (B, p) from ρ_p (B, p): ρ itself, or its top-k lags, or the softmax of β ρ over the
        (kept) lags; w[:, 0] = 0 always (lag 0 is the long filter h's)."""
        B, p = r.shape
        lags = r[:, 1:]  # (B, p-1): lags 1..p-1
        keep = torch.ones_like(lags, dtype=torch.bool)
        if self.top_k is not None and self.top_k < p - 1:
            order = torch.sort(lags, dim=1, descending=True, stable=True).indices[:, : self.top_k]  # (B, k)
            keep = torch.zeros_like(keep).scatter_(1, order, True)
        if self.sharpness is not None:
            w = torch.softmax((self.beta * lags).masked_fill(~keep, float("-inf")), dim=1)
        else:
            w = lags * keep
        return torch.cat([torch.zeros_like(r[:, :1]), w], dim=1)

    def autocorrelation_term(self, u: torch.Tensor) -> torch.Tensor:
        """g ⊙ Σ_s w_{p(i)}[s] u[i - s] for every row i (B, n, d), by FFT (w = ``weights`` of ρ_{p(i)})."""
        B, n, d = u.shape
        parts = [torch.zeros_like(u[:, : min(2, n)])]  # rows 0, 1: no extra filter
        for p, e in autocorrelation_levels(n):
            r = self.weights(self.rho(u, p))  # (B, p)
            m = _next_pow2(e + p - 1)
            y = torch.fft.irfft(torch.fft.rfft(u[:, :e], n=m, dim=1) * torch.fft.rfft(r, n=m, dim=1)[..., None],
                                n=m, dim=1)  # (B, m, d)
            parts.append(y[:, p:e])
        return self.g * torch.cat(parts, dim=1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        n = u.shape[1]
        conv = causal_conv(u, self.h) + self.autocorrelation_term(u)
        return (u @ self.W + self.b1[:n]) * (conv + self.b2[:n])

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Naive: R_p by explicit sums of inner products, every row's filter applied tap by tap."""
        B, n, d = u.shape
        conv = torch.zeros_like(u)
        for i in range(n):
            for s in range(min(i + 1, self.h.shape[0])):
                conv[:, i] += self.h[s] * u[:, i - s]
            if i < 2:
                continue
            p = 1 << (i.bit_length() - 1)  # 2^floor(log2 i)
            R = torch.stack([sum((u[:, t] * u[:, t - s]).sum(-1) for t in range(s, p)) for s in range(p)], 1)
            for b in range(B):
                rho = {s: R[b, s] / R[b, 0] for s in range(1, p)}
                lags = list(rho)
                if self.top_k is not None:  # the k largest, ties to the smaller lag
                    lags = sorted(lags, key=lambda s, rho=rho: -float(rho[s]))[: self.top_k]
                if self.sharpness is not None:
                    e = {s: torch.exp(self.beta * rho[s]) for s in lags}
                    total = sum(e.values())
                    w = {s: e[s] / total for s in lags}
                else:
                    w = {s: rho[s] for s in lags}
                for s in lags:
                    conv[b, i] += self.g * w[s] * u[b, i - s]
        return (u @ self.W + self.b1[:n]) * (conv + self.b2[:n])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, top_k={self.top_k}, sharpness={self.sharpness}"

    def state_size(self, seq_len: int | None = None) -> int:
        """BaseConv's, min(N - 1, n)·d: the long filter's history holds every past input (n < N), which is also
        all the prefix estimate ρ_p needs (``step``). (Formerly declared n·d: at n = N one input more.)"""
        return super().state_size(seq_len)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """BaseConv's (2d² + its FFT convolution), plus per level (p, e): the autocorrelation (rfft of d
        vectors and one irfft, length 2p) and the convolution of rows [0, e) with ρ_p (rfft of d vectors and
        of ρ, irfft of d vectors, length m = pow2 >= e + p - 1), per sequence, divided by n."""
        n, d = self._n(seq_len), self.d_model
        extra = 0.0
        for p, e in autocorrelation_levels(n):
            m = _next_pow2(e + p - 1)
            extra += (d + 1) * fft_flops(2 * p) + (2 * d + 1) * fft_flops(m)
        return super().flops_per_token(n) + extra / n

    # --- recurrent form: BaseConv's history, which already holds every past input ----------------------
    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Row t from BaseConv's state alone: the long filter's history holds all of u[0..t-1] (t < N), so the
        prefix estimate ρ_p, p = 2^⌊log2 t⌋ (the filter ``forward`` uses at row t), is computed from it
        (``rho`` and ``weights``, the same functions) and applied to the last p inputs:

            y_t = (u_t W + b1[t]) ⊙ ((h ∗ u)_t + g ⊙ Σ_{s=1}^{p-1} w_p[s] u_{t-s} + b2[t])   (no extra term for t < 2)

        Re-estimating ρ_p at every step costs O(p log p · d); caching it per level would add p numbers of state."""
        t, conv, hist = self._conv_step(state, u_t)  # validates state and u_t
        win = torch.cat([state["hist"], u_t[:, None]], dim=1)  # (B, t+1, d): u_0, ..., u_t
        if t >= 2:
            p = 1 << (t.bit_length() - 1)
            w = self.weights(self.rho(win[:, :p], p))  # (B, p), w[:, 0] = 0
            conv = conv + self.g * (w[:, :, None] * win[:, t - p + 1 : t + 1].flip(1)).sum(1)  # w[s] pairs u_{t-s}
        return (u_t @ self.W + self.b1[t]) * (conv + self.b2[t]), {"hist": hist, "t": t + 1}
