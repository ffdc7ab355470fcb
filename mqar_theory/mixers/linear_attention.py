"""Causal linear attention (Katharopoulos et al., arXiv 2006.16236, eq. 4-6; Based, arXiv 2402.18668, §3-4), the
chunked kernel it shares with ``Based``, and its recurrent form.

Per head h (H heads, value width e = d/H), with a feature map φ: R^f -> R^D applied to q and k:

    q, k = u W_q, u W_k  (B, N, H·f),   v = u W_v  (B, N, d),   y = o W_out
    S_i = S_{i-1} + φ(k_i) v_iᵀ   (D × e),     o_i = S_iᵀ φ(q_i) = Σ_{j<=i} (φ(q_i)·φ(k_j)) v_j
    normalised (optional):  z_i = z_{i-1} + φ(k_i),   o_i = S_iᵀ φ(q_i) / (z_i·φ(q_i))

Feature maps (``feature_map``):

* ``"identity"``: φ(x) = x / f^{1/4}, so φ(q)·φ(k) = q·k/√f (the 1/√f scale of ``naive_recurrent_linear_attn``
  in fla-org/flash-linear-attention ``fla/ops/linear_attn/naive.py``, commit
  bc3b101dcb713ddc5bd8924b66754eb68b5ccf89); D = f, unnormalised by default (the similarity can be negative, so
  ``normalize=True`` is refused for it);
* ``"taylor"``: Based's 2nd-order Taylor map of exp (arXiv 2402.18668 eq. 3), φ(q)·φ(k) = 1 + q·k/√f + (q·k)²/(2f),
  φ(x) = [1, x/f^{1/4}, x_a²/√(2f) (a <= f), x_a x_b/√f (a < b)], D = 1 + f + f(f+1)/2 (the symmetric form of the
  paper's [1, x/f^{1/4}, vec(x xᵀ)/√(2f)]: same inner products, f(f-1)/2 fewer entries). Every similarity is >= 1/2
  (1 + s + s²/2 = ((1+s)² + 1)/2), so the normaliser is positive without an ε; normalised by default.

The normaliser is carried as one extra value column: v' = [v, 1] (width e+1), so S' = Σ φ(k_j) [v_j, 1]ᵀ holds S and
z together and o = o'[:e] / o'[e]. State after any n tokens: H·D·e' numbers, e' = e + 1 if normalised else e.

``chunked_linear_attention`` is the fast form (the "quadratic view" inside a chunk of T positions, the "recurrent
view" across chunks, arXiv 2402.18668 §4): the masked T×T similarities within a chunk, plus each chunk's state
before it, Σ_{earlier chunks} φ(k_j) v'_jᵀ, computed for all chunks at once by an exclusive cumulative sum.
``forward_reference`` is a position loop of the recurrence above; ``step`` is one position of it.

``Based`` (``based.py``) is this layer with the Taylor map, one head and the normaliser.

Reference check (``benchmarks/check_references.py --fla``): ``chunked_linear_attention`` with the identity map against
``naive_recurrent_linear_attn`` of ``fla/ops/linear_attn/naive.py`` (commit above) on identical float64 q, k, v
(B=2, H=2, n=100, f=16, chunk 16): max relative difference 2.2e-7 as written (it casts to float32), 6.3e-16 with its
float32 casts turned into float64 at import time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer
from .recurrent import check_step, zeros

__all__ = ["LinearAttention", "chunked_linear_attention", "taylor_features", "identity_features", "FEATURE_MAPS"]


def taylor_features(x: torch.Tensor) -> torch.Tensor:
    """φ(x): (..., f) -> (..., 1 + f + f(f+1)/2), with φ(q)·φ(k) = 1 + q·k/√f + (q·k)²/(2f)."""
    f = x.shape[-1]
    a, b = torch.triu_indices(f, f, device=x.device)
    scale = torch.full(a.shape, 1 / math.sqrt(f), dtype=x.dtype, device=x.device)  # (f(f+1)/2,)
    scale[a == b] = 1 / math.sqrt(2 * f)
    second = x[..., a] * x[..., b] * scale
    return torch.cat([torch.ones_like(x[..., :1]), x / f**0.25, second], dim=-1)


def identity_features(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = x / f^{1/4}: (..., f) -> (..., f), with φ(q)·φ(k) = q·k/√f."""
    return x / x.shape[-1] ** 0.25


#: name -> (φ, D(f): the number of features)
FEATURE_MAPS = {
    "identity": (identity_features, lambda f: f),
    "taylor": (taylor_features, lambda f: 1 + f + f * (f + 1) // 2),
}


def chunked_linear_attention(qf: torch.Tensor, kf: torch.Tensor, v: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """o_i = Σ_{j<=i} (qf_i·kf_j) v_j for (B, H, n, D), (B, H, n, D), (B, H, n, e) -> (B, H, n, e), chunk-wise.

    FLOPs (matrix products, per batch row and head), T = min(chunk_size, n), C = ⌈n/T⌉ chunks:
    2CT²D (similarities) + 2CT²e (their products with v) + 2CTDe (chunk states) + 2CTDe (reading the states)."""
    Bsz, H, n, D = qf.shape
    e = v.shape[-1]
    T = min(chunk_size, n)
    C = -(-n // T)
    pad = (0, 0, 0, C * T - n)  # zeros at the end: they reach no real position
    qf = F.pad(qf, pad).view(Bsz, H, C, T, D)  # (B, H, C, T, D)
    kf = F.pad(kf, pad).view(Bsz, H, C, T, D)  # (B, H, C, T, D)
    v = F.pad(v, pad).view(Bsz, H, C, T, e)  # (B, H, C, T, e)
    A = (qf @ kf.transpose(-1, -2)).tril()  # (B, H, C, T, T) causal similarities within a chunk
    KV = kf.transpose(-1, -2) @ v  # (B, H, C, D, e): each chunk's Σ φ(k_j) v_jᵀ
    S = KV.cumsum(dim=2) - KV  # (B, H, C, D, e): the state before each chunk
    return (A @ v + qf @ S).reshape(Bsz, H, C * T, e)[:, :, :n]  # (B, H, n, e)


class LinearAttention(Mixer):
    """``LinearAttention(d_model, seq_len, feature_map="identity", feature_dim=None, num_heads=1, normalize=None,
    chunk_size=64)``: causal linear attention (see the module docstring); no biases (as the Based code).

    ``feature_dim`` f is the per-head query/key width before the feature map (default d/H for ``"identity"``, 16,
    Based's choice, for ``"taylor"``); ``normalize`` defaults to True for ``"taylor"`` and False for ``"identity"``.
    """

    def __init__(self, d_model: int, seq_len: int, feature_map: str = "identity", feature_dim: int | None = None,
                 num_heads: int = 1, normalize: bool | None = None, chunk_size: int = 64):
        super().__init__(d_model, seq_len)
        if feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map={feature_map!r}: must be one of {sorted(FEATURE_MAPS)}")
        if not (is_int(num_heads) and num_heads >= 1 and self.d_model % num_heads == 0):
            raise ValueError(f"num_heads={num_heads!r}: must be a positive divisor of d_model={self.d_model}")
        H = int(num_heads)
        if feature_dim is None:
            feature_dim = self.d_model // H if feature_map == "identity" else 16
        if not (is_int(feature_dim) and feature_dim >= 1):
            raise ValueError(f"feature_dim={feature_dim!r}: must be an integer >= 1")
        if normalize is None:
            normalize = feature_map == "taylor"
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize={normalize!r}: must be True, False or None")
        if normalize and feature_map == "identity":
            raise ValueError("normalize=True: needs a positive similarity; the identity map's q·k can be <= 0 "
                             "(use feature_map='taylor')")
        if not (is_int(chunk_size) and chunk_size >= 1):
            raise ValueError(f"chunk_size={chunk_size!r}: must be an integer >= 1")
        d, f = self.d_model, int(feature_dim)
        self.feature_map, self.feature_dim, self.num_heads = feature_map, f, H
        self.normalize, self.chunk_size = normalize, int(chunk_size)
        self.q_proj, self.k_proj = nn.Linear(d, H * f, bias=False), nn.Linear(d, H * f, bias=False)
        self.v_proj, self.out_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)

    @property
    def num_features(self) -> int:
        """D: f for the identity map, 1 + f + f(f+1)/2 for the Taylor map."""
        return FEATURE_MAPS[self.feature_map][1](self.feature_dim)

    @property
    def head_dim(self) -> int:
        """e = d / H, the value width of a head."""
        return self.d_model // self.num_heads

    def _qkv(self, u: torch.Tensor):
        """φ(q), φ(k) (B, H, n, D) and v' (B, H, n, e'), v' = [v, 1] when normalised."""
        Bsz, n, _ = u.shape
        H, f, e = self.num_heads, self.feature_dim, self.head_dim
        phi = FEATURE_MAPS[self.feature_map][0]
        qf = phi(self.q_proj(u).view(Bsz, n, H, f).transpose(1, 2))  # (B, H, n, D)
        kf = phi(self.k_proj(u).view(Bsz, n, H, f).transpose(1, 2))  # (B, H, n, D)
        v = self.v_proj(u).view(Bsz, n, H, e).transpose(1, 2)  # (B, H, n, e)
        if self.normalize:
            v = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)  # (B, H, n, e+1)
        return qf, kf, v

    def _out(self, o: torch.Tensor) -> torch.Tensor:
        """(B, H, n, e') -> y (B, n, d): divide by the normaliser column if any, merge heads, project."""
        e = self.head_dim
        if self.normalize:
            o = o[..., :e] / o[..., e:]
        Bsz, H, n, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(Bsz, n, H * e))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        qf, kf, v = self._qkv(u)
        return self._out(chunked_linear_attention(qf, kf, v, self.chunk_size))

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """Position loop: S_i = S_{i-1} + φ(k_i) v'_iᵀ, o_i = S_iᵀ φ(q_i)."""
        qf, kf, v = self._qkv(u)
        S = qf.new_zeros(*qf.shape[:2], qf.shape[-1], v.shape[-1])  # (B, H, D, e')
        outs = []
        for i in range(u.shape[1]):
            S = S + kf[:, :, i, :, None] * v[:, :, i, None, :]
            outs.append((qf[:, :, i, :, None] * S).sum(-2))  # (B, H, e')
        return self._out(torch.stack(outs, dim=2))

    def init_state(self, batch: int) -> dict:
        """S' = Σ φ(k_j) v'_jᵀ: (B, H, D, e'), zero before any token."""
        e = self.head_dim + int(self.normalize)
        return {"S": zeros(self, batch, self.num_heads, self.num_features, e), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One position of the recurrence: u_t (B, d) -> y_t (B, d)."""
        check_step(self, state, u_t)
        qf, kf, v = self._qkv(u_t[:, None])  # (B, H, 1, D), (B, H, 1, D), (B, H, 1, e')
        S = state["S"] + kf[:, :, 0, :, None] * v[:, :, 0, None, :]  # (B, H, D, e')
        o = (qf[:, :, 0, :, None] * S).sum(-2)  # (B, H, e')
        return self._out(o[:, :, None])[:, 0], {"S": S, "t": state["t"] + 1}

    def state_size(self, seq_len: int | None = None) -> int:
        """H·D·e' numbers (e' = e + 1 with the normaliser), whatever n."""
        self._n(seq_len)
        return self.num_heads * self.num_features * (self.head_dim + int(self.normalize))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """4dHf + 4d² (projections) + per sequence, over n, with T = min(chunk_size, n), C = ⌈n/T⌉ and e' the
        value width per head: H·(2CT²D + 2CT²e' + 4CTDe') (``chunked_linear_attention``)."""
        n, d, H, f, D = self._n(seq_len), self.d_model, self.num_heads, self.feature_dim, self.num_features
        e = self.head_dim + int(self.normalize)
        T = min(self.chunk_size, n)
        C = -(-n // T)
        return 4.0 * d * H * f + 4.0 * d * d + H * (2 * C * T * T * (D + e) + 4 * C * T * D * e) / n

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, feature_map={self.feature_map!r}, feature_dim={self.feature_dim}, "
                f"num_heads={self.num_heads}, normalize={self.normalize}, chunk_size={self.chunk_size}")
