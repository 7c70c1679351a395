"""The paper's figures: each ``(results, png, csv) -> dict`` draws one PNG, writes the
numbers plotted as CSV and returns them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._format import mean_sd as _mean_sd
from .._optional import need
from ..errors import SpikegradError
from ..sweeps import point_key
from .analysis import (_load_trained, _snapshot, filter_normalized_direction, fit_sigmoid, hidden_spike_counts,
                       landscape_batch, loss_plane, plane_grid, sigmoid_log)
from .results import (Results, _best_row, _config_params, _entry, _order, _require, _run_folder, _top_k,
                      read_history, write_csv)


def _plt():
    matplotlib = need("matplotlib", "drawing figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

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
    from ..sweeps import rank_configs

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
