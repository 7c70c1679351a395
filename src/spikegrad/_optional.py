"""Optional dependencies: what ``pip install spikegrad`` leaves out, and the one error that
says which extra brings it.

The main job (``spikegrad train`` on the generated and IDX data sets, evaluation, the API)
needs only the core dependencies.  Everything else is an extra, imported where it is used:

==========  ===========================  ==========================================
extra       packages                     for
==========  ===========================  ==========================================
sweeps      optuna                       ``spikegrad sweep`` and its tables, reports
figures     matplotlib, scipy            figures, activity snapshots, figure 9's fit
data        h5py                         SHD / SSC and the audio caches (HDF5 files)
audio       soundfile, soxr (and h5py)   RawHD / RawSC from WAV files
nir         nir                          ``spikegrad export --nir`` / ``import``
==========  ===========================  ==========================================
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import SpikegradError

EXTRAS = {"optuna": "sweeps", "matplotlib": "figures", "scipy": "figures", "h5py": "data",
          "soundfile": "audio", "soxr": "audio", "nir": "nir"}


def need(module: str, purpose: str) -> ModuleType:
    """``import module``, or one SpikegradError naming what needs it and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        hint = f"pip install 'spikegrad[{extra}]'" if extra else f"pip install {top}"
        raise SpikegradError(f"{purpose} needs the package {top}, which is not installed; install it with: {hint}") \
            from None
