#!/usr/bin/env bash
# The default `spikegrad train --threads 2` run of a base commit and of this tree, alternating
# (each its own process), ROUNDS rounds; then benchmarks/ab_summary.py prints every run's
# metrics, its median seconds per epoch (epochs 2–80: the numba compile of a fresh tree
# falls in epoch 1) and the ratio of the medians.
#   bash benchmarks/ab_default_run.sh BASE_COMMIT [ROUNDS] [OUT_DIR]
# The base runs from a `git worktree` of BASE_COMMIT (PYTHONPATH=<worktree>/src), this tree
# from a worktree of HEAD, so the working tree may change meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?base commit}"
rounds="${2:-5}"
out="${3:-ab-default-run}"
mkdir -p "$out"
trees="$(mktemp -d)"
git worktree add -f --detach "$trees/base" "$base" >/dev/null
git worktree add -f --detach "$trees/new" HEAD >/dev/null
trap 'git worktree remove --force "$trees/base"; git worktree remove --force "$trees/new"; rm -rf "$trees"' EXIT
echo "base $(git -C "$trees/base" rev-parse --short HEAD), new $(git -C "$trees/new" rev-parse --short HEAD)" | tee "$out/commits.txt"
for r in $(seq 1 "$rounds"); do
  for tree in base new; do
    rm -rf "$out/$tree-$r"
    PYTHONPATH="$trees/$tree/src" python -m spikegrad.cli train --threads 2 --quiet --out "$out/$tree-$r" \
      > "$out/$tree-$r.log" 2>&1
  done
done
python benchmarks/ab_summary.py "$out"
