"""BaseConv, the canonical gated convolution of Zoology eq. (1):

    y = (u W + b1) ⊙ (h ∗ u + b2),     u ∈ R^{N×d}

with W ∈ R^{d×d} (right-multiplied, shared over positions), b1, b2 ∈ R^{N×d} (position-dependent,
as in the theory) and a channel-wise causal filter h ∈ R^{L×d}: L = N for a long filter, L = k for a
short one. No residual inside the layer: the block adds it (the official code adds ``+u`` here).
The appendix also allows a cyclic convolution (``cyclic=True``), needed by its shift-up primitive.

A shorter input (n < N) uses the first n rows of b1, b2 and h.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..flops import fft_flops
from ..utils import is_int
from .base import Mixer
from .conv import causal_conv, causal_conv_direct, causal_conv_flops, cyclic_conv, cyclic_conv_direct
from .recurrent import check_step, empty_history, fir_step

__all__ = ["BaseConv", "BaseConvOfficial", "baseconv", "baseconv_direct", "implicit_filter_features"]


def baseconv(u, W, b1, b2, h, *, cyclic: bool = False) -> torch.Tensor:
    """Eq. (1), fast path. u: (B, n, d); W: (d, d); b1, b2: (>=n, d); h: (L, d) -> (B, n, d).

    With ``cyclic=True`` the convolution wraps over the input length n, so h needs at most n taps.
    """
    n = u.shape[1]
    conv = cyclic_conv if cyclic else causal_conv
    return (u @ W + b1[:n]) * (conv(u, h) + b2[:n])


def baseconv_direct(u, W, b1, b2, h, *, cyclic: bool = False) -> torch.Tensor:
    """Eq. (1), naive reference (explicit sum over taps); the fast path is tested against it."""
    n = u.shape[1]
    conv = cyclic_conv_direct if cyclic else causal_conv_direct
    return (u @ W + b1[:n]) * (conv(u, h) + b2[:n])


class BaseConv(Mixer):
    """Trainable BaseConv layer: ``BaseConv(d_model, seq_len, kernel_size=None)``.

    kernel_size=None (or -1) gives a long filter h of shape (seq_len, d); an int k a short one (k, d).
    Init: W like ``nn.Linear`` (uniform ±1/sqrt(d)), b1 = 0, b2 = 1 (the gate starts open, so the
    layer starts near a random linear map of u), h small with h[0] += 1 for long filters (the D-skip
    of the official long convolution), PyTorch's Conv1d init for short ones.
    """

    def __init__(self, d_model: int, seq_len: int, kernel_size: int | None = None, cyclic: bool = False):
        super().__init__(d_model, seq_len)
        d_model, seq_len = self.d_model, self.seq_len
        if kernel_size == -1:
            kernel_size = None
        if kernel_size is not None and not (is_int(kernel_size) and 1 <= kernel_size <= seq_len):
            raise ValueError(f"kernel_size={kernel_size!r}: must be None/-1 (long) or an integer in [1, seq_len]")
        d, N = d_model, seq_len
        kernel_size = None if kernel_size is None else int(kernel_size)
        L = N if kernel_size is None else kernel_size
        self.kernel_size, self.cyclic = kernel_size, bool(cyclic)
        bound = 1 / math.sqrt(d)
        self.W = nn.Parameter(torch.empty(d, d).uniform_(-bound, bound))  # (d, d)
        self.b1 = nn.Parameter(torch.zeros(N, d))  # (N, d)
        self.b2 = nn.Parameter(torch.ones(N, d))  # (N, d)
        if kernel_size is None:
            h = 0.02 * torch.randn(L, d)
            h[0] += 1.0
        else:
            h = torch.empty(L, d).uniform_(-1 / math.sqrt(L), 1 / math.sqrt(L))
        self.h = nn.Parameter(h)  # (L, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return baseconv(u, self.W, self.b1, self.b2, self.h, cyclic=self.cyclic)

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        return baseconv_direct(u, self.W, self.b1, self.b2, self.h, cyclic=self.cyclic)

    def state_size(self, seq_len: int | None = None) -> int | None:
        """A recurrent BaseConv keeps the last min(L - 1, n) inputs, min(L - 1, n)·d numbers: the next output
        reads the token it is given and the L - 1 before it (``step``; b1, b2 and h are weights, read at the
        position). None for ``cyclic=True``, which has no causal recurrence (``no_recurrence``). (Formerly
        declared min(L, n)·d: one input more than the next step reads.)"""
        n = self._n(seq_len)
        return None if self.cyclic else min(self.h.shape[0] - 1, n) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2d² for u W, plus the FFT convolution when the filter reaching the input has more than 8 taps:
        rfft of u and of h and one irfft, each of d vectors of length m (the power of two >= n + L' - 1,
        m = n for a cyclic filter), per sequence, divided by n. Short filters (<= 8 taps) are shifted adds,
        elementwise and not counted (``mqar_theory.flops`` convention)."""
        n, d = self._n(seq_len), self.d_model
        conv = 3 * d * fft_flops(n) if self.cyclic else causal_conv_flops(n, self.h.shape[0], d)
        return 2.0 * d * d + conv / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, seq_len={self.seq_len}, kernel_size={self.kernel_size}"

    # --- recurrent form: the filter's last L - 1 inputs ----------------------------------------------
    @property
    def no_recurrence(self) -> str | None:
        """Why there is no ``step``: only a cyclic convolution lacks one."""
        if self.cyclic:
            return ("BaseConv(cyclic=True): the cyclic convolution wraps over the input length n, so y[i] reads "
                    "u[(i - k) mod n], later tokens included: it has no causal token-by-token form")
        return None

    def init_state(self, batch: int) -> dict:
        """No past inputs yet (B, 0, d), position t = 0."""
        if self.cyclic:
            raise NotImplementedError(self.no_recurrence)
        return {"hist": empty_history(self, batch, self.d_model), "t": 0}

    def _conv_step(self, state: dict, u_t: torch.Tensor):
        """(t, (h ∗ u)_t (B, d), the history after this token): the last L - 1 inputs."""
        if self.cyclic:
            raise NotImplementedError(self.no_recurrence)
        t = check_step(self, state, u_t)
        conv, hist = fir_step(state["hist"], u_t, self.h, self.h.shape[0] - 1)
        return t, conv, hist

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. (1) at position t: y_t = (u_t W + b1[t]) ⊙ (Σ_{k<=min(t, L-1)} h[k] ⊙ u_{t-k} + b2[t])."""
        t, conv, hist = self._conv_step(state, u_t)
        return (u_t @ self.W + self.b1[t]) * (conv + self.b2[t]), {"hist": hist, "t": t + 1}


def implicit_filter_features(seq_len: int, emb_dim: int = 3, dtype=None) -> torch.Tensor:
    """The positional features z (seq_len, emb_dim) of the official implicit long convolution
    (HazyResearch/zoology, ``zoology/mixers/convolution.py``, ``PositionalEmbedding``): row t is
    [t/(L-1), cos(f_j ω_t), -sin(f_j ω_t)]_j with ω_t = 2π t / L and the frequencies
    f = linspace(1e-4, bands - 1, bands), bands = (emb_dim - 1) / 2. With emb_dim = 3 the one band has
    frequency 1e-4, so the features are essentially [t/(L-1), 1, 0]."""
    if not (is_int(emb_dim) and emb_dim >= 3 and emb_dim % 2 == 1):
        raise ValueError(f"emb_dim={emb_dim!r}: must be an odd integer >= 3")
    L, bands = int(seq_len), (int(emb_dim) - 1) // 2
    t = torch.linspace(0, 1, L, dtype=torch.float64)[:, None]  # (L, 1)
    w = 2 * math.pi * torch.arange(L, dtype=torch.float64)[:, None] / L  # (L, 1)
    f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)[None]  # (1, bands)
    z = torch.cat([t, torch.cos(f * w), -torch.sin(f * w)], dim=1)  # (L, emb_dim)
    return z.to(torch.get_default_dtype() if dtype is None else dtype)


class BaseConvOfficial(Mixer):
    """BaseConv as the official code builds it (HazyResearch/zoology, ``zoology/mixers/base_conv.py`` and
    ``zoology/mixers/convolution.py``), the layer of ``recipe="official"`` models:

        y = conv(u) ⊙ (u Wᵀ + b) + u                                    # (B, n, d)

    * ``kernel_size=k`` (an int): ``conv`` is the official ``ShortConvolution``, a causal depthwise
      ``nn.Conv1d(d, d, k, groups=d, padding=k-1)`` cropped to the first n outputs, with a bias:
      conv(u)[t, c] = b2_c + Σ_{i<k} h[i, c] u[t-i, c]. Stored as taps ``h`` (k, d) with
      h[i] = Conv1d.weight[:, 0, k-1-i], and ``b2`` (d,); init PyTorch's Conv1d default, U(±1/√k)
      for both (the official ``_init_weights`` leaves Conv1d alone).
    * ``kernel_size=None`` (or -1): the official ``ImplicitLongConvolution``: the filter is
      h = MLP(z) (L, d), MLP = Linear(e, 16) → ReLU → Linear(16, d), over the fixed features
      ``implicit_filter_features`` (a frozen parameter upstream; a buffer here, so not counted), and the
      FFT convolution adds the input itself: conv(u) = h ∗ u + u (a second ``+u``, inside the
      convolution). An input of length n < L uses the first n taps (``conv.causal_conv``), as upstream.
    * ``projection`` is an ``nn.Linear(d, d)`` with bias (b, the paper's b1, shared over positions), which
      ``LanguageModel`` initialises N(0, init_std) like every Linear of the official model; so are the
      MLP's Linear layers, which makes the implicit filter tiny at init (|h| ~ 1e-3) and the long layer
      start near y = u ⊙ (u Wᵀ + b) + u.

    Compared with ``BaseConv`` (eq. 1 of the paper): biases shared over positions instead of
    position-dependent b1, b2; an implicit instead of an explicit long filter; the ``+u`` skips.
    """

    def __init__(self, d_model: int, seq_len: int, kernel_size: int | None = None, emb_dim: int = 3,
                 d_hidden: int = 16):
        super().__init__(d_model, seq_len)
        d, N = self.d_model, self.seq_len
        if kernel_size == -1:
            kernel_size = None
        if kernel_size is not None and not (is_int(kernel_size) and 1 <= kernel_size <= N):
            raise ValueError(f"kernel_size={kernel_size!r}: must be None/-1 (long) or an integer in [1, seq_len]")
        if not (is_int(d_hidden) and d_hidden >= 1):
            raise ValueError(f"d_hidden={d_hidden!r}: must be an integer >= 1")
        self.kernel_size = None if kernel_size is None else int(kernel_size)
        self.projection = nn.Linear(d, d)
        if self.kernel_size is None:
            self.register_buffer("z", implicit_filter_features(N, emb_dim), persistent=False)  # (N, e)
            self.filter_mlp = nn.Sequential(nn.Linear(int(emb_dim), int(d_hidden)), nn.ReLU(),
                                            nn.Linear(int(d_hidden), d))
        else:
            k = self.kernel_size
            bound = 1 / math.sqrt(k)
            self.h = nn.Parameter(torch.empty(k, d).uniform_(-bound, bound))  # (k, d) taps
            self.b2 = nn.Parameter(torch.empty(d).uniform_(-bound, bound))  # (d,)

    def long_filter(self, n: int) -> torch.Tensor:
        """The implicit filter's first n taps, MLP(z[:n]): (n, d)."""
        return self.filter_mlp(self.z[:n])

    def _conv(self, u, conv):
        if self.kernel_size is None:
            return conv(u, self.long_filter(u.shape[1])) + u  # the official FFT conv adds u
        return conv(u, self.h) + self.b2

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return self._conv(u, causal_conv) * self.projection(u) + u

    def forward_reference(self, u: torch.Tensor) -> torch.Tensor:
        """The convolution as an explicit sum over taps."""
        return self._conv(u, causal_conv_direct) * self.projection(u) + u

    def state_size(self, seq_len: int | None = None) -> int:
        """The last min(L - 1, n) inputs, min(L - 1, n)·d (L = k or seq_len): what ``step`` carries, the next
        output reading its own token and the L - 1 before it. (Formerly declared min(L, n)·d.)"""
        n = self._n(seq_len)
        L = self.seq_len if self.kernel_size is None else self.kernel_size
        return min(L - 1, n) * self.d_model

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """2d² (the projection) + the filter MLP at each position for a long filter, 2(e·16 + 16·d), + the
        FFT convolution when more than 8 taps reach the input (as ``BaseConv.flops_per_token``)."""
        n, d = self._n(seq_len), self.d_model
        if self.kernel_size is None:
            lin1, lin2 = self.filter_mlp[0], self.filter_mlp[2]
            mlp = 2.0 * (lin1.in_features * lin1.out_features + lin2.in_features * lin2.out_features)
            return 2.0 * d * d + mlp + causal_conv_flops(n, self.seq_len, d) / n
        return 2.0 * d * d + causal_conv_flops(n, self.kernel_size, d) / n

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, seq_len={self.seq_len}, kernel_size={self.kernel_size}"

    # --- recurrent form: the filter's last L - 1 inputs ----------------------------------------------
    def init_state(self, batch: int) -> dict:
        """No past inputs yet (B, 0, d), position t = 0."""
        return {"hist": empty_history(self, batch, self.d_model), "t": 0}

    def step(self, state: dict, u_t: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """y_t = conv(u)_t ⊙ (u_t Wᵀ + b) + u_t, conv(u)_t = Σ_{i<=min(t, L-1)} h[i] ⊙ u_{t-i} plus b2 (short
        filter) or plus u_t (the implicit long filter h = MLP(z), whose taps do not depend on n)."""
        t = check_step(self, state, u_t)
        if self.kernel_size is None:
            conv, hist = fir_step(state["hist"], u_t, self.long_filter(t + 1), self.seq_len - 1)
            conv = conv + u_t
        else:
            conv, hist = fir_step(state["hist"], u_t, self.h, self.kernel_size - 1)
            conv = conv + self.b2
        return conv * self.projection(u_t) + u_t, {"hist": hist, "t": t + 1}
