"""The leaky readout without a Python loop over time steps: compiled recursion or one matmul.

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

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import DTYPES as _DTYPES, differentiating_transform, numba_available, numba_takes, require_numba as _require_numba


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


# ---------------------------------------------------------------------------------------
# The same recursion compiled (numba): O(B·T·C) instead of the matmul's O(B·T²·C), which
# matters for long trials (T = 500: the T × T product was ~30% of a training step).  The
# forward does the reference loop's operations in its order (no FMA: fastmath off), so it
# equals :func:`spikegrad.neurons.leaky_readout` bitwise; the backward is the adjoint
#   λU[n] = G[n] + β_out λU[n+1],  λI[n] = g λU[n+1] + β_syn λI[n+1],  ∂L/∂h[n] = λI[n+1].

_JIT: dict[str, object] = {}


def _readout_forward_py(h, a, s, g, u0, out):
    batch, steps, n = h.shape
    u = np.empty(n, h.dtype)
    cur = np.empty(n, h.dtype)
    for b in range(batch):
        for c in range(n):
            u[c] = u0
            cur[c] = 0
        for t in range(steps):
            o = out[b, t]
            h_t = h[b, t]
            for c in range(n):
                o[c] = u[c]
            for c in range(n):
                u[c] = a * u[c] + g * cur[c]
            for c in range(n):
                cur[c] = s * cur[c] + h_t[c]


def _readout_backward_py(gout, a, s, g, gh):
    batch, steps, n = gout.shape
    lu = np.empty(n, gout.dtype)
    li = np.empty(n, gout.dtype)
    for b in range(batch):
        for c in range(n):
            lu[c] = 0
            li[c] = 0
        for t in range(steps - 1, -1, -1):
            go = gout[b, t]
            gh_t = gh[b, t]
            for c in range(n):
                gh_t[c] = li[c]                      # ∂L/∂h[t] = λI[t+1]
            for c in range(n):
                li[c] = g * lu[c] + s * li[c]        # λI[t]
            for c in range(n):
                lu[c] = go[c] + a * lu[c]            # λU[t]


def _readout_kernels():
    if "k" not in _JIT:
        numba = _require_numba()
        opts = dict(cache=True, fastmath=False, nogil=True)
        _JIT["k"] = (numba.njit(**opts)(_readout_forward_py), numba.njit(**opts)(_readout_backward_py))
    return _JIT["k"]


class CompiledReadout(torch.autograd.Function):
    """U_out from h by the compiled recursion; one autograd node, saves nothing but scalars.
    ``setup_context`` style; under vmap the member axis folds into the batch."""

    @staticmethod
    def forward(h: torch.Tensor, decay_out: float, decay_syn: float, gain: float, u0: float):
        dt = _DTYPES[h.dtype]
        hc = h.detach().contiguous()
        out = torch.empty_like(hc)
        fwd, _ = _readout_kernels()
        if hc.numel():
            fwd(hc.numpy(), dt(decay_out), dt(decay_syn), dt(gain), dt(u0), out.numpy())
        return out

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.coef = inputs[1:4]

    @staticmethod
    def vmap(info, in_dims, h, decay_out, decay_syn, gain, u0):
        x = h.movedim(in_dims[0], 0)
        k, b = x.shape[:2]
        out = CompiledReadout.apply(x.reshape(k * b, *x.shape[2:]), decay_out, decay_syn, gain, u0)
        return out.reshape(k, b, *out.shape[1:]), 0

    @staticmethod
    @once_differentiable
    def backward(ctx, gout: torch.Tensor):
        a, s, g = ctx.coef
        dt = _DTYPES[gout.dtype]
        gc = gout.contiguous()
        gh = torch.empty_like(gc)
        _, bwd = _readout_kernels()
        if gc.numel():
            bwd(gc.numpy(), dt(a), dt(s), dt(g), gh.numpy())
        return gh, None, None, None, None


def leaky_readout_fast(h: torch.Tensor, decay_out: float, decay_syn: float, gain: float,
                       u0: float) -> torch.Tensor:
    """The compiled recursion on CPU float32/float64 where numba imports (and outside
    ``torch.func.grad``/``jvp``, which its hand-written adjoint does not serve), else the matmul."""
    if numba_takes(h) and numba_available() and differentiating_transform() is None:
        return apply(CompiledReadout, h, float(decay_out), float(decay_syn), float(gain), float(u0))
    return leaky_readout_matmul(h, decay_out, decay_syn, gain, u0)
