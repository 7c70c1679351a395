"""Spiking network: hidden layers of any registered neuron model (LIF by default; 0, 1, 2, …;
optionally recurrent) and a leaky readout (or a spiking output layer).

Input [batch, time, inputs] → logits [batch, classes].  With ``record=True`` the forward
pass also returns the hidden spikes and voltages per layer and the readout trace.
Weights are drawn from U(−1/√fan_in, 1/√fan_in), no biases (paper §4.2.3).  A layer is
generic over the neuron model: its parameter record (``LIFParams``, ``ALIFParams``, …)
names the model, and :func:`spikegrad.kernels.dispatch.run_layer` picks the kernel per call
(the layer records which one ran: :meth:`SNN.kernels`).  Parameter fields that are
``nn.Parameter`` tensors (learnable time constants) are registered on the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch
from torch import nn

from .dynamics import LIFParams
from .dynamics.base import model_of
from .errors import SpikegradError
from .events import EventBatch
from .kernels.dispatch import LayerResult, run_layer
from .kernels.options import DEFAULT_OPTIONS, KernelOptions
from .kernels.readout import leaky_readout_fast
from .neurons import INPUT_PATHS, choose_input_path, leaky_readout, project_input, resolve_backend
from .readouts import get_readout

# The reference time loop, or kernels/readout.py's fast path (the compiled recursion where
# numba imports, else one Toeplitz matmul).
READOUT_METHODS = ("loop", "fast")
# What the network ends in: the leaky readout reduced to logits, or a spiking output layer
# whose spike trains [batch, time, classes] the loss reads.
OUTPUTS = ("readout", "spikes")


def _uniform_fan_in(shape: tuple[int, int]) -> nn.Parameter:
    bound = 1.0 / math.sqrt(shape[1])
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


def _check_input_path(path: str) -> str:
    if path not in INPUT_PATHS:
        raise SpikegradError(f"unknown input path {path!r}; choose one of: {', '.join(INPUT_PATHS)}")
    return path


class LIFLayer(nn.Module):
    """Feed-forward weights W [out, in] and, if recurrent, V [out, out]; the neuron model is
    the one ``params`` belongs to (LIF, ALIF, …).

    ``input_path`` ("auto", "dense", "events"; a plain attribute, may be changed at any
    time) selects how x Wᵀ is computed: see :func:`spikegrad.neurons.project_input`.
    ``backend`` names the kernel ("auto": the first candidate that supports the call);
    ``options`` tunes the kernels.  After a forward pass, ``ran`` holds the kernel and the
    input path that ran.
    """

    def __init__(self, n_in: int, n_out: int, params: LIFParams, recurrent: bool = False,
                 backend: str = "auto", input_path: str = "auto", options: KernelOptions = DEFAULT_OPTIONS):
        super().__init__()
        self.params = params
        self.backend = backend
        self.input_path = _check_input_path(input_path)
        self.options = options
        self.weight = _uniform_fan_in((n_out, n_in))
        self.recurrent_weight = _uniform_fan_in((n_out, n_out)) if recurrent else None
        for name in getattr(params, "tensor_fields", ()):
            value = getattr(params, name)
            if isinstance(value, nn.Parameter):
                self.register_parameter(f"neuron_{name}", value)
        self.ran: dict[str, str] = {}

    def run(self, x: torch.Tensor | EventBatch, events: EventBatch | None = None,
            credit: "Credit | None" = None, index: int = 0,
            spikes: Sequence[torch.Tensor] = ()) -> LayerResult:
        """x: input spikes [batch, time, in] (or an EventBatch; ``events``: x's events when
        known) → the kernel's :class:`~spikegrad.kernels.dispatch.LayerResult`.
        ``credit``: how the backward pass reaches x and crosses the recurrence (a learning
        rule's; see :class:`Credit`), for the layer at position ``index`` (its input
        projection only from 1 on: layer 0 reads the data); ``spikes``: every hidden layer's,
        when this is the output layer."""
        v = self.recurrent_weight
        if credit is not None and v is not None:
            v = credit.recurrent(index, v)
        if credit is not None and index > 0:
            ff, path = credit.project(index, x, self.weight), "credit"
            if spikes:
                ff = credit.output_input(ff, spikes)
        else:
            path = self.input_path
            if path == "auto":
                path = choose_input_path(x, self.weight, events, self.options)
            ff = project_input(x, self.weight, path, events, self.options)
        result = run_layer(ff, v, self.params, self.backend, self.options)
        self.ran = {"kernel": result.kernel, "input_path": path}
        return result

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: input spikes [batch, time, in] → (spikes, voltages), each [batch, time, out]."""
        result = self.run(x)
        return result.spikes, result.voltages


class Readout(nn.Module):
    """Leaky-integrator readout with synaptic current, reduced over time to logits:

        I_out[n+1] = β_syn,out I_out[n] + W_out S[n]
        U_out[n+1] = β_out U_out[n] + g I_out[n],   g = 1 − β_out with the input gain, else 1

    or, for neuron models with the same-step ordering (``cuba``; NIR's CubaLI at Δt):
    I_out[n] = β_syn,out I_out[n−1] + W_out S[n], U_out[n] = β_out U_out[n−1] + g I_out[n].
    Decays follow the neuron model's mapping (``params.decay_of``).

    ``tau_syn`` (s) and ``input_gain`` are the readout's own; ``None`` takes the hidden
    layers' (``params``), the paper's choice.  ``options``: the kernel options its input
    projection runs with (the network's)."""

    def __init__(self, n_in: int, n_out: int, params: LIFParams, tau_out: float,
                 reduction: str = "max", initial_state: float = -1e-3, window: int = 0,
                 method: str = "loop", options: KernelOptions = DEFAULT_OPTIONS,
                 tau_syn: float | None = None, input_gain: bool | None = None):
        super().__init__()
        self.options = options
        if method not in READOUT_METHODS:
            raise SpikegradError(f"unknown readout method {method!r}; choose one of: {', '.join(READOUT_METHODS)}")
        self.method = method
        if not (math.isfinite(tau_out) and tau_out > 0):
            raise SpikegradError(f"tau_out must be a positive number of seconds, got {tau_out!r}")
        if not math.isfinite(initial_state):
            raise SpikegradError(f"readout initial state must be finite, got {initial_state!r}")
        if window < 0:
            raise SpikegradError(f"readout window must be ≥ 0 steps, got {window!r}")
        self.reduction_fn = get_readout(reduction)
        self.reduction = reduction
        self.window = int(window)
        if tau_syn is not None and not (math.isfinite(tau_syn) and tau_syn > 0):
            raise SpikegradError(f"readout tau_syn must be a positive number of seconds, got {tau_syn!r}")
        # the time constants (s) as given, for export; syn_gain c scales the input current
        # (I_out ← β I_out + c W_out S; 1 unless a NIR graph says otherwise)
        self.tau_mem, self.tau_syn = tau_out, params.tau_syn if tau_syn is None else tau_syn
        self.syn_gain = 1.0
        self.decay_out = params.decay_of(tau_out)
        self.decay_syn = params.decay_syn if tau_syn is None else params.decay_of(tau_syn)
        self.same_step = model_of(params).same_step
        input_gain = params.input_gain if input_gain is None else input_gain
        self.gain = 1.0 - self.decay_out if input_gain else 1.0
        self.initial_state = float(initial_state)
        self.weight = _uniform_fan_in((n_out, n_in))

    def trace(self, x: torch.Tensor | EventBatch, events: EventBatch | None = None,
              credit: "Credit | None" = None, index: int = 0,
              spikes: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """Readout voltages U_out[n], [batch, time, classes].

        With a response window of k steps the readout listens only then: it starts from
        its initial state at step T − k and integrates the last k steps of ``x``, so the
        decision must be present in the network's activity at response time (the leaky
        readout cannot carry it across a delay).  The trace is then [batch, k, classes].
        ``events``: the events of spikes x when known (the compiled LIF layer returns them).
        ``credit`` (a learning rule's, with the readout's position ``index`` and every hidden
        layer's ``spikes``): how the backward pass leaves the readout.
        """
        if self.window:
            x = (x.to_dense() if isinstance(x, EventBatch) else x)[:, -self.window:]
            events = None
        fn = leaky_readout if self.method == "loop" else leaky_readout_fast
        if credit is not None and spikes:
            h = credit.output_input(credit.project(index, x, self.weight), spikes)
        # input events (no hidden layer) or spikes whose events are known (the compiled LIF
        # layer's): projected by events where that pays
        elif isinstance(x, EventBatch) or events is not None:
            h = project_input(x, self.weight, events=events, options=self.options)
        else:
            h = x @ self.weight.t()
        if self.syn_gain != 1.0:
            h = self.syn_gain * h
        if not self.same_step:
            return fn(h, self.decay_out, self.decay_syn, self.gain, self.initial_state)
        # the same-step readout U[n] = β U[n−1] + g I[n], I[n] = α I[n−1] + h[n] (U[−1] =
        # U_out[0], I[−1] = 0) is the recursion above two steps later, started from U_out[0]/β
        padded = torch.nn.functional.pad(h, (0, 0, 0, 2))
        return fn(padded, self.decay_out, self.decay_syn, self.gain, self.initial_state / self.decay_out)[:, 2:]

    def reduce(self, trace: torch.Tensor) -> torch.Tensor:
        """Logits from the readout trace."""
        return self.reduction_fn(trace)

    def forward(self, x: torch.Tensor, events: EventBatch | None = None) -> torch.Tensor:
        return self.reduce(self.trace(x, events))


class Credit(Protocol):
    """How the backward pass crosses the network's projections: a learning rule sets one on
    :attr:`SNN.credit` for its steps (None: the chain rule, i.e. BPTT).  The forward values
    are the network's own; only the gradients differ.

    ``project(index, x, W)``: x Wᵀ for the hidden spikes x entering the layer at position
    ``index`` (1 … L−1: hidden layers; L: the readout or spiking output layer);
    ``recurrent(index, V)``: what the layer's kernel gets for its recurrent weights (V, or a
    :class:`~spikegrad.dynamics.base.Feedback` pair); ``output_input(h, spikes)``: the
    output layer's input current h (identity in value), through which the error may also
    be sent to every hidden layer's ``spikes`` directly."""

    def project(self, index: int, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor: ...

    def recurrent(self, index: int, weight: torch.Tensor): ...

    def output_input(self, h: torch.Tensor, spikes: Sequence[torch.Tensor]) -> torch.Tensor: ...


@dataclass
class Recording:
    """What one forward pass produced, for analysis, regularisers and plots."""

    spikes: list[torch.Tensor] = field(default_factory=list)    # per hidden layer [B, T, N]
    voltages: list[torch.Tensor] = field(default_factory=list)  # per hidden layer [B, T, N]
    readout: torch.Tensor | None = None                          # [B, T, classes]

    def spike_counts(self) -> list[torch.Tensor]:
        """Spike count per sample and layer, each [batch] (summed over time and neurons)."""
        return [s.sum(dim=(1, 2)) for s in self.spikes]


class SNN(nn.Module):
    """Multi-layer spiking network of Zenke & Vogels 2021 (eq. 4.1).

    Args:
        n_inputs: input channels.  hidden: sizes of hidden LIF layers ([] for none).
        n_classes: readout units.  recurrent: add V to every hidden layer.
        params: neuron dynamics and gradient switches.  tau_out: readout time constant (s).
        readout: ``max``/``sum``/``mean``/``last``.  readout_init: U_out[0].
        readout_steps: response window: the readout sees only the last this many steps (0: all).
        output: ``"readout"`` (the leaky readout; forward returns logits) or ``"spikes"``
        (a feed-forward spiking layer of ``n_classes`` neurons of the same model ends the
        network; forward returns its spike trains [batch, time, classes], the recording's
        ``readout`` holds its voltages; ``readout``, ``tau_out`` and the readout's options
        do not apply — the loss reduces the trains).  readout_tau_syn (s), readout_input_gain:
        the readout's own synaptic time constant and input gain (None: the hidden layers').
        params: the neuron model's parameter record (``LIFParams`` — eq. 4.1 —, ``ALIFParams``, …).
        backend: kernel of every hidden layer ("auto": per call the first candidate that
        supports it — compiled where numba imports, else fused; "reference" is the plain
        autograd scan, and keeps the readout a loop too).  kernel_options: tuning of the
        kernels (:class:`~spikegrad.kernels.options.KernelOptions`).
        input_path: how every hidden layer computes x Wᵀ ("auto", the default: event-driven
        for sparse CPU input, else dense; "dense"; "events"); change later with
        :meth:`set_input_path`.  All choices give the same values up to float rounding.
    """

    def __init__(self, n_inputs: int, hidden: Sequence[int], n_classes: int,
                 params: LIFParams | None = None, recurrent: bool = False,
                 tau_out: float = 20e-3, readout: str = "max", readout_init: float = -1e-3,
                 backend: str = "auto", readout_steps: int = 0, input_path: str = "auto",
                 kernel_options: KernelOptions = DEFAULT_OPTIONS, output: str = "readout",
                 readout_tau_syn: float | None = None, readout_input_gain: bool | None = None):
        super().__init__()
        params = params or LIFParams()
        if output not in OUTPUTS:
            raise SpikegradError(f"unknown output {output!r}; choose one of: {', '.join(OUTPUTS)}")
        if output == "spikes" and readout_steps:
            raise SpikegradError("a spiking output layer has no response window: readout_steps must be 0")
        sizes = [int(n_inputs), *[int(h) for h in hidden]]
        if any(s <= 0 for s in sizes) or n_classes <= 0:
            raise SpikegradError(
                f"layer sizes must be positive, got inputs={n_inputs}, hidden={list(hidden)}, "
                f"classes={n_classes}")
        self.n_inputs = sizes[0]
        self.params = params
        self.layers = nn.ModuleList(
            LIFLayer(a, b, params, recurrent, backend, input_path, kernel_options)
            for a, b in zip(sizes[:-1], sizes[1:]))
        # The reference backend keeps the plain time loop for the readout too; every fast
        # backend uses the fast readout (equal to the loop up to rounding).
        self.output = output
        self.reduction = readout       # over time: the readout's, or the loss's for a spiking output
        if output == "spikes":
            self.output_layer = LIFLayer(sizes[-1], n_classes, params, False, backend, input_path, kernel_options)
            self.readout = None
            return
        method = "loop" if resolve_backend(backend) == "reference" else "fast"
        self.output_layer = None
        self.readout = Readout(sizes[-1], n_classes, params, tau_out, readout, readout_init, readout_steps,
                               method, kernel_options, readout_tau_syn, readout_input_gain)

    credit: Credit | None = None    # a learning rule's, for its steps; None: the chain rule (BPTT)

    def set_input_path(self, path: str) -> None:
        """Set ``input_path`` ("auto", "dense", "events") of every hidden layer."""
        _check_input_path(path)
        for layer in self.layers:
            layer.input_path = path

    def forward(self, x: torch.Tensor, record: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.n_inputs:
            raise SpikegradError(
                f"input must have shape [batch, time, {self.n_inputs}], got {list(x.shape)}")
        rec = Recording()
        events, credit, top = None, self.credit, len(self.layers)
        for k, layer in enumerate(self.layers):
            out = layer.run(x, events, credit, k)
            x, events = out.spikes, out.events
            rec.spikes.append(x)
            rec.voltages.append(out.voltages)
        if self.output_layer is not None:
            out = self.output_layer.run(x, events, credit, top, rec.spikes)
            rec.readout = out.voltages
            return (out.spikes, rec) if record else out.spikes
        rec.readout = self.readout.trace(x, events, credit, top, rec.spikes)
        logits = self.readout.reduce(rec.readout)
        return (logits, rec) if record else logits

    @property
    def head(self) -> "Readout | LIFLayer":
        """What the last hidden layer's spikes project into: the readout, or the spiking
        output layer."""
        return self.output_layer if self.output_layer is not None else self.readout

    def kernels(self) -> list[dict[str, str]]:
        """What the last forward pass ran, per hidden layer: kernel and input path, and the
        readout's method (``{"readout": "fast"}`` or ``"loop"``) last."""
        if self.output_layer is not None:
            return [dict(layer.ran) for layer in self.layers] + [{"output": "spikes", **self.output_layer.ran}]
        return [dict(layer.ran) for layer in self.layers] + [{"readout": self.readout.method}]

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, Recording]:
        """Forward pass that also returns the recording (spikes, voltages, readout)."""
        return self.forward(x, record=True)
