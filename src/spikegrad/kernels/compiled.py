"""Compiled LIF layer (backend ``"compiled"``): the time loop in numba, as one autograd node.

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

What it does not cover, :func:`supports` names (a surrogate without a kernel form,
tensors not on the CPU, dtypes other than float32/float64, tensor-valued parameters,
stacked recurrent weights under vmap): ``backend="auto"`` then runs the next candidate
(:mod:`spikegrad.kernels.dispatch`), a named ``"compiled"`` raises that reason.  Double
backward is not supported (as in the fused kernel).  The autograd Function is in the
``setup_context`` style with a vmap rule that folds the member axis into the batch.

The loops themselves (plain Python compiled by numba on first use, how they walk memory,
prefetch, choose a backward path and split the batch over threads) are in
:mod:`spikegrad.kernels.lif_loops`; this module holds what torch sees: :func:`supports`,
the autograd Function, the spikes' events, and the entry points.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import DTYPES as _DTYPES, INSTALL_HINT, is_vmapped, numba_available, require_numba as _require_numba
from ..errors import SpikegradError
from ..events import EventBatch
from ..surrogates import SURROGATES, get_surrogate, kernel_code
from ..dynamics.base import Feedback
from .lif_loops import _TRUE, _kernels, _run, _threads
from .fused import FEEDBACK_REASON, check_layer_inputs, fold_member_axis, supports as fused_supports
from .options import DEFAULT_OPTIONS, KernelOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..dynamics.lif import LIFParams


def surrogate_codes() -> dict[str, int]:
    """Every registered surrogate that has a kernel form, with its code (from the registry)."""
    return {name: kernel_code(s) for name, s in SURROGATES.items() if s.kernel_form is not None}


# Rows of a block that go through time together in the general adjoint with λI·V
_BACKWARD_BLOCK_ROWS = 8


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
