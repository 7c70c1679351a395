"""spikegrad: functional spiking neural networks trained with surrogate gradients."""

from .config import Config, load_config
from .errors import SpikegradError
from .dynamics import ALIFParams, CubaLIFParams, LIFParams, NEURON_MODELS, register_neuron_model, scan
from .events import EventBatch
from .kernels.options import KernelOptions
from .losses import LOSSES, CrossEntropy, VanRossum, register_loss
from .models import MODELS, register_model
from .network import SNN, LIFLayer, Readout, Recording
from .neurons import lif_layer, lif_reference, lif_step
from .registry import Registry
from .optim import OPTIMIZERS, SCHEDULES
from .rules import RULES, register_rule
from .readouts import available_readouts, get_readout, register_readout
from .regularizers import ActivityRegularizer
from .surrogates import available_surrogates, get_surrogate, register_surrogate, spike
from .training import evaluate, evaluate_run, resume, train
from .interop.nir import from_nir, to_nir

__version__ = "0.1.0"

__all__ = [
    "ALIFParams", "ActivityRegularizer", "Config", "CubaLIFParams", "from_nir", "to_nir", "CrossEntropy", "EventBatch", "KernelOptions", "LIFLayer",
    "LIFParams", "LOSSES", "MODELS", "NEURON_MODELS", "OPTIMIZERS", "RULES", "SCHEDULES", "VanRossum",
    "register_loss", "register_model", "Registry", "register_neuron_model", "register_rule", "scan", "Readout", "Recording", "SNN",
    "SpikegradError", "available_readouts", "available_surrogates", "evaluate", "evaluate_run",
    "get_readout", "get_surrogate", "lif_layer", "lif_reference", "lif_step", "load_config",
    "register_readout", "register_surrogate", "resume", "spike", "train",
]
