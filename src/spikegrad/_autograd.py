"""``apply`` for spikegrad's autograd Functions without the per-call signature binding.

``torch.autograd.Function.apply`` binds the arguments of a ``setup_context``-style Function
to ``forward``'s signature with :mod:`inspect` on every call (to fill in default
arguments), about 65 µs per call here — a few percent of a default training step, and T
calls per layer in the reference scan.  spikegrad's Functions are always called with
every argument, so outside ``torch.func`` transforms :func:`apply` calls the C
``_FunctionBase.apply`` directly (what ``Function.apply`` ends in after the binding);
inside a transform it takes ``Function.apply``, which routes to the vmap/jvp/grad
machinery.  tests/test_kernels.py checks both give the same outputs, graph and gradients.
"""

from __future__ import annotations

import torch

_C_APPLY = torch._C._FunctionBase.__dict__.get("apply")


def apply(fn: type[torch.autograd.Function], *args):
    """``fn.apply(*args)``, minus the signature binding when no torch.func transform runs."""
    if _C_APPLY is None or torch._C._are_functorch_transforms_active():
        return fn.apply(*args)
    return _C_APPLY.__get__(None, fn)(*args)
