"""Side by side with fla-org/flash-linear-attention's pure-PyTorch references: our linear-attention, DeltaNet and
Gated DeltaNet kernels (``mqar_theory.mixers.linear_attention`` / ``delta_net`` / ``gated_delta_net``) against the
reference functions on identical float64 q, k, v, β (, g), and the same through our DeltaNet layers' own inputs.

The reference files are not part of this repository; they are imported at run time from ``--fla`` (a checkout, or a
folder holding the extracted files at their repository paths), nothing is copied:

    G=$(git dir of a fla-org/flash-linear-attention mirror); C=bc3b101dcb713ddc5bd8924b66754eb68b5ccf89
    for f in delta_rule gated_delta_rule linear_attn; do
        mkdir -p /tmp/fla/fla/ops/$f; git --git-dir=$G show $C:fla/ops/$f/naive.py > /tmp/fla/fla/ops/$f/naive.py
    done
    pip install --target /tmp/refdeps einops          # the reference files import einops; the library does not
    python benchmarks/check_references.py --fla /tmp/fla --extra-path /tmp/refdeps

Used from them (``fla/ops/...``): ``delta_rule/naive.py`` ``delta_rule_recurrence(q, k, v, beta)`` and
``delta_rule_chunkwise(q, k, v, beta, chunk_size)`` ((B, H, T, K) layout, q scaled by K^-1/2 inside, the chunkwise
one needs T divisible by the chunk); ``gated_delta_rule/naive.py`` ``naive_recurrent_gated_delta_rule(q, k, v, beta,
g)`` and ``naive_chunk_gated_delta_rule(q, k, v, g, beta, chunk_size)`` ((B, T, H, K) layout); ``linear_attn/naive.py``
``naive_recurrent_linear_attn(q, k, v)`` ((B, T, H, K), scale K^-1/2, unnormalised). All but ``delta_rule_chunkwise``
cast their inputs to float32, so each is run twice: as written (float32 round-off expected), and as a float64
variant, imported from the same file with the float32 casts (``.float()``, ``torch.float32``, ``dtype=torch.float``)
turned into float64 in the source text before it is executed.

Prints max|ours - theirs| / max|theirs| for each comparison; exit 1 if a float64 comparison exceeds ``--tol``.
Another engineer's ``check_references_ssd_gla.py`` does the same for Mamba-2 and GLA.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from mqar_theory.mixers.delta_net import DeltaNet, delta_rule_chunked
from mqar_theory.mixers.gated_delta_net import GatedDeltaNet, gated_delta_rule_chunked
from mqar_theory.mixers.linear_attention import chunked_linear_attention, identity_features

FILES = {"delta": "fla/ops/delta_rule/naive.py", "gated": "fla/ops/gated_delta_rule/naive.py",
         "linear": "fla/ops/linear_attn/naive.py"}


def _load(path: Path, name: str, float64: bool):
    """Import ``path`` as module ``name``; with ``float64`` its float32 casts become float64 in the source first."""
    src = path.read_text()
    if float64:
        src = src.replace(".float()", ".double()").replace("torch.float32", "torch.float64")
        src = re.sub(r"dtype=torch\.float\b(?!\d)", "dtype=torch.float64", src)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    exec(compile(src, str(path), "exec"), module.__dict__)  # noqa: S102 - the reference file the user pointed to
    return module


def _rel(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max()).item()


def _inputs(B, H, n, dk, dv, g, gate=False):
    """q, k, v, β (, log α) in (B, H, n, ·) float64; keys L2-normalised as the layers feed them."""
    q = torch.randn(B, H, n, dk, dtype=torch.float64, generator=g)
    k = F.normalize(torch.randn(B, H, n, dk, dtype=torch.float64, generator=g), dim=-1)
    v = torch.randn(B, H, n, dv, dtype=torch.float64, generator=g)
    beta = torch.rand(B, H, n, dtype=torch.float64, generator=g)
    out = [q, k, v, beta]
    if gate:
        out.append(-torch.rand(B, H, n, dtype=torch.float64, generator=g))  # log α in (-1, 0]
    return out


def _t(x):
    """(B, H, n, ·) <-> (B, n, H, ·)."""
    return x.transpose(1, 2)


def check_delta(ref32, ref64, g, n=128, chunk=32) -> dict[str, tuple[float, bool]]:
    """DeltaNet: our chunked UT form against the reference recurrence and chunkwise form."""
    q, k, v, beta = _inputs(2, 2, n, 16, 16, g)
    dk = q.shape[-1]
    ours = delta_rule_chunked(q * dk**-0.5, k, v, beta, chunk_size=64)
    res = {
        "delta_rule_chunkwise (float64 as written)": (_rel(ours, ref32.delta_rule_chunkwise(q, k, v, beta, chunk)[0]),
                                                      True),
        "delta_rule_recurrence (as written, float32)": (_rel(ours, ref32.delta_rule_recurrence(q, k, v, beta)[0]),
                                                        False),
        "delta_rule_recurrence (float64 variant)": (_rel(ours, ref64.delta_rule_recurrence(q, k, v, beta)[0]), True),
    }
    m = DeltaNet(32, 100, num_heads=2, chunk_size=16).double()  # the layer's own q, k, v, β, n = 100 (ragged chunk)
    u = torch.randn(2, 100, 32, dtype=torch.float64, generator=g)
    with torch.no_grad():
        ql, kl, vl, bl = m._inputs(u)
        ours = delta_rule_chunked(ql, kl, vl, bl, m.chunk_size)
        theirs = ref64.delta_rule_recurrence(ql * m.head_dim**0.5, kl, vl, bl)[0]  # they scale q themselves
    res["DeltaNet layer inputs, n=100: delta_rule_recurrence (float64 variant)"] = (_rel(ours, theirs), True)
    return res


def check_gated(ref32, ref64, g, n=100, chunk=32) -> dict[str, tuple[float, bool]]:
    """Gated DeltaNet: our chunked form against the reference recurrence and chunk form (n not a chunk multiple)."""
    q, k, v, beta, gate = _inputs(2, 2, n, 16, 16, g, gate=True)
    ours = gated_delta_rule_chunked(q * q.shape[-1] ** -0.5, k, v, beta, gate, chunk_size=64)
    qt, kt, vt, bt, gt = _t(q), _t(k), _t(v), beta.transpose(1, 2), gate.transpose(1, 2)
    res = {}
    for label, ref, f64 in (("as written, float32", ref32, False), ("float64 variant", ref64, True)):
        rec = _t(ref.naive_recurrent_gated_delta_rule(qt, kt, vt, bt, gt)[0])
        chk = _t(ref.naive_chunk_gated_delta_rule(qt, kt, vt, gt, bt, chunk_size=chunk)[0])
        res[f"naive_recurrent_gated_delta_rule ({label})"] = (_rel(ours, rec), f64)
        res[f"naive_chunk_gated_delta_rule ({label})"] = (_rel(ours, chk), f64)
    m = GatedDeltaNet(32, 100, num_heads=2, chunk_size=16).double()
    u = torch.randn(2, 100, 32, dtype=torch.float64, generator=g)
    with torch.no_grad():
        ql, kl, vl, bl = m._inputs(u)
        gl = m._decay(u)
        ours = gated_delta_rule_chunked(ql, kl, vl, bl, gl, m.chunk_size)
        theirs = ref64.naive_recurrent_gated_delta_rule(_t(ql * m.head_dim**0.5), _t(kl), _t(vl), bl.transpose(1, 2),
                                                        gl.transpose(1, 2))[0]
    res["GatedDeltaNet layer inputs, n=100: naive_recurrent_gated_delta_rule (float64 variant)"] = (
        _rel(ours, _t(theirs)), True)
    return res


def check_linear(ref32, ref64, g, n=100) -> dict[str, tuple[float, bool]]:
    """Linear attention, identity map: chunked_linear_attention(φ(q), φ(k), v), φ(x) = x/K^{1/4}, i.e. q·k/√K."""
    q, k, v, _ = _inputs(2, 2, n, 16, 16, g)
    ours = chunked_linear_attention(identity_features(q), identity_features(k), v, chunk_size=16)
    res = {}
    for label, ref, f64 in (("as written, float32", ref32, False), ("float64 variant", ref64, True)):
        res[f"naive_recurrent_linear_attn ({label})"] = (_rel(ours, _t(ref.naive_recurrent_linear_attn(
            _t(q), _t(k), _t(v))[0])), f64)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fla", required=True, help="a flash-linear-attention checkout, or a folder with the files at "
                                                 + ", ".join(FILES.values()))
    ap.add_argument("--extra-path", action="append", default=[], help="added to sys.path (e.g. where einops is)")
    ap.add_argument("--tol", type=float, default=1e-12, help="largest relative difference of a float64 comparison")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path[:0] = args.extra_path
    root = Path(args.fla)
    missing = [f for f in FILES.values() if not (root / f).is_file()]
    if missing:
        ap.error(f"--fla {root}: missing {missing}")
    g = torch.Generator().manual_seed(args.seed)
    results = {}
    for key, check in (("delta", check_delta), ("gated", check_gated), ("linear", check_linear)):
        path = root / FILES[key]
        results.update(check(_load(path, f"fla_ref_{key}", False), _load(path, f"fla_ref_{key}_f64", True), g))
    bad = 0
    for label, (rel, f64) in results.items():
        flag = "" if not f64 else ("  ok" if rel <= args.tol else "  FAIL")
        bad += f64 and rel > args.tol
        print(f"{rel:.3e}  {label}{flag}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
