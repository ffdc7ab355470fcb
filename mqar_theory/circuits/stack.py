"""``BaseConvStack``: the project's own ``BaseConv`` layers (eq. (1) of Zoology, arXiv 2312.04927)
composed, with nothing between consecutive layers, between a read-in and a read-out map.

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

from ..mixers.baseconv import BaseConv

__all__ = ["BaseConvStack", "make_layer", "check_layers", "READ_INS"]

READ_INS = ("pad", "flatten")


def make_layer(W: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor, h: torch.Tensor, cyclic: bool = False
               ) -> BaseConv:
    """A float64 ``BaseConv`` holding exactly W (D, D), b1, b2 (N', D) and h (L, D): seq_len N', a long
    filter when L = N', a short one (kernel_size L) otherwise. The global RNG is left untouched."""
    D, n, L = W.shape[0], b1.shape[0], h.shape[0]
    if W.shape != (D, D) or b1.shape != (n, D) or b2.shape != (n, D) or h.shape[1] != D or not 1 <= L <= n:
        raise ValueError(f"W, b1, b2, h: shapes {tuple(W.shape)}, {tuple(b1.shape)}, {tuple(b2.shape)}, "
                         f"{tuple(h.shape)} must be (D, D), (N', D), (N', D), (L <= N', D)")
    with torch.random.fork_rng(devices=[]):
        layer = BaseConv(D, n, kernel_size=None if L == n else L, cyclic=cyclic).double()
    with torch.no_grad():
        for name, t in (("W", W), ("b1", b1), ("b2", b2), ("h", h)):
            getattr(layer, name).copy_(t.to(torch.float64))
    return layer


def check_layers(layers: Sequence[BaseConv], arg: str = "layers") -> list[BaseConv]:
    """``layers`` as a list after checking that it is non-empty and holds ``BaseConv`` modules of one
    inner shape (N', D); ``ValueError`` naming ``arg`` otherwise."""
    layers = list(layers)
    if not layers:
        raise ValueError(f"{arg}: must hold at least one BaseConv")
    for k, layer in enumerate(layers):
        if not isinstance(layer, BaseConv):
            raise ValueError(f"{arg}[{k}]: must be a mixers.BaseConv, got {type(layer).__name__}")
        if (layer.seq_len, layer.d_model) != (layers[0].seq_len, layers[0].d_model):
            raise ValueError(f"{arg}[{k}]: inner shape {(layer.seq_len, layer.d_model)} differs from "
                             f"{arg}[0]'s {(layers[0].seq_len, layers[0].d_model)}")
    return layers


class BaseConvStack(nn.Module):
    """``BaseConvStack(layers, num_rows, num_cols, read_in="pad", out_index=None, note="")``.

    layers: ``BaseConv`` modules of one inner shape (N', D). ``forward(u)`` / ``evaluate(u)``:
    read-in, the layers in order, read-out (module docstring). ``num_layers``, ``width`` (D),
    ``seq_len`` (N'), ``num_parameters`` (stored numbers of the layers, counted from the tensors) and
    ``num_nonzero_parameters`` (their nonzero entries) are measured from the stored layers.
    """

    def __init__(self, layers: Sequence[BaseConv], num_rows: int, num_cols: int, read_in: str = "pad",
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
        return self.layers[0].seq_len

    @property
    def width(self) -> int:
        return self.layers[0].d_model

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_parameters(self) -> int:
        return sum(layer.num_parameters() for layer in self.layers)

    @property
    def num_nonzero_parameters(self) -> int:
        return sum(int((p != 0).sum()) for layer in self.layers for p in layer.parameters())

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
