"""``Mixer``: the contract every registered sequence mixer follows.

A mixer maps u ∈ R^{B×n×d} to y ∈ R^{B×n×d} causally (y[:, i] depends on u[:, :i+1] only) for any input
length 1 <= n <= ``seq_len``. Every mixer also reports its sizes, so figures can put accuracy against
parameters, recurrent state and compute:

* ``num_parameters()``: trainable numbers stored in the module (a count of its tensors, not a formula);
* ``state_size(n)``: numbers a recurrent implementation must keep to generate token n+1 after n tokens
  (attention: its KV cache 2·n·d; a convolution with an L-tap filter: the last L inputs, L·d; an SSM:
  its hidden state), or ``None`` when the mixer has no fixed-size recurrent form;
* ``flops_per_token(n)``: forward FLOPs per token at input length n, by a formula in the mixer's own
  code, in the convention of ``mqar_theory.flops.count_flops`` (which measures the same quantity with
  torch's FlopCounterMode), so the formula is tested against a count.

Calling a mixer validates its input first (a ``ValueError`` naming ``u`` and the broken constraint:
rank, width, length, dtype), instead of torch's matmul message deep inside the forward pass.
``forward_reference(u)`` is the naive version the fast ``forward`` is tested against (float64).
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils import DeviceChecked, is_int

__all__ = ["Mixer", "check_dims"]


def check_dims(d_model, seq_len) -> tuple[int, int]:
    """Validate the two arguments every mixer constructor takes; returns them as Python ints."""
    if not (is_int(d_model) and d_model >= 1):
        raise ValueError(f"d_model={d_model!r}: must be an integer >= 1")
    if not (is_int(seq_len) and seq_len >= 1):
        raise ValueError(f"seq_len={seq_len!r}: must be an integer >= 1")
    return int(d_model), int(seq_len)


def _validate_input(module: Mixer, args) -> None:
    if not args:
        raise ValueError("u: missing; a mixer takes one tensor of shape (B, n, d_model)")
    u = args[0]
    if not isinstance(u, torch.Tensor):
        raise ValueError(f"u: must be a torch.Tensor of shape (B, n, d_model), got {type(u).__name__}")
    if u.dim() != 3:
        raise ValueError(f"u: must have rank 3 (B, n, d_model={module.d_model}), got shape {tuple(u.shape)}")
    B, n, d = u.shape
    if d != module.d_model:
        raise ValueError(f"u: last dimension {d} must equal d_model={module.d_model} (shape {tuple(u.shape)})")
    if not 1 <= n <= module.seq_len:
        raise ValueError(f"u: length n={n} must satisfy 1 <= n <= seq_len={module.seq_len}")
    if not u.dtype.is_floating_point:
        raise ValueError(f"u: must be a floating-point tensor, got dtype {u.dtype}")
    p = next(module.parameters(), None)
    if p is not None and p.dtype != u.dtype:
        raise ValueError(f"u: dtype {u.dtype} differs from the mixer's parameters ({p.dtype}); use .to({u.dtype})"
                         " on the mixer or the input")
    if p is not None and p.device != u.device:
        raise ValueError(f"u: on {u.device} but the mixer's parameters are on {p.device}")


class Mixer(DeviceChecked, nn.Module):
    """Base class of the registered mixers: ``Mixer(d_model, seq_len)``; subclasses define ``forward`` and
    ``forward_reference`` and override ``state_size`` / ``flops_per_token`` (see the module docstring)."""

    #: LanguageModel adds learned absolute positions when a layer's mixer class sets this (attention does).
    uses_positions = False

    def __init__(self, d_model: int, seq_len: int):
        super().__init__()
        self.d_model, self.seq_len = check_dims(d_model, seq_len)
        self.register_forward_pre_hook(_validate_input)

    def num_parameters(self) -> int:
        """Trainable numbers stored in the module's parameters (counted from the tensors)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def state_size(self, seq_len: int | None = None) -> int | None:
        """Numbers of recurrent state after ``seq_len`` tokens (default ``self.seq_len``); None if none."""
        return None

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward FLOPs per token at input length ``seq_len`` (default ``self.seq_len``)."""
        raise NotImplementedError(f"{type(self).__name__}.flops_per_token")

    def _n(self, seq_len: int | None) -> int:
        n = self.seq_len if seq_len is None else seq_len
        if not (is_int(n) and 1 <= n <= self.seq_len):
            raise ValueError(f"seq_len={seq_len!r}: must be None or an integer in [1, {self.seq_len}]")
        return int(n)
