"""The figures by name (:data:`FIGURES`) and :func:`make_figure`, which the CLI calls."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Sequence


from ..errors import SpikegradError
from ..registry import Registry
from .plots import fig2, fig3, fig5, fig6, fig8, fig9, landscape, landscape_run
from .results import results_table
from ..sweeps import DB_NAME


FIGURES: Registry[Callable[..., dict[str, Any]]] = Registry("figure")
for _fig in (fig2, fig3, fig5, fig6, fig8, fig9, landscape):
    FIGURES.add(_fig.__name__, _fig)


def check_figure_name(name: str) -> Callable[..., dict[str, Any]]:
    return FIGURES.get(name)


def takes_top_k(name: str) -> bool:
    return "top_k" in inspect.signature(check_figure_name(name)).parameters


def is_run_folder(path: str | Path) -> bool:
    """A training run folder (config.toml, no sweep storage) rather than a sweep folder."""
    path = Path(path)
    return (path / "config.toml").is_file() and not (path / DB_NAME).is_file()


def make_figure(name: str, sweep_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None,
                top_k: int | None = None, storage: str | None = None, study: str | None = None) -> dict[str, Any]:
    """Read the sweep(s) and write ``OUT/NAME.png`` and ``OUT/NAME.csv`` (OUT: the first sweep folder).

    ``landscape`` also takes one run folder (written by ``spikegrad train``) instead of a sweep.
    """
    fn = check_figure_name(name)
    dirs = [sweep_dirs] if isinstance(sweep_dirs, (str, Path)) else list(sweep_dirs)
    if not dirs:
        raise SpikegradError("name at least one sweep folder")
    if top_k is not None:
        if not takes_top_k(name):
            raise SpikegradError(f"--top-k applies to {', '.join(n for n in FIGURES if takes_top_k(n))}, not {name}")
        if top_k < 1:
            raise SpikegradError(f"--top-k must be ≥ 1, got {top_k}")
    out = Path(out) if out is not None else Path(dirs[0])
    png, csv_path = out / f"{name}.png", out / f"{name}.csv"
    if name == "landscape" and len(dirs) == 1 and storage is None and is_run_folder(dirs[0]):
        return {"png": png, "csv": csv_path, "numbers": landscape_run(dirs[0], png, csv_path), "trials": 1}
    results = results_table(dirs, storage, study)
    numbers = fn(results, png, csv_path, **({"top_k": top_k} if top_k is not None else {}))
    return {"png": png, "csv": csv_path, "numbers": numbers, "trials": len(results.rows)}
