"""Data-independent BaseConv solves MQAR with Õ(N log c) parameters: sort, look back, sort back.

Claim (Zoology, arXiv 2312.04927, Thm 4.4). On binary token codes
u ∈ {0,1}^{N×O(log c)}, a stack of BaseConv layers (eq. 1, y = (u W + b1) ⊙ (h ∗ u + b2)) whose
filters and biases depend only on (c, N) solves MQAR with Õ(N log c) parameters and Õ(1) layers.
The paper parallelises the sequential query-before-insert algorithm over dyadic intervals and
compiles the circuit with Thm 4.2 (details UNVERIFIED). We realise the same idea with a sorting
network written directly as BaseConv layers: the rows are sorted by (token, position), so the first
earlier occurrence of a key is the head of its run of equal tokens; a segmented scan copies the
head's successor down the run; a second sort by position brings every answer back to its row.
Width O(log c + log N), depth O(log² N · log(log c + log N)), and the stored parameters are
O(N log N) (one position code) plus polylog(N, c): inside Õ(N log c). Compare
``baseconv_data_independent`` (one filter per distance, O(N² log c) parameters, O(log log c) layers).

Notation. c = vocab_size, N = seq_len, b = ⌈log2 c⌉ token bits, P = ⌈log2 N⌉, N' = 2^P >= N. The
model always runs on N' rows: an input of length n <= N is padded with the filler 0, which is never
a key, so a padded row never answers and never matches a key. ρ_j(i) = bit_j(i) is the row index.
"bit" values are exactly 0 or 1 everywhere below, so float64 and float32 are exact.

Output channels and the "lazy" trick. A BaseConv output channel is one product
(a linear form of the input + b1)·(one input channel, shifted by the filter, + b2); the convolution is
channel-wise, so the factor in the conv branch must sit *materialised* in the very channel being
written, while the linear branch may read any linear combination of channels. A quantity that is a
sum of channels ("lazy") can therefore be used on the linear side of the next layer without
spending a layer on the sum. Three identities keep every step a single product of this form
(x, y bits, checked on all inputs in the tests):

    [x = y]                         = (1 − x − y)(1 − 2x)
    c(x, y, w) := w·x(1−y) + (1−w)(1−x)y = (y − w)(1 − (x + w))        (w a bit)
    [ρ_k = ρ_q]                     = (1 − ρ_k − ρ_q)(1 − 2ρ_q)

Encoding (a fixed table, ``num_fixed``): u_i = (bit_j(x_i) in channels tok[j].X, key(x_i) in KEY),
key(x) = [1 <= x < c/2], every other channel 0. Channels (width d = 8b + 6P + 5): for each sort-key
bit a group (X, Lo, Hi, C, E): tok[j] (token bits), pos[j] (position bits); for each payload bit a
group (X, Lo, Hi): suc[j] (the successor token x_{i+1}, later the answer), an (the "has an earlier
occurrence" flag); the static row bits ρ_j, KEY, and WM (the direction mask of the next stage).
A record bit with value x is held as X = x (own), Lo/Hi = the partner's bit on rows whose partner
lies above/below, later as the lazy sum X + Lo + Hi after a swap.

The layers (every channel not listed outputs 0; "carry" is the identity primitive W = 1, b2 = 1;
"copy" a linear output; every filter is one impulse; cyclic layers are marked ⊛):

 0. inject (the only position-dependent biases): ρ_j ← b1 = bit_j(i); WM ← b1 = [bit_0(i) = bit_1(i)];
    suc[j].{X, Lo, Hi} ← copies of tok[j].X; carry tok X, KEY.
 1. successor + fan-out ⊛: suc[j].{X,Lo,Hi} ← u[i+1] (cyclic impulse at N'−1, b1 = 1; row N'−1 reads
    row 0, harmless: a row is only read by later occurrences of its token); for every key group:
    X, Lo, Hi, E ← x and C ← x + WM (x = token bit, or ρ_j for pos[j]).
 Sort 1 (key: token bits MSB first, then position bits MSB first, m1 = b + P bits, all distinct
 because positions are; payload suc). Bitonic network: for q = 1..P, k = q−1..0, the stage (q, k)
 pairs row i with i XOR 2^k; the pair is sorted ascending iff bit_q(i) = 0 (bit_P = 0); the row
 keeps the minimum iff w(i) = [bit_k(i) = bit_q(i)]. S = P(P+1)/2 stages, each:
    F ⊛ fetch (s = 2^k): Lo ← (1 − ρ_k)·u_Lo[i + s] (cyclic impulse at N' − s), Hi ← ρ_k·u_Hi[i − s]
      (impulse at s; rows with ρ_k = 1 have i >= s, so nothing wraps); carry X, C, E, WM, ρ, KEY.
      Now y = Lo + Hi is the partner's bit (lazy).
    leaf: C ← (y − WM)·(1 − C) = c(x, y, w), "the partner beats me on this bit" (w = 1: partner
      smaller; w = 0: partner larger); E ← (1 − x − y)·(1 − 2E) = [x = y]; carry X, Lo, Hi.
    tree (T = ⌈log2 m⌉ levels): nodes (eq, lt) MSB first, lt lazy, eq materialised; pairing (A, B)
      with A more significant: lt_AB = lt_A + eq_A·lt_B (the product written into A's eq channel,
      eq_A in its conv branch, lt_B on the linear side), eq_AB = eq_A·eq_B (into B's eq channel;
      skipped at the root); an unpaired last node is carried. The root's lt is
      swap = [the row must take the partner's record]. Level 1 also sets WM ← ρ_q' (next stage q').
    swap: X ← (1 − swap)·X, Lo ← swap·Lo, Hi ← swap·Hi (new bit = X + Lo + Hi, lazy);
      WM ← (1 − ρ_k' − ρ_q')(1 − 2WM) = w of the next stage (k', q') (for q' = P: 1 − ρ_k').
    fan-out (between stages): X, Lo, Hi, E ← X + Lo + Hi; C ← X + Lo + Hi + WM.
 Look back (the predecessor in sorted order is the latest earlier occurrence of the same token):
    M1: tok E ← X + Lo + Hi (the sorted token bit t); tok X, Lo, Hi ← the same channels shifted
      down by 1 (causal: row 0 reads zeros = token 0, never a key), so t' = X + Lo + Hi is the
      previous row's bit (lazy); suc X, Lo ← X + Lo + Hi; pos X ← X + Lo + Hi.
    M2: tok E ← (1 − t − t')·(1 − 2t) = [t = t'].
    eq tree (T_b = ⌈log2 b⌉ levels): eq_AB = eq_A·eq_B; the root writes it twice:
      nf = [same token as the previous row] (a scan flag) and an (kept for the answer).
 Segmented scan (copy the run head's successor down the run; run = equal tokens, ordered by
 position, so the head is the first occurrence): for t = 0..P−1, s = 2^t, two causal layers
    a: nf ← nf·nf[i − s]; V ← (1 − nf)·V; V' ← nf·V'[i − s]        b: V, V' ← V + V'
    (V = suc X, V' = suc Lo). Invariant: nf_t[i] = [no run head in (i − 2^t, i]], V_t[i] = the
    successor at row max(head(i), i − 2^t + 1), so after P steps V[i] = the head's successor. The
    last b is also sort 2's fan-out (suc, an payload; pos key with C ← p + WM).
 Sort 2 (key: position bits, m2 = P; payload suc, an): the same S stages; the last stage's fan-out
 is replaced by the read-out layer: suc X ← X + Lo + Hi (answer bits), KEY ← (an lazy)·KEY.

Read-out: channels (suc[0..b−1].X, KEY) at rows 0..n−1; predict = Σ_j 2^j·[V_j > 1/2] where
M = KEY > 1/2, else −1. Exactly ``expected_answers`` (``mqar_oracle``'s *first* earlier occurrence
at key positions) on every input, consistent dictionary or not: the sort orders equal tokens by
position, the scan propagates the first one. Causal as a function (internally it reads ahead: the
successor shift and the sort): the answer at i is a function of x_0..x_i only (tested).

Counts (``sorting_counts``, checked against the built model): S = P(P+1)/2, T1 = ⌈log2(b + P)⌉,
T2 = ⌈log2 P⌉, T_b = ⌈log2 b⌉,

    layers L = S·(T1 + T2 + 8) + T_b + 2P + 3          width d = 8b + 6P + 5
    (c = N = 1024: 962 layers, width 145; c = N = 4: 41 layers, width 33.)

Stored parameters (``num_parameters``): per layer the nonzero values of W (positions: int buffers),
the nonzero taps of h (positions: int buffers; every filter is a single impulse, a shift), the dense
rows b1, b2 ∈ R^{1×d} broadcast over positions, and in layer 0 the position-dependent b1 columns
(N' × (P + 1)). So params = N'(P + 1) + L·2d + nnz(W) + nnz(h) = O(N log N + log² N ·
log(log c + log N)·(log c + log N)) ⊂ Õ(N log c). ``dense_num_parameters`` is eq. (1)'s count with
dense (W, b1, b2, h): L·(d² + 3N'd) = Õ(N). ``num_fixed``: the code table c × d plus the int64
positions of the nonzeros of W and h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import Construction, check_threshold, frozen, mixer_layer

__all__ = ["BaseConvSorting", "baseconv_sorting", "sorting_counts", "bitonic_stages"]


def _bits(vocab_size: int) -> int:
    """b = ⌈log2 c⌉: distinct codes for the tokens 0 .. c-1 (c >= 4, so b >= 2)."""
    return math.ceil(math.log2(vocab_size))


def _levels(m: int) -> int:
    """⌈log2 m⌉ pairing levels reduce m nodes to one (m >= 2)."""
    return math.ceil(math.log2(m))


def bitonic_stages(P: int) -> list[tuple[int, int]]:
    """The compare-exchange stages (q, k) of the bitonic network on 2^P rows: q = 1..P, k = q-1..0."""
    return [(q, k) for q in range(1, P + 1) for k in range(q - 1, -1, -1)]


def _tree_counts(m: int) -> tuple[int, int, int]:
    """(routes, conv taps, channels written) of the ⌈log2 m⌉ levels of the comparison tree on m leaves,
    in closed form over the levels: a node starting at leaf a has lt = 1 + #{levels t' <= t with
    a + 2^(t'-1) < m} terms (it gains one each time it is formed by pairing)."""
    routes = taps = 0
    T = _levels(m)
    for t in range(1, T + 1):
        width = 2 ** (t - 1)  # leaves per node at level t-1
        for a in range(0, m, 2 * width):  # node (level t) starting at leaf a
            lt_a = 1 + sum(1 for u in range(1, t) if a + 2 ** (u - 1) < m)  # lt terms of A
            if a + width < m:  # paired with B starting at a + width
                bstart = a + width
                lt_b = 1 + sum(1 for u in range(1, t) if bstart + 2 ** (u - 1) < m)
                root = t == T
                routes += lt_b + (0 if root else 1) + lt_a  # eq_A·lt_B, eq_A·eq_B, carry lt_A
                taps += 1 if root else 2
            else:  # unpaired: carry eq and lt
                routes += lt_a + 1
    return routes, taps, T


def sorting_counts(vocab_size: int, seq_len: int) -> dict:
    """Closed-form sizes of ``baseconv_sorting(vocab_size, seq_len)`` (derived in the module docstring):
    bits b, P, padded_len N', stages S, tree levels T1, T2, Tb, layers, width, nnz_W (nonzeros of all
    W), nnz_h (nonzero taps of all h), params (= ``num_parameters``), dense_params, fixed.

    Per layer kind (g = m + r record bits of a sort with m key and r payload bits, st = P + 1 static
    channels ρ, KEY; "routes" are nonzeros of W): inject 4b + 1; successor + fan-out 6b + 6P + 1 + st
    routes, 3b taps; per stage fetch 3g + 2m + 1 + st routes, 2g taps; leaf 6m + 3g + st, 2m taps; tree
    levels (3g + st) each plus the tree's own routes (``_tree_counts``); swap 3g(1 + T) + st; fan-out
    16m + 9r + 1 + st; the WM mask of the next stage (k', q') costs 1 + [q' < P] routes and
    [q' < P] taps in the swap, 1 route at tree level 1 if q' < P and 1 carry per later level;
    look back 9b + 3P + 1 + st, 3b taps; equal-to-previous 6b + P + 1 + st, b taps; eq tree
    (2b + P + 1 + st) per level plus one route and tap per product (two at the root) and one route per
    unpaired node; scan a 2b + P + 3 + st, 1 + 2b taps; scan b 4b + P + 3 + st (the last one is sort
    2's fan-out, 6b + 6P + 4 + st); read-out 3b + 3 routes, 1 tap.
    """
    c, N = vocab_size, seq_len
    b, P = _bits(c), math.ceil(math.log2(N))
    Np, S = 2**P, P * (P + 1) // 2
    T1, T2, Tb = _levels(b + P), _levels(P), _levels(b)
    L = S * (T1 + T2 + 8) + Tb + 2 * P + 3
    d = 8 * b + 6 * P + 5
    st = P + 1  # static channels: ρ_0 .. ρ_{P-1}, KEY
    stages = bitonic_stages(P)

    def sort_nnz(m: int, r: int, after_last):
        """(routes, taps) of one sort with m key and r payload bits; ``after_last`` the stage whose
        mask the last swap computes (None: none)."""
        g = m + r
        tr_routes, tr_taps, T = _tree_counts(m)
        nW = S * ((3 * g + 2 * m + 1 + st) + (6 * m + 3 * g + st) + tr_routes + T * (3 * g + st)
                  + (3 * g * (1 + T) + st))
        nh = S * (2 * g + 2 * m + tr_taps + 3 * g)
        nW += (S - 1) * (16 * m + 9 * r + 1 + st)  # fan-outs between stages
        for nq in [*stages[1:], after_last]:  # the mask WM of the next stage
            if nq is None:
                continue
            below_P = int(nq[0] < P)
            nW += (1 + below_P) + below_P + (T - 1)  # swap; tree level 1; carries at levels 2 .. T
            nh += below_P
        return nW, nh

    W1, h1 = sort_nnz(b + P, b, stages[0])
    W2, h2 = sort_nnz(P, b + 1, None)
    eqW = eqh = 0
    nodes = b
    while nodes > 1:  # eq tree
        pairs, root = nodes // 2, nodes == 2
        eqW += pairs * (2 if root else 1) + nodes % 2 + (2 * b + P + 1 + st)
        eqh += pairs * (2 if root else 1)
        nodes = (nodes + 1) // 2
    nnz_W = ((4 * b + 1) + (6 * b + 6 * P + 1 + st) + W1
             + (9 * b + 3 * P + 1 + st) + (6 * b + P + 1 + st) + eqW
             + P * (2 * b + P + 3 + st) + (P - 1) * (4 * b + P + 3 + st) + (6 * b + 6 * P + 4 + st)
             + W2 + (3 * b + 3))
    nnz_h = 3 * b + h1 + 3 * b + b + eqh + P * (1 + 2 * b) + h2 + 1
    return {
        "bits": b, "P": P, "padded_len": Np, "stages": S, "T1": T1, "T2": T2, "Tb": Tb,
        "layers": L, "width": d, "nnz_W": nnz_W, "nnz_h": nnz_h,
        "params": Np * (P + 1) + L * 2 * d + nnz_W + nnz_h,
        "dense_params": L * (d * d + 3 * Np * d),
        "fixed": c * d + 2 * nnz_W + 2 * nnz_h + (P + 1),
    }


# ---------------------------------------------------------------------------------------------
# writing layers down
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    """Channels of a sort-key bit."""

    X: int
    Lo: int
    Hi: int
    C: int
    E: int


@dataclass(frozen=True)
class _Pay:
    """Channels of a payload bit."""

    X: int
    Lo: int
    Hi: int


class _Spec:
    """One BaseConv layer while it is written down: every output channel is declared once by
    ``out(dst, lin, b1, tap, h, b2)`` = (Σ_src lin[src]·u[src] + b1)·(h·u[i − tap, dst] + b2) (no conv
    term when tap is None); undeclared channels output 0."""

    def __init__(self, name: str, d: int, Np: int, cyclic: bool = False):
        self.name, self.d, self.Np, self.cyclic = name, d, Np, cyclic
        self.src, self.dst, self.val = [], [], []
        self.b1, self.b2 = np.zeros(d), np.zeros(d)
        self.taps, self.chans, self.hval = [], [], []
        self.pos_chan, self.pos_b1 = [], []
        self.written: set[int] = set()

    def out(self, dst: int, lin: dict | None = None, b1: float = 0.0, tap: int | None = None,
            h: float = 0.0, b2: float = 0.0, pos_b1: np.ndarray | None = None) -> None:
        if dst in self.written:
            raise RuntimeError(f"{self.name}: channel {dst} written twice")
        self.written.add(dst)
        for src, v in (lin or {}).items():
            if v != 0:
                self.src.append(src)
                self.dst.append(dst)
                self.val.append(float(v))
        self.b1[dst], self.b2[dst] = b1, b2
        if tap is not None and h != 0:
            self.taps.append(tap % self.Np)
            self.chans.append(dst)
            self.hval.append(float(h))
        if pos_b1 is not None:
            self.pos_chan.append(dst)
            self.pos_b1.append(np.asarray(pos_b1, dtype=float))

    def linear(self, dst: int, lin: dict, b1: float = 0.0) -> None:
        """dst = Σ lin·u + b1 (conv branch = b2 = 1)."""
        self.out(dst, lin, b1=b1, b2=1.0)

    def carry(self, *chans: int) -> None:
        for ch in chans:
            self.linear(ch, {ch: 1.0})


def _sum(*chans: int, coef: float = 1.0) -> dict:
    out: dict[int, float] = {}
    for ch in chans:
        out[ch] = out.get(ch, 0.0) + coef
    return out


class _SparseLayer(nn.Module):
    """Eq. (1) with W and h stored sparsely: y = (u W + b1) ⊙ (h ⊛/∗ u + b2).

    Parameters: ``W_val`` (nnz,) with int64 buffers ``W_src``, ``W_dst`` (W[src, dst] = val);
    ``h_val`` with buffers ``h_tap``, ``h_chan`` (h[tap, chan] = val); rows ``b1``, ``b2`` (1, d);
    ``b1_pos`` (N', k) added to the columns ``b1_chan`` of b1 (layer 0 only, k = 0 elsewhere).
    ``dense()`` gives the (W, b1, b2, h) of shapes (d, d), (N', d), (N', d), (N', d) that
    ``mixers.baseconv(..., cyclic=self.cyclic)`` takes.
    """

    def __init__(self, spec: _Spec, dtype, device):
        super().__init__()
        self.name, self.d, self.Np, self.cyclic = spec.name, spec.d, spec.Np, spec.cyclic

        def ints(xs):
            return torch.as_tensor(np.asarray(xs, dtype=np.int64), device=device)

        def reals(xs):
            return torch.as_tensor(np.asarray(xs, dtype=float), dtype=dtype, device=device)

        self.register_buffer("W_src", ints(spec.src))
        self.register_buffer("W_dst", ints(spec.dst))
        self.W_val = frozen(reals(spec.val))  # (nnz,)
        self.register_buffer("h_tap", ints(spec.taps))
        self.register_buffer("h_chan", ints(spec.chans))
        self.h_val = frozen(reals(spec.hval))  # (nnz_h,)
        self.b1 = frozen(reals(spec.b1[None]))  # (1, d)
        self.b2 = frozen(reals(spec.b2[None]))  # (1, d)
        self.register_buffer("b1_chan", ints(spec.pos_chan))
        pos = np.stack(spec.pos_b1, 1) if spec.pos_b1 else np.zeros((spec.Np, 0))
        self.b1_pos = frozen(reals(pos))  # (N', k)

    @mixer_layer(lambda self, v: v.shape[1])
    def forward_cm(self, v: torch.Tensor) -> torch.Tensor:  # (B, d, N') -> (B, d, N')
        B, d, n = v.shape
        routed = v.index_select(1, self.W_src).mul_(self.W_val[:, None])  # (B, nnz, n)
        lin = v.new_zeros(v.shape).index_add_(1, self.W_dst, routed)
        lin += self.b1.T
        if self.b1_chan.numel():
            lin[:, self.b1_chan] += self.b1_pos.T  # position-dependent columns of b1
        conv = self.b2.T.expand(B, d, n).clone()  # (B, d, n)
        if self.h_chan.numel():
            sel = v.index_select(1, self.h_chan)  # (B, nh, n)
            src = torch.arange(n, device=v.device) - self.h_tap[:, None]  # (nh, n): u[i - tap]
            if self.cyclic:
                shifted = sel.gather(2, (src % n).expand(B, -1, -1))
            else:
                shifted = sel.gather(2, src.clamp(min=0).expand(B, -1, -1)) * (src >= 0)
            conv.index_add_(1, self.h_chan, shifted.mul_(self.h_val[:, None]))
        return lin.mul_(conv)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, N', d) -> (B, N', d)
        return self.forward_cm(u.transpose(1, 2)).transpose(1, 2)

    def dense(self):
        d, Np = self.d, self.Np
        W = self.W_val.new_zeros(d, d)
        W.index_put_((self.W_src, self.W_dst), self.W_val.detach(), accumulate=True)  # (d, d)
        b1 = self.b1.detach().expand(Np, d).clone()  # (N', d)
        b1[:, self.b1_chan] += self.b1_pos.detach()
        b2 = self.b2.detach().expand(Np, d).clone()  # (N', d)
        h = self.W_val.new_zeros(Np, d)
        h.index_put_((self.h_tap, self.h_chan), self.h_val.detach(), accumulate=True)  # (N', d)
        return W, b1, b2, h


# ---------------------------------------------------------------------------------------------
# the construction
# ---------------------------------------------------------------------------------------------
class BaseConvSorting(Construction):
    """Sorting-network BaseConv for MQAR (see the module docstring for the derivation and counts).

    ``num_parameters`` counts the stored numbers: nonzero values of every W and h, the rows b1, b2
    (1 × d each) per layer and layer 0's position-dependent b1 columns; ``dense_num_parameters``
    eq. (1)'s count with dense weights. ``num_fixed``: the code table (c × d) and the int64
    positions of the sparse entries.
    """

    name = "baseconv_sorting"
    theorem = "Thm 4.4 (data-independent filters; sorting-network construction, Õ(N log c) params)"

    def __init__(self, vocab_size: int, seq_len: int, threshold: float = 0.5, *,
                 dtype: torch.dtype = torch.float64, device="cpu"):
        super().__init__(vocab_size, seq_len)
        check_threshold(threshold)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
        c, N = vocab_size, seq_len
        self.bits, self.P = _bits(c), math.ceil(math.log2(N))
        self.padded_len = 2**self.P
        self.threshold = float(threshold)
        self._allocate()

        x = torch.arange(c)
        codes = torch.zeros(c, self.width, dtype=dtype)  # (c, d): token bits, key flag
        for j in range(self.bits):
            codes[:, self.tok[j].X] = ((x >> j) & 1).to(dtype)
        codes[:, self.KEY] = ((x >= 1) & (x < c // 2)).to(dtype)
        self.register_buffer("codes", codes.to(device))

        self.layers = nn.ModuleList(_SparseLayer(s, dtype, device) for s in self._specs())
        self.num_layers = len(self.layers)

    def _allocate(self) -> None:
        b, P = self.bits, self.P
        nxt = iter(range(10**9))

        def key():
            return _Key(*(next(nxt) for _ in range(5)))

        def pay():
            return _Pay(*(next(nxt) for _ in range(3)))

        self.tok = [key() for _ in range(b)]  # tok[j]: token bit j
        self.pos = [key() for _ in range(P)]  # pos[j]: position bit j
        self.suc = [pay() for _ in range(b)]  # successor bit j, later the answer bit j
        self.an = pay()  # "has an earlier occurrence"
        self.rho = [next(nxt) for _ in range(P)]  # row bits (static)
        self.KEY, self.WM = next(nxt), next(nxt)
        self.width = next(nxt)

    # --- the layers, as in the module docstring ------------------------------------------------
    def _specs(self) -> list[_Spec]:
        b, P, Np, d = self.bits, self.P, self.padded_len, self.width
        tok, pos, suc, an, rho, KEY, WM = self.tok, self.pos, self.suc, self.an, self.rho, self.KEY, self.WM
        rows = np.arange(Np)
        statics = [*rho, KEY]
        specs: list[_Spec] = []
        stages = bitonic_stages(P)

        def new(name, cyclic=False):
            s = _Spec(name, d, Np, cyclic)
            specs.append(s)
            return s

        def fan_out(s, keys, pays, sources):
            """Materialise each record bit (lazy sum of ``sources(g)``) into X, Lo, Hi (and E, C = x + WM)."""
            for g in keys:
                src = _sum(*sources(g))
                for ch in (g.X, g.Lo, g.Hi, g.E):
                    s.linear(ch, src)
                s.linear(g.C, {**src, WM: 1.0})
            for g in pays:
                src = _sum(*sources(g))
                for ch in (g.X, g.Lo, g.Hi):
                    s.linear(ch, src)

        def lazy(g):
            return (g.X, g.Lo, g.Hi)

        # 0. inject the row bits and the first stage's direction mask; copy the token bits
        s = new("inject")
        for j in range(P):
            s.out(rho[j], b2=1.0, pos_b1=(rows >> j) & 1)
        s.out(WM, b2=1.0, pos_b1=(((rows >> 0) & 1) == ((rows >> 1) & 1)))
        for j in range(b):
            s.carry(tok[j].X)
            for ch in (suc[j].X, suc[j].Lo, suc[j].Hi):
                s.linear(ch, {tok[j].X: 1.0})
        s.carry(KEY)

        # 1. successor (shift up by one) + fan-out of the first stage
        s = new("successor + fan-out", cyclic=True)
        for j in range(b):
            for ch in (suc[j].X, suc[j].Lo, suc[j].Hi):
                s.out(ch, b1=1.0, tap=-1, h=1.0)
        fan_out(s, tok, [], lambda g: (g.X,))
        for j in range(P):
            g = pos[j]
            for ch in (g.X, g.Lo, g.Hi, g.E):
                s.linear(ch, {rho[j]: 1.0})
            s.linear(g.C, {rho[j]: 1.0, WM: 1.0})
        s.carry(WM, *statics)

        def sort(tag, keys, pays, first_next):
            """The bitonic network; keys MSB first. ``first_next``: the stage after the last one
            (for its WM), or None."""
            record = [*keys, *pays]
            for idx, (q, k) in enumerate(stages):
                nq = stages[idx + 1] if idx + 1 < len(stages) else first_next
                sh = 2**k
                s = new(f"{tag} ({q},{k}) fetch", cyclic=True)
                for g in record:
                    s.carry(g.X)
                    s.out(g.Lo, {rho[k]: -1.0}, b1=1.0, tap=-sh, h=1.0)
                    s.out(g.Hi, {rho[k]: 1.0}, tap=sh, h=1.0)
                for g in keys:
                    s.carry(g.C, g.E)
                s.carry(WM, *statics)

                s = new(f"{tag} ({q},{k}) leaf")
                for g in keys:
                    s.out(g.C, {g.Lo: 1.0, g.Hi: 1.0, WM: -1.0}, tap=0, h=-1.0, b2=1.0)
                    s.out(g.E, {g.X: -1.0, g.Lo: -1.0, g.Hi: -1.0}, b1=1.0, tap=0, h=-2.0, b2=1.0)
                for g in record:
                    s.carry(*lazy(g))
                s.carry(*statics)

                nodes = [(g.E, [g.C]) for g in keys]  # (eq channel, lt channels), MSB first
                level = 0
                while len(nodes) > 1:
                    level += 1
                    s = new(f"{tag} ({q},{k}) tree {level}")
                    root, new_nodes = len(nodes) == 2, []
                    for i in range(0, len(nodes), 2):
                        if i + 1 == len(nodes):
                            eq, lt = nodes[i]
                            s.carry(eq, *lt)
                            new_nodes.append(nodes[i])
                            continue
                        (eqA, ltA), (eqB, ltB) = nodes[i], nodes[i + 1]
                        s.out(eqA, _sum(*ltB), tap=0, h=1.0)  # eq_A·lt_B
                        if not root:
                            s.out(eqB, {eqA: 1.0}, tap=0, h=1.0)  # eq_A·eq_B
                        s.carry(*ltA)
                        new_nodes.append((eqB, [*ltA, eqA]))
                    nodes = new_nodes
                    for g in record:
                        s.carry(*lazy(g))
                    s.carry(*statics)
                    if level == 1:
                        if nq is not None and nq[0] < P:
                            s.linear(WM, {rho[nq[0]]: 1.0})
                    elif nq is not None:
                        s.carry(WM)
                swap = nodes[0][1]

                s = new(f"{tag} ({q},{k}) swap")
                for g in record:
                    s.out(g.X, _sum(*swap, coef=-1.0), b1=1.0, tap=0, h=1.0)
                    s.out(g.Lo, _sum(*swap), tap=0, h=1.0)
                    s.out(g.Hi, _sum(*swap), tap=0, h=1.0)
                if nq is not None:
                    nq_q, nq_k = nq
                    if nq_q < P:
                        s.out(WM, {rho[nq_k]: -1.0, rho[nq_q]: -1.0}, b1=1.0, tap=0, h=-2.0, b2=1.0)
                    else:
                        s.out(WM, {rho[nq_k]: -1.0}, b1=1.0, b2=1.0)
                s.carry(*statics)

                if idx + 1 < len(stages):
                    s = new(f"{tag} ({q},{k}) fan-out")
                    fan_out(s, keys, pays, lazy)
                    s.carry(WM, *statics)

        # sort 1: key (token bits, position bits), MSB first; payload: the successor
        keys1 = [*tok[::-1], *pos[::-1]]
        sort("sort1", keys1, suc, stages[0])

        # look back: the previous row's token bits, then [t = t'], then the eq tree
        s = new("look back")
        for g in tok:
            s.linear(g.E, _sum(*lazy(g)))
            for ch in lazy(g):
                s.out(ch, b1=1.0, tap=1, h=1.0)
        for g in suc:
            s.linear(g.X, _sum(*lazy(g)))
            s.linear(g.Lo, _sum(*lazy(g)))
        for g in pos:
            s.linear(g.X, _sum(*lazy(g)))
        s.carry(WM, *statics)

        keep = [*(ch for g in suc for ch in (g.X, g.Lo)), *(g.X for g in pos), WM, *statics]
        s = new("equal to previous")
        for g in tok:
            s.out(g.E, {g.E: -1.0, **_sum(*lazy(g), coef=-1.0)}, b1=1.0, tap=0, h=-2.0, b2=1.0)
        s.carry(*keep)

        eqs = [g.E for g in tok]
        level = 0
        while len(eqs) > 1:
            level += 1
            s = new(f"eq tree {level}")
            root, new_eqs = len(eqs) == 2, []
            for i in range(0, len(eqs), 2):
                if i + 1 == len(eqs):
                    s.carry(eqs[i])
                    new_eqs.append(eqs[i])
                    continue
                A, B_ = eqs[i], eqs[i + 1]
                s.out(B_, {A: 1.0}, tap=0, h=1.0)
                if root:
                    s.out(A, {B_: 1.0}, tap=0, h=1.0)
                new_eqs.append(B_)
            s.carry(*keep)
            if root:
                nf, an_copy = eqs[1], eqs[0]
            eqs = new_eqs

        # segmented scan: copy the run head's successor down the run
        for t in range(P):
            sh = 2**t
            s = new(f"scan {t} a")
            s.out(nf, {nf: 1.0}, tap=sh, h=1.0)
            for g in suc:
                s.out(g.X, {nf: -1.0}, b1=1.0, tap=0, h=1.0)
                s.out(g.Lo, {nf: 1.0}, tap=sh, h=1.0)
            s.carry(an_copy, *(g.X for g in pos), WM, *statics)
            s = new(f"scan {t} b")
            if t + 1 < P:
                for g in suc:
                    s.linear(g.X, _sum(g.X, g.Lo))
                    s.linear(g.Lo, _sum(g.X, g.Lo))
                s.carry(nf, an_copy, *(g.X for g in pos), WM, *statics)
            else:  # also sort 2's fan-out
                fan_out(s, pos, [*suc, an], lambda g: (g.X, g.Lo) if g in suc else
                        ((an_copy,) if g == an else (g.X,)))
                s.carry(WM, *statics)

        # sort 2: key (position bits), MSB first; payload: the answer bits and the flag
        sort("sort2", pos[::-1], [*suc, an], None)

        s = new("read-out")
        for g in suc:
            s.linear(g.X, _sum(*lazy(g)))
        s.out(KEY, _sum(*lazy(an)), tap=0, h=1.0)
        return specs

    # --- sizes -------------------------------------------------------------------------------
    @property
    def dense_num_parameters(self) -> int:
        """Eq. (1)'s count with dense weights: L·(d² + 3N'd)."""
        d, Np = self.width, self.padded_len
        return self.num_layers * (d * d + 3 * Np * d)

    def dense_layers(self):
        """Every layer as (W (d,d), b1 (N',d), b2 (N',d), h (N',d), cyclic) for ``mixers.baseconv``."""
        return [(*layer.dense(), layer.cyclic) for layer in self.layers]

    def summary(self) -> dict:
        return {**super().summary(), "dense_params": self.dense_num_parameters, "bits": self.bits,
                "padded_len": self.padded_len}

    # --- forward -----------------------------------------------------------------------------
    def encode_cm(self, tokens) -> torch.Tensor:
        """(B, n) tokens -> (B, d, N') channel-major codes, padded with the filler 0 to N' rows."""
        x = self.check_tokens(tokens)
        x = nn.functional.pad(x, (0, self.padded_len - x.shape[1]))  # filler 0 is never a key
        return self.codes[x].transpose(1, 2).contiguous()

    def streams(self, tokens) -> list[torch.Tensor]:
        """[u, y_0, .., y_{L-1}], each (B, N', d): for a worked instance and the layer tests."""
        out = [self.encode_cm(tokens)]
        for layer in self.layers:
            out.append(layer.forward_cm(out[-1]))
        return [v.transpose(1, 2) for v in out]

    def forward(self, tokens) -> torch.Tensor:
        """(B, n, b+1) scores: the answer bits V_0 .. V_{b-1} and the answer flag M, rows 0..n-1."""
        n = self.check_tokens(tokens).shape[1]
        v = self.encode_cm(tokens)
        for layer in self.layers:
            v = layer.forward_cm(v)
        chans = [g.X for g in self.suc] + [self.KEY]
        return v[:, chans, :n].transpose(1, 2)

    def predict(self, tokens) -> torch.Tensor:
        """(B, n) LongTensor: Σ_j 2^j [V_j > threshold] where M > threshold, else -1."""
        s = self(tokens)
        b = self.bits
        weights = 2 ** torch.arange(b, device=s.device)
        token = ((s[..., :b] > self.threshold).long() * weights).sum(-1)
        return torch.where(s[..., b] > self.threshold, token, torch.full_like(token, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) distance of the read-out from the threshold, min over the b + 1 output channels
        (all bits; 1/2 when every channel is exactly 0 or 1)."""
        return (self(tokens) - self.threshold).abs().amin(-1)


def baseconv_sorting(vocab_size: int, seq_len: int, threshold: float = 0.5, *,
                     dtype: torch.dtype = torch.float64, device="cpu") -> BaseConvSorting:
    """Build the sorting-network BaseConv for vocabulary size c and sequence length N.

    Args:
        vocab_size: c, even, >= 4 (keys [1, c/2), values [c/2, c), filler 0).
        seq_len: N >= 4, the longest input; predict accepts any length <= N (padded to N' = 2^⌈log2 N⌉).
        threshold: read-out threshold on the 0/1 output channels, in (0, 1); default 1/2.
        dtype, device: of the weights (float64 default; float32 is exact too, every value is a small integer).
    """
    return BaseConvSorting(vocab_size, seq_len, threshold, dtype=dtype, device=device)
