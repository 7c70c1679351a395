"""The one place spikegrad reaches below Optuna's public Study API (sweeps claim WAITING
trials, beat heartbeats and set user attributes of trials they did not ``ask`` for, which
the Study object does not offer).  ``storage_of`` reads the study's private storage
attribute; trial ids come from the storage's public methods.  An Optuna upgrade that
moves either breaks here, and tests/test_sweeps.py says so."""

from __future__ import annotations


def storage_of(study):
    """The storage object ``study`` reads and writes (Optuna keeps it private)."""
    return study._storage


def trial_id(study, trial) -> int:
    """The storage's id of trial ``trial`` (a FrozenTrial) of ``study``."""
    storage = storage_of(study)
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
