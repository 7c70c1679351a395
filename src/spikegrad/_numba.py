"""What every numba kernel needs: whether numba imports, the one error when it does not,
the torch → numpy dtype map, whether a tensor is inside a ``torch.func`` transform, how many
threads a call gets, and the LLVM prefetch intrinsic of the compiled backward kernels.

Kept apart from the kernels so that they import it, not each other.
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
import torch

from .errors import SpikegradError

INSTALL_HINT = "pip install 'numba>=0.60'"

# dtypes the compiled kernels take, with their numpy scalar types
DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def numba_takes(*tensors) -> bool:
    """Whether the numba kernels take these tensors: on the CPU, float32 or float64."""
    return all(t.device.type == "cpu" and t.dtype in DTYPES for t in tensors)


def numba_available() -> bool:
    """Whether numba imports (an imported numba is looked up in sys.modules: cheap)."""
    if sys.modules.get("numba") is not None:
        return True
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def require_numba(what: str = "backend 'compiled'"):
    """The numba module (its thread pool started, torch's thread count kept: see
    :func:`_start_numba_threads`), or a SpikegradError saying how to install it."""
    try:
        numba = importlib.import_module("numba")
    except ImportError as exc:
        raise SpikegradError(
            f"{what} needs the package numba, which cannot be imported ({exc}); "
            f"install it with: {INSTALL_HINT}  (or choose backend 'fused' or 'reference')"
        ) from None
    if not _STARTED:
        _start_numba_threads(numba)
    return numba


_STARTED: list[bool] = []


def _start_numba_threads(numba) -> None:
    """Start numba's thread pool now, then give torch back the thread count it had.

    Starting numba's OpenMP pool sets the process's OpenMP thread count to numba's pool
    size (all cores), and torch reads its thread count from there: a run that asked for one
    torch thread (``train.threads = 1``) ran its torch ops on every core from the first
    parallel kernel call on.  Started here, on the first use of numba, and undone at once.
    """
    threads = torch.get_num_threads()
    numba.get_num_threads()                    # starts the pool (numba's _launch_threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _STARTED.append(True)


def thread_count(numba, requested: int, work: int, min_work: int, rows: int | None = None) -> int:
    """Threads (= chunks of the batch) for one kernel call: ``requested`` (0: torch's),
    capped by numba's thread pool, by ``rows`` (when given: one row per chunk at least) and
    by the work (``min_work`` units per thread at least); never below 1."""
    want = requested or torch.get_num_threads()
    want = min(want, numba.config.NUMBA_NUM_THREADS, max(1, rows) if rows is not None else want)
    want = min(want, max(1, work // min_work))
    return max(1, want)


def is_transformed(*tensors) -> bool:
    """Whether any tensor is a ``torch.func`` wrapper (vmap's batched or grad's tracking
    tensor): numpy views and in-place kernels cannot see through those."""
    return any(isinstance(t, torch.Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(t)
               for t in tensors)


def is_vmapped(*tensors) -> bool:
    """Whether any tensor carries a vmap batch dimension at the current level."""
    return any(isinstance(t, torch.Tensor) and torch._C._functorch.is_batchedtensor(t) for t in tensors)


def in_transform() -> bool:
    """Whether the caller runs inside a ``torch.func`` transform (grad, vmap, jvp, …): there
    even ``detach()`` of a plain tensor returns a wrapper, which numpy cannot view."""
    return torch._C._functorch.peek_interpreter_stack() is not None


def differentiating_transform() -> str | None:
    """"grad" or "jvp" when the caller runs inside ``torch.func.grad``/``vjp`` or ``jvp``
    (whose levels wrap every tensor, ``detach()``'s results included), else None."""
    stack = torch._C._functorch.get_interpreter_stack() or []
    for interpreter in stack:
        kind = interpreter.key()
        if kind == torch._C._functorch.TransformType.Grad:
            return "grad"
        if kind == torch._C._functorch.TransformType.Jvp:
            return "jvp"
    return None


def make_prefetch(numba, fallback):
    """``llvm.prefetch`` of arr[b, t, i] (read, keep in all cache levels) as a numba intrinsic.

    Why: the reverse-time adjoint walks each batch row from its last step to its first; every
    step reads 1 KB rows (N = 256, float32) ascending, then jumps 2 KB back.  The hardware
    prefetchers miss that pattern, so with the saved voltages no longer in cache (as in a
    training step) the simple backward took 2.0–2.4 ms instead of 0.7–0.9 ms at B 64, T 100,
    N 256; prefetching the rows two steps ahead brought it to 1.4–1.5 ms (same results: a
    prefetch changes no value).  Falls back to the no-op if the intrinsic cannot be built.
    """
    try:
        from llvmlite import ir
        from numba.core import cgutils, types
        from numba.extending import intrinsic
    except ImportError:  # pragma: no cover - numba's internals moved
        return numba.njit(fallback)

    @intrinsic
    def prefetch(typingctx, arr, b, t, i):
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            idx = [context.cast(builder, v, ty, types.intp)
                   for v, ty in zip(args[1:], signature.args[1:])]
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            name = "llvm.prefetch.p0" if getattr(ptr.type, "is_opaque", True) else "llvm.prefetch.p0i8"
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), name)
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                              ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return types.void(arr, b, t, i), codegen

    return prefetch
