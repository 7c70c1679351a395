"""The leaky readout as one matrix product instead of a loop over time steps.

The readout (SCIENCE.md §1) is linear and time-invariant:

    U_out[n+1] = β_out U_out[n] + g I_out[n],   I_out[n+1] = β_syn I_out[n] + h[n]

so U_out[n] = u0 β_out^n + Σ_{m<n} k[n−m] h[m] with the impulse response k (k[1] = 0,
k[d] = g Σ_{a=0}^{d−2} β_out^{d−2−a} β_syn^a).  Building the T×T lower-triangular Toeplitz
matrix of k once (float64, from the recursion itself) turns the T small autograd steps of
:func:`spikegrad.neurons.leaky_readout` into one batched matmul whose backward autograd
gives exactly.  Equal to the loop up to float rounding (tests/test_readout_kernel.py).
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=32)
def _filter_matrix(n_steps: int, decay_out: float, decay_syn: float, gain: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(K [T, T] with U = K h + u0·r, r [T] = β_out^n), float64 on CPU."""
    k = torch.zeros(n_steps, dtype=torch.float64)
    u, i = 0.0, 0.0  # the recursion itself, driven by h[0] = 1
    for n in range(n_steps):
        k[n] = u
        u, i = decay_out * u + gain * i, decay_syn * i + (1.0 if n == 0 else 0.0)
    idx = torch.arange(n_steps)
    lag = idx[:, None] - idx[None, :]
    mat = torch.where(lag >= 0, k[lag.clamp(min=0)], torch.zeros((), dtype=torch.float64))
    rest = torch.tensor([decay_out ** n for n in range(n_steps)], dtype=torch.float64)
    return mat, rest


def leaky_readout_matmul(h: torch.Tensor, decay_out: float, decay_syn: float, gain: float,
                         u0: float) -> torch.Tensor:
    """Same contract as :func:`spikegrad.neurons.leaky_readout`: h [batch, time, out] → U_out."""
    mat, rest = _filter_matrix(h.shape[1], float(decay_out), float(decay_syn), float(gain))
    mat = mat.to(device=h.device, dtype=h.dtype)
    batch, steps, n = h.shape
    # One [T, T] @ [T, B·C] product (a broadcast matmul would run B small ones).
    out = (mat @ h.transpose(0, 1).reshape(steps, batch * n)).reshape(steps, batch, n).transpose(0, 1)
    if u0 != 0.0:
        out = out + float(u0) * rest.to(device=h.device, dtype=h.dtype)[:, None]
    return out
