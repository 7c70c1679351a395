"""Kernel dispatch per call: for each neuron model an ordered list of candidate kernels,
each stating what it supports.

A :class:`Kernel` has ``run(ff, v, p, options)`` and ``supports(ff, v, p)``, which returns
None when it can run the call, else the reason it cannot (device, dtype, surrogate,
switches, parameter kind, a vmap it cannot fold).  ``backend="auto"`` takes the first
candidate that supports the call; naming a backend that cannot serve the call raises one
:class:`~spikegrad.errors.SpikegradError` with the reason — nothing falls back silently.
:class:`LayerResult` says which kernel ran, and carries the spikes' events when the kernel
produced them (the compiled LIF forward does), so that the next projection need not search.

Candidates, in order:

* LIF: ``compiled`` (numba; CPU, float32/float64, surrogates with a kernel form, float
  parameters), ``fused`` (torch ops, any device; float parameters), ``reference`` (the
  generic scan: everything, including tensor-valued parameters and stacked recurrent
  weights under vmap).
* cuba: ``compiled`` (numba; CPU, float32/float64, float parameters), ``reference``.
* ALIF: ``reference``.

Every kernel of every model is tested equal to the generic scan (tests/test_kernels.py).
Register more with :func:`register_kernel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from .._numba import numba_available
from ..dynamics import get_neuron_model, model_of, scan
from ..errors import SpikegradError
from ..events import EventBatch
from ..registry import Registry
from .compiled import run_supported, supports as compiled_supports
from .cuba_compiled import cuba_compiled, supports as cuba_compiled_supports
from .fused import lif_fused, supports as fused_supports
from .options import DEFAULT_OPTIONS, KernelOptions


class LayerResult(NamedTuple):
    """What a kernel returns for one layer: spikes and voltages [..., T, N], the spikes'
    events (or None), and the kernel's name."""

    spikes: torch.Tensor
    voltages: torch.Tensor
    events: EventBatch | None
    kernel: str


@dataclass(frozen=True)
class Kernel:
    """A candidate kernel of one neuron model."""

    name: str
    run: Callable[[torch.Tensor, "torch.Tensor | None", object, KernelOptions], LayerResult]
    supports: Callable[[torch.Tensor, "torch.Tensor | None", object], "str | None"]
    doc: str = ""


_KERNELS: dict[str, Registry[Kernel]] = {}


def kernels_for(model: str) -> Registry[Kernel]:
    """The candidate kernels of neuron model ``model``, in order."""
    get_neuron_model(model)
    if model not in _KERNELS:
        _KERNELS[model] = Registry(f"{model} kernel")
    return _KERNELS[model]


def register_kernel(model: str, kernel: Kernel) -> Kernel:
    """Append ``kernel`` to the candidates of neuron model ``model``."""
    return kernels_for(model).add(kernel.name, kernel)


def backends(model: str = "lif") -> list[str]:
    """Names a layer of ``model`` accepts as ``backend``: "auto" and its kernels."""
    return ["auto", *kernels_for(model).names()]


def select_kernel(ff: torch.Tensor, v: torch.Tensor | None, p, backend: str = "auto") -> Kernel:
    """The kernel that runs this call: the first candidate that supports it under "auto",
    else the named one — or one error saying why it cannot."""
    model = model_of(p)
    candidates = kernels_for(model.name)
    if backend == "auto":
        reasons = []
        for name, kernel in candidates.items():
            reason = kernel.supports(ff, v, p)
            if reason is None:
                return kernel
            reasons.append(f"{name}: {reason}")
        raise SpikegradError(f"no kernel of neuron model {model.name!r} can run this layer ({'; '.join(reasons)})")
    if backend not in candidates:
        err = candidates.unknown(backend, "backend", also=("auto",))
        raise SpikegradError(f"{err} (neuron model {model.name!r})")
    kernel = candidates.get(backend)
    reason = kernel.supports(ff, v, p)
    if reason is not None:
        raise SpikegradError(f"backend {backend!r} cannot run this {model.name} layer: {reason}")
    return kernel


def run_layer(ff: torch.Tensor, v: torch.Tensor | None, p, backend: str = "auto",
              options: KernelOptions = DEFAULT_OPTIONS) -> LayerResult:
    """Run one layer of the model ``p`` belongs to over all steps, with the chosen kernel."""
    return select_kernel(ff, v, p, backend).run(ff, v, p, options)


# ---------------------------------------------------------------------------------------
# the candidates

def _reference_supports(ff, v, p) -> str | None:
    return None


def _reference_run(ff, v, p, options) -> LayerResult:
    model = model_of(p)
    spikes, traces = scan(ff, v, p, model, fields=model.fields[:1])   # the voltage only
    return LayerResult(spikes, traces[0], None, "reference")


def _fused_run(ff, v, p, options) -> LayerResult:
    return LayerResult(*lif_fused(ff, v, p), None, "fused")


def _cuba_compiled_run(ff, v, p, options) -> LayerResult:
    return LayerResult(*cuba_compiled(ff, v, p), None, "compiled")


def _compiled_run(ff, v, p, options) -> LayerResult:
    return LayerResult(*run_supported(ff, v, p, options), "compiled")


register_kernel("lif", Kernel("compiled", _compiled_run, compiled_supports,
                              "numba time loop with a hand-written adjoint (kernels/compiled.py, loops in kernels/lif_loops.py)"))
register_kernel("lif", Kernel("fused", _fused_run, fused_supports,
                              "one autograd node with a hand-written adjoint in torch ops (kernels/fused.py)"))
register_kernel("lif", Kernel("reference", _reference_run, _reference_supports,
                              "the generic scan with plain autograd (dynamics/scan.py)"))
register_kernel("cuba", Kernel("compiled", _cuba_compiled_run, cuba_compiled_supports,
                               "numba time loop with a hand-written adjoint (kernels/cuba_compiled.py)"))
for _model in ("alif", "cuba"):
    register_kernel(_model, Kernel("reference", _reference_run, _reference_supports,
                                   "the generic scan with plain autograd (dynamics/scan.py)"))


def default_backend() -> str:
    """What "auto" runs for a float LIF layer on CPU float32 input: "compiled" where numba
    imports, else "fused" (decides the readout's method; per-call choices may differ)."""
    return "compiled" if numba_available() else "fused"
