"""Readout heads: reduce the readout voltage trace U_out[n] over time to class logits.

Logits go into softmax cross-entropy.  The paper uses ``max`` (default) and ``sum``;
``mean`` and ``last`` are common alternatives.  Register more with
:func:`register_readout`.
"""

from __future__ import annotations

from typing import Callable

import torch

from .registry import Registry

Reduction = Callable[[torch.Tensor], torch.Tensor]
READOUTS: Registry[Reduction] = Registry("readout")


def register_readout(name: str) -> Callable[[Reduction], Reduction]:
    """Decorator: register ``fn(u_out [batch, time, classes]) -> logits [batch, classes]``."""
    return READOUTS.register(name)


def available_readouts() -> list[str]:
    return READOUTS.names()


def get_readout(name: str) -> Reduction:
    return READOUTS.get(name)


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
