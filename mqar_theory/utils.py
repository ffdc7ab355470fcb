"""Small shared helpers: device resolution, seeding, and the one definition of an integer / a number.

Every argument check of the package uses ``is_int`` / ``is_number`` (numpy scalars are accepted everywhere, bools
nowhere) and every device argument goes through ``resolve_device`` (a ``ValueError`` naming the device when it is
not there, instead of torch's assertion deep inside ``.to``).
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

__all__ = ["resolve_device", "check_to_args", "check_cuda_args", "DeviceChecked", "seed_everything", "is_int",
           "is_number"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; anything else is passed to ``torch.device``."""
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device={device!r}: must be 'auto', 'cpu', 'cuda' or a torch.device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = device if isinstance(device, torch.device) else torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device={device!r}: {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available on this machine (use 'auto' or 'cpu')")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}: MPS is not available on this machine (use 'auto' or 'cpu')")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"device={device!r}: must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return dev


def check_to_args(*args, **kwargs) -> None:
    """Validate the device of a ``Module.to(...)`` / ``Tensor.to(...)`` call (``ValueError`` naming it when it is
    not there); dtype and the other forms are left to torch."""
    device = kwargs.get("device")
    if device is None and args and isinstance(args[0], (str, torch.device)):
        device = args[0]
    if device is not None:
        if isinstance(device, str) and device == "auto":
            raise ValueError("device='auto': .to() takes a concrete device; use resolve_device('auto')")
        resolve_device(device)


def check_cuda_args(device=None) -> None:
    """Validate ``Module.cuda(device)``: ``device`` None (the current GPU), an index or a cuda device."""
    resolve_device(f"cuda:{int(device)}" if is_int(device) else "cuda" if device is None else device)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (``seed``: an integer >= 0)."""
    if not (is_int(seed) and seed >= 0):
        raise ValueError(f"seed={seed!r}: must be an integer >= 0")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_int(x) -> bool:
    """A Python or numpy integer, not a bool (bool is an int subclass in Python)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_number(x) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


class DeviceChecked:
    """Mixin for ``nn.Module`` subclasses: ``.to(...)`` and ``.cuda(...)`` raise a ``ValueError`` naming the
    device when it is not there (e.g. "cuda" without a GPU) instead of torch's deep runtime error."""

    def to(self, *args, **kwargs):
        check_to_args(*args, **kwargs)
        return super().to(*args, **kwargs)

    def cuda(self, device=None):
        check_cuda_args(device)
        return super().cuda(device)
