"""``Mixer``: the contract every registered sequence mixer follows.

A mixer maps u ∈ R^{B×n×d} to y ∈ R^{B×n×d} causally (y[:, i] depends on u[:, :i+1] only) for any input
length 1 <= n <= ``seq_len``. Every mixer also reports its sizes, so figures can put accuracy against
parameters, recurrent state and compute:

* ``num_parameters()``: trainable numbers stored in the module (a count of its tensors, not a formula);
* ``state_size(n)``: numbers a recurrent implementation must keep to generate token n+1 after n tokens
  (attention: its KV cache 2·n·d; a convolution with an L-tap filter: the last min(L-1, n) inputs, the
  next output reading the token it is given and L-1 before it (``recurrent``); an SSM: its hidden state),
  or ``None`` when the mixer has no causal recurrent form (``no_recurrence``);
* ``flops_per_token(n)``: forward FLOPs per token at input length n, by a formula in the mixer's own
  code, in the convention of ``mqar_theory.flops.count_flops`` (which measures the same quantity with
  torch's FlopCounterMode), so the formula is tested against a count.

Calling a mixer validates its input first (a ``ValueError`` naming ``u`` and the broken constraint:
rank, width, length, dtype), instead of torch's matmul message deep inside the forward pass.
``forward_reference(u)`` is the naive version the fast ``forward`` is tested against (float64).

The recurrent form (arXiv 2402.18668 §3 asks how much state recall needs; here the state is run, not declared):

* ``init_state(batch)`` returns the state before any token: a dict of named tensors (B leading), plus the
  position ``"t"`` (a Python int: how many tokens were consumed, needed by position-dependent weights such as
  BaseConv's b1, b2; metadata, not a number of the recurrence, so it is not counted);
* ``step(state, u_t)`` maps one token ``u_t`` of shape (B, d) to ``(y_t, state')``, y_t of shape (B, d), equal to
  ``forward(u)[:, t]`` (two-path agreement, tested in float64 for every mixer);
* ``state_numbers(state)`` counts the numbers in the state's tensors per sequence (every entry of every tensor
  except the batch axis), and ``measured_state_size(mixer, n)`` steps n tokens and counts, so the declared
  ``state_size(n)`` is tested against the state ``step`` really carries.

A mixer without a fixed-size recurrence sets ``fixed_size_state = False`` (attention: a KV cache that grows with
n; its ``state_size(n)`` is still the cache it keeps after n tokens); one with no causal token-by-token form at all
(e.g. a filter computed from the whole input) leaves ``init_state`` unimplemented and says why in
``no_recurrence``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils import DeviceChecked, is_int

__all__ = ["Mixer", "check_dims", "state_numbers", "measured_state_size", "run_recurrent"]


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
    #: False when the recurrent state grows with the tokens consumed (attention's KV cache)
    fixed_size_state = True
    #: why ``step`` is not implemented, for a mixer with no causal token-by-token form (None: it has one)
    no_recurrence: str | None = None

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

    def init_state(self, batch: int) -> dict:
        """The recurrent state before any token (see the module docstring)."""
        raise NotImplementedError(self.no_recurrence or f"{type(self).__name__}.init_state")

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One token: u_t (B, d) -> (y_t (B, d), the state after it)."""
        raise NotImplementedError(self.no_recurrence or f"{type(self).__name__}.step")

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Forward FLOPs per token at input length ``seq_len`` (default ``self.seq_len``)."""
        raise NotImplementedError(f"{type(self).__name__}.flops_per_token")

    def _n(self, seq_len: int | None) -> int:
        n = self.seq_len if seq_len is None else seq_len
        if not (is_int(n) and 1 <= n <= self.seq_len):
            raise ValueError(f"seq_len={seq_len!r}: must be None or an integer in [1, {self.seq_len}]")
        return int(n)


def state_numbers(state) -> int:
    """Numbers per sequence in a recurrent state: every tensor's entries divided by its batch size (axis 0),
    searched through nested dicts, lists and tuples; Python scalars (the position ``"t"``) are not counted.
    A complex entry is two real numbers (H3's diagonal SSM modes)."""
    if isinstance(state, torch.Tensor):
        per = 2 if state.is_complex() else 1
        return per * (state[0].numel() if state.dim() else 1)
    if isinstance(state, dict):
        return sum(state_numbers(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_numbers(v) for v in state)
    return 0


def run_recurrent(mixer: Mixer, u: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Step ``mixer`` token by token over u (B, n, d); returns y (B, n, d) and the final state."""
    state = mixer.init_state(u.shape[0])
    ys = []
    for t in range(u.shape[1]):
        y_t, state = mixer.step(state, u[:, t])
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


def measured_state_size(mixer: Mixer, n: int, batch: int = 1) -> int:
    """The numbers of state ``step`` carries after n tokens (random input), counted from the tensors."""
    p = next(mixer.parameters(), None)
    dtype = p.dtype if p is not None else torch.get_default_dtype()
    device = p.device if p is not None else None
    u = torch.randn(batch, n, mixer.d_model, dtype=dtype, device=device)
    with torch.no_grad():
        _, state = run_recurrent(mixer, u)
    return state_numbers(state)
