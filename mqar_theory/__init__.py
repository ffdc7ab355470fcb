"""mqar_theory: the theory of recall in efficient language models, made executable.

Companion to *Zoology: Measuring and Improving Recall in Efficient Language Models*
(Arora, Eyuboglu et al., arXiv 2312.04927, ICLR 2024).

    from mqar_theory import MQARConfig, make_mqar, mqar_oracle, run_mqar
    from mqar_theory.mixers import MIXERS, BaseConv, Attention
    from mqar_theory.constructions import attention_h27, baseconv_input_dependent
    from mqar_theory import bounds
"""

from . import bounds, constructions
from .data import MQARConfig, MQARData, make_ar, make_mqar, mqar_oracle
from .model import LanguageModel
from .train import evaluate, run_mqar, train

__version__ = "0.1.0"

__all__ = [
    "bounds",
    "constructions",
    "MQARConfig",
    "MQARData",
    "make_ar",
    "make_mqar",
    "mqar_oracle",
    "LanguageModel",
    "train",
    "evaluate",
    "run_mqar",
    "__version__",
]
