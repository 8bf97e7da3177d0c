"""Time per MPC replan: one CEM plan through the world model, at the shipped budget and DINO-WM's.

    python benchmarks/bench_replan.py [--model DIR] [--env TASK] [--device cpu|cuda] [--bf16]

Without --model it builds a default-size model (tiny encoder, default predictor, Reach's
action and proprio sizes) with random weights: the time does not depend on the weights.
Budgets: ours (the task's CEM defaults, configs/planner/cem.yaml with configs/env/<TASK>.yaml,
and its energy settings) and DINO-WM's CEM (300 samples x 30 iterations, horizon 5), in
one run, so the ratio is measured on the same machine at the same moment.
With --bf16 (CUDA) each budget is also timed under bf16 autocast, side by side with fp32.
"""

from __future__ import annotations

import argparse
import time

import hydra
import torch
from omegaconf import OmegaConf

from planners import CEM
from worldjepa.cli import config_dir, plan_cost_kwargs
from worldjepa.eval.planning import goal_cost
from worldjepa.models.encoder import EncoderConfig
from worldjepa.models.predictor import PredictorConfig
from worldjepa.world_model import WorldModel, WorldModelSpec


def default_model() -> WorldModel:
    enc = EncoderConfig()
    pred = PredictorConfig(enc_dim=enc.dim, grid=enc.grid, num_state_tokens=1, action_dim=10, proprio_dim=6, proprio_decoder_hidden=128)
    return WorldModel(enc, pred, WorldModelSpec(task="reach", image_size=enc.image_size, env_action_dim=2, frameskip=5, proprio_dim=6, history=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--env", default="reach", help="task whose planning defaults set our budget (default reach, the shipped model's)")
    args = ap.parse_args()
    with hydra.initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = hydra.compose("plan", overrides=[f"env={args.env}"])
    ours = OmegaConf.to_container(cfg.planner, resolve=True)
    ours.pop("_target_")
    torch.manual_seed(0)
    wm = (WorldModel.load(args.model) if args.model else default_model()).to(args.device).eval()
    dev = torch.device(args.device)
    S = wm.spec.image_size
    px = torch.randint(0, 255, (1, 1, S, S, 3), dtype=torch.uint8, device=dev)
    goal, goal_p = wm.encode_goal(px[:, 0])
    ctx = wm.encode(px)
    prop = torch.zeros(1, 1, wm.spec.proprio_dim, device=dev) if wm.spec.proprio_dim else None
    cost_kw = plan_cost_kwargs(cfg)  # the task's energy, exactly as `worldjepa plan` builds it
    if goal_p is None:  # a model without a proprio decoder has no proprio term
        cost_kw["proprio_weight"] = 0.0
    cost = goal_cost(wm, ctx, goal, prop, goal_proprio=goal_p, **cost_kw)
    dino = {"horizon": 5, "samples": 300, "elites": 30, "iterations": 30, "seed": 0}
    name = f"ours ({ours['samples']} x {ours['iterations']}, H {ours['horizon']}" + (f", coarse {ours['coarse']}" if ours["coarse"] > 1 else "") + ")"
    budgets = [(name, ours), ("DINO-WM (300 x 30, H 5)", dino)]
    modes = [("fp32", False)] + ([("bf16", True)] if args.bf16 else [])
    print(f"device {args.device}, model {args.model or 'default size, random weights'}, task defaults of {args.env}, action dim {wm.action_dim}")
    for name, kw in budgets:
        row = []
        for mode, amp in modes:
            planner = CEM(action_dim=wm.action_dim, **kw)

            def run(planner=planner, amp=amp):
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    planner.plan(cost, batch=1, device=dev)
                if dev.type == "cuda":
                    torch.cuda.synchronize()

            run()
            best = float("inf")
            for _ in range(args.repeats):
                t = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - t)
            row.append(f"{mode} {best * 1000:8.1f} ms")
        ratio = f"  (bf16 speed-up {float(row[0].split()[1]) / float(row[1].split()[1]):.2f}x)" if len(row) > 1 else ""
        print(f"{name:32s} " + "   ".join(row) + ratio, flush=True)


if __name__ == "__main__":
    main()
