"""Pre-training figures: throughput, collapse monitors and probe R^2 against a random encoder.

    python benchmarks/bench_pretrain.py --task reach --data data/reach --steps 300 --regs none sigreg vicreg

For each anti-collapse choice it pre-trains the `tiny` encoder from the same seed on the
same data, then prints: clips/s, wall time, target-embedding std and RankMe at the first
and last monitor, and linear-probe R^2 on held-out episodes, next to a randomly
initialised encoder of the same shape (the floor). Probe features: all patch tokens of a
frame flattened ("flat"), and their mean ("pooled").
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import numpy as np
import torch

import envs
from worldjepa.data.clips import split_episodes
from worldjepa.data.episodes import EpisodeStore
from worldjepa.eval.probe import fit_probe, frame_features
from worldjepa.models.encoder import EncoderConfig, VideoEncoder
from worldjepa.train.loop import TrainConfig
from worldjepa.train.pretrain import JEPAConfig, load_encoder, pretrain


def probe(encoder, store, env, tr, va) -> dict[str, float]:
    Xtr, Str = frame_features(encoder, store, tr)
    Xte, Ste = frame_features(encoder, store, va)
    ytr, yte = env.task_state(Str), env.task_state(Ste)
    D = encoder.cfg.dim
    out = {}
    for pool, f in (("flat", lambda X: X), ("pooled", lambda X: X.reshape(len(X), -1, D).mean(1))):
        for k in ytr:
            out[f"{pool}/{k}"] = float(np.mean(fit_probe(f(Xtr), ytr[k], f(Xte), yte[k])["r2"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="reach")
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--regs", nargs="+", default=["none", "sigreg", "vicreg"])
    ap.add_argument("--out", default="runs/bench_pretrain")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    store = EpisodeStore(args.data)
    _, va = split_episodes(len(store), 0.1, seed=0)
    tr = [i for i in range(len(store)) if i not in va]
    env = envs.make(args.task).unwrapped
    enc_cfg = EncoderConfig()
    torch.manual_seed(0)
    rows = [("random init", None, None, None, probe(VideoEncoder(enc_cfg), store, env, tr, va))]
    for reg in args.regs:
        run = os.path.join(args.out, f"{args.task}_{reg}_{args.steps}")
        obj = JEPAConfig(reg=reg, reg_weight=0.05 if reg == "sigreg" else 1.0)
        train = TrainConfig(
            steps=args.steps, warmup=min(100, args.steps // 10), ckpt_every=max(50, args.steps // 4), monitor_every=max(10, args.steps // 6), progress=False
        )
        t = time.perf_counter()
        pretrain(args.data, run, enc_cfg, obj, train)
        wall = time.perf_counter() - t
        mon = [r for r in csv.DictReader(open(os.path.join(run, "metrics.csv"))) if r.get("rankme_tokens")]
        rows.append(
            (
                f"EMA + {reg}" if reg != "none" else "EMA only",
                wall,
                args.steps * obj.batch_size / wall,
                (mon[0], mon[-1]),
                probe(load_encoder(os.path.join(run, "final")), store, env, tr, va),
            )
        )
    keys = list(rows[0][4])
    print(f"task {args.task}: {len(tr)} train / {len(va)} held-out episodes, {args.steps} steps, batch 32, clips of 4 frames")
    print(f"{'encoder':<16}{'wall s':>8}{'clips/s':>9}{'std first->last':>18}{'RankMe first->last':>20}" + "".join(f"{k:>18}" for k in keys))
    for name, wall, cps, mon, pr in rows:
        w = f"{wall:8.0f}{cps:9.1f}" if wall else f"{'-':>8}{'-':>9}"
        m = (
            f"{float(mon[0]['target_std_mean']):8.3f} ->{float(mon[1]['target_std_mean']):6.3f}{float(mon[0]['rankme_tokens']):10.1f} ->{float(mon[1]['rankme_tokens']):6.1f}"
            if mon
            else f"{'-':>18}{'-':>20}"
        )
        print(f"{name:<16}{w}{m:>38}" + "".join(f"{pr[k]:>18.3f}" for k in keys))


if __name__ == "__main__":
    main()
