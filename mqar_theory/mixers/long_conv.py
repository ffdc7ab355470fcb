"""Long Conv, the ungated baseline of Zoology (arXiv 2312.04927, §4.3, Figure 2; the long convolutions of
Fu et al., "Simple Hardware-Efficient Long Convolutions", arXiv 2302.06646):

    y = (h ∗ (u W_in + b_in)) W_out + b_out,      h ∈ R^{N×d} an explicit learned causal filter

Decision: with input and output projections. Without them the layer would be a per-channel filter and a
model of these layers (Fig. 2 models have no MLP) could never mix channels; with them the layer is the
most general linear time-invariant map of its width, and removing the gate ⊙ is its only difference
from BaseConv (eq. 1) with a long filter. No D-skip: h[0] plays that role.
Init: h ~ N(0, 0.02²) with h[0] += 1 (the layer starts near out_proj ∘ in_proj, as ``BaseConv``'s long
filter); projections ``nn.Linear``. An input of length n < N uses the first n taps (never wraps).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Mixer
from .conv import causal_conv, causal_conv_direct, causal_conv_flops
from .recurrent import check_step, empty_history, fir_step

__all__ = ["LongConv"]


class LongConv(Mixer):
    """``LongConv(d_model, seq_len)``: projection, explicit long causal convolution, projection."""

    def __init__(self, d_model: int, seq_len: int):
        super().__init__(d_model, seq_len)
        d, N = self.d_model, self.seq_len
        self.in_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        h = 0.02 * torch.randn(N, d)
        h[0] += 1.0
        self.h = nn.Parameter(h)  # (N, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return self.out_proj(causal_conv(self.in_proj(u), self.h))

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The convolution as an explicit sum over taps."""
        return self.out_proj(causal_conv_direct(self.in_proj(u), self.h))

    def state_size(self, seq_len: int | None = None) -> int:
        """The last min(N - 1, n) projected inputs u W_in + b_in, d·min(N - 1, n): the next output reads its own
        token and the N - 1 before it (``step``). (Formerly declared d·min(N, n), one input more.)"""
        return self.d_model * min(self.seq_len - 1, self._n(seq_len))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """4d² (two projections) + the FFT convolution when n > 8 (rfft of the input and of h, one irfft,
        d vectors of length m = the power of two >= 2n-1, per sequence, over n)."""
        n, d = self._n(seq_len), self.d_model
        return 4.0 * d * d + causal_conv_flops(n, self.seq_len, d) / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, seq_len={self.seq_len}"

    # --- recurrent form: the last N - 1 projected inputs ---------------------------------------------
    def init_state(self, batch: int) -> dict:
        """No past projected inputs yet (B, 0, d), position t = 0."""
        return {"hist": empty_history(self, batch, self.d_model), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """y_t = (Σ_{k<=t} h[k] ⊙ x_{t-k}) W_out + b_out with x = u W_in + b_in."""
        t = check_step(self, state, u_t)
        conv, hist = fir_step(state["hist"], self.in_proj(u_t), self.h, self.seq_len - 1)
        return self.out_proj(conv), {"hist": hist, "t": t + 1}
