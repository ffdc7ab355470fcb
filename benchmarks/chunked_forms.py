"""The chunked forms of the recurrent mixers against their naive references, in one run: milliseconds of a forward
pass (and of forward + backward) of ``forward`` and of ``forward_reference`` (the token loop) on the same input and
weights, and their ratio. The chunked form is expected to be no slower at N = 256 on one thread. A speed check, not a
test (the two forms are tested equal in float64 in tests/).

    OMP_NUM_THREADS=1 python benchmarks/chunked_forms.py [--seq-len 256] [--d-model 64] [--batch 8] [--repeats 5]
        [--threads 1] [--mixers linear_attention delta_net gated_delta_net mamba2 gla based]
"""

from __future__ import annotations

import argparse

import torch

from mqar_theory.mixers import get_mixer

try:
    from _timing import best_time
except ImportError:  # run from the repository root as a module
    from benchmarks._timing import best_time

#: the mixers with a chunked ``forward`` beside a token-loop ``forward_reference``
CHUNKED = ["linear_attention", "delta_net", "gated_delta_net", "mamba2", "gla", "based"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--mixers", nargs="+", default=CHUNKED)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# N={args.seq_len} d={args.d_model} B={args.batch} threads={args.threads}; best of {args.repeats}")
    print(f"{'mixer':<18} {'fwd chunked ms':>15} {'fwd naive ms':>13} {'naive/chunked':>14} "
          f"{'f+b chunked ms':>15} {'f+b naive ms':>13} {'naive/chunked':>14}")
    for name in args.mixers:
        m = get_mixer(name, args.d_model, args.seq_len)
        u = torch.randn(args.batch, args.seq_len, args.d_model, requires_grad=True)

        def fwd(f, u=u):
            with torch.no_grad():
                f(u)

        def fwd_bwd(f, u=u):
            f(u).square().sum().backward()

        times = {}
        for label, f in (("chunked", m), ("naive", m.forward_reference)):
            times[("fwd", label)] = best_time(lambda f=f: fwd(f), args.repeats, warmup=True)
            times[("fb", label)] = best_time(lambda f=f: fwd_bwd(f), args.repeats, warmup=True)
        row = [times[(k, lab)] * 1e3 for k in ("fwd", "fb") for lab in ("chunked", "naive")]
        print(f"{name:<18} {row[0]:>15.2f} {row[1]:>13.2f} {row[1] / row[0]:>14.2f} "
              f"{row[2]:>15.2f} {row[3]:>13.2f} {row[3] / row[2]:>14.2f}")


if __name__ == "__main__":
    main()
