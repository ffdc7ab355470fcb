"""Causal softmax multi-head attention (the mixer of the paper's experiments), with a naive reference.

    Q, K, V = u W_qkv (+ bias);   A = softmax(Q Kᵀ / sqrt(d_head) + causal mask);   y = (drop(A) V) W_o

``dropout`` (default 0) is dropout on the attention probabilities A in training mode, as the official
``SelfAttention`` (HazyResearch/zoology, ``zoology/mixers/attention.py``; its Figure 2 configs set 0.1, which
``recipe="official"`` models use). The official code masks the future with -10000 instead of -inf; after the
softmax the two agree to within exp(-10000) = 0 in floating point, so the mask is not reproduced.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer
from .recurrent import check_step, zeros

__all__ = ["Attention"]


class Attention(Mixer):
    """``Attention(d_model, seq_len, num_heads=1)``: causal softmax MHA, (B, N, d) -> (B, N, d).

    ``seq_len`` is accepted for the registry's uniform signature; attention has no length-dependent
    weights (the model adds learned positions for it, as the paper's Figure 2 runs do).
    """

    uses_positions = True  # LanguageModel adds learned absolute positions for this mixer

    def __init__(self, d_model: int, seq_len: int, num_heads: int = 1, bias: bool = True, dropout: float = 0.0):
        super().__init__(d_model, seq_len)
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout={dropout!r}: must be a number in [0, 1)")
        self.dropout = float(dropout)
        if not (is_int(num_heads) and num_heads >= 1 and d_model % num_heads == 0):
            raise ValueError(f"num_heads={num_heads!r}: must be a positive divisor of d_model={d_model}")
        if not isinstance(bias, bool):
            raise ValueError(f"bias={bias!r}: must be a bool")
        self.num_heads = int(num_heads)
        self.Wqkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, u):  # (B, N, d) -> 3 x (B, H, N, d/H)
        B, N, d = u.shape
        qkv = self.Wqkv(u).view(B, N, 3, self.num_heads, d // self.num_heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(u)
        if self.training and self.dropout > 0:  # dropout on the probabilities: written out, reproducible
            N, dh = q.shape[2], q.shape[3]
            s = (q @ k.transpose(-1, -2)) / math.sqrt(dh)  # (B, H, N, N)
            future = torch.ones(N, N, dtype=torch.bool, device=u.device).triu(1)
            A = torch.softmax(s.masked_fill(future, float("-inf")), dim=-1)
            y = F.dropout(A, self.dropout, training=True) @ v  # (B, H, N, dh)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, N, dh)
        return self.out_proj(y.transpose(1, 2).reshape(u.shape))

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Naive loop over query positions, with an explicit softmax over j <= i."""
        q, k, v = self._heads(u)
        B, H, N, dh = q.shape
        y = torch.zeros_like(q)
        for i in range(N):
            s = (q[:, :, i : i + 1] @ k[:, :, : i + 1].transpose(-1, -2)) / math.sqrt(dh)  # (B, H, 1, i+1)
            p = torch.exp(s - s.amax(-1, keepdim=True))
            y[:, :, i : i + 1] = (p / p.sum(-1, keepdim=True)) @ v[:, :, : i + 1]
        return self.out_proj(y.transpose(1, 2).reshape(u.shape))

    def state_size(self, seq_len: int | None = None) -> int:
        """The KV cache: keys and values of every past token, 2·n·d numbers."""
        return 2 * self._n(seq_len) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d² (Wqkv 6d², out_proj 2d²) + 4nd (scores and weighted sum, counted dense as SDPA is)."""
        n, d = self._n(seq_len), self.d_model
        return 8 * d * d + 4 * n * d

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_heads={self.num_heads}, dropout={self.dropout}"

    # --- recurrent form: a KV cache that grows with the tokens -------------------------------------
    fixed_size_state = False

    def init_state(self, batch: int) -> dict:
        """An empty KV cache: keys and values (B, H, 0, d/H) each, and the position t = 0."""
        H = self.num_heads
        return {"k": zeros(self, batch, H, 0, self.d_model // H), "v": zeros(self, batch, H, 0, self.d_model // H),
                "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Append this token's key and value to the cache and attend over it (the inference form, eval mode:
        no dropout): y_t = (softmax_j≤t(q_t k_jᵀ / sqrt(d_head)) V) W_o. After n tokens the cache holds n keys
        and n values, 2·n·d numbers: the state grows with n (``fixed_size_state = False``)."""
        t = check_step(self, state, u_t)
        q, k, v = self._heads(u_t[:, None])  # (B, H, 1, dh) each
        K, V = torch.cat([state["k"], k], dim=2), torch.cat([state["v"], v], dim=2)  # (B, H, t+1, dh)
        p = torch.softmax((q @ K.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, 1, t+1)
        y = self.out_proj((p @ V).transpose(1, 2).reshape(u_t.shape))  # (B, d)
        return y, {"k": K, "v": V, "t": t + 1}
