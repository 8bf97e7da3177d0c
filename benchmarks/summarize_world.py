"""Tables for docs/BENCHMARKS.md from the runs of benchmarks/world_pipeline.sh.

    python benchmarks/summarize_world.py [RUNS_ROOT]

Prints, per task, the open-loop latent and probe errors at horizons 1, 5, 10 against
copy-last and shuffled actions (with ratios), and the K / recipe ablation on Reach with
rollout speed (300 candidates x horizon 5, KV cache) measured here for each model.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch

from worldjepa.world_model import WorldModel


def rollout_speed(wm: WorldModel, n: int = 300, h: int = 5) -> float:
    k, d = wm.pred_cfg.tokens_per_state, wm.enc_cfg.dim
    s = torch.randn(n, 1, k, d)
    a = torch.rand(n, h, wm.action_dim) * 2 - 1
    p = torch.randn(n, 1, wm.spec.proprio_dim) if wm.spec.proprio_dim else None
    with torch.no_grad():
        wm.rollout(s, a, p)
        t = time.perf_counter()
        wm.rollout(s, a, p)
        return n * h / (time.perf_counter() - t)


def main() -> None:
    runs = sys.argv[1] if len(sys.argv) > 1 else "runs"
    print("| task | h | latent L1: model | copy-last | shuffled | copy/model | shuffled/model | probe error (m): model | copy-last | shuffled |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task in ("reach", "tworoom", "push"):
        path = os.path.join(runs, f"world_{task}", "rollout_eval.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        for h in (1, 5, 10):
            lat, pr = r["latent"], r["probe_m"]
            m, c, s = lat["model"][h - 1], lat["copy_last"][h - 1], lat["shuffled"][h - 1]
            print(
                f"| {task} ({r['probe_name']}) | {h} | {m:.4f} | {c:.4f} | {s:.4f} | {c / m:.2f} | {s / m:.2f} | {pr['model'][h - 1]:.4f} | {pr['copy_last'][h - 1]:.4f} | {pr['shuffled'][h - 1]:.4f} |"
            )
    print()
    print("| Reach model | latent L1 h=1 / 5 / 10 | probe error (m) h=1 / 5 / 10 | copy-last probe h=10 | rollout steps/s (300 x 5) |")
    print("|---|---|---|---|---|")
    for name, label in (
        ("abl_reach_K1", "frozen, K=1"),
        ("abl_reach_K4", "frozen, K=4"),
        ("abl_reach_K16", "frozen, K=16"),
        ("abl_reach_K0", "frozen, K=all 64"),
        ("abl_reach_joint", "joint from scratch, K=1"),
    ):
        path = os.path.join(runs, name, "rollout_eval.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        lat, pr = r["latent"]["model"], r["probe_m"]["model"]
        speed = rollout_speed(WorldModel.load(os.path.join(runs, name, "final")))
        print(
            f"| {label} | {lat[0]:.4f} / {lat[4]:.4f} / {lat[9]:.4f} | {pr[0]:.4f} / {pr[4]:.4f} / {pr[9]:.4f} | {r['probe_m']['copy_last'][9]:.4f} | {speed:.0f} |"
        )


if __name__ == "__main__":
    main()
