"""Small number formatting and summary helpers shared by the sweep tables, the report and
the figures."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any, Sequence


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1); NaN where undefined (no values; one value's sd)."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else math.nan)


def pm(mean: float, sd: float) -> str:
    """``0.9123 ± 0.0045``; the mean alone where sd is NaN; "–" where the mean is."""
    if mean != mean:
        return "–"
    return f"{mean:.4f}" if sd != sd else f"{mean:.4f} ± {sd:.4f}"


def cell(value: Any) -> str:
    """A CSV cell: floats to 6 significant digits (NaN empty), lists, dicts and booleans as JSON."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value)
    return str(value)
