"""Hazard: what the planning protocol reaches with a perfect model (the simulator itself).

    python benchmarks/bench_hazard_oracle.py [--env hazard|hazard_gamble] [--gust-prob P]
        [--episodes 50] [--horizon 5] [--futures 4]
        [--aggregate mean,cvar] [--all-steps 1.0] [--samples 64 --elites 8 --iterations 4]
        [--model-push 0.18,0.15] [--model-noise 0.02] [--norm l2|l1]

The planner, MPC loop, held actions and risk aggregation are those of ``worldjepa plan
env=hazard hold_actions=true`` (planners.CEM, planners.MPC, planners.risk.aggregate), but a
candidate's futures are simulated by the task's own dynamics, gusts and pits included:
future j of a replan draws its gusts from one seeded generator shared by every
candidate (common random numbers). The energy is the distance of the agent from the goal
position, at the plan's final step, or averaged over its steps (``--all-steps``, the
weight of the average, as ``energy_all_steps``). A world model can at best match this,
so it separates what the protocol can do (horizon, energy, search budget) from what the
model gets wrong. Several settings run in one go, on the same episodes. ``calm`` plans on
one future without gusts: what a deterministic model that averages the two pushes
(about no push) would predict, the risk-neutral planner of the anchors.

``--model-push`` gives the simulated model a push of another size than the task's 0.18 m
(each value a row, on the same episodes): a model that is exact but for the size of the
gust, which is how far a learned model's futures can fall short and what it costs.
``--model-noise`` adds an error of that many metres (a normal draw per axis) to the
simulated model's position after every model step of a future (drawn, like the gusts,
from the future's generator, so common to all candidates): a model that is exact in
expectation but imprecise step by step, as a learned one is. ``--norm l1`` scores the
distance as abs(dx) + abs(dy), the form of worldjepa's proprio energy term, instead of the
straight line.

Besides success and the trapped share, each row gives the share of episodes whose plan
entered the gust strip (pushed or not) and, at those entries, the median abs(y) and
abs(vy) one env step before the entry: the route the planner chose, without the coin of
whether and where the gust pushes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import envs
from planners import CEM, MPC
from planners.risk import aggregate

FRAMESKIP = 5  # env steps per model step on Hazard (the world model's frameskip)


def make_cost(
    sim,
    snap: dict,
    goal_xy: np.ndarray,
    futures: int,
    kind: str,
    alpha: float,
    all_steps: float,
    noise_seed: int,
    push: float,
    pos_noise: float = 0.0,
    norm: str = "l2",
):
    sim.gust_push = push

    def cost(actions: torch.Tensor) -> torch.Tensor:  # (B, N, H, 2) -> (B, N)
        a = actions.detach().cpu().numpy().clip(-1, 1)
        B, N, H, _ = a.shape
        e = np.zeros((B, N, futures))
        for b in range(B):
            for n in range(N):
                for j in range(futures):
                    sim.restore(snap, np.random.default_rng(noise_seed * 100 + j))
                    err = np.random.default_rng([noise_seed, j]).normal(0.0, pos_noise, (H, 2)) if pos_noise > 0 else None
                    d = np.empty(H)
                    for h in range(H):
                        for _ in range(FRAMESKIP):
                            xy = sim.simulate(a[b, n, h])
                        if err is not None and sim.snapshot()["trapped_at"] is None:  # a pit holds the agent still
                            sim.data.qpos[:2] += err[h]
                            xy = sim.data.qpos[:2].copy()
                        d[h] = np.linalg.norm(xy - goal_xy) if norm == "l2" else np.abs(xy - goal_xy).sum()
                    e[b, n, j] = (1 - all_steps) * d[-1] + all_steps * d.mean()
        return aggregate(torch.from_numpy(e), kind, 0.0, alpha)

    return cost


def episode(env, sim, seed: int, args, kind: str, all_steps: float, model_push: float) -> tuple[bool, bool, float, list[np.ndarray]]:
    """One MPC episode -> (success, trapped, final distance, the proprio one env step before each push)."""
    obs, info = env.reset(seed=seed)
    goal_xy = np.asarray(info["goal_state"])[:2]
    state = {"info": info, "proprio": obs["proprio"], "entries": []}
    replans = [0]

    def make(_):
        replans[0] += 1
        futures = 1 if kind in ("one", "calm") else args.futures
        agg = "mean" if kind in ("one", "calm") else kind
        push = 0.0 if kind == "calm" else model_push
        return make_cost(
            sim, env.unwrapped.snapshot(), goal_xy, futures, agg, args.alpha, all_steps, seed * 1000 + replans[0], push, args.model_noise, args.norm
        )

    def act(a: torch.Tensor) -> bool:
        for _ in range(FRAMESKIP):
            o, _, _, _, state["info"] = env.step(np.clip(a.numpy(), -1, 1).astype(np.float32))
            if state["info"]["entered"]:
                state["entries"].append(state["proprio"])
            state["proprio"] = o["proprio"]
        return False

    planner = CEM(
        horizon=args.horizon, action_dim=2, samples=args.samples, elites=args.elites, iterations=args.iterations, seed=seed, noise_beta=args.noise_beta
    )
    MPC(planner, execute=1, budget=args.budget // FRAMESKIP, shrink=True).run(lambda: None, make, act)
    inf = state["info"]
    return bool(inf["is_success"]), bool(inf["trapped"]), float(inf["distance"]), state["entries"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--env", default="hazard", choices=("hazard", "hazard_gamble"), help="the task (hazard_gamble: the gust fires at 35 %% of the entries into the strip)"
    )
    ap.add_argument(
        "--gust-prob",
        type=float,
        default=None,
        help="chance that the gust fires at an entry into the strip, for the task and the simulated model; default: the task's own",
    )
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--futures", type=int, default=4)
    ap.add_argument("--aggregate", default="mean,cvar", help="comma list of calm (one future without gusts) | one (one sampled future) | mean | cvar")
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--all-steps", default="1.0", help="comma list of weights of the average over the plan's steps")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--elites", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--noise-beta", type=float, default=0.0, help="CEM noise colour along the horizon (0 white, 2 iCEM; Hazard's worldjepa plan default is 2)")
    ap.add_argument("--budget", type=int, default=100, help="env steps per episode (Hazard's plan_budget)")
    ap.add_argument(
        "--norm",
        default="l2",
        choices=("l2", "l1"),
        help="distance to the goal: l2 (Euclidean) or l1 (the sum of |dx| and |dy|, the form of worldjepa's proprio energy term)",
    )
    ap.add_argument("--model-noise", type=float, default=0.0, help="metres of normal error added to the model's position after each model step")
    ap.add_argument("--model-push", default=None, help="comma list of push sizes (m) the simulated model uses; default: the task's own")
    args = ap.parse_args()
    env = envs.make(args.env, max_episode_steps=10_000, gust_prob=args.gust_prob)  # HazardEnv refuses a gust_prob outside [0, 1]
    sim = envs.make(args.env, gust_prob=args.gust_prob).unwrapped
    sim.reset(seed=0)
    pushes = [float(x) for x in args.model_push.split(",")] if args.model_push else [type(sim).gust_push]
    if any(not 0 <= p < 1 for p in pushes):
        raise SystemExit(f"--model-push: push sizes must lie in [0, 1) m, got {pushes}")
    if not 0 <= args.model_noise < 1:
        raise SystemExit(f"--model-noise must lie in [0, 1) m, got {args.model_noise}")
    print(
        f"{args.env}, simulator as the model (gust_prob {sim.gust_prob}): CEM {args.samples} x {args.iterations} (elites {args.elites}, noise beta {args.noise_beta}), horizon {args.horizon} held actions, "
        f"{args.futures} futures, budget {args.budget} env steps, {args.episodes} episodes (seeds 1000...), model position noise {args.model_noise} m per step, {args.norm} distance"
    )
    print(
        f"{'aggregate':>9s} {'all_steps':>9s} {'model push':>10s} {'success':>12s} {'trapped':>8s} {'final dist':>10s} {'entered strip':>13s} "
        f"{'entry |y| median':>16s} {'entry |vy| median':>17s} {'s/episode':>9s}"
    )
    for w in (float(x) for x in args.all_steps.split(",")):
        for push in pushes:
            for kind in args.aggregate.split(","):
                t0 = time.perf_counter()
                res = [episode(env, sim, 1000 + i, args, kind, w, push) for i in range(args.episodes)]
                s, tr, d = (np.array(x) for x in zip(*(r[:3] for r in res)))
                entries = np.array([e for r in res for e in r[3]]).reshape(-1, 4)
                entered = np.mean([len(r[3]) > 0 for r in res])
                ey, evy = (f"{np.median(np.abs(entries[:, i])):.3f}" if len(entries) else "-" for i in (1, 3))
                dt = (time.perf_counter() - t0) / args.episodes
                print(
                    f"{kind:>9s} {w:9.2f} {push:10.2f} {f'{s.sum()}/{len(s)} = {100 * s.mean():.0f}%':>12s} {100 * tr.mean():7.0f}% {d.mean():10.3f} "
                    f"{100 * entered:12.0f}% {ey:>16s} {evy:>17s} {dt:9.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
