"""Fast kernels behind :func:`spikegrad.neurons.lif_layer` and :func:`spikegrad.neurons.project_input` (issue 5)."""

from .events import EventBatch, EventProjection, sparse_projection
from .fused import FusedLIF, lif_fused, saved_bytes_per_neuron_step

__all__ = ["EventBatch", "EventProjection", "FusedLIF", "lif_fused", "saved_bytes_per_neuron_step",
           "sparse_projection"]
