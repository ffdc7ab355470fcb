"""BaseConv with a *programmatic* input-dependent long filter (Zoology, arXiv 2312.04927, §4.3,
Figure 2 bottom row): the trained analogue of the Thm 4.5 construction.

Eq. (1) with the long filter h replaced, row by row, by an input-dependent one:

    y[i] = (u W + b1)[i] ⊙ ( Σ_{s=0}^{i} h_u[i, s] ⊙ u[i - s] + b2[i] )
    h_u[i, s] = h[s] + g ⊙ spike_i[s],   spike_i[s] = 1[x_{i-s-1} = x_i] / max(1, c_i)      (s <= i-1)

with W, b1, b2, h as in ``BaseConv`` (h the learned, input-independent long filter), g ∈ R^d a learned
per-channel weight of the spikes (init 1), x the tokens (see ``matching``: the token ids when the model
passes them, else bitwise-equal rows of u) and c_i = #{j < i : x_j = x_i}.

Decisions (the paper gives the idea, not the formula):

* **Where the spikes sit.** "The filter has spikes at the distances where the current token occurred
  before": for an earlier occurrence j < i of x_i we put the spike at distance i - j - 1, so the
  convolution reads u[j + 1], the token *after* the match (the value in MQAR). A spike at i - j would read
  the key itself, which carries no value in a causal stack; Thm 4.5 likewise shifts the value stream by
  s - 1. Every index read is <= i, so the layer is causal.
* **Several earlier occurrences** (filler repeats): the spikes are averaged (divided by c_i), so the
  conv branch stays O(|u|) however often a token repeats; a token seen once before gets weight 1.
* **Cost.** The spike part is Σ_{j<i, x_j=x_i} u[j+1] / c_i: a grouped prefix sum computed after a
  stable sort by token (O(n log n + n d) per sequence, no (n × n) matrix). Sorting, sums and the
  gather are elementwise in the FLOP convention of ``mqar_theory.flops``, so ``flops_per_token`` equals
  BaseConv's.
"""

from __future__ import annotations

import torch
from torch import nn

from .baseconv import BaseConv
from .conv import causal_conv
from .matching import earlier_count, grouped_prefix_sum, match_ids

__all__ = ["BaseConvProgrammatic"]


def _successors(u: torch.Tensor) -> torch.Tensor:
    """v[j] = u[j + 1] (the token after j), 0 at the last position. (B, n, d) -> (B, n, d)."""
    v = torch.zeros_like(u)
    v[:, :-1] = u[:, 1:]
    return v


class BaseConvProgrammatic(BaseConv):
    """``BaseConvProgrammatic(d_model, seq_len)``: BaseConv (long filter) + programmatic spikes.

    ``forward(u, tokens=None)``: ``tokens`` (B, n) are the ids the spikes match on (``LanguageModel``
    passes them because ``uses_tokens`` is set); without them rows of u are matched.
    """

    uses_tokens = True

    def __init__(self, d_model: int, seq_len: int):
        super().__init__(d_model, seq_len, kernel_size=None)
        self.g = nn.Parameter(torch.ones(self.d_model))  # (d,) weight of the spikes

    def spike_term(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Σ_s g ⊙ spike_i[s] u[i - s] = g ⊙ mean_{j<i, x_j=x_i} u[j+1] (0 without a match). (B, n, d)."""
        ids = match_ids(u, tokens)  # (B, n)
        c = earlier_count(ids).clamp(min=1).unsqueeze(-1).to(u.dtype)  # (B, n, 1)
        return self.g * grouped_prefix_sum(ids, _successors(u)) / c

    def forward(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        n = u.shape[1]
        conv = causal_conv(u, self.h) + self.spike_term(u, tokens)  # (B, n, d)
        return (u @ self.W + self.b1[:n]) * (conv + self.b2[:n])

    def input_filter(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """The per-row filter h_u (B, n, n, d): h_u[b, i, s] for lags s = 0..n-1 (0 where s > i), by loops."""
        B, n, d = u.shape
        ids = match_ids(u, tokens)
        hu = torch.zeros(B, n, n, d, dtype=u.dtype, device=u.device)
        for b in range(B):
            for i in range(n):
                hu[b, i, : i + 1] = self.h[: i + 1]
                prev = [j for j in range(i) if ids[b, j] == ids[b, i]]
                for j in prev:
                    hu[b, i, i - j - 1] += self.g / len(prev)
        return hu

    def forward_reference(self, u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Naive: build every row's filter h_u[i] and sum h_u[i, s] ⊙ u[i - s] explicitly."""
        B, n, d = u.shape
        hu = self.input_filter(u, tokens)
        conv = torch.zeros_like(u)
        for i in range(n):
            for s in range(i + 1):
                conv[:, i] += hu[:, i, s] * u[:, i - s]
        return (u @ self.W + self.b1[:n]) * (conv + self.b2[:n])

    # --- recurrent form: BaseConv's history, which already holds every past input ----------------------
    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Row t from BaseConv's state alone: the long filter's history holds the last min(N - 1, t) inputs, all
        of u[0..t-1] since t < N, so the matches j < t (rows of u bitwise equal to u_t, as ``forward`` without
        token ids) and their successors u[j + 1] are read from it; no state beyond BaseConv's (its
        ``state_size``). With token ids a decoder would also keep the t past ids.

            y_t = (u_t W + b1[t]) ⊙ ((h ∗ u)_t + g ⊙ mean_{j<t, u_j = u_t} u_{j+1} + b2[t])"""
        t, conv, hist = self._conv_step(state, u_t)  # validates state and u_t
        win = torch.cat([state["hist"], u_t[:, None]], dim=1)  # (B, t+1, d): u_0, ..., u_t
        match = (win[:, :t] == u_t[:, None]).all(-1).to(u_t.dtype)  # (B, t): u_j = u_t, j < t
        total = (match[:, :, None] * win[:, 1 : t + 1]).sum(1)  # (B, d): Σ u_{j+1}
        spike = self.g * total / match.sum(1, keepdim=True).clamp(min=1)
        return (u_t @ self.W + self.b1[t]) * (conv + spike + self.b2[t]), {"hist": hist, "t": t + 1}
