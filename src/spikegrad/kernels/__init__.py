"""Fast LIF layer kernels behind :func:`spikegrad.neurons.lif_layer` (issue 5)."""

from .fused import FusedLIF, lif_fused, saved_bytes_per_neuron_step

__all__ = ["FusedLIF", "lif_fused", "saved_bytes_per_neuron_step"]
