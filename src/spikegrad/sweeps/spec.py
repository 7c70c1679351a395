"""A sweep file: the train TOML schema plus a ``[sweep]`` table (name, grid, seeds, quick),
its points (grid × seeds) and their configs, and the metric that ranks them."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config import Config, merge_nested, nest, read_toml
from ..errors import SpikegradError

SWEEP_KEYS = ("name", "grid", "seeds", "quick")
METRIC_ATTRS = ("val_accuracy", "test_accuracy", "train_accuracy", "last_epoch_test_accuracy", "test_loss",
                "hidden_spikes_per_sample", "hidden_spikes_per_layer", "best_epoch", "epochs", "diverged",
                "wall_seconds", "selection")
# Metrics a loss names (val_<metric>, test_<metric>, …) are recorded too.
METRIC_PREFIXES = ("val_", "test_", "train_", "last_epoch_test_")

@dataclass
class SweepSpec:
    """A parsed sweep: train tables (``--quick`` overrides already applied), grid, seeds."""
    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    quick: bool = False
    source: str = "sweep"
    points: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """What workers and joining machines must agree on (stored in the study)."""
        return json.dumps({"name": self.name, "base": self.base, "grid": self.grid, "seeds": self.seeds,
                           "quick": self.quick}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        raw = json.loads(text)
        spec = cls(raw["name"], raw["base"], raw["grid"], raw["seeds"], raw["quick"], source=f"sweep {raw['name']}")
        spec.points = expand(spec)
        return spec


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"beta": [..]}} and {"model.beta": [..]} both → {"model.beta": [..]}."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _check_key(key: str, where: str) -> None:
    try:
        value = Config().get(key)
    except SpikegradError:
        raise SpikegradError(f"{where}: unknown config key {key!r}") from None
    if dataclasses.is_dataclass(value):
        raise SpikegradError(f"{where}: {key!r} is a table; name one of its fields")


def _check_grid(grid: Mapping[str, Any], source: str, where: str) -> None:
    for key, values in grid.items():
        _check_key(key, f"{source}: {where}")
        if key == "train.seed":
            raise SpikegradError(f"{source}: {where}: list seeds in sweep.seeds, not as 'train.seed'")
        if not isinstance(values, list) or not values:
            raise SpikegradError(f"{source}: {where} {key!r} must be a non-empty list of values, got {values!r}")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SpikegradError(f"{source}: {where} {key!r} lists a value twice: {values!r}")


def _check_seeds(seeds: Any, source: str, where: str) -> list[int]:
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise SpikegradError(f"{source}: {where} must be a non-empty list of integers ≥ 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SpikegradError(f"{source}: {where} lists a seed twice: {seeds!r}")
    return list(seeds)


def load_sweep(path: str | Path, quick: bool = False) -> SweepSpec:
    """Read and validate a sweep file: every grid key, value and point config is checked."""
    raw = read_toml(path)
    return parse_sweep(raw, str(path), quick, default_name=Path(path).stem)


def parse_sweep(raw: Mapping[str, Any], source: str = "sweep", quick: bool = False,
                default_name: str = "sweep") -> SweepSpec:
    raw = dict(raw)
    table = raw.pop("sweep", None)
    if not isinstance(table, Mapping):
        raise SpikegradError(f"{source}: needs a [sweep] table with a grid")
    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise SpikegradError(f"{source}: unknown key 'sweep.{unknown[0]}' (known: {', '.join(SWEEP_KEYS)})")
    base_cfg = Config.from_dict(raw, source)  # the train part alone must be valid
    name = table.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SpikegradError(f"{source}: sweep.name must be a non-empty string")

    grid_raw = table.get("grid", {})
    if not isinstance(grid_raw, Mapping) or not grid_raw:
        raise SpikegradError(f"{source}: sweep.grid must be a table of config keys to lists of values")
    grid = _flatten(grid_raw)
    _check_grid(grid, source, "sweep.grid")
    seeds = _check_seeds(table.get("seeds", [base_cfg.train.seed]), source, "sweep.seeds")

    quick_raw = table.get("quick", {})
    if not isinstance(quick_raw, Mapping):
        raise SpikegradError(f"{source}: sweep.quick must be a table of config keys to values")
    quick_over = _flatten(quick_raw)
    # a grid key (or "seeds") in sweep.quick replaces that value list: --quick shrinks the grid
    quick_grid = {k: quick_over.pop(k) for k in list(quick_over) if k in grid}
    quick_seeds = quick_over.pop("seeds", None)
    for key in quick_over:
        _check_key(key, f"{source}: sweep.quick")
    _check_grid(quick_grid, source, "sweep.quick")
    if quick_seeds is not None:
        quick_seeds = _check_seeds(quick_seeds, source, "sweep.quick.seeds")
    base = merge_nested(raw, nest(quick_over)) if quick else raw
    if quick:
        Config.from_dict(base, f"{source} (--quick)")
        grid = {**grid, **quick_grid}
        seeds = quick_seeds if quick_seeds is not None else seeds

    spec = SweepSpec(name.strip(), json.loads(json.dumps(base)), grid, list(seeds), quick, source)
    spec.points = expand(spec)
    for point in spec.points:  # wrong types or impossible values fail before any work
        point_config(spec, point)
    spec_selection(spec)
    return spec


def point_key(params: Mapping[str, Any], seed: int | None = None) -> str:
    body = dict(params) if seed is None else {**params, "train.seed": seed}
    return json.dumps(body, sort_keys=True)


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Grid product × seeds, in file order: [{"index", "params", "seed", "key", "config"}]."""
    keys = list(spec.grid)
    points = []
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        params = dict(zip(keys, values))
        for seed in spec.seeds:
            points.append({"index": len(points), "params": params, "seed": seed,
                           "key": point_key(params, seed), "config": point_key(params)})
    return points


def point_config(spec: SweepSpec, point: Mapping[str, Any]) -> Config:
    overrides = {**point["params"], "train.seed": point["seed"]}
    return Config.from_dict(merge_nested(spec.base, nest(overrides)), f"{spec.source} point {point['key']}")


def _is_metric(key: str) -> bool:
    return key in METRIC_ATTRS or key.startswith(METRIC_PREFIXES)


def row_selection(row: Mapping[str, Any]):
    """The selection a trial's metrics name (``selection``: metric and direction); rows
    written before losses named theirs: validation accuracy, higher is better."""
    from ..losses import Selection

    sel = row.get("selection")
    if isinstance(sel, Mapping) and isinstance(sel.get("metric"), str):
        return Selection(sel["metric"], bool(sel.get("higher_is_better", True)))
    return Selection("val_accuracy", True)


def spec_selection(spec: "SweepSpec"):
    """The selection of the loss the sweep's points train with (the first point's; the loss
    and its direction must be the same for all, or the ranking would mean nothing)."""
    from ..losses import Selection, make_loss

    found = set()
    for point in spec.points:
        sel = make_loss(point_config(spec, point)).selection
        found.add((sel.metric, sel.higher_is_better))
    if len(found) > 1:
        raise SpikegradError(f"sweep {spec.name!r}: its points select by different metrics {sorted(found)}; "
                             f"one sweep ranks by one metric (do not put train.loss in the grid)")
    metric, higher = found.pop()
    return Selection(f"val_{metric}", higher)
