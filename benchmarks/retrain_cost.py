"""What retraining every committed record would cost now, from the code's speed-up measured in this run.

A record's ``wall_seconds`` is what it took at its own revision, under the load of the machine that trained it
(two single-thread sweep workers on 2 cores). For every distinct trained model (``trained_config["model"]``) and
batch size, this script times a training step (``LanguageModel(inputs, labels)``, backward, AdamW; the best of
``--steps`` after a warm-up step, on a batch of the model's own task) twice in this run: by the package of the
record's revision (``git archive REV mqar_theory``, unpacked and first on ``PYTHONPATH`` of a subprocess) and by the
working tree's (the same script in a subprocess), alternating the two per revision. A record then costs now
``wall_seconds x now / then``. Printed per profile: records, recorded hours, hours now, their ratio; and the total
on one thread and on 2 cores (the sweeps run one single-thread worker per core).

    OMP_NUM_THREADS=1 python benchmarks/retrain_cost.py [--results results] [--profiles figure2_cpu ...] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: run in a subprocess: times one training step of each job read from stdin, prints the seconds as JSON
WORKER = r"""
import json, sys, time
import torch
root = sys.argv[1]
import mqar_theory
if root and not mqar_theory.__file__.startswith(root):
    raise SystemExit(f"imported {mqar_theory.__file__}, not the package under {root}")
from mqar_theory.data import make_mqar
from mqar_theory.model import LanguageModel
torch.set_num_threads(int(sys.argv[2]))
repeats = int(sys.argv[3])
out = []
for job in json.load(sys.stdin):
    torch.manual_seed(0)
    model = LanguageModel(**job["model"])
    data = make_mqar(**{**job["data"], "num_examples": job["batch_size"]})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    model.train()
    best = float("inf")
    for r in range(repeats + 1):
        t = time.perf_counter()
        loss = model(data.inputs, data.labels).loss
        aux = model.auxiliary_loss()
        opt.zero_grad(set_to_none=True)
        (loss + aux).backward()
        opt.step()
        if r:
            best = min(best, time.perf_counter() - t)
    out.append(best)
print(json.dumps(out))
"""


def time_jobs(jobs: list[dict], revision: str | None, threads: int, repeats: int) -> list[float]:
    """Seconds per training step of each job, by the package of ``revision`` (None: the working tree's)."""
    with tempfile.TemporaryDirectory(prefix="mqar-cost-") as tmp:
        env, root = dict(os.environ), ""
        if revision is not None:
            root = str(Path(tmp) / "src")
            os.mkdir(root)
            archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, "mqar_theory"],
                                     capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", root], input=archive.stdout, check=True)
            env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        proc = subprocess.run([sys.executable, "-c", WORKER, root, str(threads), str(repeats)],
                              input=json.dumps(jobs), text=True, capture_output=True, env=env, cwd=tmp)
        if proc.returncode:
            raise RuntimeError(f"timing at {revision or 'the working tree'} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout)


def _job(rec: dict) -> dict:
    """What a record's training step is timed on: its model, batch size and training-data config."""
    cfg = rec["trained_config"]
    return {"model": cfg["model"], "batch_size": cfg["train"]["batch_size"], "data": cfg["train_data"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--profiles", nargs="*", default=None, help="subfolders of --results (default: all)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    root = Path(args.results)
    profiles = args.profiles or sorted(p.name for p in root.iterdir() if p.is_dir())
    records = []
    for profile in profiles:
        for path in sorted((root / profile).glob("*.json")):
            rec = json.loads(path.read_text())
            if rec.get("status") in ("ok", "diverged") and rec.get("trained_config"):
                records.append((profile, rec))
    # the distinct (revision, model, batch) jobs, grouped by revision
    by_revision: dict[str, dict[str, dict]] = defaultdict(dict)
    for _, rec in records:
        job = _job(rec)
        by_revision[rec["git_revision"]][json.dumps(job, sort_keys=True)] = job
    t0 = time.perf_counter()
    ratio: dict[tuple[str, str], float] = {}
    for revision, jobs in sorted(by_revision.items()):
        keys = sorted(jobs)
        then = time_jobs([jobs[k] for k in keys], revision, args.threads, args.steps)
        now = time_jobs([jobs[k] for k in keys], None, args.threads, args.steps)
        for k, a, b in zip(keys, then, now, strict=True):
            ratio[revision, k] = b / a
    hours_then, hours_now, count = defaultdict(float), defaultdict(float), defaultdict(int)
    for profile, rec in records:
        r = ratio[rec["git_revision"], json.dumps(_job(rec), sort_keys=True)]
        hours_then[profile] += rec["wall_seconds"] / 3600
        hours_now[profile] += rec["wall_seconds"] * r / 3600
        count[profile] += 1
    print(f"threads={args.threads}; {len(ratio)} (revision, model) pairs timed at both revisions in "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'profile':<30}{'records':>8}{'h recorded':>12}{'h now':>8}{'now/recorded':>14}")
    for p in profiles:
        if count[p]:
            print(f"{p:<30}{count[p]:>8}{hours_then[p]:>12.2f}{hours_now[p]:>8.2f}"
                  f"{hours_now[p] / hours_then[p]:>14.2f}")
    total_then, total_now = sum(hours_then.values()), sum(hours_now.values())
    print(f"{'all':<30}{sum(count.values()):>8}{total_then:>12.2f}{total_now:>8.2f}{total_now / total_then:>14.2f}")
    print(f"a full retrain now: {total_now:.1f} single-thread hours, about {total_now / 2:.1f} hours on 2 cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
