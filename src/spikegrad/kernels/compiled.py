"""Compiled LIF layer (backend ``"compiled"``): the time loop in numba.

What: the forward pass and the hand-written reverse-time adjoint of one LIF layer over all
time steps, each one call into a numba-compiled loop over (time, batch, neuron), wrapped
in a :class:`torch.autograd.Function` with the contract of
:func:`spikegrad.kernels.fused.lif_fused` (same inputs: input currents ff [B, T, N], optional
recurrent weights V [N, N], :class:`~spikegrad.neurons.LIFParams`; same outputs; same
equations and switches — see the docstring of :mod:`spikegrad.kernels.fused` for the
adjoint recurrence).  Tensors are handed to numba as zero-copy numpy views of contiguous
CPU tensors; float32 and float64.

Why numba: it installs from a binary wheel (no compiler at install time, no build step,
unlike a C++ extension, which would need a compiler or be built in pip's isolated build
environment, where it pulls a CUDA torch); the kernels are compiled on first use (seconds
per dtype; docs/PERFORMANCE.md) and the machine code is cached on disk (``cache=True``, in
``__pycache__`` next to this file, or numba's user cache if that is read-only), so later
processes only import numba and load it.  ``fastmath=False``: no reassociation or FMA
contraction, so the forward pass does the reference's floating-point operations in the
reference's order.

Per step the kernel does only O(B·N) elementwise work plus the recurrent input, which is
event-driven: V·S[n] adds the columns of V of the neurons that spiked (cost ∝ spikes; the
columns are added in increasing neuron order, so the voltages are bitwise those of the
reference whenever a neuron receives at most two recurrent spikes in a step, and equal to
rounding otherwise).  The adjoint through V, λI[n+1]·V, is dense (λI is) and runs as row
updates shared by the batch rows of a thread; it is skipped for the "true" surrogate
(h ≡ 0).  dL/dV = Σ_n λI[n+1]ᵀ S[n] is again event-driven (one row update per spike).

Saved for the backward pass (as in the fused kernel): the voltages U in the compute dtype
(spikes are recomputed as U > 1), or, for reset "zero" with a differentiable reset, the
pre-reset trace plus the spikes as uint8 — 4 (5) bytes per neuron and step in float32,
8 (9) in float64.

Memory order: the forward pass takes one batch row at a time through all steps (rows of
[B, T, N] tensors are then read and written as sequential streams).  The backward pass does
the same, except with the dense λI·V product (recurrent_grad "prop"), where blocks of 8
rows go through time together so that each row of V read from cache serves the block.
Walking time backwards defeats the hardware prefetchers, so the backward kernels prefetch
the rows they will need two steps (or, step by step, two batch rows) ahead themselves
(``llvm.prefetch``, :func:`spikegrad._numba.make_prefetch`).

Backward paths: the common case — only the spikes carry a gradient and the reset is
detached — runs ``_backward_simple_py`` (one fused loop per row and step, bitwise the
general kernel's results); with the dense λI·V it runs step by step instead
(``_stepwise_recurrent``: one torch matmul plus one compiled call per step).  Everything
else runs the general ``_backward_py``.  All kernels are compiled with
``error_model="numpy"``: numba's default checks every division for zero, which keeps the
surrogate loops from vectorising.

Parallelism: the batch can be split into one chunk per thread (``prange``).  One thread by
default (``KernelOptions.threads``; the measurement that chose it: docs/PERFORMANCE.md).  Results do not depend on the thread count except
dL/dV, whose per-thread partial sums are added in a fixed order (deterministic for a fixed
thread count, equal to rounding otherwise).

What it does not cover, :func:`supports` names (a surrogate without a kernel form,
tensors not on the CPU, dtypes other than float32/float64, tensor-valued parameters,
stacked recurrent weights under vmap): ``backend="auto"`` then runs the next candidate
(:mod:`spikegrad.kernels.dispatch`), a named ``"compiled"`` raises that reason.  Double
backward is not supported (as in the fused kernel).  The autograd Function is in the
``setup_context`` style with a vmap rule that folds the member axis into the batch.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import (DTYPES as _DTYPES, INSTALL_HINT, is_vmapped, make_prefetch, numba_available,
                      require_numba)
from ..errors import SpikegradError
from ..events import EventBatch
from ..surrogates import KERNEL_FORMS, SURROGATES, get_surrogate, kernel_code
from ..dynamics.base import Feedback
from .fused import FEEDBACK_REASON, check_layer_inputs, fold_member_axis, supports as fused_supports
from .options import DEFAULT_OPTIONS, KernelOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..dynamics.lif import LIFParams

# The kernels branch on the code of the surrogate's kernel form (KERNEL_FORMS order:
# superspike 0, superspike-asym 1, sigmoid 2, esser 3, zero 4): numba cannot call torch.
_TRUE = KERNEL_FORMS.index("zero")


def surrogate_codes() -> dict[str, int]:
    """Every registered surrogate that has a kernel form, with its code (from the registry)."""
    return {name: kernel_code(s) for name, s in SURROGATES.items() if s.kernel_form is not None}

# Minimum neuron-steps per thread before the batch is split over threads: below it the
# thread start-up costs more than it saves.
_MIN_WORK_PER_THREAD = 1 << 15
_BACKWARD_BLOCK_ROWS = 8
_require_numba = require_numba


def saved_bytes_per_neuron_step(p: "LIFParams", dtype: torch.dtype = torch.float32) -> int:
    """Bytes the compiled kernel keeps for the backward pass per neuron and time step."""
    size = torch.empty((), dtype=dtype).element_size()
    return size + 1 if (p.reset == "zero" and not p.detach_reset) else size


def supports(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams") -> str | None:
    """None if the compiled kernel runs this call, else the reason it cannot (one phrase)."""
    if isinstance(v, Feedback):
        return FEEDBACK_REASON
    if not numba_available():
        return f"numba is not installed ({INSTALL_HINT})"
    surrogate = get_surrogate(p.surrogate)
    if surrogate.kernel_form is None:
        return f"surrogate {surrogate.name!r} has no kernel form (register it with kernel_form=...)"
    if ff.device.type != "cpu" or (v is not None and v.device.type != "cpu"):
        return f"it runs on the CPU, and the tensors are on {ff.device.type if ff.device.type != 'cpu' else v.device.type}"
    if ff.dtype not in _DTYPES:
        return f"it takes float32 or float64, not {ff.dtype}"
    return fused_supports(ff, v, p)


# ---------------------------------------------------------------------------------------
# The kernels, as plain Python functions; jit-compiled on first use by _kernels().
# ``prange`` is bound to numba.prange there (numba treats it as ``range`` when not
# compiling with parallel=True).  All scalars arrive in the compute dtype (one, zero, a,
# …) so that float32 arithmetic stays float32.

prange = range
_surrogate_row = None  # the jit-compiled _surrogate_row_py, called by the kernels


def _prefetch_py(arr, b, t, i):
    """Hint that arr[b, t, i] will be needed soon (a no-op in Python; a CPU prefetch of
    its cache line in the compiled kernels, see :func:`spikegrad._numba.make_prefetch`)."""


_prefetch = _prefetch_py  # bound to the intrinsic by _kernels()


_PREFETCH_AHEAD = 2  # the backward pass fetches the rows this many steps ahead


def _prefetch_rows_py(volts, gs, gff, b, t):
    """Prefetch row [b, t] of the three arrays the adjoint reads and writes, line by line."""
    line = 64 // gff.itemsize                               # elements per cache line
    for i in range(0, gff.shape[2], line):
        _prefetch(volts, b, t, i)
        _prefetch(gs, b, t, i)
        _prefetch(gff, b, t, i)


_prefetch_rows = _prefetch_rows_py  # jit-compiled by _kernels()


def _surrogate_row_py(code, u, h, beta, one, zero):
    """h[i] = h(u[i] − 1; β) for one row of voltages."""
    n = u.shape[0]
    if code == 0:                                           # superspike 1/(β|x|+1)²
        for i in range(n):
            d = beta * abs(u[i] - one) + one
            h[i] = one / (d * d)
    elif code == 1:                                         # superspike-asym β/(β|x|+1)²
        for i in range(n):
            d = beta * abs(u[i] - one) + one
            h[i] = beta / (d * d)
    elif code == 2:                                         # sigmoid′: s(βx)(1 − s(βx))
        for i in range(n):
            s = one / (one + np.exp(-(beta * (u[i] - one))))
            h[i] = s * (one - s)
    elif code == 3:                                         # esser max(0, 1 − β|x|)
        for i in range(n):
            r = one - beta * abs(u[i] - one)
            h[i] = r if r > zero else zero
    else:                                                   # true gradient: 0
        for i in range(n):
            h[i] = zero


def _forward_py(ff, vt, has_v, a, bs, g, one, zero, zero_reset, keep_pre,
                volts, spikes, pre, spk, record, scnt, sidx, rows, nchunks):
    """Forward pass; writes volts (U[n]), spikes (S[n]) and, with keep_pre, pre (P̃[n]) and spk.

    The loops over neurons are kept free of branches on the switches (those are outside
    them) so that LLVM vectorises them; each does the reference's operations in its order.
    With ``record`` (rows of one block), the spikes' events too: scnt[b·T + t] = number of
    spikes of row b at step t, their neuron indices (increasing) in sidx from the chunk's
    first row's offset c0·T·N on.  The spiking neurons of a row and step (also the columns
    of V the recurrent input adds) are found 8 at a time: a vectorised uint8 mask, read as
    64-bit words, most of them zero.
    """
    batch, steps, n = ff.shape
    nwords = n // 8
    for c in prange(nchunks):
        c0 = c * batch // nchunks
        c1 = (c + 1) * batch // nchunks
        cur = np.empty((rows, n), ff.dtype)                 # I[n] of a block's rows
        rec = np.empty(n, ff.dtype)
        fired = np.empty(n, np.int64)
        mask = np.zeros(nwords * 8 + 8, np.uint8)
        words = mask.view(np.uint64)
        e = c0 * steps * n                                  # next free slot of sidx
        for b0 in range(c0, c1, rows):                      # a block of rows: through time together
            b1 = min(b0 + rows, c1)
            for r in range(b1 - b0):
                for i in range(n):
                    cur[r, i] = zero
            for b in range(b0, b1):
                for i in range(n):
                    volts[b, 0, i] = zero
                if keep_pre:
                    for i in range(n):
                        pre[b, 0, i] = zero
            for t in range(steps):
                last = t == steps - 1
                for r in range(b1 - b0):
                    b = b0 + r
                    if not keep_pre:                        # one fused pass per row and step
                        if last:                            # U[T], I[T] are not outputs
                            for i in range(n):
                                spikes[b, t, i] = one if volts[b, t, i] > one else zero
                        elif zero_reset:
                            for i in range(n):
                                x = volts[b, t, i]
                                s_i = one if x > one else zero
                                spikes[b, t, i] = s_i
                                volts[b, t + 1, i] = (a * x + g * cur[r, i]) * (one - s_i)
                                cur[r, i] = bs * cur[r, i] + ff[b, t, i]  # I[n+1] = β_syn I[n] + ff[n] …
                        else:
                            for i in range(n):
                                x = volts[b, t, i]
                                s_i = one if x > one else zero
                                spikes[b, t, i] = s_i
                                volts[b, t + 1, i] = (a * x + g * cur[r, i]) - s_i
                                cur[r, i] = bs * cur[r, i] + ff[b, t, i]
                    else:                                   # P[n] kept, U[n+1] = P[n] (1 − S[n])
                        u_t = volts[b, t]
                        s_t = spikes[b, t]
                        spk_t = spk[b, t]
                        for i in range(n):                  # S[n] = Θ(U[n] − 1)
                            s_t[i] = one if u_t[i] > one else zero
                        for i in range(n):
                            spk_t[i] = 1 if u_t[i] > one else 0
                        if not last:
                            p_n = pre[b, t + 1]
                            u_n = volts[b, t + 1]
                            cur_r = cur[r]
                            ff_t = ff[b, t]
                            for i in range(n):
                                p_n[i] = a * u_t[i] + g * cur_r[i]
                            for i in range(n):
                                u_n[i] = p_n[i] * (one - s_t[i])
                            for i in range(n):
                                cur_r[i] = bs * cur_r[i] + ff_t[i]
                    inner = has_v and not last
                    if not (record or inner):
                        continue
                    for j in range(n):                      # the spiking neurons, in order
                        mask[j] = 1 if volts[b, t, j] > one else 0
                    k = 0
                    for q in range(nwords):
                        if words[q] != 0:
                            for j in range(8 * q, 8 * q + 8):
                                if mask[j] != 0:
                                    fired[k] = j
                                    k += 1
                    for j in range(8 * nwords, n):
                        if mask[j] != 0:
                            fired[k] = j
                            k += 1
                    if record:
                        scnt[b * steps + t] = k
                        for m in range(k):
                            sidx[e + m] = fired[m]
                        e += k
                    if inner:                               # … + V·S[n]: spiking columns of V
                        if k > 0:
                            for i in range(n):
                                rec[i] = zero
                            for m in range(k):
                                vj = vt[fired[m]]
                                for i in range(n):
                                    rec[i] += vj[i]
                            for i in range(n):
                                cur[r, i] = cur[r, i] + rec[i]

def _backward_py(volts, pre, spk, keep_pre, gs, has_gs, gu, has_gu, v, prop,
                 a, bs, g, one, zero, beta, code, zero_reset, detach_reset,
                 gff, need_v, gvt_parts, rows, nchunks):
    """Reverse-time adjoint; writes gff (dL/dff[n] = λI[n+1]) and per-chunk partial (dL/dV)ᵀ."""
    batch, steps, n = gff.shape
    last = steps - 1
    for c in prange(nchunks):
        c0 = c * batch // nchunks
        c1 = (c + 1) * batch // nchunks
        lu = np.empty((rows, n), gff.dtype)                 # λU[n+1]
        li = np.empty((rows, n), gff.dtype)                 # λI[n+1]
        acc = np.empty((rows, n), gff.dtype)                # λI[n+1] V
        h = np.empty((rows, n), gff.dtype)                  # h(U[n] − 1)
        keep = np.empty((rows, n), gff.dtype)               # 1 − S[n]
        ds = np.empty(n, gff.dtype)
        q = np.empty(n, gff.dtype)
        u_r = np.empty(n, gff.dtype)
        for b0 in range(c0, c1, rows):                      # a block of rows: through time together
            b1 = min(b0 + rows, c1)
            nb = b1 - b0
            for r in range(nb):
                for i in range(n):
                    lu[r, i] = zero
                    li[r, i] = zero
            for t in range(last, -1, -1):
                inner = t < last
                for r in range(nb):
                    b = b0 + r
                    keep_r = keep[r]
                    if keep_pre:                            # U[n] = P̃[n] (1 − S[n−1])
                        p_t = pre[b, t]
                        spk_t = spk[b, t]
                        if t > 0:
                            spk_p = spk[b, t - 1]
                            for i in range(n):
                                u_r[i] = zero if spk_p[i] != 0 else p_t[i]
                        else:
                            for i in range(n):
                                u_r[i] = p_t[i]
                        for i in range(n):
                            keep_r[i] = zero if spk_t[i] != 0 else one
                        _surrogate_row(code, u_r, h[r], beta, one, zero)
                    else:
                        u_t = volts[b, t]
                        for i in range(n):
                            keep_r[i] = zero if u_t[i] > one else one
                        _surrogate_row(code, u_t, h[r], beta, one, zero)
                use_acc = prop and inner and code != _TRUE
                if use_acc:                                 # acc = λI[n+1] V, row by row of V
                    for r in range(nb):
                        for i in range(n):
                            acc[r, i] = zero
                    for k in range(n):
                        vk = v[k]
                        for r in range(nb):
                            lk = li[r, k]
                            if lk != zero:
                                acc_r = acc[r]
                                for i in range(n):
                                    acc_r[i] += lk * vk[i]
                for r in range(nb):
                    b = b0 + r
                    lu_r = lu[r]
                    li_r = li[r]
                    h_r = h[r]
                    keep_r = keep[r]
                    gff_t = gff[b, t]
                    # ΔS[n] = G_S[n] (+ λI[n+1] V) (− λU[n+1] P[n] or − λU[n+1])
                    if has_gs:
                        gs_t = gs[b, t]
                        for i in range(n):
                            ds[i] = gs_t[i]
                    else:
                        for i in range(n):
                            ds[i] = zero
                    if use_acc:
                        acc_r = acc[r]
                        for i in range(n):
                            ds[i] = ds[i] + acc_r[i]
                    if inner:
                        if not detach_reset:
                            if zero_reset:
                                p_n = pre[b, t + 1]         # P[n] = P̃[n+1]
                                for i in range(n):
                                    ds[i] = ds[i] - lu_r[i] * p_n[i]
                            else:
                                for i in range(n):
                                    ds[i] = ds[i] - lu_r[i]
                        if zero_reset:
                            for i in range(n):
                                q[i] = lu_r[i] * keep_r[i]  # λU[n+1] (1 − S[n])
                        else:
                            for i in range(n):
                                q[i] = lu_r[i]
                    # (short loops over few arrays: LLVM vectorises them with few alias checks)
                    for i in range(n):
                        gff_t[i] = li_r[i]                  # dL/dff[n] = λI[n+1]
                    for i in range(n):
                        ds[i] = ds[i] * h_r[i]
                    if inner:
                        for i in range(n):
                            li_r[i] = bs * li_r[i] + g * q[i]  # λI[n]
                        for i in range(n):
                            lu_r[i] = ds[i] + a * q[i]      # λU[n] (without G_U)
                    else:
                        for i in range(n):
                            lu_r[i] = ds[i]
                    if has_gu:
                        gu_t = gu[b, t]
                        for i in range(n):
                            lu_r[i] = lu_r[i] + gu_t[i]
                if need_v and inner:                        # (dL/dV)ᵀ[j] += λI[n+1] where S_j[n]
                    part = gvt_parts[c]
                    for r in range(nb):
                        gff_t = gff[b0 + r, t]
                        keep_r = keep[r]
                        for j in range(n):
                            if keep_r[j] == zero:
                                pj = part[j]
                                for i in range(n):
                                    pj[i] += gff_t[i]


def _backward_simple_py(volts, gs, a, bs, g, one, zero, beta, code, zero_reset,
                        gff, need_v, gvt_parts, nchunks):
    """The common case of :func:`_backward_py` in one fused loop per row and step.

    Voltages saved, G_S given, no G_U, detached reset (the defaults), no dense λI·V (the
    recurrent adjoint runs step by step, :func:`_adjoint_step_py`): then
    λU[n] = G_S[n] h[n] + α q, λI[n] = β_syn λI[n+1] + g q with q = λU[n+1] (1 − S[n])
    (zero reset) or λU[n+1] (subtract), the operations of the general kernel in its order.
    Indexing the [B, T, N] arrays directly (no row views) and computing SuperSpike's h
    inline keep the loop vectorised and free of per-row overhead: about twice as fast as
    the general kernel.
    """
    batch, steps, n = gff.shape
    last = steps - 1
    inline_h = code == 0
    ahead = _PREFETCH_AHEAD
    for c in prange(nchunks):
        c0 = c * batch // nchunks
        c1 = (c + 1) * batch // nchunks
        lu = np.empty(n, gff.dtype)                         # λU[n+1]
        li = np.empty(n, gff.dtype)                         # λI[n+1]
        h = np.empty(n, gff.dtype)                          # h(U[n] − 1) when not inline
        for b in range(c0, c1):                             # one row at a time through time
            for i in range(n):
                lu[i] = zero
                li[i] = zero
            for t in range(last, -1, -1):
                tp = t - ahead                              # the rows `ahead` steps on
                bp = b
                if tp < 0:                                  # … in the next batch row
                    tp += steps
                    bp += 1
                if bp < c1:
                    _prefetch_rows(volts, gs, gff, bp, tp)
                if not inline_h:
                    _surrogate_row(code, volts[b, t], h, beta, one, zero)
                if t == last:                               # λU[T−1] = G_S h, dL/dff = λI[T] = 0
                    if inline_h:
                        for i in range(n):
                            d = beta * abs(volts[b, t, i] - one) + one
                            gff[b, t, i] = li[i]
                            lu[i] = gs[b, t, i] * (one / (d * d))
                    else:
                        for i in range(n):
                            gff[b, t, i] = li[i]
                            lu[i] = gs[b, t, i] * h[i]
                    continue
                if inline_h:
                    for i in range(n):
                        x = volts[b, t, i]
                        d = beta * abs(x - one) + one
                        q = zero if (x > one) & zero_reset else lu[i]
                        l = li[i]
                        gff[b, t, i] = l
                        li[i] = bs * l + g * q
                        lu[i] = gs[b, t, i] * (one / (d * d)) + a * q
                else:
                    for i in range(n):
                        q = zero if (volts[b, t, i] > one) & zero_reset else lu[i]
                        l = li[i]
                        gff[b, t, i] = l
                        li[i] = bs * l + g * q
                        lu[i] = gs[b, t, i] * h[i] + a * q
                if need_v:                                  # (dL/dV)ᵀ[j] += λI[n+1] where S_j[n]
                    part = gvt_parts[c]
                    for j in range(n):
                        if volts[b, t, j] > one:
                            for i in range(n):
                                part[j, i] += gff[b, t, i]


def _adjoint_step_py(t, last, volts, gs, acc, lu, li, h, a, bs, g, one, zero, beta, code,
                     zero_reset, gff, need_v, gvt):
    """One reverse-time step of the simple adjoint for all batch rows, with acc = λI[n+1] V
    computed before the call (by torch's matmul): the per-step kernel of the recurrent case.

    The same operations in the same order as :func:`_backward_simple_py` (only the sums
    inside λI[n+1] V differ in order).  ``lu``/``li`` [B, N] carry λU, λI between steps.
    The row loops repeat those of _backward_simple_py on purpose: one shared (even
    force-inlined) row function made the default training step 8–9% slower.
    """
    batch, steps, n = gff.shape
    inner = t < last
    inline_h = code == 0
    for b in range(batch):
        bp = b + _PREFETCH_AHEAD                            # the row `ahead` rows on
        tp = t
        if bp >= batch:                                     # … in the next (earlier) step
            bp -= batch
            tp -= 1
        if tp >= 0:
            _prefetch_rows(volts, gs, gff, bp, tp)
        if not inline_h:
            _surrogate_row(code, volts[b, t], h, beta, one, zero)
        if not inner:
            if inline_h:
                for i in range(n):
                    d = beta * abs(volts[b, t, i] - one) + one
                    gff[b, t, i] = li[b, i]
                    lu[b, i] = gs[b, t, i] * (one / (d * d))
            else:
                for i in range(n):
                    gff[b, t, i] = li[b, i]
                    lu[b, i] = gs[b, t, i] * h[i]
        elif inline_h:
            for i in range(n):
                x = volts[b, t, i]
                d = beta * abs(x - one) + one
                q = zero if (x > one) & zero_reset else lu[b, i]
                l = li[b, i]
                gff[b, t, i] = l
                li[b, i] = bs * l + g * q
                lu[b, i] = (gs[b, t, i] + acc[b, i]) * (one / (d * d)) + a * q
        else:
            for i in range(n):
                q = zero if (volts[b, t, i] > one) & zero_reset else lu[b, i]
                l = li[b, i]
                gff[b, t, i] = l
                li[b, i] = bs * l + g * q
                lu[b, i] = (gs[b, t, i] + acc[b, i]) * h[i] + a * q
    if need_v and inner:                                    # (dL/dV)ᵀ[j] += λI[n+1] where S_j[n]
        for b in range(batch):
            for j in range(n):
                if volts[b, t, j] > one:
                    for i in range(n):
                        gvt[j, i] += gff[b, t, i]

_JIT: dict[str, object] = {}


def _kernels(parallel: bool):
    """The jit-compiled (forward, backward, simple backward, adjoint step) kernels, compiled
    lazily and cached on disk."""
    key = "parallel" if parallel else "serial"
    if key not in _JIT:
        numba = _require_numba()
        global prange
        prange = numba.prange
        opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
        global _surrogate_row, _prefetch, _prefetch_rows
        _surrogate_row = numba.njit(**opts)(_surrogate_row_py)
        if _prefetch is _prefetch_py:
            _prefetch = make_prefetch(numba, _prefetch_py)
        _prefetch_rows = numba.njit(inline="always", **opts)(_prefetch_rows_py)
        if parallel:
            opts["parallel"] = True
        fwd = numba.njit(**opts)(_forward_py)
        bwd = numba.njit(**opts)(_backward_py)
        simple = numba.njit(**opts)(_backward_simple_py)
        step = numba.njit(**{k: o for k, o in opts.items() if k != "parallel"})(_adjoint_step_py)
        _JIT[key] = (fwd, bwd, simple, step)
    return _JIT[key]


def _threads(numba, threads: int, work_rows: int, work: int) -> int:
    """Chunks (= threads) for a call: ``threads`` (0: torch's), capped by numba's threads and
    the work."""
    want = threads or torch.get_num_threads()
    want = min(want, numba.config.NUMBA_NUM_THREADS, max(1, work_rows))
    want = min(want, max(1, work // _MIN_WORK_PER_THREAD))
    return max(1, want)


def _run(kind: int, nchunks: int, *args) -> None:
    numba = _require_numba()
    parallel = nchunks > 1
    kernel = _kernels(parallel)[kind]
    if parallel:  # chunks beyond numba's threads are shared out by prange
        numba.set_num_threads(min(nchunks, numba.config.NUMBA_NUM_THREADS))
    kernel(*args, nchunks)


class CompiledLIF(torch.autograd.Function):
    """All T steps of one LIF layer as a single autograd node, computed by numba.

    Outputs (spikes, voltages, pre, spk, event_ptr, event_idx): pre/spk are what the
    backward pass needs for a differentiable zero reset (empty otherwise), event_ptr/idx the
    spikes' events as CSR (empty unless ``options.record_events``); none of the four is
    differentiable.
    """

    @staticmethod
    def forward(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams", options: KernelOptions):
        numba = _require_numba()
        np_dtype = _DTYPES[ff.dtype]
        zero_reset = p.reset == "zero"
        keep_pre = zero_reset and not p.detach_reset
        batch, steps, n = ff.shape
        ffc = ff.detach().contiguous()
        volts = torch.empty_like(ffc)
        spikes = torch.empty_like(ffc)
        pre = torch.empty_like(ffc) if keep_pre else ffc.new_empty(0, 0, 0)
        spk = torch.empty(batch, steps, n, dtype=torch.uint8) if keep_pre \
            else torch.empty(0, 0, 0, dtype=torch.uint8)
        vt = v.detach().t().contiguous() if v is not None else ffc.new_empty(0, 0)
        record = options.record_events and ffc.numel() > 0
        # the spikes' events: counts per (row, step), indices from each chunk's offset on
        # (room for every neuron-step; only the slots used are ever touched)
        scnt = torch.empty(batch * steps if record else 0, dtype=torch.int64)
        sidx = torch.empty(ffc.numel() if record else 0, dtype=torch.int32)
        nchunks = 1
        if ffc.numel():
            nchunks = _threads(numba, options.threads, batch, ffc.numel())
            _run(0, nchunks, ffc.numpy(), vt.numpy(), v is not None,
                 np_dtype(p.decay_mem), np_dtype(p.decay_syn), np_dtype(p.gain),
                 np_dtype(1.0), np_dtype(0.0), zero_reset, keep_pre,
                 volts.numpy(), spikes.numpy(), pre.numpy(), spk.numpy(),
                 record, scnt.numpy(), sidx.numpy(), 1)
        if record:
            ptr, idx = _spike_events(scnt, sidx, nchunks, batch, steps, n)
        else:
            ptr = idx = torch.empty(0, dtype=torch.int64)
        return spikes, volts, pre, spk, ptr, idx

    @staticmethod
    def setup_context(ctx, inputs, output):
        ff, v, p, options = inputs
        spikes, volts, pre, spk, ptr, idx = output
        ctx.p = p
        ctx.options = options
        ctx.keep_pre = p.reset == "zero" and not p.detach_reset
        ctx.has_v = v is not None
        if ctx.keep_pre:
            ctx.save_for_backward(pre, spk, v)
        else:
            ctx.save_for_backward(volts, v)
        ctx.mark_non_differentiable(pre, spk, ptr, idx)
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, ff, v, p, options):
        # events of the folded batch would describe [K·B, T, N]: not recorded under vmap
        folded = dataclasses.replace(options, record_events=False)
        return fold_member_axis(CompiledLIF, info, in_dims, ff, v, p, folded)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spk: torch.Tensor | None, g_volt: torch.Tensor | None, *_unused):
        need_ff, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_ff or need_v) or (g_spk is None and g_volt is None):
            return None, None, None, None
        numba = _require_numba()
        p = ctx.p
        options = ctx.options
        code = kernel_code(p.surrogate)
        if ctx.keep_pre:
            pre, spk, v = ctx.saved_tensors
            volts = pre.new_empty(0, 0, 0)
        else:
            volts, v = ctx.saved_tensors
            pre = volts.new_empty(0, 0, 0)
            spk = torch.empty(0, 0, 0, dtype=torch.uint8)
        ref = pre if ctx.keep_pre else volts
        batch, steps, n = ref.shape
        dtype = ref.dtype
        np_dtype = _DTYPES[dtype]
        empty3 = ref.new_empty(0, 0, 0)
        gs = g_spk.to(dtype).contiguous() if g_spk is not None else empty3
        gu = g_volt.to(dtype).contiguous() if g_volt is not None else empty3
        prop = ctx.has_v and p.recurrent_grad == "prop"
        vc = v.detach().contiguous() if v is not None else ref.new_empty(0, 0)
        g_ff = ref.new_empty(batch, steps, n)
        need_v = need_v and ctx.has_v
        nchunks = _threads(numba, options.threads, batch, ref.numel()) if ref.numel() else 1
        parts = ref.new_zeros(nchunks, n, n) if need_v else ref.new_empty(0, 0, 0)
        # Rows of a block go through time together: a row of V then serves the whole block
        # in λI V; without that product, one row at a time streams through memory best.
        rows = _BACKWARD_BLOCK_ROWS if (prop and code != _TRUE) else 1
        simple = (options.simple_backward and not ctx.keep_pre and g_spk is not None and g_volt is None
                  and p.detach_reset)
        if ref.numel() and simple and prop and code != _TRUE:
            _stepwise_recurrent(volts, gs, vc, p, g_ff, need_v, parts[0] if need_v else parts)
            nchunks = 1
        elif ref.numel() and simple:               # λI·V not needed ("ctl", FF, or h ≡ 0)
            _run(2, nchunks, volts.numpy(), gs.numpy(),
                 np_dtype(p.decay_mem), np_dtype(p.decay_syn), np_dtype(p.gain),
                 np_dtype(1.0), np_dtype(0.0), np_dtype(p.beta), code,
                 p.reset == "zero", g_ff.numpy(), need_v, parts.numpy())
        elif ref.numel():
            _run(1, nchunks, volts.numpy(), pre.numpy(), spk.numpy(), ctx.keep_pre,
                 gs.numpy(), g_spk is not None, gu.numpy(), g_volt is not None,
                 vc.numpy(), prop, np_dtype(p.decay_mem), np_dtype(p.decay_syn),
                 np_dtype(p.gain), np_dtype(1.0), np_dtype(0.0), np_dtype(p.beta),
                 code, p.reset == "zero", bool(p.detach_reset),
                 g_ff.numpy(), need_v, parts.numpy(), rows)
        g_v = None
        if need_v:
            gvt = parts[0]
            for c in range(1, nchunks):                 # fixed order: deterministic
                gvt = gvt + parts[c]
            g_v = gvt.t().contiguous()
        return (g_ff if need_ff else None), g_v, None, None


def _spike_events(scnt, sidx, nchunks, batch, steps, n) -> tuple[torch.Tensor, torch.Tensor]:
    """The spikes' events as CSR (row pointers, neuron indices) from the forward kernel's
    per-(row, step) counts and its per-chunk index runs (chunk c's run starts at its first
    row's offset c0·T·N)."""
    ptr = torch.zeros(batch * steps + 1, dtype=torch.int64)
    torch.cumsum(scnt, 0, out=ptr[1:])
    runs = []
    for c in range(nchunks):
        c0, c1 = c * batch // nchunks, (c + 1) * batch // nchunks
        start = c0 * steps * n
        runs.append(sidx[start:start + int(ptr[c1 * steps] - ptr[c0 * steps])])
    idx = runs[0].clone() if nchunks == 1 else torch.cat(runs)
    return ptr, idx


def _stepwise_recurrent(volts, gs, v, p, g_ff, need_v, gvt) -> None:
    """The simple adjoint with the dense recurrent term: a reverse-time loop whose
    λI[n+1] V is one torch matmul per step (BLAS on torch's threads: about 4× faster than
    the compiled loop's own product) and whose elementwise part is one compiled call."""
    step = _kernels(False)[3]
    batch, steps, n = volts.shape
    f = _DTYPES[volts.dtype]
    lu = volts.new_zeros(batch, n)
    li = volts.new_zeros(batch, n)
    acc = volts.new_zeros(batch, n)
    h = volts.new_empty(n)
    consts = (f(p.decay_mem), f(p.decay_syn), f(p.gain), f(1.0), f(0.0), f(p.beta),
              kernel_code(p.surrogate), p.reset == "zero")
    vn, gn, an, lun, lin, hn, gffn = (x.numpy() for x in (volts, gs, acc, lu, li, h, g_ff))
    gvtn = gvt.numpy() if need_v else np.empty((0, 0), dtype=vn.dtype)
    last = steps - 1
    for t in range(last, -1, -1):
        if t < last:
            torch.mm(li, v, out=acc)
        step(t, last, vn, gn, an, lun, lin, hn, *consts, gffn, need_v, gvtn)


def lif_compiled(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams",
                 options: KernelOptions = DEFAULT_OPTIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Compiled LIF layer with the same contract as :func:`spikegrad.neurons.lif_reference`.

    ``ff``: input currents [batch, time, neurons]; ``v``: recurrent weights
    [neurons, neurons] or None.  Returns (spikes, voltages), both differentiable.
    Raises a SpikegradError if numba is missing or the call is one it does not cover
    (:func:`supports` says why).
    """
    return lif_compiled_events(ff, v, p, options)[:2]


def lif_compiled_events(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams",
                        options: KernelOptions = DEFAULT_OPTIONS
                        ) -> tuple[torch.Tensor, torch.Tensor, EventBatch | None]:
    """:func:`lif_compiled` that also returns the spikes' events (None when not recorded)."""
    _require_numba()
    reason = supports(ff, v, p)
    if reason is not None:
        raise SpikegradError(f"backend 'compiled' cannot run this lif layer: {reason}")
    return run_supported(ff, v, p, options)


def run_supported(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams", options: KernelOptions
                  ) -> tuple[torch.Tensor, torch.Tensor, EventBatch | None]:
    """The compiled layer for a call :func:`supports` has accepted (the dispatch asks it
    first): shapes checked, the kernel run, the spikes' events wrapped."""
    check_layer_inputs(ff, v, p, "compiled")
    spikes, volts, _, _, ptr, idx = apply(CompiledLIF, ff, v, p, options)
    events = None
    if ptr.numel() and not is_vmapped(spikes):
        events = EventBatch._unchecked(ptr, idx, spikes.new_ones(idx.numel()), spikes.shape)
    return spikes, volts, events
