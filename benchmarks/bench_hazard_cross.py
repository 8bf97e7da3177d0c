"""Hazard: does a model's planning energy rank plans as a perfect model's does?

    python benchmarks/bench_hazard_cross.py --model runs/x/final [--episodes 10] [--k 16]

From the start of each planning-list episode (reset seeds 1000, 1001, ...), CEM with the
planning protocol's settings (64 samples x 4 iterations, 8 elites, horizon 5 held
actions) plans twice: once on the model's cost (Hazard's planning energy as ``worldjepa
plan env=hazard`` builds it, CVaR 0.25 over ``k`` sampled futures), once on the
simulator's (``bench_hazard_oracle.py``'s cost: the distance to the goal at the plan's
final step, CVaR 0.25 over ``k`` gust draws; both final-step, as Hazard plans since the
fifteenth session; its figures before were on the average over the steps). Each plan is then scored by both costs. If
the model's cost scores the simulator's plan worse than its own while the simulator
scores it better, the model's futures, not the search, decide the route.

Then, for a model with a categorical z, the simulator's plan is executed in the task and,
one model step at a time from the true observation, every code's one-step prediction is
compared with where the agent really went: the prior's mass on codes that land within
``--near`` of it (the prior names what happens) and on codes that land in a pit when the
agent did not (a trap the model invents), and how often some code lands that close at all (the codes
can say it; whether the prior names them is the first figure), over all steps and over
the steps near the pits (|x| < 0.2).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hazard_oracle import FRAMESKIP  # noqa: E402
from bench_hazard_oracle import make_cost as oracle_cost  # noqa: E402

import envs  # noqa: E402
from envs.tasks import HazardEnv  # noqa: E402
from planners import CEM  # noqa: E402
from worldjepa.eval.planning import goal_cost  # noqa: E402
from worldjepa.world_model import WorldModel  # noqa: E402


def strip_and_round(sim, snap: dict, plan: np.ndarray) -> tuple[bool, bool]:
    """Where a plan goes in the task with the gust switched off: (enters the strip, passes x = 0 above or below the pits)."""
    sim.restore(snap, np.random.default_rng(0))
    push, sim.gust_push = sim.gust_push, 0.0
    strip = round_ = False
    prev = sim.data.qpos[:2].copy()
    for a in plan:
        for _ in range(FRAMESKIP):
            xy = sim.simulate(a)
            strip |= sim.in_gust(xy)
            round_ |= bool(np.sign(xy[0]) != np.sign(prev[0]) and abs(xy[1]) > HazardEnv.pit_y[1])
            prev = xy
    sim.gust_push = push
    return strip, round_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="world-model checkpoint directory")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--k", type=int, default=16, help="sampled futures (model) and gust draws (simulator) per candidate")
    ap.add_argument("--min-prob", type=float, default=0.0, help="the model's futures skip codes the prior gives less than this (risk.min_prob)")
    ap.add_argument("--near", type=float, default=0.03, help="metres: a code's prediction this close to the true next position names it")
    args = ap.parse_args()
    if args.episodes <= 0 or args.k <= 0:
        raise SystemExit("--episodes and --k must be >= 1")
    torch.set_grad_enabled(False)
    wm = WorldModel.load(args.model).eval()
    if wm.spec.task != "hazard" or wm.latent is None:
        raise SystemExit(f"{args.model}: needs a Hazard model with a latent variable (task {wm.spec.task!r}, latent {wm.latent is not None})")
    categorical = hasattr(wm.latent, "all_codes")
    env = envs.make("hazard", max_episode_steps=10_000)
    sim = envs.make("hazard").unwrapped
    sim.reset(seed=0)
    rows, steps = [], []
    print(f"{args.model}: CEM 64 x 4 (elites 8), horizon 5 held actions, CVaR 0.25 of {args.k} futures / gust draws, min_prob {args.min_prob}")
    print(
        f"{'seed':>5s} {'model cost: own plan':>20s} {'sim plan':>8s} {'sim cost: model plan':>20s} {'sim plan':>8s}   model plan: strip / round   sim plan: strip / round"
    )
    for i in range(args.episodes):
        seed = 1000 + i
        obs, info = env.reset(seed=seed)
        snap = env.unwrapped.snapshot()
        goal_xy = np.asarray(info["goal_state"])[:2]
        goal, goal_p = wm.encode_goal(torch.from_numpy(info["goal_pixels"])[None])
        ctx = wm.encode(torch.from_numpy(obs["pixels"])[None, None])
        prop = torch.from_numpy(obs["proprio"])[None, None]
        mc = goal_cost(
            wm, ctx, goal, prop, goal_proprio=goal_p, energy="l1", proprio_weight=1.0, all_steps=0.0, futures=args.k, risk="cvar", alpha=0.25,
            hold=True, noise_seed=seed * 1000 + 1, latent_weight=1.0, proprio_scale="readout", min_prob=args.min_prob,
        )  # fmt: skip
        oc = oracle_cost(sim, snap, goal_xy, args.k, "cvar", 0.25, 0.0, seed * 1000 + 1, type(sim).gust_push)
        plans = [CEM(horizon=5, action_dim=2, samples=64, elites=8, iterations=4, seed=seed).plan(c).actions[0].clamp(-1, 1) for c in (mc, oc)]
        both = torch.stack(plans)[None]
        m, o = mc(both)[0].numpy(), oc(both)[0].numpy()
        where = [strip_and_round(sim, snap, p.numpy()) for p in plans]
        rows.append((m, o))
        print(
            f"{seed:5d} {m[0]:20.3f} {m[1]:8.3f} {o[0]:20.3f} {o[1]:8.3f}   {str(where[0][0]):>11s} / {str(where[0][1]):<5s}    "
            f"{str(where[1][0]):>9s} / {where[1][1]}"
        )
        if categorical:  # the simulator's plan, executed, one model step at a time from the true observation
            o_ = obs
            for a in plans[1]:
                held = wm.hold(a[None])[None]  # (1, 1, A)
                c = wm.encode(torch.from_numpy(o_["pixels"])[None, None])
                p0 = torch.from_numpy(o_["proprio"])[None, None]
                for _ in range(FRAMESKIP):
                    o_, _, _, _, inf = env.step(a.numpy().astype(np.float32))
                every = wm.code_predictions(c, held, p0)[0, :, :2].numpy()  # (M, 2)
                prob = wm.code_probs(c, held, p0)[0].numpy()
                true = o_["proprio"][:2]
                near = np.linalg.norm(every - true, axis=-1) < args.near
                invented = HazardEnv.in_pit(every) & (not inf["trapped"])
                by_pits = abs(float(p0[0, 0, 0])) < 0.2 or abs(float(true[0])) < 0.2
                steps.append((float(prob[near].sum()), float(prob[invented].sum()), by_pits, float(near.any())))
    m, o = (np.array([r[k] for r in rows]) for k in (0, 1))
    print(
        f"the model's cost scores the simulator's plan worse than its own at {np.mean(m[:, 1] > m[:, 0]):.0%} of the starts; "
        f"the simulator scores the model's plan worse than its own at {np.mean(o[:, 0] > o[:, 1]):.0%} "
        f"(simulator cost, mean: model's plan {o[:, 0].mean():.3f}, its own {o[:, 1].mean():.3f})"
    )
    if steps:
        s = np.array(steps)
        close = s[:, 2] > 0
        print(
            f"along the simulator's plans ({len(s)} model steps, {int(close.sum())} near the pits): the prior's mass on codes within "
            f"{100 * args.near:.0f} cm of the true next position {s[:, 0].mean():.2f} ({s[close, 0].mean() if close.any() else float('nan'):.2f} near the pits); "
            f"on codes that put a free agent into a pit {s[:, 1].mean():.2f} ({s[close, 1].mean() if close.any() else float('nan'):.2f} near the pits); "
            f"some code within {100 * args.near:.0f} cm at {s[:, 3].mean():.0%} of the steps ({s[close, 3].mean() if close.any() else float('nan'):.0%} near the pits)"
        )


if __name__ == "__main__":
    main()
