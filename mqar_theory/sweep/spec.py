"""Sweep specs: a YAML file naming a base config, the axes varied, and the selection rule.

A spec is a mapping with these keys (anything else is an error):

``name``
    the sweep's name (default: the file's stem); stored in every record.
``description``
    free text.
``base``
    keyword arguments of ``mqar_theory.train.run_mqar`` shared by every run (``vocab_size``, ``num_train``,
    ``epochs``, ``batch_size``, ``init_std``, ``max_steps``, ...). ``device`` and ``progress`` are not
    config: they are options of the sweep itself.
``models``
    named models, each a mapping of ``run_mqar`` arguments that must include ``mixer`` (a registered
    name, or a list of names cycled over the layers for hybrids) and usually ``n_layers`` and
    ``mixer_kwargs`` (one mapping, or a list cycled over the layers). The model names form the ``model``
    axis. Without ``models``, the model is ``base.mixer`` (or a ``mixer`` axis) and is named after it.
``model_sets``
    named subsets of ``models``, each a non-empty list of model names, e.g. the depths of the official
    configs: ``{head: [attention, baseconv, ...], iclr: [attention, baseconv_4l, ...]}``.
``model_set``
    the set the sweep runs (a key of ``model_sets``); without it, every model of ``models`` runs.
``axes``
    the varied ``run_mqar`` arguments, each a non-empty list (``d_model: [64, 128]``,
    ``lr: [1.0e-3, 3.0e-3]``), or ``{logspace: [lo, hi, n]}`` / ``{linspace: [lo, hi, n]}``. The axis
    ``task`` lists (seq_len, num_kv_pairs) pairs, each as ``[N, K]`` or as a mapping with ``seq_len``,
    ``num_kv_pairs`` and other per-task arguments (e.g. ``batch_size``, which the paper ties to N).
``select``
    ``{metric: test_accuracy, over: [lr]}`` (the default): the paper's rule, the last evaluation's test
    accuracy maximised over the learning rate per (model, d_model, task) cell.
``lr_bracket``
    ``true`` or ``{step, max_rounds, solved}``: after the grid, every unsolved cell whose best lr is at an edge
    of the lrs run gets the next lr beyond it, for every seed, until its best lr is interior
    (``mqar_theory.sweep.bracket``). Needs ``lr`` set (an axis or in ``base``).

A ``run_mqar`` argument may be set by at most one of ``models``, ``task`` and the other axes (``base``
gives defaults under all of them), so no value silently overrides another. The runs are the Cartesian
product of models x task x axes (in that order, axes in file order).

Validation happens here, before any run starts: ``SpecError`` (a ``ValueError``) with a one-line message
that names the offending key, e.g. ``axes.task[2]: num_kv_pairs=40 ...``.

Number parsing: YAML 1.1 reads ``1e-3`` as a string; the loader here reads it as a float, as a person means.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

__all__ = ["SpecError", "Spec", "load_spec", "parse_spec", "resolve_spec_path", "run_mqar_keys", "SWEEPS_DIR"]

SWEEPS_DIR = Path(__file__).resolve().parent.parent.parent / "sweeps"

#: arguments of run_mqar that are options of the sweep, not part of a run's config
NOT_CONFIG = {"device", "progress"}
TOP_KEYS = ("name", "description", "base", "models", "model_sets", "model_set", "axes", "select", "lr_bracket")
RECIPES = ("clean", "official")
SELECT_METRICS = ("test_accuracy", "best_test_accuracy", "train_accuracy")


class SpecError(ValueError):
    """An invalid sweep spec; the message is one line naming the offending key."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` / ``3E+2`` (no dot) as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def run_mqar_keys() -> dict[str, object]:
    """Config keys a spec may set -> their default (``inspect.Parameter.empty`` if none): the named
    arguments of ``run_mqar`` and the keyword arguments it passes on to ``train``."""
    from ..train import run_mqar, train

    keys: dict[str, object] = {}
    for k, p in inspect.signature(run_mqar).parameters.items():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k not in NOT_CONFIG:
            keys[k] = p.default
    for k, p in inspect.signature(train).parameters.items():
        if p.kind == p.KEYWORD_ONLY and k not in NOT_CONFIG and k not in keys:
            keys[k] = p.default
    return keys


@dataclass
class Spec:
    """A validated sweep spec (see the module docstring); ``runs()`` expands it."""

    name: str
    base: dict
    models: dict[str, dict] | None
    axes: dict[str, list]
    select: dict
    description: str = ""
    path: str | None = None
    model_sets: dict[str, list[str]] = field(default_factory=dict)
    model_set: str | None = None
    lr_bracket: object = None  # a bracket.BracketRule, or None
    _runs: list | None = field(default=None, repr=False, compare=False)

    def runs(self):
        """The runs, in a fixed order (models x task x axes); see ``mqar_theory.sweep.runs``."""
        from .runs import expand

        if self._runs is None:
            self._runs = expand(self)
        return list(self._runs)


def resolve_spec_path(spec) -> Path:
    """A path to a YAML file, or a bare name found as ``sweeps/<name>.yaml`` in the repository."""
    p = Path(spec)
    if p.is_file():
        return p
    if p.suffix == "" and (SWEEPS_DIR / f"{p.name}.yaml").is_file() and len(p.parts) == 1:
        return SWEEPS_DIR / f"{p.name}.yaml"
    also = f" (nor sweeps/{p.name}.yaml)" if p.suffix == "" and len(p.parts) == 1 else ""
    raise SpecError(f"spec: file {str(spec)!r} not found{also}")


def load_spec(spec) -> Spec:
    """Read and validate a spec: a path (or bare name under ``sweeps/``), a mapping, or a ``Spec``."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec)
    path = resolve_spec_path(spec)
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"spec: {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return parse_spec(data, name=path.stem, path=str(path))


def _type_name(v) -> str:
    return type(v).__name__


def _axis_values(key: str, value) -> list:
    where = f"axes.{key}"
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("logspace", "linspace"):
            raise SpecError(f"{where}: a mapping must be {{logspace: [lo, hi, n]}} or {{linspace: [lo, hi, n]}}")
        kind, args = next(iter(value.items()))
        if not (isinstance(args, list) and len(args) == 3 and all(_is_num(a) for a in args[:2])
                and isinstance(args[2], int) and not isinstance(args[2], bool) and args[2] >= 1):
            raise SpecError(f"{where}.{kind}: must be [lo, hi, n] with numbers lo, hi and an integer n >= 1")
        grid = np.logspace(*args[:2], args[2]) if kind == "logspace" else np.linspace(*args[:2], args[2])
        return [float(f"{v:.12g}") for v in grid]
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: must be a non-empty list of values, got {_type_name(value)}")
    return list(value)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_keys(where: str, mapping: dict, allowed: dict) -> None:
    for k in mapping:
        if not isinstance(k, str) or k not in allowed:
            hint = " (device and progress are sweep options, not config)" if k in NOT_CONFIG else ""
            raise SpecError(f"{where}.{k}: unknown key; not an argument of run_mqar{hint}")


def parse_spec(data, name: str | None = None, path: str | None = None) -> Spec:
    """Validate a spec mapping (as read from YAML) and return a ``Spec``; raises ``SpecError``."""
    if not isinstance(data, dict):
        raise SpecError(f"spec: must be a mapping with keys {list(TOP_KEYS)}, got {_type_name(data)}")
    for k in data:
        if k not in TOP_KEYS:
            raise SpecError(f"{k}: unknown top-level key; allowed are {list(TOP_KEYS)}")
    allowed = run_mqar_keys()
    name = data.get("name", name) or "sweep"
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise SpecError(f"name: must be a string of letters, digits, '_', '.', '-', got {name!r}")
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        raise SpecError(f"description: must be a string, got {_type_name(description)}")

    base = data.get("base", {}) or {}
    if not isinstance(base, dict):
        raise SpecError(f"base: must be a mapping of run_mqar arguments, got {_type_name(base)}")
    _check_keys("base", base, allowed)

    models = data.get("models")
    if models is not None:
        if not isinstance(models, dict) or not models:
            raise SpecError("models: must be a non-empty mapping name -> {mixer, n_layers, mixer_kwargs, ...}")
        for m, cfg in models.items():
            if not isinstance(m, str) or not re.fullmatch(r"[A-Za-z0-9_.+-]+", m):
                raise SpecError(f"models.{m}: a model name must be letters, digits, '_', '.', '+', '-'")
            if not isinstance(cfg, dict):
                raise SpecError(f"models.{m}: must be a mapping with at least 'mixer', got {_type_name(cfg)}")
            _check_keys(f"models.{m}", cfg, allowed)
            if "mixer" not in cfg:
                raise SpecError(f"models.{m}.mixer: missing (a registered mixer name or a list of names)")

    model_sets, model_set = _model_sets(data, models)

    axes_in = data.get("axes", {}) or {}
    if not isinstance(axes_in, dict):
        raise SpecError(f"axes: must be a mapping axis -> list of values, got {_type_name(axes_in)}")
    axes: dict[str, list] = {}
    for k, v in axes_in.items():
        if k == "model":
            raise SpecError("axes.model: the model axis is the 'models' mapping (top level), not an axis")
        if k != "task":
            _check_keys("axes", {k: v}, allowed)
        axes[k] = _axis_values(k, v)
    if "task" in axes:
        axes["task"] = [_task(i, t, allowed) for i, t in enumerate(axes["task"])]

    # who sets what: each key from at most one of models / task / other axes
    setters: dict[str, str] = {}
    sources = [("axes." + k, [k]) for k in axes if k != "task"]
    if "task" in axes:
        sources.append(("axes.task", sorted({k for t in axes["task"] for k in t})))
    if models is not None:
        sources.append(("models", sorted({k for cfg in models.values() for k in cfg})))
    for src, keys in sources:
        for k in keys:
            if k in setters:
                raise SpecError(f"{src}: sets {k!r}, which {setters[k]} sets too (a key may vary in one place)")
            setters[k] = src
    if models is not None and "mixer" in base:
        raise SpecError("base.mixer: not allowed together with 'models' (each model names its mixer)")

    select = data.get("select", {}) or {}
    if not isinstance(select, dict):
        raise SpecError(f"select: must be a mapping {{metric, over}}, got {_type_name(select)}")
    for k in select:
        if k not in ("metric", "over"):
            raise SpecError(f"select.{k}: unknown key; allowed are ['metric', 'over']")
    metric = select.get("metric", "test_accuracy")
    if metric not in SELECT_METRICS:
        raise SpecError(f"select.metric: {metric!r} is not one of {list(SELECT_METRICS)}")
    over = select.get("over", ["lr"])
    over = [over] if isinstance(over, str) else over
    if not isinstance(over, list) or not all(isinstance(o, str) for o in over):
        raise SpecError("select.over: must be a list of config keys (e.g. [lr])")
    for o in over:
        if o not in allowed:
            raise SpecError(f"select.over: {o!r} is not a run_mqar argument")

    from .bracket import parse_bracket

    rule = parse_bracket(data.get("lr_bracket"), base, metric, error=SpecError)
    lr_in_models = models is not None and all("lr" in m for m in models.values())
    if rule is not None and "lr" not in axes and "lr" not in base and not lr_in_models:
        raise SpecError("lr_bracket: needs lr set, as an axis (axes.lr), in base or in every model")
    spec = Spec(name=name, base=dict(base), models=None if models is None else {m: dict(c) for m, c in
                models.items()}, axes=axes, select={"metric": metric, "over": list(over)},
                description=description, path=path, model_sets=model_sets, model_set=model_set, lr_bracket=rule)
    _validate_runs(spec)
    return spec


def _model_sets(data: dict, models) -> tuple[dict, str | None]:
    """Validate ``model_sets`` (name -> non-empty list of names of ``models``) and ``model_set`` (one key)."""
    sets = data.get("model_sets")
    chosen = data.get("model_set")
    if sets is None:
        if chosen is not None:
            raise SpecError(f"model_set: {chosen!r} given but the spec has no 'model_sets'")
        return {}, None
    if models is None:
        raise SpecError("model_sets: needs a 'models' mapping (a set lists names of models)")
    if not isinstance(sets, dict) or not sets:
        raise SpecError("model_sets: must be a non-empty mapping set name -> list of model names")
    out = {}
    for k, names in sets.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", k):
            raise SpecError(f"model_sets.{k}: a set name must be letters, digits, '_', '.', '-'")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise SpecError(f"model_sets.{k}: must be a non-empty list of model names")
        for n in names:
            if n not in models:
                raise SpecError(f"model_sets.{k}: {n!r} is not a model of 'models' ({sorted(models)})")
        if len(set(names)) != len(names):
            raise SpecError(f"model_sets.{k}: lists a model twice")
        out[k] = list(names)
    if chosen is not None and chosen not in out:
        raise SpecError(f"model_set: {chosen!r} is not a key of model_sets ({sorted(out)})")
    return out, chosen


def _task(i: int, t, allowed: dict) -> dict:
    where = f"axes.task[{i}]"
    if isinstance(t, (list, tuple)):
        if len(t) != 2:
            raise SpecError(f"{where}: a pair [seq_len, num_kv_pairs] has 2 entries, got {len(t)}")
        t = {"seq_len": t[0], "num_kv_pairs": t[1]}
    if not isinstance(t, dict):
        raise SpecError(f"{where}: must be [seq_len, num_kv_pairs] or a mapping, got {_type_name(t)}")
    _check_keys(where, t, allowed)
    for k in ("seq_len", "num_kv_pairs"):
        if k not in t:
            raise SpecError(f"{where}.{k}: missing")
    return dict(t)


def _validate_runs(spec: Spec) -> None:
    """Check every expanded run's values (types, MQAR constraints, mixers and their kwargs)."""
    from ..data import MQARConfig
    from ..mixers import MIXERS

    runs = spec.runs()
    defaults = run_mqar_keys()
    if not runs:
        raise SpecError("axes: the sweep expands to no run")
    built: set[str] = set()
    for run in runs:
        cfg, where = run.config, run.origin
        for k in ("seq_len", "num_kv_pairs", "vocab_size", "d_model", "n_layers", "num_train", "num_test",
                  "epochs", "batch_size", "seed", "data_seed"):
            if k in cfg and not (isinstance(cfg[k], int) and not isinstance(cfg[k], bool) and cfg[k] >= (
                    0 if k in ("seed", "data_seed") else 1)):
                raise SpecError(f"{where(k)}: {k}={cfg[k]!r} must be an integer >= "
                                f"{0 if k in ('seed', 'data_seed') else 1}")
        for k in ("lr", "weight_decay", "dropout", "init_std", "power_a"):
            if k in cfg and not _is_num(cfg[k]):
                raise SpecError(f"{where(k)}: {k}={cfg[k]!r} must be a finite number")
        if "recipe" in cfg and cfg["recipe"] not in RECIPES:
            raise SpecError(f"{where('recipe')}: recipe={cfg['recipe']!r} must be one of {list(RECIPES)}")
        if "lr" in cfg and cfg["lr"] <= 0:
            raise SpecError(f"{where('lr')}: lr={cfg['lr']!r} must be > 0")
        get = _getter(cfg, defaults)
        N, K = get("seq_len"), get("num_kv_pairs")
        try:
            MQARConfig(vocab_size=get("vocab_size"), seq_len=N, num_kv_pairs=K, power_a=get("power_a"),
                       random_non_queries=get("random_non_queries"), num_examples=get("num_train"),
                       seed=get("data_seed"), num_passes=get("num_passes"))
        except ValueError as e:
            field_ = str(e).split("=", 1)[0]
            raise SpecError(f"{where(field_)}: {e}") from None
        mixers = get("mixer")
        names = [mixers] if isinstance(mixers, str) else mixers
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise SpecError(f"{where('mixer')}: mixer={mixers!r} must be a name or a non-empty list of names")
        for n in names:
            if n not in MIXERS:
                raise SpecError(f"{where('mixer')}: unknown mixer {n!r}; registered mixers are {sorted(MIXERS)}")
        _check_model(run, get, built)


def _getter(cfg: dict, defaults: dict):
    def get(k):
        return cfg.get(k, defaults[k])

    return get


def _check_model(run, get, built: set) -> None:
    """Build the run's mixers once per distinct (mixers, kwargs, d, N, layers): bad kwargs fail here."""
    import json

    import torch

    from ..mixers import get_mixer
    from ..model import _per_layer, official_mixer

    n_layers, d, N, recipe = get("n_layers"), get("d_model"), get("seq_len"), get("recipe")
    mkw = get("mixer_kwargs")
    key = json.dumps([get("mixer"), mkw, d, N, n_layers, recipe], sort_keys=True, default=str)
    if key in built:
        return
    built.add(key)
    where = run.origin
    try:
        names = _per_layer(get("mixer"), n_layers, "mixer", str)
        kwargs = _per_layer({} if mkw is None else mkw, n_layers, "mixer_kwargs", dict)
    except ValueError as e:
        raise SpecError(f"{where('mixer_kwargs')}: {e}") from None
    if recipe == "official" and "mamba" in names and (set(names) != {"mamba"} or get("dropout")):
        raise SpecError(f"{where('mixer')}: with recipe 'official' mamba is all-Mamba with dropout None "
                        f"(the official MambaBlock), got mixer={get('mixer')!r}, dropout={get('dropout')!r}")

    def build(name, kw, i):
        return official_mixer(name, d, N, i, **kw) if recipe == "official" else get_mixer(name, d, N, **kw)

    seen = set()
    for i, (name, kw) in enumerate(zip(names, kwargs, strict=True)):
        k2 = json.dumps([name, kw], sort_keys=True, default=str)
        if k2 in seen:
            continue
        seen.add(k2)
        try:
            with torch.device("meta"):
                build(name, kw, i)
        except (ValueError, TypeError) as e:
            raise SpecError(f"{where('mixer_kwargs')}: mixer {name!r} with {kw}: {e}") from None
        except Exception:  # noqa: BLE001 (a mixer whose init cannot run on the meta device: build it for real)
            try:
                build(name, kw, i)
            except (ValueError, TypeError) as e:
                raise SpecError(f"{where('mixer_kwargs')}: mixer {name!r} with {kw}: {e}") from None
