"""``BOUNDS``: the paper's theorems as ``Bound``s: Zoology (arXiv 2312.04927: Prop 4.3, Thm 4.2, Thm 4.4,
Thm 4.5, App. H.6) and Based (Arora et al. 2024, "Simple linear attention language models balance the
recall-throughput tradeoff", arXiv 2402.18668, §3.2: Thm 3.1, Thm 3.2, Remark 3.3, Thm 3.4; App. F).
A construction's own facts (no paper theorem) are ``Bound``s in its own file (``Construction.own_bounds``);
``get_bound`` finds both, ``bounds_for`` lists those a construction's claims name, ``register_bound`` adds
a theorem."""

from __future__ import annotations

import sympy as sp

from .bound import POLYLOG_POWER, Bound, Delta, N, c, d, eps, log2, p, s, t

__all__ = ["BOUNDS", "get_bound", "bounds_for", "register_bound", "all_bounds"]


_POLY = log2(N * c) ** POLYLOG_POWER
_BASED = "Based (Arora et al. 2024, arXiv 2402.18668) §3.2"
_EPS_STAR = 1 - sp.log(log2(d)) / sp.log(log2(N))  # the largest eps that Based Thm 3.4 allows for (d, N)

BOUNDS: dict[str, Bound] = {
    b.id: b
    for b in [
        # --- Zoology, attention ------------------------------------------------------------------
        Bound("prop4.3-params", "Zoology Prop 4.3 (App. H Prop H.27)", "upper", "params", c**2,
              "attention (even without softmax) solves MQAR on u ∈ {0,1}^{N×3c} with O(c²) parameters",
              notes="H.27 stores 2 layers × (W_Q, W_K, W_V) of shape 3c×3c = 54c²."),
        Bound("prop4.3-layers", "Zoology Prop 4.3 (App. H Prop H.27)", "upper", "layers", sp.Integer(1),
              "O(1) layers (the H.27 proof uses two)"),
        Bound("prop4.3-width", "Zoology Prop 4.3 / Remark H.26", "upper", "width", 3 * c,
              "input u ∈ {0,1}^{N×3c}: role-blocked one-hot, width 3c, independent of N",
              exact_const=1.0),
        # --- Zoology, BaseConv ---------------------------------------------------------------------
        Bound("thm4.4-params", "Zoology Thm 4.4", "upper", "params", N * log2(c) * _POLY,
              "data-independent BaseConv solves MQAR on u ∈ {0,1}^{N×O(log c)} with Õ(N log c) parameters",
              notes=f"Õ read as N·log2(c)·log2(N·c)^{POLYLOG_POWER}; the paper builds it through its circuit "
                    "compiler (Thm 4.2, exact Õ form UNVERIFIED)"),
        Bound("thm4.4-layers", "Zoology Thm 4.4", "upper", "layers", _POLY,
              "Õ(1) layers", notes=f"Õ(1) read as log2(N·c)^{POLYLOG_POWER}: Θ(log² N · log log(Nc)) layers are "
                                   "polylog, but one log log factor above this concrete reading"),
        Bound("thm4.5-params", "Zoology Thm 4.5", "upper", "params", t * N * c,
              "BaseConv with input-dependent kernels solves MQAR on one-hot u ∈ {0,1}^{N×c} with at most t "
              "distinct interaction distances using O(t·N·c) parameters",
              notes="t is the number of distinct distances the instances need (measure's column 't' unless "
                    "the grid or the construction fixes it)"),
        Bound("thm4.5-layers", "Zoology Thm 4.5", "upper", "layers", sp.Integer(1), "O(1) layers"),
        Bound("thm4.2-layers", "Zoology Thm 4.2 (App. H thm: gen-ac)", "upper", "layers", Delta * log2(s) ** 2,
              "an arithmetic circuit of size s and depth Δ on u ∈ R^{N×d} has an equivalent BaseConv with Õ(Δ) "
              "layers", verified=False,
              notes="exact statement not printed in our sources; s is s* = s − #inputs + N·d (every entry of u "
                    "is an input), Δ is max(Δ, 1), Õ(x) read as x·log2(s*)²"),
        Bound("thm4.2-params", "Zoology Thm 4.2 (App. H thm: gen-ac)", "upper", "params", s * Delta * log2(s) ** 2,
              "... and Õ(sΔ) parameters", verified=False,
              notes="read as s*·Δ·log2(s*)²; measured both as every stored number and as the nonzeros (a sparse W "
                    "is a K-matrix up to a log factor)"),
        # --- lower bounds --------------------------------------------------------------------------
        Bound("h6-state", "Zoology App. H.6", "lower", "state_bits", N,
              "the gated recurrence requires Ω(N) bits to solve MQAR for model dimension d ≤ N",
              condition=sp.Le(d, N), notes="a statement about recurrent state; no construction here is a "
                                          "fixed-state recurrence, so it is tabulated, not measured"),
        Bound("based-thm3.1-state", f"{_BASED} Thm 3.1 (App. Thm F.12)", "lower", "state_bits", N,
              "any recurrent model depending causally on u ∈ {0,1}^{N×d} needs Ω(N) bits of state for MQAR",
              notes="state entries bounded (footnote); tabulated, not measured"),
        Bound("based-thm3.2-layers", f"{_BASED} Thm 3.2", "lower", "layers", log2(2 * d),
              "u ∈ {0,1}^{3N×d}: a data-independent BaseConv needs log(2d) layers for d = log2(c) "
              "(natural binary codes)",
              given={d: log2(c)}, exact_const=1.0,
              notes="degree argument: L layers compute polynomials of degree ≤ 2^L, key equality of d-bit "
                    "codes has degree 2d. Holds for a construction whose input is the binary (or ±1) code "
                    "of the token (plus functions of the token, such as a key flag); not for one that embeds "
                    "tokens one-hot."),
        Bound("based-rem3.3-layers", f"{_BASED} Remark 3.3 (Def. F.22)", "lower", "layers", sp.floor(log2(2 * p)),
              "p-hot encodings, d = p·c^(1/p): input-dependent BaseConv needs ⌊log(2p)⌋ layers",
              exact_const=1.0, notes="one-hot is p = 1: at least one layer"),
        Bound("based-thm3.4-layers", f"{_BASED} Thm 3.4 (App. Thm F.14)", "lower", "layers", eps * log2(log2(N)),
              "any encoding with log c ≤ d ≤ 2^((log N)^(1−ε)), c ≤ N, parameters of O(log N) bits: a "
              "data-independent BaseConv needs Ω(ε log log N) layers (for AR)",
              verified=False,
              given={eps: _EPS_STAR},
              condition=sp.And(sp.Le(log2(c), d), sp.Lt(d, N), sp.Le(c, N)),
              notes="the upper limit on d is UNVERIFIED (PDF extraction). We evaluate at the largest ε the "
                    "width allows, ε* = 1 − ln(log2 d)/ln(log2 N), so the bound reads log2 log2 N − "
                    "log2 log2 d; ε* > 0 iff d < N. The O(log N)-bit parameter hypothesis is not checked "
                    "(a construction that stores small integers and 0/1 position bits meets it)."),
        Bound("based-combined-layers", f"{_BASED} (Thm 3.2 + Thm 3.4; tight by Thm F.30)", "lower", "layers",
              sp.Max(log2(log2(c)), log2(log2(N))),
              "data-independent BaseConv needs Ω(max(log log c, log log N)) layers",
              condition=sp.And(sp.Lt(d, N), sp.Le(c, N)),
              notes="inherits the hypotheses of Thm 3.2 (binary input) and Thm 3.4 (d < N, c ≤ N); a model "
                    "whose width reaches N escapes it; one of width O(log Nc) falls below N for large N, "
                    "where it must meet it"),
    ]
}


def all_bounds() -> dict[str, Bound]:
    """``BOUNDS`` and every registered construction's ``own_bounds``, by id."""
    from ..constructions import CONSTRUCTIONS

    out = dict(BOUNDS)
    for cls in CONSTRUCTIONS.values():
        for b in cls.own_bounds:
            out.setdefault(b.id, b)
    return out


def get_bound(bound) -> Bound:
    """A ``Bound`` from itself or its id (a theorem of ``BOUNDS`` or a construction's own bound)."""
    if isinstance(bound, Bound):
        return bound
    known = all_bounds()
    if bound not in known:
        raise ValueError(f"bound={bound!r}: unknown; known ids are {sorted(known)}")
    return known[bound]


def register_bound(bound: Bound) -> None:
    """Add the theorem ``bound`` to ``BOUNDS`` (ValueError if its id is taken by a different bound)."""
    if not isinstance(bound, Bound):
        raise ValueError(f"bound: must be a Bound, got {type(bound).__name__}")
    if bound.id in BOUNDS and BOUNDS[bound.id] != bound:
        raise ValueError(f"bound.id={bound.id!r}: already registered with another statement")
    BOUNDS[bound.id] = bound


def bounds_for(name: str) -> list[Bound]:
    """The bounds the claims of the construction ``name`` name (holds, fails and context)."""
    from .claims import claims_of

    return [get_bound(k.bound) for k in claims_of(name)]
