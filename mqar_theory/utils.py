"""Small shared helpers: device resolution and seeding."""

from __future__ import annotations

import math
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "is_int", "is_number"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda if available, else cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"device={device!r}: must be 'auto', 'cpu', 'cuda' or a torch.device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device={device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine (use 'auto' or 'cpu')")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_int(x) -> bool:
    """A Python or numpy integer, not a bool (bool is an int subclass in Python)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_number(x) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)
