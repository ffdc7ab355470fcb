"""``BaseConvStack``: BaseConv layers (eq. (1) of Zoology, arXiv 2312.04927) composed, with nothing
between consecutive layers, between a read-in and a read-out map.

The layers are the one sparse BaseConv layer of the hand-set constructions,
``constructions.layers.SparseBaseConv`` (W and h stored by their nonzero entries); ``make_layer`` stores
a dense (W, b1, b2, h) in it losslessly and the layer's ``dense()`` gives those tensors back. Every count
of a stack (``num_parameters``, ``num_nonzero_parameters``) is of that dense form, eq. (1) with W (D, D),
b1, b2 (N', D) and h (L, D), the sizes Thm 4.2 speaks of; the sparse storage only makes evaluation cheap.

The two maps are the ones of the appendix's model with inner dimensions (`def: gated-conv`):

* read-in ``"pad"``: u (B, N, d) is zero-padded into the top-left corner of (B, N', D);
  read-in ``"flatten"``: u is flattened row-major into one token, feature i·d + j = u[i, j], and
  zero-padded to (B, 1, D) (the one-token "feature memory" encoding of the circuit compilers);
* read-out ``None``: crop the top-left (N, d) corner; read-out ``out_index`` (a list of flat
  positions p into the final (N', D) state): output k = y[p_k // D, p_k % D], giving (B, len(out_index)).

Both are coordinate maps (a reshape, a zero-pad, a crop or a gather of entries): no arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..constructions.layers import SparseBaseConv
from ..mixers.baseconv import BaseConv

__all__ = ["BaseConvStack", "make_layer", "as_layer", "check_layers", "READ_INS"]

READ_INS = ("pad", "flatten")


def make_layer(W: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, h: torch.Tensor, cyclic: bool = False,
               name: str = "") -> SparseBaseConv:
    """A float64 ``SparseBaseConv`` whose ``dense()`` is exactly W (D, D), b1, b2 (N', D) and h (L, D),
    1 <= L <= N' (a long filter when L = N', a short one otherwise); ``ValueError`` on other shapes."""
    return SparseBaseConv.from_dense(W, b1, b2, h, cyclic=cyclic, name=name)


def as_layer(layer) -> SparseBaseConv:
    """``layer`` itself if it is a ``SparseBaseConv``; a ``mixers.BaseConv`` (a trained dense layer) stored
    in one with ``make_layer`` (same weights, same function); ``ValueError`` otherwise."""
    if isinstance(layer, SparseBaseConv):
        return layer
    if isinstance(layer, BaseConv):
        return make_layer(*(t.detach() for t in (layer.W, layer.b1, layer.b2, layer.h)), cyclic=layer.cyclic)
    raise ValueError(f"layer: must be a SparseBaseConv or a mixers.BaseConv, got {type(layer).__name__}")


def check_layers(layers: Sequence[SparseBaseConv], arg: str = "layers") -> list[SparseBaseConv]:
    """``layers`` as a list after checking that it is non-empty and holds ``SparseBaseConv`` layers of one
    inner shape (N', D); ``ValueError`` naming ``arg`` otherwise."""
    layers = list(layers)
    if not layers:
        raise ValueError(f"{arg}: must hold at least one SparseBaseConv")
    for k, layer in enumerate(layers):
        if not isinstance(layer, SparseBaseConv):
            raise ValueError(f"{arg}[{k}]: must be a constructions.layers.SparseBaseConv (see make_layer), got "
                             f"{type(layer).__name__}")
        if (layer.N, layer.d_in) != (layers[0].N, layers[0].d_in):
            raise ValueError(f"{arg}[{k}]: inner shape {(layer.N, layer.d_in)} differs from "
                             f"{arg}[0]'s {(layers[0].N, layers[0].d_in)}")
    return layers


class BaseConvStack(nn.Module):
    """``BaseConvStack(layers, num_rows, num_cols, read_in="pad", out_index=None, note="")``.

    layers: ``SparseBaseConv`` layers of one inner shape (N', D) (``make_layer``). ``forward(u)`` /
    ``evaluate(u)``: read-in, the layers in order, read-out (module docstring). ``num_layers``, ``width``
    (D), ``seq_len`` (N'), ``num_parameters`` (numbers of the layers' dense forms, counted from the
    tensors ``dense()`` returns) and ``num_nonzero_parameters`` (their nonzero entries) are measured from
    the stored layers.
    """

    def __init__(self, layers: Sequence[SparseBaseConv], num_rows: int, num_cols: int, read_in: str = "pad",
                 out_index: Sequence[int] | None = None, note: str = ""):
        super().__init__()
        layers = check_layers(layers)
        if read_in not in READ_INS:
            raise ValueError(f"read_in={read_in!r}: must be one of {READ_INS}")
        self.layers = nn.ModuleList(layers)
        self.num_rows, self.num_cols, self.read_in, self.note = int(num_rows), int(num_cols), read_in, note
        n, D = self.seq_len, self.width
        need = (1, num_rows * num_cols) if read_in == "flatten" else (num_rows, num_cols)
        if n < need[0] or D < need[1]:
            raise ValueError(f"layers: inner shape (N'={n}, D={D}) is too small for read_in={read_in!r} of a "
                             f"{num_rows}×{num_cols} input (needs N' >= {need[0]}, D >= {need[1]})")
        if out_index is not None:
            out_index = [int(p) for p in out_index]
            if not out_index or not all(0 <= p < n * D for p in out_index):
                raise ValueError(f"out_index: must be a non-empty list of flat positions in [0, {n * D})")
        self.out_index = out_index

    @property
    def seq_len(self) -> int:
        return self.layers[0].N

    @property
    def width(self) -> int:
        return self.layers[0].d_in

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_parameters(self) -> int:
        return sum(t.numel() for layer in self.layers for t in layer.dense())

    @property
    def num_nonzero_parameters(self) -> int:
        return sum(int((t != 0).sum()) for layer in self.layers for t in layer.dense())

    def dense_layers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, bool]]:
        """(W, b1, b2, h, cyclic) of every layer: its ``dense()`` form, for ``mixers.baseconv``."""
        return [(*layer.dense(), layer.cyclic) for layer in self.layers]

    def read(self, u: torch.Tensor) -> torch.Tensor:
        """The read-in map: (B, N, d) -> (B, N', D)."""
        if not isinstance(u, torch.Tensor) or u.dim() != 3 or tuple(u.shape[1:]) != (self.num_rows, self.num_cols):
            raise ValueError(f"u: must have shape (B, {self.num_rows}, {self.num_cols}), got "
                             f"{tuple(getattr(u, 'shape', ()))}")
        B = u.shape[0]
        x = u.new_zeros(B, self.seq_len, self.width)  # (B, N', D)
        if self.read_in == "flatten":
            x[:, 0, : self.num_rows * self.num_cols] = u.reshape(B, -1)
        else:
            x[:, : self.num_rows, : self.num_cols] = u
        return x

    def write(self, y: torch.Tensor) -> torch.Tensor:
        """The read-out map: (B, N', D) -> (B, N, d) (crop) or (B, len(out_index)) (gather)."""
        if self.out_index is None:
            return y[:, : self.num_rows, : self.num_cols]
        return y.reshape(y.shape[0], -1)[:, self.out_index]

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The layers alone on the inner state x (B, N', D)."""
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.write(self.run(self.read(u)))

    def evaluate(self, u: torch.Tensor) -> torch.Tensor:
        return self(u)

    def extra_repr(self) -> str:
        return (f"input={self.num_rows}×{self.num_cols}, inner=(N'={self.seq_len}, D={self.width}), "
                f"layers={self.num_layers}, read_in={self.read_in!r}, params={self.num_parameters}")
