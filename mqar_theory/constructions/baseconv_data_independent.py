"""Data-independent BaseConv solves MQAR: one shift group per distance, a bit-product tree, a sum.

Claim (Zoology, arXiv 2312.04927, Thm 4.4). On binary token codes
u ∈ {0,1}^{N×O(log c)}, a stack of BaseConv layers (eq. 1, y = (u W + b1) ⊙ (h ∗ u + b2)) whose
filters and biases depend only on (c, N) solves MQAR. The paper reaches Õ(N log c) parameters and
Õ(1) layers through a dyadic-interval circuit compiled by Thm 4.2 (its details are UNVERIFIED);
Based (arXiv 2402.18668) Thm 3.2 / 3.4 show Ω(log log c) and Ω(log log N) layers are necessary for
binary inputs of small width. This module is the simple *all-distances* construction instead:
no circuit compiler, every weight written down below, depth ⌈log2 ⌈log2 c⌉⌉ + 4 = O(log log c)
independent of N, and width N·(⌈log2 c⌉ + 1), growing with N as the paper says gated convolutions
must in shallow models. (The Õ(N log c) dyadic version is not implemented.)

Notation. c = vocab_size, N = seq_len, b = ⌈log2 c⌉ code bits (every token 0 .. c-1 gets a
distinct code; c >= 4 so b >= 2), r = b + 1 slots per channel group, G = N - 1 shift groups
s = 1 .. N-1 plus a shared group s = 0, width d = N·r. Channel (s, j) is column s·r + j.
bit_j(x) = (x >> j) & 1 and a_j(x) = 2·bit_j(x) - 1 ∈ {±1}; key(x) = 1 if 1 <= x < c/2.

Encoding (a fixed table, ``num_fixed``): u_i[(0, j)] = bit_j(x_i) for j < b, u_i[(0, b)] = key(x_i),
every other channel 0 (the input zero-padded into the top-left corner, `def: gated-conv`).

The target. At a key position i, x_i = x_{i-s} for exactly the distances s to its earlier
occurrences j = i - s, and the answer is x_{j+1} = x_{i-s+1} (shift s - 1, which is causal). So

    m_s[i] = Π_{j<b} [bit_j(x_i) = bit_j(x_{i-s})],     Y_k[i] = key(x_i) Σ_s m_s[i] a_k(x_{i-s+1}),
    M[i]   = key(x_i) Σ_s m_s[i],

and with a consistent dictionary (every earlier occurrence of x_i followed by the same token, true
for every make_mqar sequence; base.py) Y_k = M·a_k(answer): the answer is Σ_k 2^k [Y_k > 0] when
M >= 1, and "none" (-1) when M = 0. Each bit test is a pair product of ±1 codes,

    [bit = bit'] = (1 + a·a')/2        (a, a' ∈ {±1}; checked with sympy in the tests),

and a causal convolution pads with zeros, which the affine map turns into a' = -1 on every bit:
a position before the sequence start looks like token 0, which is never a key, so m_s[i] = 0 for
s > i at every key position (non-key positions are zeroed by the key gate at the end).

The layers (each a BaseConv; "route" means an entry of W, "carry" the identity primitive W = 1 on
the channel, h = 0, b1 = 0, b2 = 1; everything not listed is 0, so unused channels output 0):

  0. fan-out (linear projection, h = 0, b1 = 0): route (0, j) -> (s, j) for every s >= 1, j < b,
     carry group 0. BaseConv's conv branch is channel-wise, so the next layer can shift bit j by s
     only if a copy of bit j sits in channel (s, j). Output (s, j) = bit_j(x_i).
  1. bit products: channel (s, j), j < b: W = 2, b1 = -1 (the linear branch is a_j(x_i)); h = 2 at
     tap s, b2 = -1 (the conv branch is a_j(x_{i-s}), -1 on padding). Output p_{s,j} = a_j(x_i)·a_j(x_{i-s}).
     Carry group 0.
  2 .. T+1. product tree, T = ⌈log2 b⌉ levels. At level t the live slots of group s are the
     multiples of 2^(t-1) below b; slot j (a multiple of 2^t) gets the product of slot j (conv
     branch, tap 0) and slot j + 2^(t-1) (linear branch, routed) when that slot exists, else
     slot j alone (b1 = 1). Level 1 also applies e = (1 + p)/2 to both factors: W = 1/2, b1 = 1/2,
     h = 1/2 at tap 0, b2 = 1/2 (a single: b1 = 1, h = 1/2, b2 = 1/2). After level T, slot (s, 0)
     holds m_s ∈ {0, 1}. Levels 1 .. T-1 carry group 0; level T carries key (0, b) and routes the
     bits (0, k) -> (s, 1 + k) (b2 = 1), the copies the value layer shifts.
  T+2. value gate: (s, 1 + k): route (s, 0) -> (s, 1 + k) (the linear branch is m_s), h = 2 at tap
     s - 1, b2 = -1 (the conv branch is a_k(x_{i-s+1})): output m_s·a_k(x_{i-s+1}). Carry (s, 0)
     (m_s). Route key (0, b) -> (0, j) for every j <= b, b2 = 1: r copies of key(x_i).
  T+3. sum and key gate: (0, k), k < b: route (s, 1 + k) -> (0, k) for every s >= 1, h = 1 at tap 0
     (the conv branch reads the key copy in that channel): Y_k. (0, b): route (s, 0) -> (0, b),
     h = 1 at tap 0: M.

Read-out: scores = channels (0, 0 .. b) = (Y_0 .. Y_{b-1}, M); predict answers
Σ_k 2^k [Y_k > 0] where M > ``threshold`` (default 1/2), else -1. Every value in the stream is an
integer or a half, so float64 and float32 are both exact (sums stay far below 2^24): the margin,
min(M - 1/2, min_k |Y_k|) at answers and 1/2 - M elsewhere, is exactly 1/2 on make_mqar inputs.

Dictionary consistency (our decision, base.py). If a key's earlier occurrences are followed by
different tokens (random filler can do this; Definition 3.1 then asks for two answers), Y_k adds their codes, so
the answer is a bitwise majority and not ``mqar_oracle``'s first occurrence; a tie shows as a zero
margin (tested). Exactness is claimed, and tested, wherever the dictionary is consistent.

Counts (closed forms in ``data_independent_counts(c, N)``, checked against the built module in the tests):

  * layers L = T + 4 = ⌈log2 ⌈log2 c⌉⌉ + 4 (5 at c = 4, 8 at c = 1024 or 65536), independent of N.
    m_s has degree 2b in the inputs and a layer at most doubles the degree, so a binary input
    needs log2(2b) layers (the argument of Based Thm 3.2); the bit products and the tree take
    ⌈log2 b⌉ + 1 = ⌈log2(2b)⌉, exactly that. Fan-out, value gate and sum are the O(1) rest.
  * width d = N·(b + 1) = O(N log c).
  * dense parameters, as eq. (1) counts them (W d×d, b1, b2, h N×d each, per layer):
    L·(d² + 3Nd) = (T + 4)·(N²(b+1)² + 3N²(b+1)) = O(N² log² c · log log c).
  * stored parameters (``num_parameters``): W is stored sparse (its nonzero values; the positions
    are integer buffers), b1 and b2 are position-independent rows (1, d) broadcast over positions,
    h is stored dense with as many taps as its longest shift needs (N for layer 1, N - 1 for the
    value gate, 1 elsewhere). Nonzeros of W per layer: fan-out r + Gb, bit products r + Gb, tree
    G(b - 1) in all (b - 1 pair products per group) plus r per level carrying group 0 below T and
    1 + Gb at level T, value gate r + G·r, sum G·r; in all nnz = G(6b + 1) + r(T + 2) + 1. So
    stored = nnz + 2dL + d(2N + T + 1) = 2N²(b+1) + O(N log c · log log c) = O(N² log c), dominated
    by the two banks of impulse filters: a factor ~N above Thm 4.4's Õ(N log c), the price of one
    filter per distance instead of the paper's dyadic circuit.
  * ``num_fixed`` = c·r (the code table) + 2·nnz (the int64 row/column indices of the sparse W's).

Computation. The stack runs channel-major, (B, d, n), so that routing channels through the sparse
W and shifting them in time move contiguous rows; a filter whose channels are single impulses (all
of them here) is applied as the shift it is, by a gather, and any other h by the FFT convolution
of ``mixers.conv.causal_conv``. Each layer is checked against ``mixers.baseconv`` on its dense
weights (``dense_layers``). A forward pass holds a few (B, d, n) activations, d = N(b+1);
``chunk_elements`` bounds the batch slice processed at once. At N = c = 1024, d = 11264: 11.5M
numbers per sequence and activation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..mixers.conv import causal_conv
from ..utils import is_int
from .base import Construction, check_threshold, frozen, mixer_layer

__all__ = ["BaseConvDataIndependent", "baseconv_data_independent", "data_independent_counts"]


def _bits(vocab_size: int) -> int:
    """b = ⌈log2 c⌉: enough bits for distinct codes of the tokens 0 .. c-1."""
    return max(1, math.ceil(math.log2(vocab_size)))


def data_independent_counts(vocab_size: int, seq_len: int) -> dict:
    """Closed-form sizes of ``baseconv_data_independent(vocab_size, seq_len)`` (derived in the
    module docstring): bits b, tree levels T, layers, width, nnz (nonzeros of all W), params
    (stored, = ``num_parameters``), dense_params (eq. (1) with dense W, b1, b2, h), fixed."""
    c, N = vocab_size, seq_len
    b = _bits(c)
    T = math.ceil(math.log2(b))
    r, G = b + 1, N - 1
    L, d = T + 4, N * (b + 1)
    nnz = G * (6 * b + 1) + r * (T + 2) + 1
    return {
        "bits": b,
        "tree_levels": T,
        "layers": L,
        "width": d,
        "nnz": nnz,
        "params": nnz + 2 * d * L + d * (2 * N + T + 1),
        "dense_params": L * (d * d + 3 * N * d),
        "fixed": c * r + 2 * nnz,
    }


class _Spec:
    """The numbers of one BaseConv layer while it is being written down (numpy, float64)."""

    def __init__(self, name: str, d: int):
        self.name, self.d = name, d
        self.src, self.dst, self.val = [], [], []  # W[src, dst] = val
        self.b1, self.b2 = np.zeros(d), np.zeros(d)
        self.taps, self.chans, self.hval = [], [], []  # h[tap, chan] = hval

    def route(self, src, dst, val=1.0):
        src, dst, val = np.broadcast_arrays(np.asarray(src), np.asarray(dst), np.asarray(val, dtype=float))
        self.src.append(src.ravel())
        self.dst.append(dst.ravel())
        self.val.append(val.ravel())

    def conv(self, tap, chan, val=1.0):
        tap, chan, val = np.broadcast_arrays(np.asarray(tap), np.asarray(chan), np.asarray(val, dtype=float))
        self.taps.append(tap.ravel())
        self.chans.append(chan.ravel())
        self.hval.append(val.ravel())

    def carry(self, chan):
        """Identity primitive on these channels: W = 1, h = 0, b1 = 0, b2 = 1."""
        self.route(chan, chan)
        self.b2[np.asarray(chan)] = 1.0


class _SparseBaseConv(nn.Module):
    """Eq. (1) with a sparsely stored W: y = (u W + b1) ⊙ (h ∗ u + b2).

    Parameters: ``W_val`` (nnz,) with int64 buffers ``W_src``, ``W_dst`` (W[src, dst] = val);
    ``b1``, ``b2`` (1, d), position-independent and broadcast over positions; ``h`` (L, d), a causal
    filter with L taps (``causal_conv`` of ``mixers.conv``). ``dense(N)`` gives the same layer as
    the (W, b1, b2, h) of shapes (d, d), (N, d), (N, d), (N, d) that ``mixers.baseconv`` takes.
    """

    def __init__(self, spec: _Spec, dtype, device):
        super().__init__()
        self.name, self.d = spec.name, spec.d
        def cat(xs, dt):
            return torch.as_tensor(np.concatenate(xs) if xs else np.zeros(0), dtype=dt, device=device)

        self.register_buffer("W_src", cat(spec.src, torch.long))
        self.register_buffer("W_dst", cat(spec.dst, torch.long))
        self.W_val = frozen(cat(spec.val, dtype))  # (nnz,)
        self.b1 = frozen(torch.as_tensor(spec.b1[None], dtype=dtype, device=device))  # (1, d)
        self.b2 = frozen(torch.as_tensor(spec.b2[None], dtype=dtype, device=device))  # (1, d)
        taps, chans = cat(spec.taps, torch.long), cat(spec.chans, torch.long)
        h = torch.zeros(int(taps.max()) + 1 if taps.numel() else 1, spec.d, dtype=dtype, device=device)
        h.index_put_((taps, chans), cat(spec.hval, dtype), accumulate=True)
        self.h = frozen(h)  # (L, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return self.forward_cm(u.transpose(1, 2)).transpose(1, 2)

    @mixer_layer(lambda self, v: v.shape[1])
    def forward_cm(self, v: torch.Tensor) -> torch.Tensor:  # (B, d, n) -> (B, d, n)
        """Eq. (1) on a channel-major stream (v = uᵀ per sequence), the layout the stack runs in:
        selecting channels and shifting in time then move contiguous rows."""
        n = v.shape[-1]
        routed = v.index_select(1, self.W_src).mul_(self.W_val[:, None])  # (B, nnz, n): u[:, src]·W[src, dst]
        lin = v.new_zeros(v.shape).index_add_(1, self.W_dst, routed)
        lin += self.b1[:n].T  # (B, d, n): (u W + b1)ᵀ
        conv = self.conv_cm(v)
        conv += self.b2[:n].T  # (B, d, n): (h ∗ u + b2)ᵀ
        return lin.mul_(conv)

    def conv_cm(self, v: torch.Tensor) -> torch.Tensor:  # (B, d, n) -> (B, d, n)
        """(h ∗ u)ᵀ, causal. When every channel's filter is a single impulse (all filters here), it is
        the shift y[i, q] = h[t_q, q]·u[i - t_q, q] (0 for i < t_q), done by a gather: exact, and
        cheaper than the FFT of ``mixers.conv.causal_conv``, which handles any other h."""
        n = v.shape[-1]
        impulses = self._impulses()
        if impulses is None:
            return causal_conv(v.transpose(1, 2), self.h[:n]).transpose(1, 2)
        tap, coef = impulses  # (d,), (d, 1)
        coef = torch.where(tap[:, None] < n, coef, 0.0)  # taps >= n never reach the input
        tap = tap.clamp(max=n - 1)
        top = int(tap.max())
        if top == 0:
            return v * coef
        padded = nn.functional.pad(v, (top, 0))  # (B, d, top + n): zeros before position 0
        idx = torch.arange(top, top + n, device=v.device) - tap[:, None]  # (d, n) source of y[q, i]
        return padded.gather(2, idx.expand(v.shape[0], -1, -1)).mul_(coef)

    def _impulses(self):
        """(tap (d,), height (d, 1)) of h when each channel has at most one nonzero tap, else None;
        recomputed whenever h changes (its version, storage, dtype or device)."""
        h = self.h
        key = (h.data_ptr(), h._version, h.dtype, h.device)
        if getattr(self, "_impulse_key", None) != key:
            nz = h != 0
            single = bool((nz.sum(0) <= 1).all())
            tap = (nz * torch.arange(h.shape[0], device=h.device)[:, None]).sum(0)  # (d,)
            self._impulse_key, self._impulse = key, ((tap, h.gather(0, tap[None]).T) if single else None)
        return self._impulse

    def dense(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        d, N = self.d, seq_len
        W = self.W_val.new_zeros(d, d)
        W.index_put_((self.W_src, self.W_dst), self.W_val.detach(), accumulate=True)  # (d, d)
        h = self.h.new_zeros(N, d)
        h[: self.h.shape[0]] = self.h.detach()
        return W, self.b1.detach().expand(N, d).clone(), self.b2.detach().expand(N, d).clone(), h


class BaseConvDataIndependent(Construction):
    """Data-independent BaseConv for MQAR (see the module docstring for the derivation).

    ``num_parameters`` counts the stored weight numbers: the nonzero values of every W, the rows
    b1, b2 (1 × d each) and the filters h (taps × d), per layer; ``dense_num_parameters`` the count
    of eq. (1) with dense W (d × d) and b1, b2, h of N × d. ``num_fixed``: the code table (c × (b+1))
    and the int64 positions of the nonzeros of W.
    """

    name = "baseconv_data_independent"
    theorem = "Thm 4.4 (data-independent filters; all-distances construction, O(log log c) layers)"

    def __init__(self, vocab_size: int, seq_len: int, threshold: float = 0.5, *,
                 dtype: torch.dtype = torch.float64, device="cpu", chunk_elements: int = 2**22):
        super().__init__(vocab_size, seq_len)
        check_threshold(threshold)
        if not (is_int(chunk_elements) and chunk_elements >= 1):
            raise ValueError(f"chunk_elements={chunk_elements!r}: must be an integer >= 1")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
        c, N = vocab_size, seq_len
        b = _bits(c)
        self.bits, self.tree_levels = b, math.ceil(math.log2(b))
        self.slots, self.width = b + 1, N * (b + 1)
        self.threshold, self.chunk_elements = float(threshold), chunk_elements

        x = torch.arange(c)
        codes = torch.zeros(c, self.slots, dtype=dtype)  # (c, b+1): bits, then key flag
        codes[:, :b] = ((x[:, None] >> torch.arange(b)) & 1).to(dtype)
        codes[:, b] = ((x >= 1) & (x < c // 2)).to(dtype)
        self.register_buffer("codes", codes.to(device))

        self.layers = nn.ModuleList(_SparseBaseConv(s, dtype, device) for s in self._specs())
        self.num_layers = len(self.layers)

    def ch(self, s, j):
        """Column of channel (s, j): group s (0 shared, 1 .. N-1 the shifts), slot j in 0 .. b."""
        return np.asarray(s) * self.slots + np.asarray(j)

    def _specs(self) -> list[_Spec]:
        b, d, T, N = self.bits, self.width, self.tree_levels, self.seq_len
        ch, key = self.ch, b
        S = np.arange(1, N)[:, None]  # (G, 1) shift groups
        J = np.arange(b)[None, :]  # (1, b) bit slots
        group0 = ch(0, np.arange(b + 1))
        specs = []

        fan = _Spec("fan-out", d)
        fan.carry(group0)
        fan.route(ch(0, J), ch(S, J))
        fan.b2[ch(S, J)] = 1.0
        specs.append(fan)

        prod = _Spec("bit products", d)
        prod.carry(group0)
        prod.route(ch(S, J), ch(S, J), 2.0)
        prod.b1[ch(S, J)] = -1.0
        prod.conv(S, ch(S, J), 2.0)
        prod.b2[ch(S, J)] = -1.0
        specs.append(prod)

        for t in range(1, T + 1):
            lvl = _Spec(f"tree level {t}", d)
            half, first = 2 ** (t - 1), t == 1
            for j in range(0, b, 2 * half):
                out = ch(S, j)
                if j + half < b:  # a pair: slot j (conv branch) times slot j + half (linear branch)
                    lvl.route(ch(S, j + half), out, 0.5 if first else 1.0)
                    lvl.b1[out] = 0.5 if first else 0.0
                else:  # a single: slot j times 1
                    lvl.b1[out] = 1.0
                lvl.conv(0, out, 0.5 if first else 1.0)
                lvl.b2[out] = 0.5 if first else 0.0
            if t < T:
                lvl.carry(group0)
            else:
                lvl.carry(ch(0, key))
                lvl.route(ch(0, J), ch(S, 1 + J))  # the value copies
                lvl.b2[ch(S, 1 + J)] = 1.0
            specs.append(lvl)

        val = _Spec("value gate", d)
        val.route(ch(S, 0), ch(S, 1 + J))
        val.conv(S - 1, ch(S, 1 + J), 2.0)
        val.b2[ch(S, 1 + J)] = -1.0
        val.carry(ch(S, 0))
        val.route(ch(0, key), group0)
        val.b2[group0] = 1.0
        specs.append(val)

        out = _Spec("sum and key gate", d)
        out.route(ch(S, 1 + J), ch(0, J))
        out.route(ch(S, 0), ch(0, key))
        out.conv(0, group0, 1.0)
        specs.append(out)
        return specs

    # --- sizes -------------------------------------------------------------------------------
    @property
    def dense_num_parameters(self) -> int:
        """Eq. (1)'s count with dense weights: L·(d² + 3Nd)."""
        d, N = self.width, self.seq_len
        return self.num_layers * (d * d + 3 * N * d)

    def dense_layers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every layer as the dense (W (d,d), b1 (N,d), b2 (N,d), h (N,d)) of ``mixers.baseconv``.
        Memory L·(d² + 3Nd): for small N only."""
        return [layer.dense(self.seq_len) for layer in self.layers]

    def summary(self) -> dict:
        return {**super().summary(), "dense_params": self.dense_num_parameters, "bits": self.bits}

    # --- forward -----------------------------------------------------------------------------
    def encode(self, tokens) -> torch.Tensor:
        """(B, n) tokens -> (B, n, d): the codes in group 0, zero elsewhere."""
        return self.encode_cm(tokens).transpose(1, 2)

    def encode_cm(self, tokens) -> torch.Tensor:
        """The same, channel-major: (B, d, n)."""
        x = self.check_tokens(tokens)
        v = self.codes.new_zeros(x.shape[0], self.width, x.shape[1])  # (B, d, n)
        v[:, : self.slots] = self.codes[x].transpose(1, 2)
        return v

    def streams(self, tokens) -> list[torch.Tensor]:
        """[u, y_0, .., y_{L-1}]: the encoded input and every layer's output, each (B, n, d); for a
        worked instance (no chunking)."""
        out = [self.encode_cm(tokens)]
        for layer in self.layers:
            out.append(layer.forward_cm(out[-1]))
        return [v.transpose(1, 2) for v in out]

    def forward(self, tokens) -> torch.Tensor:
        """(B, n, b+1) scores (Y_0 .. Y_{b-1}, M): the shared group of the last layer's output."""
        x = self.check_tokens(tokens)
        B, n = x.shape
        if n == 0:
            return self.codes.new_zeros(B, 0, self.slots)
        step = max(1, self.chunk_elements // (n * self.width))
        parts = []
        for lo in range(0, B, step):
            v = self.encode_cm(x[lo : lo + step])  # (B', d, n)
            for layer in self.layers:
                v = layer.forward_cm(v)
            parts.append(v[:, : self.slots].transpose(1, 2))  # (B', n, b+1)
        return torch.cat(parts) if parts else self.codes.new_zeros(0, n, self.slots)

    def predict(self, tokens) -> torch.Tensor:
        """(B, n) LongTensor: Σ_k 2^k [Y_k > 0] where M > threshold, else -1."""
        s = self(tokens)
        b = self.bits
        weights = 2 ** torch.arange(b, device=s.device)
        token = ((s[..., :b] > 0).long() * weights).sum(-1)  # (B, n)
        return torch.where(s[..., b] > self.threshold, token, torch.full_like(token, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) distance of each decision from flipping, in score units (the exact value is 1/2 at
        every unanswered position and at a key with one earlier occurrence): answered positions
        min(M - threshold, min_k |Y_k|), unanswered ones threshold - M."""
        s = self(tokens)
        M, Y = s[..., self.bits], s[..., : self.bits]
        answered = M > self.threshold
        return torch.where(answered, torch.minimum(M - self.threshold, Y.abs().amin(-1)), self.threshold - M)


def baseconv_data_independent(vocab_size: int, seq_len: int, threshold: float = 0.5, *,
                              dtype: torch.dtype = torch.float64, device="cpu",
                              chunk_elements: int = 2**22) -> BaseConvDataIndependent:
    """Build the data-independent BaseConv construction for vocabulary size c and sequence length N.

    Args:
        vocab_size: c, even, >= 4 (keys [1, c/2), values [c/2, c), filler 0).
        seq_len: N >= 4, the longest input; predict accepts any length <= N.
        threshold: read-out threshold on the match count M, in (0, 1); default 1/2 (M is 0 or an
            integer >= 1 when exact).
        dtype, device: of the weights (float64 default: exact; float32 exact up to FFT rounding).
        chunk_elements: memory knob, not part of the model: forward processes the batch in slices
            of at most max(1, chunk_elements // (n·d)) sequences; default 2**22.
    """
    return BaseConvDataIndependent(vocab_size, seq_len, threshold, dtype=dtype, device=device,
                                   chunk_elements=chunk_elements)
