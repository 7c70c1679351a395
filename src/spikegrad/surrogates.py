"""Surrogate derivatives for the spike nonlinearity (Zenke & Vogels 2021, §4.2.6).

The forward pass is always the hard step S = Θ(x) with x = U − 1 (S = 1 iff x > 0).
The backward pass replaces Θ′(x) by a smooth h(x; β).  Surrogates are looked up by
name in one registry (:data:`SURROGATES`); users add their own with
:func:`register_surrogate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ._autograd import apply
from .errors import SpikegradError
from .registry import Registry

SurrogateFn = Callable[[torch.Tensor, float], torch.Tensor]

# The shapes the compiled (numba) kernels implement, by the code the kernels branch on.  A
# surrogate states which of them it is (``kernel_form``); the kernels' table of codes is
# generated from the registry (:func:`kernel_code`), so a surrogate without a kernel form
# runs on the torch kernels ("fused", "reference") and naming "compiled" for it raises.
KERNEL_FORMS = ("superspike", "superspike-asym", "sigmoid", "esser", "zero")


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative h(x; β), x = U − threshold.

    ``kernel_form``: the entry of :data:`KERNEL_FORMS` that computes the same h in the
    compiled kernels, or None (torch kernels only).
    """

    name: str
    derivative: SurrogateFn
    doc: str = ""
    kernel_form: str | None = None

    def __call__(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        return self.derivative(x, beta)


SURROGATES: Registry[Surrogate] = Registry("surrogate")


def register_surrogate(name: str, doc: str = "", kernel_form: str | None = None
                       ) -> Callable[[SurrogateFn], SurrogateFn]:
    """Decorator: register ``fn(x, beta) -> h(x)`` under ``name``.

    The function must be elementwise and differentiable-free (it is only evaluated in
    the backward pass).  Registering an existing name raises.  ``kernel_form`` names the
    compiled kernels' implementation of the same function (one of :data:`KERNEL_FORMS`);
    leave it None unless h is exactly that shape.
    """
    if kernel_form is not None and kernel_form not in KERNEL_FORMS:
        raise SpikegradError(f"unknown kernel form {kernel_form!r}; choose one of: {', '.join(KERNEL_FORMS)}")

    def deco(fn: SurrogateFn) -> SurrogateFn:
        SURROGATES.add(name, Surrogate(name, fn, doc, kernel_form))
        return fn

    return deco


def available_surrogates() -> list[str]:
    return SURROGATES.names()


def get_surrogate(name: str | Surrogate) -> Surrogate:
    if isinstance(name, Surrogate):
        return name
    return SURROGATES.get(name)


def kernel_code(name: str | Surrogate) -> int | None:
    """The compiled kernels' code for a surrogate (index in :data:`KERNEL_FORMS`), or None."""
    form = get_surrogate(name).kernel_form
    return None if form is None else KERNEL_FORMS.index(form)


@register_surrogate("superspike", "fast sigmoid 1/(β|x|+1)², peak 1", "superspike")
def _superspike(x: torch.Tensor, beta: float) -> torch.Tensor:
    return 1.0 / (beta * x.abs() + 1.0) ** 2


@register_surrogate("superspike-asym", "asymptotic SuperSpike β/(β|x|+1)², integral 2", "superspike-asym")
def _superspike_asym(x: torch.Tensor, beta: float) -> torch.Tensor:
    return beta / (beta * x.abs() + 1.0) ** 2


@register_surrogate("sigmoid", "derivative of the logistic s(βx): s(1−s), peak 1/4", "sigmoid")
def _sigmoid(x: torch.Tensor, beta: float) -> torch.Tensor:
    s = torch.sigmoid(beta * x)
    return s * (1.0 - s)


@register_surrogate("esser", "piece-wise linear max(0, 1−β|x|) (Esser et al. 2016)", "esser")
def _esser(x: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.clamp(1.0 - beta * x.abs(), min=0.0)


@register_surrogate("true", "exact derivative of the step: zero almost everywhere", "zero")
def _true(x: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.zeros_like(x)


class SpikeFunction(torch.autograd.Function):
    """Hard step forward, surrogate derivative backward (and forward-mode: the tangent times h).

    ``setup_context`` style, so it composes with ``torch.func`` (grad, vmap, jvp); the step
    and h are elementwise torch ops, so torch generates the vmap rule.  ``beta`` may be a
    float or a tensor that broadcasts with x (it is not differentiated).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, surrogate: Surrogate, beta) -> torch.Tensor:
        return (x > 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, surrogate, beta = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.surrogate = surrogate
        ctx.beta = beta

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate(x, ctx.beta), None, None

    @staticmethod
    def jvp(ctx, x_t: torch.Tensor, surrogate_t, beta_t):
        (x,) = ctx.saved_tensors
        return x_t * ctx.surrogate(x, ctx.beta)


_SpikeFunction = SpikeFunction  # the old name


def spike(x: torch.Tensor, surrogate: str | Surrogate = "superspike", beta: float = 10.0) -> torch.Tensor:
    """S = Θ(x) with the surrogate's derivative in the backward pass (x = U − 1)."""
    return apply(SpikeFunction, x, get_surrogate(surrogate), beta if isinstance(beta, torch.Tensor) else float(beta))
