"""Instances verified per second for each hand-set construction, on each device present.

    python benchmarks/constructions.py [--quick] [--devices cpu,cuda] [--dtype float32|float64]

For every construction and device: build it for (c, N), run ``predict`` on fresh ``make_mqar``
instances in batches, compare every position with ``expected_answers`` and report
instances / second of ``predict`` (after one warm-up batch), its speed as a ratio against the
baseline measured in the same run (the dictionary oracle ``expected_answers``, a Python loop on the
CPU, on the same instances), and whether every answer was right. A construction whose module is
missing or whose size does not fit a setting is reported as skipped. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import importlib
import time

import torch

from mqar_theory.bounds import measure_sizes
from mqar_theory.constructions.base import expected_answers
from mqar_theory.data import make_mqar

CONSTRUCTIONS = [  # (module under mqar_theory.constructions, builder name, constants given K)
    ("attention_h27", "attention_h27", lambda K: {}),
    ("attention_softmax", "attention_softmax", lambda K: {}),
    ("baseconv_data_independent", "baseconv_data_independent", lambda K: {}),
    ("baseconv_sorting", "baseconv_sorting", lambda K: {}),
    # t = K distance slots, the most a make_mqar input with K pairs needs (as in bounds' grids)
    ("baseconv_input_dependent", "baseconv_input_dependent", lambda K: {"max_distances": K}),
]
# (c, N, K, instances): the quick profile fits a few seconds per construction on 2 CPU cores
SETTINGS = {
    "quick": [(64, 64, 8, 128)],
    "full": [(64, 64, 8, 512), (64, 256, 16, 256), (256, 256, 16, 128), (1024, 256, 16, 32)],
}
MAX_PARAMS = 10**8  # skip a construction with more stored numbers than this (attention_h27 has 54c²)


def load(module: str, name: str):
    try:
        return getattr(importlib.import_module(f"mqar_theory.constructions.{module}"), name)
    except (ImportError, AttributeError) as e:
        return e


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_predict(con, inputs: torch.Tensor, dev: torch.device, batch: int) -> tuple[float, torch.Tensor]:
    """(seconds, predictions) of predict over all inputs in batches, after a warm-up batch."""
    with torch.no_grad():
        con.predict(inputs[:batch].to(dev))
        sync(dev)
        t0 = time.perf_counter()
        preds = [con.predict(inputs[s : s + batch].to(dev)) for s in range(0, len(inputs), batch)]
        sync(dev)
        seconds = time.perf_counter() - t0
    return seconds, torch.cat([p.cpu() for p in preds])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one small setting (seconds)")
    ap.add_argument("--devices", default=None, help="comma list; default cpu plus cuda when available")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--batch", type=int, default=32, help="instances per predict call")
    args = ap.parse_args(argv)
    cuda = ["cuda"] if torch.cuda.is_available() else []
    devices = args.devices.split(",") if args.devices else ["cpu"] + cuda
    dtype = getattr(torch, args.dtype)
    settings = SETTINGS["quick" if args.quick else "full"]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, dtype {args.dtype}, "
          f"devices {devices}")
    head = f"{'construction':27s} {'device':6s} {'c':>5s} {'N':>5s} {'K':>3s} {'inst/s':>10s} " \
           f"{'oracle/s':>10s} {'ratio':>8s}  exact"
    print(head)
    print("-" * len(head))
    for c, N, K, n in settings:
        data = make_mqar(vocab_size=c, seq_len=N, num_kv_pairs=K, num_examples=n, seed=0)
        t0 = time.perf_counter()
        expected = expected_answers(data.inputs, c)
        oracle_rate = n / (time.perf_counter() - t0)
        for module, name, constants in CONSTRUCTIONS:
            builder = load(module, name)
            if isinstance(builder, Exception):
                print(f"{name:27s} skipped: {builder}")
                continue
            con = builder(c, N, **constants(K))
            stored = measure_sizes(con, data.inputs[:1])["params"]
            if stored > MAX_PARAMS:
                print(f"{name:27s} {'-':6s} {c:5d} {N:5d} {K:3d} skipped: {stored} parameters")
                continue
            for dev_name in devices:
                dev = torch.device(dev_name)
                con = con.to(device=dev, dtype=dtype)
                seconds, pred = time_predict(con, data.inputs, dev, args.batch)
                rate = n / seconds
                exact = bool((pred == expected).all())
                print(f"{name:27s} {dev_name:6s} {c:5d} {N:5d} {K:3d} {rate:10.1f} {oracle_rate:10.1f} "
                      f"{rate / oracle_rate:8.3g}  {exact}")
    print("ratio = construction instances/s over the dictionary oracle's (Python, CPU) on the same instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
