"""Hazard: which route a model's futures prefer from each episode's start, against the simulator.

    python benchmarks/bench_hazard_choice.py --models runs/a/final,runs/b/final [--episodes 50] [--k 16] [--runs 64]

A quick read-out meant to stand in for 50 planning episodes (20 min a model on this CPU).
From the start of each planning-list episode (reset seeds 1000, 1001, ...), the four
routes of ``bench_hazard_routes.py`` (straight across the gust strip, round above, round
below, the corridor) are scored twice:

* by the model, as ``worldjepa plan env=hazard`` scores a candidate with Hazard's
  defaults: the proprio term over the goal read-out plus the pooled-latent term, averaged
  over the plan's steps, aggregated over ``k`` sampled futures (CVaR 0.25, and the mean);
* by the simulator: the distance to the goal averaged over the same steps, over ``runs``
  gust draws, with the same aggregate; and the share of draws that end in a pit.

Printed per model, every model on the same starts: how often the route the model prefers
is the simulator's, how often it is a risky one (trapped in at least 25 % of the
simulator's draws), the mean trapped share of the routes it prefers, how often it prefers
the straight route, and the share of the straight route's futures that end in a pit
(against the simulator's share of draws).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_hazard_routes import routes

import envs
from envs.tasks import HazardEnv
from planners.risk import aggregate
from worldjepa.world_model import WorldModel

RISKY = 0.25  # a route is risky when at least this share of the simulator's gust draws ends in a pit
ROUTES = ("straight", "round above", "round below", "corridor")


def simulated(env, seed: int, route: list[list[float]], fs: int, runs: int, goal_xy: np.ndarray) -> tuple[np.ndarray, float]:
    """The simulator's energies of one route from the start of episode ``seed``: the
    distance to the goal averaged over the model steps, one per gust draw (runs,), and the
    share of draws that end in a pit."""
    sim = env.unwrapped
    env.reset(seed=seed)
    start = sim.snapshot()
    energies, trapped = [], []
    for i in range(runs):
        sim.restore(start, rng=np.random.default_rng(i))
        dist = []
        for act in route:
            for _ in range(fs):
                xy = sim.simulate(np.asarray(act, dtype=np.float32))
            dist.append(np.linalg.norm(xy - goal_xy))
        energies.append(np.mean(dist))
        trapped.append(sim.snapshot()["trapped_at"] is not None)
    return np.asarray(energies), float(np.mean(trapped))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="comma list of hazard world-model checkpoint dirs with a latent variable")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--k", type=int, default=16, help="sampled futures per route")
    ap.add_argument("--runs", type=int, default=64, help="simulator gust draws per route")
    ap.add_argument("--alpha", type=float, default=0.25, help="CVaR level")
    ap.add_argument("--proprio-weight", type=float, default=1.0, help="energy_proprio_weight (Hazard's default)")
    ap.add_argument("--latent-weight", type=float, default=1.0, help="energy_latent_weight (Hazard's default)")
    ap.add_argument("--all-steps", type=float, default=1.0, help="energy_all_steps (Hazard's default)")
    args = ap.parse_args()
    if args.k < 1 or args.runs < 1 or args.episodes < 1:
        raise ValueError(f"--k, --runs and --episodes must be >= 1, got {args.k}, {args.runs}, {args.episodes}")
    models = {}
    for path in args.models.split(","):
        m = WorldModel.load(path)
        if m.spec.task != "hazard" or m.latent is None:
            raise ValueError(f"{path} must be a hazard model with a latent variable (predictor.z_dim > 0)")
        models[path] = m
    fs = next(iter(models.values())).spec.frameskip
    env = envs.make("hazard", max_episode_steps=10_000)
    seeds = range(1000, 1000 + args.episodes)
    truth = {}  # seed -> (cvar energy per route, mean energy per route, trapped share per route)
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        goal_xy = np.asarray(info["goal_state"])[:2]
        rs = routes(float(np.sign(goal_xy[0] - obs["proprio"][0])))
        sims = [simulated(env, seed, rs[name], fs, args.runs, goal_xy) for name in ROUTES]
        e = torch.from_numpy(np.stack([s[0] for s in sims])).float()  # (routes, runs)
        truth[seed] = (aggregate(e, "cvar", 0.0, args.alpha).numpy(), e.mean(1).numpy(), np.array([s[1] for s in sims]))
    true_pick = np.array([truth[s][0].argmin() for s in seeds])
    trapped = np.stack([truth[s][2] for s in seeds])  # (episodes, routes)
    print(
        f"{args.episodes} starts (seeds {seeds.start}-{seeds.stop - 1}), {args.runs} simulator draws and {args.k} sampled futures per route; "
        f"simulator: risky routes (trapped >= {RISKY:.0%}) {', '.join(f'{n} {np.mean(trapped[:, i] >= RISKY):.0%}' for i, n in enumerate(ROUTES))}; "
        f"its CVaR {args.alpha} pick: {', '.join(f'{n} {np.mean(true_pick == i):.0%}' for i, n in enumerate(ROUTES))}"
    )
    print(f"simulator: the straight route ends in a pit in {trapped[:, 0].mean():.0%} of its draws (mean over the starts)")
    print(
        f"{'model':40s} {'agg':5s} {'= simulator pick':>16s} {'risky pick':>10s} {'trapped share of pick':>22s} {'straight picked':>15s} {'straight: in a pit':>18s}"
    )
    for path, m in models.items():
        picks = {"cvar": [], "mean": []}
        pit = []  # per start: the share of the straight route's futures that end in a pit
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            goal_xy = np.asarray(info["goal_state"])[:2]
            rs = routes(float(np.sign(goal_xy[0] - obs["proprio"][0])))
            with torch.no_grad():
                goal, gp = m.encode_goal(torch.from_numpy(info["goal_pixels"])[None])
                ctx = m.encode(torch.from_numpy(obs["pixels"])[None, None])
                prop = torch.from_numpy(obs["proprio"])[None, None]
                a = torch.stack([m.hold(torch.tensor(rs[n], dtype=torch.float32)) for n in ROUTES])  # (routes, H, A)
                s, p = m.sample_futures(
                    ctx.expand(len(ROUTES), -1, -1, -1), a, args.k, prop.expand(len(ROUTES), -1, -1), generator=torch.Generator().manual_seed(seed)
                )
                e = m.goal_energy(
                    s,
                    p,
                    goal[:, None],
                    gp[:, None] if gp is not None else None,
                    proprio_weight=args.proprio_weight,
                    all_steps=args.all_steps,
                    latent_weight=args.latent_weight,
                    proprio_scale="readout",
                )  # (routes, k)
            pit.append(HazardEnv.in_pit(p[0, :, -1, :2].numpy()).mean())
            picks["cvar"].append(int(aggregate(e, "cvar", 0.0, args.alpha).argmin()))
            picks["mean"].append(int(e.mean(1).argmin()))
        for kind, pk in picks.items():
            pk = np.asarray(pk)
            tr = trapped[np.arange(len(pk)), pk]
            print(
                f"{path[-40:]:40s} {kind:5s} {np.mean(pk == true_pick):16.0%} {np.mean(tr >= RISKY):10.0%} {tr.mean():22.2f} {np.mean(pk == 0):15.0%} {np.mean(pit):18.0%}"
            )


if __name__ == "__main__":
    main()
