"""``compile_to_baseconv(circuit, layout)``: an arithmetic circuit as a stack of ``BaseConv`` layers
(Thm 4.2 of Zoology, arXiv 2312.04927, `thm: gen-ac`; gate layers of App. H `sec: primitives`).

Every layer is eq. (1), y = (u W + b1) ⊙ (h ∗ u + b2), channel by channel:
y[i, q] = (Σ_p u[i, p] W[p, q] + b1[i, q]) · ((h ∗ u)[i, q] + b2[i, q]). With h = 0 and b2 = 1 a layer
is the linear map uW + b1; with one tap h[0, q] = 1 and b2[:, q] = 0, channel q becomes
(Σ_p u[p] W[p, q] + b1[q]) · u[q], a product of a routed value with the value already in q.
Every channel is programmed on its own, so one layer runs any number of gates in parallel:

* keep channel q: W[q, q] = 1, b2[q] = 1;
* add gate into a fresh channel c: W[c_a, c] = W[c_b, c] = 1 (a linear layer);
* constant r into c: b1[c] = r (with b2 = 1); a gate of the same layer that reads this constant
  gets r through its own b1 instead of through W;
* multiply gate a·b into c: a linear layer copies a into c (W[c_a, c] = 1), then a product layer
  multiplies it by b (W[c_b, c] = 1, h[0, c] = 1, b2[c] = b1[c] = 0).

Every layer is stored as the one sparse BaseConv layer ``constructions.layers.SparseBaseConv``
(``stack.make_layer``); the counts below are of its dense form ``dense()``, whose parameters per layer
are D² + 2N'D + LD for inner shape (N', D) and L filter taps.

Layouts (N×d input, s gates, depth Δ, Δ' = max(Δ, 1)):

``"sequential"`` (the formalization's gate-by-gate compiler): one token (N' = 1, read-in
"flatten"), one fresh channel per non-input gate, so D = N·d + (s − #inputs); gates in topological
order, one layer per add or constant gate and two per multiply gate:
    layers = max(1, #add + #const + 2·#mul) <= 2s,   parameters = layers · (D² + 3D)   (L = 1).

``"levels"``: one token, two layers per level ℓ = 1..Δ' (layer 1: adds, constants at ℓ = 1, copies of
the first factor of each multiply; layer 2: the products; everything else kept). Channels are
reused: the value of gate g holds a channel while it is live (level(g) <= ℓ <= last(g), see
``circuit``), constants from level 1 on, the N·d input channels of the read-in from the start. A
greedy allocator (lowest free channel) needs exactly
    D = max(N·d, max_{1<=ℓ<=Δ'} live_ℓ) <= max(N·d, w) <= N·d + s,
    layers = 2Δ',   parameters = 2Δ' · (D² + 3D),
with live_ℓ the number of gates live at ℓ (outputs live to Δ'). The operands of level-ℓ gates are
live at ℓ, so no new value overwrites them within the level.

``"preserving"``: keeps the N×d layout: inner shape (N, D), read-in "pad" (zero-pad into the corner),
every layer cyclic with a long filter (L = N); outputs come back in the N×d corner, output k at
(k // d, k % d) (so num_outputs <= N·d). Layers:
    read-in 2: a linear layer copies column j to every feature block i·d + j, then one cyclic layer
      shifts block i up by i (impulse at (−i) mod N) with the row mask b1[0] = 1, so row 0 holds
      u flattened (feature i·d + j = u[i, j]) and every other row is 0;
    2Δ' level layers as in "levels" on row 0 (constants in b1 of row 0 only, so the zero rows
      stay zero);
    read-out 3: a linear layer moves output k to feature k, a cyclic layer shifts feature f down by
      f // d (impulse at f // d), a linear layer sums the blocks back into column f % d.
    D = the "levels" width (>= N·d),   layers = 2Δ' + 5,   parameters = (2Δ' + 5) · (D² + 3N·D).
A causal stack cannot do this: its row 0 depends on input row 0 only, so a circuit whose first
output reads a later row has no causal layout-preserving simulation (``causal_limit_witness``).

The read-out of the one-token layouts gathers the output channels of row 0.
"""

from __future__ import annotations

import torch

from .circuit import ArithmeticCircuit
from .stack import BaseConvStack, make_layer

__all__ = ["compile_to_baseconv", "LAYOUTS", "predicted_sizes", "level_plan"]

LAYOUTS = ("levels", "sequential", "preserving")
F64 = torch.float64


def _check_circuit(circuit) -> None:
    if not isinstance(circuit, ArithmeticCircuit):
        raise ValueError(f"circuit: must be an ArithmeticCircuit, got {type(circuit).__name__}")


def level_plan(circuit: ArithmeticCircuit) -> tuple[int, list[int], dict[int, int]]:
    """(D, live counts for ℓ = 1..Δ', channel of every materialised gate) of the level layouts."""
    _check_circuit(circuit)
    N, d = circuit.num_rows, circuit.num_cols
    depth = max(circuit.depth, 1)
    outs = set(circuit.outputs)
    last = [depth if k in outs else circuit.last[k] for k in range(circuit.size)]
    create = [1 if g[0] == "const" else circuit.level[k] for k, g in enumerate(circuit.gates)]
    chan: dict[int, int] = {k: g[1] * d + g[2] for k, g in enumerate(circuit.gates) if g[0] == "input"}
    occupied = {chan[k]: k for k in chan}
    width = N * d
    live = []
    for ell in range(1, depth + 1):
        for c, k in list(occupied.items()):
            if last[k] < ell:
                del occupied[c]
        free = sorted(set(range(width)) - set(occupied))
        new = [k for k in circuit.order if create[k] == ell and last[k] >= ell and circuit.gates[k][0] != "input"]
        for k in new:
            if free:
                c = free.pop(0)
            else:
                c, width = width, width + 1
            chan[k] = c
            occupied[c] = k
        live.append(len(occupied))
    return width, live, chan


def predicted_sizes(circuit: ArithmeticCircuit, layout: str) -> dict[str, int]:
    """The module docstring's formulas: num_layers, width D, seq_len N' and num_parameters."""
    _check_circuit(circuit)
    N, d = circuit.num_rows, circuit.num_cols
    c = circuit.counts()
    if layout == "sequential":
        D = N * d + circuit.size - c["input"]
        layers = max(1, c["add"] + c["const"] + 2 * c["mul"])
        return {"num_layers": layers, "width": D, "seq_len": 1, "num_parameters": layers * (D * D + 3 * D)}
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: must be one of {LAYOUTS}")
    D = max([N * d] + _live_from_circuit(circuit))
    dp = max(circuit.depth, 1)
    if layout == "levels":
        return {"num_layers": 2 * dp, "width": D, "seq_len": 1, "num_parameters": 2 * dp * (D * D + 3 * D)}
    layers = 2 * dp + 5
    return {"num_layers": layers, "width": D, "seq_len": N, "num_parameters": layers * (D * D + 3 * N * D)}


def _live_from_circuit(circuit: ArithmeticCircuit) -> list[int]:
    """live_ℓ for ℓ = 1..Δ' straight from the definition (outputs live to Δ'); independent of the allocator."""
    depth = max(circuit.depth, 1)
    outs = set(circuit.outputs)
    counts = [0] * (depth + 1)
    for k in range(circuit.size):
        last = depth if k in outs else circuit.last[k]
        for ell in range(max(circuit.level[k], 1), last + 1):
            counts[ell] += 1
    return counts[1:]


def _keep(W, b2, q):
    W[q, q] = 1.0
    b2[..., q] = 1.0


def _level_layers(circuit, chan, D, n, row_mask):
    """The 2Δ' level layers on an (n, D) state whose row 0 holds the values; returns (W, b1, b2, h) lists."""
    depth = max(circuit.depth, 1)
    outs = set(circuit.outputs)
    last = [depth if k in outs else circuit.last[k] for k in range(circuit.size)]
    create = [1 if g[0] == "const" else circuit.level[k] for k, g in enumerate(circuit.gates)]
    out = []
    for ell in range(1, depth + 1):
        kept = [k for k in chan if create[k] < ell and last[k] >= ell]
        new = [k for k in chan if create[k] == ell and circuit.gates[k][0] != "input"]
        W1, b11, b21 = torch.zeros(D, D, dtype=F64), torch.zeros(n, D, dtype=F64), torch.zeros(n, D, dtype=F64)
        W2, b12, b22 = torch.zeros(D, D, dtype=F64), torch.zeros(n, D, dtype=F64), torch.zeros(n, D, dtype=F64)
        h1, h2 = torch.zeros(1, D, dtype=F64), torch.zeros(1, D, dtype=F64)
        b21[:] = 1.0  # layer 1 is linear: h = 0, b2 = 1
        for k in kept:
            W1[chan[k], chan[k]] = 1.0
            _keep(W2, b22, chan[k])
        def route(a, c, ell=ell, W1=W1, b11=b11):  # operand a into channel c of layer 1 (a constant born
            if create[a] == ell:  # in this layer comes through b1)
                b11[:, c] += circuit.gates[a][1] * row_mask
            else:
                W1[chan[a], c] += 1.0

        for k in new:
            g, c = circuit.gates[k], chan[k]
            if g[0] == "const":
                b11[:, c] += g[1] * row_mask
                _keep(W2, b22, c)
            elif g[0] == "add":
                route(g[1], c)
                route(g[2], c)
                _keep(W2, b22, c)
            else:  # mul: copy a, then multiply by b (read in layer 2, after layer 1 wrote it)
                route(g[1], c)
                W2[chan[g[2]], c] = 1.0
                h2[0, c] = 1.0
        out += [(W1, b11, b21, h1), (W2, b12, b22, h2)]
    return out


def _sequential(circuit: ArithmeticCircuit) -> BaseConvStack:
    N, d = circuit.num_rows, circuit.num_cols
    chan = {k: g[1] * d + g[2] for k, g in enumerate(circuit.gates) if g[0] == "input"}
    nxt = N * d
    for k in circuit.order:
        if k not in chan:
            chan[k], nxt = nxt, nxt + 1
    D = nxt
    eye = torch.eye(D, dtype=F64)
    zeros, ones = torch.zeros(1, D, dtype=F64), torch.ones(1, D, dtype=F64)
    specs = []
    for k in circuit.order:
        g, c = circuit.gates[k], chan[k]
        if g[0] == "input":
            continue
        W = eye.clone()
        W[:, c] = 0.0
        if g[0] == "const":
            b1 = zeros.clone()
            b1[0, c] = g[1]
            specs.append((W, b1, ones, zeros))
        elif g[0] == "add":
            W[chan[g[1]], c] += 1.0
            W[chan[g[2]], c] += 1.0
            specs.append((W, zeros, ones, zeros))
        else:
            W[chan[g[1]], c] = 1.0
            specs.append((W, zeros, ones, zeros))
            W2, b2, h = eye.clone(), ones.clone(), zeros.clone()
            W2[:, c] = 0.0
            W2[chan[g[2]], c] = 1.0
            b2[0, c], h[0, c] = 0.0, 1.0
            specs.append((W2, zeros, b2, h))
    if not specs:  # a circuit of inputs only: one identity layer
        specs.append((eye, zeros, ones, zeros))
    layers = [make_layer(*s) for s in specs]
    return BaseConvStack(layers, N, d, read_in="flatten", out_index=[chan[o] for o in circuit.outputs],
                         note="sequential")


def _levels(circuit: ArithmeticCircuit) -> BaseConvStack:
    N, d = circuit.num_rows, circuit.num_cols
    D, _, chan = level_plan(circuit)
    specs = _level_layers(circuit, chan, D, 1, torch.ones(1, dtype=F64))
    layers = [make_layer(*s) for s in specs]
    return BaseConvStack(layers, N, d, read_in="flatten", out_index=[chan[o] for o in circuit.outputs],
                         note="levels")


def _preserving(circuit: ArithmeticCircuit) -> BaseConvStack:
    N, d = circuit.num_rows, circuit.num_cols
    nd = N * d
    if circuit.num_outputs > nd:
        raise ValueError(f"circuit: has {circuit.num_outputs} outputs; the layout-preserving compiler writes "
                         f"them into the {N}×{d} input shape, so at most N·d = {nd}")
    D, _, chan = level_plan(circuit)
    z = lambda *s: torch.zeros(*s, dtype=F64)  # noqa: E731
    f = torch.arange(nd)
    row0 = torch.zeros(N, dtype=F64)
    row0[0] = 1.0
    specs = []
    # read-in 1: column j -> every block i·d + j (linear)
    W = z(D, D)
    W[f % d, f] = 1.0
    specs.append((W, z(N, D), torch.ones(N, D, dtype=F64), z(N, D)))
    # read-in 2: block i shifted up by i (cyclic impulse at (-i) mod N), row mask on row 0
    h, b1 = z(N, D), z(N, D)
    h[(-(f // d)) % N, f] = 1.0
    b1[0, :nd] = 1.0
    specs.append((z(D, D), b1, z(N, D), h))
    # levels, on row 0 (filters padded to N taps: every layer has a long cyclic filter)
    for W, b1, b2, h in _level_layers(circuit, chan, D, N, row0):
        hl = z(N, D)
        hl[:1] = h
        specs.append((W, b1, b2, hl))
    # read-out 1: output k -> feature k (linear)
    W = z(D, D)
    for k, o in enumerate(circuit.outputs):
        W[chan[o], k] = 1.0
    specs.append((W, z(N, D), torch.ones(N, D, dtype=F64), z(N, D)))
    # read-out 2: feature f down by f // d (cyclic impulse at f // d)
    h = z(N, D)
    h[f // d, f] = 1.0
    specs.append((z(D, D), torch.ones(N, D, dtype=F64), z(N, D), h))
    # read-out 3: blocks summed into column f % d (linear)
    W = z(D, D)
    W[f, f % d] = 1.0
    specs.append((W, z(N, D), torch.ones(N, D, dtype=F64), z(N, D)))
    layers = [make_layer(*s, cyclic=True) for s in specs]
    out_index = [(k // d) * D + k % d for k in range(circuit.num_outputs)]
    return BaseConvStack(layers, N, d, read_in="pad", out_index=out_index, note="preserving")


def compile_to_baseconv(circuit: ArithmeticCircuit, layout: str = "levels") -> BaseConvStack:
    """A ``BaseConvStack`` whose ``evaluate(u)`` (B, N, d) -> (B, num_outputs) equals
    ``circuit.evaluate(u)`` (float64); ``layout`` in ("levels", "sequential", "preserving"), see the
    module docstring for the construction and its counts (``predicted_sizes``)."""
    _check_circuit(circuit)
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: must be one of {LAYOUTS}")
    return {"levels": _levels, "sequential": _sequential, "preserving": _preserving}[layout](circuit)
