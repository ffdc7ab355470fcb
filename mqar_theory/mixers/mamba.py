"""Mamba's selective SSM block (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State
Spaces", arXiv 2312.00752, §3.2 Algorithm 2, §3.4 Figure 3), in pure PyTorch:

    x, z   = split(u W_in)                                  # (B, N, E·d) each, E = ``expand``
    x      = SiLU(short_conv(x) + b_conv)                   # causal depthwise, k = ``d_conv`` taps
    δ, B, C = split(x W_x)                                  # (B, N, r), (B, N, m), (B, N, m)
    Δ      = softplus(δ W_Δ + b_Δ)                          # (B, N, E·d): input-dependent step
    h_t    = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t ⊙ x_t) B_tᵀ        # (E·d, m) per sequence, A = -exp(A_log)
    y_t    = h_t C_t + D ⊙ x_t
    out    = (y ⊙ SiLU(z)) W_out

with the discretisation of the paper (zero-order hold for A, Euler Δ·B for B; §2 and its code).
``forward_reference`` is the sequential scan (one step per position) under autograd. ``forward`` runs the
same recurrence through ``selective_scan``, a ``torch.autograd.Function`` with a hand-written backward:

    forward   h_t = a_t ⊙ h_{t-1} + b_t,   y_t = h_t C_t            a_t = exp(Δ_t A), b_t = (Δ_t ⊙ x_t) B_tᵀ
    backward  g_t = gy_t C_tᵀ + a_{t+1} ⊙ g_{t+1}                   g_t = ∂L/∂h_t (a reverse scan)
              ∂L/∂C_t = h_tᵀ gy_t,  ∂L/∂(Δ⊙x)_t = g_t B_t,  ∂L/∂B_t = g_tᵀ (Δ_t ⊙ x_t)
              q_t = g_t ⊙ a_t ⊙ h_{t-1}  (∂L/∂(Δ_t A)),  ∂L/∂Δ_t = Σ_m q_t ⊙ A,  ∂L/∂A = Σ_{b,t} q_t ⊙ Δ_t

Every step works on one (B, m, E·d) state, which stays in cache; only the states h_t go to memory (saved
for the backward), and a_t is recomputed there. Every factor a_t = exp(Δ_t A) is the exp of a number <= 0,
so nothing overflows. The state is laid out (m, E·d) so that the contractions over m are batched
vector-matrix products (``bmm``, counted as dense FLOPs), those over E·d are ``vecdot``.

Decision (measured, CPU, 1 thread, scan forward+backward alone, B=64): the sequential loop beats every
parallel form for Mamba's per-(channel, state) decays. The chunked "state-space duality" form (Mamba-2,
arXiv 2405.21060, §6) needs the T×T decay table exp(L_t - L_s), L = cumulative Σ Δ A, for every (channel,
state) pair, since A is not a scalar per head here: T times the elementwise work of the loop, not a matrix
product (8-20x slower than the reference at T = 4-8); a Hillis-Steele doubling scan does ~log₂ T times
the work (3-5x slower than the reference). The autograd loop of ``forward_reference`` saves several
(B, N, E·d, m) tensors and runs ~6 autograd nodes per step; ``selective_scan`` saves one and runs none:
2.2-5x faster than the reference on the scan alone. Training throughput of a 4-layer ``LanguageModel`` (CPU,
1 thread; ``benchmarks/train_throughput.py --mixers mamba --n-layers 4``), relative to the reference / to
the former doubling scan: d=64, N=128, B=16: 1.8x / 4.9x; d=32, N=32, B=64: 1.7x / 4.0x; d=64, N=64,
B=64: 2.4x / 10.5x; d=128, N=128, B=64: 2.3x / 23x. On an accelerator the loop of N small steps is
launch-bound (the paper's fused kernel avoids it; we have none).
Memory: the states (B, N, m, E·d) are materialised once (the fused kernel recomputes them instead).

Init as the paper's code: A_log = log(1..m) per channel (S4D-real), D = 1, b_Δ = softplus⁻¹(Δ₀) with
Δ₀ = exp(U[log 1e-3, log 1e-1]), W_Δ ~ U(±r^{-1/2}), conv ``nn.Conv1d``'s default U(±1/√k); W_in, W_x,
W_out are ``nn.Linear`` without bias. W_Δ and b_Δ are plain parameters (not ``nn.Linear``) so that
``LanguageModel``'s N(0, std) re-initialisation of linear layers leaves the step init intact.
Defaults m = 16, k = 4, E = 2, r = ⌈d/16⌉ (the paper's).
Under ``LanguageModel(recipe="official")`` the block around this mixer is the official ``MambaBlock``
(HazyResearch/zoology, ``zoology/mixers/mamba.py``): RMSNorm, no dropout, W_in and W_x keeping ``nn.Linear``'s
default init and W_out re-drawn kaiming-uniform / √n_layers (``mqar_theory.model``, item 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int
from .base import Mixer
from .conv import causal_conv, causal_conv_direct
from .recurrent import check_step, empty_history, fir_step, zeros

__all__ = ["Mamba", "selective_scan"]


class _SelectiveScan(torch.autograd.Function):
    """y_t = h_t C_t with h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t ⊙ x_t) B_tᵀ; the backward of the module docstring.
    Internally time-major, state (B, m, E·d) with E·d contiguous."""

    @staticmethod
    def forward(ctx, dt, A, bx, Bm, Cm):  # (B, n, Ed), (Ed, m), (B, n, Ed), (B, n, m), (B, n, m)
        Bsz, n = dt.shape[:2]
        Ed, m = A.shape
        At = A.t().contiguous()  # (m, Ed)
        dt, bx, Bm, Cm = (t.transpose(0, 1).contiguous() for t in (dt, bx, Bm, Cm))  # (n, B, ·)
        H = dt.new_empty(n, Bsz, m, Ed)  # h_t for every t
        y = dt.new_empty(n, Bsz, 1, Ed)
        for t in range(n):
            if t == 0:  # h_{-1} = 0
                torch.mul(Bm[0, :, :, None], bx[0, :, None, :], out=H[0])
            else:
                torch.mul(torch.exp(dt[t, :, None, :] * At), H[t - 1], out=H[t])  # a_t ⊙ h_{t-1}
                H[t].addcmul_(Bm[t, :, :, None], bx[t, :, None, :])  # + b_t
            torch.bmm(Cm[t, :, None, :], H[t], out=y[t])  # (B, 1, Ed): h_t C_t
        ctx.save_for_backward(dt, At, bx, Bm, Cm, H)
        return y[:, :, 0].transpose(0, 1)  # (B, n, Ed)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):  # (B, n, Ed)
        dt, At, bx, Bm, Cm, H = ctx.saved_tensors
        gy = gy.transpose(0, 1).contiguous()  # (n, B, Ed)
        g_dt, g_bx, g_B, g_C = torch.zeros_like(dt), torch.empty_like(bx), torch.empty_like(Bm), torch.empty_like(Cm)
        g_At = torch.zeros_like(At)  # (m, Ed)
        g = torch.zeros_like(H[0])  # (B, m, Ed): ∂L/∂h_t, carried backwards
        for t in range(H.shape[0] - 1, -1, -1):
            g.addcmul_(Cm[t, :, :, None], gy[t, :, None, :])  # + gy_t C_tᵀ
            g_C[t] = torch.linalg.vecdot(H[t], gy[t, :, None, :])  # (B, m)
            torch.bmm(Bm[t, :, None, :], g, out=g_bx[t, :, None, :])  # (B, 1, Ed)
            g_B[t] = torch.linalg.vecdot(g, bx[t, :, None, :])  # (B, m)
            if t > 0:
                g.mul_(torch.exp(dt[t, :, None, :] * At))  # a_t ⊙ g_t: the carry into h_{t-1}
                q = g * H[t - 1]  # (B, m, Ed): ∂L/∂(Δ_t A)
                g_dt[t] = (q * At).sum(1)
                g_At.add_((q * dt[t, :, None, :]).sum(0))
        return g_dt.transpose(0, 1), g_At.t(), g_bx.transpose(0, 1), g_B.transpose(0, 1), g_C.transpose(0, 1)


def selective_scan(dt: torch.Tensor, A: torch.Tensor, bx: torch.Tensor, Bm: torch.Tensor,
                   Cm: torch.Tensor) -> torch.Tensor:
    """y_t = Σ_m h_t[:, m] C_t[m] of the recurrence h_t = exp(Δ_t A) ⊙ h_{t-1} + bx_t B_tᵀ (h_{-1} = 0), with
    a hand-written backward. dt = Δ, bx = Δ ⊙ x: (B, n, Ed); A: (Ed, m); Bm, Cm: (B, n, m) -> (B, n, Ed)."""
    return _SelectiveScan.apply(dt, A, bx, Bm, Cm)


class Mamba(Mixer):
    """``Mamba(d_model, seq_len, d_state=16, d_conv=4, expand=2, dt_rank=None)``."""

    def __init__(self, d_model: int, seq_len: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None):
        super().__init__(d_model, seq_len)
        for name, value, hi in (("d_state", d_state, None), ("d_conv", d_conv, 8), ("expand", expand, None)):
            if not (is_int(value) and value >= 1 and (hi is None or value <= hi)):
                raise ValueError(f"{name}={value!r}: must be an integer >= 1" + (f" and <= {hi}" if hi else ""))
        if dt_rank is None:
            dt_rank = math.ceil(self.d_model / 16)
        if not (is_int(dt_rank) and dt_rank >= 1):
            raise ValueError(f"dt_rank={dt_rank!r}: must be None (⌈d/16⌉) or an integer >= 1")
        d, m, k, r = self.d_model, int(d_state), int(d_conv), int(dt_rank)
        Ed = int(expand) * d
        self.d_state, self.d_conv, self.expand, self.dt_rank = m, k, int(expand), r
        self.d_inner = Ed
        self.in_proj = nn.Linear(d, 2 * Ed, bias=False)
        self.conv_weight = nn.Parameter(torch.empty(k, Ed).uniform_(-1 / math.sqrt(k), 1 / math.sqrt(k)))  # (k, Ed)
        self.conv_bias = nn.Parameter(torch.empty(Ed).uniform_(-1 / math.sqrt(k), 1 / math.sqrt(k)))  # (Ed,)
        self.x_proj = nn.Linear(Ed, r + 2 * m, bias=False)
        self.dt_weight = nn.Parameter(torch.empty(r, Ed).uniform_(-(r**-0.5), r**-0.5))  # (r, Ed) W_Δ
        dt0 = torch.exp(torch.empty(Ed).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt0 + torch.log(-torch.expm1(-dt0)))  # (Ed,) softplus⁻¹(Δ₀)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, m + 1, dtype=torch.float64)).repeat(Ed, 1)
                                  .to(torch.get_default_dtype()))  # (Ed, m)
        self.D = nn.Parameter(torch.ones(Ed))  # (Ed,)
        self.out_proj = nn.Linear(Ed, d, bias=False)

    def _inputs(self, u, conv):
        """x, z, Δ, B, C of the block (before the scan)."""
        Ed, r, m = self.d_inner, self.dt_rank, self.d_state
        x, z = self.in_proj(u).split(Ed, dim=-1)  # (B, n, Ed) each
        x = F.silu(conv(x, self.conv_weight) + self.conv_bias)
        delta, Bm, Cm = self.x_proj(x).split([r, m, m], dim=-1)  # (B, n, r), (B, n, m), (B, n, m)
        dt = F.softplus(delta @ self.dt_weight + self.dt_bias)  # (B, n, Ed)
        return x, z, dt, Bm, Cm

    def _output(self, y, x, z):  # y = h_t C_t: (B, n, Ed)
        return self.out_proj((y + self.D * x) * F.silu(z))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        x, z, dt, Bm, Cm = self._inputs(u, causal_conv)
        return self._output(selective_scan(dt, -torch.exp(self.A_log), dt * x, Bm, Cm), x, z)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The sequential scan under autograd, one position at a time, with the short conv as an explicit sum."""
        x, z, dt, Bm, Cm = self._inputs(u, causal_conv_direct)
        A = -torch.exp(self.A_log)
        h = torch.zeros(u.shape[0], self.d_inner, self.d_state, dtype=u.dtype, device=u.device)
        hs = []
        for t in range(u.shape[1]):
            h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * x[:, t])[:, :, None] * Bm[:, t, None, :]
            hs.append(h)
        return self._output(torch.einsum("bnem,bnm->bne", torch.stack(hs, dim=1), Cm), x, z)

    def state_size(self, seq_len: int | None = None) -> int:
        """What ``step`` carries: the SSM state E·d·m plus the short conv's last min(k - 1, n) inputs
        E·d·min(k - 1, n) (its next output reads its own input and the k - 1 before it). (Formerly declared
        E·d·(m + min(k, n)): one conv input more than the next step reads.)"""
        n = self._n(seq_len)
        return self.d_inner * (self.d_state + min(self.d_conv - 1, n))

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2·d·2Ed (W_in) + 2·Ed·(r+2m) (W_x) + 2·r·Ed (W_Δ) + 2·Ed·m (h_t C_t: one ``bmm`` per step
        in ``selective_scan``) + 2·Ed·d (W_out) = 6·Ed·d + 4·Ed·r + 6·Ed·m. The state updates (exp, products
        with a_t, outer products b_t) and the k-tap conv are elementwise (not counted)."""
        self._n(seq_len)
        Ed, d, r, m = self.d_inner, self.d_model, self.dt_rank, self.d_state
        return 6.0 * Ed * d + 4.0 * Ed * r + 6.0 * Ed * m

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, expand={self.expand}, "
                f"dt_rank={self.dt_rank}")

    # --- recurrent form: the SSM state and the short conv's history ------------------------------------
    def init_state(self, batch: int) -> dict:
        """h = 0 (B, E·d, m), no past conv inputs (B, 0, E·d); t = 0."""
        return {"h": zeros(self, batch, self.d_inner, self.d_state),
                "conv": empty_history(self, batch, self.d_inner), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Algorithm 2 at one position: x_t = SiLU(conv(x)_t + b_conv), h_t = exp(Δ_t A) ⊙ h_{t-1} +
        (Δ_t ⊙ x_t) B_tᵀ, out_t = (h_t C_t + D ⊙ x_t) ⊙ SiLU(z_t) W_out."""
        t = check_step(self, state, u_t)
        Ed, r, m = self.d_inner, self.dt_rank, self.d_state
        x, z = self.in_proj(u_t).split(Ed, dim=-1)  # (B, Ed) each
        xc, conv = fir_step(state["conv"], x, self.conv_weight, self.d_conv - 1)
        x = F.silu(xc + self.conv_bias)
        delta, Bm, Cm = self.x_proj(x).split([r, m, m], dim=-1)  # (B, r), (B, m), (B, m)
        dt = F.softplus(delta @ self.dt_weight + self.dt_bias)  # (B, Ed)
        h = torch.exp(dt[:, :, None] * -torch.exp(self.A_log)) * state["h"] + (dt * x)[:, :, None] * Bm[:, None, :]
        y = (h @ Cm[:, :, None])[:, :, 0]  # (B, Ed): h_t C_t
        return self._output(y, x, z), {"h": h, "conv": conv, "t": t + 1}
