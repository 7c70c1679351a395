"""The generic reference scan: any neuron model over time with plain autograd.

The oracle for every kernel of every model (tests/test_kernels.py).  For LIF it does the
operations of the step function in order, so :func:`spikegrad.neurons.lif_reference` is
this scan.  ``unbind`` (not ``ff[:, t]``) keeps the backward pass O(T).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .base import NeuronModel, model_of


def scan(ff: torch.Tensor, v: torch.Tensor | None, p, model: NeuronModel | None = None,
         fields: tuple[str, ...] | None = None) -> tuple[torch.Tensor, NamedTuple]:
    """Run ``model`` (default: the one ``p`` belongs to) over all steps.

    ``ff``: input currents W·S_in [..., time, neurons]; ``v``: recurrent weights [N, N] or
    None.  Returns the spikes S[n] [..., time, N] and the state traces (the model's state
    record, each field [..., time, N]) at n = 0..T−1, recorded before each step.
    ``fields``: record only these state fields (the others are None); default all.
    """
    model = model or model_of(p)
    state = model.initial_state(ff, p)
    keep = [fields is None or name in fields for name in state._fields]
    spikes = []
    traces = [[] if k else None for k in keep]
    for ff_t in ff.unbind(-2):
        for trace, x in zip(traces, state):
            if trace is not None:
                trace.append(x)
        s, state = model.step(ff_t, state, v, p)
        spikes.append(s)
    if not spikes:
        empty = ff.new_zeros(*ff.shape)
        return empty, model.state_type(*[empty if t is not None else None for t in traces])
    return torch.stack(spikes, -2), model.state_type(*[torch.stack(t, -2) if t is not None else None
                                                         for t in traces])
