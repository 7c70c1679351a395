"""Tuning options of the kernels, as one explicit value (no module globals).

A :class:`KernelOptions` travels with a layer (``LIFLayer.options``, ``SNN(...,
kernel_options=)``) into every kernel call.  None of them changes what is computed beyond
float rounding; each default is the measured best on the development machine
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpikegradError

PROJECTION_IMPLS = ("auto", "numba", "torch")


@dataclass(frozen=True)
class KernelOptions:
    """``threads``: threads of the compiled LIF kernel (≥ 1, or 0 to follow
    ``torch.get_num_threads()``; default 1, the measured best: docs/PERFORMANCE.md).
    ``record_events``: the compiled forward returns its spikes' events (the readout and a
    next layer then project them without searching).  ``simple_backward``: the fused
    one-pass adjoint for the common case (False: the general kernel; same results).
    ``event_density_max`` / ``event_batch_density_max``: ``input_path="auto"`` takes the event
    projection below these input densities (dense tensor / EventBatch), measured with
    ``benchmarks/event_input.py --crossover-only``.  ``projection_impl``: "auto", "numba" or
    "torch" implementation of the event projection.
    """

    threads: int = 1
    record_events: bool = True
    simple_backward: bool = True
    event_density_max: float = 0.12
    event_batch_density_max: float = 0.2
    projection_impl: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.threads, bool) or not (isinstance(self.threads, int) and self.threads >= 0):
            raise SpikegradError(f"threads must be an integer ≥ 0 (0: follow torch), got {self.threads!r}")
        for name in ("event_density_max", "event_batch_density_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
                raise SpikegradError(f"{name} must be a density in [0, 1], got {value!r}")
        if self.projection_impl not in PROJECTION_IMPLS:
            raise SpikegradError(f"unknown projection_impl {self.projection_impl!r}; "
                                 f"choose one of: {', '.join(PROJECTION_IMPLS)}")


DEFAULT_OPTIONS = KernelOptions()
