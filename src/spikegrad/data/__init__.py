"""Data sets by name.

Each data set lives in one module of this package that provides

* ``timing(name) -> (n_steps, dt_ms)``: the simulation steps and step width the data set
  runs on (its entry of the config's ``[data.timing]`` table; they belong to the data set,
  so a config written for one data set never runs another on its timing),
* ``defaults(name) -> dict``: dotted config values that apply when the data set is
  chosen (network size, …) unless the user sets them, and
* ``load(name, cfg) -> DataSplits``: the train/validation/test splits.

Modules are imported on first use, so heavy readers (h5py, audio) load only when needed.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpikegradError
from ..registry import Registry
from .events import DataSplits, DenseData, EventData

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["DataSplits", "DenseData", "EventData", "DATASETS", "available_datasets",
           "dataset_defaults", "dataset_dir", "dataset_max_dropped", "dataset_timing", "dataset_phases", "data_root", "load_dataset"]

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


def load_dataset(cfg: "Config") -> DataSplits:
    """Train/validation/test splits of the data set ``cfg.data.name``."""
    return _module(cfg.data.name).load(cfg.data.name, cfg)


def dataset_phases(cfg: "Config") -> list[tuple[float, float, str]]:
    """Named time intervals of a trial in ms (e.g. stimulus, delay, response), if the data set has them."""
    module = _module(cfg.data.name)
    return list(module.phases(cfg)) if hasattr(module, "phases") else []


def data_root() -> Path:
    """Where downloads go: $SPIKEGRAD_DATA, else ~/.cache/spikegrad."""
    env = os.environ.get("SPIKEGRAD_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spikegrad"


def dataset_dir(name: str, configured: str = "") -> Path:
    """Folder holding data set ``name``'s files in their official layout.

    ``configured`` (``--data-dir`` / ``data.dir``) wins; otherwise ``data_root()/name``.
    """
    return Path(configured).expanduser() if configured else data_root() / name
