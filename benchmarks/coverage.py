"""How much of each task's space the exploration policies cover.

    python benchmarks/coverage.py [--episodes 50] [--out docs/figures/coverage.png]

For each task and policy (random, directed) it collects episodes with the task's
default length and reports: TwoRoom, the share of episodes that cross the door; Push,
the block's displacement per episode (median, share moved > 5 cm); Reach, the share of
the fingertip workspace (2 cm cells inside the reachable disc) visited. Saves histograms.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from worldjepa.data.collect import collect  # noqa: E402
from worldjepa.data.episodes import EpisodeStore  # noqa: E402


def qpos_of(store: EpisodeStore, env) -> list[np.ndarray]:
    return [env.state_qpos(store.load(i)["states"]) for i in range(len(store))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out", default="docs/figures/coverage.png")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    try:
        print(f"{'task':<9}{'policy':<10}{'metric':<44}{'value':>8}")
        for col, name in enumerate(["tworoom", "push", "reach"]):
            env = envs.make(name).unwrapped
            for policy in ("random", "directed"):
                out = f"{tmp}/{name}_{policy}"
                store = collect(name, episodes=args.episodes, out=out, policy=policy, workers=2, episode_len=envs.TASKS[name].max_episode_steps, progress=False)
                qs = qpos_of(store, env)
                if name == "tworoom":
                    crossed = np.mean([len(set(np.sign(q[:, 0]))) > 1 for q in qs])
                    print(f"{name:<9}{policy:<10}{'episodes crossing the door':<44}{crossed:>8.0%}")
                    xs = np.concatenate([q[:, 0] for q in qs])
                    axes[col].hist(xs, bins=40, alpha=0.6, label=f"{policy} ({crossed:.0%} cross)")
                    axes[col].set_xlabel("agent x (door at x = 0)")
                elif name == "push":
                    disp = np.array([np.linalg.norm(q[-1, :2] - q[0, :2]) for q in qs])
                    rot = np.array([abs(envs.tasks.wrap_angle(q[-1, 2] - q[0, 2])) for q in qs])
                    print(f"{name:<9}{policy:<10}{'block displacement, median (m)':<44}{np.median(disp):>8.3f}")
                    print(f"{name:<9}{policy:<10}{'episodes moving the block > 5 cm':<44}{np.mean(disp > 0.05):>8.0%}")
                    print(f"{name:<9}{policy:<10}{'block rotation, median (rad)':<44}{np.median(rot):>8.2f}")
                    axes[col].hist(disp, bins=20, range=(0, 0.4), alpha=0.6, label=policy)
                    axes[col].set_xlabel("block displacement per episode (m)")
                else:
                    tips = np.concatenate([env.fingertip(q[:, :2]) for q in qs])
                    cells = {tuple(c) for c in np.floor(tips / 0.02).astype(int)}
                    grid = np.stack(np.meshgrid(np.arange(-11, 11), np.arange(-11, 11)), -1).reshape(-1, 2)
                    reachable = {tuple(c) for c in grid if np.linalg.norm((c + 0.5) * 0.02) < 0.205}
                    share = len(cells & reachable) / len(reachable)
                    print(f"{name:<9}{policy:<10}{'fingertip workspace cells visited (2 cm)':<44}{share:>8.0%}")
                    r = np.linalg.norm(tips, axis=1)
                    axes[col].hist(r, bins=30, alpha=0.6, label=f"{policy} ({share:.0%} cells)")
                    axes[col].set_xlabel("fingertip distance from base (m)")
            axes[col].set_title(name)
            axes[col].legend()
        fig.tight_layout()
        fig.savefig(args.out, dpi=90)
        print(f"figure: {args.out}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
