"""Hazard: does the planner's search find the plan its own model scores best?

    python benchmarks/bench_hazard_search.py --models runs/a/final,runs/b/final \\
        --seeds 1000-1049 --aggregate cvar --settings 64x8x4,128x8x4,64x8x4b2 --repeats 3

From the start of each planning-list episode (reset seeds), the first replan's cost is
built as ``worldjepa plan`` builds it (held actions, the task's energy settings, the
ensemble's pooled futures with the first replan's common noise). Each CEM setting
(``samples x elites x iterations``, ``b2`` for iCEM noise with ``noise_beta=2``) is run
``repeats`` times with different planner seeds, and a reference search (``--reference``,
much larger) gives the lowest cost found. Per setting: the mean time of one plan, the
mean best cost, the regret (best cost minus the reference's, averaged and its share
above 1 energy unit), and how often the plan's first action heads for the gust strip
while the reference's does not. If a small search's regret is large, failures under MPC
are the search's, not the model's: the model knows a better plan that the planner did
not find.
"""

from __future__ import annotations

import argparse
import time

import hydra
import numpy as np
import torch

import envs
from planners import CEM
from worldjepa.cli import config_dir, plan_cost_kwargs
from worldjepa.eval.planning import members_of, replan_cost
from worldjepa.world_model import WorldModel


def parse_setting(s: str) -> dict:
    """``64x8x4`` or ``64x8x4b2`` -> CEM keyword arguments."""
    beta = 0.0
    if "b" in s:
        s, b = s.split("b")
        beta = float(b)
    try:
        n, k, it = (int(v) for v in s.split("x"))
    except ValueError:
        raise ValueError(f"a setting is samples x elites x iterations, e.g. 64x8x4 or 64x8x4b2; got {s!r}") from None
    return {"samples": n, "elites": k, "iterations": it, "noise_beta": beta}


def parse_seeds(s: str) -> list[int]:
    if "-" in s:
        a, b = (int(v) for v in s.split("-"))
        return list(range(a, b + 1))
    return [int(v) for v in s.split(",")]


def first_replan_cost(members, env, seed: int, cost_kw: dict):
    """The cost of the first replan of episode ``seed`` (as ``run_episode`` builds it), and the start (x, y)."""
    obs, info = env.reset(seed=seed)
    goals = [m.encode_goal(torch.from_numpy(info["goal_pixels"])[None]) for m in members]
    cost = replan_cost(members, goals, obs, dict(cost_kw, noise_seed=seed * 1000 + 1))
    return cost, np.asarray(env.unwrapped.achieved(), dtype=float)


def heads_for_strip(start: np.ndarray, a0: np.ndarray) -> bool:
    """Whether the first held action (x, y in [-1, 1]) moves the agent mostly along x towards the strip."""
    return bool(np.sign(a0[0]) == -np.sign(start[0]) and abs(a0[0]) > abs(a0[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="checkpoint(s), comma-separated (an ensemble)")
    ap.add_argument("--seeds", default="1000-1049", help="reset seeds: a-b or a,b,c")
    ap.add_argument("--aggregate", default="cvar", help="mean | cvar | mean_std")
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--futures", type=int, default=4)
    ap.add_argument("--settings", default="64x8x4,128x8x4,64x8x4b2")
    ap.add_argument("--reference", default="512x32x8")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    members = members_of([WorldModel.load(p) for p in args.models.split(",")])
    if members[0].spec.task != "hazard":
        raise ValueError(f"{args.models}: hazard models expected, got task {members[0].spec.task!r}")
    overrides = ["env=hazard", "hold_actions=true", f"risk.futures={args.futures}", f"risk.aggregate={args.aggregate}", f"risk.alpha={args.alpha}"]
    with hydra.initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = hydra.compose("plan", overrides=overrides)
    cost_kw = plan_cost_kwargs(cfg)  # the energy worldjepa plan builds from the same config
    horizon = int(cfg.planner.horizon)
    settings = {s: parse_setting(s) for s in args.settings.split(",")}
    ref_kw = parse_setting(args.reference)
    env = envs.make("hazard", max_episode_steps=10_000)
    A = members[0].spec.env_action_dim
    rows = {s: {"t": [], "cost": [], "regret": [], "strip": []} for s in settings}
    seeds = parse_seeds(args.seeds)
    torch.set_grad_enabled(False)
    for seed in seeds:
        cost, start = first_replan_cost(members, env, seed, cost_kw)
        ref = CEM(horizon=horizon, action_dim=A, seed=10_000, **ref_kw).plan(cost)
        ref_cost, ref_strip = float(ref.cost[0]), heads_for_strip(start, ref.actions[0, 0].numpy())
        line = [f"seed {seed} start ({start[0]:+.2f},{start[1]:+.2f}) reference {ref_cost:6.2f}{' (strip)' if ref_strip else ''}"]
        for s, kw in settings.items():
            for r in range(args.repeats):
                t0 = time.perf_counter()
                res = CEM(horizon=horizon, action_dim=A, seed=r, **kw).plan(cost)
                rows[s]["t"].append(time.perf_counter() - t0)
                c = float(res.cost[0])
                rows[s]["cost"].append(c)
                rows[s]["regret"].append(c - ref_cost)
                rows[s]["strip"].append(heads_for_strip(start, res.actions[0, 0].numpy()) and not ref_strip)
            line.append(f"{s} {np.mean(rows[s]['cost'][-args.repeats :]):6.2f}")
        print(" | ".join(line), flush=True)
    print(f"\n{len(seeds)} starts x {args.repeats} planner seeds; {args.aggregate} of {len(members)} x {args.futures} futures; reference CEM {args.reference}")
    print(f"{'setting':>12} {'s/plan':>7} {'cost':>7} {'regret':>7} {'regret>1':>9} {'to strip, ref not':>18}")
    for s, r in rows.items():
        reg = np.array(r["regret"])
        print(f"{s:>12} {np.mean(r['t']):7.2f} {np.mean(r['cost']):7.2f} {reg.mean():7.2f} {np.mean(reg > 1):9.0%} {np.mean(r['strip']):18.0%}")


if __name__ == "__main__":
    main()
