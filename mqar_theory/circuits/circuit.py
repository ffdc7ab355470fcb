"""Arithmetic circuits over an input matrix u ∈ R^{N×d} (Zoology, arXiv 2312.04927, App. H
`sec: arithmetic`, the circuits of Thm 4.2).

A circuit is a DAG of gates, each one of

* ``("input", i, j)``: the entry u[i, j] (at most one input gate per entry);
* ``("const", r)``: the real number r;
* ``("add", a, b)``: gate a + gate b;
* ``("mul", a, b)``: gate a · gate b,

where a, b index the gate list, plus a non-empty list of output gates. Gates may be listed in any
order; the constructor finds a topological order (``order``) and rejects a cycle.

Sizes (our reading of the appendix's definitions, decided here and tested):

* ``size`` s: the number of gates of every kind (inputs and constants included);
* ``level`` of a gate: 0 for input and constant gates, 1 + max(level of the operands) otherwise;
  ``depth`` Δ: the largest level;
* a gate g is *live* at level ℓ when level(g) <= ℓ <= last(g), where last(g) is Δ for an output and
  the largest level of g's consumers otherwise (level(g) for a gate nobody reads);
  ``width`` w = max over ℓ in [0, Δ] of the number of gates live at ℓ: the values a level-by-level
  evaluation must hold at once (the wires crossing the cut below level ℓ plus the gates of level ℓ).
  So w <= s, and s <= (Δ + 1)·w.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..utils import is_int, is_number

__all__ = ["ArithmeticCircuit", "random_circuit", "GATE_KINDS"]

GATE_KINDS = ("input", "const", "add", "mul")


class ArithmeticCircuit:
    """``ArithmeticCircuit(num_rows, num_cols, gates, outputs)``: see the module docstring.

    ``evaluate(u)``: u (B, N, d) or (N, d) -> (B, num_outputs) (or (num_outputs,)), gate by gate in
    topological order, in u's dtype (float64 is exact up to rounding of the same operations).
    """

    def __init__(self, num_rows: int, num_cols: int, gates: Sequence, outputs: Sequence[int]):
        if not (is_int(num_rows) and num_rows >= 1):
            raise ValueError(f"num_rows={num_rows!r}: must be an integer >= 1")
        if not (is_int(num_cols) and num_cols >= 1):
            raise ValueError(f"num_cols={num_cols!r}: must be an integer >= 1")
        self.num_rows, self.num_cols = int(num_rows), int(num_cols)
        self.gates = [self._check_gate(k, g, len(gates)) for k, g in enumerate(gates)]
        if not self.gates:
            raise ValueError("gates: must not be empty")
        outputs = list(outputs) if not isinstance(outputs, (str, bytes)) else outputs
        if not isinstance(outputs, list) or not outputs:
            raise ValueError("outputs: must be a non-empty list of gate indices")
        for k, o in enumerate(outputs):
            if not (is_int(o) and 0 <= o < len(self.gates)):
                raise ValueError(f"outputs[{k}]={o!r}: must be a gate index in [0, {len(self.gates)})")
        self.outputs = [int(o) for o in outputs]
        seen = {}
        for k, g in enumerate(self.gates):
            if g[0] == "input":
                if g[1:] in seen:
                    raise ValueError(f"gates[{k}]: input {g[1:]} duplicates gates[{seen[g[1:]]}]")
                seen[g[1:]] = k
        self.order = self._topological_order()
        self.level = [0] * len(self.gates)
        for k in self.order:
            g = self.gates[k]
            if g[0] in ("add", "mul"):
                self.level[k] = 1 + max(self.level[g[1]], self.level[g[2]])
        self.depth = max(self.level)
        self.consumers = [[] for _ in self.gates]
        for k, g in enumerate(self.gates):
            if g[0] in ("add", "mul"):
                self.consumers[g[1]].append(k)
                if g[2] != g[1]:
                    self.consumers[g[2]].append(k)
        outs = set(self.outputs)
        self.last = [self.depth if k in outs else max([self.level[c] for c in self.consumers[k]], default=self.level[k])
                     for k in range(len(self.gates))]

    def _check_gate(self, k: int, g, n: int) -> tuple:
        if not isinstance(g, (tuple, list)) or not g:
            raise ValueError(f"gates[{k}]={g!r}: must be a tuple (kind, ...)")
        kind = g[0]
        if kind not in GATE_KINDS:
            raise ValueError(f"gates[{k}]: unknown gate kind {kind!r}; must be one of {GATE_KINDS}")
        if kind == "input":
            if len(g) != 3 or not (is_int(g[1]) and is_int(g[2])):
                raise ValueError(f"gates[{k}]={g!r}: an input gate is ('input', i, j) with integers i, j")
            if not (0 <= g[1] < self.num_rows and 0 <= g[2] < self.num_cols):
                raise ValueError(f"gates[{k}]: reads a missing input u[{g[1]}, {g[2]}] of a "
                                 f"{self.num_rows}×{self.num_cols} input")
            return ("input", int(g[1]), int(g[2]))
        if kind == "const":
            if len(g) != 2 or not is_number(g[1]) or not np.isfinite(float(g[1])):
                raise ValueError(f"gates[{k}]={g!r}: a constant gate is ('const', r) with a finite real r")
            return ("const", float(g[1]))
        if len(g) != 3:
            raise ValueError(f"gates[{k}]={g!r}: an {kind} gate is ({kind!r}, a, b) with gate indices a, b")
        for a in g[1:]:
            if not (is_int(a) and 0 <= a < n):
                raise ValueError(f"gates[{k}]: reads a missing gate {a!r} (gate indices are in [0, {n}))")
            if a == k:
                raise ValueError(f"gates[{k}]: reads itself (a cycle)")
        return (kind, int(g[1]), int(g[2]))

    def _topological_order(self) -> list[int]:
        n = len(self.gates)
        state = [0] * n  # 0 new, 1 on the stack, 2 done
        order: list[int] = []
        for root in range(n):
            if state[root]:
                continue
            stack = [(root, 0)]
            while stack:
                k, i = stack.pop()
                g = self.gates[k]
                ops = list(g[1:]) if g[0] in ("add", "mul") else []
                if i == 0:
                    state[k] = 1
                if i < len(ops):
                    stack.append((k, i + 1))
                    a = ops[i]
                    if state[a] == 1:
                        raise ValueError(f"gates[{a}]: lies on a cycle (through gates[{k}])")
                    if state[a] == 0:
                        stack.append((a, 0))
                else:
                    state[k] = 2
                    order.append(k)
        return order

    # sizes ------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.gates)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    @property
    def num_inputs(self) -> int:
        return sum(g[0] == "input" for g in self.gates)

    def live_counts(self) -> list[int]:
        """Number of gates live at each level ℓ = 0..Δ (module docstring)."""
        counts = [0] * (self.depth + 1)
        for k in range(self.size):
            for ell in range(self.level[k], self.last[k] + 1):
                counts[ell] += 1
        return counts

    @property
    def width(self) -> int:
        return max(self.live_counts())

    def counts(self) -> dict[str, int]:
        """Gates per kind."""
        return {kind: sum(g[0] == kind for g in self.gates) for kind in GATE_KINDS}

    # evaluation -------------------------------------------------------------------------------
    def evaluate(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, N, d) -> (B, num_outputs); an unbatched (N, d) gives (num_outputs,)."""
        if not isinstance(u, torch.Tensor) or u.dim() not in (2, 3):
            raise ValueError(f"u: must be a tensor of shape (B, N, d) or (N, d), got {getattr(u, 'shape', type(u))}")
        squeeze = u.dim() == 2
        if squeeze:
            u = u[None]
        if tuple(u.shape[1:]) != (self.num_rows, self.num_cols):
            raise ValueError(f"u: must have shape (B, {self.num_rows}, {self.num_cols}), got {tuple(u.shape)}")
        if not u.dtype.is_floating_point:
            raise ValueError(f"u: must be a floating-point tensor, got dtype {u.dtype}")
        vals: list = [None] * self.size
        for k in self.order:
            g = self.gates[k]
            if g[0] == "input":
                vals[k] = u[:, g[1], g[2]]  # (B,)
            elif g[0] == "const":
                vals[k] = torch.full(u.shape[:1], g[1], dtype=u.dtype, device=u.device)
            elif g[0] == "add":
                vals[k] = vals[g[1]] + vals[g[2]]
            else:
                vals[k] = vals[g[1]] * vals[g[2]]
        y = torch.stack([vals[o] for o in self.outputs], dim=1)  # (B, num_outputs)
        return y[0] if squeeze else y

    def __repr__(self) -> str:
        c = self.counts()
        return (f"ArithmeticCircuit(N={self.num_rows}, d={self.num_cols}, size={self.size}, depth={self.depth}, "
                f"width={self.width}, inputs={c['input']}, consts={c['const']}, adds={c['add']}, "
                f"muls={c['mul']}, outputs={self.num_outputs})")


def random_circuit(num_rows: int, num_cols: int, size: int, depth: int, seed: int = 0,
                   num_outputs: int | None = None, const_range: float = 1.0) -> ArithmeticCircuit:
    """A random circuit with exactly ``size`` gates and depth exactly ``depth``.

    Construction: input gates for min(N·d, ⌈size/4⌉) distinct random entries of u, a few constants
    (uniform in [-const_range, const_range]), then a chain that reaches level ``depth`` (one gate per
    level, its other operand random), then the remaining gates with random kind (add or mul) and
    random operands at levels below ``depth`` (so the depth stays exact). Outputs: the last chain gate
    plus ``num_outputs - 1`` (default: min(4, size) - 1) other random gates. Needs size >= depth + 1.
    Depth 0: input gates (up to N·d) and constants only.
    """
    for name, v, lo in (("num_rows", num_rows, 1), ("num_cols", num_cols, 1), ("size", size, 1), ("depth", depth, 0)):
        if not (is_int(v) and v >= lo):
            raise ValueError(f"{name}={v!r}: must be an integer >= {lo}")
    if size < depth + 1:
        raise ValueError(f"size={size}: a circuit of depth {depth} needs at least depth + 1 = {depth + 1} gates")
    if not is_int(seed):
        raise ValueError(f"seed={seed!r}: must be an integer")
    if not (is_number(const_range) and const_range >= 0):
        raise ValueError(f"const_range={const_range!r}: must be a number >= 0")
    rng = np.random.default_rng(seed)
    nd = num_rows * num_cols
    free = size - depth  # gates not on the chain
    if depth == 0:
        n_in = min(nd, size)
        n_const = size - n_in
    else:
        n_in = max(1, min(nd, -(-size // 4), free))
        n_const = min(free - n_in, max(0, size // 16))
    entries = rng.choice(nd, size=n_in, replace=False)
    gates: list[tuple] = [("input", int(e) // num_cols, int(e) % num_cols) for e in entries]
    gates += [("const", float(rng.uniform(-const_range, const_range))) for _ in range(n_const)]
    level = [0] * len(gates)

    def pick(max_level: int) -> int:
        cand = [k for k, lv in enumerate(level) if lv <= max_level]
        return int(cand[rng.integers(len(cand))])

    chain = len(gates) - 1 if depth == 0 else None
    prev = pick(0)
    for ell in range(1, depth + 1):
        kind = "mul" if rng.random() < 0.5 else "add"
        other = pick(ell - 1)
        gates.append((kind, prev, other) if rng.random() < 0.5 else (kind, other, prev))
        level.append(ell)
        prev = chain = len(gates) - 1
    while len(gates) < size:
        a, b = pick(depth - 1), pick(depth - 1)
        gates.append(("mul" if rng.random() < 0.5 else "add", a, b))
        level.append(1 + max(level[a], level[b]))
    if num_outputs is None:
        num_outputs = min(4, size)
    if not (is_int(num_outputs) and 1 <= num_outputs <= size):
        raise ValueError(f"num_outputs={num_outputs!r}: must be an integer in [1, size={size}]")
    others = [k for k in range(size) if k != chain]
    outputs = [chain] + [int(k) for k in rng.choice(others, size=num_outputs - 1, replace=False)]
    return ArithmeticCircuit(num_rows, num_cols, gates, outputs)
