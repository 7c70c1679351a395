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
- ``fig2``: learning curves (train loss, validation accuracy per epoch, from each trial's
  ``metrics.jsonl``) of the true gradient against surrogate gradients, and activity
  snapshots of one trained surrogate network before and after training.
- ``fig6``: top-k test accuracy of FF/RC × Max/Sum readout networks per data set.
- ``fig8``: hidden spike-count histograms on the test set of the best unregularised and
  the best regularised network (their saved weights).
- ``landscape``: the loss on a 2-D plane through a trained network's weights along two
  random filter-normalised directions (Li et al. 2018), for one run folder or the best
  trial of a sweep.

Figures that need more than the results table (per-epoch curves, weights) read the
trial's run folder, ``SWEEP_DIR/trials/<trial>/`` (the row's ``run_dir``).

See docs/SWEEPS.md, section "Figures".
"""

from __future__ import annotations

import csv
import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ._format import cell as _cell, mean_sd as _mean_sd
from ._optional import need
from .errors import SpikegradError
from .registry import Registry
from .sweeps import DB_NAME, load_study, point_config, point_key, top_k_table, trial_rows

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


# -- the results table ---------------------------------------------------------------------

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


def _plt():
    matplotlib = need("matplotlib", "drawing figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    curve_fit = need("scipy.optimize", "fig9's sigmoid fit").curve_fit
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


# -- run folders of trials -----------------------------------------------------------------

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
    from .sweeps import row_selection

    select = row_selection(rows[0]) if rows else row_selection({})
    sign = 1.0 if select.higher_is_better else -1.0
    return max(rows, key=lambda r: (not bool(r.get("diverged")), sign * float(r.get(select.metric) or 0.0),
                                    -rows.index(r)))


def _load_trained(run_dir: Path, weights: str | None = "model.safetensors"):
    """(cfg, model, splits) of a run folder with the given weights file; ``weights=None``:
    the network as it was initialised, as :func:`spikegrad.training.train` does it (the
    run's seed, then its ``train.init_from`` weights or the fluctuation-driven init)."""
    import torch

    from . import training
    from .config import load_config
    from .data import load_dataset

    cfg = load_config(run_dir / "config.toml")
    splits = load_dataset(cfg)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG state alone
        model = training.init_model(cfg, splits, fresh=weights is None)
    if weights is not None:
        training.load_weights(model, run_dir / weights, cfg.torch_device())
    model.eval()
    return cfg, model, splits


def hidden_spike_counts(model, data, cfg) -> np.ndarray:
    """Spike counts per test input and hidden neuron, [samples, all hidden neurons] (layers
    side by side), summed over time."""
    import torch

    from .training import EVAL_BATCH, iterate_batches

    parts = []
    model.eval()
    with torch.no_grad():
        for x, _ in iterate_batches(data, cfg, EVAL_BATCH):
            _, rec = model.run(x)
            parts.append(torch.cat([s.sum(1) for s in rec.spikes], 1).cpu().numpy()
                         if rec.spikes else np.zeros((len(x), 0)))
    return np.concatenate(parts, 0) if parts else np.zeros((0, 0))


# -- figure 2: true gradient vs surrogate gradient -----------------------------------------

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


def _snapshot(model, x) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        logits, rec = model.run(x.unsqueeze(0).to(next(model.parameters()).device))
    return {"inputs": x.cpu().numpy(), "hidden": [s[0].cpu().numpy() for s in rec.spikes],
            "readout": rec.readout[0].cpu().numpy(), "prediction": int(logits.argmax(1))}


CURVE_METRICS = ("train_loss", "val_accuracy")


def fig2(results: Results, png: str | Path, csv_path: str | Path, sample: int = 0) -> dict[str, Any]:
    """Learning curves of the true gradient against the surrogate(s), and activity snapshots.

    Per surrogate, the best configuration (mean validation accuracy over seeds; its seeds
    pooled): mean ± sd over its trials of ``train_loss`` and ``val_accuracy`` per epoch
    (each trial's ``metrics.jsonl``; an epoch averages the trials that reached it).  The
    snapshots show test sample ``sample`` through the best surrogate trial's network before
    training (re-initialised with the run's seed, i.e. the same initial weights) and after
    (its saved best-validation weights, ``model.safetensors``): input raster, hidden raster
    (all hidden layers stacked) and readout traces.
    """
    _require(results, "fig2", ("model.surrogate", "val_accuracy", "test_accuracy"))
    rows = [r for r in results.rows if r.get("n_hidden", 1) > 0]
    surrogates = _order(r["model.surrogate"] for r in rows)
    if "true" not in surrogates:
        raise SpikegradError(f"fig2 needs true-gradient trials (model.surrogate = true) with a hidden layer; "
                             f"{results.source} has {', '.join(map(str, surrogates)) or 'none'}")
    if surrogates == ["true"]:
        raise SpikegradError(f"fig2 needs surrogate-gradient trials besides the true gradient; "
                             f"{results.source} has only model.surrogate = true")
    surrogates = [s for s in surrogates if s != "true"] + ["true"]
    from .sweeps import rank_configs

    chosen: dict[str, list[Mapping[str, Any]]] = {}
    for sur in surrogates:
        mine = [r for r in rows if r["model.surrogate"] == sur]
        best = rank_configs([_entry(r, _config_params(results, r)) for r in mine])[0]["params"]
        chosen[sur] = [r for r in mine if _config_params(results, r) == best]

    curves: dict[str, dict[str, Any]] = {}
    csv_rows: list[dict[str, Any]] = []
    for sur in surrogates:
        histories = [read_history(_run_folder(r, "fig2", ()), "fig2") for r in chosen[sur]]
        epochs = sorted({int(h["epoch"]) for hist in histories for h in hist})
        curve: dict[str, Any] = {"epochs": epochs, "trials": [r["trial"] for r in chosen[sur]]}
        for metric in CURVE_METRICS:
            means, sds, ns = [], [], []
            for epoch in epochs:
                vals = [float(h[metric]) for hist in histories for h in hist
                        if int(h["epoch"]) == epoch and h.get(metric) is not None]
                m, sd = _mean_sd(vals) if vals else (math.nan, math.nan)
                means.append(m), sds.append(sd), ns.append(len(vals))
                csv_rows.append({"panel": "curve", "surrogate": sur, "metric": metric, "epoch": epoch, "mean": m,
                                 "sd": sd, "n": len(vals)})
            curve[metric] = {"mean": np.array(means), "sd": np.array(sds), "n": ns}
        curves[sur] = curve

    best_row = _best_row([r for sur in surrogates if sur != "true" for r in chosen[sur]])
    run_dir = _run_folder(best_row, "fig2", ("config.toml", "model.safetensors"))
    snaps: dict[str, dict[str, Any]] = {}
    label = None
    for state, weights in (("before", None), ("after", "model.safetensors")):
        cfg, model, splits = _load_trained(run_dir, weights)
        if not 0 <= sample < len(splits.test):
            raise SpikegradError(f"fig2: sample {sample} is outside the test split (0–{len(splits.test) - 1})")
        x = splits.test.inputs([sample], cfg.data.n_steps, cfg.model.dt_ms * 1e-3)[0]
        label = int(splits.test.labels[sample])
        snaps[state] = snap = _snapshot(model, x)
        csv_rows.append({"panel": "snapshot", "state": state, "trial": best_row["trial"], "label": label,
                         "prediction": snap["prediction"]})
        layers = [("input", snap["inputs"])] + [(f"hidden{k + 1}", h) for k, h in enumerate(snap["hidden"])]
        for layer, counts in layers:
            for step, unit in zip(*np.nonzero(counts)):
                csv_rows.append({"panel": "spikes", "state": state, "layer": layer, "step": int(step),
                                 "unit": int(unit), "value": float(counts[step, unit])})
        offset = cfg.data.n_steps - snap["readout"].shape[0]
        for step, values in enumerate(snap["readout"]):
            for c, v in enumerate(values):
                csv_rows.append({"panel": "readout", "state": state, "layer": "readout", "step": step + offset,
                                 "unit": c, "value": float(v)})
    dt_ms = cfg.model.dt_ms

    plt = _plt()
    fig = plt.figure(figsize=(9.0, 10.0))
    grid = fig.add_gridspec(4, 2, height_ratios=[1.3, 0.8, 1.2, 1.0], hspace=0.45, wspace=0.25)
    for k, metric in enumerate(CURVE_METRICS):
        ax = fig.add_subplot(grid[0, k])
        for c_i, sur in enumerate(surrogates):
            cv = curves[sur]
            m, sd = cv[metric]["mean"], np.nan_to_num(cv[metric]["sd"])
            color = "0.3" if sur == "true" else f"C{c_i}"
            ax.plot(cv["epochs"], m, color=color, lw=1.5, label=f"{sur} (n = {max(cv[metric]['n'])})")
            ax.fill_between(cv["epochs"], m - sd, m + sd, color=color, alpha=0.2, lw=0)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel({"train_loss": "training loss", "val_accuracy": "validation accuracy"}[metric])
        if metric == "val_accuracy":
            ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, frameon=False)
    for col, state in enumerate(("before", "after")):
        snap = snaps[state]
        steps = snap["inputs"].shape[0]
        ax_in = fig.add_subplot(grid[1, col])
        t, u = np.nonzero(snap["inputs"])
        ax_in.scatter(t * dt_ms, u, s=12, c="k", marker="|")
        ax_in.set_xlim(0, steps * dt_ms)
        ax_in.set_title(f"{state} training (trial {best_row['trial']}, test sample {sample}, label {label}, "
                        f"predicted {snap['prediction']})", fontsize=8)
        ax_in.set_ylabel("input")
        ax_h = fig.add_subplot(grid[2, col], sharex=ax_in)
        offset, total = 0, 0
        for h in snap["hidden"]:
            t, u = np.nonzero(h)
            ax_h.scatter(t * dt_ms, u + offset, s=6, c="k", marker="|")
            offset += h.shape[1]
            total += int(h.sum())
            ax_h.axhline(offset - 0.5, color="0.7", lw=0.5)
        ax_h.set_ylim(-0.5, max(offset, 1) - 0.5)
        ax_h.set_ylabel(f"hidden\n({total} spikes)")
        ax_r = fig.add_subplot(grid[3, col], sharex=ax_in)
        ro = snap["readout"]
        t_out = (np.arange(ro.shape[0]) + steps - ro.shape[0]) * dt_ms
        for c in range(ro.shape[1]):
            ax_r.plot(t_out, ro[:, c], lw=1.5 if c == label else 0.8, color="k" if c == label else f"C{c % 10}",
                      alpha=1.0 if c == label else 0.6)
        ax_r.set_ylabel("readout U")
        ax_r.set_xlabel("time (ms)")
    fig.suptitle("Figure 2: true gradient vs surrogate gradient (top), a network before/after training (bottom)",
                 fontsize=10)
    _save(fig, png)
    write_csv(csv_path, ["panel", "surrogate", "metric", "epoch", "mean", "sd", "n", "state", "trial", "label",
                         "prediction", "layer", "step", "unit", "value"], csv_rows)
    return {"curves": curves, "snapshot_trial": best_row["trial"], "snapshot_run": str(run_dir), "label": label,
            "snapshots": snaps, "chosen": {s: [r["trial"] for r in v] for s, v in chosen.items()}}


# -- figure 6: architectures, readouts and data sets ----------------------------------------

def arch_label(row: Mapping[str, Any]) -> str:
    """fig6's bars: FF/RC × readout head, e.g. ``FF-Max``."""
    return f"{'RC' if row['model.recurrent'] else 'FF'}-{str(row['model.readout']).capitalize()}"


ARCH_ORDER = ["FF-Max", "FF-Sum", "RC-Max", "RC-Sum"]


def fig6(results: Results, png: str | Path, csv_path: str | Path, top_k: int = 10) -> dict[str, Any]:
    """Per data set, architecture (FF/RC) × readout (Max/Sum) and n_hidden: mean ± sd test
    accuracy of the top-k configurations (by mean validation accuracy over seeds)."""
    _require(results, "fig6", ("data.name", "model.recurrent", "model.readout", "n_hidden", "val_accuracy",
                               "test_accuracy"))
    rows = results.rows
    groups = _order((r["data.name"], arch_label(r)) for r in rows)
    if len(groups) < 2:
        raise SpikegradError(f"fig6 compares FF/RC networks and Max/Sum readouts (and data sets); every trial of "
                             f"{results.source} is {groups[0][0]} {groups[0][1]}: sweep model.recurrent, "
                             f"model.readout or data.name")
    entries = [_entry(r, {**_config_params(results, r), "data": r["data.name"], "arch": arch_label(r),
                          "n_hidden": r["n_hidden"]}) for r in rows]
    summary = _top_k(entries, ("data", "arch", "n_hidden"), top_k)
    datasets = _order(r["data.name"] for r in rows)
    archs = sorted(_order(arch_label(r) for r in rows),
                   key=lambda a: (ARCH_ORDER.index(a) if a in ARCH_ORDER else len(ARCH_ORDER), a))
    depths = sorted({r["n_hidden"] for r in rows})
    bars = []
    for data in datasets:
        for arch in archs:
            for depth in depths:
                s = summary.get(point_key({"data": data, "arch": arch, "n_hidden": depth}))
                if s is None:
                    continue
                bars.append({"data": data, "arch": arch, "recurrent": arch.startswith("RC"),
                             "readout": arch.split("-", 1)[1].lower(), "n_hidden": depth, "mean": s["test_mean"],
                             "sd": s["test_sd"], "k": s["k"], "configs": s["configs"], "best_test": s["best_test"],
                             "best_lr": s["best_params"].get("train.lr")})

    plt = _plt()
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.8 * len(datasets) + 0.6, 3.6), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        mine = [b for b in bars if b["data"] == data]
        width = 0.8 / max(1, len(depths))
        for d_i, depth in enumerate(depths):
            xs, ys, es = [], [], []
            for a_i, arch in enumerate(archs):
                b = next((b for b in mine if b["arch"] == arch and b["n_hidden"] == depth), None)
                if b is not None:
                    xs.append(a_i + (d_i - (len(depths) - 1) / 2) * width)
                    ys.append(b["mean"])
                    es.append(0.0 if math.isnan(b["sd"]) else b["sd"])
            ax.bar(xs, ys, width, yerr=es, capsize=2, label=f"n_h = {depth}", color=f"C{d_i}")
        ax.set_xticks(range(len(archs)), archs, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(str(data), fontsize=9)
        ax.set_ylabel(f"test accuracy (top {top_k})")
        if len(depths) > 1:
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Figure 6: feed-forward/recurrent networks and Max/Sum readouts across data sets", fontsize=10)
    fig.tight_layout()
    _save(fig, png)
    write_csv(csv_path, ["data", "arch", "recurrent", "readout", "n_hidden", "mean", "sd", "k", "configs", "best_test",
                         "best_lr"], bars)
    return {"bars": bars}


# -- figure 8: hidden activity with and without regularisation -----------------------------

def is_regularised(row: Mapping[str, Any]) -> bool:
    """An activity regulariser acts: λ_up > 0 (any ν_up), or λ_low > 0 with ν_low > 0
    (ν_low = 0 penalises nothing)."""
    return (float(row.get("regularizer.upper_strength") or 0) > 0
            or (float(row.get("regularizer.lower_strength") or 0) > 0
                and float(row.get("regularizer.lower_threshold") or 0) > 0))


def count_edges(max_count: float, bins: int) -> np.ndarray:
    """Histogram edges for non-negative integer counts: one bin per count while at most ``bins``
    counts occur (edges 0, 1, …, max + 1), else ``bins`` equal bins over [0, max + 1]."""
    top = int(math.ceil(max_count)) + 1
    if top <= bins:
        return np.arange(0, top + 1, dtype=float)
    return np.linspace(0.0, float(top), bins + 1)


def fig8(results: Results, png: str | Path, csv_path: str | Path, bins: int = 40) -> dict[str, Any]:
    """Hidden spike counts on the test set of the best unregularised and the best regularised
    trial (highest validation accuracy; their ``model.safetensors``): histograms of the
    spike count per hidden neuron per input (every neuron × test input pair) and of the
    hidden spike count per input (all hidden neurons)."""
    _require(results, "fig8", ("regularizer.upper_strength", "regularizer.lower_strength", "n_hidden",
                               "val_accuracy"))
    rows = [r for r in results.rows if r["n_hidden"] > 0]
    plain = [r for r in rows if not is_regularised(r)]
    regular = [r for r in rows if is_regularised(r)]
    if not plain or not regular:
        missing = ("unregularised (λ_up = 0 and λ_low = 0)" if not plain
                   else "regularised (λ_up > 0, or λ_low > 0 with ν_low > 0)")
        raise SpikegradError(f"fig8 needs {missing} trials with a hidden layer; {results.source} has none: sweep "
                             f"regularizer.upper_strength over 0 and values > 0")
    picked = {"unregularised": _best_row(plain), "regularised": _best_row(regular)}
    counts: dict[str, np.ndarray] = {}
    info: dict[str, dict[str, Any]] = {}
    for cond, row in picked.items():
        run_dir = _run_folder(row, "fig8", ("config.toml", "model.safetensors"))
        cfg, model, splits = _load_trained(run_dir)
        c = hidden_spike_counts(model, splits.test, cfg)
        counts[cond] = c
        info[cond] = {"trial": row["trial"], "run_dir": str(run_dir), "test_accuracy": row.get("test_accuracy"),
                      "upper_strength": row.get("regularizer.upper_strength"),
                      "lower_strength": row.get("regularizer.lower_strength"),
                      "mean_per_input": float(c.sum(1).mean()) if c.size else 0.0,
                      "mean_per_neuron": float(c.mean()) if c.size else 0.0,
                      "silent_fraction": float((c == 0).mean()) if c.size else 1.0,
                      "samples": c.shape[0], "neurons": c.shape[1]}
    panels = {"per_neuron": {cond: c.ravel() for cond, c in counts.items()},
              "per_input": {cond: c.sum(1) for cond, c in counts.items()}}
    hists: dict[str, dict[str, Any]] = {}
    csv_rows: list[dict[str, Any]] = []
    for panel, values in panels.items():
        edges = count_edges(max(float(v.max()) if v.size else 0.0 for v in values.values()), bins)
        hists[panel] = {"edges": edges}
        for cond, v in values.items():
            h, _ = np.histogram(v, edges)
            hists[panel][cond] = h
            for lo, hi, n in zip(edges[:-1], edges[1:], h):
                csv_rows.append({"panel": panel, "condition": cond, "trial": info[cond]["trial"], "bin_left": lo,
                                 "bin_right": hi, "count": int(n)})
    for cond, i in info.items():
        csv_rows.append({"panel": "summary", "condition": cond, **i})

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    titles = {"per_neuron": "spikes per hidden neuron per input", "per_input": "hidden spikes per input"}
    for ax, panel in zip(axes, panels):
        edges = hists[panel]["edges"]
        for k, cond in enumerate(picked):
            i = info[cond]
            lab = f"{cond} (trial {i['trial']}, λ_up = {i['upper_strength']:g}, {i['mean_per_input']:.3g} spikes/input)"
            ax.stairs(hists[panel][cond], edges, label=lab, color=("0.35" if k == 0 else "tab:orange"),
                      fill=k == 0, alpha=0.6 if k == 0 else 1.0, lw=1.5)
        ax.set_xlabel(titles[panel])
        ax.set_ylabel("count")
        if panel == "per_neuron":
            ax.set_yscale("symlog", linthresh=1)
    axes[1].legend(fontsize=6, frameon=False)
    fig.suptitle("Figure 8: hidden activity on the test set with and without activity regularisation", fontsize=10)
    fig.tight_layout()
    _save(fig, png)
    write_csv(csv_path, ["panel", "condition", "trial", "bin_left", "bin_right", "count", "upper_strength",
                         "lower_strength", "test_accuracy", "mean_per_input", "mean_per_neuron", "silent_fraction",
                         "samples", "neurons", "run_dir"], csv_rows)
    return {"hists": hists, "info": info, "counts": counts}


# -- the loss landscape (talk; Li et al. 2018) ---------------------------------------------

def filter_normalized_direction(weights: Mapping[str, Any], generator) -> dict[str, Any]:
    """A random direction with each weight matrix's rows ("filters": one output neuron's
    weights) rescaled to the norm of the same row of ``weights`` (Li et al. 2018).  Tensors
    with fewer than 2 dimensions are scaled as a whole."""
    import torch

    out = {}
    for name, w in weights.items():
        d = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        if w.dim() < 2:
            out[name] = d * (w.norm() / d.norm().clamp_min(1e-12))
            continue
        rows_w, rows_d = w.reshape(w.shape[0], -1), d.reshape(d.shape[0], -1)
        scale = rows_w.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True).clamp_min(1e-12)
        out[name] = (rows_d * scale).reshape(w.shape)
    return out


def plane_grid(points: int, span: float) -> np.ndarray:
    """``points`` coefficients in [−span, span] (0 exactly in the middle for odd ``points``)."""
    if points < 2:
        raise SpikegradError(f"landscape needs at least 2 points per axis, got {points}")
    if not (math.isfinite(span) and span > 0):
        raise SpikegradError(f"landscape span must be a positive number, got {span!r}")
    values = np.linspace(-span, span, points)
    if points % 2:
        values[points // 2] = 0.0
    return values


def loss_plane(model, x, y, cfg, d1: Mapping[str, Any], d2: Mapping[str, Any], alphas: Sequence[float],
               betas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Training loss (cross-entropy + the config's activity regulariser) and accuracy on (x, y)
    at θ* + a·d1 + b·d2 for every a in ``alphas`` (columns) and b in ``betas`` (rows); the
    model's weights are restored afterwards."""
    import torch

    from .training import loss_and_record

    params = dict(model.named_parameters())
    theta = {n: p.detach().clone() for n, p in params.items()}
    device = next(iter(theta.values())).device
    d1 = {n: d.to(device) for n, d in d1.items()}
    d2 = {n: d.to(device) for n, d in d2.items()}
    x, y = x.to(device), y.to(device)
    loss = np.full((len(betas), len(alphas)), np.nan)
    acc = np.full_like(loss, np.nan)
    model.eval()
    try:
        with torch.no_grad():
            for i, b in enumerate(betas):
                for j, a in enumerate(alphas):
                    for n, p in params.items():
                        p.copy_(theta[n] + float(a) * d1[n] + float(b) * d2[n])
                    value, logits, _ = loss_and_record(model, x, y, cfg)
                    loss[i, j] = float(value)
                    acc[i, j] = float((logits.argmax(1) == y).float().mean())
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(theta[n])
    return loss, acc


def landscape_batch(splits, cfg, batch: int, seed: int):
    """The fixed validation batch: ``batch`` samples drawn without replacement (seeded), in order."""
    import torch

    n = len(splits.val)
    if n == 0:
        raise SpikegradError("landscape needs validation data; the validation split is empty")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(batch, n), replace=False))
    x = splits.val.inputs(idx, cfg.data.n_steps, cfg.model.dt_ms * 1e-3)
    return x, torch.from_numpy(np.asarray(splits.val.labels[idx])).long(), idx


def landscape_run(run_dir: str | Path, png: str | Path, csv_path: str | Path, points: int = 21, span: float = 1.0,
                  seed: int = 0, batch: int = 256, label: str | None = None) -> dict[str, Any]:
    """Loss landscape of one run folder's trained network (its ``model.safetensors``) on a
    fixed, seeded batch of validation data: the loss at θ* + a·d1 + b·d2 on a
    ``points`` × ``points`` grid of (a, b) in [−span, span]², d1 and d2 random
    filter-normalised directions (torch generator seeded with ``seed``)."""
    import torch

    run_dir = Path(run_dir)
    for name in ("config.toml", "model.safetensors"):
        if not (run_dir / name).is_file():
            raise SpikegradError(f"landscape needs a trained run folder; {run_dir / name} does not exist")
    if batch < 1:
        raise SpikegradError(f"landscape batch must be ≥ 1, got {batch}")
    alphas = plane_grid(points, span)
    cfg, model, splits = _load_trained(run_dir)
    x, y, idx = landscape_batch(splits, cfg, batch, seed)
    weights = {n: p.detach().cpu() for n, p in model.named_parameters()}
    gen = torch.Generator().manual_seed(int(seed))
    d1 = filter_normalized_direction(weights, gen)
    d2 = filter_normalized_direction(weights, gen)
    loss, acc = loss_plane(model, x, y, cfg, d1, d2, alphas, alphas)
    centre = (points // 2, points // 2) if points % 2 else None
    csv_rows = [{"a": float(a), "b": float(b), "loss": loss[i, j], "accuracy": acc[i, j]}
                for i, b in enumerate(alphas) for j, a in enumerate(alphas)]

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    finite = loss[np.isfinite(loss)]
    if finite.size:
        from matplotlib.colors import LogNorm

        lo, hi = float(finite.min()), float(finite.max())
        shown = np.where(np.isfinite(loss), loss, hi)  # non-finite points drawn at the maximum
        log = lo > 0 and hi > lo * 1.001
        levels = np.geomspace(lo, hi, 25) if log else 25
        cs = ax.contourf(alphas, alphas, shown, levels=levels, cmap="viridis", norm=LogNorm() if log else None)
        ax.contour(alphas, alphas, shown, levels=levels, colors="w", linewidths=0.3)
        bar = fig.colorbar(cs, ax=ax, label="loss (log scale)" if log else "loss")
        if log:
            from matplotlib.ticker import FormatStrFormatter, LogLocator

            bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            bar.ax.yaxis.set_minor_formatter(FormatStrFormatter(""))
    ax.plot([0], [0], marker="*", color="r", ms=10)
    ax.set_xlabel("a (direction d1)")
    ax.set_ylabel("b (direction d2)")
    ax.set_aspect("equal")
    ax.set_title(f"loss landscape around θ* ({label or run_dir.name}; {len(idx)} validation samples)", fontsize=9)
    _save(fig, png)
    write_csv(csv_path, ["a", "b", "loss", "accuracy"], csv_rows)
    return {"alphas": alphas, "betas": alphas, "loss": loss, "accuracy": acc, "run_dir": str(run_dir),
            "centre_loss": float(loss[centre]) if centre else None, "batch": idx, "d1": d1, "d2": d2}


def landscape(results: Results, png: str | Path, csv_path: str | Path, points: int = 21, span: float = 1.0,
              seed: int = 0, batch: int = 256) -> dict[str, Any]:
    """:func:`landscape_run` of the sweep's best trial (highest validation accuracy, non-diverged first)."""
    _require(results, "landscape", ("val_accuracy",))
    best = _best_row(results.rows)
    run_dir = _run_folder(best, "landscape", ("config.toml", "model.safetensors"))
    out = landscape_run(run_dir, png, csv_path, points=points, span=span, seed=seed, batch=batch,
                        label=f"trial {best['trial']}")
    out["trial"] = best["trial"]
    return out


# -- registry ------------------------------------------------------------------------------

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
