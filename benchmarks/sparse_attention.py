"""Time and FLOPs of ``sparse_attention`` (k selected rows, §5 of Zoology, arXiv 2312.04927) against dense
causal attention (``attention``, torch's fused scaled_dot_product_attention), measured in the same run.

Forward passes (eval mode, no grad), batch B, width d, one head; sparse attention with k rows selected per
sequence (``random`` selection: the same k' = min(k, N) gathered rows every rule computes). FLOPs by
``mqar_theory.flops.count_flops``. Target: at N = 4096, k = 64 sparse is >= 5x faster than dense.

    python benchmarks/sparse_attention.py [--d 64] [--k 64] [--batch 4] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys

import torch
from _timing import best_time  # benchmarks/_timing.py (scripts run from their folder)

from mqar_theory.flops import count_flops
from mqar_theory.mixers import get_mixer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    ap.add_argument("--target", type=float, default=5.0, help="required speed-up at the longest N (exit 1 below)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"d={args.d} k={args.k} batch={args.batch} threads={args.threads}; forward, eval mode, best of "
          f"{args.repeats}")
    print(f"{'N':>6} {'dense ms':>10} {'sparse ms':>10} {'speed-up':>9} {'dense MFLOP/tok':>16} "
          f"{'sparse MFLOP/tok':>17} {'FLOP ratio':>11}")
    ratio = 0.0
    for N in args.lengths:
        dense = get_mixer("attention", args.d, N).eval()
        sparse = get_mixer("sparse_attention", args.d, N, selection="random", k=args.k).eval()
        u = torch.randn(args.batch, N, args.d)
        with torch.no_grad():
            t_dense = best_time(lambda: dense(u), args.repeats, warmup=True)  # noqa: B023
            t_sparse = best_time(lambda: sparse(u), args.repeats, warmup=True)  # noqa: B023
        one = u[:1]
        f_dense, f_sparse = count_flops(dense, one) / N, count_flops(sparse, one) / N
        ratio = t_dense / t_sparse
        print(f"{N:>6} {1e3 * t_dense:>10.2f} {1e3 * t_sparse:>10.2f} {ratio:>8.1f}x {f_dense / 1e6:>16.3f} "
              f"{f_sparse / 1e6:>17.3f} {f_dense / f_sparse:>10.1f}x")
    ok = ratio >= args.target
    verdict = "PASS" if ok else "FAIL"
    print(f"speed-up at N={args.lengths[-1]}: {ratio:.1f}x (target >= {args.target:.0f}x) -> {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
