"""Hyena of order 2 (Poli et al., "Hyena Hierarchy", arXiv 2302.10866, §3, Algorithm 1–3), a gated
convolution of the family Zoology (arXiv 2312.04927, §4.1) reduces to BaseConv:

    x1, x2, v = split(short_conv(u W_in + b_in))          # (B, N, d) each; short_conv: k=3, depthwise
    h[t, c]   = FFN(z_t)[c] · exp(-|δ_c| t/(N-1))         # implicit long filter (N, d)
    y         = (x2 ⊙ (h ∗ (x1 ⊙ v) + D ⊙ (x1 ⊙ v))) W_out + b_out

* ``short_conv`` is a causal depthwise convolution with 3 taps and a bias over all 3d projected channels
  (Hyena §3.3: "short convolution on the projections").
* The implicit filter (Hyena §3.3, eq. 7): ``FFN`` = Linear(e, o) → Sin → Linear(o, o) → Sin →
  Linear(o, o) → Sin → Linear(o, d, no bias), one learnable frequency vector shared by the three Sin
  activations (sin(w ⊙ x), w initialised to 1), ``o = filter_order`` (64 in the paper's configs).
  z_t = [t/(N-1), cos(2π f_j t/N), -sin(2π f_j t/N)]_j with f_j = 1, ..., (e-1)/2 (``emb_dim = e``, odd).
  Decisions: the features are a fixed buffer, not trained (the official code trains them at a separate
  learning rate its trainer ignores), and the frequencies are the integers 1..(e-1)/2 (the official
  range starts at 1e-4, which makes its single band of e=3 a constant). ``positional="official"`` (what
  ``recipe="official"`` models use) reproduces the official ``PositionalEmbedding`` (HazyResearch/zoology,
  ``zoology/mixers/hyena.py``): frequencies linspace(1e-4, bands-1, bands) (``baseconv.
  implicit_filter_features``) and z a trainable parameter (3N numbers per layer, trained at the global
  learning rate and weight decay, as the official trainer ignores the module's ``_optim`` hints).
* The window exp(-|δ_c| t) uses δ_c linearly spaced in [ln(1e-2)/1.5, ln(1e-2)/0.3] over the channels
  (Hyena §3.3: decay to 1e-2 at 30%–150% of the sequence), a fixed buffer.
* The long convolution is causal and linear (FFT with zero padding, ``conv.causal_conv``); an input of
  length n < N uses the first n taps of the filter, computed at the same positions as for length N.
* Init: ``nn.Linear`` defaults (``LanguageModel`` re-initialises them N(0, init_std), as the official
  code does); short filter and bias uniform ±1/sqrt(3) (``nn.Conv1d``'s default); D ~ N(0, 1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..utils import is_int
from .base import Mixer
from .baseconv import implicit_filter_features
from .conv import causal_conv, causal_conv_direct, causal_conv_flops
from .recurrent import check_step, empty_history, fir_step

__all__ = ["Hyena"]


class _Sin(nn.Module):
    """sin(w ⊙ x) with a learnable frequency vector w (Hyena's filter activation)."""

    def __init__(self, freq: nn.Parameter):
        super().__init__()
        self.freq = freq

    def forward(self, x):
        return torch.sin(self.freq * x)


class Hyena(Mixer):
    """``Hyena(d_model, seq_len, filter_order=64, emb_dim=3, short_kernel=3)``: order-2 Hyena operator."""

    def __init__(self, d_model: int, seq_len: int, filter_order: int = 64, emb_dim: int = 3, short_kernel: int = 3,
                 positional: str = "fixed"):
        super().__init__(d_model, seq_len)
        if positional not in ("fixed", "official"):
            raise ValueError(f"positional={positional!r}: must be 'fixed' or 'official'")
        self.positional = positional
        if not (is_int(filter_order) and filter_order >= 1):
            raise ValueError(f"filter_order={filter_order!r}: must be an integer >= 1")
        if not (is_int(emb_dim) and emb_dim >= 3 and emb_dim % 2 == 1):
            raise ValueError(f"emb_dim={emb_dim!r}: must be an odd integer >= 3")
        if not (is_int(short_kernel) and 1 <= short_kernel <= 8):
            raise ValueError(f"short_kernel={short_kernel!r}: must be an integer in [1, 8]")
        d, N, o, e = self.d_model, self.seq_len, int(filter_order), int(emb_dim)
        self.filter_order, self.emb_dim, self.short_kernel = o, e, int(short_kernel)
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        bound = 1 / math.sqrt(short_kernel)
        self.short_filter = nn.Parameter(torch.empty(short_kernel, 3 * d).uniform_(-bound, bound))  # (k, 3d)
        self.short_bias = nn.Parameter(torch.empty(3 * d).uniform_(-bound, bound))  # (3d,)
        self.D = nn.Parameter(torch.randn(d))  # (d,)
        freq = nn.Parameter(torch.ones(o))  # (o,) shared by the Sin activations
        self.filter_mlp = nn.Sequential(
            nn.Linear(e, o), _Sin(freq), nn.Linear(o, o), _Sin(freq), nn.Linear(o, o), _Sin(freq),
            nn.Linear(o, d, bias=False),
        )  # fmt: skip
        i = torch.arange(N, dtype=torch.float64)
        t = i / max(N - 1, 1)  # (N,) in [0, 1]
        f = torch.arange(1, (e - 1) // 2 + 1, dtype=torch.float64)  # (bands,)
        w = 2 * math.pi * i[:, None] * f / N  # (N, bands)
        z = torch.cat([t[:, None], torch.cos(w), -torch.sin(w)], dim=1)  # (N, e)
        deltas = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, d, dtype=torch.float64)  # (d,)
        window = torch.exp(-t[:, None] * deltas.abs())  # (N, d)
        dtype = torch.get_default_dtype()
        if positional == "official":
            self.z = nn.Parameter(implicit_filter_features(N, e))  # (N, e), trained
        else:
            self.register_buffer("z", z.to(dtype), persistent=False)
        self.register_buffer("window", window.to(dtype), persistent=False)

    def long_filter(self, n: int) -> torch.Tensor:
        """The implicit filter's first n taps: h = FFN(z) ⊙ window, (n, d)."""
        return self.filter_mlp(self.z[:n]) * self.window[:n]

    def _gated(self, u, conv):
        d = self.d_model
        x = conv(self.in_proj(u), self.short_filter) + self.short_bias  # (B, n, 3d)
        x1, x2, v = x.split(d, dim=-1)  # (B, n, d) each
        xv = x1 * v  # (B, n, d)
        y = x2 * (conv(xv, self.long_filter(u.shape[1])) + self.D * xv)  # (B, n, d)
        return self.out_proj(y)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return self._gated(u, causal_conv)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Both convolutions as explicit sums over taps (no FFT)."""
        return self._gated(u, causal_conv_direct)

    def state_size(self, seq_len: int | None = None) -> int:
        """What ``step`` carries: the last min(k - 1, n) projections of the 3d short-conv channels and the last
        min(N - 1, n) gated inputs x1 ⊙ v of the long filter, 3d·min(k - 1, n) + d·min(N - 1, n) (an L-tap
        filter's next output reads its own token and the L - 1 before it). (Formerly declared
        3d·min(k, n) + d·min(N, n): one input more per filter.)"""
        n, d = self._n(seq_len), self.d_model
        return 3 * d * min(self.short_kernel - 1, n) + d * min(self.seq_len - 1, n)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d² (in_proj 6d², out_proj 2d²) + 2(e·o + 2o² + o·d) (the filter FFN at each position) + the FFT
        long convolution when n > 8 (rfft of x1⊙v and of h, one irfft, d vectors of length m = the power of
        two >= 2n-1 each, per sequence, over n); the 3-tap short conv is shifted adds (not counted)."""
        n, d, o, e = self._n(seq_len), self.d_model, self.filter_order, self.emb_dim
        return 8.0 * d * d + 2.0 * (e * o + 2 * o * o + o * d) + causal_conv_flops(n, self.seq_len, d) / n

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, seq_len={self.seq_len}, filter_order={self.filter_order}, "
                f"emb_dim={self.emb_dim}, positional={self.positional}")

    # --- recurrent form: the two filters' histories --------------------------------------------------
    def init_state(self, batch: int) -> dict:
        """No past inputs yet: short-conv history (B, 0, 3d), long-filter history (B, 0, d); t = 0."""
        d = self.d_model
        return {"short": empty_history(self, batch, 3 * d), "long": empty_history(self, batch, d), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Algorithm 1 at position t: x = short_conv(u W_in + b_in)_t, (x1, x2, v) = split(x),
        y_t = (x2 ⊙ (Σ_{s<=t} h[s] ⊙ (x1 ⊙ v)_{t-s} + D ⊙ x1 ⊙ v)) W_out + b_out, h = FFN(z) ⊙ window
        (its first t + 1 taps: the same rows as for any longer input)."""
        t = check_step(self, state, u_t)
        d = self.d_model
        x, short = fir_step(state["short"], self.in_proj(u_t), self.short_filter, self.short_kernel - 1)
        x1, x2, v = (x + self.short_bias).split(d, dim=-1)  # (B, d) each
        xv = x1 * v
        conv, long = fir_step(state["long"], xv, self.long_filter(t + 1), self.seq_len - 1)
        return self.out_proj(x2 * (conv + self.D * xv)), {"short": short, "long": long, "t": t + 1}
