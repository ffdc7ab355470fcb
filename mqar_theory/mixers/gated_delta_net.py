"""Gated DeltaNet (Yang, Kautz, Hatamizadeh, "Gated Delta Networks: Improving Mamba2 with Delta Rule", arXiv
2412.06464, §3.2 eq. 10): the delta rule with a data-dependent scalar decay α_t ∈ (0, 1] per head,

    S_t = S_{t-1} (α_t (I - β_t k_t k_tᵀ)) + β_t v_t k_tᵀ        (d_h × d_h per head),   o_t = S_t q_t.

Layer: DeltaNet's (``delta_net.py``: silu short convolutions on q, k, v, L2-normalised q and k, q scaled by d_h^{-1/2},
β = sigmoid(u W_β)) plus, as fla-org/flash-linear-attention ``fla/layers/gated_deltanet.py`` and
``fla/ops/gated_delta_rule/gate.py`` (commit bc3b101dcb713ddc5bd8924b66754eb68b5ccf89) do,

    log α_t = g_t = -exp(A_log) · softplus(u W_a + dt_bias)       (B, N, H)  (Mamba-2's Δ-parametrisation)
    y = [RMSNorm_w(o_t) ⊙ silu(u W_g)] W_out      (the gated output norm, ``use_gate=True``; RMSNorm_w(o_t) if False)

with A_log initialised to log U(0, 16) and dt_bias to softplus⁻¹(dt), dt log-uniform in [1e-3, 0.1] (floored at 1e-4),
as the reference layer. Deviation: the reference's value heads are ``expand_v = 2`` times wider than its key heads
(``head_dim`` 256); here keys and values share d_h = d/H, as in DeltaNet, so the state is the same d²/H.

``forward`` (``gated_delta_rule_chunked``) extends DeltaNet's UT form with the decay. In the transposed convention
S' = Sᵀ the rule is S'_t = α_t S'_{t-1} + k_t u_tᵀ, u_t = β_t (v_t - α_t S'_{t-1}ᵀ k_t). Inside a chunk starting
from S'_0, with γ_i = Σ_{s<=i} g_s (chunk-local) and Γ_i = e^{γ_i},
α_i S'_{i-1} = Γ_i S'_0 + Σ_{j<i} e^{γ_i - γ_j} k_j u_jᵀ, so

    (I + A) U = diag(β) V - diag(βΓ) K S'_0,   A_ij = β_i e^{γ_i - γ_j} k_i·k_j (j < i);
    W = (I + A)⁻¹ diag(βΓ) K,  U⁰ = (I + A)⁻¹ diag(β) V,  U = U⁰ - W S'_0,
    O = diag(Γ) Q S'_0 + (Q Kᵀ ⊙ L) U,  L_ij = e^{γ_i - γ_j} (j <= i),   S'_T = Γ_T S'_0 + (K ⊙ e^{γ_T - γ})ᵀ U.

Every exponent is <= 0 (g <= 0; the upper triangle is masked before the exp), so nothing overflows. At α = 1 it is
DeltaNet's kernel (tested). ``forward_reference`` is the paper's eq. 10 as a token loop, ``step`` one token of the
transposed form. State and FLOPs are DeltaNet's (the decay and gate are elementwise, not counted), plus 2d² + 2dH
FLOPs per token for W_g, W_a.

Reference check (``benchmarks/check_references.py --fla``): on identical q, k, v, β, g in float64 (B=2, H=2, n=100,
d_h=16), ``gated_delta_rule_chunked`` against ``naive_recurrent_gated_delta_rule`` and ``naive_chunk_gated_delta_rule``
(chunk 32) of ``fla/ops/gated_delta_rule/naive.py`` at commit bc3b101dcb713ddc5bd8924b66754eb68b5ccf89 (that file
exists at this commit, though the issue expected none; both functions cast to float32 internally): max relative
difference 1.4e-7 / 1.4e-7 as is, 7.3e-16 / 9.6e-16 with the float32 casts turned into float64 at import time
(4.5e-16 on the q, k, v, β, g of a GatedDeltaNet layer, n = 100). The paper (eq. 10) and the reference agree: the
reference decays the state before the delta correction (h ← α h, then v - hᵀk), which is
α_t S_{t-1} (I - β k kᵀ) + β v kᵀ.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .delta_net import DeltaNet, _chunks, rms_norm

__all__ = ["GatedDeltaNet", "gated_delta_rule_chunked", "gated_delta_rule_recurrent"]


def gated_delta_rule_chunked(q, k, v, beta, g, chunk_size: int = 64) -> torch.Tensor:
    """o_t = S'_tᵀ q_t under S'_t = α_t S'_{t-1} + β_t k_t (v_t - α_t S'_{t-1}ᵀ k_t)ᵀ, α_t = e^{g_t}, S'_0 = 0.

    q, k (B, H, n, d_k), v (B, H, n, d_v), beta, g (B, H, n) with g <= 0 -> o (B, H, n, d_v), chunked (module doc)."""
    Bsz, H, n, dk = q.shape
    dv = v.shape[-1]
    T = min(chunk_size, n)
    C = -(-n // T)
    q, k, v, beta, g = (_chunks(x, T, C) for x in (q, k, v, beta, g))  # (B, H, C, T, ·), beta, g (B, H, C, T)
    gam = g.cumsum(-1)  # (B, H, C, T): γ_i
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    L = (gam[..., :, None] - gam[..., None, :]).masked_fill(~causal, -math.inf).exp()  # (B, H, C, T, T)
    kb = k * beta[..., None]  # (B, H, C, T, d_k)
    A = ((kb @ k.transpose(-1, -2)) * L).tril(-1)  # (B, H, C, T, T)
    eye = torch.eye(T, dtype=q.dtype, device=q.device)
    rhs = torch.cat([kb * gam.exp()[..., None], v * beta[..., None]], dim=-1)  # (B, H, C, T, d_k + d_v)
    WU = torch.linalg.solve_triangular(A + eye, rhs, upper=False, unitriangular=True)
    W, U0 = WU[..., :dk], WU[..., dk:]
    P = (q @ k.transpose(-1, -2)) * L  # (B, H, C, T, T), zero above the diagonal
    qg = q * gam.exp()[..., None]  # (B, H, C, T, d_k): Γ_i q_i
    kg = k * (gam[..., -1:] - gam).exp()[..., None]  # (B, H, C, T, d_k): e^{γ_T - γ_j} k_j
    S = q.new_zeros(Bsz, H, dk, dv)
    outs = []
    for c in range(C):
        U = U0[:, :, c] - W[:, :, c] @ S  # (B, H, T, d_v)
        outs.append(qg[:, :, c] @ S + P[:, :, c] @ U)
        if c < C - 1:
            S = gam[:, :, c, -1, None, None].exp() * S + kg[:, :, c].transpose(-1, -2) @ U
    return torch.stack(outs, dim=2).reshape(Bsz, H, C * T, dv)[:, :, :n]


def gated_delta_rule_recurrent(q, k, v, beta, g) -> torch.Tensor:
    """The paper's eq. 10 as a token loop: S_t = S_{t-1}(α_t(I - β_t k_t k_tᵀ)) + β_t v_t k_tᵀ, o_t = S_t q_t."""
    Bsz, H, n, dk = q.shape
    eye = torch.eye(dk, dtype=q.dtype, device=q.device)
    S = q.new_zeros(Bsz, H, v.shape[-1], dk)
    outs = []
    for t in range(n):
        kt, bt, at = k[:, :, t], beta[:, :, t, None, None], g[:, :, t, None, None].exp()
        S = S @ (at * (eye - bt * kt[..., :, None] * kt[..., None, :])) + bt * v[:, :, t, :, None] * kt[..., None, :]
        outs.append((S @ q[:, :, t, :, None])[..., 0])
    return torch.stack(outs, dim=2)


class GatedDeltaNet(DeltaNet):
    """``GatedDeltaNet(d_model, seq_len, num_heads=1, conv_size=4, chunk_size=64, use_gate=True)`` (module doc)."""

    def __init__(self, d_model: int, seq_len: int, num_heads: int = 1, conv_size: int = 4, chunk_size: int = 64,
                 use_gate: bool = True):
        super().__init__(d_model, seq_len, num_heads=num_heads, conv_size=conv_size, chunk_size=chunk_size)
        if not isinstance(use_gate, bool):
            raise ValueError(f"use_gate={use_gate!r}: must be True or False")
        d, H = self.d_model, self.num_heads
        self.use_gate = use_gate
        self.a_proj = nn.Linear(d, H, bias=False)
        self.A_log = nn.Parameter(torch.empty(H).uniform_(0, 16).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        self.g_proj = nn.Linear(d, d, bias=False) if use_gate else None

    def _decay(self, u: torch.Tensor) -> torch.Tensor:
        """g = log α = -exp(A_log) softplus(u W_a + dt_bias): (B, n, d) -> (B, H, n), <= 0."""
        return (-self.A_log.exp() * F.softplus(self.a_proj(u) + self.dt_bias)).transpose(1, 2)

    def _out(self, o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """o (B, H, n, d_h) -> y (B, n, d): RMSNorm per head, times silu(u W_g) if gated, merge heads, project."""
        Bsz, H, n, dh = o.shape
        o = rms_norm(o, self.o_norm_weight)
        if self.use_gate:
            o = o * F.silu(self.g_proj(u).view(Bsz, n, H, dh).transpose(1, 2))
        return self.o_proj(o.transpose(1, 2).reshape(Bsz, n, H * dh))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        q, k, v, beta = self._inputs(u)
        return self._out(gated_delta_rule_chunked(q, k, v, beta, self._decay(u), self.chunk_size), u)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The paper's eq. 10 as a token loop (``gated_delta_rule_recurrent``)."""
        q, k, v, beta = self._inputs(u)
        return self._out(gated_delta_rule_recurrent(q, k, v, beta, self._decay(u)), u)

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S' <- α S'; S' <- S' + β k (v - S'ᵀk)ᵀ; o = S'ᵀ q: u_t (B, d) -> y_t (B, d)."""
        (q, k, v, beta), windows = self._step_inputs(state, u_t)  # (B, H, d_h) ×3, (B, H)
        S = self._decay(u_t[:, None])[:, :, 0, None, None].exp() * state["S"]  # (B, H, d_h, d_h)
        err = v - (S * k[..., :, None]).sum(-2)
        S = S + k[..., :, None] * (beta[..., None] * err)[..., None, :]
        o = (S * q[..., :, None]).sum(-2)  # (B, H, d_h)
        return self._out(o[:, :, None], u_t[:, None])[:, 0], {"S": S, **windows, "t": state["t"] + 1}

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """DeltaNet's + 2dH (W_a) + 2d² (W_g, if gated)."""
        d, H = self.d_model, self.num_heads
        return super().flops_per_token(seq_len) + 2.0 * d * H + (2.0 * d * d if self.use_gate else 0.0)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", use_gate={self.use_gate}"
