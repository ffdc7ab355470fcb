"""Training throughput per mixer: tokens per second of a ``LanguageModel`` (``--n-layers``, default 2;
forward, backward, AdamW step) with each mixer's fast ``forward``, against the same model (same weights,
same batches) whose mixers run their naive ``forward_reference`` (loops over positions, taps or recurrence
steps), measured in the same run. Prints one row per mixer with the speed-up ratio. A speed check, not a test.

    python benchmarks/train_throughput.py [--quick] [--d-model 64] [--seq-len 128] [--batch 16] [--n-layers 2]
                                          [--steps 5] [--threads 1] [--device cpu] [--mixers hyena h3 ...]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from mqar_theory.mixers import MIXERS
from mqar_theory.model import LanguageModel
from mqar_theory.utils import resolve_device

#: The zoo of Figure 2 and beyond, with the keyword arguments the benchmark builds them with.
ZOO = {
    "attention": {},
    "baseconv": {},
    "hyena": {},
    "h3": {},
    "long_conv": {},
    "rwkv": {},
    "based": {},
    "mamba": {},
    "sliding_window": {"window": 16},
}


def naive(model: LanguageModel) -> LanguageModel:
    """A copy of ``model`` whose mixers run ``forward_reference`` in place of ``forward``."""
    slow = copy.deepcopy(model)
    for block in slow.blocks:
        block.mixer.forward = block.mixer.forward_reference  # instance attribute: nn.Module.__call__ uses it
    return slow


def tokens_per_second(model, batches, device) -> float:
    """Train on ``batches`` (the first one is a warm-up, not timed); returns trained tokens per second."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    timed, elapsed = 0, 0.0
    for i, (x, y) in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = model(x, y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            elapsed += time.perf_counter() - t
            timed += x.numel()
    return timed / elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds in all")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per model (after one warm-up step)")
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: comparable on a shared machine)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mixers", nargs="+", default=list(ZOO), choices=sorted(MIXERS))
    args = ap.parse_args(argv)
    if args.quick:
        args.d_model, args.seq_len, args.batch, args.steps = 32, 32, 4, 2
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.randint(0, args.vocab, (args.batch, args.seq_len), generator=g).to(device),
         torch.randint(0, args.vocab, (args.batch, args.seq_len), generator=g).to(device))
        for _ in range(args.steps + 1)
    ]  # fmt: skip
    print(f"device={device} threads={args.threads} d_model={args.d_model} seq_len={args.seq_len} "
          f"batch={args.batch} vocab={args.vocab} layers={args.n_layers} steps={args.steps} (+1 warm-up)")
    print(f"{'mixer':<16}{'params':>10}{'fast tok/s':>14}{'naive tok/s':>14}{'speed-up':>10}")
    for name in args.mixers:
        torch.manual_seed(0)
        model = LanguageModel(args.vocab, args.d_model, args.seq_len, n_layers=args.n_layers, mixer=name,
                              mixer_kwargs=ZOO.get(name, {})).to(device)
        slow = naive(model)
        fast_tps = tokens_per_second(model, batches, device)
        naive_tps = tokens_per_second(slow, batches, device)
        print(f"{name:<16}{model.num_parameters():>10,}{fast_tps:>14,.0f}{naive_tps:>14,.0f}"
              f"{fast_tps / naive_tps:>9.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
