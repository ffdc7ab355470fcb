"""Attention with a linear bias and no softmax (Zoology App. H, Prop H.27):

    Q, K, V = u W_Q, u W_K, u W_V;     O = ((Q Kᵀ + B) ⊙ M) V

with B ∈ R^{N×N} a fixed positional bias and M a 0/1 mask: ``"none"`` (the printed algorithm),
``"causal"`` (j <= i) or ``"strict"`` (j < i). The strict prior mask is our correction: as printed in
arXiv 2312.04927 (App. H, proof of Prop H.27) the second layer's QKᵀV lets a query read the current and later
keys; with the mask j < i the construction answers MQAR exactly for unique keys (tests/test_attention_constructions.py).
A shorter input (n < N) uses B[:n, :n].
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Mixer

__all__ = ["LinearBiasAttention", "linear_bias_attention", "linear_bias_attention_direct", "MASKS"]

MASKS = ("none", "causal", "strict")


def _mask(n: int, mask: str, like: torch.Tensor) -> torch.Tensor:
    if mask not in MASKS:
        raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
    ones = torch.ones(n, n, dtype=like.dtype, device=like.device)
    return {"none": ones, "causal": torch.tril(ones), "strict": torch.tril(ones, -1)}[mask]


def linear_bias_attention(u, W_Q, W_K, W_V, B, mask: str = "strict") -> torch.Tensor:
    """Fast path. u: (b, n, d); W_*: (d, d_k) / (d, d_v); B: (>=n, >=n) -> (b, n, d_v)."""
    n = u.shape[1]
    Q, K, V = u @ W_Q, u @ W_K, u @ W_V  # (b, n, d_k), (b, n, d_k), (b, n, d_v)
    A = (Q @ K.transpose(-1, -2) + B[:n, :n]) * _mask(n, mask, u)  # (b, n, n)
    return A @ V


def linear_bias_attention_direct(u, W_Q, W_K, W_V, B, mask: str = "strict") -> torch.Tensor:
    """Reference: O[i] = sum_j (<Q_i, K_j> + B[i, j]) V_j over the allowed j, one position at a time."""
    if mask not in MASKS:
        raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
    n = u.shape[1]
    Q, K, V = u @ W_Q, u @ W_K, u @ W_V
    out = torch.zeros(u.shape[0], n, V.shape[-1], dtype=u.dtype, device=u.device)
    for i in range(n):
        hi = {"none": n, "causal": i + 1, "strict": i}[mask]
        for j in range(hi):
            out[:, i] += ((Q[:, i] * K[:, j]).sum(-1) + B[i, j])[:, None] * V[:, j]
    return out


class LinearBiasAttention(Mixer):
    """``LinearBiasAttention(d_model, seq_len, mask="causal")``; weights right-multiplied, B zero at init."""

    def __init__(self, d_model: int, seq_len: int, mask: str = "causal"):
        super().__init__(d_model, seq_len)
        if mask not in MASKS:
            raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
        d_model, seq_len = self.d_model, self.seq_len
        std = d_model**-0.5
        self.mask = mask
        self.W_Q = nn.Parameter(std * torch.randn(d_model, d_model))
        self.W_K = nn.Parameter(std * torch.randn(d_model, d_model))
        self.W_V = nn.Parameter(std * torch.randn(d_model, d_model))
        self.B = nn.Parameter(torch.zeros(seq_len, seq_len))

    def forward(self, u):
        return linear_bias_attention(u, self.W_Q, self.W_K, self.W_V, self.B, self.mask)

    def forward_reference(self, u):
        return linear_bias_attention_direct(u, self.W_Q, self.W_K, self.W_V, self.B, self.mask)

    def state_size(self, seq_len: int | None = None) -> int:
        """Keys and values of every past token (the bias row B[i] is a weight, not state): 2·n·d."""
        return 2 * self._n(seq_len) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """6d² (Q, K, V) + 4nd (Q Kᵀ and A V, dense n×n products)."""
        n, d = self._n(seq_len), self.d_model
        return 6 * d * d + 4 * n * d
