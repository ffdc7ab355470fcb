"""The appendix primitives (Zoology, arXiv 2312.04927, App. H: the primitives lemma) as BaseConv parameter sets.

Every primitive is one (or two, or three) instances of eq. (1) of Zoology (arXiv 2312.04927)::

    y = (u W + b1) ⊙ (h ∗ u + b2),      u ∈ R^{N×d},  W ∈ R^{d×d},  b1, b2 ∈ R^{N×d},  h ∈ R^{L×d}

with ∗ the channel-wise causal convolution, or the cyclic one (⊛, wrap-around over N) where the
appendix allows it. A ``BaseConvParams`` holds (W, b1, b2, h, cyclic) and applies
``mixers.baseconv``; ``compose(layers, u)`` runs a stack. ``BaseConvParams`` is not a second layer
class: it is the *dense form* of one layer, the value ``layers.SparseBaseConv.dense()`` returns (plus
``cyclic``), kept as a plain tuple of tensors so that a primitive can be read, compared and cast to the
input's dtype entry by entry. ``to_layer()`` stores it in the one sparse layer ``SparseBaseConv``
(losslessly) and ``BaseConvParams.from_layer(layer)`` reads a layer's dense form back. The two
branches of eq. (1) give the whole toolbox (impulse_s[k, q] = 1 iff k = s):

* **linear projection** (h = 0, b1 = 0, b2 = 1): y = uW · 1 = uW.
* **convolution** (W = 0, b1 = 1, b2 = 0): y = 1 · (h ∗ u) = h ∗ u. With h = impulse_0 this is the
  **identity** (so is the linear projection with W = I; we use the latter).
* **shift down by s** (convolution with h = impulse_s): y[i] = u[i - s] for i >= s, 0 above.
* **shift up by s**: a causal filter cannot read ahead, so the appendix uses the cyclic
  convolution; impulse at k = (-s) mod N gives (h ⊛ u)[i] = u[(i + s) mod N], and the row mask
  b1[i] = 1[i + s < N] zeroes the rows that wrapped around: y[i] = u[i + s] for i + s < N, else 0.
  *Erratum (the shift-up proof of the primitives lemma, App. H).* The printed proof counts three
  layers and claims the identity filter "reverses" the sequence; it does not (a cyclic convolution with
  impulse_0 is the identity, ``test_primitives`` checks it). The corrected primitive above is one layer;
  ``shift_up_paper`` returns the paper's 3-layer count as identity ∘ shift_up ∘ identity, the same function.
* **block add** ("add_n", 2 layers, needs 2s <= N). Layer 1: W = 0, h = impulse_0 + impulse_s
  (the polynomial 1 + X^s), b1 = 1[s <= i < 2s], b2 = 0, so y1[i] = u[i] + u[i - s] on rows
  s <= i < 2s and 0 elsewhere. Layer 2: W = 0, h = impulse_0, b1 = 1, b2 = 1[i < s], so
  y2 = y1 + 1[i < s]: rows < s hold 1, rows [s, 2s) the sum of the two blocks, rows >= 2s hold 0
  (the formalization's output, kept as is: the ones are the open gate of layer 2).
* **multiply gate** on features (a, b): W[b, a] = 1 (the linear branch moves feature b into
  channel a), h = impulse_0 on channel a (the conv branch reads a itself, since the convolution is
  channel-wise), b1 = b2 = 0: y[:, a] = u[:, b] · u[:, a]. Every other channel is 0, or with
  ``keep=True`` passes through (W[q, q] = 1, h[:, q] = 0, b2[:, q] = 1: y[:, q] = u[:, q] · 1).
* **add gate** (a linear projection): W[a, out] = W[b, out] = 1, so y[:, out] = u[:, a] + u[:, b].
* **constant gate r**: W = 0, h = 0, b1[:, f] = r, b2 = 1: y[:, f] = r (other channels 0, or kept).
* **feature-dependent shift**: W = 0, b1 = 1, b2 = 0, h[k, q] = 1[k = shift(q)]: channel q moves
  down by its own shift(q), cyclically (wrap-around) or causally (zeros enter at the top).

All builders return float64 tensors (exact arithmetic on small integers); a ``BaseConvParams`` is
cast to the dtype and device of the input it is applied to. A causal stack is causal: its row i
depends on rows 0..i only, so no causal stack of the same shape computes a shift up (a circuit that
reads a later input); this is why the appendix keeps the cyclic convolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..mixers.baseconv import baseconv
from ..utils import is_int
from .layers import SparseBaseConv

__all__ = [
    "BaseConvParams",
    "apply",
    "compose",
    "linear_projection",
    "convolution",
    "identity",
    "shift_down",
    "shift_up",
    "shift_up_paper",
    "block_add",
    "multiply_gate",
    "add_gate",
    "constant_gate",
    "feature_shift",
]

DTYPE = torch.float64



def _check_dims(d, N) -> None:
    if not (is_int(d) and d >= 1):
        raise ValueError(f"d={d!r}: must be an integer >= 1")
    if not (is_int(N) and N >= 1):
        raise ValueError(f"N={N!r}: must be an integer >= 1")


def _check_feature(name: str, f, d: int) -> None:
    if not (is_int(f) and 0 <= f < d):
        raise ValueError(f"{name}={f!r}: must be a feature index in [0, d={d})")


@dataclass(frozen=True, eq=False)
class BaseConvParams:
    """One BaseConv layer, eq. (1): W (d, d), b1 and b2 (N, d), h (L, d) with 1 <= L <= N.

    ``params(u)`` applies it to u of shape (B, n, d): causal layers accept any n <= N (the first n
    rows of b1, b2, h are used); cyclic ones need n == N, because the wrap-around is over the
    input length and a shorter input would wrap at a different place.
    """

    W: torch.Tensor  # (d, d)
    b1: torch.Tensor  # (N, d)
    b2: torch.Tensor  # (N, d)
    h: torch.Tensor  # (L, d)
    cyclic: bool = False

    def __post_init__(self):
        for name in ("W", "b1", "b2", "h"):
            if not isinstance(getattr(self, name), torch.Tensor) or getattr(self, name).dim() != 2:
                raise ValueError(f"{name}: must be a 2-D tensor")
        d = self.W.shape[0]
        if d < 1 or self.W.shape != (d, d):
            raise ValueError(f"W: must be square (d, d), got {tuple(self.W.shape)}")
        N = self.b1.shape[0]
        if N < 1 or self.b1.shape != (N, d):
            raise ValueError(f"b1: must have shape (N, d={d}), got {tuple(self.b1.shape)}")
        if self.b2.shape != (N, d):
            raise ValueError(f"b2: must have the shape of b1 {(N, d)}, got {tuple(self.b2.shape)}")
        if not (1 <= self.h.shape[0] <= N and self.h.shape[1] == d):
            raise ValueError(f"h: must have shape (L, d={d}) with 1 <= L <= N={N}, got {tuple(self.h.shape)}")
        if not isinstance(self.cyclic, bool):
            raise ValueError(f"cyclic={self.cyclic!r}: must be a bool")

    @property
    def d(self) -> int:
        return self.W.shape[0]

    @property
    def N(self) -> int:
        return self.b1.shape[0]

    @property
    def num_parameters(self) -> int:
        """Stored numbers of eq. (1): d² + 2·N·d + L·d."""
        return sum(t.numel() for t in (self.W, self.b1, self.b2, self.h))

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        return apply(self, u)

    def to_layer(self, name: str = "") -> SparseBaseConv:
        """This layer stored as the one sparse BaseConv layer (float64); its ``dense()`` is (W, b1, b2, h)."""
        return SparseBaseConv.from_dense(self.W, self.b1, self.b2, self.h, cyclic=self.cyclic, name=name)

    @classmethod
    def from_layer(cls, layer: SparseBaseConv) -> BaseConvParams:
        """The dense form of a ``SparseBaseConv``: its ``dense()`` and ``cyclic``."""
        if not isinstance(layer, SparseBaseConv):
            raise ValueError(f"layer: must be a SparseBaseConv, got {type(layer).__name__}")
        return cls(*layer.dense(), cyclic=bool(layer.cyclic))


def apply(params: BaseConvParams, u: torch.Tensor) -> torch.Tensor:
    """Eq. (1) with ``params`` on u (B, n, d) -> (B, n, d), through ``mixers.baseconv``."""
    if not isinstance(params, BaseConvParams):
        raise ValueError(f"params: must be a BaseConvParams, got {type(params).__name__}")
    if not isinstance(u, torch.Tensor) or u.dim() != 3:
        raise ValueError(f"u: must be a tensor of shape (B, n, d), got {getattr(u, 'shape', type(u))}")
    n, d = u.shape[1], u.shape[2]
    if d != params.d:
        raise ValueError(f"u: has {d} features, the layer expects d={params.d}")
    if n > params.N or n < 1:
        raise ValueError(f"u: length {n} must lie in [1, N={params.N}]")
    if params.cyclic and n != params.N:
        raise ValueError(f"u: a cyclic layer needs the full length N={params.N}, got {n}")
    W, b1, b2, h = (t.to(dtype=u.dtype, device=u.device) for t in (params.W, params.b1, params.b2, params.h))
    return baseconv(u, W, b1, b2, h, cyclic=params.cyclic)


def compose(layers: Sequence[BaseConvParams], u: torch.Tensor) -> torch.Tensor:
    """Run a stack: layers[-1](... layers[0](u)); layer counts add (``lem: stacking-layers``)."""
    for i, layer in enumerate(layers):
        if not isinstance(layer, BaseConvParams):
            raise ValueError(f"layers[{i}]: must be a BaseConvParams, got {type(layer).__name__}")
        u = layer(u)
    return u


# ---------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------
def _zeros(N, d):
    return torch.zeros(N, d, dtype=DTYPE)


def _ones(N, d):
    return torch.ones(N, d, dtype=DTYPE)


def _impulse(k: int, N: int, d: int) -> torch.Tensor:
    h = _zeros(N, d)  # (N, d)
    h[k] = 1.0
    return h


def _check_shift(s, N, low: int = 0) -> None:
    if not (is_int(s) and low <= s < N):
        raise ValueError(f"s={s!r}: must be an integer in [{low}, N={N})")


def linear_projection(W: torch.Tensor, N: int) -> BaseConvParams:
    """y = uW: h = 0, b1 = 0, b2 = 1."""
    W = torch.as_tensor(W, dtype=DTYPE)
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W: must be a square (d, d) matrix, got {tuple(W.shape)}")
    d = W.shape[0]
    _check_dims(d, N)
    return BaseConvParams(W.clone(), _zeros(N, d), _ones(N, d), _zeros(N, d))


def convolution(h: torch.Tensor, N: int, cyclic: bool = False) -> BaseConvParams:
    """y = h ∗ u (or h ⊛ u): W = 0, b1 = 1, b2 = 0."""
    h = torch.as_tensor(h, dtype=DTYPE)
    if h.dim() != 2:
        raise ValueError(f"h: must be a (L, d) filter, got {tuple(h.shape)}")
    L, d = h.shape
    _check_dims(d, N)
    if not 1 <= L <= N:
        raise ValueError(f"h: has {L} taps, must have between 1 and N={N}")
    return BaseConvParams(_zeros(d, d), _ones(N, d), _zeros(N, d), h.clone(), cyclic=cyclic)


def identity(d: int, N: int) -> BaseConvParams:
    """y = u (the linear projection with W = I)."""
    _check_dims(d, N)
    return linear_projection(torch.eye(d, dtype=DTYPE), N)


def shift_down(d: int, N: int, s: int) -> BaseConvParams:
    """y[i] = u[i - s] for i >= s, else 0: the causal convolution with impulse_s, 0 <= s < N."""
    _check_dims(d, N)
    _check_shift(s, N)
    return convolution(_impulse(s, N, d), N)


def shift_up(d: int, N: int, s: int) -> BaseConvParams:
    """y[i] = u[i + s] for i + s < N, else 0 (corrected prop: prim-shift, one cyclic layer).

    Cyclic impulse at (-s) mod N reads u[(i + s) mod N]; the row mask b1[i] = 1[i + s < N] drops
    the rows that wrapped around.
    """
    _check_dims(d, N)
    _check_shift(s, N)
    mask = (torch.arange(N) + s < N).to(DTYPE)[:, None].expand(N, d).clone()  # (N, d)
    return BaseConvParams(_zeros(d, d), mask, _zeros(N, d), _impulse((-s) % N, N, d), cyclic=True)


def shift_up_paper(d: int, N: int, s: int) -> list[BaseConvParams]:
    """The paper's 3-layer count for the shift up: identity ∘ shift_up ∘ identity (same function).

    The printed proof builds it from an identity filter that supposedly reverses the sequence; no
    filter of eq. (1) reverses (the identity filter is the identity, cyclic or not), so the middle
    layer is the corrected one-layer ``shift_up`` and the two outer layers are identities.
    """
    return [identity(d, N), shift_up(d, N, s), identity(d, N)]


def block_add(d: int, N: int, s: int) -> list[BaseConvParams]:
    """Two layers: rows < s -> 1, rows s <= i < 2s -> u[i] + u[i - s], rows >= 2s -> 0.

    Needs 1 <= s and 2s <= N.
    """
    _check_dims(d, N)
    if not (is_int(s) and s >= 1):
        raise ValueError(f"s={s!r}: must be an integer >= 1")
    if 2 * s > N:
        raise ValueError(f"s={s!r}: block add needs 2s <= N={N}")
    rows = torch.arange(N)[:, None].expand(N, d)  # (N, d) row index
    h1 = _impulse(0, N, d) + _impulse(s, N, d)  # the polynomial 1 + X^s
    b1 = ((rows >= s) & (rows < 2 * s)).to(DTYPE)
    layer1 = BaseConvParams(_zeros(d, d), b1, _zeros(N, d), h1)
    layer2 = BaseConvParams(_zeros(d, d), _ones(N, d), (rows < s).to(DTYPE), _impulse(0, N, d))
    return [layer1, layer2]


def _keep_others(W, b2, d, skip: int) -> None:
    """Pass every channel q != skip through: W[q, q] = 1, h[:, q] = 0, b2[:, q] = 1."""
    for q in range(d):
        if q != skip:
            W[q, q] = 1.0
            b2[:, q] = 1.0


def multiply_gate(d: int, N: int, a: int, b: int, keep: bool = False) -> BaseConvParams:
    """y[:, a] = u[:, a] · u[:, b] (W[b, a] = 1, h = impulse_0 on channel a, b1 = b2 = 0).

    Other channels: 0, or unchanged with ``keep=True``.
    """
    _check_dims(d, N)
    _check_feature("a", a, d)
    _check_feature("b", b, d)
    W, b2, h = _zeros(d, d), _zeros(N, d), _zeros(N, d)
    W[b, a] = 1.0  # linear branch: feature b moved into channel a
    h[0, a] = 1.0  # conv branch: channel a reads itself
    if keep:
        _keep_others(W, b2, d, skip=a)
    return BaseConvParams(W, _zeros(N, d), b2, h)


def add_gate(d: int, N: int, a: int, b: int, out: int, keep: bool = False) -> BaseConvParams:
    """y[:, out] = u[:, a] + u[:, b] (a linear projection). Other channels: 0, or unchanged with ``keep``."""
    _check_dims(d, N)
    for name, f in (("a", a), ("b", b), ("out", out)):
        _check_feature(name, f, d)
    W = _zeros(d, d)
    W[a, out] += 1.0
    W[b, out] += 1.0  # a == b gives 2·u[:, a]
    if keep:
        for q in range(d):
            if q != out:
                W[q, q] = 1.0
    return BaseConvParams(W, _zeros(N, d), _ones(N, d), _zeros(N, d))


def constant_gate(d: int, N: int, r: float, feature: int = 0, keep: bool = False) -> BaseConvParams:
    """y[:, feature] = r (W = 0, h = 0, b1[:, feature] = r, b2 = 1). Others: 0, or unchanged with ``keep``."""
    _check_dims(d, N)
    _check_feature("feature", feature, d)
    if not isinstance(r, (int, float)) or isinstance(r, bool):
        raise ValueError(f"r={r!r}: must be a real number")
    W, b1, b2 = _zeros(d, d), _zeros(N, d), _ones(N, d)
    b1[:, feature] = float(r)
    if keep:
        _keep_others(W, b2, d, skip=feature)
    return BaseConvParams(W, b1, b2, _zeros(N, d))


def feature_shift(shifts: Sequence[int], N: int, cyclic: bool = True) -> BaseConvParams:
    """y[i, q] = u[i - shifts[q], q]: cyclically (mod N) or causally (0 for i < shifts[q])."""
    shifts = list(shifts)
    d = len(shifts)
    _check_dims(d, N)
    h = _zeros(N, d)
    for q, s in enumerate(shifts):
        if not (is_int(s) and 0 <= s < N):
            raise ValueError(f"shifts[{q}]={s!r}: must be an integer in [0, N={N})")
        h[s, q] = 1.0
    return BaseConvParams(_zeros(d, d), _ones(N, d), _zeros(N, d), h, cyclic=cyclic)
