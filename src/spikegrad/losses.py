"""Losses as objects: what the network's output is compared with, what it predicts, which
metrics it reports and which of them selects the best epoch.

A loss is called as ``loss(output, target) -> scalar`` (the batch mean) on whatever the
model's ``run`` returns first: class logits [batch, classes] from the leaky readout, or a
spiking output layer's spike trains [batch, time, classes] (``model.output = "spikes"``).
Besides the loss it defines

- ``reduction``: for time-resolved outputs, how the loss reduces them over time first
  (a name of :data:`spikegrad.readouts.READOUTS`; ``None``: the output is reduced already);
- ``predict(output)``: the prediction (a class per sample, or the output itself);
- ``batch_metrics(output, target) -> {name: sum over the batch's samples}``, the names in
  ``metrics``; the training loop divides by the number of samples, so every metric is a
  mean per sample (accuracy: the share correct; a distance: the mean distance);
- ``selection``: the metric (one of ``metrics``) and direction that pick the best epoch,
  rank sweep configurations and name the sweep objective.

:class:`CrossEntropy` (softmax cross-entropy on logits, accuracy, higher is better) is the
paper's; :class:`VanRossum` (a distance between output and target spike trains, lower is
better) is the first for spike-train targets.  A loss is made from the run's config by the
factory registered in :data:`LOSSES` under ``train.loss``, or passed to
``train(..., loss=...)`` as an object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F

from .errors import SpikegradError
from .readouts import get_readout
from .registry import Registry


@dataclass(frozen=True)
class Selection:
    """The metric that selects the best epoch, and whether higher values are better."""

    metric: str
    higher_is_better: bool = True

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (``None``: no epoch yet; a NaN never wins)."""
        if best is None:
            return value == value
        return value > best if self.higher_is_better else value < best

    @property
    def direction(self) -> str:
        """Optuna's name for the direction: ``maximize`` or ``minimize``."""
        return "maximize" if self.higher_is_better else "minimize"

    @property
    def worst(self) -> float:
        """A value every result beats (a failed or diverged sweep trial's): 0 for an
        accuracy, else ∓∞."""
        if self.metric.endswith("accuracy"):
            return 0.0
        return -math.inf if self.higher_is_better else math.inf


class Loss(Protocol):
    name: str
    metrics: tuple[str, ...]
    selection: Selection

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    def predict(self, output: torch.Tensor) -> torch.Tensor: ...

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]: ...


class CrossEntropy:
    """Softmax cross-entropy of class logits: ``−log softmax(z)_y``, the batch mean.

    z is the output itself (``reduction=None``: the leaky readout reduced it) or the
    output reduced over time by the named readout reduction (spike counts with ``"sum"``
    for a spiking output layer).  Prediction: argmax of z; metric: accuracy.
    """

    name = "cross_entropy"
    metrics = ("accuracy",)
    selection = Selection("accuracy", higher_is_better=True)

    def __init__(self, reduction: str | None = None):
        self.reduction = reduction
        self._reduce = get_readout(reduction) if reduction is not None else None

    def logits(self, output: torch.Tensor) -> torch.Tensor:
        return output if self._reduce is None else self._reduce(output)

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(output), target)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return self.logits(output).argmax(1)

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {"accuracy": int((self.predict(output) == target).sum())}


class VanRossum:
    """Van Rossum distance between output and target spike trains, [batch, time, neurons].

    Both are filtered by the causal exponential kernel of time constant τ (in steps,
    ``tau_steps`` = τ/Δt): f[n] = e^{−1/τ} f[n−1] + S[n]; the distance of one sample is

        D = 1/τ · Σ_n Σ_i (f_out,i[n] − f_target,i[n])²

    (the discrete form of van Rossum 2001's (1/τ)∫(f − g)² dt, in units of spikes: one
    unmatched spike adds about 1/2).  The loss is the batch mean of D; the metric
    ``distance`` (lower is better) selects the best epoch.  The prediction is the output
    spike trains themselves.
    """

    name = "van_rossum"
    metrics = ("distance",)
    selection = Selection("distance", higher_is_better=False)
    reduction = None

    def __init__(self, tau_steps: float = 10.0):
        if not (math.isfinite(tau_steps) and tau_steps > 0):
            raise SpikegradError(f"van Rossum τ must be a positive number of steps, got {tau_steps!r}")
        self.tau_steps = float(tau_steps)

    def filtered(self, spikes: torch.Tensor) -> torch.Tensor:
        """The spike trains convolved with the kernel, same shape."""
        a = math.exp(-1.0 / self.tau_steps)
        f = torch.zeros_like(spikes[:, 0])
        out = []
        for n in range(spikes.shape[1]):
            f = a * f + spikes[:, n]
            out.append(f)
        return torch.stack(out, dim=1)

    def distances(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """D per sample, [batch]."""
        if output.shape != target.shape:
            raise SpikegradError(f"van Rossum distance: output spike trains {list(output.shape)} and targets "
                                 f"{list(target.shape)} differ in shape")
        diff = self.filtered(output) - self.filtered(target.to(output.dtype))
        return diff.pow(2).sum(dim=(1, 2)) / self.tau_steps

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.distances(output, target).mean()

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def batch_metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {"distance": float(self.distances(output.detach(), target).sum(dtype=torch.float64))}


LossFactory = Callable[[Any], Loss]        # (config) -> loss
LOSSES: Registry[LossFactory] = Registry("loss")


def register_loss(name: str) -> Callable[[LossFactory], LossFactory]:
    """Decorator: register ``factory(cfg) -> loss`` under ``name``."""
    return LOSSES.register(name)


def make_loss(cfg) -> Loss:
    """The loss ``cfg.train.loss`` names, made from the config."""
    return LOSSES.get(cfg.train.loss)(cfg)


def _output_reduction(cfg) -> str | None:
    """A spiking output layer's trains are reduced by ``model.readout``; the leaky readout
    reduces its own trace (the model returns logits)."""
    return cfg.model.readout if cfg.model.output == "spikes" else None


@register_loss("cross_entropy")
def _cross_entropy(cfg) -> CrossEntropy:
    return CrossEntropy(_output_reduction(cfg))


@register_loss("van_rossum")
def _van_rossum(cfg) -> VanRossum:
    if cfg.model.output != "spikes":
        raise SpikegradError("train.loss 'van_rossum' compares spike trains: it needs model.output = 'spikes'")
    return VanRossum(cfg.train.van_rossum_tau_ms / cfg.model.dt_ms)
