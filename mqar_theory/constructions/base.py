"""What every hand-set construction shares: the ``Construction`` interface and the reference answer.

A construction is a ``torch.nn.Module`` whose parameters are set by hand (``requires_grad=False``)
so that it solves MQAR exactly; ``.double()`` / ``.to("cuda")`` move them as torch does.

Answer convention (our decision, documented here once). ``predict(tokens)`` returns at every
position i the token x[j+1] that followed the first earlier occurrence j < i of x[i] *when x[i] is a
key token* (Algorithm 1's vocabulary split: keys are [1, c/2)), and -1 everywhere else. Filler 0 and
value tokens are never queries in Algorithm 1, so a construction may ignore them. This is
``mqar_oracle`` restricted to key-token positions (``expected_answers``); at the labelled positions
of ``make_mqar`` it is the label. It is exact for sequences with a consistent dictionary (each key
token's earlier occurrences all followed by the same token), which every ``make_mqar`` sequence with
``random_non_queries=False`` (the paper's setting) satisfies; random filler can repeat a key before
its query with another successor, which makes Definition 3.1 (arXiv 2312.04927, §3.1) ambiguous.

Measured sizes. Every function that applies one mixer layer is wrapped with ``mixer_layer``; inside
``trace_layers()`` each application records the width of the stream it reads, so the number of
layers and the width a forward pass really uses are counted, not declared (``bounds.sizes``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from ..data import mqar_oracle
from ..utils import is_int, is_number

__all__ = ["Construction", "expected_answers", "check_vocab_seq", "check_threshold", "frozen", "mixer_layer",
           "trace_layers"]

_TRACES: list[list[int]] = []


def mixer_layer(width_of: Callable[..., int]) -> Callable:
    """Decorator for a function that applies ONE mixer layer: while ``trace_layers()`` is active each
    call appends ``width_of(*args, **kwargs)`` (the width d of the stream the layer reads)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            if _TRACES:
                w = int(width_of(*args, **kwargs))
                for calls in _TRACES:
                    calls.append(w)
            return fn(*args, **kwargs)

        return wrapped

    return deco


@contextmanager
def trace_layers():
    """Context manager yielding a list that receives one stream width per mixer layer applied inside
    it (``mixer_layer``): ``len`` is the number of layers run, ``max`` the widest stream."""
    calls: list[int] = []
    _TRACES.append(calls)
    try:
        yield calls
    finally:
        _TRACES.remove(calls)


def check_vocab_seq(vocab_size, seq_len) -> None:
    """ValueError unless vocab_size is an even int >= 4 and seq_len an int >= 4."""
    if not (is_int(vocab_size) and vocab_size >= 4):
        raise ValueError(f"vocab_size={vocab_size!r}: must be an integer >= 4")
    if vocab_size % 2:
        raise ValueError(f"vocab_size={vocab_size!r}: must be even (keys [1, c/2), values [c/2, c))")
    if not (is_int(seq_len) and seq_len >= 4):
        raise ValueError(f"seq_len={seq_len!r}: must be an integer >= 4")


def check_threshold(threshold) -> float:
    """The read-out threshold every construction takes: a number in (0, 1)."""
    if not (is_number(threshold) and 0 < threshold < 1):
        raise ValueError(f"threshold={threshold!r}: must be a number in (0, 1)")
    return float(threshold)


def frozen(t: torch.Tensor) -> nn.Parameter:
    """A hand-set weight: a parameter that training would not touch."""
    return nn.Parameter(t, requires_grad=False)


def expected_answers(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The reference for ``predict``: ``mqar_oracle`` at key-token positions, -1 elsewhere."""
    tokens = torch.as_tensor(tokens)
    ans = mqar_oracle(tokens.cpu())
    is_key = (tokens.cpu() >= 1) & (tokens.cpu() < vocab_size // 2)
    return torch.where(is_key, ans, torch.full_like(ans, -1))


class Construction(nn.Module):
    """Base class. Subclasses set ``name``, ``theorem``, build their weights and implement
    ``forward(tokens) -> scores`` and ``predict(tokens) -> LongTensor (B, N)``; they may override
    ``margin``.

    Declared sizes (``summary``; the bounds do not read them: ``bounds.sizes`` counts the tensors and
    traces the layers, and ``bounds.check_sizes`` holds those to the closed forms):
      * ``num_parameters``: the stored hand-set weights (every ``nn.Parameter``); each subclass's
        docstring says which tensors these are;
      * ``num_fixed``: fixed tables (token codes, positional masks), stored as buffers and
        reported separately;
      * ``num_layers``: mixer layers; ``width``: the model dimension d of the stream.
    """

    name: str = "construction"
    theorem: str = ""

    def __init__(self, vocab_size: int, seq_len: int):
        super().__init__()
        check_vocab_seq(vocab_size, seq_len)
        self.vocab_size, self.seq_len = vocab_size, seq_len

    # --- sizes -------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def num_fixed(self) -> int:
        return sum(b.numel() for b in self.buffers())

    num_layers: int = 0
    width: int = 0

    # --- interface ---------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def check_tokens(self, tokens) -> torch.Tensor:
        """(N,) or (B, N) integer tokens in [0, c) with N <= seq_len -> (B, N) on the module's device."""
        t = torch.as_tensor(tokens, device=self.device)
        if t.dim() == 1:
            t = t[None]
        if t.dim() != 2 or t.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"tokens: must be an integer tensor of shape (N,) or (B, N), got {tuple(t.shape)}")
        if t.shape[1] > self.seq_len:
            raise ValueError(f"tokens: length {t.shape[1]} exceeds the seq_len={self.seq_len} it was built for")
        if t.numel() and (t.min() < 0 or t.max() >= self.vocab_size):
            raise ValueError(f"tokens: must lie in [0, vocab_size={self.vocab_size})")
        return t.long()

    def predict(self, tokens) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def margin(self, tokens) -> torch.Tensor:
        """(B, N) decision margin at every position (> 0 means the decision is robust); subclasses say
        in which units. The default has none."""
        raise NotImplementedError

    def summary(self) -> dict:
        return {
            "construction": self.name,
            "theorem": self.theorem,
            "c": self.vocab_size,
            "N": self.seq_len,
            "params": self.num_parameters,
            "fixed": self.num_fixed,
            "layers": self.num_layers,
            "width": self.width,
        }
