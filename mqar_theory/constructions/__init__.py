"""Hand-set-weight models that solve MQAR exactly (no training), one construction per file.

Each construction is an explicit program (``base.py``): ``encode``, a list of mixer ``layers`` run by one
generic runner, ``decode``. Each file also holds its facts (closed-form sizes, claims, grids, plot style),
which ``bounds`` reads through ``CONSTRUCTIONS``. Adding a construction is one file plus one ``register``
line below.

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
from .base import Construction, MixerLayer, expected_answers, run_layers, run_program
from .baseconv_data_independent import (
    BaseConvDataIndependent,
    baseconv_data_independent,
    data_independent_counts,
)
from .baseconv_input_dependent import BaseConvInputDependent, baseconv_input_dependent, interaction_distances
from .baseconv_sorting import BaseConvSorting, baseconv_sorting, bitonic_stages, sorting_counts
from .layers import LinearBiasAttentionLayer, SoftmaxAttentionLayer, SparseBaseConv
from .primitives import BaseConvParams, compose

CONSTRUCTIONS: dict[str, type[Construction]] = {}
"""name -> the construction's class (its facts: ``closed_form``, ``claims``, ``grids``, ``style``, ...)."""
BUILDERS: dict = {}
"""name -> builder(vocab_size, seq_len, **constants)."""


def register(cls: type[Construction], builder=None) -> None:
    """Add a construction: ``CONSTRUCTIONS[cls.name] = cls`` and ``BUILDERS[cls.name] = builder or cls``."""
    if not (isinstance(cls, type) and issubclass(cls, Construction)):
        raise ValueError(f"cls={cls!r}: must be a Construction subclass")
    builder = cls if builder is None else builder
    if not callable(builder):
        raise ValueError(f"builder={builder!r}: must be callable as builder(vocab_size, seq_len)")
    CONSTRUCTIONS[cls.name], BUILDERS[cls.name] = cls, builder


def unregister(name: str) -> None:
    """Remove the construction ``name`` (for tests that add a toy one)."""
    CONSTRUCTIONS.pop(name, None)
    BUILDERS.pop(name, None)


register(AttentionH27, attention_h27)
register(AttentionSoftmax, attention_softmax)
register(BaseConvDataIndependent, baseconv_data_independent)
register(BaseConvSorting, baseconv_sorting)
register(BaseConvInputDependent, baseconv_input_dependent)

__all__ = [
    "BUILDERS", "CONSTRUCTIONS", "register", "unregister", "Construction", "MixerLayer", "run_layers", "run_program",
    "expected_answers", "attention_h27", "AttentionH27", "attention_softmax", "AttentionSoftmax",
    "baseconv_data_independent", "BaseConvDataIndependent", "data_independent_counts", "baseconv_sorting",
    "BaseConvSorting", "sorting_counts", "bitonic_stages", "baseconv_input_dependent", "BaseConvInputDependent",
    "interaction_distances", "LinearBiasAttentionLayer", "SoftmaxAttentionLayer", "SparseBaseConv",
    "BaseConvParams", "compose",
]
