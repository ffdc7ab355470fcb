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

Encoding (a fixed table of c, reported apart): u_i[(0, j)] = bit_j(x_i) for j < b, u_i[(0, b)] = key(x_i),
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
  * stored parameters (``bounds.measure_sizes``): W is stored sparse (its nonzero values; the positions
    are integer buffers), b1 and b2 are position-independent rows (1, d) broadcast over positions,
    h is stored dense with as many taps as its longest shift needs (N for layer 1, N - 1 for the
    value gate, 1 elsewhere). Nonzeros of W per layer: fan-out r + Gb, bit products r + Gb, tree
    G(b - 1) in all (b - 1 pair products per group) plus r per level carrying group 0 below T and
    1 + Gb at level T, value gate r + G·r, sum G·r; in all nnz = G(6b + 1) + r(T + 2) + 1. So
    stored = nnz + 2dL + d(2N + T + 1) = 2N²(b+1) + O(N log c · log log c) = O(N² log c), dominated
    by the two banks of impulse filters: a factor ~N above Thm 4.4's Õ(N log c), the price of one
    filter per distance instead of the paper's dyadic circuit.
  * fixed (reported apart): the code table c·r; index: 2·nnz (the int64 row/column indices of the sparse W's).

Computation. Every layer is a ``layers.SparseBaseConv`` with a dense filter (``dense_h=True``), run
channel-major so that routing channels through the sparse W and shifting them in time move contiguous rows;
each is checked against ``mixers.baseconv`` on its ``dense()`` weights. A forward pass holds a few (B, n, d)
activations, d = N(b+1); ``chunk_elements`` bounds the batch slice the runner processes at once. At
N = c = 1024, d = 11264: 11.5M numbers per sequence and activation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..bounds.bound import Bound, N, c, log2
from ..bounds.claims import Claim
from ..utils import is_int
from .base import DEFAULT_GRIDS, Construction, check_threshold, sweep
from .layers import LayerSpec, SparseBaseConv

__all__ = ["BaseConvDataIndependent", "baseconv_data_independent", "data_independent_counts", "code_table"]

_SOURCE = "mqar_theory baseconv_data_independent (all-distances; no paper theorem)"


def _bits(vocab_size: int) -> int:
    """b = ⌈log2 c⌉: enough bits for distinct codes of the tokens 0 .. c-1."""
    return max(1, math.ceil(math.log2(vocab_size)))


def data_independent_counts(vocab_size: int, seq_len: int) -> dict:
    """Closed-form sizes of ``baseconv_data_independent(vocab_size, seq_len)`` (derived in the
    module docstring): bits b, tree levels T, layers, width, nnz (nonzeros of all W), params
    (stored floating-point numbers), dense_params (eq. (1) with dense W, b1, b2, h), fixed, index."""
    c_, n_ = vocab_size, seq_len
    b = _bits(c_)
    T = math.ceil(math.log2(b))
    r, G = b + 1, n_ - 1
    L, d = T + 4, n_ * (b + 1)
    nnz = G * (6 * b + 1) + r * (T + 2) + 1
    return {
        "bits": b, "tree_levels": T, "layers": L, "width": d, "nnz": nnz,
        "params": nnz + 2 * d * L + d * (2 * n_ + T + 1),
        "dense_params": L * (d * d + 3 * n_ * d),
        "fixed": c_ * r, "index": 2 * nnz,
    }


def code_table(vocab_size: int) -> torch.Tensor:
    """(c, b+1) float64: the token bits, then the key flag (group 0 of the encoded stream)."""
    b = _bits(vocab_size)
    x = torch.arange(vocab_size)
    codes = torch.zeros(vocab_size, b + 1, dtype=torch.float64)
    codes[:, :b] = ((x[:, None] >> torch.arange(b)) & 1).double()
    codes[:, b] = ((x >= 1) & (x < vocab_size // 2)).double()
    return codes


class BaseConvDataIndependent(Construction):
    """Data-independent BaseConv for MQAR (see the module docstring for the derivation).

    Stored parameters: the nonzero values of every W, the rows b1, b2 (1 × d each) and the filters h
    (taps × d), per layer; ``dense_num_parameters`` the count of eq. (1) with dense W (d × d) and b1, b2, h
    of N × d. Reported apart: the code table (c × (b+1)) and the int64 positions of the nonzeros of W.
    """

    name = "baseconv_data_independent"
    theorem = "Thm 4.4 (data-independent filters; all-distances construction, O(log log c) layers)"
    own_bounds = (
        Bound("di-params", _SOURCE, "upper", "params", N * log2(c) * (N + log2(log2(c))),
              "one shift group of ⌈log2 c⌉ + 1 channels per distance: 2N²(b+1) + O(N log c log log c) stored "
              "numbers, O(N log c (N + log log c)) — a factor N/polylog above Thm 4.4's Õ(N log c); the "
              "N log c log log c term (b1, b2 rows of every layer) is not O(N² log c) at fixed N"),
        Bound("di-width", _SOURCE, "upper", "width", N * log2(c), "width N·(⌈log2 c⌉ + 1) = O(N log c): grows with N"),
        Bound("di-layers", _SOURCE, "upper", "layers", log2(log2(c)),
              "⌈log2 ⌈log2 c⌉⌉ + 4 = O(log log c) layers, independent of N (the order of Based Thm 3.2's lower "
              "bound)"),
    )
    claims = (
        Claim("di-layers", const=5, basis="proved",
              why="T + 4 with T = ⌈log2 b⌉: 5 at c = 4 (ratio 5); for c >= 6, T + 4 < log2(L + 1) + 5 and "
                  "(log2(L + 1) + 5)/log2 L decreases, 4.99 at L = log2 6"),
        Claim("di-width", const=1.8, basis="proved", why="N(b + 1)/(N L) < 1 + 2/L: 1.5 at c = 4, <= 1.774 for c >= 6"),
        Claim("di-params", const=20, basis="proved",
              why="stored = 2N²r + Nr(3T + 9) + (N-1)(6b+1) + r(T+2) + 1 (r = b + 1 <= 2L); over "
                  "N L (N + λ): <= 4 + 2(3λ + 13.76)/(λ + 4) + 9.5/5 + (2λ + 7.7)/(4(λ + 4)) <= 4 + 6.71 + 1.9 + 0.5; "
                  "the index 2·nnz adds 2(N-1)(6b+1)/(N L (N+λ)) <= 2(6L+7)/(5L) <= 3.8 and 2(r(T+2)+1)/(N L (N+λ)) "
                  "<= 1, the read-out b + 5 adds <= 0.25: <= 13.11 + 5.05"),
        Claim("thm4.4-layers", const=1, basis="proved",
              why="T + 4 < log2(L + 1) + 5 <= (L + 2)² <= log2²(Nc) for L >= 2, N >= 4"),
        Claim("thm4.4-params", expect="fails", const=100, phrase="grows",
              why="O(N² log c) parameters: the ratio to N log c · log²(Nc) grows like N / log²(Nc)"),
        Claim("based-thm3.2-layers", expect="context"),
        Claim("based-thm3.4-layers", expect="context"),
        Claim("based-combined-layers", expect="context"),
    )
    grids = {**DEFAULT_GRIDS, "gpu": sweep([66, 250, 1000, 2000], 1000, [66, 1000, 65000], 250)}
    style = {"marker": "s", "size": 6, "curves": ("di-params", "di-width"),
             "tex": {"di-params": (r"N\log_2 c\,(N + \log_2\log_2 c)", "ours"), "di-width": (r"N\log_2 c", "ours")},
             "margin_units": "match count M and bit sums Y"}

    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        k = data_independent_counts(c, N)
        # stored values + the int64 positions of W's nonzeros (``index``) + what encode / decode bring: the
        # zero fill of encode, decode's b bit weights 2^k (``arange``), 2, 0, the threshold and the -1 fill
        return {"params": k["params"] + k["index"] + k["bits"] + 5, "layers": k["layers"], "width": k["width"]}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict:
        return {"codes": code_table(c)}

    def __init__(self, vocab_size: int, seq_len: int, threshold: float = 0.5, *,
                 dtype: torch.dtype = torch.float64, device="cpu", chunk_elements: int = 2**22):
        super().__init__(vocab_size, seq_len)
        check_threshold(threshold)
        if not (is_int(chunk_elements) and chunk_elements >= 1):
            raise ValueError(f"chunk_elements={chunk_elements!r}: must be an integer >= 1")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
        b = _bits(vocab_size)
        self.bits, self.tree_levels = b, math.ceil(math.log2(b))
        self.slots, self.d = b + 1, seq_len * (b + 1)
        self.threshold, self.chunk_elements = float(threshold), chunk_elements
        self.register_buffer("codes", code_table(vocab_size).to(dtype=dtype, device=device))
        self.layers = nn.ModuleList(SparseBaseConv(s, dtype, device, dense_h=True) for s in self._specs())

    def ch(self, s, j):
        """Column of channel (s, j): group s (0 shared, 1 .. N-1 the shifts), slot j in 0 .. b."""
        return np.asarray(s) * self.slots + np.asarray(j)

    # --- the layers, step by step as in the module docstring -------------------------------------------
    def _specs(self) -> list[LayerSpec]:
        b, T, n_ = self.bits, self.tree_levels, self.seq_len
        S = np.arange(1, n_)[:, None]  # (G, 1) shift groups
        J = np.arange(b)[None, :]  # (1, b) bit slots
        return [self._fan_out(S, J), self._bit_products(S, J),
                *(self._tree_level(t, S, J) for t in range(1, T + 1)), self._value_gate(S, J), self._sum(S, J)]

    def _group0(self):
        return self.ch(0, np.arange(self.bits + 1))

    def _fan_out(self, S, J) -> LayerSpec:
        """0. route (0, j) -> (s, j) for every s >= 1, j < b (the conv branch is channel-wise, so bit j must
        sit in channel (s, j) for the next layer to shift it by s); carry group 0."""
        ch, spec = self.ch, LayerSpec("fan-out", self.d, self.seq_len)
        spec.carry(self._group0())
        spec.route(ch(0, J), ch(S, J))
        spec.b2[ch(S, J)] = 1.0
        return spec

    def _bit_products(self, S, J) -> LayerSpec:
        """1. (s, j): W = 2, b1 = -1 (linear branch a_j(x_i)); h = 2 at tap s, b2 = -1 (conv branch
        a_j(x_{i-s}), -1 on padding): p_{s,j} = a_j(x_i)·a_j(x_{i-s}). Carry group 0."""
        ch, spec = self.ch, LayerSpec("bit products", self.d, self.seq_len)
        spec.carry(self._group0())
        spec.route(ch(S, J), ch(S, J), 2.0)
        spec.b1[ch(S, J)] = -1.0
        spec.conv(S, ch(S, J), 2.0)
        spec.b2[ch(S, J)] = -1.0
        return spec

    def _tree_level(self, t: int, S, J) -> LayerSpec:
        """2 .. T+1. level t: slot j (a multiple of 2^t) = slot j (conv, tap 0) × slot j + 2^(t-1) (linear)
        when that slot exists, else slot j alone (b1 = 1); level 1 applies e = (1 + p)/2 to both factors.
        Levels below T carry group 0; level T carries the key flag and routes the bits (0, k) -> (s, 1 + k)."""
        ch, b, T = self.ch, self.bits, self.tree_levels
        spec = LayerSpec(f"tree level {t}", self.d, self.seq_len)
        half, first = 2 ** (t - 1), t == 1
        for j in range(0, b, 2 * half):
            out = ch(S, j)
            if j + half < b:  # a pair: slot j (conv branch) times slot j + half (linear branch)
                spec.route(ch(S, j + half), out, 0.5 if first else 1.0)
                spec.b1[out] = 0.5 if first else 0.0
            else:  # a single: slot j times 1
                spec.b1[out] = 1.0
            spec.conv(0, out, 0.5 if first else 1.0)
            spec.b2[out] = 0.5 if first else 0.0
        if t < T:
            spec.carry(self._group0())
        else:
            spec.carry(ch(0, b))
            spec.route(ch(0, J), ch(S, 1 + J))  # the value copies
            spec.b2[ch(S, 1 + J)] = 1.0
        return spec

    def _value_gate(self, S, J) -> LayerSpec:
        """T+2. (s, 1 + k): linear branch m_s (routed from (s, 0)), h = 2 at tap s - 1, b2 = -1 (conv branch
        a_k(x_{i-s+1})): m_s·a_k(x_{i-s+1}). Carry (s, 0); r copies of key(x_i) into group 0."""
        ch, spec = self.ch, LayerSpec("value gate", self.d, self.seq_len)
        spec.route(ch(S, 0), ch(S, 1 + J))
        spec.conv(S - 1, ch(S, 1 + J), 2.0)
        spec.b2[ch(S, 1 + J)] = -1.0
        spec.carry(ch(S, 0).ravel())
        spec.route(ch(0, self.bits), self._group0())
        spec.b2[self._group0()] = 1.0
        return spec

    def _sum(self, S, J) -> LayerSpec:
        """T+3. (0, k) = Σ_s (s, 1 + k) times the key copy (conv tap 0): Y_k; (0, b) = Σ_s (s, 0) times it: M."""
        ch, spec = self.ch, LayerSpec("sum and key gate", self.d, self.seq_len)
        spec.route(ch(S, 1 + J), ch(0, J))
        spec.route(ch(S, 0), ch(0, self.bits))
        spec.conv(0, self._group0(), 1.0)
        return spec

    # --- sizes -------------------------------------------------------------------------------
    @property
    def dense_num_parameters(self) -> int:
        """Eq. (1)'s count with dense weights: L·(d² + 3Nd)."""
        return len(self.layers) * (self.d * self.d + 3 * self.seq_len * self.d)

    def dense_layers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every layer as the dense (W (d,d), b1 (N,d), b2 (N,d), h (N,d)) of ``mixers.baseconv``.
        Memory L·(d² + 3Nd): for small N only."""
        return [layer.dense() for layer in self.layers]

    # --- encode / decode ---------------------------------------------------------------------
    def encode(self, tokens) -> torch.Tensor:
        """(B, n) tokens -> (B, n, d): the codes in group 0, zero elsewhere."""
        x = self.check_tokens(tokens)
        u = self.codes.new_zeros(*x.shape, self.d)  # (B, n, d)
        u[..., : self.slots] = self.codes[x]
        return u

    def scores(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, b+1) (Y_0 .. Y_{b-1}, M): the shared group of a final stream."""
        return stream[..., : self.slots]

    def decode(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, d) -> (B, n): Σ_k 2^k [Y_k > 0] where M > threshold, else -1."""
        s, b = self.scores(stream), self.bits
        weights = 2 ** torch.arange(b, device=s.device)
        token = ((s[..., :b] > 0).long() * weights).sum(-1)  # (B, n)
        return torch.where(s[..., b] > self.threshold, token, torch.full_like(token, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) distance of each decision from flipping, in score units (the exact value is 1/2 at
        every unanswered position and at a key with one earlier occurrence): answered positions
        min(M - threshold, min_k |Y_k|), unanswered ones threshold - M."""
        return self.map_final(tokens, self._margin)

    def _margin(self, stream: torch.Tensor) -> torch.Tensor:
        s = self.scores(stream)
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
        dtype, device: of the weights (float64 default: exact; float32 exact too, every value is a half-integer).
        chunk_elements: memory knob, not part of the model: the runner processes the batch in slices of at
            most max(1, chunk_elements // (n·d)) sequences; default 2**22.
    """
    return BaseConvDataIndependent(vocab_size, seq_len, threshold, dtype=dtype, device=device,
                                   chunk_elements=chunk_elements)
