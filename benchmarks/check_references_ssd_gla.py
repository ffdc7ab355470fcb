"""Side by side with the public pure-PyTorch references: our chunked SSD (``mqar_theory.mixers.mamba2.ssd_chunked``)
and chunked GLA (``mqar_theory.mixers.gla.gla_chunked``) against the reference functions on identical float64
inputs, and the same inputs through our own layers' ``forward`` / ``forward_reference`` / ``step``.

The reference files are not part of this repository: extract them from the public repositories and pass their
paths (they are imported at run time, nothing is copied):

    git --git-dir=<mamba> show a70e3d85e2db4bb5ded2e01aa4e6a1cbda355b32:mamba_ssm/modules/ssd_minimal.py > ssd.py
    git --git-dir=<fla> show bc3b101dcb713ddc5bd8924b66754eb68b5ccf89:fla/ops/gla/naive.py > gla_naive.py
    pip install --target <deps> einops          # ssd_minimal.py needs einops; the library does not
    python benchmarks/check_references_ssd_gla.py --ssd-minimal ssd.py --gla-naive gla_naive.py \\
        --extra-path <deps>

* ``ssd_minimal.py`` (state-spaces/mamba) defines ``ssd_minimal_discrete(X, A, B, C, block_len)`` with the
  discretised inputs X = Δ x, A = Δ A (Listing 1 of arXiv 2405.21060). At import it also imports the Triton kernel
  ``mamba_chunk_scan_combined`` (used only by its GPU self-test): a placeholder module stands in for it here.
* ``naive.py`` (fla-org/flash-linear-attention) defines ``naive_recurrent_gla(q, k, v, gk)``, q, k, gk of shape
  (B, T, H, K), gk = log α. It casts its inputs to float32 (``.float()``), so it is run twice: as written (float32
  round-off expected) and with ``Tensor.float`` made the identity for the call (the same arithmetic in float64).

Prints the max relative difference max|ours - theirs| / max|theirs| of each comparison; exit 1 if a float64
comparison exceeds ``--tol``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from mqar_theory.mixers.base import run_recurrent
from mqar_theory.mixers.gla import GLA, gla_chunked
from mqar_theory.mixers.mamba2 import Mamba2, ssd_chunked


def _load(path: str, name: str, stubs: dict[str, types.ModuleType] | None = None):
    """Import the file at ``path`` as module ``name``, with ``stubs`` placed in sys.modules first."""
    for mod_name, mod in (stubs or {}).items():
        sys.modules.setdefault(mod_name, mod)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _triton_placeholder() -> dict[str, types.ModuleType]:
    """Placeholder packages for ``from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined``."""
    names = ["mamba_ssm", "mamba_ssm.ops", "mamba_ssm.ops.triton", "mamba_ssm.ops.triton.ssd_combined"]
    mods = {n: types.ModuleType(n) for n in names}

    def unavailable(*args, **kwargs):
        raise RuntimeError("the Triton kernel is not available here (placeholder)")

    mods["mamba_ssm.ops.triton.ssd_combined"].mamba_chunk_scan_combined = unavailable
    return mods


@contextmanager
def _float_is_identity():
    """``Tensor.float()`` returns the tensor unchanged inside the block (keeps a float64 computation float64)."""
    original = torch.Tensor.float
    torch.Tensor.float = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.float = original


def _rel(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max()).item()


def check_ssd(ref, n: int, block: int, g: torch.Generator) -> dict[str, float]:
    """ssd_chunked against ssd_minimal_discrete at length n (a multiple of ``block``), float64."""
    B, H, P, m = 2, 3, 4, 5
    x = torch.randn(B, n, H, P, dtype=torch.float64, generator=g)
    dt = F.softplus(torch.randn(B, n, H, dtype=torch.float64, generator=g) - 1)
    A = -torch.exp(torch.rand(H, dtype=torch.float64, generator=g))
    Bm, Cm = (torch.randn(B, n, m, dtype=torch.float64, generator=g) for _ in range(2))
    theirs, their_state = ref.ssd_minimal_discrete(x * dt[..., None], A * dt, Bm[:, :, None].expand(B, n, H, m),
                                                   Cm[:, :, None].expand(B, n, H, m), block)
    out = {}
    for T in (block, 7, n):  # our chunking at their block, at a size that does not divide n, and one chunk
        ours, state = ssd_chunked(x, dt, A, Bm, Cm, T)
        out[f"ssd_chunked(T={T}) y"] = _rel(ours, theirs)
        out[f"ssd_chunked(T={T}) final state"] = _rel(state, their_state)
    return out


def check_gla(ref, n: int, g: torch.Generator) -> dict[str, float]:
    """gla_chunked against naive_recurrent_gla at length n, float64 (and as written, float32 inside)."""
    B, H, K, V = 2, 3, 4, 5
    q, k = (torch.randn(B, n, H, K, dtype=torch.float64, generator=g) for _ in range(2))
    v = torch.randn(B, n, H, V, dtype=torch.float64, generator=g)
    gk = F.logsigmoid(torch.randn(B, n, H, K, dtype=torch.float64, generator=g) + 2)  # log α: α in (0, 1)
    out = {}
    theirs32, _ = ref.naive_recurrent_gla(q, k, v, gk)
    with _float_is_identity():
        theirs, their_state = ref.naive_recurrent_gla(q, k, v, gk, output_final_state=True)
    assert theirs.dtype == torch.float64 and their_state.dtype == torch.float64
    for T in (16, 7, n):
        ours, state = gla_chunked(q, k, v, gk, T)
        out[f"gla_chunked(T={T}) o"] = _rel(ours, theirs)
        out[f"gla_chunked(T={T}) final state"] = _rel(state, their_state)
    out["gla_chunked(T=16) o vs the reference as written (float32 inside)"] = _rel(gla_chunked(q, k, v, gk, 16)[0],
                                                                                  theirs32)
    return out


def check_layers(n: int) -> dict[str, float]:
    """Our layers, their three paths on the same input (forward is chunked, reference and step are loops)."""
    out = {}
    for name, mixer in (("Mamba2", Mamba2(16, n, d_state=8, headdim=8, chunk_size=16)),
                        ("GLA", GLA(16, n, num_heads=2, chunk_size=16))):
        mixer = mixer.double()
        u = torch.randn(2, n, 16, dtype=torch.float64)
        with torch.no_grad():
            ref = mixer.forward_reference(u)
            out[f"{name}.forward vs forward_reference"] = _rel(mixer(u), ref)
            out[f"{name}.step vs forward_reference"] = _rel(run_recurrent(mixer, u)[0], ref)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ssd-minimal", required=True, help="path to mamba_ssm/modules/ssd_minimal.py")
    ap.add_argument("--gla-naive", required=True, help="path to fla/ops/gla/naive.py")
    ap.add_argument("--extra-path", action="append", default=[], help="added to sys.path (e.g. where einops is)")
    ap.add_argument("--n", type=int, default=64, help="sequence length (a multiple of --block)")
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--tol", type=float, default=1e-12)
    args = ap.parse_args(argv)
    sys.path[:0] = [str(Path(p).resolve()) for p in args.extra_path]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    ssd = _load(args.ssd_minimal, "ref_ssd_minimal", _triton_placeholder())
    gla = _load(args.gla_naive, "ref_gla_naive")
    results = {**check_ssd(ssd, args.n, args.block, g), **check_gla(gla, args.n, g), **check_layers(args.n)}
    print(f"float64 inputs, n={args.n}; max relative difference max|ours - theirs| / max|theirs|")
    worst = 0.0
    for key, value in results.items():
        print(f"  {key:<72} {value:.2e}")
        if "float32" not in key:
            worst = max(worst, value)
    print(f"worst float64 difference {worst:.2e} (tolerance {args.tol:.0e})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
