"""Sequence mixers and ``MIXERS``, the one registry: name -> ``f(d_model, seq_len, **kw)``.

Every registered constructor returns a module mapping (B, N, d) to (B, N, d) causally.
"""

from .attention import Attention
from .base import Mixer, check_dims
from .baseconv import BaseConv, baseconv, baseconv_direct
from .conv import causal_conv, causal_conv_direct, cyclic_conv, cyclic_conv_direct
from .linear_bias_attention import LinearBiasAttention, linear_bias_attention, linear_bias_attention_direct

MIXERS = {
    "attention": Attention,
    "baseconv": BaseConv,
    "linear_bias_attention": LinearBiasAttention,
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
    "LinearBiasAttention",
    "baseconv",
    "baseconv_direct",
    "linear_bias_attention",
    "linear_bias_attention_direct",
    "causal_conv",
    "causal_conv_direct",
    "cyclic_conv",
    "cyclic_conv_direct",
]
