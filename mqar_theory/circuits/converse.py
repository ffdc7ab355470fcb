"""``circuit_of(stack)``: the converse of Thm 4.2 (Zoology, arXiv 2312.04927): any stack of BaseConv
layers is an arithmetic circuit computing the same function.

Each layer is eq. (1) written out entry by entry: for every row i and channel q,

    y[i, q] = (Σ_p W[p, q]·x[i, p] + b1[i, q]) · (Σ_k h[k, q]·x[i − k, q] + b2[i, q])

(i − k taken mod N' for a cyclic layer, terms with i − k < 0 dropped for a causal one; only the
min(L, N') taps that can reach the input exist). Every stored number used becomes one constant gate
(per layer, shared by all rows); a coefficient 1 multiplies nothing and a term whose coefficient or
value is exactly 0 is dropped (so sparse weights give small circuits; the function is unchanged,
up to 0·inf, which we do not model); each sum is a balanced tree of adds.

Counts for *generic* weights (every stored number nonzero, not 1, all distinct; e.g. random floats) on
inner shape (N', D), L layers, T = min(L_filter, N') taps, t_i = min(i + 1, T) causal or T cyclic:

    size = N'D (inputs) + Σ_layers [D² + T·D + 2N'D (constants) + N'D·(2D + 1) + 2D·Σ_i t_i]
    (per entry: D + t_i coefficient products, D + t_i adds, 1 product),
    depth <= Σ_layers (2 + ⌈log2(max(D, T) + 1)⌉)   (a product, a tree over <= max(D, T) + 1 leaves, a product).

So an L-layer stack of dense (N', D) BaseConvs is a circuit of size O(L·N'·D·(D + N')) (the cost of
evaluating eq. (1) directly) and depth O(L·log(N'D)): the "comparable size and depth" of the
converse, in the reading ``check_claims`` tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..constructions.layers import SparseBaseConv
from ..mixers.baseconv import BaseConv
from .circuit import ArithmeticCircuit
from .stack import BaseConvStack, as_layer, check_layers

__all__ = ["circuit_of", "converse_sizes"]


class _Builder:
    def __init__(self):
        self.gates: list[tuple] = []
        self.consts: dict[float, int] = {}

    def add_gate(self, g) -> int:
        self.gates.append(g)
        return len(self.gates) - 1

    def const(self, r: float) -> int:
        if r not in self.consts:
            self.consts[r] = self.add_gate(("const", r))
        return self.consts[r]

    def term(self, coef: float, x):
        if coef == 0.0 or x is None:
            return None
        return x if coef == 1.0 else self.add_gate(("mul", self.const(coef), x))

    def total(self, leaves):
        leaves = [x for x in leaves if x is not None]
        if not leaves:
            return None
        while len(leaves) > 1:
            nxt = [self.add_gate(("add", leaves[k], leaves[k + 1])) for k in range(0, len(leaves) - 1, 2)]
            if len(leaves) % 2:
                nxt.append(leaves[-1])
            leaves = nxt
        return leaves[0]


def _layers_of(stack) -> list[SparseBaseConv]:
    if isinstance(stack, BaseConvStack):
        return check_layers(stack.layers, "stack")
    layers = list(stack)
    for k, layer in enumerate(layers):
        if not isinstance(layer, (SparseBaseConv, BaseConv)):
            raise ValueError(f"stack[{k}]: must be a SparseBaseConv or a mixers.BaseConv, got {type(layer).__name__}")
    return check_layers([as_layer(layer) for layer in layers], "stack")


def circuit_of(stack: BaseConvStack | Sequence[SparseBaseConv | BaseConv]) -> ArithmeticCircuit:
    """The circuit of a ``BaseConvStack`` (input num_rows × num_cols through its read-in, outputs its
    read-out, in order) or of a list of layers of one inner shape (N', D) (``SparseBaseConv``, or trained
    ``mixers.BaseConv`` layers, stored with ``stack.as_layer``; input (N', D), outputs every entry of the
    last layer's output, row-major). The gates are read from each layer's dense form ``dense()``. See the
    module docstring."""
    layers = _layers_of(stack)
    n, D = layers[0].N, layers[0].d_in
    b = _Builder()
    if isinstance(stack, BaseConvStack):
        R, C = stack.num_rows, stack.num_cols
        x = [[None] * D for _ in range(n)]
        for i in range(R):
            for j in range(C):
                g = b.add_gate(("input", i, j))
                if stack.read_in == "flatten":
                    x[0][i * C + j] = g
                else:
                    x[i][j] = g
    else:
        R, C = n, D
        x = [[b.add_gate(("input", i, q)) for q in range(D)] for i in range(n)]
    for layer in layers:
        b.consts = {}  # constants are per layer
        W, b1, b2, h = (t.detach().to("cpu", torch.float64).tolist() for t in layer.dense())
        T = min(len(h), n)
        y = [[None] * D for _ in range(n)]
        for i in range(n):
            row = x[i]
            live = [p for p in range(D) if row[p] is not None]
            for q in range(D):
                lin = b.total([b.term(W[p][q], row[p]) for p in live]
                              + [b.const(b1[i][q]) if b1[i][q] != 0.0 else None])
                if lin is None:
                    continue
                taps = ([(k, (i - k) % n) for k in range(T)] if layer.cyclic
                        else [(k, i - k) for k in range(min(T, i + 1))])
                conv_leaves = [b.term(h[k][q], x[r][q]) for k, r in taps]
                conv_leaves.append(b.const(b2[i][q]) if b2[i][q] != 0.0 else None)
                conv = b.total(conv_leaves)
                if conv is None:
                    continue
                y[i][q] = b.add_gate(("mul", lin, conv))
        x = y
    zero = None
    if isinstance(stack, BaseConvStack) and stack.out_index is not None:
        flat = [(p // D, p % D) for p in stack.out_index]
    elif isinstance(stack, BaseConvStack):
        flat = [(i, j) for i in range(stack.num_rows) for j in range(stack.num_cols)]
    else:
        flat = [(i, q) for i in range(n) for q in range(D)]
    outputs = []
    for i, q in flat:
        if x[i][q] is None:
            if zero is None:
                zero = b.add_gate(("const", 0.0))
            outputs.append(zero)
        else:
            outputs.append(x[i][q])
    return ArithmeticCircuit(R, C, b.gates, outputs)


def converse_sizes(layers: BaseConvStack | Sequence[SparseBaseConv | BaseConv]) -> dict[str, int]:
    """Size (exact for generic weights) and the depth bound of the module docstring, for a list of layers
    (T from the filter length L of each layer's dense form)."""
    layers = _layers_of(layers)
    n, D = layers[0].N, layers[0].d_in
    size, depth = n * D, 0
    for layer in layers:
        T = min(layer.filter_len, n)
        t = [T if layer.cyclic else min(i + 1, T) for i in range(n)]
        size += D * D + T * D + 2 * n * D + n * D * (2 * D + 1) + 2 * D * sum(t)
        depth += 2 + math.ceil(math.log2(max(D, T) + 1))
    return {"size": size, "depth_bound": depth}
