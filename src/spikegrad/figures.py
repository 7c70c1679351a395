"""Figures of one run or network: activity snapshots (:func:`activity_snapshot`, and of a
run folder's saved model, :func:`plot_activity`), and the learning rules' alignment with
BPTT over training (:func:`alignment_figure`).

Matplotlib with the Agg backend (no display needed); every function writes a PNG and
returns the figure's underlying numbers so they can be checked or saved as CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ._optional import need
from .errors import SpikegradError
from .network import SNN


def activity_snapshot(model: SNN, x: torch.Tensor, dt_ms: float, path: str | Path, *,
                      title: str = "", class_names: Sequence[str] | None = None,
                      label: int | None = None, spans: Sequence[tuple[float, float, str]] = ()) -> dict:
    """Input raster, hidden rasters (one panel per layer) and readout traces of one sample.

    ``x``: one input [time, inputs].  ``spans``: shaded time intervals (start_ms, end_ms,
    name), e.g. stimulus / delay / response.  Returns the arrays plotted.
    """
    matplotlib = need("matplotlib", "drawing figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    with torch.no_grad():
        logits, rec = model.run(x.unsqueeze(0).to(next(model.parameters()).device))
    inputs = x.cpu().numpy()
    hidden = [s[0].cpu().numpy() for s in rec.spikes]
    readout = rec.readout[0].cpu().numpy()
    steps = inputs.shape[0]
    t_ms = np.arange(steps) * dt_ms
    panels = 2 + len(hidden)
    ratios = [1.0] + [1.6] * len(hidden) + [1.2]
    fig, axes = plt.subplots(panels, 1, figsize=(7.0, 1.6 * sum(ratios) + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": ratios})

    def raster(ax, counts, ylabel):
        steps_idx, units = np.nonzero(counts)
        ax.scatter(steps_idx * dt_ms, units, s=3, c="k", marker="|" if counts.shape[1] > 4 else "o", linewidths=0.8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.5, counts.shape[1] - 0.5)

    raster(axes[0], inputs, "input")
    if inputs.shape[1] <= 4:
        axes[0].set_yticks(range(inputs.shape[1]))
    for k, h in enumerate(hidden):
        raster(axes[1 + k], h, f"hidden {k + 1}\n({int(h.sum())} spikes)")
    ax = axes[-1]
    names = list(class_names) if class_names else [str(c) for c in range(readout.shape[1])]
    t_out = t_ms[-readout.shape[0]:]  # a response-window readout covers only the last steps
    for c in range(readout.shape[1]):
        ax.plot(t_out, readout[:, c], lw=1.2, label=names[c] + (" (target)" if label == c else ""))
    window = getattr(model.readout, "window", 0)      # a spiking output layer has none
    if window:
        ax.axvspan(t_ms[-window], t_ms[-1] + dt_ms, color="tab:green", alpha=0.12, lw=0)
    ax.set_ylabel("readout U" if model.readout is not None else "output U")
    ax.set_xlabel("time (ms)")
    if readout.shape[1] <= 10:
        ax.legend(fontsize=7, ncol=min(5, readout.shape[1]), loc="upper left", frameon=False)
    for start, end, name in spans:
        for a in axes:
            a.axvline(start, color="0.6", lw=0.6, ls="--")
        axes[0].text((start + end) / 2, inputs.shape[1] - 0.5, name, ha="center", va="bottom", fontsize=8)
    # the class of the highest readout (or, for a spiking output, the most spikes)
    prediction = int(logits.argmax(1) if logits.dim() == 2 else logits.sum(1).argmax(1))
    fig.suptitle(title + (f"  —  label {names[label]}, predicted {names[prediction]}" if label is not None else ""),
                 fontsize=10)
    fig.align_ylabels(axes)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return {"inputs": inputs, "hidden": hidden, "readout": readout, "prediction": prediction}


def alignment_figure(run_dirs: Sequence[str | Path], out: str | Path) -> dict:
    """Per epoch, for each run trained with ``train.alignment``: cos∠(the rule's update,
    BPTT's gradient) per weight (left) and the angle between each forward weight and the
    feedback matrix standing in for it (right).  Writes ``out`` (PNG) and a CSV beside it
    (run, epoch, quantity, value); returns the rows."""
    import csv
    import tomllib

    from .paper_figures.results import read_history

    matplotlib = need("matplotlib", "drawing figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for run in run_dirs:
        history = read_history(Path(run), "alignment")
        keys = [k for k in (history[0] if history else {}) if k.startswith("align_")]
        if not keys:
            raise SpikegradError(f"{run}: no alignment was logged (train with --set train.alignment=true)")
        rule = "?"
        config = Path(run) / "config.toml"
        if config.is_file():
            rule = tomllib.loads(config.read_text(encoding="utf-8")).get("train", {}).get("rule", "?")
        for row in history:
            for key in keys:
                rows.append({"run": Path(run).name, "rule": rule, "epoch": row["epoch"], "quantity": key,
                             "value": row.get(key)})
    fig, (ax_cos, ax_ang) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    runs = list(dict.fromkeys(r["run"] for r in rows))
    for i, run in enumerate(runs):
        mine = [r for r in rows if r["run"] == run]
        for j, key in enumerate(dict.fromkeys(r["quantity"] for r in mine)):
            pts = [(r["epoch"], r["value"]) for r in mine if r["quantity"] == key and r["value"] is not None]
            if not pts:
                continue
            ax = ax_cos if key.startswith("align_cos/") else ax_ang
            label = f"{run} ({mine[0]['rule']}): {key.split('/', 1)[1]}"
            ax.plot(*zip(*pts), color=colors[i % len(colors)], ls=["-", "--", ":", "-."][j % 4], lw=1.3, label=label)
    ax_cos.set_ylabel("cos ∠(update, BPTT gradient)")
    ax_cos.set_ylim(-1.05, 1.05)
    ax_cos.axhline(0, color="0.7", lw=0.6)
    ax_ang.set_ylabel("∠(W, feedback matrix) (degrees)")
    ax_ang.set_ylim(0, 180)
    ax_ang.axhline(90, color="0.7", lw=0.6)
    for ax in (ax_cos, ax_ang):
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend(fontsize=6, frameon=False)
    ax_cos.set_title("alignment of the update with BPTT", fontsize=9)
    ax_ang.set_title("weights vs their feedback matrices", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    csv_path = out.with_suffix(".csv")
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["run", "rule", "epoch", "quantity", "value"])
        w.writeheader()
        w.writerows(rows)
    return {"png": out, "csv": csv_path, "rows": rows}


def plot_activity(run_dir: str | Path, split: str = "test", sample: int = 0, out: str | Path | None = None) -> Path:
    """Activity snapshot (input, hidden, readout) of a run's best model on one sample; returns the PNG path."""
    from .data import dataset_phases
    from .training import load_run

    cfg, model, splits = load_run(run_dir)
    if split not in ("train", "val", "test"):
        raise SpikegradError(f"split must be train, val or test, got {split!r}")
    data = getattr(splits, split)
    if not 0 <= sample < len(data):
        raise SpikegradError(f"sample {sample} is outside the {split} split (0–{len(data) - 1})")
    out = Path(out) if out is not None else Path(run_dir) / f"activity-{split}-{sample}.png"
    x = data.inputs([sample], cfg.data.n_steps, cfg.model.dt_ms * 1e-3)[0]
    activity_snapshot(model, x, cfg.model.dt_ms, out, label=int(data.labels[sample]),
                      title=f"{cfg.data.name} {split} sample {sample}", spans=dataset_phases(cfg))
    return out
