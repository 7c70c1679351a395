"""Peer-compatible current-based LIF ("cuba"): the step ordering of snnTorch's ``Synaptic``,
Norse's NIR ``CubaLIF`` and NIR's CubaLIF node integrated with Euler steps — the neuron
model for networks meant to leave spikegrad (:mod:`spikegrad.interop.nir`).

Discrete time, step Δt.  For neuron i at step n (input at step n acts at step n):

    I[n] = α I[n−1] + c (Σ_j W_ij S_in_j[n] + Σ_j V_ij S_j[n−1])
    U[n] = β U[n−1] + g I[n]
    S[n] = Θ(U[n] − θ)                                       (strict: U > θ)
    U[n] ← U[n] (1 − S[n])        reset "zero" (default; the peers' NIR import)
    U[n] ← U[n] − θ S[n]          reset "subtract"

U[−1] = I[−1] = 0, S[−1] = 0.  The synaptic current is not reset.  Decays: α = exp(−Δt/τ_syn),
β = exp(−Δt/τ_mem) (``decays="exact"``), or α = 1 − Δt/τ_syn, β = 1 − Δt/τ_mem
(``decays="euler"``, the peers' own).  c = ``syn_gain`` (default 1, snnTorch's); g =
``mem_gain``, default 1 − β with ``input_gain`` (eq. 4.1's gain) or 1 without.

Against eq. 4.1 (:mod:`.lif`): the membrane takes this step's current (not the previous
step's), the reset leaves the input term alone, and a spike reaches the next layer in the
same step (not two steps later); the threshold θ is a parameter.  NIR's CubaLIF
(τ_syn dI/dt = −I + w_in x, τ_mem dU/dt = −U + r I) integrated by Euler at Δt is this
model with c = w_in Δt/τ_syn and g = r Δt/τ_mem.

The state entering step n is (U[n−1] after its reset, I[n−1], S[n−1]): recorded voltages
are the peers' post-reset membrane one step later.  The gradient switches are LIF's:
``detach_reset`` cuts the gradient through the reset, ``recurrent_grad="ctl"`` detaches S
inside V·S.  τ's, θ, c, g and the surrogate slope may be tensors [N] (per neuron).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..errors import SpikegradError
from ..surrogates import get_surrogate, spike
from .base import NeuronModel, decay, recurrent_current, register_neuron_model, tensor_fields
from .lif import CurrentBasedRecord, check_lif_fields, zero_state

DECAYS = ("exact", "euler")


def _check_number(name: str, value) -> None:
    if isinstance(value, torch.Tensor):
        if torch._C._functorch.is_functorch_wrapped_tensor(value):
            return
        if not bool(torch.isfinite(value.detach()).all()):
            raise SpikegradError(f"{name} must be finite everywhere")
        return
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)):
        raise SpikegradError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class CubaLIFParams(CurrentBasedRecord):
    """Everything that defines one peer-compatible layer (see the module doc).  Times in
    seconds; ``beta`` is the surrogate slope."""

    dt: float = 1e-3
    tau_mem: float | torch.Tensor = 10e-3
    tau_syn: float | torch.Tensor = 5e-3
    threshold: float | torch.Tensor = 1.0
    reset: str = "zero"
    decays: str = "exact"
    input_gain: bool = True
    syn_gain: float | torch.Tensor = 1.0
    mem_gain: float | torch.Tensor | None = None
    detach_reset: bool = True
    recurrent_grad: str = "prop"
    surrogate: str = "superspike"
    beta: float | torch.Tensor = 10.0

    def __post_init__(self) -> None:
        check_lif_fields(self)
        if self.decays not in DECAYS:
            raise SpikegradError(f"decays must be one of {DECAYS}, got {self.decays!r}")
        for name in ("threshold", "syn_gain") + (("mem_gain",) if self.mem_gain is not None else ()):
            _check_number(name, getattr(self, name))
        if self.decays == "euler":
            for name in ("tau_mem", "tau_syn"):
                tau = getattr(self, name)
                small = bool((tau < self.dt).any()) if isinstance(tau, torch.Tensor) else tau < self.dt
                if small:
                    raise SpikegradError(f"{name} must be ≥ dt with Euler decays (1 − dt/τ would be negative)")
        object.__setattr__(self, "_tensor_fields", tensor_fields(self))

    def decay_of(self, tau):
        """The decay factor of time constant τ under this record's mapping."""
        if self.decays == "exact":
            return decay(self.dt, tau)
        return 1.0 - self.dt / tau

    @property
    def gain(self):
        """g, the current's factor in the membrane update: ``mem_gain``, else eq. 4.1's."""
        if self.mem_gain is not None:
            return self.mem_gain
        return super().gain


def scaled_input(c, x: torch.Tensor) -> torch.Tensor:
    """c·x, or x itself for the float c = 1 (the default: no product, eq. 4.1's numbers)."""
    return x if unit_gain(c) else c * x


def unit_gain(c) -> bool:
    """Whether input factor c is the float 1 (then no multiplication happens)."""
    return isinstance(c, float) and c == 1.0


class CubaLIFState(NamedTuple):
    """U[n−1] (after its reset), I[n−1] and S[n−1], each [..., neurons]."""

    u: torch.Tensor
    i: torch.Tensor
    s: torch.Tensor


def initial_state(ff: torch.Tensor, p: CubaLIFParams) -> CubaLIFState:
    """U[−1] = I[−1] = S[−1] = 0."""
    return zero_state(CubaLIFState, ff, p)


def step(ff_t: torch.Tensor, state: CubaLIFState, v, p: CubaLIFParams) -> tuple[torch.Tensor, CubaLIFState]:
    """One step (module doc).  ``ff_t`` is W·S_in[n]; returns (S[n], state entering n + 1)."""
    u, i, s_prev = state
    drive = ff_t
    if v is not None:
        s_rec = s_prev.detach() if p.recurrent_grad == "ctl" else s_prev
        drive = drive + recurrent_current(s_rec, v)
    i = p.decay_syn * i + scaled_input(p.syn_gain, drive)
    u = p.decay_mem * u + p.gain * i
    s = spike(u - p.threshold, get_surrogate(p.surrogate), p.beta)
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        u = u * (1.0 - s_reset)
    else:
        u = u - p.threshold * s_reset
    return s, CubaLIFState(u, i, s)


CUBA = register_neuron_model(NeuronModel("cuba", CubaLIFParams, CubaLIFState, initial_state, step,
                                         "peer-compatible current-based LIF (snnTorch/Norse/NIR step ordering)",
                                         same_step=True))
