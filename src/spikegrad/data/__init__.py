"""Data sets by name.  Each module turns its config section into :class:`DataSplits`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import SpikegradError
from .events import DataSplits, EventData
from .randman import RandmanSpec, make_randman

if TYPE_CHECKING:
    from ..config import DataConfig

__all__ = ["DataSplits", "EventData", "RandmanSpec", "make_randman", "load_dataset", "DATASETS"]


def _randman(cfg: "DataConfig") -> DataSplits:
    return make_randman(cfg.randman, cfg.seed)


DATASETS: dict[str, Callable[["DataConfig"], DataSplits]] = {"randman": _randman}


def load_dataset(cfg: "DataConfig") -> DataSplits:
    try:
        loader = DATASETS[cfg.name]
    except KeyError:
        raise SpikegradError(
            f"unknown dataset {cfg.name!r}; available: {', '.join(sorted(DATASETS))}") from None
    return loader(cfg)
