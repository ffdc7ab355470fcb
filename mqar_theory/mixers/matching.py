"""Token matching for the input-dependent mixers: which earlier positions hold the current token.

The programmatic rule of Zoology (arXiv 2312.04927, §5, eq. (3)) is defined on the raw tokens:
f(x)[i] = 1 iff some j < i has x_j = x_i. A mixer sees u (B, n, d), not x, so the rule needs ids:

* ``tokens`` given (``LanguageModel`` passes its token ids to mixers that set ``uses_tokens``): the ids
  are the tokens, exactly eq. (3);
* ``tokens`` None (a mixer used on its own): two positions match iff their rows of u are *bitwise equal*
  (``torch.unique`` over rows). In the first layer of a model without position embeddings,
  u_i = LN(E[x_i]) is a function of x_i alone, so this is the token match; in deeper layers it matches
  only positions whose whole input row coincides (decision: exact equality, no tolerance, so the rule
  is a deterministic function of u and never merges distinct tokens).

Helpers, all O(n log n) per sequence (a stable sort by id groups equal ids in position order), never an
(n × n) comparison; ``*_reference`` versions loop over pairs and are what the tests compare against.
"""

from __future__ import annotations

import torch

__all__ = ["match_ids", "earlier_count", "grouped_prefix_sum", "earlier_count_reference",
           "grouped_prefix_sum_reference"]


def match_ids(u: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """(B, n) int64 ids: the tokens when given (checked against u's (B, n)), else ids of equal rows of u."""
    B, n, d = u.shape
    if tokens is not None:
        if not isinstance(tokens, torch.Tensor) or tokens.shape != (B, n) or tokens.dtype.is_floating_point:
            raise ValueError(f"tokens: must be an integer tensor of shape {(B, n)} matching u, got "
                             f"{getattr(tokens, 'shape', type(tokens).__name__)}")
        return tokens.to(device=u.device, dtype=torch.long)
    _, inverse = torch.unique(u.detach().reshape(B * n, d), dim=0, return_inverse=True)
    return inverse.view(B, n)


def _sorted_groups(ids: torch.Tensor):
    """Stable sort of each row by id: (order, rank within the group of equal ids, group start in the order)."""
    B, n = ids.shape
    order = torch.sort(ids, dim=1, stable=True).indices  # (B, n): equal ids stay in position order
    s = ids.gather(1, order)  # (B, n) sorted ids
    pos = torch.arange(n, device=ids.device).expand(B, n)
    is_start = torch.ones_like(s, dtype=torch.bool)
    is_start[:, 1:] = s[:, 1:] != s[:, :-1]
    start = torch.where(is_start, pos, torch.zeros_like(pos)).cummax(dim=1).values  # (B, n)
    return order, pos - start, start


def earlier_count(ids: torch.Tensor) -> torch.Tensor:
    """(B, n): c[b, i] = #{j < i : ids[b, j] = ids[b, i]} (eq. (3) selects c > 0)."""
    order, rank, _ = _sorted_groups(ids)
    return torch.empty_like(rank).scatter_(1, order, rank)


def grouped_prefix_sum(ids: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, n, d): S[b, i] = Σ_{j < i, ids[b, j] = ids[b, i]} v[b, j]  (an exclusive cumsum per group)."""
    B, n, d = v.shape
    order, _, start = _sorted_groups(ids)
    vs = v.gather(1, order.unsqueeze(-1).expand(B, n, d))  # (B, n, d) in grouped order
    excl = vs.cumsum(dim=1) - vs  # Σ of everything before, in sorted order
    s = excl - excl.gather(1, start.unsqueeze(-1).expand(B, n, d))  # minus what precedes the group
    return torch.empty_like(s).scatter_(1, order.unsqueeze(-1).expand(B, n, d), s)


def earlier_count_reference(ids: torch.Tensor) -> torch.Tensor:
    """Naive pair loop for ``earlier_count``."""
    B, n = ids.shape
    c = torch.zeros(B, n, dtype=torch.long)
    for b in range(B):
        for i in range(n):
            c[b, i] = sum(int(ids[b, j] == ids[b, i]) for j in range(i))
    return c


def grouped_prefix_sum_reference(ids: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Naive pair loop for ``grouped_prefix_sum``."""
    B, n, d = v.shape
    s = torch.zeros_like(v)
    for b in range(B):
        for i in range(n):
            for j in range(i):
                if ids[b, j] == ids[b, i]:
                    s[b, i] += v[b, j]
    return s
