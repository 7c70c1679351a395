"""Adaptive LIF (Bellec et al. 2018, "LSNN"): eq. 4.1 with a threshold that rises with each
spike and relaxes with τ_a — the second neuron model, on the generic reference scan.

For neuron i at step n (rest 0, baseline threshold 1):

    ϑ[n]   = 1 + β_a b[n]
    S[n]   = Θ(U[n] − ϑ[n])                                 (the surrogate takes U − ϑ[n])
    U[n+1] = (β_mem U[n] + g I[n]) (1 − S[n])               reset "zero" (default)
    U[n+1] =  β_mem U[n] + g I[n] − ϑ[n] S[n]               reset "subtract" (by the threshold)
    I[n+1] = β_syn I[n] + Σ_j W_ij S_in_j[n] + Σ_j V_ij S_j[n]
    b[n+1] = ρ b[n] + (1 − ρ) S[n],   ρ = exp(−Δt/τ_a)

U[0] = I[0] = b[0] = 0.  The gradient flows through b into later thresholds (the
adaptation path of e-prop); ``detach_adaptation`` cuts it (S detached inside b's update).
The switches of LIF (``detach_reset``, ``recurrent_grad``, reset, input gain) apply as
there.  With β_a = 0 the model is LIF bit for bit.  τ_a and β_a may be tensors (per
neuron, learnable, per ensemble member) like LIF's time constants.  Defaults: τ_a = 200 ms,
β_a = 1.8 (the adaptation strength of Bellec et al. 2018); with S ∈ {0, 1} each spike then
raises ϑ by β_a (1 − ρ) ≈ 0.009 and a steady rate of r spikes per step holds ϑ ≈ 1 + β_a r.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..surrogates import get_surrogate, spike
from .base import (NeuronModel, check_nonnegative, check_positive, decay, recurrent_current, register_neuron_model,
                   tensor_fields)
from .lif import LIFParams, zero_state


@dataclass(frozen=True)
class ALIFParams(LIFParams):
    """LIF's record plus the adaptation: ``tau_adapt`` (s), ``beta_adapt`` (threshold per
    unit of b) and ``detach_adaptation``."""

    tau_adapt: float | torch.Tensor = 200e-3
    beta_adapt: float | torch.Tensor = 1.8
    detach_adaptation: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("tau_adapt", self.tau_adapt)
        check_nonnegative("beta_adapt", self.beta_adapt)
        object.__setattr__(self, "_tensor_fields", tensor_fields(self))

    @property
    def decay_adapt(self):
        """ρ = exp(−Δt/τ_a)."""
        return decay(self.dt, self.tau_adapt)


class ALIFState(NamedTuple):
    """U[n], I[n] and the adaptation b[n], each [..., neurons]."""

    u: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


def initial_state(ff: torch.Tensor, p: ALIFParams) -> ALIFState:
    """U[0] = I[0] = b[0] = 0."""
    return zero_state(ALIFState, ff, p)


def step(ff_t: torch.Tensor, state: ALIFState, v: torch.Tensor | None, p: ALIFParams
         ) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step; returns (S[n], state at n + 1)."""
    u, i, b = state
    theta = 1.0 + p.beta_adapt * b
    s = spike(u - theta, get_surrogate(p.surrogate), p.beta)
    s_reset = s.detach() if p.detach_reset else s
    if p.reset == "zero":
        u_next = (p.decay_mem * u + p.gain * i) * (1.0 - s_reset)
    else:
        u_next = p.decay_mem * u + p.gain * i - theta * s_reset
    i_next = p.decay_syn * i + ff_t
    if v is not None:
        s_rec = s.detach() if p.recurrent_grad == "ctl" else s
        i_next = i_next + recurrent_current(s_rec, v)
    rho = p.decay_adapt
    s_b = s.detach() if p.detach_adaptation else s
    b_next = rho * b + (1.0 - rho) * s_b
    return s, ALIFState(u_next, i_next, b_next)


ALIF = register_neuron_model(NeuronModel("alif", ALIFParams, ALIFState, initial_state, step,
                                         "adaptive LIF (Bellec et al. 2018): threshold 1 + β_a b"))
