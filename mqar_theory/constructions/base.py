"""What every hand-set construction shares: an explicit program and the reference answer.

A construction is a ``torch.nn.Module`` whose weights are set by hand (``requires_grad=False``) so that
it solves MQAR exactly. It is an explicit program, as a compiled tracr model is:

    answers = decode(layers[L-1](... layers[0](encode(tokens))))

* ``encode(tokens)`` (B, n) -> stream (B, n', d0): position-wise (row i depends on token i only; a
  table lookup, plus filler rows up to a padded length n' >= n where a construction needs one);
* ``layers``: an ``nn.ModuleList`` of ``MixerLayer`` modules (the project's own mixers: BaseConv, sparse
  BaseConv, linear-bias or softmax attention), applied in order by ONE generic runner, ``run_layers``;
  nothing else touches the stream;
* ``decode(stream)`` (B, n', d) -> answers (B, n'): position-wise (answer i reads row i only).

So the number of layers is ``len(layers)`` and the width is the widest stream a layer reads.
``bounds.measure_sizes`` does not take them from here: it runs ``encode``, the runner and ``decode`` under an
operator trace (``bounds.observe``, arXiv 2312.04927's sizes observed from the computation): every number
that enters counts, one not among the counted tensors is refused, and layers are the longest chain of
sequence mixing from the tokens to the answers. An input-dependent construction overrides
``program(tokens)`` to build the list for one sequence; it is run and counted the same way.

Answer convention (our decision, documented here once). ``predict(tokens)`` returns at every position i
the token x[j+1] that followed the first earlier occurrence j < i of x[i] *when x[i] is a key token*
(Algorithm 1's vocabulary split: keys are [1, c/2)), and -1 everywhere else. Filler 0 and value tokens
are never queries in Algorithm 1, so a construction may ignore them. This is ``mqar_oracle`` restricted
to key-token positions (``expected_answers``); at the labelled positions of ``make_mqar`` it is the
label. It is exact for sequences with a consistent dictionary (each key token's earlier occurrences all
followed by the same token), which every ``make_mqar`` sequence with ``random_non_queries=False`` (the
paper's setting) satisfies; random filler can repeat a key before its query with another successor, which
makes Definition 3.1 (arXiv 2312.04927, §3.1) ambiguous.

One home per construction. Each construction's class also carries its facts, read by ``bounds`` (which
names no construction): ``closed_form(c, N, t)`` (the sizes its docstring derives), ``claims`` (one
``bounds.Claim`` per bound it is held to, ``expect`` = holds | fails | context), ``own_bounds`` (facts of
its own that no paper theorem states), ``grids`` (one sweep per profile), ``grid_constants`` (builder
constants per grid point) and ``style`` (plot colour, marker, label). ``fixed_tables(c, N)`` lists the
tables that are a fixed function of (c, N) alone (token codes); the size check recomputes each and reports
it apart only if it is equal to what is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..data import mqar_oracle
from ..utils import is_int, is_number

__all__ = ["Construction", "MixerLayer", "run_layers", "run_program", "expected_answers", "check_vocab_seq",
           "check_threshold", "frozen", "sweep"]


class MixerLayer(nn.Module):
    """One mixer layer of a construction's program: ``forward(u)`` maps the whole stream (B, n, d) to the
    next stream (B, n, d'). Subclasses are the project's own mixers (``constructions.layers``)."""


def run_layers(layers: Sequence[nn.Module], u: torch.Tensor, widths: list | None = None,
               keep: bool = True) -> list[torch.Tensor]:
    """THE runner: [u, layers[0](u), layers[1](layers[0](u)), ...] (only the last one if not ``keep``).
    Appends to ``widths`` (if given) the width of the stream each layer reads. ValueError unless every
    layer is a ``MixerLayer``."""
    out = [u]
    for k, layer in enumerate(layers):
        if not isinstance(layer, MixerLayer):
            raise ValueError(f"layers[{k}]: must be a MixerLayer, got {type(layer).__name__}")
        if widths is not None:
            widths.append(int(out[-1].shape[-1]))
        out.append(layer(out[-1]))
        if not keep:
            del out[0]
    return out


def _slices(con: Construction, x: torch.Tensor) -> list[torch.Tensor]:
    """Batch slices the runner takes: single sequences for an input-dependent construction, else slices of
    at most ``con.chunk_elements`` stream entries (the whole batch when it is None)."""
    B, n = x.shape
    if con.input_dependent:
        step = 1
    else:
        step = B if con.chunk_elements is None else max(1, con.chunk_elements // (max(n, 1) * max(con.width, 1)))
    return [x[lo : lo + step] for lo in range(0, B, max(step, 1))]


def run_program(con: Construction, tokens, widths: list | None = None) -> torch.Tensor:
    """(B, n) answers of ``con`` on ``tokens`` computed by the runner alone: ``con.decode`` of
    ``run_layers(con.program(x), con.encode(x))``, per sequence for an input-dependent construction and in
    batch slices of at most ``con.chunk_elements`` stream entries otherwise. ``bounds`` measures with this,
    never with a construction's own ``predict``."""
    x = con.check_tokens(tokens)
    n = x.shape[1]
    parts = [con.decode(run_layers(con.program(part), con.encode(part), widths, keep=False)[-1])[:, :n]
             for part in _slices(con, x)]
    return torch.cat(parts) if parts else x.new_full(x.shape, -1)


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


def sweep(Ns, c_fixed, cs, N_fixed, K=None) -> dict:
    """A profile's grid for one construction: N varied at c = ``c_fixed``, then c varied at N = ``N_fixed``;
    K (key-value pairs) ``None`` for ``bounds.default_K`` or a callable ``K(N, c)``."""
    return {"Ns": list(Ns), "c_fixed": c_fixed, "cs": list(cs), "N_fixed": N_fixed, "K": K}


_N_CPU, _C_CPU = [16, 22, 66, 150, 256, 1000], [6, 10, 16, 66, 256, 1000]
DEFAULT_GRIDS = {"cpu": sweep(_N_CPU, 66, _C_CPU, 66), "smoke": sweep([10, 22, 46], 10, [6, 10, 34], 22),
                 "gpu": sweep([66, 1000, 16000], 1000, [66, 1000, 65000], 1000)}


class Construction(nn.Module):
    """Base class: see the module docstring. Subclasses set ``name``, ``theorem``, ``self.layers`` and
    implement ``encode`` and ``decode``; they may override ``program`` (input-dependent filters),
    ``margin``, and the class-level facts ``closed_form``, ``claims``, ``own_bounds``, ``grids``,
    ``grid_constants``, ``style``, ``fixed_tables``."""

    name: str = "construction"
    theorem: str = ""
    claims: tuple = ()
    own_bounds: tuple = ()
    grids: Mapping = DEFAULT_GRIDS
    style: Mapping = {}
    chunk_elements: int | None = None  # memory knob of predict: stream entries per batch slice (None: all)

    def __init__(self, vocab_size: int, seq_len: int):
        super().__init__()
        check_vocab_seq(vocab_size, seq_len)
        self.vocab_size, self.seq_len = vocab_size, seq_len

    # --- facts (class level, read by bounds) ------------------------------------------------------
    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        """{params, layers, width} the docstring derives at (c, N) (and t, for an input-dependent one)."""
        raise NotImplementedError(f"{cls.__name__}: no closed form")

    @classmethod
    def grid_constants(cls, point: Mapping) -> dict:
        """Builder constants of a grid point {N, c, K} (default none)."""
        return {}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict[str, torch.Tensor]:
        """{attribute name: table} of the stored tables that are a fixed function of (c, N) alone."""
        return {}

    # --- the program ------------------------------------------------------------------------------
    @property
    def c(self) -> int:
        return self.vocab_size

    @property
    def N(self) -> int:
        return self.seq_len

    @property
    def dtype(self) -> torch.dtype:
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

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

    def encode(self, tokens) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, n) tokens -> (B, n', d0) stream, position-wise."""
        raise NotImplementedError

    def decode(self, stream: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(B, n', d) final stream -> (B, n') answers (-1 where none), position-wise."""
        raise NotImplementedError

    def program(self, tokens) -> nn.ModuleList:
        """The layers that run on ``tokens`` (one sequence): ``self.layers`` unless input-dependent."""
        return self.layers

    @property
    def input_dependent(self) -> bool:
        return type(self).program is not Construction.program

    def trace(self, tokens) -> list[torch.Tensor]:
        """[encode(x), after layer 1, ..., after layer L]; an input-dependent construction takes one sequence."""
        x = self.check_tokens(tokens)
        if self.input_dependent and x.shape[0] != 1:
            raise ValueError(f"tokens: {self.name} builds its program per input; trace takes one sequence, "
                             f"got a batch of {x.shape[0]}")
        return run_layers(self.program(x), self.encode(x))

    def final_stream(self, tokens) -> torch.Tensor:
        """The stream after the last layer (for an input-dependent construction, one sequence)."""
        return self.trace(tokens)[-1]

    def map_final(self, tokens, fn) -> torch.Tensor:
        """cat over the runner's batch slices of ``fn(final stream of the slice)`` (B', n', ...), cropped to n."""
        x = self.check_tokens(tokens)
        n = x.shape[1]
        return torch.cat([fn(run_layers(self.program(p), self.encode(p), keep=False)[-1])[:, :n]
                          for p in _slices(self, x)])

    def predict(self, tokens) -> torch.Tensor:
        """(B, n) LongTensor: decode of the runner's final stream, cropped to the input length
        (``run_program``)."""
        return run_program(self, tokens)

    def forward(self, tokens) -> torch.Tensor:
        return self.predict(tokens)

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) decision margin at every position (> 0 means the decision is robust); subclasses say
        in which units. The default has none."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """Widest stream a layer of ``self.layers`` reads (an input-dependent program: see ``program``)."""
        return max((int(getattr(m, "d_in", 0)) for m in self.layers), default=0)

    def extra_repr(self) -> str:
        return (f"c={self.vocab_size}, N={self.seq_len}, layers={len(self.layers)}, width={self.width}"
                + (" (per input)" if self.input_dependent else ""))

    def __repr__(self) -> str:  # short: the layers themselves can be thousands
        return f"{type(self).__name__}({self.extra_repr()})"
