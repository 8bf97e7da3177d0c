"""Compare world-model recipes side by side: train each, then score it without an env.

    python benchmarks/world_recipes.py --data data/reach --encoder runs/pretrain_reach/final \
        --out runs/recipes_reach --parallel 4 --steps 1500 --device cuda \
        --recipe "frozen:objective.recipe=frozen" --recipe "joint:objective.recipe=joint objective.reg=vicreg"

Each recipe is ``name:overrides`` (``worldjepa train`` overrides). Scores, on held-out
episodes: open-loop latent L1 at horizons 1 and 5 against copy-last and shuffled actions
(ratios < 1 are better), the time of one 300-candidate x 5-step rollout, and the goal-ranking proxy (the fraction of random action
sequences whose energy beats the recorded one's: 0 is best, 0.5 means actions are ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--env", default=None, help="env config name (default: the dataset's task)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--recipe", action="append", required=True, help="name:overrides")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--horizon", type=int, default=5)
    args = ap.parse_args()

    from worldjepa.data.episodes import EpisodeStore

    env = args.env or EpisodeStore(args.data).meta["task"]
    os.makedirs(args.out, exist_ok=True)
    jobs = []
    for r in args.recipe:
        name, _, over = r.partition(":")
        run_dir = os.path.join(args.out, name)
        cmd = [sys.executable, "-m", "worldjepa.cli", "train", f"env={env}", f"data={args.data}", f"encoder={args.encoder}", f"run_dir={run_dir}"]
        cmd += [f"train.steps={args.steps}", "train.progress=false", "eval_horizon=0", f"device={args.device}", *shlex.split(over)]
        jobs.append((name, run_dir, cmd))
    running: list = []
    t0 = time.time()
    for name, run_dir, cmd in jobs:
        while len(running) >= args.parallel:
            running = [p for p in running if p.poll() is None]
            time.sleep(1)
        log = open(run_dir + ".log", "w")
        print(f"[{time.time() - t0:6.0f}s] start {name}: {shlex.join(cmd[3:])}", flush=True)
        running.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    for p in running:
        p.wait()
    print(f"[{time.time() - t0:6.0f}s] all trained", flush=True)

    import torch

    from worldjepa.eval.rollout_eval import goal_ranking, open_loop_errors
    from worldjepa.world_model import WorldModel

    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    rows = []
    for name, run_dir, _ in jobs:
        final = os.path.join(run_dir, "final")
        if not os.path.exists(os.path.join(final, "meta.json")):
            print(f"{name}: no final checkpoint (see {run_dir}.log)")
            continue
        wm = WorldModel.load(final, map_location=device)
        meta = json.load(open(os.path.join(final, "meta.json")))
        tr, te = meta["train_episodes"], meta["val_episodes"]
        ol = open_loop_errors(wm, args.data, tr, te, None, horizon=args.horizon, device=device)
        gr = goal_ranking(wm, args.data, te, horizon=args.horizon, device=device)
        if wm.proprio_decoder is not None:
            grp = goal_ranking(wm, args.data, te, horizon=args.horizon, device=device, proprio_weight=1.0)
        lat = ol["latent"]
        # rollout speed at the planning shape: 300 candidates x horizon 5, KV-cached
        K, D = wm.pred_cfg.tokens_per_state, wm.enc_cfg.dim
        ctx = torch.randn(300, 1, K, D, device=device)
        acts = torch.rand(300, 5, wm.action_dim, device=device) * 2 - 1
        prop = torch.zeros(300, 1, wm.spec.proprio_dim, device=device) if wm.spec.proprio_dim else None
        wm.rollout(ctx, acts, prop)
        t1 = time.perf_counter()
        for _ in range(3):
            wm.rollout(ctx, acts, prop)
        if device == "cuda":
            torch.cuda.synchronize()
        per = (time.perf_counter() - t1) / 3
        row = {
            "name": name,
            "h1_vs_copy": lat["model"][0] / lat["copy_last"][0],
            "h1_vs_shuf": lat["model"][0] / lat["shuffled"][0],
            f"h{args.horizon}_vs_copy": lat["model"][-1] / lat["copy_last"][-1],
            f"h{args.horizon}_vs_shuf": lat["model"][-1] / lat["shuffled"][-1],
            "goal_rank": gr["rank"],
            "goal_top1": gr["top1"],
            "rollout_s_300x5": per,
        }
        if wm.proprio_decoder is not None:
            row.update(goal_rank_p=grp["rank"], goal_top1_p=grp["top1"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
