"""mqar_theory: the theory of recall in efficient language models, made executable.

Companion to *Zoology: Measuring and Improving Recall in Efficient Language Models*
(Arora, Eyuboglu et al., arXiv 2312.04927, ICLR 2024).

    from mqar_theory import MQARConfig, make_mqar, mqar_oracle, run_mqar
    from mqar_theory.mixers import MIXERS, BaseConv, Attention
    from mqar_theory.constructions import attention_h27, baseconv_input_dependent
    from mqar_theory import bounds

Every name below is imported lazily, on first use (PEP 562 module ``__getattr__``): ``import mqar_theory``
loads neither torch nor sympy nor pandas, so ``mqar-theory --help`` answers at once. ``tests/test_project.py``
checks that. ``mqar_theory.train`` is the training *module* (the function is ``mqar_theory.train.train``): a
lazy package cannot give one name two meanings depending on what was imported first.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the submodule that defines it (a submodule itself when the name is the module)
_LAZY = {
    "bounds": "bounds",
    "constructions": "constructions",
    "mixers": "mixers",
    "MQARConfig": "data",
    "MQARData": "data",
    "make_ar": "data",
    "make_mqar": "data",
    "mqar_oracle": "data",
    "LanguageModel": "model",
    "train": "train",  # the submodule (its function is mqar_theory.train.train): one meaning, however imported
    "evaluate": "train",
    "run_mqar": "train",
}

__all__ = [
    "bounds",
    "constructions",
    "mixers",
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


def __getattr__(name: str):
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module 'mqar_theory' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{sub}")
    value = module if sub == name else getattr(module, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
