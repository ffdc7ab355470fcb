"""Hand-set recurrent recall with the delta rule: a previous-token shift and ONE delta-rule layer solve MQAR exactly.

The program of ``linear_attention_recall`` (read its docstring: encoding, the shift layer, q, k, v, W_O and the
read-out are the same) with the plain sum S_t = S_{t-1} + v_t k_tᵀ replaced by the delta rule of ``mixers.delta_net``
(Schlag et al., arXiv 2102.11174; DeltaNet, arXiv 2406.06484 eq. 1-2), run by ``recurrent_layers.DeltaRuleLayer``:

    S_t = S_{t-1}(I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ        (d_v × d_k = c/2 × c/2),   o_t = S_t q_t.

β from the stream. DeltaNet's β = σ(u W_β) is input-dependent; here β_t = u_t W_β (σ replaced by the identity: σ
gives 0 and 1 only in the limit), with W_β[x, 0] = 1 on the value columns x in [c/2, c) of the token block and 0
elsewhere. The token block is one-hot, so β_t = 1 exactly where x_t is a value token and 0 at keys and filler.

Why it is exact. Keys are one-hot (orthonormal) or zero: k_t = e_a with a = x_{t-1} when the previous token is a key.
For k_t = e_a and β_t = 1, S(I - e_a e_aᵀ) zeroes column a of S and + v_t e_aᵀ writes v_t there: column a is
*replaced* by v_t, the other columns are untouched (orthonormality: (I - e_a e_aᵀ) e_b = e_b for b ≠ a). For k_t = 0
or β_t = 0 the state is unchanged. So column a of S_i is the value of the LAST context pair (a, v) at j <= i
(0 if none), and at a key position i, o_i = S_i e_{x_i} is one-hot(that value) exactly.

* A repeated key with the same value leaves the state unchanged: column a already holds v, and
  S(I - e_a e_aᵀ) + v e_aᵀ = S - v e_aᵀ + v e_aᵀ = S (the delta rule writes β (v - S k) kᵀ, and v - S k = 0).
* β = 0 at non-value positions is needed. At a key or filler position t after the key a (a query followed by
  filler, or by another query) the stream gives k_t = e_a and v_t = 0; with β_t = 1 the update would be
  S(I - e_a e_aᵀ) + 0: column a erased, so a later query of a would read 0 (answer -1). Linear attention's sum
  adds 0 there and needs no gate; the delta rule's correction term -β S k kᵀ acts whatever v is. Example (c = 8):
  ``1 4 1 2 1``: the query at position 2 is answered 4 by both gates; at position 3 the key 2 follows the query
  (k_3 = e_1, v_3 = 0), so with β_3 = 1 column 1 is erased and the query at position 4 answers -1 instead of 4
  (``beta="always"`` builds this ablation, β = 1 at every non-filler token; tested). Filler rows are zero, so a
  linear W_β without bias gives β = 0 at filler in both variants.

Exactness domain. With the last value winning, the answer equals ``base.expected_answers`` at every key position i
where J = {j < i : x_j = x_i} is empty (-1) or the first occurrence is followed by a value v and the last
occurrence in J that is followed by a value is followed by v: every consistent dictionary
(``linear_attention_recall``'s domain) and more. Outside it the answer is the most recent value (tested
exhaustively); a value-less key answers -1.

Measured layers (a limit of the operator trace, ``bounds.observe``). The trace counts layers as the longest chain
of sequence-mixing steps. Linear attention's writes k_t v_tᵀ do not read the state, so its whole stream is one step.
The delta rule's write β_t k_t (v_t - S'ᵀ_{t-1} k_t)ᵀ reads the state, so in the token loop each token's write is
one more mixing step on the chain: ``bounds.measure_sizes`` reports 2N + 1 layers for this program (and, with the
size-1 position slices of the loop, a locality verdict it cannot settle), while the hook count (``bounds.trace``)
and the perturbation probe (``bounds.position_wise_violations``) see two layers and a position-wise read-out. The
chunked UT form of the delta rule (``mixers.delta_net.delta_rule_chunked``) would be one step, but it needs a
triangular solve, which the trace has no rule for. Params and width are measured as for linear attention.
That is why neither recall construction is registered in ``constructions.CONSTRUCTIONS``.

Recurrent state (measured token by token, ``recurrent_layers.measure_recurrent_state``): S, (c/2)² numbers, and the
shift's window, c/2: the same as linear attention. Sizes: layers 2, width 3c/2; the projections (3c²), W_β (3c/2),
the shift, the read-out, and the one zero fill of the initial state (the trace counts it: the loop runs in this
project's construction files, not in library code).
"""

from __future__ import annotations

import torch

from .linear_attention_recall import LinearAttentionRecall, recall_projections
from .recurrent_layers import DeltaRuleLayer

BETAS = ("values", "always")

__all__ = ["DeltaRuleRecall", "delta_rule_recall", "beta_weights", "BETAS"]


def beta_weights(vocab_size: int, beta: str = "values", dtype=torch.float64) -> torch.Tensor:
    """W_β (3c/2, 1): 1 on the value columns [c/2, c) (``beta="values"``: β = 1 exactly at value tokens), or 1 on
    every token column [1, c) (``beta="always"``: β = 1 at every non-filler token, the ablation that erases)."""
    if beta not in BETAS:
        raise ValueError(f"beta={beta!r}: must be one of {BETAS}")
    c = vocab_size
    h = c // 2
    W = torch.zeros(c + h, 1, dtype=dtype)
    W[(h if beta == "values" else 1) : c, 0] = 1.0
    return W


class DeltaRuleRecall(LinearAttentionRecall):
    """A shift and one delta-rule layer (module docstring); ``beta`` picks the gate ("values" or the ablation)."""

    name = "delta_rule_recall"
    theorem = "one delta-rule layer with one-hot keys and a value gate (arXiv 2102.11174, 2406.06484)"
    layer_class = DeltaRuleLayer

    @classmethod
    def extra_numbers(cls, c: int) -> int:
        """W_β (3c/2) and the zero fill of the initial state (1)."""
        return c + c // 2 + 1

    def __init__(self, vocab_size: int, seq_len: int, threshold: float = 0.5, beta: str = "values"):
        if beta not in BETAS:
            raise ValueError(f"beta={beta!r}: must be one of {BETAS}")
        self.beta = beta
        super().__init__(vocab_size, seq_len, threshold=threshold)

    def _lookup_layer(self, c: int):
        dtype = torch.get_default_dtype()
        return DeltaRuleLayer(*recall_projections(c, dtype), beta_weights(c, self.beta, dtype))


def delta_rule_recall(vocab_size: int, seq_len: int, threshold: float = 0.5, beta: str = "values") -> DeltaRuleRecall:
    """Build the shift + delta-rule recall construction.

    Args:
        vocab_size: c, even, >= 4 (keys [1, c/2), values [c/2, c), filler 0).
        seq_len: N >= 4, the longest input; predict accepts any length <= N.
        threshold: read-out threshold on the value read, in (0, 1); default 1/2.
        beta: "values" (β = 1 exactly at value tokens, the exact gate) or "always" (β = 1 at every non-filler
            token: the ablation that erases a key's value at the position after its query).
    """
    return DeltaRuleRecall(vocab_size, seq_len, threshold=threshold, beta=beta)
