"""RWKV-4 time mixing (Peng et al., "RWKV: Reinventing RNNs for the Transformer Era", arXiv 2305.13048,
§3.1–3.2, eqs. 11–16), the "RWKV" of Zoology's Figure 2:

    x'_t  = u_{t-1}  (token shift, u_{-1} = 0)
    k_t = (μ_k ⊙ u_t + (1-μ_k) ⊙ x'_t) W_k,   v_t, r_t likewise with μ_v, μ_r         # (B, N, d)
    wkv_t = (Σ_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i<t} e^{-(t-1-i) w + k_i} + e^{u + k_t})
    y_t   = (σ(r_t) ⊙ wkv_t) W_out

per channel, with decay w = exp(time_decay) > 0 and bonus u = time_first. No biases (as RWKV-4).

* ``forward_reference``: the recurrence a_t = e^{-w} a_{t-1} + e^{k_t} v_t, b_t = e^{-w} b_{t-1} + e^{k_t},
  wkv_t = (a_{t-1} + e^{u+k_t} v_t) / (b_{t-1} + e^{u+k_t}), one step at a time, exactly as written (no
  stabilisation: it overflows for large k, which is why it is only the reference).
* ``forward``: chunk-wise. Within a chunk of T positions the weights e^{S[t,i]} (S[t,i] = k_i - (t-1-i)w for
  i < t, u + k_t for i = t) form a T×T table per channel; the past before the chunk enters through a state
  (a, b) stored as a·e^p, b·e^p with a running exponent p, updated once per chunk. Every exponential has
  its row maximum subtracted first, so no term exceeds 1: finite for any k, w, u (the log-space trick of
  RWKV's own kernel, applied per chunk). Cost O(N·T·d) elementwise plus a loop over N/T chunks. The maxima
  are constants for autograd (wkv does not depend on them), which leaves the gradients as they are and spares
  the max-backward masks: with the in-chunk exponents built as one broadcast add of a (T, T, d) bias, a
  2-layer official-recipe training step (N = 64, d = 64, batch 64, 1 thread) went from 2.6x to 1.5x
  attention's, measured back to back.

Chunk size (decision, measured): T = 4. The (T, T) tables cost ~T times the reference's elementwise work
while the loop has N/T steps, so the best T is small. Training throughput of a 4-layer ``LanguageModel``
(CPU, 1 thread, relative to the same model with ``forward_reference``), T = 2 / 4 / 8 / 16:
d=64, N=128, B=16: 1.7 / 3.0 / 2.7 / 2.3x; d=128, N=128, B=64: 1.5 / 1.6 / 0.7 / 0.4x;
d=64, N=64, B=64: 1.05 / 0.9 / 0.7 / 0.5x; d=32, N=32, B=64: 0.8 / 0.9 / 0.85 / 0.5x. At short sequences
with large batches the plain loop is as fast (its N steps are few and large); it is not used because it
overflows (see above).

Init (RWKV-4's, as the official ``RWKVTimeMixer``, HazyResearch/zoology ``zoology/mixers/rwkv.py``), for layer
l = ``layer_idx`` of a stack of ``n_layer``, with r₀ = l/(n_layer-1) and r₁ = 1 - l/n_layer:
time_decay_c = -5 + 8 (c/(d-1))^(0.7 + 1.3 r₀), time_first_c = ln 0.3 + 0.5·((c+1) mod 3 - 1),
μ_k = (c/d)^r₁, μ_v = (c/d)^r₁ + 0.3 r₀, μ_r = (c/d)^(r₁/2); projections ``nn.Linear`` (no bias).
The default l = 0 is the first layer's init (r₀ = 0, r₁ = 1) whatever n_layer. ``recipe="official"``
models pass the layer's index and n_layer = 12, the official constructor's default, which the official
Figure 2 configs keep even for 2-layer models.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..utils import is_int
from .base import Mixer
from .recurrent import check_step, zeros

__all__ = ["RWKV"]


class RWKV(Mixer):
    """``RWKV(d_model, seq_len, chunk_size=4)``: RWKV-4 time mixing, chunked stable WKV."""

    def __init__(self, d_model: int, seq_len: int, chunk_size: int = 4, layer_idx: int = 0, n_layer: int = 12):
        super().__init__(d_model, seq_len)
        if not (is_int(chunk_size) and chunk_size >= 1):
            raise ValueError(f"chunk_size={chunk_size!r}: must be an integer >= 1")
        if not (is_int(n_layer) and n_layer >= 2):
            raise ValueError(f"n_layer={n_layer!r}: must be an integer >= 2")
        if not (is_int(layer_idx) and 0 <= layer_idx < n_layer):
            raise ValueError(f"layer_idx={layer_idx!r}: must be an integer in [0, n_layer={n_layer})")
        d = self.d_model
        self.chunk_size, self.layer_idx, self.n_layer = int(chunk_size), int(layer_idx), int(n_layer)
        r0, r1 = layer_idx / (n_layer - 1), 1.0 - layer_idx / n_layer
        c = torch.arange(d, dtype=torch.float64)
        self.time_decay = nn.Parameter(-5 + 8 * (c / max(d - 1, 1)) ** (0.7 + 1.3 * r0))  # (d,): w = exp(time_decay)
        self.time_first = nn.Parameter(math.log(0.3) + 0.5 * ((c + 1) % 3 - 1))  # (d,): u
        self.time_mix_k = nn.Parameter((c / d) ** r1)  # (d,) μ_k
        self.time_mix_v = nn.Parameter((c / d) ** r1 + 0.3 * r0)  # (d,) μ_v
        self.time_mix_r = nn.Parameter((c / d) ** (0.5 * r1))  # (d,) μ_r
        for p in (self.time_decay, self.time_first, self.time_mix_k, self.time_mix_v, self.time_mix_r):
            p.data = p.data.to(torch.get_default_dtype())
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.receptance = nn.Linear(d, d, bias=False)
        self.out_proj = nn.Linear(d, d, bias=False)

    def _kvr(self, u):
        xx = torch.cat([torch.zeros_like(u[:, :1]), u[:, :-1]], dim=1)  # (B, n, d) token shift
        mix = lambda mu: u * mu + xx * (1 - mu)
        return self.key(mix(self.time_mix_k)), self.value(mix(self.time_mix_v)), self.receptance(mix(self.time_mix_r))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        k, v, r = self._kvr(u)
        return self.out_proj(torch.sigmoid(r) * self.wkv(k, v))

    def wkv(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The chunked, max-subtracted WKV. k, v: (B, n, d) -> (B, n, d)."""
        B, n, d = k.shape
        T = min(self.chunk_size, n)
        C = -(-n // T)
        pad = C * T - n  # padding at the end reaches no real position (causal)
        k = torch.nn.functional.pad(k, (0, 0, 0, pad)).view(B, C, T, d)
        v = torch.nn.functional.pad(v, (0, 0, 0, pad)).view(B, C, T, d)
        w, bonus = torch.exp(self.time_decay), self.time_first  # (d,)
        tau = torch.arange(T, device=k.device)
        lag = (tau[:, None] - 1 - tau[None, :]).to(k.dtype)  # (T, T): t-1-i
        # S[t, i] = k_i + bias[t, i]: bias = -(t-1-i) w below the diagonal, u on it, -inf above (the future)
        bias = torch.where((tau[:, None] == tau[None, :])[:, :, None], bonus, -lag[:, :, None] * w)  # (T, T, d)
        bias = bias.masked_fill((tau[None, :] > tau[:, None])[:, :, None], float("-inf"))
        S = k[:, :, None] + bias  # (B, C, T, T, d), one broadcast add
        # contribution of each chunk to the state at the next chunk's start: exponents k_i - (T-1-i) w
        E = k - (T - 1 - tau).to(k.dtype)[:, None] * w  # (B, C, T, d)
        # The subtracted maxima q, p, m only keep the exponentials in range: wkv is exactly invariant to them
        # (numerator and denominator scale alike, and a state a e^p is the same for any p), so they are
        # constants for autograd (detached): the gradients are unchanged and the max-backward masks are saved.
        q = E.detach().amax(dim=2)  # (B, C, d)
        eE = torch.exp(E - q[:, :, None])
        a_loc, b_loc = (eE * v).sum(2), eE.sum(2)  # (B, C, d)
        # states (a, b, p) at every chunk start: a sequential pass over the C chunks
        a = torch.zeros(B, d, dtype=k.dtype, device=k.device)
        b = torch.zeros_like(a)
        p = torch.full_like(a, -1e30)  # "no past": every e^{p - ...} is 0
        states = []
        wT = T * w.detach()  # p only tracks magnitudes (detached, see above); w's gradient flows through s_old
        for c in range(C):
            states.append((a, b, p))
            p_new = torch.maximum(p - wT, q[:, c])
            s_old, s_loc = torch.exp(p - T * w - p_new), torch.exp(q[:, c] - p_new)
            a, b, p = a * s_old + a_loc[:, c] * s_loc, b * s_old + b_loc[:, c] * s_loc, p_new
        A, Bs, P = (torch.stack(x, dim=1) for x in zip(*states, strict=True))  # (B, C, d) each
        Pt = P[:, :, None] - tau.to(k.dtype)[:, None] * w  # (B, C, T, d): past exponent at offset τ
        m = torch.maximum(S.detach().amax(dim=3), Pt.detach())  # (B, C, T, d), a constant (see above)
        eS = torch.exp(S - m[:, :, :, None])  # (B, C, T, T, d)
        eP = torch.exp(Pt - m)  # (B, C, T, d)
        num = (eS * v[:, :, None]).sum(3) + A[:, :, None] * eP
        den = eS.sum(3) + Bs[:, :, None] * eP
        return (num / den).reshape(B, C * T, d)[:, :n]

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The plain per-step WKV recurrence (unstabilised)."""
        k, v, r = self._kvr(u)
        w, bonus = torch.exp(self.time_decay), self.time_first
        a = torch.zeros_like(k[:, 0])
        b = torch.zeros_like(a)
        out = []
        for t in range(u.shape[1]):
            e = torch.exp(bonus + k[:, t])
            out.append((a + e * v[:, t]) / (b + e))
            a = torch.exp(-w) * a + torch.exp(k[:, t]) * v[:, t]
            b = torch.exp(-w) * b + torch.exp(k[:, t])
        return self.out_proj(torch.sigmoid(r) * torch.stack(out, dim=1))

    def state_size(self, seq_len: int | None = None) -> int:
        """Per channel the WKV state, two numbers (``step`` keeps it stabilised as the ratio a/b and log b, no
        extra exponent), and the last input (token shift): 3d."""
        self._n(seq_len)
        return 3 * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """8d²: the key, value, receptance and output projections. The WKV is elementwise (O(d) per token
        as a recurrence) and not counted (``mqar_theory.flops`` convention)."""
        self._n(seq_len)
        return 8.0 * self.d_model**2

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, chunk_size={self.chunk_size}"

    # --- recurrent form: the WKV state in log space, and the token shift ------------------------------
    def init_state(self, batch: int) -> dict:
        """No past: the last input u_{-1} = 0 (B, d), the ratio r = a/b = 0 and ℓ = log b = -inf (B, d); t = 0."""
        d = self.d_model
        return {"prev": zeros(self, batch, d), "r": zeros(self, batch, d),
                "logb": zeros(self, batch, d).fill_(float("-inf")), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The recurrence of ``forward_reference`` (eqs. 14-16) with a = r·e^ℓ, b = e^ℓ kept as (r, ℓ), which
        never overflows (every exponential below is of a number <= 0):

            wkv_t = (r e^{ℓ-M} + e^{u+k_t-M} v_t) / (e^{ℓ-M} + e^{u+k_t-M}),   M = max(ℓ, u + k_t)
            ℓ' = log(e^{ℓ-w} + e^{k_t}),   r' = r e^{ℓ-w-ℓ'} + e^{k_t-ℓ'} v_t     (b' = e^{-w} b + e^{k_t})"""
        t = check_step(self, state, u_t)
        mix = lambda mu: u_t * mu + state["prev"] * (1 - mu)
        k, v = self.key(mix(self.time_mix_k)), self.value(mix(self.time_mix_v))  # (B, d) each
        r = self.receptance(mix(self.time_mix_r))
        w, bonus = torch.exp(self.time_decay), self.time_first  # (d,)
        ell, ratio = state["logb"], state["r"]  # (B, d)
        M = torch.maximum(ell, bonus + k)
        e_past, e_now = torch.exp(ell - M), torch.exp(bonus + k - M)
        wkv = (ratio * e_past + e_now * v) / (e_past + e_now)
        ell_new = torch.logaddexp(ell - w, k)
        ratio_new = ratio * torch.exp(ell - w - ell_new) + torch.exp(k - ell_new) * v
        y = self.out_proj(torch.sigmoid(r) * wkv)
        return y, {"prev": u_t, "r": ratio_new, "logb": ell_new, "t": t + 1}
