"""The compiled LIF kernels' loops: forward, general adjoint, simple adjoint and one
adjoint step, as plain Python functions that numba compiles on first use (:func:`_kernels`),
and the plumbing that calls them (:func:`_run`, :func:`_threads`).  Their contract and
equations: :mod:`spikegrad.kernels.compiled` and :mod:`spikegrad.kernels.fused`.

The loops call each other through module globals (``prange``, ``_surrogate_row``,
``_prefetch``, ``_prefetch_rows``) that :func:`_kernels` rebinds to their compiled forms
before compiling the rest: numba reads a global's value when it compiles a function, so
these functions and those globals live in this one module.

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
(:func:`spikegrad.kernels.compiled._stepwise_recurrent`: one torch matmul plus one
compiled call per step).  Everything
else runs the general ``_backward_py``.  All kernels are compiled with
``error_model="numpy"``: numba's default checks every division for zero, which keeps the
surrogate loops from vectorising.

Parallelism: the batch can be split into one chunk per thread (``prange``).  One thread by
default (``KernelOptions.threads``; the measurement that chose it: docs/PERFORMANCE.md).
Results do not depend on the thread count except
dL/dV, whose per-thread partial sums are added in a fixed order (deterministic for a fixed
thread count, equal to rounding otherwise).
"""

from __future__ import annotations

import numpy as np

from .._numba import make_prefetch, require_numba, thread_count
from ..surrogates import KERNEL_FORMS

# The kernels branch on the code of the surrogate's kernel form (KERNEL_FORMS order:
# superspike 0, superspike-asym 1, sigmoid 2, esser 3, zero 4): numba cannot call torch.
_TRUE = KERNEL_FORMS.index("zero")
# Minimum neuron-steps per thread before the batch is split over threads: below it the
# thread start-up costs more than it saves.
_MIN_WORK_PER_THREAD = 1 << 15
_require_numba = require_numba


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
    """Chunks (= threads) for a call: ``threads`` (0: torch's), capped by numba's threads,
    the batch rows and the work."""
    return thread_count(numba, threads, work, _MIN_WORK_PER_THREAD, rows=work_rows)


def _run(kind: int, nchunks: int, *args) -> None:
    numba = _require_numba()
    parallel = nchunks > 1
    kernel = _kernels(parallel)[kind]
    if parallel:  # chunks beyond numba's threads are shared out by prange
        numba.set_num_threads(min(nchunks, numba.config.NUMBA_NUM_THREADS))
    kernel(*args, nchunks)
