"""Crossover of ``causal_conv_rows``: the dense Toeplitz product against the FFT, forward + backward, per length.

Shapes are H3's under ``recipe="official"`` (head_dim 2, batch 64): the shift SSM (G = d groups of R = B rows,
one filter per channel) and the diagonal SSM (G = d/2 heads of R = 4B rows: the p² = 4 outer-product channels of
a head share its kernel). Each line prints both times and the ratio toeplitz / fft measured in the same run.

    OMP_NUM_THREADS=1 python benchmarks/conv_rows.py [--seq-len 32 64 96 128 256] [--d-model 64] [--repeats 10]
"""

from __future__ import annotations

import argparse

import torch
from _timing import best_time

from mqar_theory.mixers.conv import causal_conv_rows


def time_method(method: str, G: int, R: int, N: int, repeats: int) -> float:
    torch.manual_seed(0)
    x = torch.randn(G, R, N, requires_grad=True)
    h = torch.randn(N, G, requires_grad=True)
    g = torch.randn(G, R, N)

    def step():
        causal_conv_rows(x, h, method=method).backward(g)

    return best_time(step, repeats, warmup=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq-len", type=int, nargs="+", default=[32, 64, 96, 128, 256])
    ap.add_argument("--d-model", type=int, nargs="+", default=[64])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} batch={args.batch}; forward + backward, best of {args.repeats}")
    print(f"{'d':>4} {'N':>4}  {'shape':<14}{'toeplitz ms':>12}{'fft ms':>9}{'ratio':>7}")
    for d in args.d_model:
        for N in args.seq_len:
            for name, G, R in (("shift SSM", d, args.batch), ("diagonal SSM", d // 2, 4 * args.batch)):
                t_toep = time_method("toeplitz", G, R, N, args.repeats)
                t_fft = time_method("fft", G, R, N, args.repeats)
                print(f"{d:>4} {N:>4}  {name:<14}{1e3 * t_toep:>12.2f}{1e3 * t_fft:>9.2f}{t_toep / t_fft:>7.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
