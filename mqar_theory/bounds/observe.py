"""Sizes observed from the computation itself: a trace at the level of torch's operators.

``observe(con, tokens)`` runs a construction's program (``encode``, the listed layers, ``decode``) on ONE
sequence under a ``TorchDispatchMode`` (torch's hook below autograd: every aten operator call passes
through ``__torch_dispatch__``, whatever Python code issued it: a closure, a global, a class attribute, a
``functools.partial``). Every tensor an operator produces carries a tag: *tainted* (derived from the
tokens) with its sequence axes, or *derived constant* (computed during the trace from constants only).
Then for every operator call:

* **Numbers.** A tensor argument that is neither tainted nor a derived constant entered the computation
  from outside the trace. It must be one of the construction's counted tensors (``declared``: the
  parameters, buffers and tensor attributes of the construction and of its program, ``sizes.stored_tensors``),
  and its elements must lie inside the memory those tensors cover (a view of a larger hidden buffer is
  refused). Anything else is a ``MeasurementError`` naming the operator, the shape and the source line
  where it entered (a closure, a global, a numpy array or Python list turned into a tensor, an
  ``nn.Module`` held in a dict). A 0-dim tensor of unknown origin is a Python number torch wrapped: it
  counts 1 as a scalar.
* **Created numbers.** A factory's output (an operator with no tensor argument: ``arange``, ``randn``,
  ``eye``, ``linspace``, ...) counts its size; a constant fill (``zeros``, ``ones``, ``full``, the ``*_like``
  and ``new_*`` fills) counts 1, its one value; ``empty`` counts 0 (its values come from later writes).
* **Scalars.** Each argument an operator's schema types as ``number`` (torch's ``Scalar``: a Python int,
  float or bool used as a value, e.g. the 0.5 of ``x > 0.5``, a pad value, an ``alpha``), and each Python
  number passed where the schema takes a tensor (``v + 0.0``), counts 1 per call.
  Integers typed ``int`` (dimensions, sizes, slice bounds) are structure, not values, and are not counted.
* **Structure.** Created numbers and scalars issued from the reviewed library code that runs every layer
  (``constructions/base.py``, ``constructions/layers.py``, ``mqar_theory/mixers/``, this package) are the
  layers' shape bookkeeping (position indices, masks, a fill of zeros) and are reported as ``structure``,
  apart from ``params``; a construction's own files are never library code.
* **Reading the input into Python** (``.item()``, ``bool(tensor)`` on a tainted tensor) is an error outside
  library code: a number Python computed from the tokens would bypass the trace.

Layers (the longest chain of sequence mixing). Each tainted tensor records ``depth``, the most
sequence-mixing steps on any chain from the tokens to it, and its sequence axes: (dim, offset, sub, size),
meaning index k along ``dim`` is position ``(k // sub) % size + offset`` (``sub``/``size`` follow the axis
through reshapes that merge it with the batch or the channels). An operator *mixes* (depth + 1) when it
moves information between positions: a contraction or reduction over a sequence axis, a gather or
index along it with anything but the identity, a shift (combining two tensors whose offsets differ, a
pad or concatenation that moves rows, a broadcast of one row to all), a select of one position, a
convolution or FFT along it. Operators along an axis that keep it (``softmax``) do not mix on a tensor
with two sequence axes (attention scores (i, j), eliminated by the ``@ V`` that follows); on a stream
with one they do. Every ``MixerLayer`` call (global forward hooks) also counts one step: its output's
depth is at least its input's + 1 (a position-wise BaseConv layer counts as a layer), and a block that
mixes twice counts two. So ``layers`` = depth of the answers; ``encode`` must leave depth 0 with the
positions in place and ``decode`` must add nothing (the locality verdict, at every position, by dataflow).
An operator on a tainted tensor without a rule here is an error (it is not silently called position-wise).

Known limits (documented, tested where possible): Python code that reads the tokens with ``.tolist()`` or
``.numpy()`` (no operator call) is invisible; a position-wise ``MixerLayer`` applied through ``.forward``
inside ``decode`` (no hook, no mixing) is not counted as a layer.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["MeasurementError", "Observation", "observe_program", "ObservingMode"]

_ATTR = "_mqar_observed"
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../mqar_theory
_LIBRARY = (os.path.join(_PKG, "constructions", "base.py"), os.path.join(_PKG, "constructions", "layers.py"),
            os.path.join(_PKG, "mixers") + os.sep, os.path.join(_PKG, "bounds") + os.sep)
_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_HERE = os.path.abspath(__file__)


class MeasurementError(ValueError):
    """A number entered the computation that is not among the construction's counted tensors (or the trace
    met an operation it cannot follow)."""


class Observation(dict):
    """What ``observe_program`` saw (a dict): values, index, fixed, created, scalars, structure, layers,
    width, encode_depth, decode_depth, position_wise, locality_message, entries (where created numbers
    and scalars entered)."""


def _site() -> tuple[str, bool]:
    """(file:line of the innermost frame outside torch and this file, whether it is reviewed library code)."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_TORCH) and fn != _HERE and "torch/utils" not in fn:
            return f"{os.path.relpath(fn, os.path.dirname(_PKG))}:{f.f_lineno}", fn.startswith(_LIBRARY)
        f = f.f_back
    return "?", False


# ---- sequence axes -------------------------------------------------------------------------------
# An axis is (dim, offset, sub, size); a tag is (trace id, depth, axes tuple) or (trace id, None, None).

def _tag(t):
    return getattr(t, _ATTR, None) if isinstance(t, torch.Tensor) else None


_VIEWS = {"view", "_unsafe_view", "reshape", "alias", "detach", "clone", "_to_copy", "lift_fresh", "contiguous",
          "expand", "permute", "transpose", "t", "unsqueeze", "squeeze", "select", "slice", "unbind", "split",
          "split_with_sizes", "_reshape_alias", "view_as", "lift_fresh_copy", "to", "_conj", "resolve_conj",
          "resolve_neg", "numpy_T"}
_REDUCE = {"sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "logsumexp", "any", "all",
           "std", "var", "norm", "aminmax", "linalg_vector_norm", "count_nonzero", "nansum", "median", "mode"}
_ALONG = {"_softmax", "_log_softmax", "cumsum", "cumprod", "sort", "topk", "cummax", "cummin", "logcumsumexp",
          "flip", "roll", "_fft_r2c", "_fft_c2r", "_fft_c2c"}
_FILLS = {"zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full",
          "scalar_tensor", "fill"}
_EMPTY = {"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"}


class ObservingMode(TorchDispatchMode):
    """The trace (module docstring). ``declared``: {name: tensor}; ``fixed``: names reported as fixed."""

    def __init__(self, declared: Mapping[str, torch.Tensor]):
        super().__init__()
        self.tid = object()
        self.declared = dict(declared)
        self._ids = {id(t) for t in self.declared.values()}
        self._storages: dict[int, list[torch.Tensor]] = {}
        for t in self.declared.values():
            self._storages.setdefault(self._ptr(t), []).append(t)
        self._covered: dict[int, torch.Tensor] = {}
        self.created: list[tuple[str, str, int]] = []
        self.scalars: list[tuple[str, str, int]] = []
        self.structure = 0
        self.entered: set[int] = set()
        self.widths: list[int] = []
        self.layer_calls = 0

    @staticmethod
    def _ptr(t: torch.Tensor) -> int:
        try:
            return t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):
            return -id(t)

    # --- tags -----------------------------------------------------------------------------------
    def mark(self, t: torch.Tensor, depth: int | None, axes) -> None:
        object.__setattr__(t, _ATTR, (self.tid, depth, None if axes is None else tuple(axes)))

    def info(self, t):
        """('taint', depth, axes) | ('const',) | ('declared',) | ('unknown',)."""
        tag = _tag(t)
        if tag is not None and tag[0] is self.tid:
            return ("const",) if tag[1] is None else ("taint", tag[1], tag[2])
        if id(t) in self._ids:
            return ("declared",)
        if self._ptr(t) in self._storages and self._inside(t):
            return ("declared",)
        return ("unknown",)

    def _inside(self, t: torch.Tensor) -> bool:
        """Every element ``t`` addresses lies in memory that declared tensors on its storage address."""
        ptr = self._ptr(t)
        if ptr not in self._covered:
            n = t.untyped_storage().nbytes() // max(t.element_size(), 1)
            mask = torch.zeros(n, dtype=torch.bool)
            for d in self._storages[ptr]:
                if d.element_size() != t.element_size():
                    continue
                idx = torch.arange(n).as_strided(d.shape, d.stride(), d.storage_offset()) if d.numel() else None
                if idx is not None:
                    mask[idx.reshape(-1)] = True
            self._covered[ptr] = mask
        mask = self._covered[ptr]
        if not t.numel():
            return True
        try:
            idx = torch.arange(mask.numel()).as_strided(t.shape, t.stride(), t.storage_offset())
        except RuntimeError:
            return False
        return bool(mask[idx.reshape(-1)].all())

    # --- the dispatch ---------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch.utils._python_dispatch._disable_current_modes():
            return self._handle(func, args, kwargs)

    def _handle(self, func, args, kwargs):
        name = func._schema.name.split("::")[-1]
        flat, _ = tree_flatten((args, kwargs))
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        site, library = _site()
        tainted = []
        for a in tensors:
            kind = self.info(a)
            if kind[0] == "taint":
                tainted.append(a)
            elif kind[0] == "declared":
                self.entered.add(id(a))
            elif kind[0] == "unknown":
                if a.dim() == 0 and a.numel() == 1 and name not in ("lift_fresh", "lift_fresh_copy"):
                    self._scalar(site, library, name, 1)  # a Python number torch wrapped
                    self.mark(a, None, None)
                else:
                    raise MeasurementError(
                        f"{site}: a tensor of shape {tuple(a.shape)} ({a.dtype}) entered aten.{name} but is not "
                        "among the construction's counted tensors (parameters, buffers, tensor attributes)")
        n_scalar = self._count_scalars(func, args, kwargs)
        if name == "_local_scalar_dense" and tainted and not library:
            raise MeasurementError(f"{site}: the input was read into Python (.item() / bool()) by aten.{name}")
        out = func(*args, **kwargs)
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        for o in outs:  # a view into counted memory must stay inside what the counted tensors cover
            if self._ptr(o) in self._storages and not self._inside(o):
                raise MeasurementError(f"{site}: aten.{name} made a view of shape {tuple(o.shape)} that reaches "
                                       "memory beyond the construction's counted tensors")
        base = name.rstrip("_")
        if name in ("slice", "alias", "detach") and tensors and isinstance(args[0], torch.Tensor):
            k = args[1] % max(args[0].dim(), 1) if name == "slice" and len(args) > 1 else 0
            start = (args[2] if len(args) > 2 and args[2] is not None else 0) if name == "slice" else 0
            if start < 0:
                start = max(0, start + args[0].shape[k])
            self._slice_of(outs, args[0], {k: start} if name == "slice" else {})
        if not tensors:  # a factory
            n = 0 if base in _EMPTY else 1 if base in _FILLS else sum(o.numel() for o in outs)
            self._created(site, library, name, n)
            for o in outs:
                self.mark(o, None, None)
            return out
        if not tainted:
            if base in _FILLS:
                self._created(site, library, name, 1)
            elif base in _EMPTY:
                pass
            else:
                self._scalar(site, library, name, n_scalar)
            for o in outs:
                if self.info(o)[0] != "declared":
                    self.mark(o, None, None)
            return out
        if base in _FILLS or base in _EMPTY or name == "fill_":
            self._created(site, library, name, 0 if base in _EMPTY else 1)
            for o in outs:
                self.mark(o, None, None)
            return out
        self._scalar(site, library, name, n_scalar)
        if name == "_local_scalar_dense":
            return out
        depth, axes = self._rule(name, func, args, kwargs, outs, site)
        targets = outs
        if func._schema.arguments and func._schema.arguments[0].alias_info is not None \
                and func._schema.arguments[0].alias_info.is_write and isinstance(args[0], torch.Tensor):
            targets = [args[0]]
            if args[0]._base is not None:  # a write through a view: the base now holds tainted data
                self._write_base(args[0], depth, axes, site, name)
        for o in targets:
            self.mark(o, depth, axes)
        if len(outs) > 1 and targets is outs and name in ("max", "min", "sort", "topk", "aminmax", "cummax",
                                                           "cummin"):
            pass
        return out

    def _count_scalars(self, func, args, kwargs) -> int:
        n = 0
        for i, arg in enumerate(func._schema.arguments):
            val = args[i] if i < len(args) else kwargs.get(arg.name, None)
            if val is None or isinstance(val, torch.Tensor):
                continue
            typ = str(arg.type)
            if "number" in typ or "Scalar" in typ:
                n += len(val) if isinstance(val, (list, tuple)) else 1
            elif "Tensor" in typ and isinstance(val, (bool, int, float, complex)):
                n += 1  # a Python number passed where the schema takes a tensor
        return n

    def _scalar(self, site, library, name, n):
        if n:
            if library:
                self.structure += n
            else:
                self.scalars.append((site, name, n))

    def _created(self, site, library, name, n):
        if library:
            self.structure += n
        else:
            self.created.append((site, name, n))

    def _write_base(self, view, depth, axes, site, name):
        base = view._base
        kind = self.info(base)
        vt = getattr(view, "_mqar_slice", None)
        if vt is None or vt[0] is not base:
            raise MeasurementError(f"{site}: aten.{name} writes tainted data through a view the trace cannot "
                                   "follow back to its base")
        _, starts = vt  # {dim: start} of a slice chain (dims preserved)
        mapped = tuple((d, o - starts.get(d, 0), s, z) for d, o, s, z in axes)
        if kind[0] == "taint":
            old = kind[2]
            mix = sorted(a[:3] for a in old) != sorted(a[:3] for a in mapped)  # sizes differ: a view is smaller
            self.mark(base, max(kind[1], depth) + (1 if mix else 0), old)
        else:
            full = tuple((d, o, s, base.shape[d] if z == view.shape[d] and s == 1 else z) for d, o, s, z in mapped)
            self.mark(base, depth, full)

    # --- the mixing rules -----------------------------------------------------------------------
    def _ax(self, t):
        k = self.info(t)
        return (k[1], list(k[2])) if k[0] == "taint" else (None, None)

    def _rule(self, name, func, args, kwargs, outs, site):
        """(depth, axes) of the output(s) of a call with tainted arguments."""
        tainted = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)
                   and self.info(a)[0] == "taint"]
        D = max(self.info(a)[1] for a in tainted)
        out = outs[0] if outs else None
        base = name.rstrip("_")
        pointwise = torch.Tag.pointwise in func.tags or base in ("where", "masked_fill", "copy", "clamp", "tril",
                                                                  "triu", "index_put", "_to_copy", "clone",
                                                                  "alias", "detach", "lift_fresh", "contiguous")
        if base == "index_put":
            return self._index_put(args, D, site)
        if pointwise or base in ("_to_copy", "clone", "alias", "detach", "lift_fresh", "contiguous"):
            return self._pointwise(tainted, out, D)
        if base in _VIEWS:
            return self._view(name, args, kwargs, outs, D, site)
        if base in ("mm", "bmm", "addmm", "baddbmm", "mv", "dot", "addmv", "addbmm"):
            return self._contract(base, args, D)
        if base in _REDUCE:
            return self._reduce(base, args, kwargs, D)
        if base in _ALONG:
            return self._along(base, args, kwargs, D)
        if base in ("index", "index_select", "gather", "index_add", "scatter", "scatter_add", "one_hot"):
            return self._index(base, args, kwargs, outs, D, site)
        if base == "cat":
            return self._cat(args, kwargs, D)
        if base == "constant_pad_nd":
            return self._pad(args, D)
        if base in ("convolution", "_convolution", "conv1d", "_conv_depthwise2d"):
            d, ax = self._ax(args[0])
            return D + (1 if any(a[0] >= 2 for a in ax) else 0), [a for a in ax if a[0] < 2]
        raise MeasurementError(f"{site}: aten.{name} on a tensor derived from the tokens has no rule in "
                               "bounds.observe (add one, with a test, before a construction may use it)")

    def _pointwise(self, tainted, out, D):
        """Elementwise (with broadcasting): the first tainted argument whose axes span the output is the frame
        (for an in-place op, the destination); another argument whose positions do not line up with it (a
        different offset, or one row broadcast to all) has moved: its chain gains one mixing step."""
        nd = out.dim()
        frame: dict[int, tuple] = {}
        depth = 0
        def broadcast(a) -> bool:  # a sequence axis of ``a`` is stretched to the output's size
            return any(a.shape[d] != out.shape[d + nd - a.dim()] for d, *_ in self._ax(a)[1])

        order = sorted(tainted, key=broadcast)  # the frame: the first argument that spans the output
        for a in order:
            da, ax = self._ax(a)
            moved = False
            for d, o, s, z in ax:
                od = d + nd - a.dim()
                if a.shape[d] != out.shape[od]:
                    moved = True  # one row broadcast to every position
                    continue
                if od in frame and frame[od] != (o, s, z):
                    moved = True
                frame.setdefault(od, (o, s, z))
            depth = max(depth, da + (1 if moved else 0))
        return depth, [(d, *r) for d, r in sorted(frame.items())]

    def _view(self, name, args, kwargs, outs, D, site):
        x = args[0]
        _, ax = self._ax(x)
        base = name.rstrip("_")
        if base in ("alias", "detach", "clone", "_to_copy", "lift_fresh", "contiguous", "to", "_conj",
                    "resolve_conj", "resolve_neg", "view_as", "lift_fresh_copy"):
            return D, ax
        if base in ("view", "_unsafe_view", "reshape", "_reshape_alias"):
            return self._reshape(x, outs[0], ax, D, site)
        if base == "expand":
            out = outs[0]
            shift = out.dim() - x.dim()
            mix = any(x.shape[d] == 1 and out.shape[d + shift] != 1 for d, *_ in ax)
            return D + (1 if mix else 0), [(d + shift, o, s, z) for d, o, s, z in ax]
        if base == "permute":
            perm = [p % x.dim() for p in args[1]]
            return D, sorted((perm.index(d), o, s, z) for d, o, s, z in ax)
        if base in ("transpose", "t"):
            d0, d1 = (0, 1) if base == "t" else (args[1] % x.dim(), args[2] % x.dim())
            sw = {d0: d1, d1: d0}
            return D, sorted((sw.get(d, d), o, s, z) for d, o, s, z in ax)
        if base == "unsqueeze":
            k = args[1] % (x.dim() + 1)
            return D, [(d + (d >= k), o, s, z) for d, o, s, z in ax]
        if base == "squeeze":
            out = outs[0]
            if x.dim() == out.dim():
                return D, ax
            dims = [i for i in range(x.dim()) if x.shape[i] == 1 and (len(args) < 2 or i in
                    ([a % x.dim() for a in args[1]] if isinstance(args[1], (list, tuple)) else [args[1] % x.dim()]))]
            return D, [(d - sum(1 for k in dims if k < d), o, s, z) for d, o, s, z in ax if d not in dims]
        if base in ("select", "unbind"):
            k = args[1] % x.dim() if len(args) > 1 else 0
            mix = any(d == k for d, *_ in ax)
            rest = [(d - (d > k), o, s, z) for d, o, s, z in ax if d != k]
            return D + (1 if mix else 0), rest
        if base == "slice":
            k = args[1] % x.dim() if len(args) > 1 else 0
            start = args[2] if len(args) > 2 and args[2] is not None else 0
            step = args[4] if len(args) > 4 else 1
            start = max(0, start + x.shape[k]) if start < 0 else min(start, x.shape[k])
            new, mix = [], False
            for d, o, s, z in ax:
                if d == k:
                    if s != 1 or step != 1 or z != x.shape[k]:
                        mix = mix or (start != 0 or step != 1)
                        new.append((d, o, s, z))
                    else:
                        new.append((d, o + start, s, outs[0].shape[k]))
                else:
                    new.append((d, o, s, z))
            return D + (1 if mix else 0), new
        if base in ("split", "split_with_sizes"):
            k = (args[2] if len(args) > 2 else kwargs.get("dim", 0)) % x.dim()
            if any(d == k for d, *_ in ax):
                return D + 1, [a for a in ax if a[0] != k]
            return D, ax
        raise MeasurementError(f"{site}: view aten.{name} has no rule in bounds.observe")

    @staticmethod
    def _slice_of(outs, x, starts):
        """Record, for a later write through a view, that ``outs`` are slices of ``x``'s base at ``starts``
        ({dim: start}; slices keep every dimension). A view of a view adds its starts to its parent's."""
        if x._base is None:
            root, acc = x, {}
        else:
            prev = getattr(x, "_mqar_slice", None)
            if prev is None or prev[0] is not x._base:
                return
            root, acc = prev[0], dict(prev[1])
        for k, s in starts.items():
            acc[k] = acc.get(k, 0) + s
        for o in outs:  # (inside the dispatch a view's ``_base`` is not set yet)
            object.__setattr__(o, "_mqar_slice", (root, acc))

    def _reshape(self, x, out, ax, D, site):
        new = []
        for d, o, s, z in ax:
            inner = math.prod(x.shape[d + 1 :]) * s  # element stride of the axis (contiguous view)
            span = inner * z
            m = None
            for j in range(out.dim()):
                right = math.prod(out.shape[j + 1 :])
                if inner % right == 0 and (right * out.shape[j]) % span == 0:  # the axis lies inside dim j
                    m = j
                    break
            if m is None:
                raise MeasurementError(f"{site}: a reshape {tuple(x.shape)} -> {tuple(out.shape)} splits a "
                                       "sequence axis (the trace cannot follow it)")
            new.append((m, o, inner // math.prod(out.shape[m + 1 :]), z))
        return D, new

    def _contract(self, base, args, D):
        if base in ("addmm", "baddbmm", "addmv", "addbmm"):
            bias, a, b = args[0], args[1], args[2]
        else:
            bias, a, b = None, args[0], args[1]
        _, axa = self._ax(a)
        _, axb = self._ax(b)
        axa, axb = axa or [], axb or []
        mix = False
        out: list = []
        if base in ("mm", "addmm"):
            for d, o, s, z in axa:
                mix |= d == 1
                if d == 0:
                    out.append((0, o, s, z))
            for d, o, s, z in axb:
                mix |= d == 0
                if d == 1:
                    out.append((1, o, s, z))
        elif base in ("bmm", "baddbmm"):
            for d, o, s, z in axa:
                mix |= d == 2
                if d != 2:
                    out.append((d, o, s, z))
            for d, o, s, z in axb:
                mix |= d == 1
                if d == 0:
                    if all(q[0] != 0 for q in out):
                        out.append((0, o, s, z))
                elif d == 2:
                    out.append((2, o, s, z))
        else:
            mix = bool(axa or axb)
        if bias is not None:
            _, axc = self._ax(bias)
            if axc and sorted(axc) != sorted(out):
                mix = True
        return D + (1 if mix else 0), sorted(out)

    def _dims(self, x, dims):
        if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
            return list(range(x.dim()))
        if isinstance(dims, int):
            dims = [dims]
        return [d % max(x.dim(), 1) for d in dims]

    def _reduce(self, base, args, kwargs, D):
        x = args[0]
        _, ax = self._ax(x)
        if base in ("max", "min", "median", "mode") and (len(args) < 2 or isinstance(args[1], torch.Tensor)):
            if len(args) >= 2:  # max(a, b): pointwise
                return self._pointwise([a for a in args[:2] if self.info(a)[0] == "taint"],
                                       torch.broadcast_tensors(args[0], args[1])[0], D)
            dims = list(range(x.dim()))
        else:
            dims = self._dims(x, args[1] if len(args) > 1 else kwargs.get("dim"))
        keep = (args[2] if len(args) > 2 and isinstance(args[2], bool) else kwargs.get("keepdim", False))
        mix = any(d in dims for d, *_ in ax)
        rest = []
        for d, o, s, z in ax:
            if d in dims:
                continue
            rest.append((d if keep else d - sum(1 for k in dims if k < d), o, s, z))
        return D + (1 if mix else 0), rest

    def _along(self, base, args, kwargs, D):
        x = args[0]
        _, ax = self._ax(x)
        if base in ("_fft_r2c", "_fft_c2r", "_fft_c2c"):
            # a forward transform keeps the positions (invertible): the axis is marked "freq"; the inverse of a
            # frequency axis is the convolution's one mixing step (any inverse counts one)
            dims = self._dims(x, args[1])
            forward = base == "_fft_r2c" or (base == "_fft_c2c" and bool(args[3]))
            if forward:
                return D, [(d, "freq", s, z) if d in dims else (d, o, s, z) for d, o, s, z in ax]
            hit = any(d in dims for d, *_ in ax)
            return D + (1 if hit else 0), [(d, 0, s, z) if d in dims else (d, o, s, z) for d, o, s, z in ax]
        if base in ("flip", "roll"):
            dims = self._dims(x, args[1] if len(args) > 1 else kwargs.get("dim"))
            if base == "roll":
                dims = self._dims(x, args[2] if len(args) > 2 else kwargs.get("dims"))
        else:
            dims = self._dims(x, args[1] if len(args) > 1 else kwargs.get("dim", -1))
        on = [a for a in ax if a[0] in dims]
        if not on:
            return D, ax
        if base in ("_softmax", "_log_softmax") and len(ax) >= 2:
            return D, ax  # attention scores (i, j): the @ V that follows eliminates j
        return D + 1, [(d, 0, s, z) for d, o, s, z in ax]

    def _index(self, base, args, kwargs, outs, D, site):
        out = outs[0]
        if base == "one_hot":
            _, ax = self._ax(args[0])
            return D, ax
        if base == "index":
            x, idx = args[0], args[1]
            _, axx = self._ax(x)
            present = [(k, t) for k, t in enumerate(idx) if t is not None]
            if len(present) != 1:
                raise MeasurementError(f"{site}: aten.index with {len(present)} index tensors has no rule")
            k, I = present[0]
            _, axi = self._ax(I)
            mix = False
            new = []
            for d, o, s, z in axx or []:
                if d == k:
                    mix |= not self._identity(I, x.shape[k], o) or axi is not None
                elif d > k:
                    new.append((d + I.dim() - 1, o, s, z))
                else:
                    new.append((d, o, s, z))
            for d, o, s, z in axi or []:
                new.append((d + k, o, s, z))
            if mix:
                new = [a for a in new if a[0] != k] + ([(k, 0, 1, out.shape[k])] if I.dim() == 1 else [])
            return D + (1 if mix else 0), sorted(new)
        if base == "index_select":
            x, k, I = args[0], args[1] % args[0].dim(), args[2]
            _, axx = self._ax(x)
            mix = self.info(I)[0] == "taint" or any(d == k and not self._identity(I, x.shape[k], o)
                                                    for d, o, s, z in axx or [])
            return D + (1 if mix else 0), axx or []
        if base == "gather":
            x, k, I = args[0], args[1] % args[0].dim(), args[2]
            _, axx = self._ax(x)
            _, axi = self._ax(I)
            if axi is not None:
                mix = any(d == k for d, *_ in axi) or any(d == k for d, *_ in (axx or []))
                return D + (1 if mix else 0), axi
            mix = any(d == k and not self._identity(I, x.shape[k], 0, dim=k) for d, o, s, z in axx)
            return D + (1 if mix else 0), axx
        if base in ("index_add", "scatter", "scatter_add"):
            x, k = args[0], args[1] % args[0].dim()
            I = args[2]
            src = args[3] if len(args) > 3 and isinstance(args[3], torch.Tensor) else None
            parts = [t for t in (x, src) if t is not None and self.info(t)[0] == "taint"]
            if self.info(I)[0] == "taint":
                _, axi = self._ax(I)
                mix = any(d == k for d, *_ in axi)
                return D + (1 if mix else 0), axi
            axes = []
            mix = False
            for t in parts:
                _, ax = self._ax(t)
                for a in ax:
                    if a[0] == k:
                        mix = mix or not (base == "index_add" and self._identity(I, t.shape[k], 0))
                    if a not in axes:
                        axes.append(a)
            dims = [a[0] for a in axes]
            mix = mix or len(dims) != len(set(dims))
            return D + (1 if mix else 0), sorted(set(axes)) if not mix else [a for a in axes if a[0] != k]
        raise MeasurementError(f"{site}: aten.{base} has no rule")

    @staticmethod
    def _identity(I, size, offset, dim=None) -> bool:
        """The untainted index ``I`` picks every position in place (along ``dim`` for a gather)."""
        if dim is None:
            return I.dim() == 1 and I.numel() == size and bool((I.cpu() == torch.arange(size)).all())
        ar = torch.arange(I.shape[dim]).view([-1 if j == dim else 1 for j in range(I.dim())])
        return I.shape[dim] <= size and bool((I.cpu() == ar).all())

    def _cat(self, args, kwargs, D):
        pieces = args[0]
        k = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        ref = next(p for p in pieces if p.dim() > 0)
        k %= ref.dim()
        start, rec, mix, axes = 0, {}, False, {}
        for p in pieces:
            if p.dim() == 1 and p.numel() == 0:
                continue
            kind = self.info(p)
            if kind[0] == "taint":
                for d, o, s, z in kind[2]:
                    if d == k:
                        r = (o - start, s)
                        if rec.get(d, r) != r or s != 1:
                            mix = True
                        rec[d] = r
                    else:
                        if axes.get(d, (o, s, z)) != (o, s, z):
                            mix = True
                        axes[d] = (o, s, z)
            start += p.shape[k]
        out = [(d, *r) for d, r in axes.items()]
        if k in rec:
            out.append((k, rec[k][0], 1, start))
        return D + (1 if mix else 0), sorted(out)

    def _pad(self, args, D):
        x, pad = args[0], list(args[1])
        _, ax = self._ax(x)
        new = []
        for d, o, s, z in ax:
            j = x.dim() - 1 - d  # pad pairs start from the last dimension
            front = pad[2 * j] if 2 * j < len(pad) else 0
            new.append((d, o - front, s, z + front + (pad[2 * j + 1] if 2 * j + 1 < len(pad) else 0)))
        return D, new

    def _index_put(self, args, D, site):
        x, indices, values = args[0], args[1], args[2]
        _, axx = self._ax(x)
        present = [(k, t) for k, t in enumerate(indices) if t is not None]
        if any(self.info(t)[0] == "taint" for _, t in present):
            return D + 1, axx or []
        ks = {k for k, _ in present}
        if any(d in ks for d, *_ in (axx or [])):
            return D + 1, axx
        kind = self.info(values)
        axes = list(axx or [])
        mix = False
        if kind[0] == "taint":
            vals_ax = kind[2]
            for d, o, s, z in vals_ax:
                d2 = d + x.dim() - values.dim()
                if d2 in ks:
                    mix = True
                elif axx is not None and (d2, o, s, z) not in axx:
                    mix = True
                elif axx is None:
                    axes.append((d2, o, s, x.shape[d2]))
        return D + (1 if mix else 0), sorted(set(axes))

    # --- layers -----------------------------------------------------------------------------
    def hooks(self):
        from ..constructions.base import MixerLayer

        depth_in: list[int] = []

        def pre(module, args):
            if isinstance(module, MixerLayer):
                ds = [self.info(a)[1] for a in args if isinstance(a, torch.Tensor) and self.info(a)[0] == "taint"]
                depth_in.append(max(ds, default=0))
                if args and isinstance(args[0], torch.Tensor):
                    self.widths.append(int(args[0].shape[-1]))
                self.layer_calls += 1

        def post(module, args, output):
            if isinstance(module, MixerLayer):
                d0 = depth_in.pop()
                if isinstance(output, torch.Tensor) and self.info(output)[0] == "taint":
                    _, d, ax = self.info(output)
                    self.mark(output, max(d, d0 + 1), ax)

        return register_module_forward_pre_hook(pre), register_module_forward_hook(post)


def _stream_ok(mode: ObservingMode, t: torch.Tensor, n: int, depth: int) -> str | None:
    """None if ``t`` (B, n', ...) has depth ``depth`` and positions 0..n'-1 in place along dim 1, else why not."""
    kind = mode.info(t)
    if kind[0] != "taint":
        return "does not depend on the tokens"
    _, d, ax = kind
    if d != depth:
        return f"adds {d - depth} sequence-mixing step(s)"
    if (1, 0, 1, t.shape[1]) not in ax or len(ax) != 1:
        return f"moves positions (sequence axes {ax})"
    return None


def observe_program(con, x: torch.Tensor, program, declared: Mapping[str, torch.Tensor]) -> Observation:
    """Run ``decode(layers(encode(x)))`` of ``con`` with ``program`` on one checked sequence ``x`` (1, n)
    under the trace; ``declared``: the construction's counted tensors by name. See the module docstring."""
    from ..constructions.base import run_layers

    mode = ObservingMode(declared)
    x = x.clone()
    mode.mark(x, 0, [(1, 0, 1, x.shape[1])])
    h1, h2 = mode.hooks()
    msgs = []
    try:
        with torch.no_grad(), mode:
            u = con.encode(x)
            why = _stream_ok(mode, u, x.shape[1], 0)
            if why:
                msgs.append(f"encode: {why}")
            final = run_layers(program, u, keep=False)[-1]
            kind = mode.info(final)
            depth = kind[1] if kind[0] == "taint" else 0
            ans = con.decode(final)[:, : x.shape[1]]
            why = _stream_ok(mode, ans, x.shape[1], depth)
            if why:
                msgs.append(f"decode: {why}")
            kind = mode.info(ans)
            layers = kind[1] if kind[0] == "taint" else 0
    finally:
        h1.remove()
        h2.remove()
    return Observation(created=sum(n for *_, n in mode.created), scalars=sum(n for *_, n in mode.scalars),
                       structure=mode.structure, layers=int(layers), width=max(mode.widths, default=0),
                       position_wise=not msgs, locality_message="; ".join(msgs),
                       entries=[*mode.created, *mode.scalars], entered=len(mode.entered))
