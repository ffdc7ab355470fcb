"""Hand-set recurrent recall: a previous-token shift and ONE causal linear-attention layer solve MQAR exactly.

Setting (Zoology, arXiv 2312.04927, §3.1 and Algorithm 1): vocabulary c (even), keys [1, c/2), values [c/2, c),
filler 0; h = c/2. Linear attention (Katharopoulos et al., arXiv 2006.16236, eq. 4-6) is the recurrence
S_t = S_{t-1} + k_t v_tᵀ, o_t = S_tᵀ q_t of ``mixers.linear_attention`` (feature map φ = id), run by
``recurrent_layers.LinearAttentionLayer``. The construction is the associative memory of a fast-weight
programmer (Schlag et al., arXiv 2102.11174): one-hot keys are orthonormal, so the state is a lookup table.

Encoding (``encode``: u_i = E[x_i], E a fixed function of c, ``fixed_tables``). Width d = 3h = 3c/2:

    token block [0, c)       one-hot(x) for x >= 1 (key tokens in [1, h), value tokens in [h, c)); filler 0 -> 0
    shift block [c, c + h)   one-hot(x) again when x is a key (column c + x); 0 otherwise

Layer 1 (previous-token shift; ``layers.SparseBaseConv``, eq. (1) of arXiv 2312.04927, y = (u W + b1) ⊙ (h ∗ u + b2)).
On the shift block: W = 0, b1 = 1, filter tap h[1] = 1, b2 = 0, so y_i = u_{i-1} there (0 at i = 0); on the token
block the identity (W = 1, b1 = 0, h = 0, b2 = 1). After it the shift block of row i holds one-hot(x_{i-1}) when
x_{i-1} is a key: the BaseConv short convolution Zoology uses for the previous-token copy (and DeltaNet's
conv_k does the same job inside its layer).

Layer 2 (one causal linear-attention layer, d_k = d_v = h), y = u + o W_O:

    q_i = u_i W_Q = one-hot(x_i) on [0, h) when x_i is a key           W_Q[a, a] = 1, a in [1, h)
    k_i = u_i W_K = one-hot(x_{i-1}) when x_{i-1} is a key              W_K[c + a, a] = 1, a in [1, h)
    v_i = u_i W_V = one-hot(x_i - h) when x_i is a value                W_V[h + b, b] = 1, b in [0, h)
    W_O[b, h + b] = 1: the read o_i lands on the value columns of the token block.

Slot 0 of the keys is the filler's and is never written (the rows of W_Q, W_K for it are 0); it is kept so that
the state is indexed by the token: S is h × h = (c/2)·(c/2) numbers, keys × values.

Why it is exact. The write at position j is k_j v_jᵀ = e_{x_{j-1}} e_{x_j - h}ᵀ, nonzero only when x_{j-1} is a key
AND x_j is a value: a context pair. Positions where a key is followed by a key (a query after a query) or by filler
write v_j = 0, nothing: associations written at non-value positions never reach an answer because the values are
read from the value columns only. So S_i = Σ_{j<=i : x_{j-1} key, x_j value} e_{x_{j-1}} e_{x_j - h}ᵀ and at a key
position i

    o_i = S_iᵀ e_{x_i} = Σ_{j<=i : x_{j-1} = x_i, x_j value} e_{x_j - h} = count vector of the values that followed
          earlier occurrences of x_i                                                       (j = i adds nothing:
                                                                                            x_i is a key, v_i = 0).

The final value columns at a key position are exactly o_i (the encoding puts nothing there for a key), integer
counts. ``decode`` answers h + argmax o_i when the token block marks a key (max over [0, h) > 1/2) and the top count
is >= ``threshold`` (default 1/2), else -1. Let J = {j < i : x_j = x_i}. The answer is exact (equal to
``base.expected_answers``: the successor of the first occurrence, -1 at non-keys) at every key position where
either J is empty (o_i = 0: -1), or the first occurrence is followed by a value v and every occurrence in J that is
followed by a value is followed by v (o_i = |·|·e_v: v). That is what a consistent dictionary means here: every
``make_mqar`` sequence with ``random_non_queries=False`` satisfies it (context pairs come first, keys are distinct,
queries are followed by filler), and so does any sequence whose keys repeat with their own value or are re-queried
any number of times (a query followed by another query writes nothing). A key whose first occurrence is followed by
a key or filler has no value in the dictionary: the oracle answers that token, this construction -1 (as
``attention_h27`` does).
Outside the consistent domain (one key followed by two different values) the read is the count vector and the answer
the most frequent value (tested exhaustively).

Recurrent state (measured by ``recurrent_layers.measure_recurrent_state``, token by token): S, (c/2)² numbers,
plus the shift's window, the previous token's shift block, c/2 numbers: (c/2)² + c/2 in all, whatever N.

Sizes (counted by ``bounds.measure_sizes`` from the operator trace): layers 2, width 3c/2; stored W_Q, W_K, W_V
(3c/2 × c/2 each) and W_O (c/2 × 3c/2): 3c²; the shift's SparseBaseConv, 3c + 2·(3c/2) + 3·(c/2) = 15c/2
(``shift_layer_numbers``); the read-out's 4 numbers: 3c² + 15c/2 + 4 in all. E (c × 3c/2) is fixed (reported
apart). The whole-stream form is the quadratic view, O(N²c + Nc²) time; the recurrence is O(c²) per token.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import Construction, check_threshold
from .layers import LayerSpec, SparseBaseConv
from .recurrent_layers import LinearAttentionLayer

READOUT_NUMBERS = 4
"""Numbers ``decode`` brings to the computation (``bounds.observe`` counts them): the key gate's 1/2, the threshold,
the offset c/2 added to the argmax over the value columns, and the -1 of unanswered positions."""

__all__ = ["LinearAttentionRecall", "linear_attention_recall", "recall_encoding_table", "shift_layer",
           "recall_projections", "READOUT_NUMBERS"]


def recall_encoding_table(vocab_size: int) -> torch.Tensor:
    """E (c, 3c/2) float64: one-hot of every non-filler token on [0, c), and of every key again on [c, c + c/2)."""
    c = vocab_size
    h = c // 2
    E = torch.zeros(c, c + h, dtype=torch.float64)
    toks, keys = torch.arange(1, c), torch.arange(1, h)
    E[toks, toks] = 1.0
    E[keys, c + keys] = 1.0
    return E


def shift_layer(vocab_size: int, seq_len: int, dtype=torch.float64) -> SparseBaseConv:
    """The previous-token shift of the shift block [c, 3c/2) (module docstring), the identity elsewhere."""
    c = vocab_size
    h = c // 2
    spec = LayerSpec("shift", c + h, seq_len, filter_len=2)
    spec.carry(np.arange(c))
    for q in range(c, c + h):
        spec.out(q, b1=1.0, tap=1, h=1.0, b2=0.0)
    return SparseBaseConv(spec, dtype=dtype)


def recall_projections(vocab_size: int, dtype=torch.float64) -> tuple[torch.Tensor, ...]:
    """(W_Q, W_K, W_V (3c/2, c/2), W_O (c/2, 3c/2)) of the lookup layer (module docstring)."""
    c = vocab_size
    h = c // 2
    d = c + h
    keys, slots = torch.arange(1, h), torch.arange(h)
    W_Q, W_K, W_V = (torch.zeros(d, h, dtype=dtype) for _ in range(3))
    W_O = torch.zeros(h, d, dtype=dtype)
    W_Q[keys, keys] = 1.0
    W_K[c + keys, keys] = 1.0
    W_V[h + slots, slots] = 1.0
    W_O[slots, h + slots] = 1.0
    return W_Q, W_K, W_V, W_O


def shift_layer_numbers(c: int, N: int) -> int:
    """Numbers the SparseBaseConv shift stores: W (c values + 2c int positions), b1, b2 (3c/2 each), the filter
    (c/2 values + c int taps and channels), the empty position-dependent columns (0)."""
    h = c // 2
    return 3 * c + 2 * (c + h) + 3 * h


class LinearAttentionRecall(Construction):
    """A shift and one linear-attention layer (module docstring). ``threshold`` is the read-out threshold."""

    name = "linear_attention_recall"
    theorem = "one causal linear-attention layer with one-hot keys (arXiv 2006.16236, 2102.11174)"
    style = {"margin_units": "value count (matching earlier context pairs)"}
    layer_class = LinearAttentionLayer
    state_created = 0
    """Numbers the lookup layer creates per run outside library code (the delta rule's zero state: 1 fill)."""

    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        h = c // 2
        params = 4 * (c + h) * h + shift_layer_numbers(c, N) + READOUT_NUMBERS + cls.extra_numbers(c)
        return {"params": params, "layers": 2, "width": c + h}

    @classmethod
    def extra_numbers(cls, c: int) -> int:
        """Numbers beyond the four projections, the shift and the read-out (none for linear attention)."""
        return 0

    @classmethod
    def state_size(cls, c: int) -> dict:
        """{matrix: (c/2)², window: c/2} the docstring derives; ``measure_recurrent_state`` measures them."""
        return {"matrix": (c // 2) ** 2, "window": c // 2}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict:
        return {"E": recall_encoding_table(c)}

    def __init__(self, vocab_size: int, seq_len: int, threshold: float = 0.5):
        super().__init__(vocab_size, seq_len)
        self.threshold = check_threshold(threshold)
        self.register_buffer("E", recall_encoding_table(vocab_size).to(torch.get_default_dtype()))
        self.layers = nn.ModuleList([shift_layer(vocab_size, seq_len, torch.get_default_dtype()),
                                     self._lookup_layer(vocab_size)])

    def _lookup_layer(self, c: int):
        return LinearAttentionLayer(*recall_projections(c, torch.get_default_dtype()))

    def encode(self, tokens) -> torch.Tensor:
        """(B, n) -> (B, n, 3c/2): u_i = E[x_i]."""
        return self.E[self.check_tokens(tokens)]

    def scores(self, stream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(value-column reads (B, n, c/2), is-key gate (B, n)) of a final stream, row by row."""
        h = self.vocab_size // 2
        return stream[..., h : 2 * h], stream[..., :h].amax(-1) > 0.5

    def decode(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, 3c/2) -> (B, n): c/2 + argmax of the value columns where the token is a key and the top read is
        >= threshold, else -1."""
        s, is_key = self.scores(stream)
        top, arg = s.max(dim=-1)  # (B, n)
        h = self.vocab_size // 2
        return torch.where(is_key & (top >= self.threshold), arg + h, torch.full_like(arg, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) distance of each decision from flipping, in value-count units: at answered key positions
        min(top - threshold, top - second), at unanswered ones threshold - top; everywhere at most the key gate's
        distance from 1/2. On one-hot inputs the reads are integers, so the margin is 1/2 in exact arithmetic."""
        return self.map_final(tokens, self._margin)

    def _margin(self, stream: torch.Tensor) -> torch.Tensor:
        s, is_key = self.scores(stream)
        gate = (stream[..., : self.vocab_size // 2].amax(-1) - 0.5).abs()
        top2 = s.topk(2, dim=-1).values  # (B, n, 2)
        top, second = top2[..., 0], top2[..., 1]
        m = torch.where(top >= self.threshold, torch.minimum(top - self.threshold, top - second), self.threshold - top)
        return torch.where(is_key, torch.minimum(m, gate), gate)


def linear_attention_recall(vocab_size: int, seq_len: int, threshold: float = 0.5) -> LinearAttentionRecall:
    """Build the shift + linear-attention recall construction.

    Args:
        vocab_size: c, even, >= 4 (keys [1, c/2), values [c/2, c), filler 0).
        seq_len: N >= 4, the longest input; predict accepts any length <= N.
        threshold: read-out threshold on the value count, in (0, 1); default 1/2.
    """
    return LinearAttentionRecall(vocab_size, seq_len, threshold=threshold)
