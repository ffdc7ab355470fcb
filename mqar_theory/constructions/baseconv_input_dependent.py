"""Thm 4.5 of Zoology (arXiv 2312.04927, Thm 4.5 and its proof in App. H):
BaseConv with *input-dependent* long filters solves MQAR in O(1) layers with O(t·N·c) parameters,
t the number of distinct interaction distances of the input.

Encoding. The input is the one-hot u ∈ {0,1}^{n×c} of the tokens x_0 .. x_{n-1} (n <= N). The
stream has G = 2t + 1 blocks of c channels, d = (2t+1)·c (the inner width of ``def: gated-conv``;
u is zero-padded into block 0)::

    block 0          Q: the query one-hot, later the output scores
    blocks 1 .. t    K_g: the key stream, one copy per selected distance s_g
    blocks t+1 .. 2t V_g: the value stream, one copy per selected distance

The filters (programmatic rule). ``interaction_distances`` lists the distances s = i - j* >= 1 from a
key token at i back to the *first* occurrence j* < i of the same token, over key tokens [1, c/2) only:
filler 0 and value tokens are never queries (the vocabulary split of Algorithm 1), so their repeats
select nothing. It is the one definition of Thm 4.5's t (``bounds`` counts it from the tokens): with the
row mask below the key stream holds first occurrences only, so no other distance can match. The printed
construction without the mask (``mask_query_rows=False``) programs every repeat distance i - j (x_j = x_i,
any earlier j; ``repeat_distances``), our reading of "interaction distances" when no role is known.
The distance set t = {s_1 < .. < s_t} programs two filter banks, impulse_{s_g} (key shift)
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
from what Thm 4.5 grants about it (``program(row)`` = ``program_from(grant(row))``: the interaction distances
and, with the row mask, the first occurrences; the builder never sees a token) and runs it; batch elements
may have different distance sets. (A shared filter bank for a batch would work for the filters, but the row
mask is a function of the example, so each example is its own BaseConv model, as in Thm 4.5.)

Sizes (decision). The model is built with ``max_distances`` = T slots (default N - 1: every
possible distance, so any input fits); an input needing more distinct distances is refused. The module
stores only the input-independent projections, eight c-vectors (Linear_Q, Linear_K, Linear_V, layer 2's
copy and pass maps, layer 3's sum and broadcast, Linear_sum): 8c. ``program(x)`` builds the four layers
for one input (``con.layers`` is the program of an input with no repeated key, t = 0); the program holds
2·t banks' filters and the row mask, so the numbers counted for an input are 2·t·N·c + N + 8c as Thm 4.5
counts them (numel of the tensors: each impulse filter is a (t, N, 1) tensor expanded across the c
channels, so ``params_stored`` = 2·t·N + N + 8c is what memory holds). The bound reads the count against
t·N·c with t measured from the tokens (``interaction_distances``), never the slots T. Layers 4; width
(2t+1)·c, the widest stream a layer of the program reads (layer 1 reads the one-hot u of width c). The
constant block biases (0 or 1 over whole blocks) and the zeros of the block-structured W are structure,
not stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..bounds.bound import p
from ..bounds.claims import Claim
from ..bounds.distances import interaction_distances, token_rows
from ..mixers.conv import causal_conv
from ..utils import is_int
from .base import DEFAULT_GRIDS, Construction, MixerLayer, frozen, sweep
from .primitives import BaseConvParams

__all__ = [
    "baseconv_input_dependent",
    "BaseConvInputDependent",
    "InputDependentProgram",
    "interaction_distances",
    "repeat_distances",
    "first_occurrence_mask",
    "THRESHOLD",
]

THRESHOLD = 0.5  # a score above it is a match (ideal scores are 0 or 1)
PROJECTIONS = ("linear_q", "linear_k", "linear_v", "copy_q", "pass_v", "reduce", "spread", "linear_sum")


def repeat_distances(tokens, vocab_size: int) -> list[int]:
    """Every repeat distance i - j (j < i, x_j = x_i a key token): the set the printed construction
    (no row mask) needs, since its key stream keeps every occurrence. (N,) or (B, N): the union."""
    half = vocab_size // 2
    dist = set()
    for row in token_rows(tokens):
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
    for row in token_rows(tokens):
        seen: set[int] = set()
        first = []
        for x in row:
            first.append(x not in seen)
            seen.add(x)
        out.append(first)
    return torch.tensor(out, dtype=torch.bool).reshape(len(out), -1)


def _blocks(u: torch.Tensor, c: int) -> torch.Tensor:
    return u.reshape(*u.shape[:-1], u.shape[-1] // c, c)  # (B, n, G, c)


class Projections(MixerLayer):
    """Layer 1: W copies block 0 (the one-hot u, width c) into every block: Q = diag(key)·u, K_g =
    m ⊙ diag(key)·u (the row mask m in b2: the linear branch carries the projection, h = 0), V_g = u.
    Reads width c, writes (2t+1)·c."""

    def __init__(self, proj: dict, row_mask: torch.Tensor | None, t: int):
        super().__init__()
        self.linear_q, self.linear_k, self.linear_v = proj["linear_q"], proj["linear_k"], proj["linear_v"]
        if row_mask is not None:
            self.register_buffer("row_mask", row_mask)  # (N,)
        else:
            self.row_mask = None
        self.t, self.d_in = t, self.linear_q.shape[0]

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B, n, c) -> (B, n, (2t+1)c)
        t = self.t
        if t == 0:
            return u * self.linear_q
        m = self.row_mask[: u.shape[1], None]  # (n, 1)
        K, V = u * self.linear_k * m, u * self.linear_v  # (B, n, c)
        return torch.cat([u * self.linear_q, *([K] * t), *([V] * t)], dim=-1)


class ShiftCompare(MixerLayer):
    """Layer 2: block K_g ← Q ⊙ shift_{s_g}(K_g) (the linear branch copies Q, the conv branch is
    h = impulse_{s_g}); V_g passes (W = I, h = 0, b2 = 1)."""

    def __init__(self, proj: dict, h_key: torch.Tensor):
        super().__init__()
        self.copy_q, self.pass_v = proj["copy_q"], proj["pass_v"]
        self.h_key = h_key  # (t, N, c): a plain tensor attribute, counted like any other
        self.t, self.d_in = h_key.shape[0], (2 * h_key.shape[0] + 1) * self.copy_q.shape[0]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        t, c = self.t, self.copy_q.shape[0]
        if t == 0:
            return u
        blk = _blocks(u, c)
        Q = blk[..., 0, :]
        A = [(Q * self.copy_q) * causal_conv(blk[..., 1 + g, :], self.h_key[g]) for g in range(t)]
        V = [blk[..., 1 + t + g, :] * self.pass_v for g in range(t)]
        return torch.cat([Q, *A, *V], dim=-1)


class GateValue(MixerLayer):
    """Layer 3: block V_g ← (Σ_q A_g[:, q], broadcast: the match indicator M_g) ⊙ shift_{s_g - 1}(V_g)
    (W = the rank-one map reduce·spreadᵀ from block g to V_g, h = impulse_{s_g - 1}); other blocks 0."""

    def __init__(self, proj: dict, h_value: torch.Tensor):
        super().__init__()
        self.reduce, self.spread = proj["reduce"], proj["spread"]
        self.h_value = h_value  # (t, N, c)
        self.t, self.d_in = h_value.shape[0], (2 * h_value.shape[0] + 1) * self.reduce.shape[0]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        t, c = self.t, self.reduce.shape[0]
        if t == 0:
            return torch.zeros_like(u)
        blk = _blocks(u, c)
        out = [torch.zeros_like(blk[..., 0, :]) for _ in range(t + 1)]
        for g in range(t):
            match = (blk[..., 1 + g, :] * self.reduce).sum(-1, keepdim=True) * self.spread  # (B, n, c)
            out.append(match * causal_conv(blk[..., 1 + t + g, :], self.h_value[g]))
        return torch.cat(out, dim=-1)


class LinearSum(MixerLayer):
    """Layer 4: block 0 ← Σ_g V_g (W adds the t value blocks into block 0; h = 0, b2 = 1); other blocks 0."""

    def __init__(self, proj: dict, t: int):
        super().__init__()
        self.linear_sum, self.t = proj["linear_sum"], t
        self.d_in = (2 * t + 1) * self.linear_sum.shape[0]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        t, c = self.t, self.linear_sum.shape[0]
        blk = _blocks(u, c)
        scores = blk[..., 1 + t :, :].sum(-2) * self.linear_sum  # (B, n, c)
        return torch.cat([scores, torch.zeros_like(u[..., c:])], dim=-1)


class InputDependentProgram(nn.ModuleList):
    """The four layers Thm 4.5 builds for one input (an ``nn.ModuleList`` the runner applies), with its
    distance set, filter banks and row mask. ``run(u)`` applies it to one-hot u (B, n, c) and returns the
    scores (block 0 of the final stream); ``dense_layers()`` writes the layers out as eq. (1) parameter
    sets of width (2t+1)·c (``primitives.BaseConvParams``), to check them against ``mixers.baseconv``."""

    def __init__(self, distances: Sequence[int], h_key, h_value, row_mask, proj: dict, seq_len: int):
        t = len(distances)
        super().__init__([Projections(proj, row_mask if t else None, t), ShiftCompare(proj, h_key),
                          GateValue(proj, h_value), LinearSum(proj, t)])
        self.distances, self.seq_len = tuple(distances), seq_len
        self.vocab_size = proj["linear_q"].shape[0]

    @property
    def t(self) -> int:
        return len(self.distances)

    @property
    def width(self) -> int:
        return (2 * self.t + 1) * self.vocab_size

    @property
    def row_mask(self) -> torch.Tensor:
        m = self[0].row_mask
        return torch.ones(self.seq_len) if m is None else m

    @property
    def h_key(self) -> torch.Tensor:
        return self[1].h_key

    @property
    def h_value(self) -> torch.Tensor:
        return self[2].h_value

    def run(self, u: torch.Tensor) -> torch.Tensor:
        """(B, n, c) one-hot -> (B, n, c) scores: block 0 of the final stream."""
        from .base import run_layers

        return run_layers(self, u, keep=False)[-1][..., : self.vocab_size]

    def dense_layers(self) -> list[BaseConvParams]:
        """The four layers as full eq. (1) parameter sets (d = (2t+1)·c); input: u in block 0."""
        c, N, t = self.vocab_size, self.seq_len, self.t
        proj = {k: getattr(m, k) for m in self for k in PROJECTIONS if hasattr(m, k)}
        pr = {k: v.detach().to(torch.float64).cpu() for k, v in proj.items()}
        D = (2 * t + 1) * c

        def blk(g):
            return slice(g * c, (g + 1) * c)

        def z(*s):
            return torch.zeros(*s, dtype=torch.float64)

        K_, V_ = range(1, t + 1), range(t + 1, 2 * t + 1)  # key blocks, value blocks
        layers = []
        W, b2 = z(D, D), torch.ones(N, D, dtype=torch.float64)  # 1: projections, row mask in b2 of the K blocks
        W[blk(0), blk(0)] = torch.diag(pr["linear_q"])
        for g in K_:
            W[blk(0), blk(g)] = torch.diag(pr["linear_k"])
            b2[:, blk(g)] = self.row_mask.detach().to(torch.float64).cpu()[:, None]
        for g in V_:
            W[blk(0), blk(g)] = torch.diag(pr["linear_v"])
        layers.append(BaseConvParams(W, z(N, D), b2, z(N, D)))
        W, b2, h = z(D, D), z(N, D), z(N, D)  # 2: shift K_g by s_g and multiply by Q; V_g passes
        for g in K_:
            W[blk(0), blk(g)] = torch.diag(pr["copy_q"])
            h[:, blk(g)] = self.h_key[g - 1].detach().to(torch.float64).cpu()
        for g in V_:
            W[blk(g), blk(g)] = torch.diag(pr["pass_v"])
            b2[:, blk(g)] = 1.0
        layers.append(BaseConvParams(W, z(N, D), b2, h))
        W, h = z(D, D), z(N, D)  # 3: sum block K_g, broadcast it onto V_g, times V_g shifted by s_g - 1
        for g in K_:
            W[blk(g), blk(g + t)] = torch.outer(pr["reduce"], pr["spread"])
            h[:, blk(g + t)] = self.h_value[g - 1].detach().to(torch.float64).cpu()
        layers.append(BaseConvParams(W, z(N, D), z(N, D), h))
        W = z(D, D)  # 4: Linear_sum of the V_g blocks into block 0
        for g in V_:
            W[blk(g), blk(0)] = torch.diag(pr["linear_sum"])
        layers.append(BaseConvParams(W, z(N, D), torch.ones(N, D, dtype=torch.float64), z(N, D)))
        return layers

    def extra_repr(self) -> str:
        return f"distances={self.distances}, width={self.width}"


def _K(N: int, c: int) -> int:
    return min(N // 4, c // 2 - 1, 64)


class BaseConvInputDependent(Construction):
    """Thm 4.5: BaseConv with programmatic (input-dependent) filters; see the module docstring."""

    name = "baseconv_input_dependent"
    theorem = "Zoology Thm 4.5 (sec: data-dep-ar)"
    claims = (
        Claim("thm4.5-params", const=4.6, basis="proved",
              why="the program of an input holds 2 t' N c + N + 8c numbers as Thm 4.5 counts them (t' filters "
                  "per bank) and t' + 4 more enter (zero fills, read-out); if t' <= t (the input's distinct "
                  "distances) the ratio is <= 2 + 1/(tc) + 8/(tN) + 1/(Nc) + 4/(tNc) <= 4.57 for t >= 1, c, N >= 4"),
        Claim("thm4.5-layers", const=4, basis="proved", why="the program lists four layers"),
        Claim("based-rem3.3-layers", expect="context", values={p: 1}),
    )
    grids = {**DEFAULT_GRIDS, "gpu": sweep([66, 1000, 4000], 1000, [66, 1000, 65000], 1000, _K)}
    style = {"marker": "^", "size": 4, "curves": ("thm4.5-params", None), "tex": {"thm4.5-params": (r"tNc", "Thm 4.5")},
             "margin_units": "0/1 match scores"}

    @classmethod
    def closed_form(cls, c: int, N: int, t: int | None = None) -> dict:
        if t is None:
            raise ValueError("t: the input-dependent sizes need the number of filters t")
        # stored 2tNc + N + 8c; the layers' zero fills (t + 2: one per empty block of layer 3, one in layer 4)
        # and decode's threshold and -1 fill bring t + 4 more (``bounds.observe``)
        return {"params": 2 * t * N * c + N + 8 * c + t + 4, "layers": 4, "width": (2 * t + 1) * c}

    @classmethod
    def fixed_tables(cls, c: int, N: int) -> dict:
        return {"E": torch.eye(c, dtype=torch.float64)}

    @classmethod
    def grid_constants(cls, point) -> dict:
        """``max_distances`` = K slots: the most distinct distances a make_mqar input with K pairs needs (the
        slots only bound what it accepts; the bound reads the t measured from each input)."""
        return {"max_distances": int(point["K"])}

    def __init__(self, vocab_size: int, seq_len: int, max_distances: int | None = None,
                 mask_query_rows: bool = True):
        super().__init__(vocab_size, seq_len)
        c_, N = vocab_size, seq_len
        if max_distances is None:
            max_distances = N - 1
        if not (is_int(max_distances) and 1 <= max_distances <= N - 1):
            raise ValueError(
                f"max_distances={max_distances!r}: must be None or an integer in [1, seq_len-1={N - 1}]")
        if not isinstance(mask_query_rows, bool):
            raise ValueError(f"mask_query_rows={mask_query_rows!r}: must be a bool")
        self.max_distances, self.mask_query_rows = max_distances, mask_query_rows
        key = torch.zeros(c_)
        key[1 : c_ // 2] = 1.0  # keys are [1, c/2): filler 0 and values never query or match
        ones = torch.ones(c_)
        init = {"linear_q": key, "linear_k": key, "linear_v": ones, "copy_q": ones, "pass_v": ones,
                "reduce": ones, "spread": ones, "linear_sum": ones}
        for k in PROJECTIONS:
            setattr(self, k, frozen(init[k].clone()))  # (c,)
        self.register_buffer("E", torch.eye(c_))  # (c, c) the one-hot token table
        self.layers = self._program((), None)  # the program of an input with no repeated key

    def _proj(self) -> dict:
        return {k: getattr(self, k) for k in PROJECTIONS}

    def _program(self, distances, row_mask) -> InputDependentProgram:
        c_, N, t = self.vocab_size, self.seq_len, len(distances)
        dtype, dev = self.linear_q.dtype, self.linear_q.device
        imp = torch.zeros(2, t, N, 1, dtype=dtype, device=dev)
        for g, s in enumerate(distances):
            imp[0, g, s] = 1.0  # key shift: impulse_s
            imp[1, g, s - 1] = 1.0  # value shift: impulse_{s-1} (the token after the match)
        return InputDependentProgram(distances, imp[0].expand(t, N, c_), imp[1].expand(t, N, c_), row_mask,
                                     self._proj(), N)

    @property
    def width(self) -> int:
        """The widest stream ``max_distances`` slots allow, (2T+1)·c (a program reads (2t+1)·c)."""
        return (2 * self.max_distances + 1) * self.vocab_size

    # --- programming -------------------------------------------------------------------------
    def grant(self, tokens, distances: Sequence[int] | None = None) -> dict:
        """What the program of one sequence (N,) or (1, N) may know of it, and the only place it reads tokens:
        ``distances``, the interaction distances of Thm 4.5 (``interaction_distances``; ``repeat_distances`` for
        the printed version without the row mask), or the given ``distances`` (to test a shift set that misses
        one); ``first`` (with ``mask_query_rows``), the positions holding a token's first occurrence, the row mask
        m = 1 - f(x) of eq. (3)'s selector (a grant beyond the theorem, stated in the module docstring); ``n``, the
        input's length. Tuples of ints and bools: no token reaches ``program_from``."""
        x = self.check_tokens(tokens)
        if x.shape[0] != 1:
            raise ValueError(f"tokens: program takes one sequence (filters are chosen per example), "
                             f"got a batch of {x.shape[0]}")
        c_, N = self.vocab_size, self.seq_len
        if distances is None:
            distances = (interaction_distances if self.mask_query_rows else repeat_distances)(x, c_)
        else:
            distances = list(distances)
            for s in distances:
                if not (is_int(s) and 1 <= s <= N - 1):
                    raise ValueError(f"distances: {s!r} must be an integer in [1, seq_len-1={N - 1}] "
                                     "(distance 0 would match a query with itself)")
            if len(set(distances)) != len(distances):
                raise ValueError(f"distances: {distances} has repeats")
        first = tuple(bool(b) for b in first_occurrence_mask(x)[0]) if self.mask_query_rows else None
        return {"distances": tuple(sorted(int(s) for s in distances)), "first": first, "n": int(x.shape[1])}

    def program_from(self, grant: dict) -> InputDependentProgram:
        """The four layers from a ``grant`` alone (Thm 4.5: the filters are impulses at the interaction
        distances; the row mask from the first occurrences): two inputs with the same grant get the same program."""
        distances = list(grant["distances"])
        if len(distances) > self.max_distances:
            raise ValueError(f"max_distances={self.max_distances}: this input needs {len(distances)} "
                             "distinct interaction distances")
        dtype, dev = self.linear_q.dtype, self.linear_q.device
        row_mask = torch.ones(self.seq_len, dtype=dtype, device=dev)
        if grant["first"] is not None:
            row_mask[: grant["n"]] = torch.tensor(grant["first"], dtype=dtype, device=dev)
        return self._program(distances, row_mask)

    def program(self, tokens, distances: Sequence[int] | None = None) -> InputDependentProgram:
        """The four layers for one sequence (N,) or (1, N): ``program_from(grant(tokens, distances))``."""
        return self.program_from(self.grant(tokens, distances))

    # --- encode / decode ---------------------------------------------------------------------
    def encode(self, tokens) -> torch.Tensor:
        """(B, n) -> (B, n, c): the one-hot u = E[x], E = I_c (a fixed table, ``fixed_tables``)."""
        return self.E[self.check_tokens(tokens)]

    def decode(self, stream: torch.Tensor) -> torch.Tensor:
        """(B, n, d) -> (B, n): argmax of block 0 (the scores) where it exceeds 1/2, else -1."""
        best, arg = stream[..., : self.vocab_size].max(dim=-1)
        return torch.where(best > THRESHOLD, arg, torch.full_like(arg, -1))

    def scores(self, tokens) -> torch.Tensor:
        """(B, n, c) scores, each row through its own program."""
        return self.map_final(tokens, lambda v: v[..., : self.vocab_size])

    def margin(self, tokens) -> torch.Tensor:
        """(B, n) min over channels of |score - 1/2|: how far every threshold decision is from flipping."""
        return (self.scores(tokens) - THRESHOLD).abs().amin(dim=-1)


def baseconv_input_dependent(vocab_size: int, seq_len: int, *, max_distances: int | None = None,
                             mask_query_rows: bool = True) -> BaseConvInputDependent:
    """Thm 4.5 builder: ``max_distances`` distance slots (default seq_len - 1, every distance);
    ``mask_query_rows=False`` is the printed construction without the erratum's row mask."""
    return BaseConvInputDependent(vocab_size, seq_len, max_distances=max_distances,
                                  mask_query_rows=mask_query_rows)
