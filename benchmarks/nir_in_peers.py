"""Run an exported NIR file in snnTorch or Norse on a run folder's test data and compare with
spikegrad: differing output spikes and accuracy (spike counts of the last spiking layer).

    python benchmarks/nir_in_peers.py RUN_DIR FILE.nir --peer snntorch [--samples 1000]

The file must end in a spiking layer (the peers import no CubaLI): train with
``--set model.output=spikes`` or export without the readout (the peers' targets' default),
in which case the last hidden layer is compared and no accuracy is given.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import numpy as np
import torch

from spikegrad.interop.nir import from_nir
from spikegrad.training import iterate_batches, load_run


def peer_module(peer: str, path: str, dt: float):
    import nir

    graph = nir.read(path)
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(io.StringIO()):
            return import_from_nir(graph)
    import norse.torch

    return norse.torch.from_nir(graph, dt=dt)


def reset_state(module) -> None:
    """snnTorch's imported neurons (init_hidden) keep their state between calls: clear it
    before each batch, or a batch starts where the last one ended."""
    for sub in module.modules():
        if hasattr(sub, "reset_mem") and hasattr(sub, "init_hidden"):
            sub.reset_mem()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("nir_file")
    ap.add_argument("--peer", choices=("snntorch", "norse"), required=True)
    ap.add_argument("--samples", type=int, default=1000)
    args = ap.parse_args()
    cfg, model, splits = load_run(args.run_dir)
    ours_file = from_nir(args.nir_file)                 # the file in spikegrad
    dt = float(ours_file.params.dt)
    module = peer_module(args.peer, args.nir_file, dt)
    test = splits.test.subset(np.arange(min(args.samples, len(splits.test))))
    differ = spikes = correct_peer = correct_ours = n = 0
    labels_are_classes = True
    with torch.no_grad():
        for x, y in iterate_batches(test, cfg, 250):
            x = x.to_dense() if hasattr(x, "to_dense") else x
            ours = ours_file.run(x)[0]
            out, state = [], None
            reset_state(module)
            for t in range(x.shape[1]):
                o, state = module(x[:, t], state)
                out.append(o)
            theirs = torch.stack(out, 1)
            differ += int((ours != theirs).sum())
            spikes += int(ours.sum() + theirs.sum())
            if model.output_layer is not None and y.dim() == 1:
                correct_ours += int((ours.sum(1).argmax(-1) == y).sum())
                correct_peer += int((theirs.sum(1).argmax(-1) == y).sum())
            else:
                labels_are_classes = False
            n += len(y)
    print(f"{args.peer} ran {args.nir_file} on {n} test samples: {differ} differing spikes "
          f"(of {spikes} in both runs) against spikegrad's run of the same file")
    if labels_are_classes:
        print(f"accuracy from output spike counts: spikegrad {correct_ours / n:.4f}, {args.peer} {correct_peer / n:.4f}")


if __name__ == "__main__":
    main()
