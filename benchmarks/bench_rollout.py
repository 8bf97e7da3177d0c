"""Predictor rollout speed: 300 candidates x horizon 5, with and without the KV cache.

    python benchmarks/bench_rollout.py [--candidates 300] [--horizon 5] [--repeats 3]

Uses the default predictor sizes (configs/predictor/default.yaml) on the tiny encoder's
width, for K = 1, 4, 16 and all 64 patches, and prints model steps per second
(candidates x horizon / wall time) for both rollouts in one run, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from worldjepa.models.predictor import ACPredictor, PredictorConfig


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    N, H = args.candidates, args.horizon
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {N} candidates x horizon {H}, context 1 step")
    print(f"{'K':>4}{'tokens/step':>13}{'cached steps/s':>16}{'uncached steps/s':>18}{'speed-up':>10}")
    for K in (1, 4, 16, 0):
        torch.manual_seed(0)
        cfg = PredictorConfig(enc_dim=192, grid=8, num_state_tokens=K, action_dim=2, proprio_dim=4, dim=192, depth=4, heads=4)
        pred = ACPredictor(cfg).eval()
        s = torch.randn(N, 1, cfg.tokens_per_state, 192)
        a = torch.rand(N, H, 2) * 2 - 1
        p = torch.randn(N, 1, 4)
        with torch.no_grad():
            tc = timed(lambda pred=pred, s=s, a=a, p=p: pred.rollout(s, a, p, use_cache=True), args.repeats)
            tu = timed(lambda pred=pred, s=s, a=a, p=p: pred.rollout(s, a, p, use_cache=False), args.repeats)
        print(f"{K or 64:>4}{cfg.block_size:>13}{N * H / tc:>16.0f}{N * H / tu:>18.0f}{tu / tc:>10.2f}")


if __name__ == "__main__":
    main()
