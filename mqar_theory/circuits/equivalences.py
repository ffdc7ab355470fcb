"""``to_baseconv_stack(mixer)``: gated convolutions and linear attention as stacks of BaseConv layers
(Zoology, arXiv 2312.04927, §4.1 and Prop H.12; Based, arXiv 2402.18668, Prop F.8), with weights read
from the mixer, so the stack's forward equals the mixer's (float64).

Every layer is eq. (1), y = (xW + b1) ⊙ (h ∗ x + b2), programmed channel by channel (see
``compilers``): a *linear* layer (h = 0, b2 = 1), a *convolution* layer (W = 0, b1 = 1, b2 = bias), or a
*product* layer, whose channel c is (a routed channel) · (h ∗ x[c] + b2) with b2 = 0. The input is
zero-padded to width D and the output cropped to d (the appendix's `def: gated-conv`). Each layer is
held as ``constructions.layers.SparseBaseConv`` (``stack.make_layer``); with inner width D, sequence
length N and L_k taps in layer k, the stack's dense form stores Σ_k (D² + 2ND + L_k·D) numbers.

* **Hyena** (order 2, ``mixers.hyena``), D = 3d, 5 layers: (1) linear, u W_in + b_in; (2) convolution,
  the 3-tap short filter with its bias; (3) product x1 ⊙ v into the v block, x2 kept; (4) product
  x2 ⊙ (h ∗ xv + D ⊙ xv) (the implicit filter materialised for length N, D added to tap 0); (5) linear,
  W_out, b_out. Parameters 5·9d² + 30Nd + 3d(k + N + 3); taps (1, k, 1, N, 1).
* **H3** (``mixers.h3``), D = 3d, 4 layers: (1) linear, [q, k, v]; (2) product v ⊙ (K_shift ∗ k +
  shift_D ⊙ k) into the k block, q kept; (3) product q ⊙ (K_diag ∗ kv + D ⊙ kv) with the S4D kernel
  materialised for length N; (4) linear, W_out, b_out. Parameters 4·9d² + 24Nd + 3d(2 + min(m, N) + N).
* **Taylor linear attention** (``TaylorLinearAttention``, f features, F = 1 + f + f²), D = 2f + 2f² + F·d,
  5 layers: (1) linear: q, k, copies of q_a and k_a for the quadratic features, v_c copied into every
  channel (g, c); (2) product: q_a q_b/√2 and k_a k_b/√2; (3) product: channel (g, c) ← φ(k)[g]·v[c]
  (φ[0] = 1 through b1); (4) product with the all-ones long filter (the causal prefix sum):
  (g, c) ← φ(q)_i[g] · Σ_{j<=i} φ(k_j)[g] v_j[c]; (5) linear: Σ_g into channel c, then W_o, b_o.

``blowup(mixer, stack)`` compares the stored numbers; the mixers with an implicit filter (Hyena's FFN,
H3's S4D modes) store fewer numbers than the explicit N×d filter BaseConv needs, so we also compare
with the mixer's count plus N·d per long filter, the reading under which Prop H.12's "constant
factor" is stated: from the formulas, Hyena's ratio is then at most (45d² + 33Nd + 9d)/(4d² + Nd) < 45.
"""

from __future__ import annotations

import math

import torch

from ..mixers.h3 import H3
from ..mixers.hyena import Hyena
from .linear_attention import TaylorLinearAttention
from .stack import BaseConvStack, make_layer

__all__ = ["to_baseconv_stack", "blowup", "EQUIVALENCES"]

F64 = torch.float64

#: mixer class -> (source, claimed blow-up)
EQUIVALENCES = {
    "hyena": ("Zoology Prop H.12", "constant factor in parameters"),
    "h3": ("Zoology §4.1 (H3 is a gated convolution)", "constant factor in parameters"),
    "taylor_linear_attention": ("Based Prop F.8", "poly-log factor in layers"),
}


class _Layer:
    """Zero-initialised (W, b1, b2, h) of one layer; ``linear`` sets b2 = 1 (the open gate)."""

    def __init__(self, N, D, taps=1, linear=False):
        self.W = torch.zeros(D, D, dtype=F64)
        self.b1, self.b2 = torch.zeros(N, D, dtype=F64), torch.zeros(N, D, dtype=F64)
        self.h = torch.zeros(min(taps, N), D, dtype=F64)
        if linear:
            self.b2[:] = 1.0

    def keep(self, c):
        self.W[c, c], self.b2[:, c], self.h[:, c] = 1.0, 1.0, 0.0

    def build(self):
        return make_layer(self.W, self.b1, self.b2, self.h)


def _w(linear: torch.nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """(Wᵀ, b) of an nn.Linear in float64, so that x Wᵀ + b is the layer."""
    b = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
    return linear.weight.detach().to(F64).T, b.detach().to(F64)


def _hyena(m: Hyena) -> list:
    d, N, k = m.d_model, m.seq_len, m.short_kernel
    D = 3 * d
    i = torch.arange(d)
    L1 = _Layer(N, D, linear=True)
    Win, bin_ = _w(m.in_proj)
    L1.W[:d] = Win
    L1.b1[:] = bin_
    L2 = _Layer(N, D, taps=k)
    L2.b1[:] = 1.0
    L2.b2[:] = m.short_bias.detach().to(F64)
    L2.h[:] = m.short_filter.detach().to(F64)[: L2.h.shape[0]]
    L3 = _Layer(N, D)
    L3.W[i, 2 * d + i] = 1.0  # x1 routed into the v block
    L3.h[0, 2 * d + i] = 1.0  # times v
    for c in range(d, 2 * d):
        L3.keep(c)  # x2
    L4 = _Layer(N, D, taps=N)
    L4.W[d + i, 2 * d + i] = 1.0  # x2
    with torch.no_grad():
        L4.h[:, 2 * d:] = m.long_filter(N).to(F64)
    L4.h[0, 2 * d:] += m.D.detach().to(F64)
    L5 = _Layer(N, D, linear=True)
    Wout, bout = _w(m.out_proj)
    L5.W[2 * d:, :d] = Wout
    L5.b1[:, :d] = bout
    return [L1, L2, L3, L4, L5]


def _h3(m: H3) -> list:
    d, N, s = m.d_model, m.seq_len, m.d_state
    D = 3 * d
    i = torch.arange(d)
    L1 = _Layer(N, D, linear=True)
    for blk, proj in enumerate((m.q_proj, m.k_proj, m.v_proj)):
        W, b = _w(proj)
        L1.W[:d, blk * d:(blk + 1) * d] = W
        L1.b1[:, blk * d:(blk + 1) * d] = b
    L2 = _Layer(N, D, taps=s)
    L2.W[2 * d + i, d + i] = 1.0  # v routed into the k block
    L2.h[:, d:2 * d] = m.shift_C.detach().to(F64)[: L2.h.shape[0]]
    L2.h[0, d:2 * d] += m.shift_D.detach().to(F64)
    for c in range(d):
        L2.keep(c)  # q
    L3 = _Layer(N, D, taps=N)
    L3.W[i, d + i] = 1.0  # q
    with torch.no_grad():
        L3.h[:, d:2 * d] = m.diag_kernel(N).to(F64)
    L3.h[0, d:2 * d] += m.D.detach().to(F64)
    L4 = _Layer(N, D, linear=True)
    Wout, bout = _w(m.out_proj)
    L4.W[d:2 * d, :d] = Wout
    L4.b1[:, :d] = bout
    return [L1, L2, L3, L4]


def _taylor(m: TaylorLinearAttention) -> list:
    d, N, f = m.d_model, m.seq_len, m.feature_dim
    F = 1 + f + f * f
    q0, k0, Q2, K2, V = 0, f, 2 * f, 2 * f + f * f, 2 * f + 2 * f * f
    D = V + F * d
    Wq, bq = _w(m.q_proj)
    Wk, bk = _w(m.k_proj)
    Wv, bv = _w(m.v_proj)
    ch = lambda g, c: V + g * d + c  # noqa: E731
    L1 = _Layer(N, D, linear=True)
    for a in range(f):
        for base, W, b in ((q0, Wq, bq), (k0, Wk, bk)):
            L1.W[:d, base + a], L1.b1[:, base + a] = W[:, a], b[a]
        for bb in range(f):
            for base, W, b in ((Q2, Wq, bq), (K2, Wk, bk)):
                L1.W[:d, base + a * f + bb], L1.b1[:, base + a * f + bb] = W[:, a], b[a]
    for g in range(F):
        for c in range(d):
            L1.W[:d, ch(g, c)], L1.b1[:, ch(g, c)] = Wv[:, c], bv[c]
    L2 = _Layer(N, D)
    for a in range(f):
        for bb in range(f):
            for base, src in ((Q2, q0), (K2, k0)):
                L2.W[src + bb, base + a * f + bb] = 1 / math.sqrt(2)
                L2.h[0, base + a * f + bb] = 1.0
    for c in list(range(2 * f)) + list(range(V, D)):
        L2.keep(c)

    def route(L, lin, quad, g, c):  # φ[g] into channel (g, c) via W (or b1 for φ[0] = 1)
        if g == 0:
            L.b1[:, ch(g, c)] = 1.0
        elif g <= f:
            L.W[lin + g - 1, ch(g, c)] = 1.0
        else:
            L.W[quad + g - 1 - f, ch(g, c)] = 1.0

    L3 = _Layer(N, D)
    L4 = _Layer(N, D, taps=N)
    for g in range(F):
        for c in range(d):
            route(L3, k0, K2, g, c)
            L3.h[0, ch(g, c)] = 1.0
            route(L4, q0, Q2, g, c)
            L4.h[:, ch(g, c)] = 1.0  # the causal prefix sum
    for c in list(range(f)) + list(range(Q2, Q2 + f * f)):
        L3.keep(c)
    L5 = _Layer(N, D, linear=True)
    Wo, bo = _w(m.out_proj)
    for g in range(F):
        L5.W[V + g * d:V + (g + 1) * d, :d] = Wo
    L5.b1[:, :d] = bo
    return [L1, L2, L3, L4, L5]


def to_baseconv_stack(mixer) -> BaseConvStack:
    """A ``BaseConvStack`` (float64, causal) with ``stack(u) == mixer(u)`` for u (B, n, d), n = seq_len;
    mixer: a ``Hyena``, ``H3`` or ``TaylorLinearAttention`` (module docstring for each mapping)."""
    builders = {Hyena: _hyena, H3: _h3, TaylorLinearAttention: _taylor}
    for cls, build in builders.items():
        if isinstance(mixer, cls):
            layers = [L.build() for L in build(mixer)]
            return BaseConvStack(layers, mixer.seq_len, mixer.d_model, read_in="pad",
                                 note=type(mixer).__name__)
    raise ValueError(f"mixer: must be a Hyena, H3 or TaylorLinearAttention, got {type(mixer).__name__}")


def blowup(mixer, stack: BaseConvStack) -> dict:
    """Stored numbers of the mixer and of its stack, and the ratios (module docstring)."""
    p_mixer = sum(p.numel() for p in mixer.parameters())
    long_filters = 1 if isinstance(mixer, (Hyena, H3)) else 0
    explicit = p_mixer + long_filters * mixer.seq_len * mixer.d_model
    return {"mixer": type(mixer).__name__, "N": mixer.seq_len, "d": mixer.d_model,
            "mixer_params": p_mixer, "mixer_params_explicit_filter": explicit,
            "stack_layers": stack.num_layers, "stack_width": stack.width, "stack_params": stack.num_parameters,
            "param_ratio": stack.num_parameters / p_mixer, "param_ratio_explicit": stack.num_parameters / explicit}
