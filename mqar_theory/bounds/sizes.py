"""Sizes measured from a built construction, never declared: stored numbers by counting tensors,
layers and width by tracing a forward pass.

* ``params``: numel of every ``nn.Parameter`` (dense count of what is stored: a sparse weight
  counts its stored values). For ``baseconv_input_dependent`` the filters and row mask are written
  per input by ``program``: ``params`` is then the numel of the largest program's tensors plus the
  module's own parameters, the count Thm 4.5 (arXiv 2312.04927) speaks about (t filters of size N×c),
  and ``params_stored`` what that program really holds in memory (its impulses are (t, N, 1) tensors
  expanded over c). For every other construction ``params_stored`` = ``params``.
* ``params_nnz``: nonzero entries among them (zeros the layer shapes force, e.g. W_Q¹ = 0 of Prop H.27).
* ``index``: entries of integer buffers (the positions of sparsely stored weights), stated apart.
* ``fixed``: entries of floating-point buffers (token code tables).
* ``layers``: mixer layers applied while predicting one sequence (``constructions.base.trace_layers``);
  ``width``: the widest stream a traced layer reads.
* ``t_filters``: for constructions with ``program``, the filters per bank of the largest program.

The bounds read ``params``, ``layers`` and ``width``.
"""

from __future__ import annotations

import torch

from ..constructions.base import trace_layers

__all__ = ["count_tensors", "trace", "measure_sizes"]


def count_tensors(module: torch.nn.Module) -> dict[str, int]:
    """{params, params_nnz, index, fixed} of a module's stored tensors (see the module docstring)."""
    params = list(module.parameters())
    bufs = list(module.buffers())
    return {
        "params": sum(p.numel() for p in params),
        "params_nnz": sum(int(torch.count_nonzero(p)) for p in params),
        "index": sum(b.numel() for b in bufs if not (b.is_floating_point() or b.is_complex())),
        "fixed": sum(b.numel() for b in bufs if b.is_floating_point() or b.is_complex()),
    }


def trace(con, tokens) -> dict[str, int]:
    """{layers, width}: the mixer layers ``con.predict(tokens)`` applies to ONE sequence (N,) or (1, N)
    and the widest stream they read."""
    x = torch.as_tensor(tokens)
    x = x[None] if x.dim() == 1 else x
    if x.shape[0] != 1:
        raise ValueError(f"tokens: trace takes one sequence, got a batch of {x.shape[0]}")
    with torch.no_grad(), trace_layers() as calls:
        con.predict(x)
    return {"layers": len(calls), "width": max(calls, default=0)}


def measure_sizes(con, tokens) -> dict[str, int]:
    """Every size of the module docstring, for the construction ``con`` and the instances ``tokens``
    (B, N): layers and width are traced on the instance whose program is largest (for constructions
    with ``program``) or on the first one."""
    x = torch.as_tensor(tokens)
    x = x[None] if x.dim() == 1 else x
    out = count_tensors(con)
    out["params_stored"] = out["params"]
    pick = 0
    if hasattr(con, "program"):
        progs = [con.program(x[i]) for i in range(x.shape[0])]
        pick = max(range(len(progs)), key=lambda i: progs[i].t)
        prog = progs[pick]
        out["params"] = prog.num_parameters  # includes the module's projections (prog.proj)
        out["params_stored"] = prog.stored_numbers
        out["params_nnz"] = sum(int(torch.count_nonzero(v)) for v in
                                (prog.h_key, prog.h_value, prog.row_mask, *prog.proj.values()))
        out["t_filters"] = prog.t
    out.update(trace(con, x[pick : pick + 1]))
    return out
