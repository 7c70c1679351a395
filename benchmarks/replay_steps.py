"""Replay single training steps in fresh processes and name the first op whose result parts.
Not a test.

    python benchmarks/replay_steps.py [--processes 20] [--threads 1 2] [--steps 4] [--cases ...] [--trace]

Each process builds the default Randman data, then for every case (a learning rule, a
kernel path, an optimiser; ``--cases`` lists them) starts the network from its seed with
the fluctuation-driven init (so that it spikes from the first step), takes the first
``--steps`` shuffled batches (250 samples each) and runs that many steps of the rule,
hashing after each step the gradients and the weights.  The parent compares the processes
per case and thread count: all equal, or the first step that parts and whether its
gradients (forward and backward) or only the weights after the update (the optimiser) part.

``--trace`` also records every aten op (:class:`torch.utils._python_dispatch.TorchDispatchMode`):
a short hash of its inputs and of its outputs, in call order (about 20× slower).  Then the
first op whose *outputs* part while its *inputs* agree is named (``op parts:
aten.sqrt.default``); when the inputs of an op part first, the values came from outside the
dispatcher (a numba kernel, numpy): "inputs of … part".

Prints one line per case and thread count, and exits 1 when any case parted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

# name → config overrides; every case trains the default network unless it says otherwise
CASES = {
    "bptt-adam": {},
    "bptt-adamw": {"train.optimizer": "adamw", "train.weight_decay": 1e-2},
    "bptt-sgd": {"train.optimizer": "sgd", "train.momentum": 0.9},
    "bptt-adam-reference": {"model.backend": "reference", "model.input_path": "dense"},
    "bptt-adam-recurrent": {"model.recurrent": True},
    "bptt-adam-recurrent-reference": {"model.recurrent": True, "model.backend": "reference",
                                      "model.input_path": "dense"},
    "bptt-adam-clip": {"train.clip_grad_norm": 0.01},
    "fa": {"train.rule": "fa", "model.hidden": [64, 64]},
    "fa-kolen-pollack": {"train.rule": "fa", "train.kolen_pollack": 0.01, "model.hidden": [64, 64]},
    "dfa": {"train.rule": "dfa", "model.hidden": [64, 64]},
    "dcll": {"train.rule": "dcll"},
    "rtrl": {"train.rule": "rtrl", "train.batch_size": 25},
    "alif": {"model.neuron": "alif"},
    "cuba-euler": {"model.neuron": "cuba", "model.decays": "euler"},
    "sigmoid-subtract-diff-reset": {"model.surrogate": "sigmoid", "model.reset": "subtract", "model.detach_reset": False},
    "sigmoid-reference": {"model.surrogate": "sigmoid", "model.backend": "reference", "model.input_path": "dense"},
    "regularized-sum-readout": {"regularizer.upper_strength": 0.1, "regularizer.upper_threshold": 1.0,
                                "regularizer.lower_strength": 0.1, "regularizer.lower_threshold": 1e-3,
                                "model.readout": "sum"},
}


def _hash(value) -> str:
    import torch
    from torch.utils._pytree import tree_flatten

    h = hashlib.md5()
    for t in tree_flatten(value)[0]:
        if isinstance(t, torch.Tensor) and t.layout == torch.strided:
            h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


def worker(threads: int, steps: int, cases: list[str], out: Path, trace: bool) -> None:
    import numpy as np
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from spikegrad import Config
    from spikegrad.allocator import tune_allocator
    from spikegrad.data import load_dataset
    from spikegrad.losses import make_loss
    from spikegrad.optim import make_optimizer
    from spikegrad.rules import make_rule
    from spikegrad.training import init_model, iterate_batches, loss_and_record

    tune_allocator()
    torch.set_num_threads(threads)
    log: list = []

    class Trace(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            before = _hash((args, kwargs))
            result = func(*args, **kwargs)
            log.append((str(func), before, _hash(result)))
            return result

    splits = load_dataset(Config())
    results = {}
    for name in cases:
        cfg = Config().with_overrides({"model.init": "fluctuation", **CASES[name], "train.threads": threads})
        cfg.validate()
        model = init_model(cfg, splits)
        loss = make_loss(cfg)
        rule = make_rule(cfg, lambda m, x, y, cfg=cfg, loss=loss: loss_and_record(m, x, y, cfg, loss))
        opt = make_optimizer(cfg, model)
        rng = np.random.default_rng(cfg.train.seed)
        batches = iterate_batches(splits.train, cfg, cfg.train.batch_size, rng)
        log.clear()
        per_step = []
        with Trace() if trace else nullcontext():
            for _, batch in zip(range(steps), batches):
                rule.step(model, batch, opt)
                params = list(model.parameters())
                per_step.append((_hash([p.grad for p in params if p.grad is not None]), _hash(params)))
        results[name] = {"weights": per_step[-1][1], "steps": per_step, "ops": list(log)}
    out.write_text(json.dumps(results))


def first_parting(runs: list[dict]) -> str:
    """Where the processes first part, in words."""
    for k, records in enumerate(zip(*(r["steps"] for r in runs))):
        if len(set(records)) > 1:
            what = "the gradients" if len({g for g, _ in records}) > 1 else "the update (same gradients)"
            break
    else:
        k, what = None, "no step"
    for i, records in enumerate(zip(*(r["ops"] for r in runs))):
        if len({r[2] for r in records}) > 1 or len({r[0] for r in records}) > 1:
            op = records[0][0]
            if len({r[1] for r in records}) == 1:
                return f"step {k}: {what}; op parts: {op} (call {i}; same inputs, {len({r[2] for r in records})} outputs)"
            return f"step {k}: {what}; inputs of {op} part (call {i}): computed outside the dispatcher before it"
    return f"step {k}: {what}" + ("; the traced ops agree" if runs[0]["ops"] else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--trace", action="store_true", help="trace every aten op (slow) to name the op that parts")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--worker", nargs=2, metavar=("THREADS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(int(args.worker[0]), args.steps, args.cases, Path(args.worker[1]), args.trace)
        return 0
    from rich.progress import Progress

    parted = False
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            files = []
            with Progress() as bar:
                task = bar.add_task(f"{threads} thread(s)", total=args.processes)
                for p in range(args.processes):
                    f = Path(tmp) / f"t{threads}-{p}.json"
                    subprocess.run([sys.executable, __file__, "--worker", str(threads), str(f), "--steps",
                                    str(args.steps), *(["--trace"] if args.trace else []), "--cases", *args.cases],
                                   check=True)
                    files.append(json.loads(f.read_text()))
                    bar.advance(task)
            for name in args.cases:
                outcomes = Counter(r[name]["weights"] for r in files)
                ops = len(files[0][name]["ops"])
                if len(outcomes) == 1:
                    print(f"{threads} thread(s)  {name:32s} {args.processes}/{args.processes} identical "
                          f"({args.steps} steps{f', {ops} ops traced' if ops else ''}, weights {next(iter(outcomes))})")
                else:
                    parted = True
                    where = first_parting([r[name] for r in files])
                    print(f"{threads} thread(s)  {name:32s} {len(outcomes)} outcomes {sorted(outcomes.values())}: "
                          f"{where}")
    return 1 if parted else 0


if __name__ == "__main__":
    sys.exit(main())
