"""Goal read-out error: the MLP proprio decoder against the fitted ridge read-out, side by side.

    python benchmarks/bench_readout.py --env tworoom --model runs/world_tworoom/final [--episodes 50]

The images are the goal images of the planning list (reset seeds 1000, 1001, ...), the
ones the planner reads its goal proprio from. The error is in the task's own units: the
distance between where the read proprio puts the agent (TwoRoom, Hazard) or the
fingertip (Reach) and where the goal has it. The model needs a fitted read-out
(``worldjepa readout <ckpt>``; ``worldjepa train`` fits one at the end).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import envs
from worldjepa.world_model import WorldModel


def goal_error(task: str, env, proprio: np.ndarray, goal_state: np.ndarray) -> float:
    """Task-unit distance between the pose a proprio vector shows and the goal's."""
    if task == "reach":  # (cos q1, sin q1, cos q2, sin q2, ...) -> joint angles
        q = np.arctan2(proprio[[1, 3]], proprio[[0, 2]])
        return env.goal_distance(q, goal_state)
    return float(np.linalg.norm(proprio[:2] - np.asarray(goal_state)))  # point mass: (x, y, ...)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", required=True, choices=("reach", "tworoom", "hazard"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--episodes", type=int, default=50)
    args = ap.parse_args()
    wm = WorldModel.load(args.model)
    if wm.readout is None:
        raise SystemExit(f"{args.model} has no fitted read-out: run `worldjepa readout {args.model}` first")
    env = envs.make(args.env).unwrapped
    errs = {"MLP decoder": [], "read-out (planner)": []}
    for seed in range(1000, 1000 + args.episodes):
        _, info = env.reset(seed=seed)
        with torch.no_grad():
            patches = wm.encoder.encode_frames(torch.from_numpy(info["goal_pixels"])[None, None])[0]  # (1, N, D)
            mlp, ro = wm.decode_proprio(patches)[0].numpy(), wm.read_proprio(patches)[0].numpy()
        errs["MLP decoder"].append(goal_error(args.env, env, mlp, info["goal_state"]))
        errs["read-out (planner)"].append(goal_error(args.env, env, ro, info["goal_state"]))
    thr = env.success_threshold
    print(f"{args.env}, {args.episodes} goal images of the planning list; success threshold {thr} m")
    print(f"{'read by':<20} {'mean (m)':>9} {'median':>8} {'max':>7} {'share < threshold':>18}")
    for name, e in errs.items():
        e = np.asarray(e)
        print(f"{name:<20} {e.mean():9.4f} {np.median(e):8.4f} {e.max():7.3f} {np.mean(e < thr):18.2f}")
    a, b = (np.mean(v) for v in errs.values())
    print(f"mean error ratio MLP / read-out: {a / b:.1f}x")


if __name__ == "__main__":
    main()
