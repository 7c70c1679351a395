"""Current-based LIF (Zenke & Vogels 2021, eq. 4.1; tutorial eqs. 7–8): the first neuron model.

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

Time constants (and the slope β) may be floats or tensors (per neuron, learnable, or with
a leading member axis); the fast kernels take float records only (see
:mod:`spikegrad.kernels.dispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..errors import SpikegradError
from ..surrogates import get_surrogate, spike
from .base import (NeuronModel, check_nonnegative, check_positive, decay, recurrent_current, register_neuron_model,
                   tensor_fields)

RESET_MODES = ("zero", "subtract")
RECURRENT_GRAD_MODES = ("prop", "ctl")


def check_lif_fields(p) -> None:
    """The checks every current-based LIF record shares (LIF, ALIF, cuba): dt one number, τ's
    positive, reset and recurrent_grad known, the surrogate registered and its slope ≥ 0."""
    if isinstance(p.dt, torch.Tensor):
        raise SpikegradError("dt must be a number of seconds (one step for the whole layer), not a tensor")
    for name in ("dt", "tau_mem", "tau_syn"):
        check_positive(name, getattr(p, name))
    if p.reset not in RESET_MODES:
        raise SpikegradError(f"reset must be one of {RESET_MODES}, got {p.reset!r}")
    if p.recurrent_grad not in RECURRENT_GRAD_MODES:
        raise SpikegradError(
            f"recurrent_grad must be one of {RECURRENT_GRAD_MODES}, got {p.recurrent_grad!r}"
        )
    try:
        check_nonnegative("beta", p.beta)
    except SpikegradError:
        raise SpikegradError(f"surrogate slope beta must be ≥ 0, got {p.beta!r}") from None
    get_surrogate(p.surrogate)  # raises on unknown names


class CurrentBasedRecord:
    """What current-based LIF records (LIF, ALIF, cuba) derive from their fields the same
    way: the decays through the record's ``decay_of(τ)``, the membrane's input factor and
    the names of tensor-valued fields (set by ``__post_init__``)."""

    @property
    def decay_mem(self):
        return self.decay_of(self.tau_mem)

    @property
    def decay_syn(self):
        return self.decay_of(self.tau_syn)

    @property
    def gain(self):
        """Input factor of the membrane update: 1 − β_mem, or 1 with the gain off."""
        return 1.0 - self.decay_mem if self.input_gain else 1.0

    @property
    def tensor_fields(self) -> tuple[str, ...]:
        """Fields holding tensors (empty: the float record every kernel takes)."""
        return self._tensor_fields


def zero_state(state_type, ff: torch.Tensor, p):
    """A state record of zeros, each field [..., N] (:func:`state_shape`)."""
    shape = state_shape(ff, p)
    return state_type(*(ff.new_zeros(shape) for _ in state_type._fields))


@dataclass(frozen=True)
class LIFParams(CurrentBasedRecord):
    """Everything that defines one LIF layer's dynamics and its gradient flow.

    Times are in seconds.  ``beta`` is the surrogate slope (not a decay factor).
    ``tau_mem``, ``tau_syn`` and ``beta`` may be tensors that broadcast against the state
    [..., neurons].
    """

    dt: float = 1e-3
    tau_mem: float | torch.Tensor = 10e-3
    tau_syn: float | torch.Tensor = 5e-3
    reset: str = "zero"
    input_gain: bool = True
    detach_reset: bool = True
    recurrent_grad: str = "prop"
    surrogate: str = "superspike"
    beta: float | torch.Tensor = 10.0

    def __post_init__(self) -> None:
        check_lif_fields(self)
        object.__setattr__(self, "_tensor_fields", tensor_fields(self))

    def decay_of(self, tau):
        """The decay factor exp(−Δt/τ) of time constant τ."""
        return decay(self.dt, tau)


class LIFState(NamedTuple):
    """U[n] and I[n], each [..., neurons]."""

    u: torch.Tensor
    i: torch.Tensor


def state_shape(ff: torch.Tensor, p) -> torch.Size:
    """[..., N] of the state: ff's leading shape (without time), broadcast with tensor fields."""
    shape = torch.Size((*ff.shape[:-2], ff.shape[-1]))
    for name in tensor_fields(p):
        shape = torch.broadcast_shapes(shape, getattr(p, name).shape)
    return shape


def initial_state(ff: torch.Tensor, p: LIFParams) -> LIFState:
    """U[0] = I[0] = 0."""
    return zero_state(LIFState, ff, p)


def step(ff_t: torch.Tensor, state: LIFState, v: torch.Tensor | None, p: LIFParams
         ) -> tuple[torch.Tensor, LIFState]:
    """One step of eq. 4.1.  ``ff_t`` is W·S_in[n]; returns (S[n], state at n + 1)."""
    u, i = state
    s = spike(u - 1.0, get_surrogate(p.surrogate), p.beta)
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        u_next = (p.decay_mem * u + p.gain * i) * (1.0 - s_reset)
    else:
        u_next = p.decay_mem * u + p.gain * i - s_reset
    i_next = p.decay_syn * i + ff_t
    if v is not None:
        s_rec = s.detach() if p.recurrent_grad == "ctl" else s
        i_next = i_next + recurrent_current(s_rec, v)
    return s, LIFState(u_next, i_next)


LIF = register_neuron_model(NeuronModel("lif", LIFParams, LIFState, initial_state, step,
                                        "current-based LIF, eq. 4.1 (zero or subtractive reset)"))
