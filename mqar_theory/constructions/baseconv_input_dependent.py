"""Thm 4.5 of Zoology (arXiv 2312.04927, Thm 4.5 and its proof in App. H):
BaseConv with *input-dependent* long filters solves MQAR in O(1) layers with O(t·N·c) parameters,
t the number of distinct interaction distances of the input.

Encoding. The input is the one-hot u ∈ {0,1}^{n×c} of the tokens x_0 .. x_{n-1} (n <= N). The
stream has G = 2t + 1 blocks of c channels, d = (2t+1)·c (the inner width of ``def: gated-conv``;
u is zero-padded into block 0)::

    block 0          Q: the query one-hot, later the output scores
    blocks 1 .. t    K_g: the key stream, one copy per selected distance s_g
    blocks t+1 .. 2t V_g: the value stream, one copy per selected distance

The filters (programmatic rule). ``interaction_distances`` lists the distances s = i - j >= 1 at
which the token at i occurred before (x_j = x_i, j < i), over key tokens [1, c/2) only: filler 0
and value tokens are never queries (the vocabulary split of Algorithm 1), so their repeats select
nothing. The distance set t = {s_1 < .. < s_t} programs two filter banks, impulse_{s_g} (key shift)
and impulse_{s_g - 1} (value shift), each t filters of size N×c.

The layers (eq. (1): y = (uW + b1) ⊙ (h ∗ u + b2); W written block by block, all other entries 0):

1. **Projections** Linear_Q, Linear_K, Linear_V. W copies block 0 into every block: Q = diag(key)
   into block 0, diag(key) into each K_g, the identity into each V_g (key[q] = 1[1 <= q < c/2]);
   b1 = 0, h = 0, and b2 = 1 except on the K blocks, where b2[j] = m[j]: the *row mask* (below).
   So Q[i] = key one-hot of x_i, K_g[j] = m[j]·(key one-hot of x_j), V_g[j] = one-hot of x_j.
2. **Shift and compare.** W copies Q into every K_g block (the linear branch), h = impulse_{s_g} on
   block K_g (the conv branch: K shifted down by s_g), b1 = b2 = 0 there; V_g passes (W = I, h = 0,
   b2 = 1). Block g now holds A_g[i, q] = Q[i, q]·K[i - s_g, q] (the Hadamard product).
3. **Gate the shifted value.** W maps block g to block V_g with the rank-one map ones·onesᵀ (sum
   over the c channels of A_g, broadcast to c channels): the match indicator
   M_g[i] = ⟨Q[i], K[i - s_g]⟩ = 1[x_i is a key, x_{i-s_g} = x_i, m[i - s_g] = 1]; h = impulse_{s_g-1}
   on V_g, b1 = b2 = 0: C_g[i] = M_g[i]·onehot(x_{i - s_g + 1}), the token after the match.
4. **Linear_sum.** W adds the t blocks V_g into block 0 (h = 0, b2 = 1): scores[i] = Σ_g C_g[i].

``predict`` reads argmax_q scores[i, q] where the largest score exceeds ``THRESHOLD`` = 1/2, and -1
elsewhere (ideal scores are 0 or 1). ``margin`` is min_q |scores[i, q] - 1/2| (ideal 1/2).

Correctness. With the row mask m[j] = 1 iff x_j occurs for the first time (m = 1 - f(x), f the
programmatic selector of eq. (3): f(x)[j] = 1 iff some earlier position holds x_j), the key stream
keeps only first occurrences, so M_g[i] = 1 for at most one g: the one with s_g = i - j*, j* the
first occurrence of the key x_i, and only if s_g is selected. Hence scores[i] = onehot(x_{j*+1}) when
x_i is a key seen before and s_g covers i - j* (the programmatic set always does), and 0 otherwise:
exactly ``expected_answers`` (first-occurrence oracle at key positions, -1 elsewhere). This holds
for *every* sequence, random filler included, not only for consistent dictionaries.

The erratum (proof of Thm 4.5, arXiv 2312.04927 App. H). The appendix sets Linear_K(u) = K "keeping key rows and zeroing
query rows". A query repeats its key token, so its one-hot row equals the key's row and no shared
row-wise W can tell them apart. We decide: a *position mask* on the key projection, the row mask m
above, set like the filters by the programmatic rule from the input (role = first occurrence or
repeat). It sits in b2 of layer 1 because the linear branch carries the projection there, so the
mask must be the other factor of eq. (1) (with h = 0 the conv branch is the constant b2).
``mask_query_rows=False`` builds the printed version (m = 1): a key queried twice, or a filler
repeat of a key before its query, then sums two successors (``test_baseconv_input_dependent``
shows it failing on a named instance). For ``make_mqar`` sequences with filler 0 each key occurs
exactly twice, so both versions agree there: the mask only matters once a key repeats.

Causality. The filters are picked from the whole input, yet the answer at i depends on x_0..x_i
only: channel g reads positions i - s_g (key) and i - s_g + 1 (value), both <= i since s_g >= 1
(distance 0 is refused: a query would match itself and need the future token x_{i+1}: a
selected shift set must exclude 0); m[j] depends on x_0..x_j; and changing tokens after i only adds or
removes channels g whose M_g[i] is 0 unless s_g = i - j*, which depends on x_0..x_i and so stays selected.

Batches (decision). Filters and row masks are chosen **per example**: ``forward`` programs each row
from its own tokens (``program(row)``) and runs it; batch elements may have different distance
sets. (A shared filter bank for a batch would work for the filters, but the row mask is a function
of the example, so each example is its own BaseConv model, as in Thm 4.5.)

Sizes (decision). The model is built with ``max_distances`` = T slots (default N - 1: every
possible distance, so any input fits); an input needing more distinct distances is refused. The
module stores only the input-independent projections as parameters: eight c-vectors (Linear_Q,
Linear_K, Linear_V, layer 2's copy and pass maps, layer 3's sum and broadcast, Linear_sum), so
``num_parameters`` = 8c. The filter banks and the row mask are written per input by ``program``;
``program(x).num_parameters`` is what Thm 4.5 counts for that input, 2·t·N·c + N + 8c with t the
number of filters the program holds (two banks of t filters of size N×c), and
``program(x).stored_numbers`` what is really in memory, 2·t·N + N + 8c: each filter is an impulse
(t, N, 1) expanded across the c channels. The bound check reads the theorem's count, measured as the
numel of the program's tensors, against t·N·c with t the distinct interaction distances of the
input (measured from the tokens by ``bounds``, not taken from the slots T). The constant block biases
(0 or 1 over whole blocks) and the zeros of the block-structured W are structure, not counted.
``num_layers`` = 4 (the traced forward pass applies four layers), ``width`` = (2T+1)·c
(``program(x).width`` = (2t+1)·c, the width the traced forward pass reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..mixers.conv import causal_conv
from ..utils import is_int
from .base import Construction, frozen, mixer_layer
from .primitives import BaseConvParams

__all__ = [
    "baseconv_input_dependent",
    "BaseConvInputDependent",
    "InputDependentProgram",
    "interaction_distances",
    "first_occurrence_mask",
    "THRESHOLD",
]

THRESHOLD = 0.5  # a score above it is a match (ideal scores are 0 or 1)
NUM_LAYERS = 4
PROJECTIONS = ("linear_q", "linear_k", "linear_v", "copy_q", "pass_v", "reduce", "spread", "linear_sum")


def _rows(tokens) -> list[list[int]]:
    t = torch.as_tensor(tokens)
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise ValueError(f"tokens: must have shape (N,) or (B, N), got {tuple(t.shape)}")
    return t.cpu().tolist()


def interaction_distances(tokens, vocab_size: int) -> list[int]:
    """The distance set the programmatic rule selects: sorted distinct s = i - j >= 1 over pairs
    j < i with x_j = x_i a key token (1 <= x < c/2). (N,) or (B, N): the union over rows."""
    half = vocab_size // 2
    dist = set()
    for row in _rows(tokens):
        seen: dict[int, list[int]] = {}
        for i, x in enumerate(row):
            if 1 <= x < half:
                dist.update(i - j for j in seen.get(x, ()))
                seen.setdefault(x, []).append(i)
    return sorted(dist)


def first_occurrence_mask(tokens) -> torch.Tensor:
    """m = 1 - f(x), f the programmatic selector of eq. (3): (B, N) bool, True where x_j occurs for
    the first time (no earlier position holds the same token)."""
    out = []
    for row in _rows(tokens):
        seen: set[int] = set()
        first = []
        for x in row:
            first.append(x not in seen)
            seen.add(x)
        out.append(first)
    return torch.tensor(out, dtype=torch.bool).reshape(len(out), -1)


@dataclass(frozen=True, eq=False)
class InputDependentProgram:
    """The BaseConv model Thm 4.5 builds for one input: its distance set, filter banks and row mask
    (plus the construction's input-independent projections). ``run(u)`` applies the four layers to
    one-hot inputs u (B, n, c) block by block; ``dense_layers()`` writes them out as eq. (1)
    parameter sets of width (2t+1)·c (``primitives.BaseConvParams``), to check the fast path."""

    distances: tuple[int, ...]  # s_1 < .. < s_t
    h_key: torch.Tensor  # (t, N, c) impulse_{s_g} on every channel (a stride-0 view over c)
    h_value: torch.Tensor  # (t, N, c) impulse_{s_g - 1}
    row_mask: torch.Tensor  # (N,) Linear_K's position mask m (1 past the programmed input)
    proj: dict  # name -> (c,) the construction's projections

    @property
    def t(self) -> int:
        return len(self.distances)

    @property
    def vocab_size(self) -> int:
        return self.proj["linear_q"].shape[0]

    @property
    def seq_len(self) -> int:
        return self.row_mask.shape[0]

    @property
    def num_layers(self) -> int:
        return NUM_LAYERS

    @property
    def width(self) -> int:
        return (2 * self.t + 1) * self.vocab_size

    @property
    def num_parameters(self) -> int:
        """What Thm 4.5 counts for this input: 2·t filters of size N×c, the row mask (N) and the
        projections (8c): 2·t·N·c + N + 8c (numel of the tensors, the expanded banks at full size)."""
        return self.h_key.numel() + self.h_value.numel() + self.row_mask.numel() + sum(
            p.numel() for p in self.proj.values())

    @property
    def stored_numbers(self) -> int:
        """Numbers actually held in memory: each distinct storage once. The banks are (t, N, 1)
        impulses expanded (stride 0) across the c channels, so they hold 2·t·N numbers where the
        theorem counts 2·t·N·c (``num_parameters``)."""
        seen, total = set(), 0
        for x in (self.h_key, self.h_value, self.row_mask, *self.proj.values()):
            st = x.untyped_storage()
            if st.data_ptr() not in seen:
                seen.add(st.data_ptr())
                total += st.nbytes() // x.element_size()
        return total

    def run(self, u: torch.Tensor) -> torch.Tensor:
        """(B, n, c) one-hot -> (B, n, c) scores (block 0 after layer 4). The stream is the list of
        its 2t + 1 blocks [Q, K_1 .. K_t, V_1 .. V_t] of c channels each (width (2t+1)·c)."""
        s = self._layer1([u])
        s = self._layer2(s)
        s = self._layer3(s)
        return self._layer4(s)[0]

    @mixer_layer(lambda self, blocks: sum(x.shape[-1] for x in blocks))
    def _layer1(self, blocks):
        """Projections Linear_Q, Linear_K (times the row mask m in b2), Linear_V, copied into every block."""
        u, p, t = blocks[0], self.proj, self.t
        m = self.row_mask[: u.shape[1], None]  # (n, 1)
        K = u * p["linear_k"] * m  # (B, n, c)
        V = u * p["linear_v"]
        return [u * p["linear_q"], *([K] * t), *([V] * t)]

    @mixer_layer(lambda self, blocks: len(blocks) * blocks[0].shape[-1])
    def _layer2(self, blocks):
        """Block K_g: Q ⊙ shift_{s_g}(K_g) (linear branch copies Q, conv branch h = impulse_{s_g}); V_g passes."""
        t, p, Q = self.t, self.proj, blocks[0]
        A = [(Q * p["copy_q"]) * causal_conv(blocks[1 + g], self.h_key[g]) for g in range(t)]
        return [Q, *A, *(blocks[1 + t + g] * p["pass_v"] for g in range(t))]

    @mixer_layer(lambda self, blocks: len(blocks) * blocks[0].shape[-1])
    def _layer3(self, blocks):
        """Block V_g: (match indicator of K_g, summed and broadcast) ⊙ shift_{s_g - 1}(V_g)."""
        t, p = self.t, self.proj
        out = [torch.zeros_like(blocks[0]), *(torch.zeros_like(b) for b in blocks[1 : 1 + t])]
        for g in range(t):
            match = (blocks[1 + g] * p["reduce"]).sum(-1, keepdim=True) * p["spread"]  # (B, n, c)
            out.append(match * causal_conv(blocks[1 + t + g], self.h_value[g]))
        return out

    @mixer_layer(lambda self, blocks: len(blocks) * blocks[0].shape[-1])
    def _layer4(self, blocks):
        """Linear_sum: block 0 = Σ_g V_g."""
        t, p = self.t, self.proj
        scores = torch.zeros_like(blocks[0])
        for g in range(t):
            scores = scores + blocks[1 + t + g] * p["linear_sum"]
        return [scores]

    def dense_layers(self) -> list[BaseConvParams]:
        """The four layers as full eq. (1) parameter sets (d = (2t+1)·c); input: u in block 0."""
        c, N, t = self.vocab_size, self.seq_len, self.t
        p = {k: v.detach().to(torch.float64).cpu() for k, v in self.proj.items()}
        D = (2 * t + 1) * c
        blk = lambda g: slice(g * c, (g + 1) * c)
        K_ = range(1, t + 1)  # key blocks
        V_ = range(t + 1, 2 * t + 1)  # value blocks
        z = lambda *s: torch.zeros(*s, dtype=torch.float64)
        layers = []
        # 1: projections, row mask in b2 of the K blocks
        W, b2 = z(D, D), torch.ones(N, D, dtype=torch.float64)
        W[blk(0), blk(0)] = torch.diag(p["linear_q"])
        for g in K_:
            W[blk(0), blk(g)] = torch.diag(p["linear_k"])
            b2[:, blk(g)] = self.row_mask.detach().to(torch.float64).cpu()[:, None]
        for g in V_:
            W[blk(0), blk(g)] = torch.diag(p["linear_v"])
        layers.append(BaseConvParams(W, z(N, D), b2, z(N, D)))
        # 2: shift K_g by s_g and multiply by Q; V_g passes
        W, b2, h = z(D, D), z(N, D), z(N, D)
        for g in K_:
            W[blk(0), blk(g)] = torch.diag(p["copy_q"])
            h[:, blk(g)] = self.h_key[g - 1].detach().to(torch.float64).cpu()
        for g in V_:
            W[blk(g), blk(g)] = torch.diag(p["pass_v"])
            b2[:, blk(g)] = 1.0
        layers.append(BaseConvParams(W, z(N, D), b2, h))
        # 3: sum block K_g, broadcast it onto V_g, times V_g shifted by s_g - 1
        W, h = z(D, D), z(N, D)
        for g in K_:
            W[blk(g), blk(g + t)] = torch.outer(p["reduce"], p["spread"])
            h[:, blk(g + t)] = self.h_value[g - 1].detach().to(torch.float64).cpu()
        layers.append(BaseConvParams(W, z(N, D), z(N, D), h))
        # 4: Linear_sum of the V_g blocks into block 0
        W = z(D, D)
        for g in V_:
            W[blk(g), blk(0)] = torch.diag(p["linear_sum"])
        layers.append(BaseConvParams(W, z(N, D), torch.ones(N, D, dtype=torch.float64), z(N, D)))
        return layers


class BaseConvInputDependent(Construction):
    """Thm 4.5: BaseConv with programmatic (input-dependent) filters; see the module docstring."""

    name = "baseconv_input_dependent"
    theorem = "Zoology Thm 4.5 (sec: data-dep-ar)"
    num_layers = NUM_LAYERS

    def __init__(self, vocab_size: int, seq_len: int, max_distances: int | None = None,
                 mask_query_rows: bool = True):
        super().__init__(vocab_size, seq_len)
        c, N = vocab_size, seq_len
        if max_distances is None:
            max_distances = N - 1
        if not (is_int(max_distances) and 1 <= max_distances <= N - 1):
            raise ValueError(
                f"max_distances={max_distances!r}: must be None or an integer in [1, seq_len-1={N - 1}]")
        if not isinstance(mask_query_rows, bool):
            raise ValueError(f"mask_query_rows={mask_query_rows!r}: must be a bool")
        self.max_distances, self.mask_query_rows = max_distances, mask_query_rows
        self.width = (2 * max_distances + 1) * c
        key = torch.zeros(c)
        key[1 : c // 2] = 1.0  # keys are [1, c/2): filler 0 and values never query or match
        ones = torch.ones(c)
        init = {"linear_q": key, "linear_k": key, "linear_v": ones, "copy_q": ones, "pass_v": ones,
                "reduce": ones, "spread": ones, "linear_sum": ones}
        for k in PROJECTIONS:
            setattr(self, k, frozen(init[k].clone()))  # (c,)

    # --- sizes -------------------------------------------------------------------------------
    def parameter_count(self, t: int) -> int:
        """Thm 4.5's count for an input with t distances: 2·t·N·c (filter banks) + N (row mask) + 8c
        (projections). ``num_parameters`` (inherited) is what the module itself stores: 8c."""
        return 2 * t * self.seq_len * self.vocab_size + self.seq_len + len(PROJECTIONS) * self.vocab_size

    # --- programming -------------------------------------------------------------------------
    def program(self, tokens, distances: Sequence[int] | None = None) -> InputDependentProgram:
        """The BaseConv model for one sequence (N,) or (1, N): filters at ``interaction_distances``
        (or at the given ``distances``, to test a shift set that misses one) and the row mask."""
        x = self.check_tokens(tokens)
        if x.shape[0] != 1:
            raise ValueError(f"tokens: program takes one sequence (filters are chosen per example), "
                             f"got a batch of {x.shape[0]}")
        c, N = self.vocab_size, self.seq_len
        if distances is None:
            distances = interaction_distances(x, c)
        else:
            distances = list(distances)
            for s in distances:
                if not (is_int(s) and 1 <= s <= N - 1):
                    raise ValueError(f"distances: {s!r} must be an integer in [1, seq_len-1={N - 1}] "
                                     "(distance 0 would match a query with itself)")
            if len(set(distances)) != len(distances):
                raise ValueError(f"distances: {distances} has repeats")
            distances = sorted(distances)
        if len(distances) > self.max_distances:
            raise ValueError(f"max_distances={self.max_distances}: this input needs {len(distances)} "
                             "distinct interaction distances")
        dtype, dev = self.dtype, self.device
        t = len(distances)
        imp = torch.zeros(2, t, N, 1, dtype=dtype, device=dev)
        for g, s in enumerate(distances):
            imp[0, g, s] = 1.0  # key shift: impulse_s
            imp[1, g, s - 1] = 1.0  # value shift: impulse_{s-1} (the token after the match)
        row_mask = torch.ones(N, dtype=dtype, device=dev)
        if self.mask_query_rows:
            row_mask[: x.shape[1]] = first_occurrence_mask(x)[0].to(dtype=dtype, device=dev)
        return InputDependentProgram(
            distances=tuple(distances),
            h_key=imp[0].expand(t, N, c),
            h_value=imp[1].expand(t, N, c),
            row_mask=row_mask,
            proj={k: getattr(self, k) for k in PROJECTIONS},
        )

    # --- interface ---------------------------------------------------------------------------
    def forward(self, tokens) -> torch.Tensor:
        """(B, n) tokens -> (B, n, c) scores; each row runs its own program."""
        x = self.check_tokens(tokens)
        u = F.one_hot(x, self.vocab_size).to(self.dtype)  # (B, n, c)
        rows = [self.program(x[b]).run(u[b : b + 1]) for b in range(x.shape[0])]
        return torch.cat(rows) if rows else u

    def predict(self, tokens) -> torch.Tensor:
        scores = self.forward(tokens)  # (B, n, c)
        best, arg = scores.max(dim=-1)
        return torch.where(best > THRESHOLD, arg, torch.full_like(arg, -1))

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) min over channels of |score - 1/2|: how far every threshold decision is from flipping."""
        return (self.forward(tokens) - THRESHOLD).abs().amin(dim=-1)

    def summary(self) -> dict:
        return {**super().summary(), "max_distances": self.max_distances,
                "mask_query_rows": self.mask_query_rows}


def baseconv_input_dependent(vocab_size: int, seq_len: int, *, max_distances: int | None = None,
                             mask_query_rows: bool = True) -> BaseConvInputDependent:
    """Thm 4.5 builder: ``max_distances`` distance slots (default seq_len - 1, every distance);
    ``mask_query_rows=False`` is the printed construction without the erratum's row mask."""
    return BaseConvInputDependent(vocab_size, seq_len, max_distances=max_distances,
                                  mask_query_rows=mask_query_rows)
