"""Based's linear attention (Arora, Eyuboglu, Zhang et al., "Simple linear attention language models balance
the recall-throughput tradeoff", arXiv 2402.18668, §4, eq. 3): causal linear attention with the 2nd-order
Taylor feature map of exp, one head:

    q, k = u W_q, u W_k  (B, N, f),   v = u W_v  (B, N, d)
    φ(q)·φ(k) = 1 + q·k/√f + (q·k)²/(2f)       (the Taylor expansion of exp(q·k/√f))
    y_i = (Σ_{j<=i} φ(q_i)·φ(k_j) v_j / Σ_{j<=i} φ(q_i)·φ(k_j)) W_out

φ(x) = [1, x/f^{1/4}, x_a²/√(2f) (a <= f), x_a x_b/√f (a < b)] has D = 1 + f + f(f+1)/2 entries: the
symmetric form of the paper's [1, x/f^{1/4}, vec(x xᵀ)/√(2f)] (same inner products, f(f-1)/2 fewer
entries), so the recurrent state Σ φ(k_j) [v_j, 1]ᵀ has D·(d+1) numbers. Every similarity is >= 1/2
(1 + s + s²/2 = ((1+s)² + 1)/2), so the normaliser is positive without an ε.

Decisions: the registered ``based`` mixer is this linear-attention layer alone. The Based architecture
mixes it with sliding-window softmax attention and short convolutions in separate layers (paper §4), and
Zoology's Figure 2 "based" model is the hybrid [BaseConv (k=3), Based (f=8)]; both are ``LanguageModel``
mixer lists, e.g. ``mixer=["baseconv", "based"]`` with ``mixer_kwargs=[{"kernel_size": 3}, {"feature_dim":
8}]``, or ``["baseconv", "based", "sliding_window"]``. ``feature_dim`` defaults to 16 (the paper's
choice); no biases (as the Based code). Projections are ``nn.Linear``.

``forward`` is chunk-wise: within a chunk of T positions the masked T×T similarity matrix (the
"quadratic view"), across chunks the running state Σ φ(k_j)[v_j, 1]ᵀ (the "recurrent view"), computed
for all chunks at once by a cumulative sum; ``forward_reference`` loops over positions with the Taylor
similarity written out (no feature map).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer

__all__ = ["Based", "taylor_features"]


def taylor_features(x: torch.Tensor) -> torch.Tensor:
    """φ(x): (..., f) -> (..., 1 + f + f(f+1)/2), with φ(q)·φ(k) = 1 + q·k/√f + (q·k)²/(2f)."""
    f = x.shape[-1]
    a, b = torch.triu_indices(f, f, device=x.device)
    scale = torch.full(a.shape, 1 / math.sqrt(f), dtype=x.dtype, device=x.device)  # (f(f+1)/2,)
    scale[a == b] = 1 / math.sqrt(2 * f)
    second = x[..., a] * x[..., b] * scale
    return torch.cat([torch.ones_like(x[..., :1]), x / f**0.25, second], dim=-1)


class Based(Mixer):
    """``Based(d_model, seq_len, feature_dim=16, chunk_size=64)``: Taylor linear attention, one head."""

    def __init__(self, d_model: int, seq_len: int, feature_dim: int = 16, chunk_size: int = 64):
        super().__init__(d_model, seq_len)
        if not (is_int(feature_dim) and feature_dim >= 1):
            raise ValueError(f"feature_dim={feature_dim!r}: must be an integer >= 1")
        if not (is_int(chunk_size) and chunk_size >= 1):
            raise ValueError(f"chunk_size={chunk_size!r}: must be an integer >= 1")
        d, f = self.d_model, int(feature_dim)
        self.feature_dim, self.chunk_size = f, int(chunk_size)
        self.q_proj, self.k_proj = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False)
        self.v_proj, self.out_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)

    @property
    def num_features(self) -> int:
        """D = 1 + f + f(f+1)/2."""
        f = self.feature_dim
        return 1 + f + f * (f + 1) // 2

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        Bsz, n, d = u.shape
        T = min(self.chunk_size, n)
        C = -(-n // T)
        pad = (0, 0, 0, C * T - n)  # zeros at the end: they reach no real position
        qf = F.pad(taylor_features(self.q_proj(u)), pad).view(Bsz, C, T, -1)  # (B, C, T, D)
        kf = F.pad(taylor_features(self.k_proj(u)), pad).view(Bsz, C, T, -1)  # (B, C, T, D)
        v = self.v_proj(u)
        v1 = F.pad(torch.cat([v, torch.ones_like(v[..., :1])], dim=-1), pad).view(Bsz, C, T, d + 1)
        A = (qf @ kf.transpose(-1, -2)).tril()  # (B, C, T, T) causal similarities within a chunk
        KV = kf.transpose(-1, -2) @ v1  # (B, C, D, d+1): each chunk's Σ φ(k_j)[v_j, 1]ᵀ
        S = KV.cumsum(dim=1) - KV  # (B, C, D, d+1): the state before each chunk
        out = (A @ v1 + qf @ S).reshape(Bsz, C * T, d + 1)[:, :n]  # (B, n, d+1)
        return self.out_proj(out[..., :d] / out[..., d:])

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Position by position: s_ij = 1 + q_i·k_j/√f + (q_i·k_j)²/(2f), y_i = Σ_j s_ij v_j / Σ_j s_ij."""
        q, k, v = self.q_proj(u), self.k_proj(u), self.v_proj(u)
        f = self.feature_dim
        ys = []
        for i in range(u.shape[1]):
            dot = (q[:, i : i + 1] * k[:, : i + 1]).sum(-1)  # (B, i+1)
            s = 1 + dot / math.sqrt(f) + dot**2 / (2 * f)
            ys.append((s[..., None] * v[:, : i + 1]).sum(1) / s.sum(1, keepdim=True))
        return self.out_proj(torch.stack(ys, dim=1))

    def state_size(self, seq_len: int | None = None) -> int:
        """Σ φ(k_j) v_jᵀ and Σ φ(k_j): D·(d+1) numbers, D = 1 + f + f(f+1)/2, whatever n."""
        self._n(seq_len)
        return self.num_features * (self.d_model + 1)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """4df + 4d² (projections) + per sequence, over n, with T = min(chunk_size, n) and C = ⌈n/T⌉
        chunks: 2CT²D (similarities) + 2CT²(d+1) (their products with [v, 1]) + 2CTD(d+1) (chunk states)
        + 2CTD(d+1) (reading the state)."""
        n, d, f, D = self._n(seq_len), self.d_model, self.feature_dim, self.num_features
        T = min(self.chunk_size, n)
        C = -(-n // T)
        return 4.0 * d * f + 4.0 * d * d + (2 * C * T * T * (D + d + 1) + 4 * C * T * D * (d + 1)) / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, feature_dim={self.feature_dim}, chunk_size={self.chunk_size}"
