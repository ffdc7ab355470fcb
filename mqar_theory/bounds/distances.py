"""Thm 4.5's t (Zoology, arXiv 2312.04927): the distinct interaction distances of an input, defined once.

For a key token x_i (1 <= x_i < c/2, the keys of Algorithm 1) with an earlier occurrence, its interaction
distance is i - j*, j* the *first* earlier occurrence (the one whose successor is the answer); t is the
number of distinct such distances. The input-dependent construction programs its filters at exactly these
distances, and ``bounds.measure`` reads t from the tokens with ``num_interaction_distances``.
"""

from __future__ import annotations

import torch

__all__ = ["interaction_distances", "num_interaction_distances", "token_rows"]


def token_rows(tokens) -> list[list[int]]:
    """(N,) or (B, N) tokens as a list of rows of ints; ValueError naming `tokens` for any other shape."""
    t = torch.as_tensor(tokens)
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise ValueError(f"tokens: must have shape (N,) or (B, N), got {tuple(t.shape)}")
    return t.cpu().tolist()


def _row_distances(row: list[int], half: int) -> set[int]:
    first: dict[int, int] = {}
    dist = set()
    for i, x in enumerate(row):
        if x in first:
            if 1 <= x < half:
                dist.add(i - first[x])
        else:
            first[x] = i
    return dist


def interaction_distances(tokens, vocab_size: int) -> list[int]:
    """Sorted distinct interaction distances of (N,) tokens, or their union over the rows of (B, N)."""
    out: set[int] = set()
    for row in token_rows(tokens):
        out |= _row_distances(row, vocab_size // 2)
    return sorted(out)


def num_interaction_distances(tokens, vocab_size: int) -> torch.Tensor:
    """(B,) t of every row of (B, N) (or of the one row of (N,))."""
    return torch.tensor([len(_row_distances(row, vocab_size // 2)) for row in token_rows(tokens)], dtype=torch.long)
