"""The mixer layers a construction's program is made of (``base.MixerLayer``), each the project's own
mixer applied to the whole stream:

* ``LinearBiasAttentionLayer``: u + ((Q Kᵀ + B) ⊙ M) V, ``mixers.linear_bias_attention`` with a relative
  (Toeplitz) bias B[i, j] = r[i - j] stored as its few numbers r (Prop H.27 of arXiv 2312.04927);
* ``SoftmaxAttentionLayer``: u + softmax_{j<=i}(Q Kᵀ + R[i - j]) V W_O, one causal head, a bias by distance
  stored as three numbers;
* ``SparseBaseConv``: eq. (1), y = (u W + b1) ⊙ (h ∗ u + b2), with W stored sparse (its nonzero values and
  their int64 positions), b1, b2 position-independent rows (plus optional position-dependent columns of
  b1 and of b2), and h stored either sparse (nonzero taps) or dense (L taps); ``dense()`` writes it out as
  the (W, b1, b2, h) of ``mixers.baseconv``. ``LayerSpec`` is how a construction writes one down;
  ``SparseBaseConv.from_dense(W, b1, b2, h)`` stores a dense layer (the circuit compilers' stacks, the
  gated-convolution equivalences) in the same class, losslessly: its ``dense()`` gives the same tensors.

Every layer exposes ``d_in``, the width of the stream it reads.
"""

from __future__ import annotations

import numpy as np
import torch

from ..mixers.linear_bias_attention import MASKS, linear_bias_attention
from .base import MixerLayer, frozen

__all__ = ["relative_bias", "distance_bias", "softmax_attention", "LinearBiasAttentionLayer",
           "SoftmaxAttentionLayer", "LayerSpec", "SparseBaseConv"]


def relative_bias(r: torch.Tensor, n: int) -> torch.Tensor:
    """(n, n) Toeplitz bias B[i, j] = r[i - j] for 0 <= i - j < len(r), else 0."""
    i = torch.arange(n, device=r.device)
    dist = i[:, None] - i[None, :]  # (n, n)
    inside = (dist >= 0) & (dist < r.shape[0])
    return torch.where(inside, r[dist.clamp(0, r.shape[0] - 1)], r.new_zeros(()))


def distance_bias(r: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) bias by distance from its three stored numbers r = (r_0, r_1, s): R[0] = r_0,
    R[t >= 1] = r_1 + (t - 1)·s."""
    t = torch.arange(n, dtype=r.dtype, device=r.device)
    return torch.where(t == 0, r[0], r[1] + (t - 1).clamp(min=0) * r[2])


def softmax_attention(u, W_Q, W_K, W_V, W_O, rel_bias) -> torch.Tensor:
    """One causal softmax head with a bias by distance. u: (B, n, d); W_Q, W_K: (d, h); W_V: (d, h_v);
    W_O: (h_v, d); rel_bias: (>= n,) -> (B, n, d). logits[i, j] = <Q_i, K_j> + rel_bias[i - j] for j <= i."""
    n = u.shape[1]
    Q, K, V = u @ W_Q, u @ W_K, u @ W_V  # (B, n, h), (B, n, h), (B, n, h_v)
    i = torch.arange(n, device=u.device)[:, None]  # (n, 1)
    j = torch.arange(n, device=u.device)[None, :]  # (1, n)
    logits = Q @ K.transpose(-1, -2) + rel_bias[(i - j).clamp(min=0)]  # (B, n, n)
    logits = logits.masked_fill(j > i, float("-inf"))
    return torch.softmax(logits, dim=-1) @ V @ W_O  # (B, n, d)


class LinearBiasAttentionLayer(MixerLayer):
    """u <- u + linear_bias_attention(u, W_Q, W_K, W_V, B(r), mask), W_* (d, d), r the relative bias."""

    def __init__(self, W_Q, W_K, W_V, r, mask: str = "strict"):
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"mask={mask!r}: must be one of {MASKS}")
        self.W_Q, self.W_K, self.W_V, self.r = frozen(W_Q), frozen(W_K), frozen(W_V), frozen(r)
        self.mask, self.d_in = mask, W_Q.shape[0]

    def attend(self, u: torch.Tensor) -> torch.Tensor:
        """O (B, n, d): what the layer adds to the stream."""
        return linear_bias_attention(u, self.W_Q, self.W_K, self.W_V, relative_bias(self.r, u.shape[1]), self.mask)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return u + self.attend(u)

    def extra_repr(self) -> str:
        return f"d={self.d_in}, mask={self.mask!r}, bias taps={self.r.numel()}"


class SoftmaxAttentionLayer(MixerLayer):
    """u <- u + softmax_attention(u, W_Q, W_K, W_V, W_O, R(r)), r = (r_0, r_1, slope) the distance bias."""

    def __init__(self, W_Q, W_K, W_V, W_O, r):
        super().__init__()
        self.W_Q, self.W_K, self.W_V, self.W_O, self.r = (frozen(t) for t in (W_Q, W_K, W_V, W_O, r))
        self.d_in = W_Q.shape[0]

    def attend(self, u: torch.Tensor) -> torch.Tensor:
        """O (B, n, d): what the layer adds to the stream."""
        return softmax_attention(u, self.W_Q, self.W_K, self.W_V, self.W_O, distance_bias(self.r, u.shape[1]))

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return u + self.attend(u)

    def extra_repr(self) -> str:
        return f"d={self.d_in}, head={self.W_Q.shape[1]}"


class LayerSpec:
    """One BaseConv layer while it is written down (numpy, float64): W[src, dst] = val entries, the rows
    b1, b2 (d,), filter taps h[tap, chan] = val, and position-dependent b1 (and b2) columns. ``filter_len``
    is the number of taps L of the dense form (``dense()``'s h is (L, d)); None means L = N.

    Two ways to write: vectorised (``route``, ``conv``, and the arrays ``b1``, ``b2`` directly), or one
    output channel at a time with ``out(dst, lin, b1, tap, h, b2)`` =
    (Σ_src lin[src]·u[src] + b1)·(h·u[i − tap, dst] + b2), which refuses a channel written twice."""

    def __init__(self, name: str, d: int, N: int, cyclic: bool = False, filter_len: int | None = None):
        if filter_len is not None and not 1 <= filter_len <= N:
            raise ValueError(f"filter_len={filter_len!r}: must be None (L = N) or an integer in [1, N={N}]")
        self.name, self.d, self.N, self.cyclic, self.filter_len = name, d, N, cyclic, filter_len
        self.src, self.dst, self.val = [], [], []
        self.b1, self.b2 = np.zeros(d), np.zeros(d)
        self.taps, self.chans, self.hval = [], [], []
        self.pos_chan, self.pos_b1 = [], []
        self.pos_chan2, self.pos_b2 = [], []
        self.written: set[int] = set()

    def route(self, src, dst, val=1.0) -> None:
        src, dst, val = np.broadcast_arrays(np.asarray(src), np.asarray(dst), np.asarray(val, dtype=float))
        keep = val.ravel() != 0
        self.src.append(src.ravel()[keep])
        self.dst.append(dst.ravel()[keep])
        self.val.append(val.ravel()[keep])

    def conv(self, tap, chan, val=1.0) -> None:
        tap, chan, val = np.broadcast_arrays(np.asarray(tap), np.asarray(chan), np.asarray(val, dtype=float))
        keep = val.ravel() != 0
        self.taps.append(tap.ravel()[keep] % self.N)
        self.chans.append(chan.ravel()[keep])
        self.hval.append(val.ravel()[keep])

    def out(self, dst: int, lin: dict | None = None, b1: float = 0.0, tap: int | None = None,
            h: float = 0.0, b2: float = 0.0, pos_b1: np.ndarray | None = None) -> None:
        if dst in self.written:
            raise RuntimeError(f"{self.name}: channel {dst} written twice")
        self.written.add(dst)
        for src, v in (lin or {}).items():
            self.route(src, dst, v)
        self.b1[dst], self.b2[dst] = b1, b2
        if tap is not None:
            self.conv(tap, dst, h)
        if pos_b1 is not None:
            self.pos_chan.append(dst)
            self.pos_b1.append(np.asarray(pos_b1, dtype=float))

    def linear(self, dst: int, lin: dict, b1: float = 0.0) -> None:
        """dst = Σ lin·u + b1 (conv branch = b2 = 1)."""
        self.out(dst, lin, b1=b1, b2=1.0)

    def carry(self, *chans) -> None:
        """The identity primitive on these channels (ints or arrays): W = 1, h = 0, b1 = 0, b2 = 1."""
        for ch in chans:
            for q in np.atleast_1d(np.asarray(ch)).ravel().tolist():
                self.linear(int(q), {int(q): 1.0})


def _cat(xs, dtype, device):
    arr = np.concatenate(xs) if xs else np.zeros(0)
    return torch.as_tensor(arr, dtype=dtype, device=device)


class SparseBaseConv(MixerLayer):
    """Eq. (1), y = (u W + b1) ⊙ (h ∗ u + b2) (⊛, cyclic over the rows, if ``cyclic``), stored sparse.

    Stored: ``W_val`` (nnz,) with int64 buffers ``W_src``, ``W_dst`` (W[src, dst] = val); rows ``b1``,
    ``b2`` (1, d) broadcast over positions; ``b1_pos`` (N, k) added to the columns ``b1_chan`` of b1 (k = 0
    unless the spec has position-dependent biases); the filter either sparse, ``h_val`` with buffers
    ``h_tap``, ``h_chan`` (h[tap, chan] = val; ``dense_h=False``), or dense, ``h`` (L, d) with L = the
    largest tap + 1 (``dense_h=True``). ``dense()`` gives (W (d, d), b1, b2, h (N, d)) for
    ``mixers.baseconv(..., cyclic=self.cyclic)``. A cyclic layer needs inputs of exactly N rows.
    """

    def __init__(self, spec: LayerSpec, dtype=torch.float64, device="cpu", dense_h: bool = False):
        super().__init__()
        self.name, self.d_in, self.N, self.cyclic, self.dense_h = spec.name, spec.d, spec.N, spec.cyclic, dense_h
        self.filter_len = spec.N if spec.filter_len is None else int(spec.filter_len)  # L of ``dense()``
        d = spec.d
        self.register_buffer("W_src", _cat(spec.src, torch.long, device))
        self.register_buffer("W_dst", _cat(spec.dst, torch.long, device))
        self.W_val = frozen(_cat(spec.val, dtype, device))  # (nnz,)
        self.b1 = frozen(torch.as_tensor(spec.b1[None], dtype=dtype, device=device))  # (1, d)
        self.b2 = frozen(torch.as_tensor(spec.b2[None], dtype=dtype, device=device))  # (1, d)
        self.register_buffer("b1_chan", torch.as_tensor(np.asarray(spec.pos_chan, dtype=np.int64), device=device))
        pos = np.stack(spec.pos_b1, 1) if spec.pos_b1 else np.zeros((spec.N, 0))
        self.b1_pos = frozen(torch.as_tensor(pos, dtype=dtype, device=device))  # (N, k)
        self.register_buffer("b2_chan", torch.as_tensor(np.asarray(spec.pos_chan2, dtype=np.int64), device=device))
        pos2 = np.stack(spec.pos_b2, 1) if spec.pos_b2 else np.zeros((spec.N, 0))
        self.b2_pos = frozen(torch.as_tensor(pos2, dtype=dtype, device=device))  # (N, k2)
        taps, chans, vals = (_cat(spec.taps, torch.long, device), _cat(spec.chans, torch.long, device),
                             _cat(spec.hval, dtype, device))
        if taps.numel() and int(taps.max()) >= self.filter_len:
            raise ValueError(f"{spec.name}: filter tap {int(taps.max())} outside filter_len={self.filter_len}")
        if dense_h:
            h = torch.zeros(int(taps.max()) + 1 if taps.numel() else 1, d, dtype=dtype, device=device)
            h.index_put_((taps, chans), vals, accumulate=True)
            self.h = frozen(h)  # (L, d)
        else:
            self.register_buffer("h_tap", taps)
            self.register_buffer("h_chan", chans)
            self.h_val = frozen(vals)  # (nnz_h,)

    def _filter(self):
        """(tap, chan, val) of the nonzero filter entries (of the dense h, found at every call)."""
        if not self.dense_h:
            return self.h_tap, self.h_chan, self.h_val
        tap, chan = self.h.nonzero(as_tuple=True)
        return tap, chan, self.h[tap, chan]

    def forward_cm(self, v: torch.Tensor) -> torch.Tensor:  # (B, d, n) -> (B, d, n)
        """Eq. (1) on a channel-major stream (v = uᵀ per sequence): routing channels through the sparse W
        and shifting them in time then move contiguous rows."""
        B, d, n = v.shape
        if self.cyclic and n != self.N:
            raise ValueError(f"u: a cyclic layer needs the full length N={self.N}, got {n}")
        routed = v.index_select(1, self.W_src).mul_(self.W_val[:, None])  # (B, nnz, n)
        lin = v.new_zeros(v.shape).index_add_(1, self.W_dst, routed)
        lin += self.b1.T
        if self.b1_chan.numel():
            lin[:, self.b1_chan] += self.b1_pos[:n].T  # position-dependent columns of b1
        conv = self.b2.T.expand(B, d, n).clone()  # (B, d, n)
        if self.b2_chan.numel():
            conv[:, self.b2_chan] += self.b2_pos[:n].T  # position-dependent columns of b2
        tap, chan, val = self._filter()
        if chan.numel():
            sel = v.index_select(1, chan)  # (B, nh, n)
            src = torch.arange(n, device=v.device) - tap[:, None]  # (nh, n): u[i - tap]
            if self.cyclic:
                shifted = sel.gather(2, (src % n).expand(B, -1, -1))
            else:
                shifted = sel.gather(2, src.clamp(min=0).expand(B, -1, -1)) * (src >= 0)
            conv.index_add_(1, chan, shifted.mul_(val[:, None]))
        return lin.mul_(conv)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, d) -> (B, n, d)
        return self.forward_cm(u.transpose(1, 2)).transpose(1, 2)

    def dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W (d, d), b1 (N, d), b2 (N, d), h (L, d)), L = ``filter_len`` (N unless the spec set it), the
        same layer for ``mixers.baseconv(..., cyclic=self.cyclic)``."""
        d, N = self.d_in, self.N
        W = self.W_val.new_zeros(d, d)
        W.index_put_((self.W_src, self.W_dst), self.W_val.detach(), accumulate=True)  # (d, d)
        b1 = self.b1.detach().expand(N, d).clone()  # (N, d)
        b1[:, self.b1_chan] += self.b1_pos.detach()
        b2 = self.b2.detach().expand(N, d).clone()  # (N, d)
        b2[:, self.b2_chan] += self.b2_pos.detach()
        h = self.W_val.new_zeros(self.filter_len, d)
        tap, chan, val = self._filter()
        h.index_put_((tap, chan), val.detach(), accumulate=True)  # (L, d)
        return W, b1, b2, h

    @property
    def num_dense_parameters(self) -> int:
        """Numbers stored by the dense form (``dense()``): d² + 2·N·d + L·d."""
        d = self.d_in
        return d * d + 2 * self.N * d + self.filter_len * d

    @property
    def num_dense_nonzero_parameters(self) -> int:
        """Nonzero entries of the dense form (``dense()``)."""
        return sum(int((t != 0).sum()) for t in self.dense())

    @classmethod
    def from_dense(cls, W, b1, b2, h, cyclic: bool = False, name: str = "", dtype=torch.float64, device="cpu",
                   dense_h: bool = False) -> SparseBaseConv:
        """The dense layer W (d, d), b1, b2 (N, d), h (L, d) (1 <= L <= N) stored sparse: the nonzero
        entries of W and h, the columns of b1 and b2 that are constant over positions as rows, the others
        as position-dependent columns. ``dense()`` gives back exactly these tensors (in ``dtype``)."""
        W, b1, b2, h = (torch.as_tensor(t).detach().to("cpu", torch.float64).numpy() for t in (W, b1, b2, h))
        if W.ndim != 2 or b1.ndim != 2 or b2.ndim != 2 or h.ndim != 2:
            raise ValueError("W, b1, b2, h: must be 2-D")
        d, N, L = W.shape[0], b1.shape[0], h.shape[0]
        if W.shape != (d, d) or b1.shape != (N, d) or b2.shape != (N, d) or h.shape[1] != d or not 1 <= L <= N:
            raise ValueError(f"W, b1, b2, h: shapes {W.shape}, {b1.shape}, {b2.shape}, {h.shape} must be "
                             f"(d, d), (N, d), (N, d), (L, d) with 1 <= L <= N")
        spec = LayerSpec(name, d, N, cyclic=bool(cyclic), filter_len=L)
        src, dst = np.nonzero(W)
        spec.route(src, dst, W[src, dst])
        tap, chan = np.nonzero(h)
        spec.conv(tap, chan, h[tap, chan])
        for row, b, chans, cols in ((spec.b1, b1, spec.pos_chan, spec.pos_b1),
                                    (spec.b2, b2, spec.pos_chan2, spec.pos_b2)):
            for q in range(d):
                if (b[:, q] == b[0, q]).all():
                    row[q] = b[0, q]
                else:
                    chans.append(q)
                    cols.append(b[:, q].copy())
        return cls(spec, dtype=dtype, device=device, dense_h=dense_h)

    def extra_repr(self) -> str:
        return f"{self.name!r}, d={self.d_in}, N={self.N}, nnz(W)={self.W_val.numel()}, cyclic={self.cyclic}"
