"""Sizes measured from a built construction, never declared: the counted tensors it holds, and what the
operator trace (``observe``) sees when its program runs.

* ``values``: every floating-point number the construction and the program it runs hold: parameters,
  buffers and plain tensor attributes of every submodule (and tensors inside lists, tuples and dicts held as
  attributes), each distinct tensor once, numel as stored (an expanded view counts its logical size: Thm
  4.5's impulse filters are (t, N, 1) expanded over c, and the theorem counts t·N·c). A table the
  construction declares a fixed function of (c, N) (``fixed_tables``, e.g. a token code) is reported as
  ``fixed`` if it equals its recomputation from (c, N); otherwise it is counted and ``fixed_mismatch`` says
  how many numbers differ.
* ``index``: entries of integer tensors (positions of sparsely stored weights), counted in ``params`` too.
* ``created``, ``scalars``, ``structure``: factory outputs, constant fills and Python numbers that enter the
  computation (``observe``'s rules); ``structure`` is the library layers' own bookkeeping, not counted.
* ``params`` = values + index + created + scalars: the total the parameter bounds check.
* ``params_stored``: numbers really in memory (each storage once); ``params_nnz``: nonzero entries.
* ``layers``: the longest chain of sequence-mixing steps from the tokens to the answers (every ``MixerLayer``
  call one step at least), from the trace; ``width``: the widest stream a layer reads.
* ``position_wise`` / ``locality_message``: the trace's verdict on ``encode`` and ``decode`` (no mixing step,
  every position in place), at every position.
* ``t_filters``: for an input-dependent construction, the filters per bank of the largest program.

A number that enters the computation without being counted raises ``observe.MeasurementError``.
``trace`` (the hook count of layers) and ``position_wise_violations`` (a perturbation probe of ``encode`` /
``decode``) are kept as independent cross-checks for tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from ..constructions.base import MixerLayer, run_layers

__all__ = ["stored_tensors", "count_tensors", "trace", "measure_sizes", "position_wise_violations"]

_SKIP = {"_parameters", "_buffers", "_modules", "training", "_forward_hooks", "_forward_pre_hooks",
         "_backward_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks"}


def _tensors_in(obj, out: list, seen: set, depth: int = 0) -> None:
    if depth > 4 or id(obj) in seen:
        return
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        seen.add(id(obj))
        out.append(obj)
    elif isinstance(obj, Mapping):
        seen.add(id(obj))
        for v in obj.values():
            _tensors_in(v, out, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set)):
        seen.add(id(obj))
        for v in obj:
            _tensors_in(v, out, seen, depth + 1)


def stored_tensors(*roots) -> list:
    """Every distinct tensor (and numpy array) held by the modules ``roots`` and their submodules:
    ``_parameters``, ``_buffers`` and ``__dict__`` attributes (containers searched)."""
    out, seen, mods = [], set(), set()
    for root in roots:
        for m in root.modules() if isinstance(root, nn.Module) else [root]:
            if id(m) in mods:
                continue
            mods.add(id(m))
            for v in (*m._parameters.values(), *m._buffers.values()):
                if v is not None:
                    _tensors_in(v, out, seen)
            for k, v in vars(m).items():
                if k not in _SKIP and not isinstance(v, nn.Module):
                    _tensors_in(v, out, seen)
    return out


def _is_float(x) -> bool:
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.complexfloating)
    return x.is_floating_point() or x.is_complex()


def count_tensors(*roots, fixed: Mapping | None = None) -> dict[str, int]:
    """{params, params_stored, params_nnz, index, fixed, fixed_mismatch} of the tensors of ``roots``.
    ``fixed``: {tensor id: reference table}; a tensor equal to its reference is counted as fixed."""
    fixed = fixed or {}
    out = {"params": 0, "params_stored": 0, "params_nnz": 0, "index": 0, "fixed": 0, "fixed_mismatch": 0}
    storages = set()
    for x in stored_tensors(*roots):
        n = int(x.size) if isinstance(x, np.ndarray) else x.numel()
        if not _is_float(x):
            out["index"] += n
            continue
        if id(x) in fixed:
            ref = fixed[id(x)]
            same = tuple(ref.shape) == tuple(x.shape) and torch.equal(torch.as_tensor(x).detach().cpu().double(),
                                                                       ref.double())
            if same:
                out["fixed"] += n
                continue
            out["fixed_mismatch"] += n
        out["params"] += n
        t = torch.as_tensor(x)
        out["params_nnz"] += int(torch.count_nonzero(t.detach()))
        key = (t.untyped_storage().data_ptr(), t.dtype) if isinstance(x, torch.Tensor) else id(x)
        if key not in storages:
            storages.add(key)
            out["params_stored"] += (t.untyped_storage().nbytes() // t.element_size()
                                     if isinstance(x, torch.Tensor) else n)
    return out


def trace(con, tokens) -> dict[str, int]:
    """{layers, width}: the mixer layers applied while the runner runs ``con``'s program on ONE sequence (N,)
    or (1, N), and the widest stream they read. Counted by global forward hooks on every ``MixerLayer``
    call (outermost calls only), so a layer applied beside the listed ones is counted too; at least the
    runner's own record (``len(program)``)."""
    x = con.check_tokens(tokens)
    if x.shape[0] != 1:
        raise ValueError(f"tokens: trace takes one sequence, got a batch of {x.shape[0]}")
    listed: list[int] = []
    seen: list[int] = []
    depth = [0]

    def pre(module, args):
        if isinstance(module, MixerLayer):
            if depth[0] == 0 and args and isinstance(args[0], torch.Tensor):
                seen.append(int(args[0].shape[-1]))
            depth[0] += 1

    def post(module, args, output):
        if isinstance(module, MixerLayer):
            depth[0] -= 1

    h1 = register_module_forward_pre_hook(pre)
    h2 = register_module_forward_hook(post)
    try:
        with torch.no_grad():
            run_layers(con.program(x), con.encode(x), listed, keep=False)
    finally:
        h1.remove()
        h2.remove()
    widths = seen if len(seen) >= len(listed) else listed
    return {"layers": len(widths), "width": max(widths, default=0)}


def measure_sizes(con, tokens) -> dict[str, int]:
    """Every size of the module docstring, for the construction ``con`` and the instances ``tokens``
    (B, N): an input-dependent construction is measured on the instance whose program is largest, the
    others on the first one (their program does not depend on it). The program runs once under the
    operator trace (``observe.observe_program``): ``layers``, ``width``, ``created``, ``scalars``,
    ``structure`` and the locality verdict come from it, and a number that enters the computation without
    being among the counted tensors raises ``observe.MeasurementError``.

    ``params`` = ``values`` + ``index`` + ``created`` + ``scalars``: every number the computation uses
    apart from the fixed token tables (``fixed``, reported apart) and the layers' structure."""
    from .observe import observe_program

    x = con.check_tokens(tokens)
    pick, prog = 0, con.program(x[:1])
    if con.input_dependent:  # the largest program: most stored numbers
        progs = [con.program(x[i : i + 1]) for i in range(x.shape[0])]
        sizes = [count_tensors(p_)["params"] for p_ in progs]
        pick = max(range(len(progs)), key=lambda i: sizes[i])
        prog = progs[pick]
    fixed = {}
    for name, ref in type(con).fixed_tables(con.vocab_size, con.seq_len).items():
        held = getattr(con, name, None)
        if isinstance(held, torch.Tensor):
            fixed[id(held)] = ref
    out = count_tensors(con, prog, fixed=fixed)
    out["values"] = out.pop("params")
    if con.input_dependent and hasattr(prog, "distances"):
        out["t_filters"] = len(prog.distances)
    declared = {f"tensor {i}": t for i, t in enumerate(stored_tensors(con, prog)) if isinstance(t, torch.Tensor)}
    obs = observe_program(con, x[pick : pick + 1], prog, declared)
    out.update({k: obs[k] for k in ("created", "scalars", "structure", "layers", "width", "position_wise",
                                    "locality_message")})
    out["params"] = out["values"] + out["index"] + out["created"] + out["scalars"]
    return out


def position_wise_violations(con, tokens, positions: int = 3, seed: int = 0) -> list[str]:
    """Where ``encode`` or ``decode`` is not position-wise on one sequence of ``tokens``: for a few positions
    j, change token j (encode) or add large noise to row j of the final stream (decode) and list every
    position i != j whose output changed. Empty when both are position-wise."""
    x = con.check_tokens(tokens)[:1]
    n = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    js = torch.randperm(n, generator=gen)[: min(positions, n)].tolist()
    bad = []
    with torch.no_grad():
        u = con.encode(x)
        final = run_layers(con.program(x), u, keep=False)[-1]
        ans = con.decode(final)
        for j in js:
            y = x.clone()
            y[0, j] = (y[0, j] + 1 + int(torch.randint(con.vocab_size - 1, (1,), generator=gen))) % con.vocab_size
            changed = (con.encode(y) != u).flatten(2).any(-1)[0]  # (n',)
            changed[j] = False
            if changed.any():
                bad.append(f"encode: token {j} changed rows {changed.nonzero().flatten().tolist()[:5]}")
            v = final.clone()
            v[0, j] += 1e3 * torch.randn(v.shape[-1], generator=gen).to(v)
            moved = con.decode(v)[0] != ans[0]
            moved[j] = False
            if moved.any():
                bad.append(f"decode: row {j} changed answers {moved.nonzero().flatten().tolist()[:5]}")
    return bad
