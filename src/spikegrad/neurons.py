"""Layer-level entry points: the LIF layer over time with a chosen kernel, the input
projection W·S_in by a chosen path, and the leaky readout loop.

The equations live with the neuron models (:mod:`spikegrad.dynamics`: :mod:`.lif` for
eq. 4.1, :mod:`.alif` for adaptive LIF), the kernels behind :func:`lif_layer` in
:mod:`spikegrad.kernels` (chosen per call by :mod:`spikegrad.kernels.dispatch`).  This
module keeps the names earlier versions exported (``LIFParams``, ``lif_step``,
``lif_reference``, ``lif_layer``, ``available_backends``, ``resolve_backend``).

:func:`project_input` is the one dispatch point for a layer's input projection W·S_in:
dense matmul, or event-driven over the nonzeros of sparse spike input
(:mod:`spikegrad.kernels.events`).
"""

from __future__ import annotations

import torch

from ._numba import in_transform
from .dynamics import scan
from .dynamics.base import decay
from .dynamics.lif import LIFParams, LIFState, RECURRENT_GRAD_MODES, RESET_MODES, step as _lif_step
from .errors import SpikegradError
from .events import EventBatch, density as event_density
from .kernels.dispatch import backends, default_backend, run_layer
from .kernels.events import sparse_projection
from .kernels.options import DEFAULT_OPTIONS, KernelOptions
from .surrogates import Surrogate

__all__ = ["EVENT_BATCH_DENSITY_MAX", "EVENT_DENSITY_MAX", "INPUT_PATHS", "LIFParams", "RECURRENT_GRAD_MODES",
           "RESET_MODES", "available_backends", "choose_input_path", "decay", "leaky_readout", "lif_layer",
           "lif_reference", "lif_step", "project_input", "resolve_backend"]


def lif_step(u: torch.Tensor, i: torch.Tensor, ff_in: torch.Tensor, v: torch.Tensor | None,
             p: LIFParams, surrogate: Surrogate | str | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of eq. 4.1 (:func:`spikegrad.dynamics.lif.step`) in the earlier signature:
    ``ff_in`` is W·S_in[n]; returns (S[n], U[n+1], I[n+1])."""
    if surrogate is not None and surrogate != p.surrogate:
        import dataclasses
        p = dataclasses.replace(p, surrogate=surrogate)
    s, state = _lif_step(ff_in, LIFState(u, i), v, p)
    return s, state.u, state.i


def lif_reference(ff: torch.Tensor, v: torch.Tensor | None, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain autograd loop over time (the generic scan of the LIF model).

    ``ff``: feed-forward input currents W·S_in, shape [batch, time, neurons];
    ``v``: recurrent weights [neurons, neurons] or None.
    Returns spikes S[n] and voltages U[n] for n = 0..T−1, both [batch, time, neurons].
    """
    spikes, traces = scan(ff, v, p, fields=("u",))
    return spikes, traces.u


def available_backends(model: str = "lif") -> list[str]:
    """"auto" and the kernels of ``model`` that can run here (compiled only where numba imports)."""
    from ._numba import numba_available
    return [b for b in backends(model) if b != "compiled" or numba_available()]


def resolve_backend(backend: str) -> str:
    """What "auto" runs for a float LIF layer on CPU float32/float64 input ("compiled" where
    numba imports, else "fused"); every other name is returned unchanged.  Per call, the
    dispatch may pick another candidate (CUDA tensors, a surrogate without a kernel form):
    the layer records what ran."""
    return default_backend() if backend == "auto" else backend


def lif_layer(ff: torch.Tensor, v: torch.Tensor | None, p: LIFParams, backend: str = "auto",
              options: KernelOptions = DEFAULT_OPTIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a layer of the model ``p`` belongs to over all time steps with the chosen kernel
    (:func:`spikegrad.kernels.dispatch.run_layer`); returns (spikes, voltages)."""
    result = run_layer(ff, v, p, backend, options)
    return result.spikes, result.voltages


INPUT_PATHS = ("auto", "dense", "events")

# Input density (fraction of nonzeros of x) below which "auto" takes the event path: the
# defaults of KernelOptions, set below the measured crossovers of the two paths
# (`python benchmarks/event_input.py --crossover-only`; the numbers: docs/PERFORMANCE.md).
EVENT_DENSITY_MAX = DEFAULT_OPTIONS.event_density_max
EVENT_BATCH_DENSITY_MAX = DEFAULT_OPTIONS.event_batch_density_max


def choose_input_path(x: torch.Tensor | EventBatch, w: torch.Tensor, events: EventBatch | None = None,
                      options: KernelOptions = DEFAULT_OPTIONS) -> str:
    """``"events"`` or ``"dense"`` for ``x @ w.T``: what ``input_path="auto"`` runs.

    Events only on CPU (the measured kernel), outside ``torch.func`` transforms, for floating input,
    and when x's density is below ``options.event_density_max``
    (``event_batch_density_max`` for an EventBatch).  Dense analog input (e.g. mel features)
    has density ≈ 1 and keeps the dense matmul.  Counting the nonzeros of a dense x is one
    pass over it, small next to the matmul it decides about; an :class:`EventBatch`, and
    spikes whose ``events`` the caller passes (the compiled LIF layer returns them), know
    their count.  A dense x must also have the weights' dtype (else the matmul decides).
    """
    if x.device.type != "cpu" or w.device.type != "cpu" or x.numel() == 0:
        return "dense"
    if in_transform():                          # torch.func: the dense matmul composes with it
        return "dense"
    if isinstance(x, EventBatch):
        return "events" if x.density() < options.event_batch_density_max else "dense"
    if not x.is_floating_point() or x.dtype != w.dtype:
        return "dense"
    density = events.density() if events is not None else event_density(x)
    return "events" if density < options.event_density_max else "dense"


def project_input(x: torch.Tensor | EventBatch, w: torch.Tensor, path: str = "auto",
                  events: EventBatch | None = None, options: KernelOptions = DEFAULT_OPTIONS) -> torch.Tensor:
    """A layer's input currents x Wᵀ ([..., N_in] → [..., N_out]) by the chosen path.

    ``x``: a dense tensor or an :class:`EventBatch` (what spiking data sets deliver; its
    values are cast to the weights' dtype and device); ``events``: x's events when known.
    ``path``: ``"dense"`` (matmul; an event batch is densified first), ``"events"`` (cost ∝
    number of nonzeros of x: :func:`spikegrad.kernels.events.sparse_projection`), or
    ``"auto"`` (:func:`choose_input_path`).  All give the same values up to rounding, and the
    same gradients w.r.t. w and a dense x.  The one dispatch point for input projections.
    """
    if path not in INPUT_PATHS:
        raise SpikegradError(f"unknown input path {path!r}; choose one of: {', '.join(INPUT_PATHS)}")
    if isinstance(x, EventBatch) and (x.dtype != w.dtype or x.device != w.device):
        x = x.to(w.device, w.dtype)
    if path == "auto":
        path = choose_input_path(x, w, events, options)
    if path == "dense":
        return (x.to_dense() if isinstance(x, EventBatch) else x) @ w.t()
    return sparse_projection(x, w, events, options.projection_impl)


def leaky_readout(
    h: torch.Tensor, decay_out: float, decay_syn: float, gain: float, u0: float
) -> torch.Tensor:
    """Non-spiking leaky integrator readout, recorded at n = 0..T−1.

    U_out[n+1] = β_out U_out[n] + g I_out[n];  I_out[n+1] = β_syn I_out[n] + h[n],
    with U_out[0] = u0 (a small negative value keeps max-over-time from resting on a
    constant step in a silent network), I_out[0] = 0.  ``h`` = W_out·S, [batch, time, out].
    """
    batch, _, n = h.shape
    u = h.new_full((batch, n), float(u0))
    i = h.new_zeros(batch, n)
    out = []
    for h_t in h.unbind(1):
        out.append(u)
        u = decay_out * u + gain * i
        i = decay_syn * i + h_t
    return torch.stack(out, 1)
