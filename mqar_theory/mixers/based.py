"""Based's linear attention (Arora, Eyuboglu, Zhang et al., "Simple linear attention language models balance
the recall-throughput tradeoff", arXiv 2402.18668, §4, eq. 3): causal linear attention with the 2nd-order
Taylor feature map of exp, one head:

    q, k = u W_q, u W_k  (B, N, f),   v = u W_v  (B, N, d)
    φ(q)·φ(k) = 1 + q·k/√f + (q·k)²/(2f)       (the Taylor expansion of exp(q·k/√f))
    y_i = (Σ_{j<=i} φ(q_i)·φ(k_j) v_j / Σ_{j<=i} φ(q_i)·φ(k_j)) W_out

It is ``LinearAttention(feature_map="taylor", num_heads=1, normalize=True)`` (``linear_attention.py``), which holds
the feature map φ (D = 1 + f + f(f+1)/2 entries), the chunked kernel, the recurrence ``step`` and the FLOP formula;
this class fixes those arguments and keeps Based's own naive reference. The recurrent state Σ φ(k_j) [v_j, 1]ᵀ has
D·(d+1) numbers whatever n (measured from ``step``'s tensors in the tests). Every similarity is >= 1/2
(1 + s + s²/2 = ((1+s)² + 1)/2), so the normaliser is positive without an ε.

Decisions: the registered ``based`` mixer is this linear-attention layer alone. The Based architecture
mixes it with sliding-window softmax attention and short convolutions in separate layers (paper §4), and
Zoology's Figure 2 "based" model is the hybrid [BaseConv (k=3), Based (f=8)]; both are ``LanguageModel``
mixer lists, e.g. ``mixer=["baseconv", "based"]`` with ``mixer_kwargs=[{"kernel_size": 3}, {"feature_dim":
8}]``, or ``["baseconv", "based", "sliding_window"]``. ``feature_dim`` defaults to 16 (the paper's
choice); no biases (as the Based code). Projections are ``nn.Linear`` named q_proj, k_proj, v_proj, out_proj.

``forward`` is chunk-wise (``chunked_linear_attention``: the masked T×T similarity matrix within a chunk, the
running state across chunks); ``forward_reference`` loops over positions with the Taylor similarity written out
(no feature map), so it checks the feature map too.
"""

from __future__ import annotations

import math

import torch

from .linear_attention import LinearAttention, taylor_features

__all__ = ["Based", "taylor_features"]


class Based(LinearAttention):
    """``Based(d_model, seq_len, feature_dim=16, chunk_size=64)``: Taylor linear attention, one head."""

    def __init__(self, d_model: int, seq_len: int, feature_dim: int = 16, chunk_size: int = 64):
        super().__init__(d_model, seq_len, feature_map="taylor", feature_dim=feature_dim, num_heads=1,
                         normalize=True, chunk_size=chunk_size)

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

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, feature_dim={self.feature_dim}, chunk_size={self.chunk_size}"
