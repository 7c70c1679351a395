"""``train.threads`` holds for the whole run: starting numba's thread pool (the first
parallel kernel call) does not change torch's thread count."""

import subprocess
import sys

_RUN = r"""
import torch
import spikegrad.rules.bptt as bptt
from spikegrad import Config, train
seen = []
step = bptt.BPTT.step
def counting(self, *args):
    seen.append(torch.get_num_threads())
    return step(self, *args)
bptt.BPTT.step = counting
cfg = Config().with_overrides({"data.randman.classes": 3, "data.randman.train_per_class": 40,
                               "data.randman.val_per_class": 10, "data.randman.test_per_class": 10,
                               "model.hidden": [16], "train.epochs": 2, "train.batch_size": 30,
                               "train.threads": 1})
metrics = train(cfg)
print(sorted(set(seen)), torch.get_num_threads(), metrics["kernels"][0]["input_path"])
"""


def test_a_one_thread_run_keeps_one_torch_thread_after_numbas_pool_starts():
    # a fresh process: in this one numba's pool may already have started
    out = subprocess.run([sys.executable, "-c", _RUN], capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "events"          # the run called the parallel event kernels
    assert out[:-1] == ["[1]", "1"]     # every step, and after the run, one torch thread
