"""Statistics and a raster plot of a data set (``spikegrad data info``).

:func:`summarize` gives, per split, the number of samples and the class counts, and for
:class:`EventData` the events per sample (mean/min/max) and the latest event time, for
:class:`DenseData` frames × inputs and the value range.  :func:`plot_sample` draws one
sample: input events (time in ms vs channel) or a heatmap of the analog input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpikegradError
from .events import DataSplits, DenseData, EventData

__all__ = ["split_stats", "summarize", "format_summary", "plot_sample"]

SPLITS = ("train", "val", "test")


def split_stats(data: EventData | DenseData) -> dict[str, Any]:
    """Numbers describing one split (plain Python types, JSON-ready)."""
    n = len(data)
    per_class = np.bincount(np.asarray(data.labels, np.int64), minlength=data.n_classes) if n else np.zeros(0)
    stats: dict[str, Any] = {
        "samples": n,
        "class_min": int(per_class.min()) if n else 0,
        "class_max": int(per_class.max()) if n else 0,
    }
    if isinstance(data, EventData):
        counts = np.diff(data.offsets)
        stats.update(kind="events", events_total=int(len(data.times)),
                     events_mean=float(counts.mean()) if n else None,
                     events_min=int(counts.min()) if n else None,
                     events_max=int(counts.max()) if n else None,
                     last_event_ms=float(data.times.max() * 1e3) if len(data.times) else None)
    else:
        feats = data.features
        stats.update(kind="dense", frames=int(feats.shape[1]), inputs=int(feats.shape[2]),
                     value_min=float(np.min(feats)) if feats.size else None,
                     value_max=float(np.max(feats)) if feats.size else None,
                     non_finite=int(np.size(feats) - np.count_nonzero(np.isfinite(feats))))
    return stats


def summarize(splits: DataSplits) -> dict[str, Any]:
    """{"n_classes", "n_inputs", "splits": {"train"|"val"|"test": split_stats(...)}}."""
    return {"n_classes": int(splits.n_classes), "n_inputs": int(splits.n_inputs),
            "splits": {name: split_stats(getattr(splits, name)) for name in SPLITS}}


def _num(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def format_summary(name: str, summary: dict[str, Any]) -> list[str]:
    """Plain text lines (no wrapping, easy to read and to grep)."""
    lines = [f"data set: {name}", f"classes: {summary['n_classes']}", f"inputs: {summary['n_inputs']}"]
    splits = summary["splits"]
    if all(s["kind"] == "events" for s in splits.values()):
        header = ("split", "samples", "per class", "events/sample mean", "min", "max", "last event (ms)")
        rows = [(k, str(s["samples"]), f"{s['class_min']}-{s['class_max']}", _num(s["events_mean"], "{:.2f}"),
                 _num(s["events_min"]), _num(s["events_max"]), _num(s["last_event_ms"], "{:.2f}"))
                for k, s in splits.items()]
    else:
        header = ("split", "samples", "per class", "frames x inputs", "min value", "max value", "non-finite")
        rows = [(k, str(s["samples"]), f"{s['class_min']}-{s['class_max']}",
                 f"{s.get('frames', '-')} x {s.get('inputs', '-')}", _num(s.get("value_min"), "{:.4g}"),
                 _num(s.get("value_max"), "{:.4g}"), _num(s.get("non_finite")))
                for k, s in splits.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    return lines


def plot_sample(data: EventData | DenseData, index: int, path: str | Path, title: str) -> Path:
    """Write a raster (EventData) or heatmap (DenseData) of sample ``index`` to ``path``.

    Uses matplotlib's object API with the Agg canvas, so no GUI backend or pyplot state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if not 0 <= index < len(data):
        raise SpikegradError(f"--sample {index} is out of range: the split has {len(data)} samples")
    path = Path(path)
    if not path.parent.is_dir():
        raise SpikegradError(f"cannot write plot {path}: folder {path.parent} does not exist")
    label = int(data.labels[index])
    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if isinstance(data, EventData):
        lo, hi = int(data.offsets[index]), int(data.offsets[index + 1])
        times_ms, units = data.times[lo:hi] * 1e3, data.units[lo:hi]
        size = 60.0 if len(times_ms) <= 200 else 4.0
        ax.scatter(times_ms, units, s=size, marker="|", linewidths=1.5 if size > 10 else 0.8, color="k")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("input channel")
        ax.set_ylim(-0.5, data.n_units - 0.5)
        if len(times_ms) == 0:
            ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center")
    else:
        image = ax.imshow(np.asarray(data.features[index], np.float32).T, aspect="auto", origin="lower",
                          interpolation="nearest", cmap="viridis")
        fig.colorbar(image, ax=ax, label="input value")
        ax.set_xlabel("frame")
        ax.set_ylabel("input")
    ax.set_title(f"{title}, label {label}")
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as err:
        raise SpikegradError(f"cannot write plot {path}: {err}") from None
    return path
