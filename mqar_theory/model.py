"""The trainable language model of the paper's experiments: embedding, mixer blocks, head.

    x = E[tokens] (+ P[positions])                          # (B, N, d)
    for each layer l:   x = x + mixer_l(LN(x))              # sequence mixer, pre-norm residual
                        x = x + MLP_l(LN(x))                # optional state mixer (``mlp``)
    logits = LN(x) E^T   (tied head; or an untied Linear)   # (B, N, c)

Decisions (where the official code, HazyResearch/zoology ``zoology/model.py``, differs or is silent; the facts are
in ``docs/official-code.md``, "Model"):

* **Mixer**: chosen by name from ``mqar_theory.mixers.MIXERS`` (constructor ``f(d_model, seq_len, **kw)``);
  ``mixer`` may also be a list of names, cycled over the layers (layer l uses ``mixer[l % len]``), for
  hybrids such as BaseConv + attention. Mixers that set ``uses_tokens`` (the programmatic input-dependent
  ones) also receive the token ids, ``mixer(LN(x), tokens=inputs)``; ``auxiliary_loss()`` sums the mixers'
  auxiliary losses of the last forward (the learned selection's penalty), which ``train`` adds to the loss.
* **Per-layer kwargs**: ``mixer_kwargs`` is one dict for every layer, or a list of dicts cycled the same
  way, e.g. Fig. 2's BaseConv kernel sizes [3, -1] are ``[{"kernel_size": 3}, {"kernel_size": None}]``
  (``BASECONV_FIG2_KWARGS``); with ``n_layers=4`` that gives the ICLR-era [3, -1, 3, -1].
* **Positions**: learned absolute position embeddings P (seq_len x d) are added when some layer's mixer
  class sets ``uses_positions = True`` (Attention does; Fig. 2 gives attention
  ``max_position_embeddings = L`` and the other mixers none). ``positions=True/False`` forces it.
* **Blocks**: pre-norm with residuals. With ``mlp=False`` (Fig. 2's ``state_mixer = Identity``) the block is
  ``x + mixer(LN(x))`` only: the official block also adds ``LN2(x)`` to the stream in that case (an extra
  normalised skip, an artefact of its flash-attn style residual bookkeeping); we do not reproduce it.
  ``mlp=m`` (an int >= 1, or True for 4) adds a GELU MLP d -> m*d -> d after the mixer.
* **Head**: tied to the token embedding (logits = h E^T, no bias) by default, as in the official code;
  ``tie_weights=False`` gives an untied ``Linear(d, c, bias=False)``. No vocabulary padding.
* **Init**: as the official ``_init_weights``: every ``nn.Linear`` (including those inside mixers, e.g.
  attention's ``Wqkv``) and ``nn.Embedding`` weight ~ N(0, ``init_std``), biases 0; output projections
  (names ending ``out_proj.weight`` or ``mlp.fc2.weight``) ~ N(0, init_std / sqrt(2 n_layers)). Mixer
  parameters that are not ``nn.Linear`` (BaseConv's W, b1, b2, h; LinearBiasAttention's weights) keep the
  mixer's own documented init.
* **Dropout**: one embedding dropout ``dropout`` (default None: 0 under ``recipe="clean"``; the official
  runs use 0.1, see below).

**Recipes.** ``recipe="clean"`` (the default) is the model described above. ``recipe="official"``
reproduces, for the paper's Figure 2 experiments, what the official code (HazyResearch/zoology,
``zoology/model.py`` and ``zoology/mixers/``; its Figure 2 configs in
``zoology/experiments/paper_configs/iclr24_zoology_figure2/configs.py``) builds where it differs:

1. *Block* (``zoology/model.py``, ``TransformerBlock``): with no MLP (the official ``state_mixer =
   Identity``) the official block still returns ``LN2(residual)`` as its hidden state, which the next block
   (or the final norm) adds to the stream: the block is x ← x + mixer(LN1(x)); x ← x + LN2(x). With an MLP
   the official block is the clean one.
2. *Mamba* (``zoology/mixers/mamba.py``, ``MambaBlock``): an all-Mamba model uses the official MambaBlock:
   x ← x + mamba(RMSNorm(x)), no LN2, no dropout anywhere (so no embedding dropout), and the
   ``block_type="MambaBlock"`` branch of ``_init_weights``: Linear weights keep PyTorch's default init
   (biases zeroed), ``out_proj`` is re-drawn with ``kaiming_uniform_(a=√5)`` and divided by √n_layers.
   Mamba cannot be mixed with other mixers under this recipe (the official model has one block type).
3. *Embedding dropout*: ``dropout=None`` means 0.1 (the official ``embed_dropout``) for TransformerBlock
   models and 0 for Mamba; an explicit ``dropout > 0`` for an all-Mamba model is an error.
4. *Mixers*: ``baseconv`` is ``BaseConvOfficial`` (implicit MLP filter for long layers, ``+u`` skips,
   shared biases); ``attention`` gets ``dropout=0.1`` on its probabilities; ``h3`` gets ``head_dim=2``,
   ``d_state=seq_len`` and the official SSMs (``train_B=True``, ``shift_init="official"``,
   ``discretization="bilinear"``: B trained in both SSMs, the shift SSM's C from ``kaiming_uniform_(a=√5)``,
   the bilinear transform; the parameter count of the official model); ``hyena`` gets
   ``positional="official"`` (trainable z, frequency 1e-4); ``rwkv`` gets ``layer_idx`` = its layer and
   ``n_layer=12`` (the official constructor's default). Each is a default under the spec's own
   ``mixer_kwargs``, which still win.
5. *Init*: as the official ``_init_weights`` reaches each module: ``out_proj`` rescaling only where the
   official module has a parameter named ``out_proj.weight`` (attention, Hyena): not H3 (official name
   ``output_linear``) nor Based (``proj_o``); RWKV's Linear layers keep PyTorch's default init (the
   official ``RWKVTimeMixer`` is a ``torch.jit.ScriptModule``, whose Linear submodules are not
   ``nn.Linear`` instances, so ``_init_weights`` skips them); Mamba as in 2.
The official Figure 2 "based" model is the per-layer hybrid [BaseConv k=3, Based f=8], which is a mixer
list here (``mixer=["baseconv", "based"]``, ``mixer_kwargs=[{"kernel_size": 3}, {"feature_dim": 8}]``);
``sweeps/figure2_paper.yaml`` names it so. The training loop's side of the recipe is in ``train``.
Not reproduced (differences too small to matter, each stated where it lives): attention's -10000 mask (vs -inf),
Based's ε = 1e-12 in its normaliser, RWKV's bf16 rounding of the WKV output, and the official data seeds
(``np.random.seed(123)``-derived; ours are ``data_seed`` and an offset).

``forward(inputs)`` returns logits (B, n, c) for inputs of any length n <= seq_len. ``forward(inputs,
labels)`` computes the head only at labelled positions (labels != -100), the expensive part at large c
(``docs/official-code.md``, "CPU calibration"), and returns ``LMOutput(loss, logits, targets)``: the mean
cross-entropy over the labelled positions, the (M, c) logits at those positions in row-major order
(``x[labels != -100]``) and their (M,) labels. The model is causal: the output at position i depends only on
tokens 0..i.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .data import IGNORE_INDEX
from .mixers import MIXERS, BaseConvOfficial, get_mixer
from .utils import DeviceChecked, is_int, is_number

__all__ = ["LanguageModel", "LMOutput", "Block", "MLP", "RMSNorm", "BASECONV_FIG2_KWARGS", "RECIPES",
           "official_mixer"]

#: ``LanguageModel(recipe=...)``: "clean" (the default) or "official" (the official code's Figure 2 models)
RECIPES = ("clean", "official")
#: official embedding dropout of TransformerBlock models (``ModelConfig.embed_dropout``)
OFFICIAL_EMBED_DROPOUT = 0.1
#: per mixer, the official ``_init_weights`` scheme (module docstring, item 5); others: "gpt2"
OFFICIAL_INIT = {"h3": "unscaled", "based": "unscaled", "rwkv": "pytorch", "mamba": "mamba"}

#: Fig. 2's BaseConv layers alternate a short (k=3) and a long (seq_len taps) filter: kernel_size [3, -1].
BASECONV_FIG2_KWARGS = ({"kernel_size": 3}, {"kernel_size": None})


class LMOutput(NamedTuple):
    """What ``LanguageModel.forward(inputs, labels)`` returns (unpacks like a tuple)."""

    loss: torch.Tensor  # () mean cross-entropy over labelled positions
    logits: torch.Tensor  # (M, c) logits at the M labelled positions, row-major order
    targets: torch.Tensor  # (M,) the labels there



class MLP(nn.Module):
    """Position-wise GELU MLP d -> hidden_mult * d -> d (the optional state mixer)."""

    def __init__(self, d_model: int, hidden_mult: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(d_model, hidden_mult * d_model)
        self.fc2 = nn.Linear(hidden_mult * d_model, d_model)

    def forward(self, x):  # (B, N, d) -> (B, N, d)
        return self.fc2(F.gelu(self.fc1(x)))


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) ⊙ w, w initialised to 1: the norm of the official ``MambaBlock``
    (HazyResearch/zoology, ``zoology/mixers/mamba.py``, which imports it from its vendored mamba_ssm)."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):  # (B, N, d) -> (B, N, d)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    """Pre-norm block: x + mixer(LN(x)), then x + MLP(LN(x)) when an MLP is present.

    ``norm2_skip=True`` (the official TransformerBlock with an Identity state mixer, ``recipe="official"``)
    adds x + LN2(x) instead when there is no MLP; ``rms=True`` uses ``RMSNorm`` as the pre-norm (the
    official MambaBlock)."""

    def __init__(self, mixer: nn.Module, d_model: int, mlp_mult: int | None, eps: float, norm2_skip: bool = False,
                 rms: bool = False):
        super().__init__()
        self.norm1 = RMSNorm(d_model, eps=eps) if rms else nn.LayerNorm(d_model, eps=eps)
        self.mixer = mixer
        self.norm2_skip = bool(norm2_skip) and not mlp_mult
        self.norm2 = nn.LayerNorm(d_model, eps=eps) if mlp_mult or self.norm2_skip else None
        self.mlp = MLP(d_model, mlp_mult) if mlp_mult else None

    def forward(self, x, tokens=None):  # (B, N, d) -> (B, N, d); tokens (B, N) reach mixers with uses_tokens
        if tokens is not None and getattr(self.mixer, "uses_tokens", False):
            x = x + self.mixer(self.norm1(x), tokens=tokens)
        else:
            x = x + self.mixer(self.norm1(x))
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        elif self.norm2_skip:
            x = x + self.norm2(x)  # the official block's LN2(residual), added by the next block
        return x


def official_mixer(name: str, d_model: int, seq_len: int, layer: int, **kw) -> nn.Module:
    """The mixer ``name`` of layer ``layer`` as a ``recipe="official"`` model builds it (module docstring,
    item 4): the official defaults are set under ``kw``, which wins."""
    kw = dict(kw)
    if name == "baseconv":
        return BaseConvOfficial(d_model, seq_len, **kw)
    if name == "attention":
        kw.setdefault("dropout", 0.1)
    elif name == "h3":
        kw.setdefault("head_dim", 2)
        kw.setdefault("d_state", seq_len)
        for key, value in (("train_B", True), ("shift_init", "official"), ("discretization", "bilinear")):
            kw.setdefault(key, value)
    elif name == "hyena":
        kw.setdefault("positional", "official")
    elif name == "rwkv":
        kw.setdefault("layer_idx", layer)
        kw.setdefault("n_layer", 12)
    return get_mixer(name, d_model, seq_len, **kw)


def _per_layer(value, n_layers: int, name: str, kind) -> list:
    """A single value for every layer, or a non-empty list/tuple cycled over the layers."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0 or len(value) > n_layers:
            raise ValueError(f"{name}={value!r}: a list needs 1..n_layers={n_layers} entries (it is cycled)")
        items = list(value)
    else:
        items = [value]
    for v in items:
        if not isinstance(v, kind):
            raise ValueError(f"{name}={value!r}: entries must be {kind.__name__}")
    return [items[i % len(items)] for i in range(n_layers)]


class LanguageModel(DeviceChecked, nn.Module):
    """``LanguageModel(vocab_size, d_model, seq_len, n_layers=2, mixer="attention", ...)``; see the module
    docstring for the architecture and decisions.

    Args:
        vocab_size: c, number of tokens (>= 2).
        d_model: d, width of the residual stream (>= 1).
        seq_len: N, the longest input (sizes the position embedding and position-dependent mixers).
        n_layers: number of blocks (>= 1).
        mixer: registry name, or list of names cycled over layers.
        mixer_kwargs: dict of keyword arguments for every mixer, or a list of dicts cycled over layers.
        mlp: False/None/0 for no MLP, True for hidden_mult 4, an int m >= 1 for hidden_mult m.
        positions: None (auto: iff some mixer class has ``uses_positions``), True or False.
        tie_weights: tie the LM head to the token embedding (default True, as the official code).
        dropout: embedding dropout probability (default None: 0.0 for ``recipe="clean"``, the official value
            for ``recipe="official"``: 0.1, or 0 for an all-Mamba model).
        init_std: std of the N(0, std) init of Linear and Embedding weights (default 0.02).
        layer_norm_eps: LayerNorm epsilon (default 1e-5).
        recipe: ``"clean"`` (default) or ``"official"`` (the official code's models; module docstring).
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        seq_len: int,
        n_layers: int = 2,
        mixer: str | list[str] = "attention",
        mixer_kwargs: dict | list[dict] | None = None,
        mlp: bool | int | None = False,
        positions: bool | None = None,
        tie_weights: bool = True,
        dropout: float | None = None,
        init_std: float = 0.02,
        layer_norm_eps: float = 1e-5,
        recipe: str = "clean",
    ):
        super().__init__()
        if not (is_int(vocab_size) and vocab_size >= 2):
            raise ValueError(f"vocab_size={vocab_size!r}: must be an integer >= 2")
        if not (is_int(d_model) and d_model >= 1):
            raise ValueError(f"d_model={d_model!r}: must be an integer >= 1")
        if not (is_int(seq_len) and seq_len >= 1):
            raise ValueError(f"seq_len={seq_len!r}: must be an integer >= 1")
        if not (is_int(n_layers) and n_layers >= 1):
            raise ValueError(f"n_layers={n_layers!r}: must be an integer >= 1")
        mixers = _per_layer(mixer, n_layers, "mixer", str)
        for name in mixers:
            if name not in MIXERS:
                raise ValueError(f"mixer={name!r}: unknown; registered mixers are {sorted(MIXERS)}")
        kwargs = _per_layer({} if mixer_kwargs is None else mixer_kwargs, n_layers, "mixer_kwargs", dict)
        if mlp is None or mlp is False:
            mlp_mult = None
        elif mlp is True:
            mlp_mult = 4
        elif is_int(mlp) and mlp >= 0:
            mlp_mult = mlp or None
        else:
            raise ValueError(f"mlp={mlp!r}: must be False/None (no MLP), True (hidden_mult 4) or an int >= 0")
        if positions is not None and not isinstance(positions, bool):
            raise ValueError(f"positions={positions!r}: must be None (auto), True or False")
        if positions is None:
            positions = any(getattr(MIXERS[name], "uses_positions", False) for name in mixers)
        if not isinstance(tie_weights, bool):
            raise ValueError(f"tie_weights={tie_weights!r}: must be a bool")
        if recipe not in RECIPES:
            raise ValueError(f"recipe={recipe!r}: must be one of {list(RECIPES)}")
        mamba_block = recipe == "official" and "mamba" in mixers
        if mamba_block and set(mixers) != {"mamba"}:
            raise ValueError(f"mixer={mixer!r}: with recipe='official' mamba cannot be mixed with other mixers "
                             "(the official MambaBlock model is all-Mamba)")
        if mamba_block and mlp_mult:
            raise ValueError(f"mlp={mlp!r}: with recipe='official' a Mamba model has no MLP (MambaBlock)")
        if dropout is not None and not (is_number(dropout) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout={dropout!r}: must be None or a number in [0, 1)")
        if mamba_block and dropout:
            raise ValueError(f"dropout={dropout!r}: with recipe='official' a Mamba model has no dropout "
                             "(the official MambaBlock); leave it None")
        if dropout is None:
            dropout = OFFICIAL_EMBED_DROPOUT if recipe == "official" and not mamba_block else 0.0
        if not (is_number(init_std) and init_std > 0):
            raise ValueError(f"init_std={init_std!r}: must be a finite number > 0")
        if not (is_number(layer_norm_eps) and layer_norm_eps > 0):
            raise ValueError(f"layer_norm_eps={layer_norm_eps!r}: must be a finite number > 0")

        vocab_size, d_model, seq_len, n_layers = int(vocab_size), int(d_model), int(seq_len), int(n_layers)
        self.vocab_size, self.d_model, self.seq_len, self.n_layers = vocab_size, d_model, seq_len, n_layers
        self.mixer_names, self.recipe = mixers, recipe
        self.config = dict(
            vocab_size=vocab_size, d_model=d_model, seq_len=seq_len, n_layers=n_layers,
            mixer=mixer if isinstance(mixer, str) else list(mixer),
            mixer_kwargs=[dict(k) for k in kwargs], mlp=mlp_mult or False, positions=positions,
            tie_weights=tie_weights, dropout=float(dropout), init_std=float(init_std),
            layer_norm_eps=float(layer_norm_eps), recipe=recipe,
        )  # fmt: skip

        self.embedding = nn.Embedding(vocab_size, d_model)  # E: (c, d)
        self.position = nn.Embedding(seq_len, d_model) if positions else None  # P: (N, d)
        self.drop = nn.Dropout(dropout)
        official = recipe == "official"
        self.blocks = nn.ModuleList(
            Block(official_mixer(name, d_model, seq_len, i, **kw) if official else get_mixer(name, d_model, seq_len,
                  **kw), d_model, mlp_mult, layer_norm_eps, norm2_skip=official and not mamba_block, rms=mamba_block)
            for i, (name, kw) in enumerate(zip(mixers, kwargs, strict=True))
        )  # fmt: skip
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.lm_head = None if tie_weights else nn.Linear(d_model, vocab_size, bias=False)
        self._init_weights(init_std)

    def _init_scheme(self, name: str) -> str:
        """The init scheme of module ``name``: "gpt2" everywhere under the clean recipe; under the official
        one, a mixer's modules follow ``OFFICIAL_INIT`` (module docstring, item 5)."""
        parts = name.split(".")
        if self.recipe != "official" or len(parts) < 3 or parts[0] != "blocks" or parts[2] != "mixer":
            return "gpt2"
        return OFFICIAL_INIT.get(self.mixer_names[int(parts[1])], "gpt2")

    def _init_weights(self, std: float) -> None:
        out_std = std / math.sqrt(2 * self.n_layers)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                last = name.rsplit(".", 1)[-1]
                scheme = self._init_scheme(name)
                if scheme == "pytorch":
                    continue  # RWKV's ScriptModule Linears: the official _init_weights never sees them
                if scheme == "mamba":  # block_type "MambaBlock": weights keep the default, out_proj re-drawn
                    if last == "out_proj":
                        nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
                        with torch.no_grad():
                            m.weight /= math.sqrt(self.n_layers)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                    continue
                scaled = (last == "out_proj" and scheme == "gpt2") or name.endswith("mlp.fc2")
                nn.init.normal_(m.weight, 0.0, out_std if scaled else std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, std)

    # --- sizes ---------------------------------------------------------------------------------
    def num_parameters(self, include_embeddings: bool = True) -> int:
        """Trainable parameters; ``include_embeddings=False`` leaves out E and P (an untied head stays)."""
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        if not include_embeddings:
            total -= self.embedding.weight.numel()
            if self.position is not None:
                total -= self.position.weight.numel()
        return total

    # --- forward -------------------------------------------------------------------------------
    def _check_inputs(self, inputs) -> None:
        if not isinstance(inputs, torch.Tensor):
            raise ValueError(f"inputs: must be a torch.Tensor of token ids, got {type(inputs).__name__}")
        if inputs.dtype.is_floating_point or inputs.dtype.is_complex or inputs.dtype == torch.bool:
            raise ValueError(f"inputs: must be an integer tensor of token ids, got dtype {inputs.dtype}")
        if inputs.dim() != 2:
            raise ValueError(f"inputs: must have shape (B, N), got {tuple(inputs.shape)}")
        B, n = inputs.shape
        if B < 1 or not 1 <= n <= self.seq_len:
            raise ValueError(
                f"inputs: shape {tuple(inputs.shape)} needs B >= 1 and 1 <= N <= seq_len={self.seq_len}"
            )
        lo, hi = int(inputs.min()), int(inputs.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(
                f"inputs: token ids must lie in [0, vocab_size={self.vocab_size}), got [{lo}, {hi}]"
            )

    def _check_labels(self, labels, inputs) -> torch.Tensor:
        if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype.is_complex \
                or labels.dtype == torch.bool:
            raise ValueError("labels: must be an integer torch.Tensor (a token id or -100 per position)")
        if labels.shape != inputs.shape:
            raise ValueError(f"labels: shape {tuple(labels.shape)} must equal inputs' {tuple(inputs.shape)}")
        mask = labels != IGNORE_INDEX  # (B, N)
        if not bool(mask.any()):
            raise ValueError("labels: has no labelled position (every entry is -100)")
        targets = labels[mask]
        if int(targets.min()) < 0 or int(targets.max()) >= self.vocab_size:
            raise ValueError(
                f"labels: entries must be -100 or token ids in [0, vocab_size={self.vocab_size})"
            )
        return mask

    def hidden(self, inputs: torch.Tensor) -> torch.Tensor:
        """Final normalised hidden states (B, n, d), before the head. Validates ``inputs``."""
        self._check_inputs(inputs)
        return self._hidden(inputs)

    def _hidden(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.embedding(inputs)  # (B, n, d)
        if self.position is not None:
            x = x + self.position.weight[: inputs.shape[1]]  # (n, d) broadcast over B
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, inputs)  # (B, n, d)
        return self.norm(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., c) logits."""
        return h @ self.embedding.weight.T if self.lm_head is None else self.lm_head(h)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None):
        """Logits (B, n, c) without labels; ``LMOutput(loss, logits (M, c), targets (M,))`` with labels."""
        if labels is None:
            return self.head(self.hidden(inputs))  # (B, n, c)
        self._check_inputs(inputs)
        mask = self._check_labels(labels, inputs)  # (B, n)
        h = self._hidden(inputs)[mask]  # (M, d): only the labelled positions reach the head
        logits = self.head(h)  # (M, c)
        targets = labels[mask].long()  # (M,)
        return LMOutput(F.cross_entropy(logits, targets), logits, targets)

    def forward_labelled(self, inputs: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor) -> LMOutput:
        """``forward(inputs, labels)`` for a caller that has validated its data and located the labelled positions
        itself: ``positions`` (M,) are indices into the flattened (B·n) positions, in increasing order (those of
        ``labels != -100``), ``targets`` (M,) their labels. The same numbers as ``forward`` (its boolean mask
        selects the same rows in the same order), but no check reads a tensor back and the selection's size is
        known without one, so a training step on a GPU never waits for the host. ``train`` and ``evaluate`` use
        it, with the positions computed on the CPU from the CPU copy of the labels."""
        h = self._hidden(inputs).flatten(0, 1)[positions]  # (M, d)
        logits = self.head(h)  # (M, c)
        return LMOutput(F.cross_entropy(logits, targets), logits, targets)

    def auxiliary_loss(self) -> torch.Tensor | float:
        """Sum of the mixers' ``auxiliary_loss()`` from the last forward pass (e.g. the learned
        sparse-attention selection penalty); 0.0 when no mixer has one. ``train`` adds it to the loss."""
        total = 0.0
        for block in self.blocks:
            aux = getattr(block.mixer, "auxiliary_loss", None)
            value = aux() if aux is not None else None
            if value is not None:
                total = total + value
        return total

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, d_model={self.d_model}, seq_len={self.seq_len}, "
                f"mixers={self.mixer_names}, positions={self.position is not None}, "
                f"tied={self.lm_head is None}, recipe={self.recipe}")
