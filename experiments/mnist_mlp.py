"""Non-spiking baseline: an MLP with the spiking network's hidden size on the same split.

Same files, same validation carve-out (data seed), pixel intensities x = value/256 as
input, ReLU hidden layer, Adam, best-validation epoch reported on test.

    python experiments/mnist_mlp.py runs/mnist-split [--hidden 256 --epochs 30]
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikegrad.data.mnist import read_pair, train_val_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    args = ap.parse_args()

    images, labels = read_pair(args.data_dir, "train", "mnist")
    test_x, test_y = read_pair(args.data_dir, "t10k", "mnist")
    tr, va = train_val_split(len(labels), args.val_fraction, args.data_seed)
    as_x = lambda a: torch.from_numpy(a.astype(np.float32) / 256.0)  # noqa: E731
    xs = {"train": as_x(images[tr]), "val": as_x(images[va]), "test": as_x(test_x)}
    ys = {"train": torch.from_numpy(labels[tr]), "val": torch.from_numpy(labels[va]), "test": torch.from_numpy(test_y)}

    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(xs["train"].shape[1], args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    acc = lambda split: float((model(xs[split]).argmax(1) == ys[split]).float().mean())  # noqa: E731
    best = (-1.0, 0, None)
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(ys["train"]), generator=gen).split(args.batch_size):
            loss = nn.functional.cross_entropy(model(xs["train"][idx]), ys["train"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = acc("val")
            if val > best[0]:
                best = (val, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    with torch.no_grad():
        result = {"model": f"MLP 784-{args.hidden}-10 (ReLU)", "val_accuracy": best[0], "best_epoch": best[1],
                  "test_accuracy": acc("test"), "train_samples": len(tr), "val_samples": len(va)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
