"""Speed of the vectorised MQAR generator against a naive per-example generator, in the same run.

The baseline follows the official code's approach (docs/official-code.md, "MQAR generator"): one Python iteration per
example with numpy's legacy ``RandomState.choice(replace=False)`` over the whole key and value ranges
(a full permutation, O(c) work per example), then successive weighted sampling of the query slots.
Target: at c=8192, N=256, K=16 and 20,000 examples the library generator is at least 20x faster.

    python benchmarks/data.py [--examples 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _timing import best_time  # benchmarks/_timing.py (scripts run from their folder)

from mqar_theory.data import MQARConfig, make_mqar, query_slot_probabilities


def naive_mqar(cfg: MQARConfig):
    rng = np.random.RandomState(cfg.seed)
    c, N, K = cfg.vocab_size, cfg.seq_len, cfg.num_kv_pairs
    C = 2 * K
    p = query_slot_probabilities(cfg.num_slots, cfg.power_a)
    inputs = np.zeros((cfg.num_examples, N), dtype=np.int64)
    labels = np.full((cfg.num_examples, N), -100, dtype=np.int64)
    for r in range(cfg.num_examples):
        keys = rng.choice(np.arange(1, c // 2), size=K, replace=False)
        values = rng.choice(np.arange(c // 2, c), size=K, replace=False)
        slots = rng.choice(cfg.num_slots, size=K, replace=False, p=p)
        inputs[r, 0:C:2], inputs[r, 1:C:2] = keys, values
        inputs[r, C + 2 * slots], labels[r, C + 2 * slots] = keys, values
    return inputs, labels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target", type=float, default=20.0, help="required speed-up (exit 1 below it)")
    args = ap.parse_args(argv)
    cfg = MQARConfig(vocab_size=8192, seq_len=256, num_kv_pairs=16, num_examples=args.examples, seed=0)
    t_fast = best_time(lambda: make_mqar(cfg), args.repeats)
    t_naive = best_time(lambda: naive_mqar(cfg), max(1, args.repeats - 2))
    ratio = t_naive / t_fast
    print(f"config: c={cfg.vocab_size} N={cfg.seq_len} K={cfg.num_kv_pairs} examples={cfg.num_examples}")
    print(f"naive per-example generator : {t_naive:8.3f} s  ({cfg.num_examples / t_naive:10.0f} examples/s)")
    print(f"make_mqar (vectorised)      : {t_fast:8.3f} s  ({cfg.num_examples / t_fast:10.0f} examples/s)")
    print(f"speed-up: {ratio:.1f}x  (target >= {args.target:.0f}x) -> {'PASS' if ratio >= args.target else 'FAIL'}")
    return 0 if ratio >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
