"""Push: the one-step latent error of a world model, split by what moved in that step.

    python benchmarks/bench_push_motion.py --run runs/world_push [--clips 400]

Takes held-out clips of one model step (the run's own validation episodes, as the
training run's open-loop evaluation does), predicts the next pooled state tokens, and
sets the model's L1 error beside copy-last's for three kinds of step, read from the
simulator states: nothing moved (pusher < 5 mm, block < 2 mm), only the pusher moved, and
the block moved. Copy-last's error in the first kind is the floor that two nearly equal
frames leave in the target; in the second, the pusher's move follows from the action
alone, so a model that uses its actions should beat copy-last there clearly.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

import envs
from worldjepa.eval.rollout_eval import held_out_clips
from worldjepa.train.checkpoint import read_meta
from worldjepa.world_model import WorldModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a Push world-model run directory (with final/)")
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ckpt = os.path.join(args.run, "final")
    meta = read_meta(ckpt)  # a clear error for a missing or corrupt checkpoint
    wm = WorldModel.load(ckpt).eval()
    if wm.spec.task != "push":
        raise SystemExit(f"{args.run} is a {wm.spec.task!r} model; this benchmark reads Push's block and pusher")
    env = envs.make("push").unwrapped
    C, T, _, _, b = held_out_clips(wm, meta["data"], meta["val_episodes"], 1, args.clips, args.seed, "cpu")
    z, a, p = b["z"], b["actions"], b["proprio"]
    with torch.no_grad():
        pred, _ = wm.rollout(z[:, :C], a[:, C - 1 : T - 1], p[:, :C] if wm.spec.proprio_dim else None, context_actions=a[:, : C - 1] if C > 1 else None)
    truth = z[:, C:]
    model = (pred - truth).abs().mean(dim=(1, 2, 3)).numpy()
    copy = (z[:, C - 1 : C] - truth).abs().mean(dim=(1, 2, 3)).numpy()
    ts = env.task_state(b["states"].numpy().astype(np.float64))
    block = np.linalg.norm(ts["block"][:, C] - ts["block"][:, C - 1], axis=-1)
    pusher = np.linalg.norm(ts["pusher"][:, C] - ts["pusher"][:, C - 1], axis=-1)
    print(f"{args.run}: {len(model)} held-out one-step clips; pooled-latent L1 (ratio = copy-last / model, above 1 is better)")
    print(f"  {'step':34s} {'clips':>5s} {'model':>7s} {'copy-last':>9s} {'ratio':>6s}")
    kinds = (
        ("all", np.ones_like(block, dtype=bool)),
        ("nothing moved", (pusher < 0.005) & (block < 0.002)),
        ("only the pusher moved", (pusher >= 0.005) & (block < 0.002)),
        ("the block moved (>= 2 mm)", block >= 0.002),
    )
    rng = np.random.default_rng(args.seed)
    for name, m in kinds:
        if m.any():
            print(f"  {name:34s} {m.sum():5d} {model[m].mean():7.4f} {copy[m].mean():9.4f} {copy[m].mean() / model[m].mean():6.2f}")
    # how sure the overall ratio is: the clips resampled (bootstrap), and the share of clips the model wins
    idx = rng.integers(0, len(model), (2000, len(model)))
    boot = copy[idx].mean(1) / model[idx].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(
        f"  all clips: ratio 95 % interval {lo:.2f}-{hi:.2f} (bootstrap over clips); the model is nearer the truth than copy-last in {(model < copy).mean():.0%} of them"
    )


if __name__ == "__main__":
    main()
