"""Prop 4.3 / Prop H.27: two layers of attention *without softmax* solve MQAR with O(c²) weights.

Claim (Zoology, arXiv 2312.04927, Prop 4.3 = App. Prop H.27). On the role-blocked one-hot input
u ∈ {0,1}^{N×3c} of Remark H.26, two layers of linear-bias attention (mixer
``linear_bias_attention``; one layer is ``O = ((Q Kᵀ + B) ⊙ M) V`` with Q, K, V = u W_Q, u W_K, u W_V,
and the residual u ← u + O) solve MQAR with 2 layers × 3 matrices × (3c)² = 54c² weights,
independent of N.

Storage (our decision). The positional biases are relative (Toeplitz): B[i, j] = r[i - j] for
0 <= i - j < len(r), else 0. B¹ = r¹ = (0, 1) (the previous-token tap) and B² = r² = (0,), so the
stored biases are 3 numbers, parameters like the weights, instead of an N×N table. Stored
parameters: 6·(3c)² + 3 = 54c² + 3, of which the all-zero W_Q¹, W_K¹ (18c²) are stored and counted
(the paper's layer has them); the nonzeros are 4(c/2 - 1) + 2c + 1 (``bounds.sizes`` reports both).

Encoding (our reading of Remark H.26 for raw ``make_mqar`` sequences). Width d = 3c in three
blocks of c columns; token x at position i writes one-hot(x) into

    key block   [0, c)    if x is a key token (1 <= x < c/2)
    value block [c, 2c)   if x is a value token (c/2 <= x < c)
    query block [2c, 3c)  if x is a key token

Filler 0 is the zero row. A key token fills both the key and the query block: every key is a
potential key (its first occurrence) and a potential query (any later one); the construction
never needs to know which. The table E ∈ {0,1}^{c×3c} (u_i = E[x_i]) is a buffer, a fixed function of c
(``fixed_tables``), reported apart from the parameters.

Layer 1 (previous-token copy, causal): W_Q¹ = W_K¹ = 0 and W_V¹ = the identity on the key block
(zero elsewhere), B¹[i, i-1] = 1 and 0 elsewhere (r¹ = (0, 1)). Then O¹[i] = Σ_j B¹[i, j] V¹_j = key block of
u_{i-1}, and the residual u² = u + O¹ writes the *previous* token's key one-hot into the key block
of slot i. At the value slot after a context pair (k, v) the stream now holds onehot(k) in the
key block and onehot(v) in the value block: each key slot has its value beside it.

    Erratum (arXiv 2312.04927, App. H, proof of Prop H.27): the printed B¹[key slot j, value slot j] moves the value
    *backward* onto the key slot, which reads a future token. We use the causal mirror, moving the
    key forward onto its value slot. Since QKᵀ = 0 and B¹ is strictly lower triangular, the mask
    does not change layer 1.

Layer 2 (lookup): W_Q² maps the query block onto the first c columns, W_K² the key block, and
W_V² the value block onto the value block; B² = 0. With the *strict* mask (j < i),

    O²[i] = Σ_{j<i} <onehot(x_i), keyblock(u²_j)> · valueblock(u²_j)
          = Σ_{j<i : x_{j-1} = x_i, x_j a value} onehot(x_j)          (x_i a key; 0 otherwise)

because the value block of u²_j is onehot(x_j) exactly when x_j is a value token, and its key block
is onehot(x_{j-1}) (+ onehot(x_j) if x_j is itself a key, but then its value block is 0). In a
``make_mqar`` sequence a key occurs in the context at 2m with its value at 2m+1, and once more as
its query at i > 2m+1: O²[i] = onehot(v) at the query and O²[2m] = 0 at the context occurrence.

Read-out (``decode``, position-wise, on the final stream u³ = u² + O²). At a key position the value
block of u³ is that of O² (u and O¹ write nothing there), the scores s ∈ R^{c} (on make_mqar inputs an
exact count, 1 at the answer and 0 elsewhere); ``decode`` answers argmax s when the query block of u³
(onehot(x_i) for a key, written by the encoding and carried by both residuals) marks a key and max s >=
``threshold`` (default 1/2, halfway between 0 and 1), else -1. The gate is read from the stream, not
from the tokens. A key's repeated context pair (k v .. k v) gives 2·onehot(v), still
answered v; a value that follows a key's *later* occurrence (never in make_mqar) also counts.

Masks (``mask`` argument, applied to both layers):
  * "strict" (default, the corrected proof of Prop H.27): j < i, only prior keys;
  * "causal" (j <= i): the extra diagonal term <query_i, keyblock_i>·valueblock_i is always 0,
    because the query block is nonzero only at key tokens and the value block only at value
    tokens. So "causal" gives the same answers on *every* input (tested), and strict is kept as
    the form the corrected proof states;
  * "none" (the printed algorithm): the sum runs over all j, so the first (context) occurrence
    of a key at 2m reads its own value slot 2m+1 from the future and "answers" v where MQAR has no
    answer yet, e.g. position 0 of the paper's worked example (tested).

Cost: Q Kᵀ is N×N×3c and the projections N×(3c)², i.e. O(Nc² + N²c) time, 2 layers, width 3c.
"""

from __future__ import annotations

import sympy as sp
import torch
from torch import nn

from ..bounds.bound import c
from ..bounds.claims import Claim
from ..mixers.linear_bias_attention import MASKS
from .base import DEFAULT_GRIDS, Construction, check_threshold, sweep
from .layers import LinearBiasAttentionLayer, relative_bias

READOUT_NUMBERS = 3
"""Numbers ``decode`` brings to the computation (``bounds.observe`` counts them): the key gate's 1/2, the
threshold, and the -1 of unanswered positions."""

__all__ = ["READOUT_NUMBERS", "AttentionH27", "attention_h27", "relative_bias", "encoding_table", "h27_parameter_count"]


def h27_parameter_count() -> sp.Expr:
    """54c², derived from the layer shapes of Prop H.27: 2 layers, each W_Q, W_K, W_V of shape (3c, 3c).
    The construction also stores its relative biases r¹ = (0, 1), r² = (0,): 54c² + 3 in all."""
    layers = [{"W_Q": (3 * c, 3 * c), "W_K": (3 * c, 3 * c), "W_V": (3 * c, 3 * c)} for _ in range(2)]
    return sp.expand(sum(rows * cols for layer in layers for rows, cols in layer.values()))


def encoding_table(vocab_size: int) -> torch.Tensor:
    """E (c, 3c) float64: the role-blocked one-hot of Remark H.26 (key, value and query blocks)."""
    c_ = vocab_size
    E = torch.zeros(c_, 3 * c_, dtype=torch.float64)
    keys, vals = torch.arange(1, c_ // 2), torch.arange(c_ // 2, c_)
    E[keys, keys] = 1.0  # key block
    E[vals, c_ + vals] = 1.0  # value block
    E[keys, 2 * c_ + keys] = 1.0  # query block
    return E


class AttentionH27(Construction):
    """The two-layer linear-bias attention of Prop H.27 (see the module docstring).

    Stored parameters: W_Q, W_K, W_V of both layers, 6 × (3c)² = 54c² (the zero W_Q¹, W_K¹ included, as
    the paper counts them), and the relative biases r¹ (2) and r² (1): 54c² + 3. The encoding table E
    (c × 3c) is a fixed function of c, reported apart.
    """

    name = "attention_h27"
    theorem = "Prop 4.3 / Prop H.27 (linear-bias attention, no softmax)"
    claims = (
        Claim("prop4.3-params", const=55, basis="proved",
              why="54c² + 6 numbers enter (six (3c)² matrices, biases r¹, r², and the read-out's gate 1/2, "
                  "threshold and -1); (54c² + 6)/c² <= 54 + 6/16 for c >= 4"),
        Claim("prop4.3-layers", const=2, basis="proved", why="the program lists two layers"),
        Claim("prop4.3-width", const=1, basis="proved", why="the layers read a stream of width 3c"),
    )
    grids = {**DEFAULT_GRIDS, "gpu": sweep([66, 1000, 16000], 66, [66, 1000, 4000], 1000)}
    style = {"marker": "o", "size": 9, "curves": ("prop4.3-params", "prop4.3-width"),
             "tex": {"prop4.3-params": (r"c^2", "Prop 4.3"), "prop4.3-width": (r"3c", "H.26")},
             "margin_units": "value score (count of matching slots)"}

    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        return {"params": 54 * c * c + 3 + READOUT_NUMBERS, "layers": 2, "width": 3 * c}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict:
        return {"E": encoding_table(c)}

    def __init__(self, vocab_size: int, seq_len: int, mask: str = "strict", threshold: float = 0.5):
        super().__init__(vocab_size, seq_len)
        if mask not in MASKS:
            raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
        check_threshold(threshold)
        c_ = vocab_size
        self.mask, self.threshold = mask, float(threshold)
        d = 3 * c_
        key, val, qry = slice(0, c_), slice(c_, 2 * c_), slice(2 * c_, 3 * c_)
        eye = torch.eye(c_)
        self.register_buffer("E", encoding_table(c_).to(torch.get_default_dtype()))

        # layer 1: copy the key block one slot forward (B¹[i, i-1] = 1: the previous-token tap)
        W_V1 = torch.zeros(d, d)
        W_V1[key, key] = eye
        layer1 = LinearBiasAttentionLayer(torch.zeros(d, d), torch.zeros(d, d), W_V1, torch.tensor([0.0, 1.0]), mask)
        # layer 2: query block · key block, read the value block; B² = 0
        W_Q2, W_K2, W_V2 = torch.zeros(d, d), torch.zeros(d, d), torch.zeros(d, d)
        W_Q2[qry, key] = eye
        W_K2[key, key] = eye
        W_V2[val, val] = eye
        layer2 = LinearBiasAttentionLayer(W_Q2, W_K2, W_V2, torch.zeros(1), mask)
        self.layers = nn.ModuleList([layer1, layer2])

    def encode(self, tokens) -> torch.Tensor:
        """(B, n) -> (B, n, 3c): u_i = E[x_i]."""
        return self.E[self.check_tokens(tokens)]

    def scores(self, stream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(value-block scores (B, n, c), is-key gate (B, n)) of a final stream, row by row."""
        c_ = self.vocab_size
        return stream[..., c_ : 2 * c_], stream[..., 2 * c_ :].amax(-1) > 0.5

    def decode(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, 3c) -> (B, n): argmax of the value block where the query block marks a key and the top
        score >= threshold, else -1."""
        s, is_key = self.scores(stream)
        top, arg = s.max(dim=-1)  # (B, n)
        return torch.where(is_key & (top >= self.threshold), arg, torch.full_like(arg, -1))

    def layer_outputs(self, tokens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u¹, O¹, O²), each (B, n, 3c): the encoded input and what each layer adds (differences of ``trace``)."""
        u1, u2, u3 = self.trace(tokens)
        return u1, u2 - u1, u3 - u2

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) distance of each decision from flipping, in score units (counts of matching prior
        (key, value) slots; the exact value on make_mqar inputs is 1/2 everywhere). Answered
        positions: min(top - threshold, top - second); unanswered: threshold - top; both also at most the
        key gate's distance from 1/2 (|max query block - 1/2|), which alone decides the non-key positions."""
        return self.map_final(tokens, self._margin)

    def _margin(self, stream: torch.Tensor) -> torch.Tensor:
        s, is_key = self.scores(stream)
        gate = (stream[..., 2 * self.vocab_size :].amax(-1) - 0.5).abs()  # the key gate's own margin
        top2 = s.topk(2, dim=-1).values  # (B, n, 2)
        top, second = top2[..., 0], top2[..., 1]
        answered = top >= self.threshold
        m = torch.where(answered, torch.minimum(top - self.threshold, top - second), self.threshold - top)
        return torch.where(is_key, torch.minimum(m, gate), gate)


def attention_h27(
    vocab_size: int, seq_len: int, mask: str = "strict", threshold: float = 0.5
) -> AttentionH27:
    """Build the Prop H.27 construction for vocabulary size c and sequence length N.

    Args:
        vocab_size: c, even, >= 4 (keys [1, c/2), values [c/2, c), filler 0).
        seq_len: N >= 4, the longest input; predict accepts any length <= N.
        mask: "strict" (j < i, default: the corrected prior mask), "causal" (j <= i; same answers),
            or "none" (the printed, future-reading version, kept to exhibit the erratum).
        threshold: read-out threshold on the value score, in (0, 1); default 1/2.
    """
    return AttentionH27(vocab_size, seq_len, mask=mask, threshold=threshold)
