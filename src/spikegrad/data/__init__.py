"""Data sets by name.

Each data set lives in one module of this package that provides

* ``timing(name) -> (n_steps, dt_ms)``: the simulation steps and step width the data set
  runs on (its entry of the config's ``[data.timing]`` table; they belong to the data set,
  so a config written for one data set never runs another on its timing),
* ``defaults(name) -> dict``: dotted config values that apply when the data set is
  chosen (network size, …) unless the user sets them,
* ``SPEC``: the name of its section of the config's ``[data]`` table (its spec record),
* ``load(name, spec, root, seed) -> DataSplits``: the train/validation/test splits from
  what it needs only — its spec, the folder of its files (``dataset_dir``) and the seed;
  binning into steps of Δt happens per batch (``EventData.batch``), not here, and
* optionally ``check_timing(name, spec, n_steps, dt_ms)`` (a data set whose steps are fixed
  by its content, e.g. audio frames) and ``phases(spec)`` (named intervals of a trial).

:func:`load_dataset` reads those from a :class:`~spikegrad.config.Config`.  Modules are
imported on first use, so heavy readers (h5py, audio) load only when needed.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpikegradError
from ..registry import Registry
from .events import DataSplits, DenseData, EventData

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["DataSplits", "DenseData", "EventData", "DATASETS", "available_datasets",
           "dataset_defaults", "dataset_dir", "dataset_spec", "dataset_max_dropped", "dataset_timing", "dataset_phases", "data_root", "load_dataset"]

# data set name -> module in this package
DATASETS: Registry[str] = Registry("dataset")
for _name, _module_name in (("randman", "randman"), ("mnist", "mnist"), ("fashion-mnist", "mnist"),
                            ("shd", "shd"), ("ssc", "shd"), ("rawhd", "audio"), ("rawsc", "audio"),
                            ("clicks", "clicks")):
    DATASETS.add(_name, _module_name)


def files_missing(name: str, what: str, layout: str) -> SpikegradError:
    """The loaders' one error for data that is not there: what is missing, and the two ways
    to get it (``spikegrad data download NAME``, or ``--data-dir`` with ``layout``)."""
    return SpikegradError(f"{name}: {what}; run `spikegrad data download {name}` "
                          f"or pass --data-dir {layout}")


def available_datasets() -> list[str]:
    return DATASETS.names()


def _module(name: str):
    return importlib.import_module(f"{__name__}.{DATASETS.get(name)}")


def dataset_timing(name: str) -> tuple[int, float]:
    """(steps, Δt in ms) that data set ``name`` runs on unless its ``data.timing`` entry is set."""
    return _module(name).timing(name)


def dataset_max_dropped(name: str) -> float:
    """The share of a split's spike events that may fall after the window without stopping a
    run: 1 % unless the data set says otherwise (``MAX_DROPPED``, with its reason)."""
    return float(getattr(_module(name), "MAX_DROPPED", 0.01))


def dataset_defaults(name: str) -> dict[str, Any]:
    """Dotted config values that data set ``name`` brings (e.g. {"data.n_steps": 100})."""
    return dict(_module(name).defaults(name))


def dataset_spec(cfg: "Config", name: str | None = None):
    """The spec record (config section) of data set ``name`` (default ``cfg.data.name``)."""
    name = name or cfg.data.name
    return getattr(cfg.data, _module(name).SPEC)


def load_dataset(cfg: "Config") -> DataSplits:
    """Train/validation/test splits of the data set ``cfg.data.name``: its loader with its
    spec, folder and seed; ``info["events_past_window"]`` counts, per split of events, those
    the config's window n_steps·Δt drops at binning."""
    name = cfg.data.name
    module, spec = _module(name), dataset_spec(cfg)
    if hasattr(module, "check_timing"):
        module.check_timing(name, spec, cfg.data.n_steps, cfg.model.dt_ms)
    splits = module.load(name, spec, dataset_dir(name, cfg.data.dir), cfg.data.seed)
    _note_window(splits, name, cfg.data.n_steps, cfg.model.dt_ms * 1e-3, logging.getLogger(module.__name__))
    return splits


def _note_window(splits: DataSplits, name: str, n_steps: int, dt: float, log: logging.Logger) -> None:
    """Count (and log, in the data set module's logger) the events past the window."""
    late = {s: getattr(splits, s).past_window(n_steps, dt) for s in ("train", "val", "test")
            if isinstance(getattr(splits, s), EventData)}
    if not late:
        return
    splits.info["events_past_window"] = late
    for s, n in late.items():
        if n:
            total = len(getattr(splits, s).times)
            log.info("%s/%s: %d of %d events (%.2f%%) lie at t ≥ %g s (n_steps·Δt) and are dropped at binning",
                     name, s, n, total, 100.0 * n / max(1, total), n_steps * dt)


def dataset_phases(cfg: "Config") -> list[tuple[float, float, str]]:
    """Named time intervals of a trial in ms (e.g. stimulus, delay, response), if the data set has them."""
    module = _module(cfg.data.name)
    return list(module.phases(dataset_spec(cfg))) if hasattr(module, "phases") else []


def data_root() -> Path:
    """Where downloads go: $SPIKEGRAD_DATA, else ~/.cache/spikegrad."""
    env = os.environ.get("SPIKEGRAD_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikegrad"


def dataset_dir(name: str, configured: str = "") -> Path:
    """Folder holding data set ``name``'s files in their official layout.

    ``configured`` (``--data-dir`` / ``data.dir``) wins; otherwise ``data_root()/name``.
    """
    return Path(configured).expanduser() if configured else data_root() / name
