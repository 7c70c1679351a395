"""The results table of one or more sweeps (one row per finished trial: swept keys, the
config fields the figures need, the metrics, the run folder), CSV writing, and the checks
that a figure's columns are there."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence


from .._format import cell as _cell
from ..errors import SpikegradError
from ..sweeps import load_study, point_config, point_key, top_k_table, trial_rows

# config fields every results row carries (resolved from the trial's config)
FIELDS = ("model.surrogate", "model.beta", "train.lr", "model.hidden", "model.recurrent", "model.recurrent_grad",
          "model.detach_reset", "regularizer.lower_strength", "regularizer.lower_threshold",
          "regularizer.upper_strength", "regularizer.upper_threshold", "data.name", "model.readout")
METRICS = ("val_accuracy", "test_accuracy", "hidden_spikes_per_sample", "diverged")


@dataclass
class Results:
    """One row per finished trial; ``swept``: the grid keys of the sweeps it came from."""
    rows: list[dict[str, Any]]
    swept: list[str] = field(default_factory=list)
    source: str = "results"

def results_table(sweep_dirs: str | Path | Sequence[str | Path], storage: str | None = None,
                  name: str | None = None) -> Results:
    """Rows of every finished trial of one or more sweeps (empty sweeps → SpikegradError).

    Each row: ``trial``, ``sweep``, the swept keys and :data:`FIELDS` (values from the
    trial's full config), ``n_hidden`` (hidden layers), ``seed``, :data:`METRICS`
    (``None`` where a trial did not record one) and ``run_dir`` (the trial's run folder).
    """
    if isinstance(sweep_dirs, (str, Path)):
        sweep_dirs = [sweep_dirs]
    if not sweep_dirs:
        raise SpikegradError("name at least one sweep folder")
    rows: list[dict[str, Any]] = []
    swept: list[str] = []
    names = []
    for sweep_dir in sweep_dirs:
        study, spec = load_study(sweep_dir, storage, name)
        names.append(f"{sweep_dir} (sweep {spec.name!r})")
        swept += [k for k in spec.grid if k not in swept]
        for r in trial_rows(study):
            cfg = point_config(spec, {"params": r["params"], "seed": r["seed"], "key": r["point"]})
            row: dict[str, Any] = {"sweep": spec.name, "trial": r["trial"]}
            row.update({k: cfg.get(k) for k in (*FIELDS, *spec.grid)})
            row["n_hidden"] = len(cfg.hidden_sizes)
            row["seed"] = r["seed"]
            row.update({m: r.get(m) for m in METRICS})
            if isinstance(r.get("selection"), Mapping):   # the loss's own metric, where it names one
                row["selection"] = r["selection"]
                row[r["selection"]["metric"]] = r.get(r["selection"]["metric"])
            row["run_dir"] = str(Path(sweep_dir) / "trials" / str(r["trial"]))
            rows.append(row)
    if not rows:
        raise SpikegradError(f"no finished trials in {', '.join(names)} yet")
    return Results(rows, swept, ", ".join(names))


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
    return path


def _require(results: Results, figure: str, columns: Sequence[str] = (), swept: Sequence[str] = ()) -> None:
    """One-line errors naming what a figure needs and the results lack."""
    if not results.rows:
        raise SpikegradError(f"{figure}: {results.source} holds no finished trials")
    for key in swept:
        if key not in results.swept:
            raise SpikegradError(f"{figure} needs a sweep over {key}; {results.source} sweeps "
                                 f"{', '.join(results.swept) or 'nothing'}")
    for col in columns:
        for row in results.rows:
            if row.get(col) is None:
                raise SpikegradError(f"{figure} needs {col} in every trial; trial {row.get('trial', '?')} of "
                                     f"{results.source} has none")


def _order(values: Iterable[Any]) -> list[Any]:
    """Distinct values in order of first appearance."""
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _top_k(entries: list[dict[str, Any]], group: Sequence[str], top_k: int) -> dict[str, dict[str, Any]]:
    """sweeps.top_k_table over rows given as {"params", "seed", metrics}; keyed by point_key(group)."""
    _, summary = top_k_table(entries, group, top_k)
    return {point_key(s["group"]): s for s in summary}


def _entry(row: Mapping[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"params": params, "seed": row["seed"], "val_accuracy": float(row["val_accuracy"]),
            "test_accuracy": float(row["test_accuracy"]), "diverged": bool(row.get("diverged") or False)}


def _config_params(results: Results, row: Mapping[str, Any], drop: Sequence[str] = ()) -> dict[str, Any]:
    """The identity of a row's configuration: its swept fields (seeds pooled), less ``drop``."""
    return {k: row[k] for k in results.swept if k in row and k not in drop and k != "train.seed"}

def _run_folder(row: Mapping[str, Any], figure: str, need: Sequence[str] = ("config.toml",)) -> Path:
    """The run folder of a results row, checked to hold the files ``need`` (one-line error otherwise)."""
    run_dir = row.get("run_dir")
    if run_dir is None:
        raise SpikegradError(f"{figure} needs the run folder of trial {row.get('trial', '?')}; the results "
                             f"table has none (read the sweep with results_table)")
    run_dir = Path(run_dir)
    for name in need:
        if not (run_dir / name).is_file():
            raise SpikegradError(f"{figure} needs {name} of trial {row.get('trial', '?')}; {run_dir / name} "
                                 f"does not exist")
    return run_dir


def _best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The best by the selection metric (validation accuracy by default), non-diverged
    trials first; ties: the first row."""
    from ..sweeps import row_selection

    select = row_selection(rows[0]) if rows else row_selection({})
    sign = 1.0 if select.higher_is_better else -1.0
    return max(rows, key=lambda r: (not bool(r.get("diverged")), sign * float(r.get(select.metric) or 0.0),
                                    -rows.index(r)))

def read_history(run_dir: Path, figure: str = "fig2") -> list[dict[str, Any]]:
    """The per-epoch rows of a run folder's metrics.jsonl."""
    import json

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise SpikegradError(f"{figure} needs per-epoch metrics; {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise SpikegradError(f"{figure}: {path} line {n} is not JSON") from None
    return rows
