"""``TaylorLinearAttention``: a minimal Based-style gated linear-attention layer (Arora et al., "Simple
linear attention language models balance the recall-throughput tradeoff", arXiv 2402.18668, §4: linear
attention with the 2nd-order Taylor feature map), the reference layer of the equivalence with BaseConv
(its Prop F.8). Not registered in ``MIXERS``: it exists to be simulated.

    q = u W_q + b_q, k = u W_k + b_k   (B, N, f);   v = u W_v + b_v   (B, N, d)
    φ(x) = [1, x, vec(x xᵀ)/√2]                      (F = 1 + f + f² features; φ(q)·φ(k) = 1 + q·k + (q·k)²/2)
    y_i = (Σ_{j <= i} (φ(q_i)·φ(k_j)) v_j) W_o + b_o

Decision: no normalisation by φ(q_i)·Σ_j φ(k_j) (a division is not an arithmetic-circuit gate, and the
simulated quantity is the causal numerator; Based's ablations use the same unnormalised form).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..mixers.base import Mixer
from ..utils import is_int

__all__ = ["TaylorLinearAttention", "taylor_features"]


def taylor_features(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = [1, x, vec(x xᵀ)/√2]: (..., f) -> (..., 1 + f + f²)."""
    outer = (x[..., :, None] * x[..., None, :]).flatten(-2) / math.sqrt(2)  # (..., f²)
    return torch.cat([torch.ones_like(x[..., :1]), x, outer], dim=-1)


class TaylorLinearAttention(Mixer):
    """``TaylorLinearAttention(d_model, seq_len, feature_dim=2)``: causal, unnormalised, one head."""

    def __init__(self, d_model: int, seq_len: int, feature_dim: int = 2):
        super().__init__(d_model, seq_len)
        if not (is_int(feature_dim) and feature_dim >= 1):
            raise ValueError(f"feature_dim={feature_dim!r}: must be an integer >= 1")
        d, self.feature_dim = self.d_model, int(feature_dim)
        self.q_proj, self.k_proj = nn.Linear(d, self.feature_dim), nn.Linear(d, self.feature_dim)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        pq, pk, v = taylor_features(self.q_proj(u)), taylor_features(self.k_proj(u)), self.v_proj(u)
        state = torch.cumsum(pk[..., :, None] * v[..., None, :], dim=1)  # (B, n, F, d): Σ_{j<=i} φ(k_j) v_jᵀ
        return self.out_proj((pq[..., :, None] * state).sum(-2))

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The quadratic form: y_i = Σ_{j <= i} (φ(q_i)·φ(k_j)) v_j."""
        pq, pk, v = taylor_features(self.q_proj(u)), taylor_features(self.k_proj(u)), self.v_proj(u)
        scores = torch.tril(pq @ pk.transpose(1, 2))  # (B, n, n)
        return self.out_proj(scores @ v)

    def state_size(self, seq_len: int | None = None) -> int:
        """The running sum Σ φ(k_j) v_jᵀ: (1 + f + f²)·d numbers."""
        f = self.feature_dim
        return (1 + f + f * f) * self.d_model
