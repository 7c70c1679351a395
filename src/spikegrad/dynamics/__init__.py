"""Neuron models as pure equations: parameter and state records, initial state, step
function (:mod:`.base`), the generic reference scan (:mod:`.scan`), LIF (:mod:`.lif`) and
adaptive LIF (:mod:`.alif`), the peer-compatible current-based LIF (:mod:`.cuba`).  Models are chosen by name from :data:`NEURON_MODELS`."""

from .base import (NEURON_MODELS, Feedback, NeuronModel, feedback_matmul, get_neuron_model, model_of,
                   recurrent_current, register_neuron_model)
from .lif import LIF, LIFParams, LIFState
from .alif import ALIF, ALIFParams, ALIFState
from .cuba import CUBA, CubaLIFParams, CubaLIFState
from .scan import scan

__all__ = ["ALIF", "ALIFParams", "ALIFState", "CUBA", "CubaLIFParams", "CubaLIFState", "Feedback", "LIF", "LIFParams", "LIFState", "NEURON_MODELS",
           "NeuronModel", "feedback_matmul", "recurrent_current", "get_neuron_model", "model_of", "register_neuron_model", "scan"]
