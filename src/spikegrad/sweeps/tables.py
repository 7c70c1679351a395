"""Ranking tables of a sweep: finished trials as rows, configurations ranked by the
selection metric (seeds pooled), the top k per group, CSV files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .._format import cell as _cell, mean_sd as _mean_sd
from ..errors import SpikegradError
from .spec import SweepSpec, _is_metric, point_key, row_selection
from .storage import SPEC_ATTR, _states, load_study



def summary(study) -> dict[str, Any]:
    """Counts over the sweep's points: complete, diverged, failed, pending."""
    S = _states()
    spec = SweepSpec.from_json(study.user_attrs[SPEC_ATTR])
    rows = trial_rows(study)
    done = {r["point"] for r in rows}
    failed = {t.user_attrs.get("point") for t in study.get_trials(deepcopy=False, states=(S.FAIL,))
              if "error" in t.user_attrs} - done
    return {"points": len(spec.points), "complete": len(done), "diverged": sum(r["diverged"] for r in rows),
            "failed": len(failed), "pending": len(spec.points) - len(done) - len(failed)}

def trial_rows(study) -> list[dict[str, Any]]:
    """One row per finished point (the lowest-numbered COMPLETE trial of each)."""
    S = _states()
    rows, seen = [], set()
    for t in sorted(study.get_trials(deepcopy=False, states=(S.COMPLETE,)), key=lambda t: t.number):
        key = t.user_attrs.get("point")
        if key is None or key in seen:
            continue
        seen.add(key)
        row = {"trial": t.number, "point": key, "params": json.loads(t.user_attrs["params"]),
               "seed": t.user_attrs["seed"], "diverged": bool(t.user_attrs.get("diverged", False))}
        for metric, value in t.user_attrs.items():
            if _is_metric(metric) and metric != "diverged":
                row[metric] = value
        rows.append(row)
    return rows


def rank_configs(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Grid points (seeds pooled), best mean of the selection metric first (validation
    accuracy by default; ties: file order).  ``val_*`` and ``test_*`` of each entry are that
    metric on the validation and test splits; ``metric`` names it."""
    rows = list(rows)
    select = row_selection(rows[0]) if rows else row_selection({})
    val_key = select.metric
    test_key = "test_" + val_key.removeprefix("val_")
    sign = -1.0 if select.higher_is_better else 1.0
    configs: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = point_key(row["params"])
        c = configs.setdefault(key, {"params": dict(row["params"]), "seeds": [], "val": [], "test": [],
                                     "diverged": 0})
        c["seeds"].append(row["seed"])
        c["val"].append(row[val_key])
        c["test"].append(row[test_key])
        c["diverged"] += bool(row.get("diverged", False))
    out = []
    for c in configs.values():
        val_mean, val_sd = _mean_sd(c["val"])
        test_mean, test_sd = _mean_sd(c["test"])
        out.append({"params": c["params"], "n_seeds": len(c["seeds"]), "seeds": sorted(c["seeds"]),
                    "val_mean": val_mean, "val_sd": val_sd, "test_mean": test_mean, "test_sd": test_sd,
                    "diverged": c["diverged"], "metric": val_key.removeprefix("val_"),
                    "higher_is_better": select.higher_is_better})
    order = sorted(range(len(out)), key=lambda i: (sign * out[i]["val_mean"], i))
    ranked = [out[i] for i in order]
    for rank, c in enumerate(ranked, 1):
        c["rank"] = rank
    return ranked


def top_k_table(rows: Iterable[Mapping[str, Any]], group: Sequence[str] = (), top_k: int = 5,
                grid_keys: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ranked configurations with their group, per-group summary of the top k).

    Within each group (the values of the ``group`` grid keys), configurations are ranked
    by mean validation accuracy over their seeds; the summary gives mean ± sd (sample sd,
    n − 1) over the top k configurations' mean test accuracies.
    """
    if top_k < 1:
        raise SpikegradError(f"--top-k must be ≥ 1, got {top_k}")
    rows = list(rows)
    if grid_keys is not None:
        for key in group:
            if key not in grid_keys:
                raise SpikegradError(f"--group {key!r} is not a grid key of this sweep "
                                     f"(grid keys: {', '.join(grid_keys)})")
    ranked = rank_configs(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in ranked:
        missing = [k for k in group if k not in c["params"]]
        if missing:
            raise SpikegradError(f"--group {missing[0]!r} is not a grid key of this sweep")
        c["group"] = {k: c["params"][k] for k in group}
        groups.setdefault(point_key(c["group"]), []).append(c)
    summary_rows = []
    for members in groups.values():
        top = members[:top_k]
        test_mean, test_sd = _mean_sd([c["test_mean"] for c in top])
        val_mean, val_sd = _mean_sd([c["val_mean"] for c in top])
        summary_rows.append({"group": top[0]["group"], "k": len(top), "configs": len(members),
                             "test_mean": test_mean, "test_sd": test_sd, "val_mean": val_mean, "val_sd": val_sd,
                             "best_params": top[0]["params"], "best_val": top[0]["val_mean"],
                             "best_test": top[0]["test_mean"], "diverged": sum(c["diverged"] for c in top)})
    sign = -1.0 if not ranked or ranked[0]["higher_is_better"] else 1.0
    summary_rows.sort(key=lambda s: sign * s["test_mean"] if math.isfinite(s["test_mean"]) else math.inf)
    return ranked, summary_rows


def write_tables(sweep_dir: str | Path, ranked: list[dict[str, Any]], summary_rows: list[dict[str, Any]],
                 group: Sequence[str], top_k: int) -> tuple[Path, Path]:
    """``configs.csv`` (every configuration, ranked) and ``top<k>.csv`` (per group) in SWEEP_DIR."""
    sweep_dir = Path(sweep_dir)
    params = list(ranked[0]["params"]) if ranked else []
    configs_path = sweep_dir / "configs.csv"
    with configs_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", *params, "n_seeds", "val_mean", "val_sd", "test_mean", "test_sd", "diverged"])
        for c in ranked:
            w.writerow([c["rank"], *(_cell(c["params"][p]) for p in params), c["n_seeds"], _cell(c["val_mean"]),
                        _cell(c["val_sd"]), _cell(c["test_mean"]), _cell(c["test_sd"]), c["diverged"]])
    top_path = sweep_dir / f"top{top_k}.csv"
    with top_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*group, "k", "configs", "test_mean", "test_sd", "val_mean", "val_sd", "best_config",
                    "best_val", "best_test", "diverged"])
        for s in summary_rows:
            w.writerow([*(_cell(s["group"][g]) for g in group), s["k"], s["configs"], _cell(s["test_mean"]),
                        _cell(s["test_sd"]), _cell(s["val_mean"]), _cell(s["val_sd"]),
                        point_key(s["best_params"]), _cell(s["best_val"]), _cell(s["best_test"]), s["diverged"]])
    return configs_path, top_path


def sweep_table(sweep_dir: str | Path, group: Sequence[str] = (), top_k: int = 5, storage: str | None = None,
                name: str | None = None) -> dict[str, Any]:
    """Rank a sweep's configurations, summarise the top k per group, write the CSV files."""
    study, spec = load_study(sweep_dir, storage, name)
    rows = trial_rows(study)
    if not rows:
        raise SpikegradError(f"sweep {spec.name!r} has no finished trials yet")
    ranked, summary_rows = top_k_table(rows, group, top_k, grid_keys=list(spec.grid))
    paths = write_tables(sweep_dir, ranked, summary_rows, group, top_k)
    return {"spec": spec, "ranked": ranked, "summary": summary_rows, "paths": paths,
            "counts": summary(study)}
