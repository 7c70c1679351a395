"""One registry type for every named part: lookups, duplicates, suggestions, order."""

import pytest

from spikegrad import NEURON_MODELS, Registry, SpikegradError
from spikegrad.data import DATASETS
from spikegrad.paper_figures import FIGURES
from spikegrad.readouts import READOUTS
from spikegrad.surrogates import SURROGATES


def test_lookup_duplicate_and_suggestion():
    reg = Registry("widget")
    reg.add("alpha", 1)
    reg.register("beta")(2)
    assert reg.get("alpha") == 1 and reg["beta"] == 2 and "alpha" in reg and len(reg) == 2
    assert [name for name, _ in reg.items()] == ["alpha", "beta"]       # registration order
    with pytest.raises(SpikegradError, match="widget 'alpha' is already registered"):
        reg.add("alpha", 3)
    with pytest.raises(SpikegradError, match=r"unknown widget 'alpah' \(did you mean 'alpha'\?\); "
                                             r"choose one of: alpha, beta"):
        reg.get("alpah")
    with pytest.raises(SpikegradError, match=r"^unknown widget 'zzz'; choose one of: alpha, beta$"):
        reg.get("zzz")
    assert reg.get("zzz", None) is None
    assert reg.remove("beta") == 2 and reg.names() == ["alpha"]


@pytest.mark.parametrize("registry,kind,typo", [
    (SURROGATES, "surrogate", "superspkie"), (READOUTS, "readout", "mx"), (NEURON_MODELS, "neuron model", "alf"),
    (DATASETS, "dataset", "randmann"), (FIGURES, "figure", "fig33")])
def test_every_named_part_uses_the_registry(registry, kind, typo):
    assert isinstance(registry, Registry) and registry.kind == kind
    with pytest.raises(SpikegradError, match=rf"unknown {kind} '{typo}' \(did you mean '.+'\?\); choose one of: "):
        registry.get(typo)
