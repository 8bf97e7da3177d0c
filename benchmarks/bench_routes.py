"""TwoRoom open-loop check along scripted routes: where the models put the agent against the simulator.

    python benchmarks/bench_routes.py --models runs/old/final runs/new/final [--episodes 20] [--horizon 5]

From each start of the planning list (reset seeds 1000, 1001, ...), a scripted
controller drives two routes for ``horizon`` model steps: through the door to the goal
(it then rests there), and straight at the goal (into the middle wall, where it rests
pressed against it). Each model rolls out the recorded actions from the first image and
proprio; the table gives the mean distance between the predicted proprio position and
the simulator's after model steps 1 .. horizon, and the worst case at the last step.
Then the planning energy (final step, proprio weight 1, towards the goal image) of each
route: the share of starts where the model scores the door route below the straight
one. Every model sees the same routes, in one run.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import envs
from worldjepa.world_model import WorldModel


def drive(env, seed: int, waypoints: list[np.ndarray], steps: int, frameskip: int):
    """Run the route controller from ``reset(seed)``: (first obs, env actions (steps * fs, 2), true xy after each model step)."""
    obs, _ = env.reset(seed=seed)
    p, acts, true = obs["proprio"][:2].copy(), [], []
    wps = [w.copy() for w in waypoints]
    for t in range(steps * frameskip):
        while len(wps) > 1 and np.linalg.norm(p - wps[0]) < 0.03:
            wps.pop(0)
        a = np.clip(20.0 * (wps[0] - p), -1, 1).astype(np.float32)
        o, *_ = env.step(a)
        p = o["proprio"][:2]
        acts.append(a)
        if (t + 1) % frameskip == 0:
            true.append(p.copy())
    return obs, np.array(acts), np.array(true)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=5)
    args = ap.parse_args()
    models = [WorldModel.load(m) for m in args.models]
    for m, path in zip(models, args.models):
        if m.spec.task != "tworoom":
            raise ValueError(f"{path} is a {m.spec.task!r} model; this benchmark is for tworoom")
    fs = models[0].spec.frameskip
    if any(m.spec.frameskip != fs for m in models):
        raise ValueError("the models must share one frameskip")
    env = envs.make("tworoom", max_episode_steps=10_000)
    errs = {(i, r): [] for i in range(len(models)) for r in ("door", "straight")}
    energy = {(i, r): [] for i in range(len(models)) for r in ("door", "straight")}
    for seed in range(1000, 1000 + args.episodes):
        obs, info = env.reset(seed=seed)
        start, goal = obs["proprio"][:2], np.asarray(info["goal_state"])
        side = np.sign(start[0])
        routes = {"door": [np.array([side * 0.1, 0.0]), np.array([-side * 0.1, 0.0]), goal], "straight": [goal]}
        with torch.no_grad():  # the goal image, encoded once per model (not once per route)
            goals = [m.encode_goal(torch.from_numpy(info["goal_pixels"])[None]) for m in models]
        for r, wps in routes.items():
            first, acts, true = drive(env, seed, wps, args.horizon, fs)
            a = torch.from_numpy(acts).view(1, args.horizon, fs * acts.shape[-1])
            for i, m in enumerate(models):
                with torch.no_grad():
                    ctx = m.encode(torch.from_numpy(first["pixels"])[None, None])
                    states, prop = m.rollout(ctx, a, torch.from_numpy(first["proprio"])[None, None])
                    e = m.goal_energy(states, prop, *goals[i], proprio_weight=1.0, all_steps=False)
                errs[(i, r)].append(np.linalg.norm(prop[0, :, :2].numpy() - true, axis=-1))
                energy[(i, r)].append(float(e[0]))
    print(f"tworoom, {args.episodes} starts of the planning list, {args.horizon} model steps ({args.horizon * fs} env steps)")
    print("predicted agent position against the simulator (m), mean after model step 1 .. H; worst at step H")
    for i, path in enumerate(args.models):
        for r in ("door", "straight"):
            e = np.array(errs[(i, r)])
            print(f"{path}  {r:8s}  " + " ".join(f"{x:.3f}" for x in e.mean(0)) + f"  | worst {e[:, -1].max():.3f}")
    print("final-step energy of the routes (mean door / mean straight; share of starts where door < straight)")
    for i, path in enumerate(args.models):
        d, st = np.array(energy[(i, "door")]), np.array(energy[(i, "straight")])
        print(f"{path}  {d.mean():.3f} / {st.mean():.3f}; door preferred in {np.mean(d < st):.0%}")


if __name__ == "__main__":
    main()
