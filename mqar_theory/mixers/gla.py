"""Gated Linear Attention (Yang, Wang, Shen, Panda & Kim, "Gated Linear Attention Transformers with
Hardware-Efficient Training", arXiv 2312.06635; §3 eq. for S_t, §4.4 for the layer), in pure PyTorch, H heads
of key width K = D_k/H and value width V = D_v/H:

    q, k = u W_q, u W_k  (B, N, D_k),    v, g = u W_v, u W_g  (B, N, D_v)
    log α = logsigmoid(u W_α1 W_α2 + b_α) / τ          # (B, N, D_k): low-rank gate (rank r), τ = 16
    S_t   = diag(α_t) S_{t-1} + k_t v_tᵀ               # (H, K, V) per sequence: data-dependent diagonal decay
    o_t   = (q_t / √K)ᵀ S_t                            # (H, V)
    out   = (RMSNorm_V(o) ⊙ w ⊙ SiLU(g)) W_out         # per-head RMSNorm (weight w of V shared by the heads)

``gla_chunked`` evaluates the recurrence by chunks of T tokens (the paper's chunk-wise form, §4.2), with
b_l = Σ_{r<=l} log α_r the cumulative log decay inside the chunk (a vector of K per head):

    intra-chunk   o_l += Σ_{s<=l} (Σ_κ q_lκ k_sκ exp(b_lκ - b_sκ)) v_s       the T×T×K decays, masked to s <= l
    chunk state   S   = Σ_s (k_s ⊙ exp(b_T - b_s)) v_sᵀ                      (H, K, V)
    across chunks S_c = diag(exp(b_T)) S_{c-1} + S                           a loop over the ⌈n/T⌉ chunks
    inter-chunk   o_l += (q_l ⊙ exp(b_l)) S_{c-1}

Every exponent is a sum of log α <= 0 over a causal interval, so nothing overflows whatever the gates: the
intra-chunk scores keep the pairwise decays exp(b_l - b_s) as a (T, T, K) tensor instead of splitting them as
q ⊙ exp(b) and k ⊙ exp(-b) (which overflows once a chunk decays by more than e^88 in float32). This is the role
of the paper's secondary chunking in log space (§4.2), at the cost of T·D_k numbers per token, so T defaults to
16. Those T²K products per chunk and head are elementwise (a product and a sum over K, faster on CPU than a batch
of tiny matrix products), so the FLOP convention of ``mqar_theory.flops`` does not count them: 2T·K per token
and head, a few per cent of the layer at the defaults. ``forward_reference`` is the recurrence one token at a
time; ``step`` the same for one token.

Side by side with the public reference (``benchmarks/check_references_ssd_gla.py``, float64): ``gla_chunked``
against ``naive_recurrent_gla`` of fla-org/flash-linear-attention ``fla/ops/gla/naive.py`` (commit 39f2d4029eb2,
the file's last change; snapshot bc3b101dcb71), fed the same q, k, v, log α (n = 64): max relative difference
2.6e-16 in o at T = 16 and 7, 8.1e-16 at T = n, final states likewise, with the reference's internal ``.float()``
casts disabled for the call (it computes in float32 by design: with them, 1.8e-7, float32 round-off). Only the
recurrence is compared: the reference layer needs Triton kernels (norm, gate, chunked scan). We follow the
reference where the paper leaves a choice: the scale 1/√K on q, RMSNorm (the paper writes LayerNorm) per head
before the SiLU output gate.

The layer follows ``GatedLinearAttention`` (``fla/layers/gla.py``, commit a1a6bb1f1cc6) at its defaults:
D_k = d/2 (``expand_k`` 0.5), D_v = d (``expand_v`` 1), H = 4, r = 16, τ = 16, no projection biases, no
feature map, output gate on, norm eps 1e-5 with a learned weight. Dropped: the optional short convolutions (off
by default there), grouped key/value heads (``num_kv_heads``), ``clamp_min``, the fused kernels. Projections are
``nn.Linear`` (so ``LanguageModel`` re-initialises them, the gate bias b_α to 0, as the reference's model does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import is_int, is_number
from .base import Mixer
from .recurrent import check_step, zeros

__all__ = ["GLA", "gla_chunked"]


def gla_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_alpha: torch.Tensor,
                chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """o_t = (q_t/√K)ᵀ S_t with S_t = diag(exp(log α_t)) S_{t-1} + k_t v_tᵀ, S_{-1} = 0, by chunks (module docstring).

    q, k, log_alpha: (B, n, H, K); v: (B, n, H, V). Returns o (B, n, H, V) and the final state S (B, H, K, V).
    Any n: the last chunk is zero-padded (padded positions come after every real one, with k = v = 0, log α = 0)."""
    Bsz, n, H, K = q.shape
    V = v.shape[-1]
    T = min(chunk_size, n)
    nc = -(-n // T)
    pad = (0, 0, 0, 0, 0, nc * T - n)

    def chunks(t):  # (B, n, H, ·) -> (B, nc, H, T, ·)
        return F.pad(t, pad).view(Bsz, nc, T, H, t.shape[-1]).transpose(2, 3)

    q, k, v, b = chunks(q * K**-0.5), chunks(k), chunks(v), chunks(log_alpha).cumsum(-2)  # b: (B, nc, H, T, K)
    causal = torch.ones(T, T, dtype=q.dtype, device=q.device).tril()[..., None]  # (T, T, 1): 1 where s <= l
    qk = q[..., :, None, :] * k[..., None, :, :] * causal  # (B, nc, H, T_l, T_s, K): q_l ⊙ k_s, s <= l
    # b_l - b_s <= 0 for s <= l; above the diagonal it is >= 0 and masked by qk = 0, so clamp it there to 0
    A = (qk * torch.exp((b[..., :, None, :] - b[..., None, :, :]).clamp(max=0))).sum(-1)  # (B, nc, H, T_l, T_s)
    o = A @ v  # (B, nc, H, T, V)
    S = (k * torch.exp(b[..., -1:, :] - b)).transpose(-1, -2) @ v  # (B, nc, H, K, V): each chunk's own state
    decay = torch.exp(b[..., -1, :])  # (B, nc, H, K)
    state = q.new_zeros(Bsz, H, K, V)
    before = []
    for c in range(nc):  # S_c = diag(exp(b_T)) S_{c-1} + S
        before.append(state)
        state = decay[:, c, :, :, None] * state + S[:, c]
    o = o + (q * torch.exp(b)) @ torch.stack(before, dim=1)  # (B, nc, H, T, V)
    return o.transpose(2, 3).reshape(Bsz, nc * T, H, V)[:, :n], state


class GLA(Mixer):
    """``GLA(d_model, seq_len, num_heads=4, expand_k=0.5, expand_v=1.0, gate_low_rank_dim=16,
    gate_logit_normalizer=16, chunk_size=16)``."""

    def __init__(self, d_model: int, seq_len: int, num_heads: int = 4, expand_k: float = 0.5,
                 expand_v: float = 1.0, gate_low_rank_dim: int = 16, gate_logit_normalizer: float = 16,
                 chunk_size: int = 16):
        super().__init__(d_model, seq_len)
        for name, value in (("num_heads", num_heads), ("gate_low_rank_dim", gate_low_rank_dim),
                            ("chunk_size", chunk_size)):
            if not (is_int(value) and value >= 1):
                raise ValueError(f"{name}={value!r}: must be an integer >= 1")
        if not (is_number(gate_logit_normalizer) and gate_logit_normalizer > 0):
            raise ValueError(f"gate_logit_normalizer={gate_logit_normalizer!r}: must be a finite number > 0")
        d, H = self.d_model, int(num_heads)
        dims = {}
        for name, value in (("expand_k", expand_k), ("expand_v", expand_v)):
            width = int(d * value) if is_number(value) and value > 0 else 0
            if width < 1 or width % H:
                raise ValueError(f"{name}={value!r}: int(d_model·{name}) must be >= 1 and divisible by "
                                 f"num_heads={H} (d_model={d})")
            dims[name] = width
        Dk, Dv, r = dims["expand_k"], dims["expand_v"], int(gate_low_rank_dim)
        self.num_heads, self.key_dim, self.value_dim, self.gate_low_rank_dim = H, Dk, Dv, r
        self.head_k_dim, self.head_v_dim = Dk // H, Dv // H
        self.gate_logit_normalizer, self.chunk_size, self.eps = float(gate_logit_normalizer), int(chunk_size), 1e-5
        self.q_proj, self.k_proj = nn.Linear(d, Dk, bias=False), nn.Linear(d, Dk, bias=False)
        self.v_proj, self.g_proj = nn.Linear(d, Dv, bias=False), nn.Linear(d, Dv, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(d, r, bias=False), nn.Linear(r, Dk, bias=True))  # W_α1, (W_α2, b_α)
        self.norm_weight = nn.Parameter(torch.ones(self.head_v_dim))  # (V,)
        self.out_proj = nn.Linear(Dv, d, bias=False)

    def _inputs(self, u):
        """q, k, log α (…, H, K) and v, g (…, H, V) of u (…, d)."""
        H = self.num_heads
        q, k, v, g = (p(u).unflatten(-1, (H, -1)) for p in (self.q_proj, self.k_proj, self.v_proj, self.g_proj))
        log_alpha = (F.logsigmoid(self.gk_proj(u)) / self.gate_logit_normalizer).unflatten(-1, (H, -1))
        return q, k, v, g, log_alpha

    def _output(self, o, g):
        """o, g (…, H, V) -> W_out (RMSNorm_V(o) ⊙ w ⊙ SiLU(g)) (…, d)."""
        o = o * torch.rsqrt(o.square().mean(-1, keepdim=True) + self.eps) * self.norm_weight * F.silu(g)
        return self.out_proj(o.flatten(-2))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        q, k, v, g, log_alpha = self._inputs(u)
        o, _ = gla_chunked(q, k, v, log_alpha, self.chunk_size)
        return self._output(o, g)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The recurrence one token at a time under autograd."""
        q, k, v, g, log_alpha = self._inputs(u)
        S = u.new_zeros(u.shape[0], self.num_heads, self.head_k_dim, self.head_v_dim)  # (B, H, K, V)
        os = []
        for t in range(u.shape[1]):
            S = torch.exp(log_alpha[:, t])[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
            os.append((q[:, t, :, :, None] * self.head_k_dim**-0.5 * S).sum(-2))  # (B, H, V)
        return self._output(torch.stack(os, dim=1), g)

    # --- recurrent form ----------------------------------------------------------------------------------
    def init_state(self, batch: int) -> dict:
        """S = 0: (B, H, K, V)."""
        return {"S": zeros(self, batch, self.num_heads, self.head_k_dim, self.head_v_dim), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One token u_t (B, d) -> (y_t (B, d), state'): S ← diag(α_t) S + k_t v_tᵀ, o_t = (q_t/√K)ᵀ S."""
        t = check_step(self, state, u_t)
        q, k, v, g, log_alpha = self._inputs(u_t)  # (B, H, ·)
        S = torch.exp(log_alpha)[..., None] * state["S"] + k[..., None] * v[..., None, :]
        o = (q[..., None] * self.head_k_dim**-0.5 * S).sum(-2)  # (B, H, V)
        return self._output(o, g), {"S": S, "t": t + 1}

    def state_size(self, seq_len: int | None = None) -> int:
        """S: H·K·V = D_k·D_v/H numbers, whatever n (no convolution window)."""
        self._n(seq_len)
        return self.num_heads * self.head_k_dim * self.head_v_dim

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2d(2D_k + 2D_v) (W_q, W_k, W_v, W_g) + 2dr + 2r·D_k (the gate) + 2D_v·d (W_out) + per sequence, with
        T = min(chunk_size, n) and ⌈n/T⌉ chunks of T (the last padded), per chunk and head: 2T²V (decayed scores
        times v) + 2TKV (chunk state) + 2TKV (reading the entering state). The decayed scores themselves
        (T²K products and sums), decays, gates and the norm are elementwise (not counted)."""
        n, d, r = self._n(seq_len), self.d_model, self.gate_low_rank_dim
        Dk, Dv, H, K, V = self.key_dim, self.value_dim, self.num_heads, self.head_k_dim, self.head_v_dim
        T = min(self.chunk_size, n)
        nc = -(-n // T)
        proj = 2.0 * d * (2 * Dk + 2 * Dv) + 2.0 * d * r + 2.0 * r * Dk + 2.0 * Dv * d
        return proj + nc * H * (2 * T * T * V + 4 * T * K * V) / n

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, num_heads={self.num_heads}, key_dim={self.key_dim}, "
                f"value_dim={self.value_dim}, gate_low_rank_dim={self.gate_low_rank_dim}, "
                f"chunk_size={self.chunk_size}")
