"""Sliding-window causal softmax attention: each position attends to its last ``window`` positions
(itself included), the local attention of Longformer (Beltagy et al., arXiv 2004.05150) that Based
(arXiv 2402.18668, §4) pairs with linear attention, and the "sliding window" baseline of Zoology's
sparse-attention comparison (arXiv 2312.04927, §5):

    Q, K, V = u W_qkv (+ bias)       # (B, N, d), split over heads
    y_i = softmax_{i-w < j <= i}(Q_i K_jᵀ / sqrt(d_head)) V_j,   out = y W_o (+ bias)

``forward`` is blocked: positions are cut into blocks of b = min(w, n), and each block's queries attend
(one ``scaled_dot_product_attention`` call with a banded boolean mask) to the 2b keys of their own block and
the block before, which contain every window; so time and memory grow as N·2w·d, not N²·d, and the work is
dense batched products (an ``unfold`` gather of every window was 10x slower to train on a CPU).
``forward_reference`` loops over query positions with an explicit softmax. Parameters, init and learned positions
(``uses_positions``) as ``Attention``; ``window >= N`` is full causal attention. Default w = 64 (Based's
window).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer
from .recurrent import check_step, zeros

__all__ = ["SlidingWindowAttention"]


class SlidingWindowAttention(Mixer):
    """``SlidingWindowAttention(d_model, seq_len, window=64, num_heads=1)``."""

    uses_positions = True  # softmax attention is permutation-invariant within its window without them

    def __init__(self, d_model: int, seq_len: int, window: int = 64, num_heads: int = 1, bias: bool = True):
        super().__init__(d_model, seq_len)
        if not (is_int(window) and window >= 1):
            raise ValueError(f"window={window!r}: must be an integer >= 1")
        if not (is_int(num_heads) and num_heads >= 1 and self.d_model % num_heads == 0):
            raise ValueError(f"num_heads={num_heads!r}: must be a positive divisor of d_model={self.d_model}")
        self.window, self.num_heads = int(window), int(num_heads)
        self.Wqkv = nn.Linear(self.d_model, 3 * self.d_model, bias=bias)
        self.out_proj = nn.Linear(self.d_model, self.d_model, bias=bias)

    def _heads(self, u):  # (B, N, d) -> 3 x (B, H, N, d/H)
        B, N, d = u.shape
        qkv = self.Wqkv(u).view(B, N, 3, self.num_heads, d // self.num_heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        q, k, v = self._heads(u)  # (B, H, n, dh) each
        B, H, n, dh = q.shape
        b = min(self.window, n)  # block size: a query's window lies in its own block and the one before
        nb = -(-n // b)  # number of blocks
        pad = nb * b - n
        q = F.pad(q, (0, 0, 0, pad)).reshape(B * H, nb, b, dh)  # (BH, nb, b, dh)
        k = F.pad(k, (0, 0, b, pad)).reshape(B * H, nb + 1, b, dh)  # one zero block in front
        v = F.pad(v, (0, 0, b, pad)).reshape(B * H, nb + 1, b, dh)
        k2 = torch.cat([k[:, :-1], k[:, 1:]], dim=2)  # (BH, nb, 2b, dh): previous block, own block
        v2 = torch.cat([v[:, :-1], v[:, 1:]], dim=2)
        y = F.scaled_dot_product_attention(q, k2, v2, attn_mask=self._block_mask(nb, b, u.device))
        y = y.reshape(B, H, nb * b, dh)[:, :, :n]  # (B, H, n, dh)
        return self.out_proj(y.transpose(1, 2).reshape(u.shape))

    def _block_mask(self, nb: int, b: int, device) -> torch.Tensor:
        """(nb, b, 2b) boolean: query r of block j (position i = jb + r) sees slot c (position p = (j-1)b + c)
        iff i - w < p <= i and p >= 0 (the zero block in front of block 0 is masked out)."""
        i = torch.arange(nb, device=device)[:, None, None] * b + torch.arange(b, device=device)[None, :, None]
        p = (torch.arange(nb, device=device)[:, None, None] - 1) * b + torch.arange(2 * b, device=device)
        return (p <= i) & (p > i - self.window) & (p >= 0)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Naive loop over query positions, softmax over max(0, i-w+1) <= j <= i."""
        q, k, v = self._heads(u)
        y = torch.zeros_like(q)
        for i in range(q.shape[2]):
            lo = max(0, i - self.window + 1)
            s = (q[:, :, i : i + 1] @ k[:, :, lo : i + 1].transpose(-1, -2)) / math.sqrt(q.shape[3])
            p = torch.exp(s - s.amax(-1, keepdim=True))
            y[:, :, i : i + 1] = (p / p.sum(-1, keepdim=True)) @ v[:, :, lo : i + 1]
        return self.out_proj(y.transpose(1, 2).reshape(u.shape))

    def state_size(self, seq_len: int | None = None) -> int:
        """The KV cache of the last min(w - 1, n) tokens, 2·min(w - 1, n)·d numbers: the next query attends to
        itself and the w - 1 tokens before it (``step``). (Formerly declared 2·min(w, n)·d, one key and value
        more than the next step reads.)"""
        return 2 * min(self.window - 1, self._n(seq_len)) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d² (Wqkv 6d², out_proj 2d²) + 8·b·d·n_pad/n: every query of the n_pad = ⌈n/b⌉·b padded positions
        scores and averages 2b keys (2·2b·d each), masked slots included as computed; b = min(w, n)."""
        n, d = self._n(seq_len), self.d_model
        b = min(self.window, n)
        n_pad = -(-n // b) * b
        return 8.0 * d * d + 8.0 * b * d * n_pad / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, window={self.window}, num_heads={self.num_heads}"

    # --- recurrent form: a window-sized KV cache -----------------------------------------------------
    def init_state(self, batch: int) -> dict:
        """An empty KV cache: keys and values (B, H, 0, d/H) each, and the position t = 0."""
        H, dh = self.num_heads, self.d_model // self.num_heads
        return {"k": zeros(self, batch, H, 0, dh), "v": zeros(self, batch, H, 0, dh), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Attend over the cached keys and values and this token's (at most w), y_t = softmax_{t-w<j<=t}(q_t k_jᵀ
        / sqrt(d_head)) V W_o; then keep the last w - 1 of them (all the next query can reach)."""
        t = check_step(self, state, u_t)
        q, k, v = self._heads(u_t[:, None])  # (B, H, 1, dh) each
        K, V = torch.cat([state["k"], k], dim=2), torch.cat([state["v"], v], dim=2)  # (B, H, <= w, dh)
        p = torch.softmax((q @ K.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, 1, <= w)
        y = self.out_proj((p @ V).transpose(1, 2).reshape(u_t.shape))  # (B, d)
        keep = min(self.window - 1, K.shape[2])
        return y, {"k": K[:, :, K.shape[2] - keep :], "v": V[:, :, V.shape[2] - keep :], "t": t + 1}
