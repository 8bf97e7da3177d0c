"""Hazard: how precisely world models roll the agent's position out, against simple baselines.

    python benchmarks/bench_hazard_rollout.py --data data/hazard --models runs/a/final,runs/b/final [--horizon 5]

Held-out episodes (the first model's validation split) are cut into clips of ``horizon``
model steps that start on held blocks (every ``frameskip`` env steps). Clips with a gust
(a jump of y by more than 0.12 m within one env step) or a pit anywhere in them are left
out, so that the future is deterministic. For each model, the open-loop rollout of the
recorded actions from the first frame and proprio gives the predicted position after
1..H steps (its proprio head, the prior-mean future for latent models); the figure is the
mean distance from the recorded position. Baselines in the same run: "copy the start",
and a linear least-squares map (proprio, action, 1) -> next proprio fitted on the
training episodes' clean clips and rolled out the same way.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from bench_futures import push_steps  # benchmarks/ is on the path when this script runs

from envs.tasks import HazardEnv
from worldjepa.data.episodes import EpisodeStore
from worldjepa.world_model import WorldModel


def clean_clips(store: EpisodeStore, episodes: list[int], horizon: int, fs: int) -> list[tuple]:
    """(first frame, first proprio, actions (H, fs*A), proprio after each step (H, P))."""
    out = []
    for e in episodes:
        ep = store.load(e)
        for t0 in range(0, len(ep["actions"]) - horizon * fs + 1, fs):
            steps = ep["proprio"][t0 : t0 + horizon * fs + 1, :2]
            if push_steps(steps).any() or HazardEnv.in_pit(steps).any():
                continue
            acts = ep["actions"][t0 : t0 + horizon * fs].reshape(horizon, -1)
            out.append((ep["frames"][t0], ep["proprio"][t0], acts, ep["proprio"][t0 + fs : t0 + horizon * fs + 1 : fs]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", required=True, help="comma-separated world-model checkpoint directories")
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--fit-episodes", type=int, default=600, help="training episodes the linear baseline is fitted on")
    args = ap.parse_args()
    runs = args.models.split(",")
    store = EpisodeStore(args.data)
    with open(os.path.join(runs[0], "meta.json")) as f:
        meta = json.load(f)
    fs, H = int(meta["spec"]["frameskip"]), args.horizon
    test = clean_clips(store, meta["val_episodes"], H, fs)
    if not test:
        raise ValueError(f"no held-out clip of {H} steps without a gust or a pit in {args.data}")
    frames = torch.from_numpy(np.stack([c[0] for c in test]))[:, None]
    p0 = np.stack([c[1] for c in test]).astype(np.float32)
    acts = np.stack([c[2] for c in test]).astype(np.float32)
    truth = np.stack([c[3] for c in test])[..., :2]
    rows = {"copy the start": np.linalg.norm(truth - p0[:, None, :2], axis=-1).mean(0)}
    for r in runs:
        m = WorldModel.load(r).eval()
        with torch.no_grad():
            _, pp = m.rollout(m.encode(frames), torch.from_numpy(acts), torch.from_numpy(p0)[:, None])
        rows[r] = np.linalg.norm(pp.numpy()[..., :2] - truth, axis=-1).mean(0)
    X, Y = [], []
    for c in clean_clips(store, meta["train_episodes"][: args.fit_episodes], H, fs):
        seq = np.concatenate([c[1][None], c[3]])
        for h in range(H):
            X.append(np.concatenate([seq[h], c[2][h], [1.0]]))
            Y.append(seq[h + 1])
    W = np.linalg.lstsq(np.array(X), np.array(Y), rcond=None)[0]
    p, lin = p0.astype(np.float64), []
    for h in range(H):
        p = np.concatenate([p, acts[:, h], np.ones((len(p), 1))], 1) @ W
        lin.append(np.linalg.norm(p[:, :2] - truth[:, h], axis=-1).mean())
    rows["linear least squares"] = np.array(lin)
    print(f"{len(test)} held-out clips without gust or pit; mean position error (m) after each model step")
    print(f"{'':40s}" + "".join(f"{f'h={h + 1}':>8s}" for h in range(H)))
    for name, err in rows.items():
        print(f"{name[-40:]:40s}" + "".join(f"{v:8.4f}" for v in err))


if __name__ == "__main__":
    main()
