"""Readout heads: reduce the readout voltage trace U_out[n] over time to class logits.

Logits go into softmax cross-entropy.  The paper uses ``max`` (default) and ``sum``;
``mean`` and ``last`` are common alternatives.  Register more with
:func:`register_readout`.
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import SpikegradError

Reduction = Callable[[torch.Tensor], torch.Tensor]
_REGISTRY: dict[str, Reduction] = {}


def register_readout(name: str) -> Callable[[Reduction], Reduction]:
    """Decorator: register ``fn(u_out [batch, time, classes]) -> logits [batch, classes]``."""

    def deco(fn: Reduction) -> Reduction:
        if name in _REGISTRY:
            raise SpikegradError(f"readout {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def available_readouts() -> list[str]:
    return sorted(_REGISTRY)


def get_readout(name: str) -> Reduction:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpikegradError(
            f"unknown readout {name!r}; choose one of: {', '.join(available_readouts())}"
        ) from None


@register_readout("max")
def _max(u: torch.Tensor) -> torch.Tensor:
    return u.max(dim=1).values


@register_readout("sum")
def _sum(u: torch.Tensor) -> torch.Tensor:
    return u.sum(dim=1)


@register_readout("mean")
def _mean(u: torch.Tensor) -> torch.Tensor:
    return u.mean(dim=1)


@register_readout("last")
def _last(u: torch.Tensor) -> torch.Tensor:
    return u[:, -1]
