"""Hazard: what a latent model's sampled futures say about fixed routes, against the simulator.

    python benchmarks/bench_hazard_routes.py --model runs/world_hazard/final [--seeds 1001,1002] [--k 64] [--runs 100] [--latent-weight 1]

From the start of each planning-list episode (reset seeds), six routes of five held
actions (25 env steps): straight across (through the gust strip), across at the strip's
edge on the start's side, round above and round below the pits, a corridor between
strip and pit, and staying put. For each,
``k`` futures sampled from the model's prior give the share of futures that end in a
pit and the energies the planner would aggregate (mean and CVaR 0.25 of the final-step
energy to the goal image); ``runs`` simulator runs with different gust draws give the
true share trapped and the true final distance. A risk-aware planner can only avoid
what the samples show: compare the two "in a pit" columns. "model dist" is the distance
from the goal of where the futures end (their mean final position, untrapped futures
only), to compare with the simulator's final distance; the goal image's read-out
position is printed against the true goal.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import envs
from envs.tasks import HazardEnv
from planners.risk import aggregate
from worldjepa.world_model import WorldModel


def routes(sx: float, y0: float = 0.0) -> dict[str, list[list[float]]]:
    """Held env actions, five model steps each; ``sx`` is the direction of the goal in x,
    ``y0`` the start's y (the "edge" route first moves to y = +-0.09, the strip's edge on
    the start's side, then goes straight across: a push towards the near pit traps, one
    away from it does not, so the simulator traps half of its runs)."""
    edge_y = 0.09 if y0 >= 0 else -0.09
    return {
        "straight": [[sx, 0]] * 5,
        "edge": [[0.3 * sx, float(np.clip((edge_y - y0) / 0.25, -1, 1))]] + [[sx, 0]] * 4,
        "round above": [[0.2 * sx, 1], [sx, 0.6], [sx, 0], [0.6 * sx, -1], [0, -0.6]],
        "round below": [[0.2 * sx, -1], [sx, -0.6], [sx, 0], [0.6 * sx, 1], [0, 0.6]],
        "corridor": [[0.3 * sx, 0.65], [sx, 0], [sx, 0], [0.3 * sx, -0.65], [0, 0]],
        "stay": [[0, 0]] * 5,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seeds", default="1001")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--proprio-scale", default="decoder", help="decoder | readout (energy_proprio_scale)")
    ap.add_argument("--latent-weight", type=float, default=1.0, help="weight of the pooled-latent term of the energy (energy_latent_weight)")
    args = ap.parse_args()
    m = WorldModel.load(args.model)
    if m.spec.task != "hazard" or m.latent is None:
        raise ValueError(f"{args.model} must be a hazard model with a latent variable (predictor.z_dim > 0)")
    fs = m.spec.frameskip
    env = envs.make("hazard", max_episode_steps=10_000)
    for seed in (int(s) for s in args.seeds.split(",")):
        obs, info = env.reset(seed=seed)
        goal_xy = np.asarray(info["goal_state"])
        with torch.no_grad():
            goal, gp = m.encode_goal(torch.from_numpy(info["goal_pixels"])[None])
            ctx = m.encode(torch.from_numpy(obs["pixels"])[None, None])
        prop = torch.from_numpy(obs["proprio"])[None, None]
        print(
            f"seed {seed}: start {obs['proprio'][:2].round(2)}, goal {goal_xy.round(2)} (read from the goal image: {gp[0, :2].numpy().round(3)}); "
            f"{args.k} sampled futures, {args.runs} simulator runs"
        )
        print(f"{'route':12s} {'model: in a pit':>16s} {'model dist':>10s} {'E mean':>7s} {'E cvar.25':>9s} | {'true: trapped':>13s} {'final dist':>10s}")
        for name, r in routes(float(np.sign(goal_xy[0] - obs["proprio"][0])), float(obs["proprio"][1])).items():
            a = m.hold(torch.tensor(r, dtype=torch.float32))[None]
            s, p = m.sample_futures(ctx, a, args.k, prop, generator=torch.Generator().manual_seed(0))
            e = m.goal_energy(
                s[0],
                p[0],
                goal.expand(args.k, -1, -1),
                gp,
                proprio_weight=1.0,
                all_steps=False,
                latent_weight=args.latent_weight,
                proprio_scale=args.proprio_scale,
            )
            end = p[0, :, -1, :2].numpy()
            pit = HazardEnv.in_pit(end)
            in_pit = pit.mean()
            free = end[~pit] if (~pit).any() else end
            mdist = float(np.linalg.norm(free.mean(0) - goal_xy[:2]))
            trapped, dist = [], []
            for i in range(args.runs):
                env.reset(seed=seed)
                env.unwrapped.np_random = np.random.default_rng(i)  # a different gust draw per run
                for act in r:
                    for _ in range(fs):
                        _, _, _, _, inf = env.step(np.array(act, dtype=np.float32))
                trapped.append(inf["trapped"])
                dist.append(inf["distance"])
            cvar = aggregate(e[None], "cvar", 0.0, 0.25).item()
            print(f"{name:12s} {in_pit:16.2f} {mdist:10.3f} {e.mean():7.3f} {cvar:9.3f} | {np.mean(trapped):13.2f} {np.mean(dist):10.3f}")


if __name__ == "__main__":
    main()
