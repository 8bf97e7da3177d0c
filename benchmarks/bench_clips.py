"""Clip-loading throughput (clips/s, T=8, 64x64) from a collected dataset.

    python benchmarks/bench_clips.py [--data DIR] [--episodes 40] [--batches 40]

Collects a Reach dataset if --data is not given. Measures random-access clip loading
through a DataLoader (batch 32): with a cold episode cache (every episode decoded and
checksummed on first touch), with a warm cache, and with 2 loader workers. Compare the
result with the training step's appetite printed by benchmarks/bench_pretrain.py.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import torch

from worldjepa.data.clips import ClipDataset
from worldjepa.data.collect import collect


def rate(ds, batches: int, workers: int, batch_size: int = 32) -> float:
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, generator=g, persistent_workers=False)
    it = iter(loader)
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += batch["frames"].shape[0]
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--batches", type=int, default=40)
    args = ap.parse_args()
    tmp = None
    if args.data is None:
        tmp = tempfile.mkdtemp()
        args.data = tmp + "/reach"
        collect("reach", episodes=args.episodes, out=args.data, workers=2, episode_len=50, progress=False)
    try:
        ds = ClipDataset(args.data, clip_len=8, frameskip=1)
        print(f"dataset: {len(ds.store)} episodes, {len(ds)} clips of T=8 at {ds.meta['image_size']}x{ds.meta['image_size']}")
        cold = rate(ds, args.batches, workers=0)
        warm = rate(ds, args.batches, workers=0)
        two = rate(ClipDataset(args.data, clip_len=8, frameskip=1), args.batches, workers=2)
        print(f"{'loader':<28}{'clips/s':>10}")
        print(f"{'0 workers, cold cache':<28}{cold:>10.0f}")
        print(f"{'0 workers, warm cache':<28}{warm:>10.0f}")
        print(f"{'2 workers, cold cache':<28}{two:>10.0f}")
    finally:
        if tmp:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
