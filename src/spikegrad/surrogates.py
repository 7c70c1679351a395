"""Surrogate derivatives for the spike nonlinearity (Zenke & Vogels 2021, §4.2.6).

The forward pass is always the hard step S = Θ(x) with x = U − 1 (S = 1 iff x > 0).
The backward pass replaces Θ′(x) by a smooth h(x; β).  Surrogates are looked up by
name in one registry; users add their own with :func:`register_surrogate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .errors import SpikegradError

SurrogateFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate derivative h(x; β), x = U − threshold."""

    name: str
    derivative: SurrogateFn
    doc: str = ""

    def __call__(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        return self.derivative(x, beta)


_REGISTRY: dict[str, Surrogate] = {}


def register_surrogate(name: str, doc: str = "") -> Callable[[SurrogateFn], SurrogateFn]:
    """Decorator: register ``fn(x, beta) -> h(x)`` under ``name``.

    The function must be elementwise and differentiable-free (it is only evaluated in
    the backward pass).  Registering an existing name raises.
    """

    def deco(fn: SurrogateFn) -> SurrogateFn:
        if name in _REGISTRY:
            raise SpikegradError(f"surrogate {name!r} is already registered")
        _REGISTRY[name] = Surrogate(name, fn, doc)
        return fn

    return deco


def available_surrogates() -> list[str]:
    return sorted(_REGISTRY)


def get_surrogate(name: str | Surrogate) -> Surrogate:
    if isinstance(name, Surrogate):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpikegradError(
            f"unknown surrogate {name!r}; choose one of: {', '.join(available_surrogates())}"
        ) from None


@register_surrogate("superspike", "fast sigmoid 1/(β|x|+1)², peak 1")
def _superspike(x: torch.Tensor, beta: float) -> torch.Tensor:
    return 1.0 / (beta * x.abs() + 1.0) ** 2


@register_surrogate("superspike-asym", "asymptotic SuperSpike β/(β|x|+1)², integral 2")
def _superspike_asym(x: torch.Tensor, beta: float) -> torch.Tensor:
    return beta / (beta * x.abs() + 1.0) ** 2


@register_surrogate("sigmoid", "derivative of the logistic s(βx): s(1−s), peak 1/4")
def _sigmoid(x: torch.Tensor, beta: float) -> torch.Tensor:
    s = torch.sigmoid(beta * x)
    return s * (1.0 - s)


@register_surrogate("esser", "piece-wise linear max(0, 1−β|x|) (Esser et al. 2016)")
def _esser(x: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.clamp(1.0 - beta * x.abs(), min=0.0)


@register_surrogate("true", "exact derivative of the step: zero almost everywhere")
def _true(x: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.zeros_like(x)


class _SpikeFunction(torch.autograd.Function):
    """Hard step forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate, beta: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        ctx.beta = beta
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate(x, ctx.beta), None, None


def spike(x: torch.Tensor, surrogate: str | Surrogate = "superspike", beta: float = 10.0) -> torch.Tensor:
    """S = Θ(x) with the surrogate's derivative in the backward pass (x = U − 1)."""
    return _SpikeFunction.apply(x, get_surrogate(surrogate), float(beta))
