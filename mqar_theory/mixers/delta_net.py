"""DeltaNet (Yang, Wang, Zhang, Shen, Kim, "Parallelizing Linear Transformers with the Delta Rule over Sequence
Length", arXiv 2406.06484; the delta rule of Schlag et al., arXiv 2102.11174): linear attention whose state is
corrected towards each new value instead of summed.

Layer (the arrangement of fla-org/flash-linear-attention ``fla/layers/delta_net.py`` with its defaults
``qk_activation="silu"``, ``qk_norm="l2"``, ``use_beta=True``, ``use_gate=False``, ``use_short_conv=True``,
``conv_size=4``, ``conv_bias=False``, ``expand_k = expand_v = 1``; commit bc3b101dcb713ddc5bd8924b66754eb68b5ccf89),
H heads of width d_h = d/H:

    q = silu(conv_q(u W_q)),  k = silu(conv_k(u W_k)),  v = silu(conv_v(u W_v))      (B, N, d) -> H heads (B, H, N, d_h)
    q <- q / (‖q‖ √d_h),  k <- k / ‖k‖   (L2 norm per head, x / sqrt(Σx² + 1e-6) as fla/modules/l2norm.py)
    β = sigmoid(u W_β)                     (B, N, H), from the layer input, not convolved
    S_t = S_{t-1} (I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ      (d_h × d_h per head; arXiv 2406.06484 eq. 1-2)
    o_t = S_t q_t,   y = [RMSNorm_w(o_t) per head] W_out   (RMSNorm over d_h, weight shared by heads, eps 1e-5)

conv_* are causal depthwise convolutions with K = ``conv_size`` taps and no bias (the reference's
``ShortConvolution``), computed by ``conv.causal_conv`` (shifted adds for K <= 8).

``forward`` is the chunked WY / UT form (arXiv 2406.06484 §3.2-3.3, eq. 7-9): write the state in the transposed
(d_k × d_v) convention S' = Sᵀ, so S'_t = S'_{t-1} + k_t u_tᵀ with u_t = β_t (v_t - S'_{t-1}ᵀ k_t). Within a chunk of T
positions that starts from S'_0, u_i = β_i v_i - β_i k_iᵀS'_0 - Σ_{j<i} β_i (k_i·k_j) u_j, i.e. (I + A) U = diag(β) V -
diag(β) K S'_0 with A = strict_tril(diag(β) K Kᵀ). Solving the unit lower-triangular system once per chunk (the UT
transform: W = (I+A)⁻¹ diag(β) K, U⁰ = (I+A)⁻¹ diag(β) V) gives

    U = U⁰ - W S'_0,   O = Q S'_0 + tril(Q Kᵀ) U,   S'_T = S'_0 + Kᵀ U,

all chunks' W, U⁰, tril(Q Kᵀ) at once, then a loop over the ⌈n/T⌉ chunks for the state (``delta_rule_chunked``).
``forward_reference`` runs the paper's recurrence above as a token loop with the matrix (I - β k kᵀ) written out;
``step`` is one token of the transposed form plus the convolutions' last K-1 inputs. The state after n tokens is
H·d_h² = d²/H numbers (S) plus 3·d·min(K-1, n) (the convolution windows: K-1 past inputs suffice for the next
output); ``state_size`` states it and the tests count it from ``step``'s tensors.

FLOPs: the unit-triangular solve (forward substitution, T(T-1)·(d_k+d_v) FLOPs per chunk and head) is not in
torch's FlopCounterMode registry; ``unit_triangular_solve_flops`` is the entry the tests add to count it.

Reference check (``benchmarks/check_references.py --fla``): on identical q, k, v, β in float64 (B=2, H=2, n=128,
d_h=16, normalised keys), ``delta_rule_chunked`` against ``delta_rule_chunkwise`` (chunk 32) of
``fla/ops/delta_rule/naive.py`` at commit bc3b101dcb713ddc5bd8924b66754eb68b5ccf89: max relative difference 5.5e-16;
against its ``delta_rule_recurrence``, which casts to float32 internally: 1.5e-7 as is, 6.9e-16 with its float32 casts
turned into float64 at import time (4.2e-16 on the q, k, v, β of a DeltaNet layer, n = 100); the reference's code is
read from the given path, not copied here. The paper and the reference agree on the rule and on the output reading
the state after token t's update (o_t = S_t q_t), which is what is followed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer
from .conv import causal_conv, causal_conv_flops
from .recurrent import check_step, empty_history, fir_step, zeros

__all__ = ["DeltaNet", "delta_rule_chunked", "delta_rule_recurrent", "delta_rule_chunk_flops",
           "unit_triangular_solve_flops", "l2_normalize", "rms_norm"]


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(Σ x² + eps) over the last axis (fla/modules/l2norm.py's form)."""
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x / sqrt(mean x² + eps) · weight over the last axis."""
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps) * weight


def unit_triangular_solve_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """FlopCounterMode formula for ``torch.linalg.solve_triangular`` with a unit-diagonal (T × T) matrix and a
    (T × c) right-hand side: forward substitution does T(T-1)/2 multiply-adds per column, T(T-1)·c FLOPs."""
    T, c = b_shape[-2], b_shape[-1]
    batch = 1
    for s in b_shape[:-2]:
        batch *= s
    return batch * T * (T - 1) * c


def delta_rule_chunk_flops(n: int, chunk_size: int, dk: int, dv: int) -> float:
    """FLOPs of ``delta_rule_chunked`` (and the gated kernel) per batch row and head over n positions, T = min(chunk,
    n), C = ⌈n/T⌉: per chunk 2T²d_k (A) + T(T-1)(d_k+d_v) (the solve) + 2T²d_k (Q Kᵀ) + 2T d_k d_v (W S') + 2T d_k d_v
    (Q S') + 2T²d_v (tril(Q Kᵀ) U), and 2T d_k d_v (Kᵀ U) for every chunk but the last."""
    T = min(chunk_size, n)
    C = -(-n // T)
    per_chunk = 4 * T * T * dk + T * (T - 1) * (dk + dv) + 4 * T * dk * dv + 2 * T * T * dv
    return float(C * per_chunk + (C - 1) * 2 * T * dk * dv)


def _chunks(x: torch.Tensor, T: int, C: int) -> torch.Tensor:
    """(B, H, n, ...) -> (B, H, C, T, ...), zero-padded at the end."""
    pad = [0, 0] * (x.dim() - 3) + [0, C * T - x.shape[2]]
    return F.pad(x, pad).view(*x.shape[:2], C, T, *x.shape[3:])


def delta_rule_chunked(q, k, v, beta, chunk_size: int = 64) -> torch.Tensor:
    """o_t = S'_tᵀ q_t under S'_t = S'_{t-1} + β_t k_t (v_t - S'_{t-1}ᵀ k_t)ᵀ, S'_0 = 0, in the chunked UT form.

    q, k (B, H, n, d_k), v (B, H, n, d_v), beta (B, H, n) -> o (B, H, n, d_v); q is used as given (scale it first)."""
    Bsz, H, n, dk = q.shape
    dv = v.shape[-1]
    T = min(chunk_size, n)
    C = -(-n // T)
    q, k, v, beta = (_chunks(x, T, C) for x in (q, k, v, beta))  # (B, H, C, T, ·), beta (B, H, C, T)
    kb = k * beta[..., None]  # (B, H, C, T, d_k)
    A = (kb @ k.transpose(-1, -2)).tril(-1)  # (B, H, C, T, T): β_i k_i·k_j, j < i
    eye = torch.eye(T, dtype=q.dtype, device=q.device)
    WU = torch.linalg.solve_triangular(A + eye, torch.cat([kb, v * beta[..., None]], dim=-1), upper=False,
                                       unitriangular=True)  # (B, H, C, T, d_k + d_v)
    W, U0 = WU[..., :dk], WU[..., dk:]
    P = (q @ k.transpose(-1, -2)).tril()  # (B, H, C, T, T)
    S = q.new_zeros(Bsz, H, dk, dv)  # S' before the chunk
    outs = []
    for c in range(C):
        U = U0[:, :, c] - W[:, :, c] @ S  # (B, H, T, d_v)
        outs.append(q[:, :, c] @ S + P[:, :, c] @ U)  # (B, H, T, d_v)
        if c < C - 1:
            S = S + k[:, :, c].transpose(-1, -2) @ U
    return torch.stack(outs, dim=2).reshape(Bsz, H, C * T, dv)[:, :, :n]


def delta_rule_recurrent(q, k, v, beta) -> torch.Tensor:
    """The paper's recurrence as a token loop: S_t = S_{t-1}(I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ (d_v × d_k),
    o_t = S_t q_t. Same shapes as ``delta_rule_chunked``."""
    Bsz, H, n, dk = q.shape
    eye = torch.eye(dk, dtype=q.dtype, device=q.device)
    S = q.new_zeros(Bsz, H, v.shape[-1], dk)
    outs = []
    for t in range(n):
        kt, bt = k[:, :, t], beta[:, :, t, None, None]  # (B, H, d_k), (B, H, 1, 1)
        S = S @ (eye - bt * kt[..., :, None] * kt[..., None, :]) + bt * v[:, :, t, :, None] * kt[..., None, :]
        outs.append((S @ q[:, :, t, :, None])[..., 0])  # (B, H, d_v)
    return torch.stack(outs, dim=2)


class DeltaNet(Mixer):
    """``DeltaNet(d_model, seq_len, num_heads=1, conv_size=4, chunk_size=64)`` (see the module docstring).

    ``num_heads`` defaults to 1 (the reference's 4 heads at hidden size 1024 have width 256; at the d <= 256 of
    these experiments one head keeps that width); no biases anywhere, as the reference."""

    def __init__(self, d_model: int, seq_len: int, num_heads: int = 1, conv_size: int = 4, chunk_size: int = 64):
        super().__init__(d_model, seq_len)
        if not (is_int(num_heads) and num_heads >= 1 and self.d_model % num_heads == 0):
            raise ValueError(f"num_heads={num_heads!r}: must be a positive divisor of d_model={self.d_model}")
        if not (is_int(conv_size) and conv_size >= 1):
            raise ValueError(f"conv_size={conv_size!r}: must be an integer >= 1")
        if not (is_int(chunk_size) and chunk_size >= 1):
            raise ValueError(f"chunk_size={chunk_size!r}: must be an integer >= 1")
        d, H, K = self.d_model, int(num_heads), int(conv_size)
        self.num_heads, self.conv_size, self.chunk_size = H, K, int(chunk_size)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.b_proj = nn.Linear(d, H, bias=False)
        bound = K**-0.5  # nn.Conv1d's default init for a depthwise filter (fan-in K)
        self.q_conv, self.k_conv, self.v_conv = (nn.Parameter(torch.empty(K, d).uniform_(-bound, bound))
                                                 for _ in range(3))  # (K, d): tap j multiplies x_{t-j}
        self.o_norm_weight = nn.Parameter(torch.ones(d // H))
        self.o_proj = nn.Linear(d, d, bias=False)

    @property
    def head_dim(self) -> int:
        """d_h = d / H (keys and values)."""
        return self.d_model // self.num_heads

    # --- pieces shared by forward, forward_reference and step -------------------------------------------------
    def _heads(self, qc, kc, vc, u):
        """Convolved projections (B, n, d) -> q (scaled, normalised), k (normalised), v (B, H, n, d_h), β (B, H, n)."""
        Bsz, n, _ = qc.shape
        H, dh = self.num_heads, self.head_dim

        def split(x):
            return F.silu(x).view(Bsz, n, H, dh).transpose(1, 2)  # (B, H, n, d_h)

        q, k, v = l2_normalize(split(qc)) * dh**-0.5, l2_normalize(split(kc)), split(vc)
        beta = torch.sigmoid(self.b_proj(u)).transpose(1, 2)  # (B, H, n)
        return q, k, v, beta

    def _inputs(self, u):
        qc = causal_conv(self.q_proj(u), self.q_conv)
        kc = causal_conv(self.k_proj(u), self.k_conv)
        vc = causal_conv(self.v_proj(u), self.v_conv)
        return self._heads(qc, kc, vc, u)

    def _out(self, o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """o (B, H, n, d_h) -> y (B, n, d): RMSNorm per head, merge heads, project."""
        Bsz, H, n, dh = o.shape
        return self.o_proj(rms_norm(o, self.o_norm_weight).transpose(1, 2).reshape(Bsz, n, H * dh))

    # --- the two parallel paths ------------------------------------------------------------------------------
    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        q, k, v, beta = self._inputs(u)
        return self._out(delta_rule_chunked(q, k, v, beta, self.chunk_size), u)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The paper's recurrence as a token loop (``delta_rule_recurrent``)."""
        q, k, v, beta = self._inputs(u)
        return self._out(delta_rule_recurrent(q, k, v, beta), u)

    # --- the recurrent form ----------------------------------------------------------------------------------
    def init_state(self, batch: int) -> dict:
        """S' (B, H, d_h, d_h) = 0 and empty convolution windows (B, 0, d) for q, k, v."""
        H, dh, d = self.num_heads, self.head_dim, self.d_model
        return {"S": zeros(self, batch, H, dh, dh), "conv_q": empty_history(self, batch, d),
                "conv_k": empty_history(self, batch, d), "conv_v": empty_history(self, batch, d), "t": 0}

    def _step_inputs(self, state, u_t):
        """Validate the step's arguments, convolve one token against the windows (``recurrent.fir_step``, keeping
        the last K-1 inputs); returns q, k, v, β (each with n = 1) and the new windows."""
        check_step(self, state, u_t)
        keep = self.conv_size - 1
        qc, bq = fir_step(state["conv_q"], self.q_proj(u_t), self.q_conv, keep)
        kc, bk = fir_step(state["conv_k"], self.k_proj(u_t), self.k_conv, keep)
        vc, bv = fir_step(state["conv_v"], self.v_proj(u_t), self.v_conv, keep)
        q, k, v, beta = self._heads(qc[:, None], kc[:, None], vc[:, None], u_t[:, None])
        return (q[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0]), {"conv_q": bq, "conv_k": bk, "conv_v": bv}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S' <- S' + β k (v - S'ᵀk)ᵀ, o = S'ᵀ q: u_t (B, d) -> y_t (B, d)."""
        (q, k, v, beta), windows = self._step_inputs(state, u_t)  # (B, H, d_h) ×3, (B, H)
        S = state["S"]
        err = v - (S * k[..., :, None]).sum(-2)  # (B, H, d_h): v - S'ᵀ k
        S = S + k[..., :, None] * (beta[..., None] * err)[..., None, :]
        o = (S * q[..., :, None]).sum(-2)  # (B, H, d_h)
        return self._out(o[:, :, None], u_t[:, None])[:, 0], {"S": S, **windows, "t": state["t"] + 1}

    # --- sizes -----------------------------------------------------------------------------------------------
    def state_size(self, seq_len: int | None = None) -> int:
        """d²/H (the state S, H heads of d_h × d_h) + 3·d·min(K-1, n) (the q, k, v convolution windows)."""
        n = self._n(seq_len)
        return self.num_heads * self.head_dim**2 + 3 * self.d_model * min(self.conv_size - 1, n)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d² (W_q, W_k, W_v, W_out) + 2dH (W_β) + the three short convolutions (``conv.causal_conv_flops``: 0 for
        K <= 8 taps, shifted adds) + H·``delta_rule_chunk_flops``/n."""
        n, d, H, K, dh = self._n(seq_len), self.d_model, self.num_heads, self.conv_size, self.head_dim
        convs = 3 * causal_conv_flops(n, K, d)
        return 8.0 * d * d + 2.0 * d * H + (convs + H * delta_rule_chunk_flops(n, self.chunk_size, dh, dh)) / n

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, num_heads={self.num_heads}, conv_size={self.conv_size}, "
                f"chunk_size={self.chunk_size}")
