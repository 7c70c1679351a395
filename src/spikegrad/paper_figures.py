"""The paper's sweep figures (Zenke & Vogels 2021, figures 3, 5 and 9) from finished sweeps.

:func:`results_table` turns one or more sweep folders (their Optuna storage, read with
:mod:`spikegrad.sweeps`) into one row per finished trial: every swept config field,
the fields the figures group by (resolved from the trial's full config, so a field the
sweep keeps fixed is a column too), ``n_hidden``, ``seed`` and the metrics.  Each figure
function takes such a :class:`Results`, writes ``NAME.png`` (matplotlib, Agg) and
``NAME.csv`` (the numbers plotted, long format) and returns those numbers.

- ``fig3``: per surrogate, mean validation accuracy over the β × η grid (heatmap), and
  mean ± sd test accuracy of the best-k configurations per shape and hidden depth.
- ``fig5``: the scale study: sCtl / aCtl / aDR (SuperSpike vs asymptotic SuperSpike ×
  detached vs differentiable reset) and, for recurrent networks, Prop vs Ctl; best-k
  configurations per group and hidden depth.
- ``fig9``: test accuracy against mean hidden spikes per input (log axis) with a fitted
  sigmoid in log s; the critical spike count exp(c) per series.

See docs/SWEEPS.md, section "Figures".
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import SpikegradError
from .sweeps import _cell, load_study, point_config, point_key, top_k_table, trial_rows

# config fields every results row carries (resolved from the trial's config)
FIELDS = ("model.surrogate", "model.beta", "train.lr", "model.hidden", "model.recurrent", "model.recurrent_grad",
          "model.detach_reset", "regularizer.lower_strength", "regularizer.lower_threshold",
          "regularizer.upper_strength", "regularizer.upper_threshold")
METRICS = ("val_accuracy", "test_accuracy", "hidden_spikes_per_sample", "diverged")


@dataclass
class Results:
    """One row per finished trial; ``swept``: the grid keys of the sweeps it came from."""
    rows: list[dict[str, Any]]
    swept: list[str] = field(default_factory=list)
    source: str = "results"


# -- the results table ---------------------------------------------------------------------

def results_table(sweep_dirs: str | Path | Sequence[str | Path], storage: str | None = None,
                  name: str | None = None) -> Results:
    """Rows of every finished trial of one or more sweeps (empty sweeps → SpikegradError).

    Each row: ``trial``, ``sweep``, the swept keys and :data:`FIELDS` (values from the
    trial's full config), ``n_hidden`` (hidden layers), ``seed`` and :data:`METRICS`
    (``None`` where a trial did not record one).
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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else math.nan)


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


# -- figure 3: shape of the surrogate ------------------------------------------------------

def shape_label(row: Mapping[str, Any]) -> str:
    """fig3's bar groups: the surrogate; β = 0 (constant surrogate), the true gradient and no
    hidden layer (surrogate irrelevant) are groups of their own."""
    if row["n_hidden"] == 0:
        return "no hidden"
    if row["model.surrogate"] == "true":
        return "true"
    if float(row["model.beta"]) == 0:
        return f"{row['model.surrogate']} β=0"
    return str(row["model.surrogate"])


def fig3(results: Results, png: str | Path, csv_path: str | Path, top_k: int = 5) -> dict[str, Any]:
    """Heatmaps of mean validation accuracy over β × η per surrogate (networks with one hidden
    layer, or the shallowest present), and bars of mean ± sd test accuracy of the top-k
    configurations per shape and n_hidden.

    Heatmap cells average every trial of that (surrogate, β, η) — seeds and any other swept
    field pooled.  The true gradient ignores β: its cells pool all β (one row, β empty).
    """
    _require(results, "fig3", ("model.surrogate", "model.beta", "train.lr", "n_hidden", "val_accuracy",
                               "test_accuracy"), ("model.beta", "train.lr"))
    rows = results.rows
    depths = sorted({r["n_hidden"] for r in rows if r["n_hidden"] > 0})
    if not depths:
        raise SpikegradError(f"fig3 needs trials with a hidden layer; {results.source} has only n_hidden = 0")
    hm_depth = 1 if 1 in depths else depths[0]
    hm_rows = [r for r in rows if r["n_hidden"] == hm_depth]
    surrogates = _order(r["model.surrogate"] for r in hm_rows)
    lrs = sorted({float(r["train.lr"]) for r in hm_rows})
    csv_rows: list[dict[str, Any]] = []
    heatmaps: dict[str, dict[str, Any]] = {}
    for sur in surrogates:
        mine = [r for r in hm_rows if r["model.surrogate"] == sur]
        betas: list[float | None] = [None] if sur == "true" else sorted({float(r["model.beta"]) for r in mine})
        mean = np.full((len(betas), len(lrs)), np.nan)
        for i, beta in enumerate(betas):
            for j, lr in enumerate(lrs):
                cell = [float(r["val_accuracy"]) for r in mine if float(r["train.lr"]) == lr
                        and (beta is None or float(r["model.beta"]) == beta)]
                if not cell:
                    continue
                m, sd = _mean_sd(cell)
                mean[i, j] = m
                csv_rows.append({"panel": "heatmap_val", "shape": sur, "n_hidden": hm_depth, "beta": beta, "lr": lr,
                                 "mean": m, "sd": sd, "n": len(cell)})
        heatmaps[sur] = {"betas": betas, "lrs": lrs, "mean": mean}

    entries = []
    for r in rows:
        shape = shape_label(r)
        drop = ("model.surrogate", "model.beta") if shape == "no hidden" else ("model.beta",) if shape == "true" else ()
        entries.append(_entry(r, {**_config_params(results, r, drop), "shape": shape, "n_hidden": r["n_hidden"]}))
    summary = _top_k(entries, ("shape", "n_hidden"), top_k)
    shapes = _order(shape_label(r) for r in rows)
    shapes = [s for s in shapes if s not in ("no hidden",)] + (["no hidden"] if "no hidden" in shapes else [])
    bars = []
    for shape in shapes:
        for depth in sorted({r["n_hidden"] for r in rows}):
            s = summary.get(point_key({"shape": shape, "n_hidden": depth}))
            if s is None:
                continue
            bars.append({"shape": shape, "n_hidden": depth, "mean": s["test_mean"], "sd": s["test_sd"], "k": s["k"],
                         "configs": s["configs"], "best_params": s["best_params"]})
            csv_rows.append({"panel": f"top{top_k}_test", "shape": shape, "n_hidden": depth, "mean": s["test_mean"],
                             "sd": s["test_sd"], "n": s["k"]})

    plt = _plt()
    n = len(surrogates)
    fig = plt.figure(figsize=(3.0 * n + 1.0, 6.8))
    grid = fig.add_gridspec(2, n, height_ratios=[1.0, 0.9], hspace=0.6)
    image = None
    for k, sur in enumerate(surrogates):
        ax = fig.add_subplot(grid[0, k])
        hm = heatmaps[sur]
        image = ax.imshow(hm["mean"], origin="lower", aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis")
        ax.set_xticks(range(len(lrs)), [f"{lr:.0e}" for lr in lrs], rotation=60, fontsize=7)
        ax.set_yticks(range(len(hm["betas"])), ["–" if b is None else f"{b:g}" for b in hm["betas"]], fontsize=7)
        ax.set_xlabel("learning rate η")
        if k == 0:
            ax.set_ylabel("slope β")
        ax.set_title(sur, fontsize=9)
        if hm["mean"].size <= 100:
            for (i, j), v in np.ndenumerate(hm["mean"]):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5,
                            color="w" if v < 0.6 else "k")
    if image is not None:
        fig.colorbar(image, ax=fig.axes, shrink=0.6, label=f"val. accuracy (n_h = {hm_depth})", location="right")
    ax = fig.add_subplot(grid[1, :])
    depths_all = sorted({b["n_hidden"] for b in bars})
    width = 0.8 / max(1, len(depths_all))
    for d_i, depth in enumerate(depths_all):
        xs, ys, es = [], [], []
        for s_i, shape in enumerate(shapes):
            b = next((b for b in bars if b["shape"] == shape and b["n_hidden"] == depth), None)
            if b is not None:
                xs.append(s_i + (d_i - (len(depths_all) - 1) / 2) * width)
                ys.append(b["mean"])
                es.append(0.0 if math.isnan(b["sd"]) else b["sd"])
        ax.bar(xs, ys, width, yerr=es, capsize=2, label=f"n_h = {depth}")
    ax.set_xticks(range(len(shapes)), shapes, fontsize=8)
    ax.set_ylabel(f"test accuracy (top {top_k})")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False, ncol=len(depths_all))
    fig.suptitle("Figure 3: shape of the surrogate derivative", fontsize=10)
    _save(fig, png)
    write_csv(csv_path, ["panel", "shape", "n_hidden", "beta", "lr", "mean", "sd", "n"], csv_rows)
    return {"heatmap_hidden": hm_depth, "heatmaps": heatmaps, "bars": bars, "rows": csv_rows}


def _save(fig, png: str | Path) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=130, bbox_inches="tight")
    _plt().close(fig)


# -- figure 5: scale of the surrogate ------------------------------------------------------

SCALE_PREFIX = {"superspike": "s", "superspike-asym": "a"}


def scale_group(row: Mapping[str, Any]) -> tuple[str, str]:
    """(panel, group) of fig5: feed-forward sCtl/sDR/aCtl/aDR, recurrent sCtl/sProp/aCtl/aProp
    (+DR where the reset is differentiable too)."""
    prefix = SCALE_PREFIX[row["model.surrogate"]]
    if not row["model.recurrent"]:
        return "feedforward", prefix + ("Ctl" if row["model.detach_reset"] else "DR")
    name = prefix + ("Prop" if row["model.recurrent_grad"] == "prop" else "Ctl")
    return "recurrent", name + ("" if row["model.detach_reset"] else "+DR")


def fig5(results: Results, png: str | Path, csv_path: str | Path, top_k: int = 10) -> dict[str, Any]:
    """Per panel (feed-forward, recurrent), group and n_hidden: mean ± sd test accuracy of the
    top-k configurations (by mean validation accuracy over seeds, over the β × η grid) —
    with ``top_k = 1``, the best (β, η) point.  Only SuperSpike and asymptotic SuperSpike
    trials count."""
    _require(results, "fig5", ("model.surrogate", "model.detach_reset", "model.recurrent", "model.recurrent_grad",
                               "n_hidden", "val_accuracy", "test_accuracy"), ("model.surrogate",))
    rows = [r for r in results.rows if r["model.surrogate"] in SCALE_PREFIX]
    if not rows:
        raise SpikegradError(f"fig5 needs trials with model.surrogate superspike or superspike-asym; "
                             f"{results.source} has {', '.join(map(str, _order(r['model.surrogate'] for r in results.rows)))}")
    entries = []
    for r in rows:
        panel, group = scale_group(r)
        entries.append(_entry(r, {**_config_params(results, r), "panel": panel, "group": group,
                                  "n_hidden": r["n_hidden"]}))
    summary = _top_k(entries, ("panel", "group", "n_hidden"), top_k)
    known = ["sCtl", "sDR", "sProp", "aCtl", "aDR", "aProp"]
    bars, csv_rows = [], []
    panels = [p for p in ("feedforward", "recurrent") if any(scale_group(r)[0] == p for r in rows)]
    for panel in panels:
        groups = _order(scale_group(r)[1] for r in rows if scale_group(r)[0] == panel)
        groups.sort(key=lambda g: (known.index(g) if g in known else len(known), g))
        for group in groups:
            for depth in sorted({r["n_hidden"] for r in rows}):
                s = summary.get(point_key({"panel": panel, "group": group, "n_hidden": depth}))
                if s is None:
                    continue
                bar = {"panel": panel, "group": group, "n_hidden": depth, "mean": s["test_mean"], "sd": s["test_sd"],
                       "k": s["k"], "configs": s["configs"], "best_test": s["best_test"],
                       "best_lr": s["best_params"].get("train.lr"), "best_beta": s["best_params"].get("model.beta")}
                bars.append(bar)
                csv_rows.append(bar)

    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        mine = [b for b in bars if b["panel"] == panel]
        groups = _order(b["group"] for b in mine)
        depths = sorted({b["n_hidden"] for b in mine})
        width = 0.8 / max(1, len(groups))
        for g_i, group in enumerate(groups):
            xs, ys, es = [], [], []
            for d_i, depth in enumerate(depths):
                b = next((b for b in mine if b["group"] == group and b["n_hidden"] == depth), None)
                if b is not None:
                    xs.append(d_i + (g_i - (len(groups) - 1) / 2) * width)
                    ys.append(b["mean"])
                    es.append(0.0 if math.isnan(b["sd"]) else b["sd"])
            control = group.endswith("Ctl")
            ax.bar(xs, ys, width, yerr=es, capsize=2, label=group,
                   color=("0.45" if group.startswith("s") else "0.7") if control else
                   ("tab:orange" if group.startswith("a") else "navajowhite"))
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("hidden layers n_h")
        ax.set_ylabel(f"test accuracy (top {top_k})")
        ax.set_ylim(0, 1)
        ax.set_title(panel, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Figure 5: scale of the surrogate derivative", fontsize=10)
    fig.tight_layout()
    _save(fig, png)
    write_csv(csv_path, ["panel", "group", "n_hidden", "mean", "sd", "k", "configs", "best_test", "best_lr",
                         "best_beta"], csv_rows)
    return {"bars": bars}


# -- figure 9: critical spike count --------------------------------------------------------

def sigmoid_log(s: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """acc(log s) = a + (b − a) / (1 + exp(−(log s − c) / d))."""
    return a + (b - a) / (1.0 + np.exp(-(np.log(s) - c) / d))


def fit_sigmoid(spikes: Sequence[float], acc: Sequence[float]) -> dict[str, float] | None:
    """Least-squares fit of :func:`sigmoid_log` (scipy.optimize.curve_fit); None if it fails.

    Returns a, b (lower and upper accuracy), c (log critical spike count), d (width in
    log units) and ``critical_spikes`` = exp(c)."""
    try:
        from scipy.optimize import curve_fit
    except ImportError:  # pragma: no cover
        raise SpikegradError("fig9 needs scipy for the sigmoid fit (pip install scipy)") from None
    s = np.asarray(spikes, dtype=float)
    y = np.asarray(acc, dtype=float)
    x = np.log(s)
    lo, hi = float(x.min()), float(x.max())
    p0 = [float(y.min()), float(y.max()), float(np.median(x)), max((hi - lo) / 8, 0.1)]
    bounds = ([-0.1, 0.0, lo - 3.0, 1e-3], [1.0, 1.1, hi + 3.0, max(10.0, hi - lo)])
    p0 = [min(max(v, b0 + 1e-6), b1 - 1e-6) for v, b0, b1 in zip(p0, *bounds)]
    try:
        (a, b, c, d), _ = curve_fit(sigmoid_log, s, y, p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return {"a": float(a), "b": float(b), "c": float(c), "d": float(d), "critical_spikes": float(math.exp(c))}


def spike_series(row: Mapping[str, Any]) -> str:
    return f"{'RC' if row.get('model.recurrent') else 'FF'} n_h={row['n_hidden']}"


def fig9(results: Results, png: str | Path, csv_path: str | Path, min_points: int = 5) -> dict[str, Any]:
    """Test accuracy against mean hidden spikes per input (log axis), one series per
    (feed-forward/recurrent, n_hidden), each with a fitted sigmoid in log s and its critical
    spike count exp(c) marked.  Trials without hidden spikes (log undefined) are left out;
    a series with fewer than ``min_points`` trials is plotted without a fit."""
    _require(results, "fig9", ("hidden_spikes_per_sample", "test_accuracy", "n_hidden"))
    rows = [r for r in results.rows if r["n_hidden"] > 0 and float(r["hidden_spikes_per_sample"]) > 0]
    if not rows:
        raise SpikegradError(f"fig9 needs trials with hidden spikes; {results.source} has none")
    series = _order(spike_series(r) for r in rows)
    csv_rows: list[dict[str, Any]] = []
    fits: dict[str, dict[str, float] | None] = {}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, name in enumerate(series):
        mine = [r for r in rows if spike_series(r) == name]
        s = np.array([float(r["hidden_spikes_per_sample"]) for r in mine])
        y = np.array([float(r["test_accuracy"]) for r in mine])
        color = f"C{k}"
        ax.scatter(s, y, s=12, color=color, alpha=0.7, label=name)
        for r in mine:
            csv_rows.append({"kind": "point", "series": name, "trial": r.get("trial"), "seed": r.get("seed"),
                             "hidden_spikes_per_sample": float(r["hidden_spikes_per_sample"]),
                             "test_accuracy": float(r["test_accuracy"])})
        fit = fit_sigmoid(s, y) if len(mine) >= min_points else None
        fits[name] = fit
        if fit is not None:
            grid = np.geomspace(s.min(), s.max(), 200)
            ax.plot(grid, sigmoid_log(grid, fit["a"], fit["b"], fit["c"], fit["d"]), color=color, lw=1.5)
            ax.axvline(fit["critical_spikes"], color=color, ls="--", lw=0.8)
            ax.annotate(f"{fit['critical_spikes']:.3g}", (fit["critical_spikes"], 0.02), color=color, fontsize=7,
                        rotation=90, ha="right", va="bottom")
        csv_rows.append({"kind": "fit", "series": name, **(fit or {}), "n": len(mine)})
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("hidden spikes per input (mean)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("Figure 9: accuracy vs hidden activity (dashed: critical spike count)", fontsize=9)
    _save(fig, png)
    write_csv(csv_path, ["kind", "series", "trial", "seed", "hidden_spikes_per_sample", "test_accuracy", "n",
                         "a", "b", "c", "d", "critical_spikes"], csv_rows)
    return {"series": series, "fits": fits, "rows": csv_rows}


# -- registry ------------------------------------------------------------------------------

FIGURES: dict[str, Callable[..., dict[str, Any]]] = {"fig3": fig3, "fig5": fig5, "fig9": fig9}


def check_figure_name(name: str) -> Callable[..., dict[str, Any]]:
    if name not in FIGURES:
        raise SpikegradError(f"unknown figure {name!r}; available: {', '.join(FIGURES)}")
    return FIGURES[name]


def make_figure(name: str, sweep_dirs: str | Path | Sequence[str | Path], out: str | Path | None = None,
                top_k: int | None = None, storage: str | None = None, study: str | None = None) -> dict[str, Any]:
    """Read the sweep(s) and write ``OUT/NAME.png`` and ``OUT/NAME.csv`` (OUT: the first sweep folder)."""
    fn = check_figure_name(name)
    dirs = [sweep_dirs] if isinstance(sweep_dirs, (str, Path)) else list(sweep_dirs)
    if top_k is not None:
        if name == "fig9":
            raise SpikegradError("--top-k applies to fig3 and fig5, not fig9")
        if top_k < 1:
            raise SpikegradError(f"--top-k must be ≥ 1, got {top_k}")
    results = results_table(dirs, storage, study)
    out = Path(out) if out is not None else Path(dirs[0])
    png, csv_path = out / f"{name}.png", out / f"{name}.csv"
    numbers = fn(results, png, csv_path, **({"top_k": top_k} if top_k is not None else {}))
    return {"png": png, "csv": csv_path, "numbers": numbers, "trials": len(results.rows)}
