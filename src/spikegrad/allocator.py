"""Keep freed tensor memory in the process (glibc malloc settings) so big tensors reuse it.

Why: a training step allocates and frees several [batch, time, neurons] tensors (voltages,
spikes, their gradients: ≈ 9 MB each for the default Randman run).  glibc serves blocks
that large with a fresh ``mmap`` and unmaps them on free, or trims the heap top back to
the OS; either way every new tensor page-faults on first touch, which made a default
training step markedly slower (the measurement: docs/PERFORMANCE.md).  PyTorch's CPU
performance guides reach the same end by swapping in jemalloc or tcmalloc; this needs no
extra library.

What: ``mallopt`` raises the mmap threshold (blocks up to :data:`MMAP_THRESHOLD` come from
the heap) and the trim threshold (freed memory stays with the process for reuse).  The
price: the process keeps its peak heap until it exits — right for a training process,
which reaches its steady state in the first steps.  Effective for allocations made after
the call.  Only on Linux with glibc; elsewhere (and with ``SPIKEGRAD_MALLOC_TUNING=0``) it
does nothing.  :func:`spikegrad.training.train` calls it; call it yourself in your own
training scripts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
ENV_SWITCH = "SPIKEGRAD_MALLOC_TUNING"

_state: dict[str, bool] = {}


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (musl has no mallopt thresholds)
        return libc
    except (OSError, AttributeError):
        return None


def tune_allocator() -> bool:
    """Apply the settings once per process; True if they are in effect.

    Does nothing (False) off glibc or when the environment variable
    ``SPIKEGRAD_MALLOC_TUNING`` is ``0``.
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if os.environ.get(ENV_SWITCH, "1").strip() != "0":
        libc = _libc()
        if libc is not None:
            applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
                bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _state["applied"] = applied
    return applied
