"""The analyses behind the figures: the sigmoid fit of figure 9, trained networks loaded
from run folders, hidden spike counts, filter-normalised directions and the loss plane of
the landscape."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._optional import need
from ..errors import SpikegradError


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


def _load_trained(run_dir: Path, weights: str | None = "model.safetensors"):
    """(cfg, model, splits) of a run folder with the given weights file; ``weights=None``:
    the network as it was initialised, as :func:`spikegrad.training.train` does it (the
    run's seed, then its ``train.init_from`` weights or the fluctuation-driven init)."""
    import torch

    from .. import training
    from ..data import load_dataset

    cfg = training.load_run_config(run_dir)
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

    from ..training import EVAL_BATCH, iterate_batches

    parts = []
    model.eval()
    with torch.no_grad():
        for x, _ in iterate_batches(data, cfg, EVAL_BATCH):
            _, rec = model.run(x)
            parts.append(torch.cat([s.sum(1) for s in rec.spikes], 1).cpu().numpy()
                         if rec.spikes else np.zeros((len(x), 0)))
    return np.concatenate(parts, 0) if parts else np.zeros((0, 0))


def _snapshot(model, x) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        logits, rec = model.run(x.unsqueeze(0).to(next(model.parameters()).device))
    return {"inputs": x.cpu().numpy(), "hidden": [s[0].cpu().numpy() for s in rec.spikes],
            "readout": rec.readout[0].cpu().numpy(), "prediction": int(logits.argmax(1))}

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

    from ..training import loss_and_record

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
