"""Hand-set-weight models that solve MQAR exactly (no training), one construction per file.

Each builder is ``builder(vocab_size, seq_len, **named_constants) -> Construction``; see ``base.py`` for the
shared interface and the answer convention, and each module's docstring for the derivation of its weights.

=============================  ==========================================  ===================================
builder                        result                                      size
=============================  ==========================================  ===================================
``attention_h27``              Prop 4.3 / H.27: 2 linear-bias layers       54 c² params, width 3c, any N
``attention_softmax``          2 softmax layers on binary codes            O(log² c) params, β ~ (ln N)/2
``baseconv_data_independent``  BaseConv, one filter per distance           O(N² log c) params, O(log log c) layers
``baseconv_sorting``           Thm 4.4: bitonic sorts, data-independent    Õ(N log c) params, polylog(N) layers
``baseconv_input_dependent``   Thm 4.5: filters chosen from the input      O(t N c) params, 4 layers
=============================  ==========================================  ===================================
"""

from .attention_h27 import AttentionH27, attention_h27
from .attention_softmax import AttentionSoftmax, attention_softmax
from .base import Construction, expected_answers
from .baseconv_data_independent import (
    BaseConvDataIndependent,
    baseconv_data_independent,
    data_independent_counts,
)
from .baseconv_input_dependent import BaseConvInputDependent, baseconv_input_dependent, interaction_distances
from .baseconv_sorting import BaseConvSorting, baseconv_sorting, bitonic_stages, sorting_counts
from .primitives import BaseConvParams, compose

BUILDERS = {
    "attention_h27": attention_h27,
    "attention_softmax": attention_softmax,
    "baseconv_data_independent": baseconv_data_independent,
    "baseconv_sorting": baseconv_sorting,
    "baseconv_input_dependent": baseconv_input_dependent,
}

__all__ = [
    "BUILDERS",
    "Construction",
    "expected_answers",
    "attention_h27",
    "AttentionH27",
    "attention_softmax",
    "AttentionSoftmax",
    "baseconv_data_independent",
    "BaseConvDataIndependent",
    "data_independent_counts",
    "baseconv_sorting",
    "BaseConvSorting",
    "sorting_counts",
    "bitonic_stages",
    "baseconv_input_dependent",
    "BaseConvInputDependent",
    "interaction_distances",
    "BaseConvParams",
    "compose",
]
