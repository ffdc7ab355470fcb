"""Sequence mixers and ``MIXERS``, the one registry: name -> ``f(d_model, seq_len, **kw)``.

Every registered constructor returns a module mapping (B, N, d) to (B, N, d) causally.
"""

from .attention import Attention
from .base import Mixer, check_dims
from .baseconv import BaseConv, BaseConvOfficial, baseconv, baseconv_direct, implicit_filter_features
from .baseconv_autocorrelation import BaseConvAutocorrelation
from .baseconv_programmatic import BaseConvProgrammatic
from .based import Based
from .conv import causal_conv, causal_conv_direct, cyclic_conv, cyclic_conv_direct
from .delta_net import DeltaNet
from .gated_delta_net import GatedDeltaNet
from .gla import GLA
from .h3 import H3
from .hyena import Hyena
from .linear_attention import LinearAttention
from .linear_bias_attention import LinearBiasAttention, linear_bias_attention, linear_bias_attention_direct
from .long_conv import LongConv
from .mamba import Mamba
from .mamba2 import Mamba2
from .rwkv import RWKV
from .sliding_window import SlidingWindowAttention
from .sparse_attention import SparseAttention

MIXERS = {
    "attention": Attention,
    "baseconv": BaseConv,
    "baseconv_programmatic": BaseConvProgrammatic,
    "baseconv_autocorrelation": BaseConvAutocorrelation,
    "sparse_attention": SparseAttention,
    "linear_bias_attention": LinearBiasAttention,
    "hyena": Hyena,
    "h3": H3,
    "long_conv": LongConv,
    "rwkv": RWKV,
    "based": Based,
    "mamba": Mamba,
    "sliding_window": SlidingWindowAttention,
    "mamba2": Mamba2,
    "gla": GLA,
    "linear_attention": LinearAttention,
    "delta_net": DeltaNet,
    "gated_delta_net": GatedDeltaNet,
}


def get_mixer(name: str, d_model: int, seq_len: int, **kw):
    """Build a registered mixer by name."""
    if name not in MIXERS:
        raise ValueError(f"mixer={name!r}: unknown; registered mixers are {sorted(MIXERS)}")
    return MIXERS[name](d_model, seq_len, **kw)


__all__ = [
    "MIXERS",
    "get_mixer",
    "Mixer",
    "check_dims",
    "Attention",
    "BaseConv",
    "BaseConvOfficial",
    "implicit_filter_features",
    "BaseConvProgrammatic",
    "BaseConvAutocorrelation",
    "SparseAttention",
    "LinearBiasAttention",
    "Hyena",
    "H3",
    "LongConv",
    "RWKV",
    "Based",
    "Mamba",
    "SlidingWindowAttention",
    "Mamba2",
    "GLA",
    "LinearAttention",
    "DeltaNet",
    "GatedDeltaNet",
    "baseconv",
    "baseconv_direct",
    "linear_bias_attention",
    "linear_bias_attention_direct",
    "causal_conv",
    "causal_conv_direct",
    "cyclic_conv",
    "cyclic_conv_direct",
]
