"""Fingerprints of every training step of the default run, to show two code versions do the
same arithmetic step by step (a stronger check than equal final metrics).

    PYTHONPATH=<tree>/src python benchmarks/step_hashes.py OUT.json [--epochs 80] [--threads 2]
    python benchmarks/step_hashes.py --compare A.json B.json

Since the default run gives the same bits in every process (issue 22), a recorded file
stands for its commit: ``benchmarks/step_hashes_base.json.gz`` holds the default run's
hashes on this project's development machine at the commit docs/PERFORMANCE.md names
("Reproducible runs"), so a change is checked with one run of its own tree:

    python benchmarks/step_hashes.py new.json
    python benchmarks/step_hashes.py --compare benchmarks/step_hashes_base.json.gz new.json

(on another machine, record the base commit there: float32 results may differ by CPU).

Runs ``train()`` on the default config (2 torch threads, a run folder beside OUT.json) and
records per training step short hashes of the input batch, the weights before the step, the
logits, the hidden spikes, every gradient and the weights after Adam.  ``--compare`` prints
the first step where two files differ (or that none does) and both runs' final metrics.
Uses only the public API plus two wrappers (training.loss_and_record, Adam.step), so it
runs against older commits too.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path


def _hash(tensors) -> str:
    h = hashlib.md5()
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def record(out: Path, epochs: int, threads: int) -> None:
    import torch

    import spikegrad.training as training
    from spikegrad import Config

    log: list[dict] = []
    loss_and_record, adam_step = training.loss_and_record, torch.optim.Adam.step

    def wrapped_loss(model, x, y, cfg, *rest):
        loss, logits, rec = loss_and_record(model, x, y, cfg, *rest)
        if model.training:
            parts = [x.ptr, x.idx, x.val] if hasattr(x, "ptr") else [x]
            log.append({"x": _hash(parts), "w": _hash(model.parameters()), "logits": _hash([logits]),
                        "spikes": _hash(rec.spikes)})
        return loss, logits, rec

    def wrapped_step(self, *args, **kwargs):
        params = [p for group in self.param_groups for p in group["params"]]
        log[-1]["grads"] = [_hash([p.grad]) for p in params]
        result = adam_step(self, *args, **kwargs)
        log[-1]["after"] = _hash(params)
        return result

    training.loss_and_record = wrapped_loss
    torch.optim.Adam.step = wrapped_step
    run = out.with_suffix(".run")
    shutil.rmtree(run, ignore_errors=True)
    metrics = training.train(Config().with_overrides({"train.epochs": epochs, "train.threads": threads}), run)
    out.write_text(json.dumps({"metrics": {k: v for k, v in metrics.items() if k != "kernels"}, "steps": log}))


def compare(a: Path, b: Path) -> int:
    ra, rb = (json.loads(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_text()) for p in (a, b))
    first = next((i for i, (x, y) in enumerate(zip(ra["steps"], rb["steps"])) if x != y), None)
    print(f"{len(ra['steps'])} and {len(rb['steps'])} steps; first differing step: {first}")
    for name, r in ((a, ra), (b, rb)):
        m = r["metrics"]
        print(f"{name}: test {m['test_accuracy']} val {m['val_accuracy']} loss {m['test_loss']!r} "
              f"spikes {m['hidden_spikes_per_sample']} best {m['best_epoch']}")
    return 0 if first is None and len(ra["steps"]) == len(rb["steps"]) else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", nargs=2, type=Path)
    args = ap.parse_args()
    if args.compare:
        sys.exit(compare(*args.compare))
    record(args.out, args.epochs, args.threads)
