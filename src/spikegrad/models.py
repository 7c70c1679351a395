"""Model builders by name: ``model.arch`` in the config picks ``factory(cfg, n_inputs,
n_classes) -> nn.Module`` from :data:`MODELS`; ``snn`` (:class:`~spikegrad.network.SNN`,
eq. 4.1 layers and a leaky readout or a spiking output layer) is the first.

What the training loop, evaluation and the figures need of a model: an ``nn.Module`` whose
``run(x)`` returns ``(output, recording)`` — the output is what the loss reads (logits,
spike trains, spike times), the recording has ``spikes``, a list of hidden spike trains
[batch, time, neurons] (may be empty) for the activity regulariser and the spike counts.
A model need not be a time-stepped scan (a spike-time model maps input spike times to
output spike times); ``kernels()``, where present, says what ran (metrics.json).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch

from .errors import SpikegradError
from .network import SNN
from .registry import Registry

ModelFactory = Callable[[Any, int, int], torch.nn.Module]    # (config, n_inputs, n_classes)
MODELS: Registry[ModelFactory] = Registry("model")

EVAL_BATCH = 1000


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: register ``factory(cfg, n_inputs, n_classes) -> model`` under ``name``."""
    return MODELS.register(name)


def _memory_bytes(device: torch.device) -> int | None:
    """Total memory of the device (physical RAM for the CPU), or None when unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def estimated_bytes(cfg, n_inputs: int, n_classes: int) -> int:
    """A lower estimate of what training ``cfg`` holds at once (float32): weights, their
    gradients and Adam's two moments, plus one batch's traces of every hidden layer (input
    currents, voltages, spikes and their gradients) and of the readout."""
    sizes = [n_inputs, *cfg.hidden_sizes]
    weights = sum(a * b + (b * b if cfg.model.recurrent else 0) for a, b in zip(sizes[:-1], sizes[1:]))
    weights += sizes[-1] * n_classes
    rows = max(cfg.train.batch_size, EVAL_BATCH) * cfg.data.n_steps
    traces = rows * (6 * sum(cfg.hidden_sizes) + 4 * n_classes)
    return 4 * (4 * weights + traces)


def check_model_size(cfg, n_inputs: int, n_classes: int) -> None:
    """A model that cannot fit is one clear error before anything is allocated or written."""
    need = estimated_bytes(cfg, n_inputs, n_classes)
    have = _memory_bytes(cfg.torch_device())
    if have is not None and need > have:
        raise SpikegradError(
            f"the model needs at least {need / 2**30:.1f} GiB (model.hidden={cfg.model.hidden}, {n_inputs} inputs, "
            f"train.batch_size={cfg.train.batch_size}, data.n_steps={cfg.data.n_steps}), more than the "
            f"{have / 2**30:.1f} GiB of {cfg.torch_device().type} memory; make them smaller")


@register_model("snn")
def build_snn(cfg, n_inputs: int, n_classes: int) -> SNN:
    """The eq. 4.1 network a config describes (weights drawn from torch's current RNG
    state); a model too large for the device's memory is refused first."""
    check_model_size(cfg, n_inputs, n_classes)
    m = cfg.model
    return SNN(n_inputs, cfg.hidden_sizes, n_classes, cfg.neuron_params(), recurrent=m.recurrent,
               tau_out=m.tau_out_ms * 1e-3, readout=m.readout, readout_init=m.readout_init,
               backend=m.backend, readout_steps=m.readout_steps, input_path=m.input_path,
               output=m.output, readout_tau_syn=m.readout_tau_syn_ms * 1e-3 or None,
               readout_input_gain={"same": None, "on": True, "off": False}[m.readout_input_gain])


def build_model(cfg, n_inputs: int, n_classes: int) -> torch.nn.Module:
    """The model ``model.arch`` names, built from the config."""
    return MODELS.get(cfg.model.arch)(cfg, n_inputs, n_classes)
