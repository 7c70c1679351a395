"""The neuron-model protocol: a parameter record, a state record, an initial state and a
pure step function; plus the helpers parameter records share.

A model is a :class:`NeuronModel` registered by name in :data:`NEURON_MODELS`:

* ``params_type``: a frozen dataclass.  Numeric fields (time constants, strengths) are
  Python floats — the arithmetic of the fast kernels, decays computed in float64 and cast
  at the kernel — or tensors that broadcast against the state [..., neurons]: per neuron
  ``[N]``, learnable (an ``nn.Parameter``; :class:`~spikegrad.network.LIFLayer` registers
  it), or with a leading member axis ``[K, 1, N]`` for ensembles.  Tensor-valued records
  are a separate path: every kernel states whether it takes them.
* ``state_type``: a NamedTuple of [..., neurons] tensors; its first field is the membrane
  voltage (what recordings call "voltages").
* ``same_step``: the step ordering (see :class:`NeuronModel`), which the readout follows.
* ``initial_state(ff, p)``: the state at n = 0 for input currents ff [..., T, N].
* ``step(ff_t, state, v, p)``: one time step → (S[n], state at n + 1), pure (no in-place
  change of its inputs), ``v`` the recurrent weights [N, N], a :class:`Feedback` pair, or
  None; the recurrent current is :func:`recurrent_current` (S[n] Vᵀ).

:func:`spikegrad.dynamics.scan.scan` runs any model over time with plain autograd: the
oracle every fast kernel is tested against.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch

from ..errors import SpikegradError
from ..registry import Registry


@dataclass(frozen=True)
class NeuronModel:
    """One neuron model: records, initial state and step function (see the module doc)."""

    name: str
    params_type: type
    state_type: type
    initial_state: Callable[[torch.Tensor, Any], NamedTuple]
    step: Callable[[torch.Tensor, NamedTuple, "torch.Tensor | None", Any], tuple[torch.Tensor, NamedTuple]]
    doc: str = ""
    # True: input at step n acts at step n (the peers' ordering), and the network's leaky
    # readout integrates the same way; False: eq. 4.1's (input at n acts from n + 1 on).
    same_step: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """State field names, voltage first."""
        return tuple(self.state_type._fields)


NEURON_MODELS: Registry[NeuronModel] = Registry("neuron model")


def register_neuron_model(model: NeuronModel) -> NeuronModel:
    """Register a model under ``model.name`` (its kernels go to :mod:`spikegrad.kernels.dispatch`)."""
    return NEURON_MODELS.add(model.name, model)


def get_neuron_model(name: str) -> NeuronModel:
    return NEURON_MODELS.get(name)


def model_of(p) -> NeuronModel:
    """The registered model whose parameter record ``p`` is (exact type first, then subclasses)."""
    for _, model in NEURON_MODELS.items():
        if type(p) is model.params_type:
            return model
    for _, model in NEURON_MODELS.items():
        if isinstance(p, model.params_type):
            return model
    raise SpikegradError(f"no neuron model takes parameters of type {type(p).__name__}")


def decay(dt: float, tau):
    """β = exp(−Δt/τ): a Python float for float τ (the kernels' arithmetic), else a tensor."""
    if isinstance(tau, torch.Tensor) or isinstance(dt, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)


def tensor_fields(p) -> tuple[str, ...]:
    """Names of the fields of a parameter record that hold tensors."""
    return tuple(f.name for f in dataclasses.fields(p) if isinstance(getattr(p, f.name), torch.Tensor))


def check_positive(name: str, value, unit: str = "seconds") -> None:
    """A positive finite number, or a tensor of them (checked outside torch.func transforms)."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise SpikegradError(f"{name} must be a floating tensor, got {value.dtype}")
        if torch._C._functorch.is_functorch_wrapped_tensor(value):
            return
        bad = ~(torch.isfinite(value.detach()) & (value.detach() > 0))
        if bool(bad.any()):
            raise SpikegradError(f"{name} must be positive {unit} everywhere; "
                                 f"{int(bad.sum())} of {value.numel()} entries are not")
        return
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise SpikegradError(f"{name} must be a positive number of {unit}, got {value!r}")


def check_nonnegative(name: str, value) -> None:
    """A finite number ≥ 0, or a tensor of them."""
    if isinstance(value, torch.Tensor):
        if torch._C._functorch.is_functorch_wrapped_tensor(value):
            return
        if not bool((torch.isfinite(value.detach()) & (value.detach() >= 0)).all()):
            raise SpikegradError(f"{name} must be finite and ≥ 0 everywhere")
        return
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise SpikegradError(f"{name} must be a finite number ≥ 0, got {value!r}")


class Feedback(NamedTuple):
    """Recurrent weights V [N, N] whose backward pass uses ``feedback`` (V's shape) where
    BPTT uses V: the recurrent half of feedback alignment.  Only the reference scan takes it."""

    weight: torch.Tensor
    feedback: torch.Tensor


class FeedbackMatmul(torch.autograd.Function):
    """y = x Wᵀ; backward: ∂/∂x = g B (B in place of W: B = W is the chain rule), ∂/∂W = gᵀ x."""

    @staticmethod
    def forward(x, weight, feedback):
        return x @ weight.t()

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, _, feedback = inputs
        ctx.save_for_backward(x, feedback)

    @staticmethod
    def backward(ctx, g):
        x, feedback = ctx.saved_tensors
        grad_x = g @ feedback if ctx.needs_input_grad[0] else None
        grad_w = g.reshape(-1, g.shape[-1]).t() @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None


def feedback_matmul(x: torch.Tensor, weight: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """x Wᵀ, whose gradient to x goes through ``feedback`` (W's shape) instead of W."""
    return FeedbackMatmul.apply(x, weight, feedback)


def recurrent_current(s: torch.Tensor, v) -> torch.Tensor:
    """The recurrent input S[n] Vᵀ (for a :class:`Feedback` pair: the same value, the
    gradient to S through the feedback matrix)."""
    if isinstance(v, Feedback):
        return feedback_matmul(s, v.weight, v.feedback)
    return s @ v.t()
