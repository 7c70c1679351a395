"""Write a seeded random 9000/1000 split of the real MNIST test set (10k) as the standard
four-file IDX layout: 9000 images as training files, 1000 as test files.

    python experiments/mnist_t10k_split.py ../shared/data/mnist-t10k runs/mnist-split [--seed 0]
"""

import argparse
from pathlib import Path

import numpy as np

from spikegrad.data.mnist import read_idx, write_idx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=9000)
    args = ap.parse_args()
    images = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")
    order = np.random.default_rng(args.seed).permutation(len(labels))
    train, test = np.sort(order[:args.n_train]), np.sort(order[args.n_train:])
    args.out.mkdir(parents=True, exist_ok=True)
    for prefix, idx in (("train", train), ("t10k", test)):
        write_idx(args.out / f"{prefix}-images-idx3-ubyte.gz", images[idx])
        write_idx(args.out / f"{prefix}-labels-idx1-ubyte.gz", labels[idx])
    print(f"wrote {len(train)} training and {len(test)} test images to {args.out}")


if __name__ == "__main__":
    main()
