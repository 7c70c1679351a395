"""Current-based LIF dynamics (Zenke & Vogels 2021, eq. 4.1; tutorial eqs. 7–8).

Discrete time, step Δt, rest 0, threshold 1.  For hidden layer neuron i at step n:

    S[n]   = Θ(U[n] − 1)                                   (strict: U > 1)
    U[n+1] = (β_mem U[n] + g I[n]) (1 − S[n])              reset "zero" (default)
    U[n+1] =  β_mem U[n] + g I[n] − S[n]                   reset "subtract"
    I[n+1] = β_syn I[n] + Σ_j W_ij S_in_j[n] + Σ_j V_ij S_j[n]

with g = 1 − β_mem ("input gain", default) or 1, β = exp(−Δt/τ).  U[0] = I[0] = 0.
The spike at step n comes from the voltage *before* the update, so a layer's input at
step n first changes its spikes at step n + 2.

Gradient-flow switches (paper Figs. 4–5): ``detach_reset`` (default) cuts the gradient
through the reset term; ``recurrent_grad="ctl"`` detaches S inside V·S only.

This module holds the parameter record, the pure step function, the plain reference
loop over time, and :func:`lif_layer`, the one dispatch point behind which faster
kernels live (``backend="fused"``: :mod:`spikegrad.kernels.fused`; ``backend="compiled"``:
:mod:`spikegrad.kernels.compiled`, numba).  Everything else calls :func:`lif_layer`.
Likewise :func:`project_input` is the one dispatch point for a layer's input projection
W·S_in: dense matmul, or event-driven over the nonzeros of sparse spike input
(:mod:`spikegrad.kernels.events`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import SpikegradError
from .kernels.compiled import lif_compiled, numba_available
from .kernels.events import EventBatch, density as event_density, known_events, sparse_projection
from .kernels.fused import lif_fused
from .surrogates import Surrogate, get_surrogate, spike

RESET_MODES = ("zero", "subtract")
RECURRENT_GRAD_MODES = ("prop", "ctl")


def decay(dt: float, tau: float) -> float:
    """β = exp(−Δt/τ)."""
    return math.exp(-dt / tau)


@dataclass(frozen=True)
class LIFParams:
    """Everything that defines one LIF layer's dynamics and its gradient flow.

    Times are in seconds.  ``beta`` is the surrogate slope (not a decay factor).
    """

    dt: float = 1e-3
    tau_mem: float = 10e-3
    tau_syn: float = 5e-3
    reset: str = "zero"
    input_gain: bool = True
    detach_reset: bool = True
    recurrent_grad: str = "prop"
    surrogate: str = "superspike"
    beta: float = 10.0

    def __post_init__(self) -> None:
        for name in ("dt", "tau_mem", "tau_syn"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise SpikegradError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.reset not in RESET_MODES:
            raise SpikegradError(f"reset must be one of {RESET_MODES}, got {self.reset!r}")
        if self.recurrent_grad not in RECURRENT_GRAD_MODES:
            raise SpikegradError(
                f"recurrent_grad must be one of {RECURRENT_GRAD_MODES}, got {self.recurrent_grad!r}"
            )
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise SpikegradError(f"surrogate slope beta must be ≥ 0, got {self.beta!r}")
        get_surrogate(self.surrogate)  # raises on unknown names

    @property
    def decay_mem(self) -> float:
        return decay(self.dt, self.tau_mem)

    @property
    def decay_syn(self) -> float:
        return decay(self.dt, self.tau_syn)

    @property
    def gain(self) -> float:
        """Input factor of the membrane update: 1 − β_mem, or 1 with the gain off."""
        return 1.0 - self.decay_mem if self.input_gain else 1.0


def lif_step(
    u: torch.Tensor,
    i: torch.Tensor,
    ff_in: torch.Tensor,
    v: torch.Tensor | None,
    p: LIFParams,
    surrogate: Surrogate,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of eq. 4.1.  ``ff_in`` is W·S_in[n]; returns (S[n], U[n+1], I[n+1])."""
    s = spike(u - 1.0, surrogate, p.beta)
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        u_next = (p.decay_mem * u + p.gain * i) * (1.0 - s_reset)
    else:
        u_next = p.decay_mem * u + p.gain * i - s_reset
    i_next = p.decay_syn * i + ff_in
    if v is not None:
        s_rec = s.detach() if p.recurrent_grad == "ctl" else s
        i_next = i_next + s_rec @ v.t()
    return s, u_next, i_next


def lif_reference(
    ff: torch.Tensor, v: torch.Tensor | None, p: LIFParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain autograd loop over time.

    ``ff``: feed-forward input currents W·S_in, shape [batch, time, neurons];
    ``v``: recurrent weights [neurons, neurons] or None.
    Returns spikes S[n] and voltages U[n] for n = 0..T−1, both [batch, time, neurons].
    Uses ``unbind`` rather than ``ff[:, t]`` so the backward pass stays O(T).
    """
    surrogate = get_surrogate(p.surrogate)
    batch, _, n = ff.shape
    u = ff.new_zeros(batch, n)
    i = ff.new_zeros(batch, n)
    spikes, volts = [], []
    for ff_t in ff.unbind(1):
        volts.append(u)
        s, u, i = lif_step(u, i, ff_t, v, p, surrogate)
        spikes.append(s)
    return torch.stack(spikes, 1), torch.stack(volts, 1)


LayerKernel = Callable[[torch.Tensor, "torch.Tensor | None", LIFParams], tuple[torch.Tensor, torch.Tensor]]
# "reference": the plain autograd loop above.  "fused": one autograd node for all steps
# with a hand-written adjoint (kernels/fused.py; bitwise-identical forward, gradients equal
# to the reference's up to rounding).  "compiled": the same adjoint with the time loop in
# numba (kernels/compiled.py; needs the numba package, listed only when it imports, and
# raises a SpikegradError naming it when selected without it).  "auto": the fastest one
# available (:func:`resolve_backend`).
_KERNELS: dict[str, LayerKernel] = {"reference": lif_reference, "fused": lif_fused,
                                    "compiled": lif_compiled}
_OPTIONAL_KERNELS: dict[str, Callable[[], bool]] = {"compiled": numba_available}


def available_backends() -> list[str]:
    names = [k for k in _KERNELS if k not in _OPTIONAL_KERNELS or _OPTIONAL_KERNELS[k]()]
    return ["auto", *sorted(names)]


def resolve_backend(backend: str) -> str:
    """The kernel a backend name runs: "auto" → "compiled" where numba imports, else "fused".

    (The compiled kernel itself hands CUDA tensors and user-registered surrogates to
    "fused".)  Every other name is returned unchanged.
    """
    if backend != "auto":
        return backend
    return "compiled" if numba_available() else "fused"


def lif_layer(
    ff: torch.Tensor, v: torch.Tensor | None, p: LIFParams, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF layer over all time steps with the chosen kernel (one dispatch point)."""
    name = resolve_backend(backend)
    try:
        kernel = _KERNELS[name]
    except KeyError:
        raise SpikegradError(
            f"unknown backend {backend!r}; choose one of: {', '.join(available_backends())}"
        ) from None
    return kernel(ff, v, p)


INPUT_PATHS = ("auto", "dense", "events")

# Input density (fraction of nonzeros of x) below which "auto" takes the event path, measured
# with `python benchmarks/event_input.py --crossover-only --repeats 7` (projection forward +
# backward, 700→256, batch 64, T 100, float32, 2 threads, 2-core CPU; session 4, with the
# two-thread event kernels): from a dense x the event path wins 3.9× at 0.5 %, 3.1× at 2 %,
# 1.9× at 6 %, 1.2× at 12 % and loses from ≈ 16 % (0.95×); with dx (a previous layer's
# spikes: dx = δff W is dense on both paths) 1.5× at 2 %, 1.1× at 12 %, 0.96× at 16 %.  From
# an EventBatch (no pass over a dense x) it wins 6.3× at 2 %, 1.5× at 16 %, 1.06× at 24 %
# (the dense path would also have to densify the batch first).  The thresholds sit below
# those crossovers.  Narrower layers (fewer outputs) amortise finding the events less well.
EVENT_DENSITY_MAX = 0.12
EVENT_BATCH_DENSITY_MAX = 0.2


def choose_input_path(x: torch.Tensor | EventBatch, w: torch.Tensor) -> str:
    """``"events"`` or ``"dense"`` for ``x @ w.T``: what ``input_path="auto"`` runs.

    Events only on CPU (the measured kernel), for floating input, and when x's density is
    below :data:`EVENT_DENSITY_MAX` (:data:`EVENT_BATCH_DENSITY_MAX` for an EventBatch).
    Dense analog input (e.g. mel features) has density ≈ 1 and keeps the dense matmul.
    Counting the nonzeros of a dense x is one pass over it, small next to the matmul it
    decides about; an :class:`EventBatch`, and spikes with known events, know their count.
    A dense x must also have the weights' dtype (else the matmul decides what to do).
    """
    if x.device.type != "cpu" or w.device.type != "cpu" or x.numel() == 0:
        return "dense"
    if isinstance(x, EventBatch):
        return "events" if x.density() < EVENT_BATCH_DENSITY_MAX else "dense"
    if not x.is_floating_point() or x.dtype != w.dtype:
        return "dense"
    known = known_events(x)                     # e.g. the compiled LIF layer's spikes
    density = known.density() if known is not None else event_density(x)
    return "events" if density < EVENT_DENSITY_MAX else "dense"


def project_input(x: torch.Tensor | EventBatch, w: torch.Tensor, path: str = "auto") -> torch.Tensor:
    """A layer's input currents x Wᵀ ([..., N_in] → [..., N_out]) by the chosen path.

    ``x``: a dense tensor or an :class:`EventBatch` (what spiking data sets deliver; its
    values are cast to the weights' dtype and device).  ``path``: ``"dense"`` (matmul; an
    event batch is densified first), ``"events"`` (cost ∝ number of nonzeros of x:
    :func:`spikegrad.kernels.events.sparse_projection`), or ``"auto"``
    (:func:`choose_input_path`).  All give the same values up to rounding, and the same
    gradients w.r.t. w and a dense x.  The one dispatch point for input projections.
    """
    if path not in INPUT_PATHS:
        raise SpikegradError(f"unknown input path {path!r}; choose one of: {', '.join(INPUT_PATHS)}")
    if isinstance(x, EventBatch) and (x.dtype != w.dtype or x.device != w.device):
        x = x.to(w.device, w.dtype)
    if path == "auto":
        path = choose_input_path(x, w)
    if path == "dense":
        return (x.to_dense() if isinstance(x, EventBatch) else x) @ w.t()
    return sparse_projection(x, w)


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
