"""Milliseconds per training step of the Figure 2 models, as ratios to attention's step in the same run.

A step is what ``mqar_theory.train`` does per batch: ``LanguageModel(inputs, labels)`` (the labelled-positions
head), backward, AdamW. The models are those of ``sweeps/figure2_cpu.yaml`` (``recipe="official"``, 2 layers,
BaseConv the per-layer [k=3, long] pair), plus the frontier mixers named with ``--mixers``. Timing: every model
gets the same batches; the models are interleaved (one step of each in turn, ``--repeats`` rounds after a warm-up
round), so a load that hits the machine hits all of them alike, and each model's best step is kept.

GFLOP/s: 3 x the forward FLOPs of the mixers (their ``flops_per_token``, summed over the layers, times B·N tokens;
backward ~ 2x forward) per step second, against the 1-thread-per-core float32 matmul peak measured in the same
run (best of ``torch.mm`` of two 512x512 matrices). Mixers only (the embedding, head and norms are left out), so
it is a lower bound on the arithmetic the step does; a mixer whose FLOPs are mostly uncounted elementwise work
(RWKV's WKV, short convolutions) shows a low rate by construction.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py [--d-model 64 128] [--seq-len 64] [--batch 64]
        [--repeats 8] [--threads 1] [--recipe official] [--mixers attention baseconv hyena h3 rwkv ...]
"""

from __future__ import annotations

import argparse
import time

import torch

from mqar_theory.mixers import MIXERS
from mqar_theory.model import LanguageModel

#: Figure 2's five models as ``sweeps/figure2_cpu.yaml`` builds them (mixer, mixer_kwargs)
FIGURE2 = {
    "attention": ("attention", None),
    "baseconv": ("baseconv", [{"kernel_size": 3}, {"kernel_size": -1}]),
    "hyena": ("hyena", None),
    "h3": ("h3", None),
    "rwkv": ("rwkv", None),
}


def matmul_peak(threads: int, n: int = 512, repeats: int = 10) -> float:
    """FLOP/s of the best of ``repeats`` float32 ``torch.mm`` of two (n, n) matrices at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def build(name: str, d: int, N: int, vocab: int, n_layers: int, recipe: str) -> LanguageModel:
    mixer, kwargs = FIGURE2.get(name, (name, None))
    torch.manual_seed(0)
    return LanguageModel(vocab, d, N, n_layers=n_layers, mixer=mixer, mixer_kwargs=kwargs, recipe=recipe,
                         init_std=0.1)


def mixer_flops_per_token(model: LanguageModel) -> float | None:
    try:
        return float(sum(b.mixer.flops_per_token(model.seq_len) for b in model.blocks))
    except (NotImplementedError, AttributeError):
        return None


def step_fn(model: LanguageModel, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    model.train()

    def step():
        out = model(x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step


def measure(names, d: int, N: int, batch: int, vocab: int, n_layers: int, recipe: str, repeats: int) -> dict:
    """Best seconds per step of each model, interleaved round by round (one warm-up round untimed)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, N), generator=g)
    y = torch.full((batch, N), -100, dtype=torch.long)
    y[:, N // 2 :] = torch.randint(0, vocab, (batch, N - N // 2), generator=g)  # MQAR-like: queries in the 2nd half
    models = {n: build(n, d, N, vocab, n_layers, recipe) for n in names}
    steps = {n: step_fn(m, x, y) for n, m in models.items()}
    best = dict.fromkeys(names, float("inf"))
    for r in range(repeats + 1):
        for n in names:
            t = time.perf_counter()
            steps[n]()
            if r:
                best[n] = min(best[n], time.perf_counter() - t)
    return {n: (best[n], mixer_flops_per_token(models[n])) for n in names}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--seq-len", type=int, nargs="+", default=[64])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recipe", default="official", choices=["official", "clean"])
    ap.add_argument("--mixers", nargs="+", default=list(FIGURE2), choices=sorted(set(MIXERS) | set(FIGURE2)))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = ["attention"] + [m for m in args.mixers if m != "attention"]
    peak = matmul_peak(args.threads)
    print(f"threads={args.threads} batch={args.batch} vocab={args.vocab} layers={args.n_layers} "
          f"recipe={args.recipe} repeats={args.repeats}; float32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'N':>4} {'d':>4}  {'mixer':<16}{'ms/step':>9}{'x attn':>8}{'GFLOP/s':>9}{'% peak':>8}")
    for N in args.seq_len:
        for d in args.d_model:
            res = measure(names, d, N, args.batch, args.vocab, args.n_layers, args.recipe, args.repeats)
            ref = res["attention"][0]
            for n, (sec, fpt) in res.items():
                rate = None if fpt is None else 3.0 * fpt * args.batch * N / sec
                rate_s = "-" if rate is None else f"{rate / 1e9:.1f}"
                pct = "-" if rate is None else f"{100 * rate / peak:.0f}%"
                print(f"{N:>4} {d:>4}  {n:<16}{1e3 * sec:>9.1f}{sec / ref:>8.2f}{rate_s:>9}{pct:>8}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
