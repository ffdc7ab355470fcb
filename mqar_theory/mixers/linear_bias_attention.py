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
from .recurrent import check_step, empty_history

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

    def state_size(self, seq_len: int | None = None) -> int | None:
        """Keys and values of every past token (the bias row B[i] is a weight, not state): 2·n·d, the KV cache
        ``step`` keeps (it grows with n: B[i, j] weighs every past V_j separately). None for ``mask="none"``,
        which has no causal recurrence."""
        n = self._n(seq_len)
        return None if self.mask == "none" else 2 * n * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """6d² (Q, K, V) + 4nd (Q Kᵀ and A V, dense n×n products)."""
        n, d = self._n(seq_len), self.d_model
        return 6 * d * d + 4 * n * d

    # --- recurrent form: a KV cache ------------------------------------------------------------------
    fixed_size_state = False

    @property
    def no_recurrence(self) -> str | None:
        """Why there is no ``step``: only the unmasked form lacks one."""
        if self.mask == "none":
            return ('LinearBiasAttention(mask="none"): O[i] sums over every j, later tokens included: it has no '
                    "causal token-by-token form")
        return None

    def init_state(self, batch: int) -> dict:
        """An empty cache of keys K_j = u_j W_K and values V_j = u_j W_V, (B, 0, d) each; t = 0."""
        if self.mask == "none":
            raise NotImplementedError(self.no_recurrence)
        return {"k": empty_history(self, batch, self.W_K.shape[1]), "v": empty_history(self, batch, self.W_V.shape[1]),
                "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """O_t = Σ_j (⟨Q_t, K_j⟩ + B[t, j]) V_j over j <= t (``causal``) or j < t (``strict``), then the cache
        gains K_t, V_t."""
        if self.mask == "none":
            raise NotImplementedError(self.no_recurrence)
        t = check_step(self, state, u_t)
        q = u_t @ self.W_Q  # (B, d_k)
        K = torch.cat([state["k"], (u_t @ self.W_K)[:, None]], dim=1)  # (B, t+1, d_k)
        V = torch.cat([state["v"], (u_t @ self.W_V)[:, None]], dim=1)  # (B, t+1, d_v)
        hi = t + 1 if self.mask == "causal" else t
        a = (K[:, :hi] @ q[:, :, None])[:, :, 0] + self.B[t, :hi]  # (B, hi)
        return (a[:, :, None] * V[:, :hi]).sum(1), {"k": K, "v": V, "t": t + 1}
