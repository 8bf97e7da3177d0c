"""Env step + render time per task, and collection throughput with 1 and 2 workers.

    python benchmarks/bench_envs.py [--steps 500] [--episodes 8]

Prints ms per env step (physics only, and physics + 64x64 render + info) for each task,
then frames/s of `collect` with 1 and 2 workers on the same task, side by side.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time

import numpy as np

import envs
from worldjepa.data.collect import collect


def step_times(name: str, steps: int) -> tuple[float, float]:
    env = envs.make(name, max_episode_steps=10**9).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps,) + env.action_space.shape).astype(np.float32)
    for a in actions[:20]:  # warm up the renderer
        env.step(a)
    import mujoco

    t = time.perf_counter()
    for a in actions:
        env.data.ctrl[:] = a
        mujoco.mj_step(env.model, env.data, nstep=env.frame_skip * env.action_repeat)
    physics = (time.perf_counter() - t) / steps * 1e3
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    full = (time.perf_counter() - t) / steps * 1e3
    env.close()
    return physics, full


def collect_rate(name: str, episodes: int, workers: int, episode_len: int) -> float:
    out = tempfile.mkdtemp()
    try:
        t = time.perf_counter()
        collect(name, episodes=episodes, out=out + "/ds", workers=workers, episode_len=episode_len, progress=False)
        return episodes * episode_len / (time.perf_counter() - t)
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--episodes", type=int, default=8)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores")
    print(f"{'task':<10}{'physics ms/step':>18}{'step+render ms':>18}")
    for name in envs.TASKS:
        p, f = step_times(name, args.steps)
        print(f"{name:<10}{p:>18.2f}{f:>18.2f}")
    print(f"\n{'task':<10}{'1 worker fr/s':>15}{'2 workers fr/s':>16}{'ratio':>8}   ({args.episodes} episodes, directed policy)")
    for name, spec in envs.TASKS.items():
        r1 = collect_rate(name, args.episodes, 1, spec.max_episode_steps)
        r2 = collect_rate(name, args.episodes, 2, spec.max_episode_steps)
        print(f"{name:<10}{r1:>15.0f}{r2:>16.0f}{r2 / r1:>8.2f}")


if __name__ == "__main__":
    main()
