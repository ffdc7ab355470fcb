"""Shared test helpers.

The whole suite runs on one torch intra-op thread (``one_thread``, session-wide, restored at the end): on a
shared 2-core machine a second thread mostly waits (measured on the project's 2-core machines), and one thread fixes the
reduction order, so results repeat bit for bit.

``all_mqar_sequences(c, N)`` enumerates every sequence ``make_mqar`` could produce for vocab_size c
and length N (filler 0), so the hand-set constructions can be checked exhaustively on tiny domains.
Import it with ``from conftest import all_mqar_sequences`` or through the ``mqar_sequences`` fixture.

For the mixer tests: ``float64_default`` (a fixture; a module opts in with
``pytestmark = pytest.mark.usefixtures("float64_default")``), ``token_input`` (tokens with many repeats and a
fixed embedding of them) and ``randomise_`` (every parameter replaced by N(0, 1) draws, in place).
"""

from __future__ import annotations

import itertools

import pytest
import torch


def all_mqar_sequences(c: int, N: int) -> torch.Tensor:
    """Every make_mqar-shaped sequence of length N over c tokens, as a LongTensor (M, N).

    Shape (Algorithm 1 as ``make_mqar`` lays it out, filler 0): for every number of pairs K >= 1,
    every ordered choice of K distinct keys from [1, c/2) and of K distinct values from [c/2, c)
    (context ``k1 v1 .. kK vK`` in positions 0 .. 2K-1), and every injective placement of the K
    queries on the slots 2K + 2g < N (g = 0 .. S-1, S = (N - 2K + 1) // 2, so an odd N is allowed
    and drops the last unpaired position); each key is queried exactly once. K runs while K <= S
    and K <= c/2 - 1. Rows are sorted lexicographically, so the order is deterministic.
    """
    if not (isinstance(c, int) and c >= 4 and c % 2 == 0):
        raise ValueError(f"c={c!r}: must be an even integer >= 4")
    if not (isinstance(N, int) and N >= 1):
        raise ValueError(f"N={N!r}: must be an integer >= 1")
    half = c // 2
    rows = []
    for K in itertools.count(1):
        S = (N - 2 * K + 1) // 2  # query slots at positions 2K, 2K+2, ... < N
        if K > S or K > half - 1:
            break
        for keys in itertools.permutations(range(1, half), K):
            for values in itertools.permutations(range(half, c), K):
                for slots in itertools.permutations(range(S), K):
                    row = [0] * N
                    for j, (k, v, g) in enumerate(zip(keys, values, slots, strict=True)):
                        row[2 * j], row[2 * j + 1] = k, v
                        row[2 * K + 2 * g] = k
                    rows.append(row)
    if not rows:
        return torch.zeros(0, N, dtype=torch.long)
    return torch.tensor(sorted(rows), dtype=torch.long)


@pytest.fixture
def mqar_sequences():
    """The ``all_mqar_sequences`` function, for tests that prefer a fixture."""
    return all_mqar_sequences


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def float64_default():
    """float64 as torch's default dtype for the test; the old default is restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def token_input(B: int = 2, n: int = 17, c: int = 5, d: int = 4, seed: int = 1):
    """(tokens (B, n) over a small vocabulary c, so many repeat; u (B, n, d) = a fixed random embedding of them)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, c, (B, n), generator=g)
    return tokens, torch.randn(c, d, generator=g)[tokens]


@torch.no_grad()
def randomise_(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every parameter by N(0, 1) draws (from the global generator), in place; returns the module."""
    for p in module.parameters():
        p.copy_(torch.randn_like(p))
    return module
