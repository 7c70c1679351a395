"""The malloc settings (spikegrad.allocator): big tensors reuse freed memory instead of
page-faulting fresh pages, and the environment switch turns it off."""

import json
import os
import subprocess
import sys

import pytest

from spikegrad import allocator

PROBE = r"""
import json, resource, sys
import torch
from spikegrad.allocator import tune_allocator
applied = tune_allocator()
def churn():
    # the pattern of a training step: big tensors made, used and freed.  48 MiB: above
    # glibc's largest dynamic mmap threshold (32 MiB), so without the settings every one
    # is a fresh mapping whatever glibc learnt before (smaller blocks fault too, but only
    # when glibc trims its heap, which depends on the history).
    for _ in range(5):
        a = torch.ones(12 << 20)           # 48 MiB each
        b = a + 1.0
        del a, b
churn()                                    # first rounds: the heap grows (faults either way);
churn()                                    # how many rounds it takes to settle depends on what the
                                           # process allocated before (imports): two, measured
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults}))
"""


def _probe(switch: str) -> dict:
    env = dict(os.environ, **{allocator.ENV_SWITCH: switch})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(allocator._libc() is None, reason="needs Linux with glibc")
def test_tuned_allocator_reuses_freed_big_blocks():
    tuned, plain = _probe("1"), _probe("0")
    assert tuned["applied"] is True and plain["applied"] is False
    # glibc maps and unmaps each of the 10 tensors: at least one fault per page of each
    # (4 KiB pages: 122880 measured; 2 MiB transparent huge pages would give ≥ 240)
    assert plain["faults"] >= 10 * (48 << 20) // (2 << 20)
    # with the settings they come from the process's heap: measured 0, at times one
    # tensor's pages — at most a fifth of the plain count
    assert tuned["faults"] <= plain["faults"] // 5


def test_switch_off_and_once_per_process(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {})
    monkeypatch.setenv(allocator.ENV_SWITCH, "0")
    assert allocator.tune_allocator() is False
    monkeypatch.setenv(allocator.ENV_SWITCH, "1")
    assert allocator.tune_allocator() is False  # decided once per process
