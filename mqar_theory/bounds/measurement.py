"""``measure``: build a construction over a grid, run it on fresh ``make_mqar`` instances and
tabulate its sizes, accuracy and the bounds' values and ratios; ``closed_form_table`` without running."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping

import pandas as pd
import sympy as sp
import torch

from ..constructions.base import expected_answers, run_program
from ..data import IGNORE_INDEX, MQARConfig, make_mqar
from ..utils import is_int, resolve_device
from .bound import MEASURED, Bound
from .claims import claims_of, closed_form_sizes
from .distances import interaction_distances, num_interaction_distances
from .observe import MeasurementError
from .registry import get_bound
from .sizes import count_tensors, measure_sizes

__all__ = ["GRID_KEYS", "interaction_distances", "measure", "closed_form_table"]

GRID_KEYS = ("N", "c", "K")  # required; "power_a" optional; any other key is a builder constant
_DATA_KEYS = {"N", "c", "K", "power_a"}


def _validate_grid(grid) -> list[dict]:
    if isinstance(grid, Mapping) or not isinstance(grid, Iterable):
        raise ValueError(f"grid: must be an iterable of dicts with keys {GRID_KEYS}, "
                         f"got {type(grid).__name__}")
    points = list(grid)
    if not points:
        raise ValueError("grid: is empty")
    for i, pt in enumerate(points):
        if not isinstance(pt, Mapping):
            raise ValueError(f"grid[{i}]: must be a dict with keys {GRID_KEYS}, got {type(pt).__name__}")
        for k in GRID_KEYS:
            if k not in pt:
                raise ValueError(f"grid[{i}]: missing key {k!r} (needs {GRID_KEYS})")
            if not is_int(pt[k]):
                raise ValueError(f"grid[{i}][{k!r}]={pt[k]!r}: must be an integer")
        try:
            MQARConfig(vocab_size=int(pt["c"]), seq_len=int(pt["N"]), num_kv_pairs=int(pt["K"]),
                       power_a=pt.get("power_a", 0.01), num_examples=1)
        except ValueError as e:
            raise ValueError(f"grid[{i}]={dict(pt)}: not a valid MQAR setting: {e}") from None
    return [dict(pt) for pt in points]


def _symbol_values(point: dict, width: int, t_measured: int) -> dict:
    """N, c from the grid point, d the measured width, t the distinct interaction distances measured
    from the instances (never a construction's own slot count); p, eps only if the point names them."""
    vals = {"N": point["N"], "c": point["c"], "d": width, "t": t_measured}
    for name in ("p", "eps"):
        if point.get(name) is not None:
            vals[name] = point[name]
    return vals


def measure(builder, grid, num_instances: int = 32, device="auto", dtype=torch.float64, seed: int = 0,
            bounds=None, batch_size: int = 64, margins: bool | None = None,
            progress: bool = False, name: str | None = None) -> pd.DataFrame:
    """Build ``builder(c, N, **constants)`` at every grid point and measure it.

    grid: iterable of dicts with ``N`` (seq_len built for), ``c`` (vocab_size), ``K`` (key-value
    pairs of the instances), optionally ``power_a``; every other key is passed to the builder.
    Answers are computed by the one runner (``constructions.base.run_program``), never by the construction's
    own ``predict``, so a layer applied outside the listed program cannot help it.
    Each point gets ``num_instances`` fresh ``make_mqar`` instances (seed ``seed + index``).

    Columns: construction, theorem, N, c, K, t (max distinct interaction distances over the
    instances, measured from the tokens), the sizes measured from the module (``sizes.measure_sizes``:
    params (= values + index + created + scalars), values, params_stored, params_nnz, index, fixed,
    fixed_mismatch, created, scalars, structure, layers, width, and t_filters for an input-dependent
    construction; all from the operator trace of ``observe``), measurement_error (why the trace refused the
    program: a number entered that is not counted; "" when measured), the closed forms beside them
    (params_formula, layers_formula, width_formula), accuracy (the runner's answers == ``expected_answers``
    at every position), label_accuracy (at the labelled positions, vs the labels), errors (wrong
    positions), position_wise (the trace's dataflow verdict at every position and every grid point) with
    locality_message, margin_min (smallest ``margin`` over every position; computed when ``margins`` is
    True, by default only in float32; NaN when the construction has none), seconds (predict wall
    time), dtype, device; and for each bound b: ``bound:<b.id>`` (value of its expression),
    ``ratio:<b.id>`` (measured / value) and, if b has a hypothesis, ``holds:<b.id>``.
    ``bounds``: ids or ``Bound``s; default the registry's bounds for the construction's name
    (measurable quantities only). ``name``: the construction's registry name (default its ``name``
    attribute), which picks the claims' bounds and the closed forms.
    """
    points = _validate_grid(grid)
    if not is_int(num_instances) or num_instances < 1:
        raise ValueError(f"num_instances={num_instances!r}: must be an integer >= 1")
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be an integer >= 1")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be an integer >= 0")
    if not callable(builder):
        raise ValueError(f"builder={builder!r}: must be callable as "
                         "builder(vocab_size, seq_len, **constants)")
    dev = resolve_device(device)
    want_margin = (dtype == torch.float32) if margins is None else bool(margins)
    explicit = None if bounds is None else [get_bound(b) for b in bounds]

    if progress:
        from tqdm.auto import tqdm

        points_iter = tqdm(points, desc=getattr(builder, "__name__", "measure"))
    else:
        points_iter = points
    rows = []
    for i, pt in enumerate(points_iter):
        consts = {k: v for k, v in pt.items() if k not in _DATA_KEYS}
        con = builder(pt["c"], pt["N"], **consts).to(device=dev, dtype=dtype)
        data = make_mqar(vocab_size=pt["c"], seq_len=pt["N"], num_kv_pairs=pt["K"],
                         num_examples=num_instances, power_a=pt.get("power_a", 0.01), seed=seed + i)
        expected = expected_answers(data.inputs, pt["c"])
        preds, margin_min, seconds = [], math.inf, 0.0
        with torch.no_grad():
            for s in range(0, num_instances, batch_size):
                x = data.inputs[s : s + batch_size].to(dev)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                preds.append(run_program(con, x).cpu())  # the runner, never a predict override
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                seconds += time.perf_counter() - t0
                if want_margin and not math.isnan(margin_min):
                    try:
                        margin_min = min(margin_min, float(con.margin(x).min()))
                    except NotImplementedError:
                        margin_min = math.nan
        pred = torch.cat(preds)
        labelled = data.labels != IGNORE_INDEX
        t_meas = int(num_interaction_distances(data.inputs, pt["c"]).max())
        try:
            sizes, error = measure_sizes(con, data.inputs), ""
        except MeasurementError as e:  # a number entered that is not counted: the row fails every size check
            sizes = count_tensors(con)
            sizes = {**sizes, "values": sizes.pop("params"), "params": -1, "layers": -1, "width": -1,
                     "position_wise": False, "locality_message": "not measured: the trace was refused"}
            error = str(e)
        cname = con.name if name is None else name
        row = {
            "construction": cname, "theorem": con.theorem,
            "N": pt["N"], "c": pt["c"], "K": pt["K"], "t": t_meas,
            **{k: v for k, v in consts.items()}, **sizes,
            "accuracy": float((pred == expected).double().mean()),
            "label_accuracy": float((pred[labelled] == data.labels[labelled]).double().mean()),
            "errors": int((pred != expected).sum()),
            "measurement_error": error,
            "margin_min": margin_min if want_margin else math.nan,
            "seconds": seconds, "instances": num_instances, "dtype": str(dtype).replace("torch.", ""),
            "device": str(dev),
        }
        try:
            row.update({f"{q}_formula": v for q, v in closed_form_sizes(cname, row).items()})
        except ValueError:  # a construction without a closed form
            pass
        for b, extra in _chosen(cname, explicit):
            row.update(_bound_columns(b, extra, _symbol_values(pt, sizes["width"], t_meas), row))
        rows.append(row)
    return pd.DataFrame(rows)


def _chosen(name: str, explicit) -> list[tuple[Bound, Mapping]]:
    """(bound, extra symbol values) pairs to tabulate: ``explicit`` bounds, or those the construction's
    claims name (measurable quantities only), with the values each claim fixes."""
    try:
        claims = {k.bound: k.values for k in claims_of(name)}
    except ValueError:  # not a registered construction
        claims = {}
    if explicit is not None:
        return [(b, claims.get(b.id, {})) for b in explicit]
    return [(get_bound(bid), v) for bid, v in claims.items() if get_bound(bid).quantity in MEASURED]


def _bound_columns(b: Bound, extra: Mapping, vals: dict, row: Mapping) -> dict:
    """``bound:``, ``ratio:`` and (with a hypothesis) ``holds:`` columns of bound ``b`` at symbol values
    ``vals`` and the ``extra`` ones a claim fixes, the measured sizes being in ``row``."""
    if b.quantity not in MEASURED:
        raise ValueError(f"bounds: {b.id!r} bounds {b.quantity!r}, which measure() does not measure")
    vals = dict(vals)
    vals.update({k.name if isinstance(k, sp.Symbol) else k: v for k, v in extra.items()})
    value = b.evaluate(**{s: vals[s] for s in b.symbols}) if set(b.symbols) <= set(vals) else math.nan
    measured = row[MEASURED[b.quantity]]
    out = {f"bound:{b.id}": value,
           f"ratio:{b.id}": math.nan if math.isnan(value) else measured / value if value > 0 else math.inf}
    if b.condition is not None:
        out[f"holds:{b.id}"] = b.holds(**vals)
    return out


def closed_form_table(name: str, grid) -> pd.DataFrame:
    """What ``measure`` tabulates about sizes and bounds, from the closed forms alone (nothing is
    built or run, so there are no accuracy columns): N, c, K, t = K (the most distinct distances K
    pairs can need), the grid's constants, params, layers, width and the columns of every bound the
    construction's claims name.
    It lets a grid too large for this machine (``GPU_GRID`` on a CPU) be
    checked for its sizes: ``check`` needs accuracy columns, which a caller adds knowingly."""
    rows = []
    for pt in _validate_grid(grid):
        consts = {k: v for k, v in pt.items() if k not in _DATA_KEYS}
        row = {"construction": name, "N": pt["N"], "c": pt["c"], "K": pt["K"], "t": pt["K"], **consts}
        row.update(closed_form_sizes(name, row))
        vals = {"N": pt["N"], "c": pt["c"], "d": row["width"], "t": row["t"]}
        for b, extra in _chosen(name, None):
            row.update(_bound_columns(b, extra, vals, row))
        rows.append(row)
    return pd.DataFrame(rows)
