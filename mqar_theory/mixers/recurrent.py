"""Shared pieces of the recurrent forms (``Mixer.init_state`` / ``Mixer.step``, see ``base``'s docstring).

* ``check_step(mixer, state, u_t)`` validates one step's arguments (a ``ValueError`` naming ``state`` or ``u_t``
  and the broken constraint) and returns the position t of the token;
* ``fir_step(hist, x_t, h, keep)`` is one step of a causal FIR filter (a convolution, eq. (1) of arXiv
  2312.04927 read token by token): y_t = Σ_{k=0}^{m} h[k] x_{t-k} over the m past inputs kept in ``hist``, and
  the new history, the last ``keep`` inputs;
* ``empty_history(mixer, batch, channels)`` is the history before any token, a (B, 0, c) tensor, and
  ``zeros(mixer, batch, *shape)`` any zero state tensor in the mixer's dtype and device.

How many past inputs a filter needs (the state of every convolution here): the output at t+1 of an L-tap
filter reads x_{t+1}, x_t, ..., x_{t+2-L}; x_{t+1} arrives with the step, so after n tokens the recurrence
must keep the last min(L - 1, n) inputs, (L - 1)·c numbers once n >= L - 1 (a 1-tap filter keeps nothing).
Keeping L, as a shift register that also holds the current input does, stores one input that the next step
never reads.
"""

from __future__ import annotations

import torch

from ..utils import is_int

__all__ = ["check_step", "fir_step", "empty_history", "zeros", "param_like"]


def param_like(mixer) -> tuple[torch.dtype, torch.device | None]:
    """The dtype and device of the mixer's parameters (default dtype, no device without parameters)."""
    p = next(mixer.parameters(), None)
    return (p.dtype, p.device) if p is not None else (torch.get_default_dtype(), None)


def zeros(mixer, batch: int, *shape: int, dtype=None) -> torch.Tensor:
    """A zero state tensor (B, *shape) in the mixer's dtype (or ``dtype``) and device; ``batch`` validated."""
    if not (is_int(batch) and batch >= 1):
        raise ValueError(f"batch={batch!r}: must be an integer >= 1")
    pdtype, device = param_like(mixer)
    return torch.zeros(int(batch), *shape, dtype=pdtype if dtype is None else dtype, device=device)


def empty_history(mixer, batch: int, channels: int) -> torch.Tensor:
    """No past inputs yet: a (B, 0, channels) tensor in the mixer's dtype and device."""
    return zeros(mixer, batch, 0, channels)


def check_step(mixer, state, u_t) -> int:
    """Validate ``step(state, u_t)``: ``state`` a dict from ``init_state`` (its int position ``"t"`` below
    ``seq_len``: the parallel form, and position-dependent weights, stop there), ``u_t`` a floating tensor
    (B, d_model) in the parameters' dtype and device, B the state's batch. Returns t."""
    if not isinstance(state, dict) or not is_int(state.get("t")):
        raise ValueError("state: must be the dict returned by init_state / step (with the int position 't')")
    t = int(state["t"])
    if not 0 <= t < mixer.seq_len:
        raise ValueError(f"state: position t={t} must satisfy 0 <= t < seq_len={mixer.seq_len} (the mixer is "
                         f"defined on at most seq_len tokens)")
    if not isinstance(u_t, torch.Tensor):
        raise ValueError(f"u_t: must be a torch.Tensor of shape (B, d_model), got {type(u_t).__name__}")
    if u_t.dim() != 2 or u_t.shape[1] != mixer.d_model:
        raise ValueError(f"u_t: must have shape (B, d_model={mixer.d_model}), got {tuple(u_t.shape)}")
    if not u_t.dtype.is_floating_point:
        raise ValueError(f"u_t: must be a floating-point tensor, got dtype {u_t.dtype}")
    dtype, device = param_like(mixer)
    if u_t.dtype != dtype:
        raise ValueError(f"u_t: dtype {u_t.dtype} differs from the mixer's parameters ({dtype})")
    if device is not None and u_t.device != device:
        raise ValueError(f"u_t: on {u_t.device} but the mixer's parameters are on {device}")
    batches = {v.shape[0] for v in state.values() if isinstance(v, torch.Tensor) and v.dim() >= 1}
    if batches and batches != {u_t.shape[0]}:
        raise ValueError(f"u_t: batch {u_t.shape[0]} differs from the state's batch {sorted(batches)}")
    return t


def fir_step(hist: torch.Tensor, x_t: torch.Tensor, h: torch.Tensor, keep: int):
    """One step of the causal filter h (L', c) (at least its first m+1 taps) over the history hist (B, m, c)
    (oldest first: hist[:, -1] = x_{t-1}) and the new input x_t (B, c):

        y_t = Σ_{k=0}^{m} h[k] ⊙ x_{t-k}                                          # (B, c)

    Returns y_t and the last min(keep, m + 1) inputs (B, ·, c), the history of the next step."""
    win = torch.cat([hist, x_t[:, None]], dim=1)  # (B, m+1, c): x_{t-m}, ..., x_t
    m1 = win.shape[1]
    y = (win * h[:m1].flip(0)).sum(1)  # h[m] pairs with x_{t-m}, h[0] with x_t
    return y, win[:, m1 - min(keep, m1) :]
