"""Mamba-2: the SSD layer (Dao & Gu, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality", arXiv 2405.21060, §7 Figure 6 for the block, §6 and Listing 1 for the chunked
algorithm), in pure PyTorch, with H = E·d / P heads of width P (``headdim``) and one group (G = 1):

    z, xBC, δ = split(u W_in)                          # (B, N, E·d), (B, N, E·d + 2m), (B, N, H)
    x, B, C   = split(SiLU(short_conv(xBC) + b_conv))  # causal depthwise, k = ``d_conv`` taps, on x, B and C
    Δ         = softplus(δ + b_Δ)                      # (B, N, H): one step per head
    h_t       = exp(Δ_t A) h_{t-1} + Δ_t x_t B_tᵀ      # (H, P, m) per sequence, A = -exp(A_log) a scalar per head
    y_t       = h_t C_t + D ⊙ x_t                      # (H, P)
    out       = RMSNorm(y ⊙ SiLU(z)) W_out             # gated RMSNorm over all E·d channels, weight w

The difference from Mamba (``mamba.py``) is the scalar decay a_t = exp(Δ_t A) per head (§3.1, "scalar times
identity" A) and B, C shared by the heads: the mixing matrix M = L ∘ (C Bᵀ) of the SSM is then 1-semiseparable
with L[t, s] = exp(Σ_{r=s+1..t} Δ_r A) (eq. (16), §6), which ``ssd_chunked`` evaluates by chunks of T tokens:

    intra-chunk (diagonal blocks)  Y_diag[l] = Σ_{s<=l} (C_l·B_s) exp(c_l - c_s) Δ_s x_s   c = cumsum(Δ A) in the chunk
    chunk states (B terms)         S        = Σ_s exp(c_T - c_s) Δ_s x_s B_sᵀ              (H, P, m)
    across chunks (A terms)        h_k      = exp(c_T) h_{k-1} + S_k                       a loop over ⌈n/T⌉ chunks
    state to output (C terms)      Y_off[l] = exp(c_l) h_{k-1} C_l

Every exponent is a sum of Δ A <= 0 over a causal interval, so nothing overflows; the T×T exponents exp(c_l - c_s)
are masked to 0 above the diagonal before the exp. The exponents are cumulative-sum differences (the reference's
``segsum_unstable``), not its masked cumulative sum ``segsum``: in float64 the two agree to round-off, and in float32
the cancellation error is ~1e-7·|c|, harmless at T <= 64. ``forward_reference`` is the recurrence above, one token
at a time; ``step`` is the same recurrence for one token, carrying h and the last k-1 short-conv inputs.

Side by side with the public reference (``benchmarks/check_references_ssd_gla.py``, float64): ``ssd_chunked``
against ``ssd_minimal_discrete`` of state-spaces/mamba ``mamba_ssm/modules/ssd_minimal.py`` (commit a70e3d85e2db,
the file's last change, unchanged at snapshot e9594ce1c732), fed the same X = Δ x, A = Δ A, B, C: max relative
difference 5.8e-16 in y at our chunk T = 16 = their block, 1.7e-15 over T = 7 (not dividing n) and T = n = 64 too,
final states likewise (their function needs n divisible by the block, ours does not). Only the SSD core is compared:
the reference layer runs on Triton kernels (conv, scan, gated norm), not available on CPU.

The layer follows ``Mamba2Simple`` (``mamba_ssm/modules/mamba2_simple.py``, commit a71bb5a83bfa), its non-fused
path: in-projection order [z, x, B, C, Δ], no projection biases, conv with bias over x, B and C, D per head, gated
RMSNorm with eps 1e-5 applied after the gate (``norm_before_gate=False``), and its init: A ~ U[1, 16] per head,
Δ₀ = exp(U[log 1e-3, log 1e-1]) clamped at 1e-4 with b_Δ = softplus⁻¹(Δ₀), D = 1, norm weight 1, conv
``nn.Conv1d``'s default U(±1/√k). Dropped: groups G > 1 (G = 1 is the reference's default), ``dt_limit``,
learnable initial states, the fused kernels. A_log, b_Δ, D and the conv are plain parameters (not ``nn.Linear``), so
``LanguageModel``'s N(0, std) re-initialisation of linear layers leaves them as above. Defaults m = 64 (the
reference's ``d_state``), k = 4, E = 2, P = the largest divisor of E·d that is <= 64, chunk T = 64.
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

__all__ = ["Mamba2", "ssd_chunked"]


def ssd_chunked(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
                chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSD scan by chunks (module docstring): y_t = h_t C_t, h_t = exp(Δ_t A) h_{t-1} + Δ_t x_t B_tᵀ, h_{-1} = 0.

    x: (B, n, H, P); dt = Δ: (B, n, H); A: (H,) (<= 0); Bm, Cm: (B, n, m) (shared by the heads).
    Returns y (B, n, H, P) and the final state h_{n-1} (B, H, P, m). Any n: the last chunk is zero-padded
    (padded positions come after every real one and have Δ A = 0, x = 0)."""
    Bsz, n, H, P = x.shape
    m = Bm.shape[-1]
    T = min(chunk_size, n)
    nc = -(-n // T)
    pad = nc * T - n
    a = F.pad(dt * A, (0, 0, 0, pad)).view(Bsz, nc, T, H).permute(0, 1, 3, 2)  # (B, nc, H, T): Δ A
    X = F.pad(x * dt[..., None], (0, 0, 0, 0, 0, pad)).view(Bsz, nc, T, H, P).permute(0, 1, 3, 2, 4)  # (B, nc, H, T, P)
    Bc = F.pad(Bm, (0, 0, 0, pad)).view(Bsz, nc, T, m)  # (B, nc, T, m)
    Cc = F.pad(Cm, (0, 0, 0, pad)).view(Bsz, nc, T, m)  # (B, nc, T, m)
    c = a.cumsum(-1)  # (B, nc, H, T): c_l = Σ_{r<=l} Δ_r A within the chunk
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    L = torch.exp((c[..., :, None] - c[..., None, :]).masked_fill(~causal, -math.inf))  # (B, nc, H, T, T)
    G = Cc @ Bc.transpose(-1, -2)  # (B, nc, T, T): C_l·B_s
    Y = (G[:, :, None] * L) @ X  # (B, nc, H, T, P): diagonal blocks
    w = torch.exp(c[..., -1:] - c)  # (B, nc, H, T): decay from s to the chunk's end
    S = (X * w[..., None]).transpose(-1, -2) @ Bc[:, :, None]  # (B, nc, H, P, m): each chunk's own state
    decay = torch.exp(c[..., -1])  # (B, nc, H): the whole chunk's decay
    h = x.new_zeros(Bsz, H, P, m)
    before = []
    for k in range(nc):  # h_k = exp(c_T) h_{k-1} + S_k
        before.append(h)
        h = decay[:, k, :, None, None] * h + S[:, k]
    Hprev = torch.stack(before, dim=1)  # (B, nc, H, P, m): the state entering each chunk
    Cq = Cc[:, :, None] * torch.exp(c)[..., None]  # (B, nc, H, T, m)
    Y = Y + Cq @ Hprev.transpose(-1, -2)  # (B, nc, H, T, P): off-diagonal blocks
    return Y.permute(0, 1, 3, 2, 4).reshape(Bsz, nc * T, H, P)[:, :n], h


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(p for p in range(1, min(n, cap) + 1) if n % p == 0)


class Mamba2(Mixer):
    """``Mamba2(d_model, seq_len, d_state=64, d_conv=4, expand=2, headdim=None, chunk_size=64)``."""

    def __init__(self, d_model: int, seq_len: int, d_state: int = 64, d_conv: int = 4, expand: int = 2,
                 headdim: int | None = None, chunk_size: int = 64):
        super().__init__(d_model, seq_len)
        for name, value, hi in (("d_state", d_state, None), ("d_conv", d_conv, 8), ("expand", expand, None),
                                ("chunk_size", chunk_size, None)):
            if not (is_int(value) and value >= 1 and (hi is None or value <= hi)):
                raise ValueError(f"{name}={value!r}: must be an integer >= 1" + (f" and <= {hi}" if hi else ""))
        Ed = int(expand) * self.d_model
        if headdim is None:
            headdim = _largest_divisor_at_most(Ed, 64)
        if not (is_int(headdim) and headdim >= 1 and Ed % headdim == 0):
            raise ValueError(f"headdim={headdim!r}: must be None or an integer >= 1 dividing expand·d_model={Ed}")
        d, m, k, P = self.d_model, int(d_state), int(d_conv), int(headdim)
        H = Ed // P
        self.d_state, self.d_conv, self.expand, self.headdim = m, k, int(expand), P
        self.chunk_size, self.d_inner, self.nheads = int(chunk_size), Ed, H
        self.eps = 1e-5
        self.in_proj = nn.Linear(d, 2 * Ed + 2 * m + H, bias=False)  # [z, x, B, C, δ]
        Cx = Ed + 2 * m  # conv channels: x, B, C
        bound = 1 / math.sqrt(k)
        self.conv_weight = nn.Parameter(torch.empty(k, Cx).uniform_(-bound, bound))  # (k, Cx): tap j multiplies lag j
        self.conv_bias = nn.Parameter(torch.empty(Cx).uniform_(-bound, bound))  # (Cx,)
        dt0 = torch.exp(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1))).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt0 + torch.log(-torch.expm1(-dt0)))  # (H,) softplus⁻¹(Δ₀)
        self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))  # (H,)
        self.D = nn.Parameter(torch.ones(H))  # (H,)
        self.norm_weight = nn.Parameter(torch.ones(Ed))  # (Ed,)
        self.out_proj = nn.Linear(Ed, d, bias=False)

    def _split(self, zxbcdt):
        """(…, 2Ed + 2m + H) -> z (…, Ed), xBC (…, Ed + 2m), δ (…, H)."""
        Ed, m = self.d_inner, self.d_state
        return zxbcdt.split([Ed, Ed + 2 * m, self.nheads], dim=-1)

    def _after_conv(self, xBC, delta):
        """SiLU(conv + bias) split into x (…, H, P), B, C (…, m), and Δ = softplus(δ + b_Δ) (…, H)."""
        x, Bm, Cm = F.silu(xBC + self.conv_bias).split([self.d_inner, self.d_state, self.d_state], dim=-1)
        return x.unflatten(-1, (self.nheads, self.headdim)), Bm, Cm, F.softplus(delta + self.dt_bias)

    def _output(self, y, x, z):
        """y (…, H, P) SSM output -> W_out RMSNorm((y + D x) ⊙ SiLU(z)) (…, d)."""
        y = ((y + self.D[:, None] * x).flatten(-2) * F.silu(z))  # (…, Ed)
        y = y * torch.rsqrt(y.square().mean(-1, keepdim=True) + self.eps) * self.norm_weight
        return self.out_proj(y)

    def _inputs(self, u, conv):
        z, xBC, delta = self._split(self.in_proj(u))
        x, Bm, Cm, dt = self._after_conv(conv(xBC, self.conv_weight), delta)
        return z, x, Bm, Cm, dt

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        z, x, Bm, Cm, dt = self._inputs(u, causal_conv)
        y, _ = ssd_chunked(x, dt, -torch.exp(self.A_log), Bm, Cm, self.chunk_size)
        return self._output(y, x, z)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The recurrence one token at a time under autograd, the short conv as an explicit sum of shifts."""
        z, x, Bm, Cm, dt = self._inputs(u, causal_conv_direct)
        A = -torch.exp(self.A_log)  # (H,)
        h = u.new_zeros(u.shape[0], self.nheads, self.headdim, self.d_state)  # (B, H, P, m)
        ys = []
        for t in range(u.shape[1]):
            a = torch.exp(dt[:, t] * A)[:, :, None, None]  # (B, H, 1, 1)
            h = a * h + (dt[:, t, :, None] * x[:, t])[..., None] * Bm[:, t, None, None, :]
            ys.append((h * Cm[:, t, None, None, :]).sum(-1))  # (B, H, P)
        return self._output(torch.stack(ys, dim=1), x, z)

    # --- recurrent form ----------------------------------------------------------------------------------
    def init_state(self, batch: int) -> dict:
        """h = 0 (B, H, P, m) and an empty window of past conv inputs (B, 0, E·d + 2m)."""
        return {"ssm": zeros(self, batch, self.nheads, self.headdim, self.d_state),
                "conv": empty_history(self, batch, self.d_inner + 2 * self.d_state), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One token u_t (B, d) -> (y_t (B, d), state'): the conv over the window [last k-1 inputs, this one],
        then h ← exp(Δ A) h + Δ x Bᵀ; the window keeps the last k-1 conv inputs (all the next token needs)."""
        t = check_step(self, state, u_t)
        z, xBC, delta = self._split(self.in_proj(u_t))
        conv, keep = fir_step(state["conv"], xBC, self.conv_weight, self.d_conv - 1)  # (B, Cx), last k-1 inputs
        x, Bm, Cm, dt = self._after_conv(conv, delta)  # (B, H, P), (B, m), (B, m), (B, H)
        h = state["ssm"]
        a = torch.exp(dt * -torch.exp(self.A_log))[:, :, None, None]  # (B, H, 1, 1)
        h = a * h + (dt[..., None] * x)[..., None] * Bm[:, None, None, :]
        y = self._output((h * Cm[:, None, None, :]).sum(-1), x, z)
        return y, {"ssm": h, "conv": keep, "t": t + 1}

    def state_size(self, seq_len: int | None = None) -> int:
        """h: H·P·m = E·d·m, plus the last min(k-1, n) conv inputs, (E·d + 2m) each. (The reference's inference
        cache keeps k inputs; the oldest is dropped before it is used, so k-1 is what the recurrence needs.)"""
        n = self._n(seq_len)
        return self.d_inner * self.d_state + (self.d_inner + 2 * self.d_state) * min(self.d_conv - 1, n)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2d(2Ed + 2m + H) (W_in) + 2Ed·d (W_out) + per sequence, with T = min(chunk_size, n) and ⌈n/T⌉ chunks
        of T (the last padded), per chunk: 2T²m (C Bᵀ) + 2T²·Ed (diagonal blocks times Δx) + 2T·Ed·m (chunk
        states) + 2T·Ed·m (reading the entering state). The conv (k <= 8 shifted adds), decays, gates and norm
        are elementwise (not counted)."""
        n, d, Ed, m, H = self._n(seq_len), self.d_model, self.d_inner, self.d_state, self.nheads
        T = min(self.chunk_size, n)
        nc = -(-n // T)
        return 2.0 * d * (2 * Ed + 2 * m + H) + 2.0 * Ed * d + nc * (2 * T * T * (m + Ed) + 4 * T * Ed * m) / n

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, expand={self.expand}, "
                f"headdim={self.headdim}, chunk_size={self.chunk_size}")
