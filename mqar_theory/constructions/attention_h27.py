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
never needs to know which. The table E ∈ {0,1}^{c×3c} (u_i = E[x_i]) is a buffer.

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

Read-out. ``forward`` returns the value block of O², scores s ∈ R^{c} per position (nonzero only
on value tokens; on make_mqar inputs an exact count, 1 at the answer and 0 elsewhere).
``predict`` answers argmax s when max s >= ``threshold`` (default 1/2, halfway between 0 and
1), else -1. At non-key positions the query block is 0, so s = 0 and the answer is -1: no
explicit role check is needed. A key's repeated context pair (k v .. k v) gives 2·onehot(v), still
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

import torch

from ..mixers.linear_bias_attention import MASKS, linear_bias_attention
from .base import Construction, check_threshold, frozen, mixer_layer

__all__ = ["AttentionH27", "attention_h27", "relative_bias"]

_layer = mixer_layer(lambda u, *a, **k: u.shape[-1])(linear_bias_attention)  # one traced layer


def relative_bias(r: torch.Tensor, n: int) -> torch.Tensor:
    """(n, n) Toeplitz bias B[i, j] = r[i - j] for 0 <= i - j < len(r), else 0."""
    i = torch.arange(n, device=r.device)
    dist = i[:, None] - i[None, :]  # (n, n)
    inside = (dist >= 0) & (dist < r.shape[0])
    return torch.where(inside, r[dist.clamp(0, r.shape[0] - 1)], r.new_zeros(()))


class AttentionH27(Construction):
    """The two-layer linear-bias attention of Prop H.27 (see the module docstring).

    ``num_parameters`` counts W_Q, W_K, W_V of both layers, 6 × (3c)² = 54c² (the zero W_Q¹, W_K¹
    included, as the paper counts them), and the relative biases r¹ (2) and r² (1): 54c² + 3;
    ``num_fixed`` counts the encoding table E (c × 3c).
    """

    name = "attention_h27"
    theorem = "Prop 4.3 / Prop H.27 (linear-bias attention, no softmax)"
    num_layers = 2

    def __init__(self, vocab_size: int, seq_len: int, mask: str = "strict", threshold: float = 0.5):
        super().__init__(vocab_size, seq_len)
        if mask not in MASKS:
            raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
        check_threshold(threshold)
        c = vocab_size
        self.mask, self.threshold, self.width = mask, float(threshold), 3 * c
        d, half = 3 * c, c // 2
        key, val, qry = slice(0, c), slice(c, 2 * c), slice(2 * c, 3 * c)
        eye = torch.eye(c)

        E = torch.zeros(c, d)  # (c, 3c) role-blocked one-hot table
        keys, vals = torch.arange(1, half), torch.arange(half, c)
        E[keys, keys] = 1.0  # key block
        E[vals, c + vals] = 1.0  # value block
        E[keys, 2 * c + keys] = 1.0  # query block
        self.register_buffer("E", E)

        # layer 1: copy the key block one slot forward
        W_V1 = torch.zeros(d, d)
        W_V1[key, key] = eye
        self.W_Q1, self.W_K1, self.W_V1 = frozen(torch.zeros(d, d)), frozen(torch.zeros(d, d)), frozen(W_V1)
        self.r1 = frozen(torch.tensor([0.0, 1.0]))  # B¹[i, i-1] = 1: the previous-token tap
        self.r2 = frozen(torch.zeros(1))  # B² = 0

        # layer 2: query block · key block, read the value block
        W_Q2, W_K2, W_V2 = torch.zeros(d, d), torch.zeros(d, d), torch.zeros(d, d)
        W_Q2[qry, key] = eye
        W_K2[key, key] = eye
        W_V2[val, val] = eye
        self.W_Q2, self.W_K2, self.W_V2 = frozen(W_Q2), frozen(W_K2), frozen(W_V2)

    def layer_outputs(self, tokens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(u¹, O¹, O²), each (B, N, 3c): the encoded input and what each layer adds to the stream
        (u² = u¹ + O¹, u³ = u² + O²)."""
        x = self.check_tokens(tokens)  # (B, N)
        n = x.shape[1]
        u1 = self.E[x]  # (B, N, 3c)
        O1 = _layer(u1, self.W_Q1, self.W_K1, self.W_V1, relative_bias(self.r1, n), self.mask)  # (B, N, 3c)
        u2 = u1 + O1
        O2 = _layer(u2, self.W_Q2, self.W_K2, self.W_V2, relative_bias(self.r2, n), self.mask)  # (B, N, 3c)
        return u1, O1, O2

    def forward(self, tokens) -> torch.Tensor:
        """(B, N, c) scores: the value block that layer 2 writes (O²[..., c:2c])."""
        c = self.vocab_size
        return self.layer_outputs(tokens)[2][..., c : 2 * c]

    def predict(self, tokens) -> torch.Tensor:
        """(B, N) LongTensor: argmax of the scores where the top score >= threshold, else -1."""
        top, arg = self(tokens).max(dim=-1)  # (B, N)
        return torch.where(top >= self.threshold, arg, torch.full_like(arg, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, N) distance of each decision from flipping, in score units (counts of matching prior
        (key, value) slots; the exact value on make_mqar inputs is 1/2 everywhere). Answered
        positions: min(top - threshold, top - second); unanswered: threshold - top."""
        s = self(tokens)  # (B, N, c)
        top2 = s.topk(2, dim=-1).values  # (B, N, 2)
        top, second = top2[..., 0], top2[..., 1]
        answered = top >= self.threshold
        return torch.where(answered, torch.minimum(top - self.threshold, top - second), self.threshold - top)


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
