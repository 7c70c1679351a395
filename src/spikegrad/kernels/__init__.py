"""Fast kernels behind the neuron models and the input projection, and the per-call
dispatch that chooses among them (:mod:`.dispatch`)."""

from ..events import EventBatch
from .dispatch import Kernel, LayerResult, backends, register_kernel, run_layer, select_kernel
from .events import EventProjection, sparse_projection
from .fused import FusedLIF, lif_fused, saved_bytes_per_neuron_step
from .options import KernelOptions

__all__ = ["EventBatch", "EventProjection", "FusedLIF", "Kernel", "KernelOptions", "LayerResult", "backends",
           "lif_fused", "register_kernel", "run_layer", "saved_bytes_per_neuron_step", "select_kernel",
           "sparse_projection"]
