"""Arithmetic circuits and BaseConv, both ways (Zoology, arXiv 2312.04927, Thm 4.2 / App. H `thm: gen-ac`)."""

from .circuit import GATE_KINDS, ArithmeticCircuit, random_circuit
from .claims import check_claims, measure_compilers, measure_converse
from .compilers import LAYOUTS, compile_to_baseconv, level_plan, predicted_sizes
from .converse import circuit_of, converse_sizes
from .equivalences import EQUIVALENCES, blowup, to_baseconv_stack
from .linear_attention import TaylorLinearAttention
from .stack import BaseConvStack, as_layer, make_layer

__all__ = [
    "GATE_KINDS",
    "ArithmeticCircuit",
    "random_circuit",
    "LAYOUTS",
    "compile_to_baseconv",
    "level_plan",
    "predicted_sizes",
    "circuit_of",
    "converse_sizes",
    "check_claims",
    "measure_compilers",
    "measure_converse",
    "to_baseconv_stack",
    "blowup",
    "EQUIVALENCES",
    "TaylorLinearAttention",
    "BaseConvStack",
    "make_layer",
    "as_layer",
]
