"""Expanding a spec into runs, and the hash that names each run's record.

A run is (model name, config): the config is the explicit merge of ``base``, the model's entry, the task
and the other axes' values, i.e. the ``run_mqar`` keyword arguments the spec sets. Its hash is the first 16
hex digits of SHA-256 over the canonical JSON of ``{"model", "config"}`` (keys sorted, floats written with
12 significant digits), so it does not depend on the order of keys in the file, on which file or sweep the
run came from, on the device, or on the number of workers.

Decision: the hash covers what the spec sets, not ``run_mqar``'s defaults for what it leaves out, so a new
optional argument in the library does not orphan every committed record. The record stores the complete
resolved configuration as well (``resolved_config``); set ``MQAR_RETRAIN=1`` to retrain after a change of a
library default.
Keys added to ``run_mqar`` after records were committed are left out of the hash at their default value
(``HASH_OMIT_AT_DEFAULT``: ``recipe: clean``), so a spec that names the default explicitly still finds the
records made before the key existed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

__all__ = ["Run", "expand", "canonical", "run_hash", "HASH_OMIT_AT_DEFAULT"]

#: config keys that are not hashed when they hold this value (keys newer than some committed records)
HASH_OMIT_AT_DEFAULT = {"recipe": "clean"}


def canonical(value):
    """A JSON-ready copy with floats rounded to 12 significant digits and tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return canonical(value.item())
    raise TypeError(f"value {value!r} of type {type(value).__name__} has no canonical JSON form")


def run_hash(model: str, config: dict) -> str:
    hashed = {k: v for k, v in canonical(config).items()
              if not (k in HASH_OMIT_AT_DEFAULT and v == HASH_OMIT_AT_DEFAULT[k])}
    text = json.dumps({"model": model, "config": hashed}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Run:
    """One run of a sweep: ``model`` (its name), ``config`` (``run_mqar`` keyword arguments), ``hash``."""

    model: str
    config: dict
    sources: dict = field(default_factory=dict, repr=False)  # key -> where in the spec it was set
    note: dict | None = field(default=None, repr=False, compare=False)  # why a sweep added it (its record's "bracket")

    @property
    def hash(self) -> str:
        return run_hash(self.model, self.config)

    def origin(self, key: str) -> str:
        """Where ``key`` was set in the spec (for error messages), e.g. ``axes.task[2].num_kv_pairs``."""
        return self.sources.get(key, f"base.{key}")

    def label(self) -> str:
        c = self.config
        parts = [self.model] + [f"{k}={c[k]}" for k in ("d_model", "seq_len", "num_kv_pairs", "lr", "seed")
                                if k in c]
        return " ".join(parts)


def _model_name(mixer) -> str:
    return mixer if isinstance(mixer, str) else "+".join(map(str, mixer))


def expand(spec) -> list[Run]:
    """The runs of a ``Spec``: models x task x the other axes (in file order), duplicates dropped."""
    import itertools

    if spec.models is not None:
        chosen = spec.models if spec.model_set is None else spec.model_sets[spec.model_set]
        models = [(m, dict(spec.models[m]), f"models.{m}") for m in chosen]
    else:
        models = [(None, {}, None)]
    tasks = [(t, f"axes.task[{i}]") for i, t in enumerate(spec.axes["task"])] if "task" in spec.axes else [
        ({}, None)]
    others = [k for k in spec.axes if k != "task"]
    runs, seen = [], set()
    for (mname, mcfg, mwhere), (task, twhere) in itertools.product(models, tasks):
        for values in itertools.product(*(list(enumerate(spec.axes[k])) for k in others)):
            config = canonical(dict(spec.base))
            sources = {k: f"base.{k}" for k in spec.base}
            config.update(canonical(mcfg))
            sources.update({k: f"{mwhere}.{k}" for k in mcfg})
            config.update(canonical(task))
            sources.update({k: f"{twhere}.{k}" for k in task})
            for k, (i, v) in zip(others, values, strict=True):
                config[k] = canonical(v)
                sources[k] = f"axes.{k}[{i}]"
            model = mname if mname is not None else _model_name(config.get("mixer", "attention"))
            run = Run(model=model, config=config, sources=sources)
            if run.hash not in seen:
                seen.add(run.hash)
                runs.append(run)
    return runs
