"""The ``worldjepa`` command: one entry point dispatching to sub-commands.

Hydra sub-commands (configs in the top-level ``configs/``)::

    worldjepa collect env=tworoom episodes=200 policy=directed out=data/tworoom workers=2
    worldjepa pretrain env=tworoom data=data/tworoom

Plain sub-commands::

    worldjepa dataset info <dir> [--sheet PATH]
    worldjepa dataset verify <dir>
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from worldjepa import report

log = logging.getLogger("worldjepa")


def config_dir() -> Path:
    """The configs directory: inside the installed package (wheel) or the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "collect.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"worldjepa configs not found next to {here}; reinstall the package")


# ----- Hydra sub-commands ------------------------------------------------------------
def cmd_collect(cfg) -> None:
    from worldjepa.data.collect import collect
    from worldjepa.data.info import summarize

    store = collect(
        env=cfg.env.name,
        episodes=int(cfg.episodes),
        out=str(cfg.out),
        policy=str(cfg.policy),
        workers=int(cfg.workers),
        episode_len=int(cfg.episode_len),
        seed=int(cfg.seed),
        image_size=int(cfg.env.image_size),
        action_repeat=int(cfg.env.action_repeat),
        progress=bool(cfg.progress),
        policy_hold=int(cfg.policy_hold),
    )
    s = summarize(store)
    report.say(f"dataset {s['root']}: {s['episodes']} episodes, {s['frames']} frames of {s['task']}")


def resolve_device(name: str):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return name


def _dataclass_from(cls, section, name: str):
    """Build a config dataclass from a config section, naming unknown keys clearly."""
    from dataclasses import fields

    from omegaconf import OmegaConf

    values = OmegaConf.to_container(section, resolve=True)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in {name}: {unknown}; expected some of {sorted(known)}")
    if "betas" in values:
        values["betas"] = tuple(values["betas"])
    return cls(**values)


def cmd_pretrain(cfg) -> None:
    import envs
    from worldjepa.eval.plots import plot_metrics
    from worldjepa.models.encoder import EncoderConfig
    from worldjepa.train.loop import TrainConfig
    from worldjepa.train.pretrain import JEPAConfig, pretrain

    enc = _dataclass_from(EncoderConfig, cfg.model, "model")
    obj = _dataclass_from(JEPAConfig, cfg.objective, "objective")
    train = _dataclass_from(TrainConfig, cfg.train, "train")
    probe_env = envs.make(cfg.env.name).unwrapped if cfg.probe else None
    run_dir = str(cfg.run_dir)
    metrics = pretrain(
        str(cfg.data), run_dir, enc, obj, train, device=resolve_device(str(cfg.device)), val_fraction=float(cfg.val_fraction), probe_env=probe_env
    )
    png = plot_metrics(
        os.path.join(run_dir, "metrics.csv"),
        os.path.join(run_dir, "curves.png"),
        ["loss", "pred_loss", "target_std_mean", "rankme_tokens", "sigreg", "vicreg_var"],
    )
    report.say(f"pre-training done: {run_dir}/final (encoder weights: target_encoder.*)")
    report.table([(k, f"{v:.4g}") for k, v in metrics.items() if k in ("step", "loss", "target_std_mean", "rankme_tokens") or k.startswith("r2/")])
    if png:
        report.say(f"learning curves: {png}")


def cmd_train(cfg) -> None:
    import json

    from omegaconf import OmegaConf

    from worldjepa.data.episodes import EpisodeStore
    from worldjepa.eval.plots import plot_metrics
    from worldjepa.eval.rollout_eval import open_loop_errors, plot_errors
    from worldjepa.models.encoder import EncoderConfig
    from worldjepa.models.predictor import PredictorConfig
    from worldjepa.train.loop import TrainConfig
    from worldjepa.train.world import WorldObjective, train_world_model
    from worldjepa.world_model import WorldModel

    enc = _dataclass_from(EncoderConfig, cfg.model, "model")
    obj = _dataclass_from(WorldObjective, cfg.objective, "objective")
    train = _dataclass_from(TrainConfig, cfg.train, "train")
    pcfg = OmegaConf.to_container(cfg.predictor, resolve=True)
    store = EpisodeStore(str(cfg.data))
    use_proprio = bool(pcfg.pop("use_proprio"))
    pcfg.update(
        enc_dim=enc.dim, grid=enc.grid, action_dim=store.meta["action_dim"] * obj.frameskip, proprio_dim=store.meta["proprio_dim"] if use_proprio else 0
    )
    pred = _dataclass_from(PredictorConfig, OmegaConf.create(pcfg), "predictor")
    encoder = None if str(cfg.encoder) == "scratch" else str(cfg.encoder)
    run_dir = str(cfg.run_dir)
    model, metrics = train_world_model(
        str(cfg.data), run_dir, enc, pred, obj, train, encoder_ckpt=encoder, device=resolve_device(str(cfg.device)), val_fraction=float(cfg.val_fraction)
    )
    plot_metrics(os.path.join(run_dir, "metrics.csv"), os.path.join(run_dir, "curves.png"), ["loss", "tf_loss", "rollout_loss", "reg"])
    report.say(f"world model: {run_dir}/final")
    if int(cfg.readout_frames) > 0 and pred.proprio_dim:
        from worldjepa.train.readout import add_readout

        info = add_readout(os.path.join(run_dir, "final"), str(cfg.data), max_frames=int(cfg.readout_frames))
        model = WorldModel.load(os.path.join(run_dir, "final"), map_location=next(model.parameters()).device)
        report.say(f"goal read-out fitted on {info['frames']} frames: held-out mean abs error per proprio dim {info['val_err']}")
    if int(cfg.prior_refit_epochs) > 0 and pred.z_dim and pred.z_kind == "categorical" and pred.proprio_dim:
        from worldjepa.train.prior_fit import refit_prior

        info = refit_prior(os.path.join(run_dir, "final"), str(cfg.data), epochs=int(cfg.prior_refit_epochs), device=next(model.parameters()).device)
        model = WorldModel.load(os.path.join(run_dir, "final"), map_location=next(model.parameters()).device)
        report.say(
            f"prior refitted on its codes' winners ({info['transitions']} transitions): held-out cross-entropy "
            f"{info['val_ce_before']:.3f} -> {info['val_ce_after']:.3f} nats (epoch {info['best_epoch']} of {info['epochs']})"
        )
    if int(cfg.eval_horizon) > 0:
        import envs  # only the evaluation needs the simulator (for the probed quantity)
        from worldjepa.train.checkpoint import read_meta

        meta = read_meta(os.path.join(run_dir, "final"))
        longest = max(int(e["length"]) for e in store.entries) // obj.frameskip - obj.history
        horizon = min(int(cfg.eval_horizon), longest)
        if horizon < int(cfg.eval_horizon):
            report.say(f"eval_horizon {cfg.eval_horizon} is longer than the episodes allow at frameskip {obj.frameskip}; evaluating {horizon} steps")
        res = open_loop_errors(model, str(cfg.data), meta["train_episodes"], meta["val_episodes"], envs.make(cfg.env.name).unwrapped, horizon=horizon)
        with open(os.path.join(run_dir, "rollout_eval.json"), "w") as f:
            json.dump(res, f, indent=2)
        png = plot_errors(res, os.path.join(run_dir, "rollout_error.png"), f"{cfg.env.name}: open-loop error on held-out episodes")
        rows = []
        for h in sorted({1, min(5, len(res["horizon"])), len(res["horizon"])}):
            lat, pr = res["latent"], res["probe_m"]
            rows.append(
                (
                    f"h={h}",
                    f"latent {lat['model'][h - 1]:.4f} (copy {lat['copy_last'][h - 1]:.4f}, shuffled {lat['shuffled'][h - 1]:.4f}); {res['probe_name']} {pr['model'][h - 1]:.4f} m (copy {pr['copy_last'][h - 1]:.4f}, shuffled {pr['shuffled'][h - 1]:.4f})",
                )
            )
        report.table(rows)
        report.say(f"open-loop error plot: {png}")


def resolve_checkpoint(checkpoint: str, env: str) -> str:
    """``auto``: your own runs/world_<env>/final if it exists, else the model shipped for env."""
    from worldjepa.world_model import shipped_model

    if checkpoint != "auto":
        return checkpoint
    own = os.path.join("runs", f"world_{env}", "final")
    if os.path.exists(os.path.join(own, "meta.json")):
        return own
    shipped = shipped_model(env)
    if shipped is None:
        raise FileNotFoundError(
            f"no world model for {env}: none in {own} and none shipped for {env}; train one (worldjepa train env={env}) or pass model=<dir>"
        )
    report.say(f"using the world model shipped for {env}: {shipped}")
    return shipped


def cmd_ship(argv: list[str]) -> int:
    """worldjepa ship <run>/final: store a trained world model in the package (fp16), as the default for its task."""
    from worldjepa.world_model import SHIPPED_DIR, WorldModel

    if len(argv) != 1:
        report.error("usage: worldjepa ship <world-model checkpoint dir>")
        return 2
    from worldjepa.train.checkpoint import read_meta

    src = argv[0]
    wm = WorldModel.load(src)
    meta = read_meta(src)
    keep = {k: meta[k] for k in ("objective", "train", "step", "train_episodes", "val_episodes") if k in meta}
    import torch

    out = wm.save(os.path.join(SHIPPED_DIR, wm.spec.task), dtype=torch.float16, meta={**keep, "shipped_from": os.path.abspath(src)})
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    report.say(f"shipped {src} as the default {wm.spec.task} model: {out} ({size / 2**20:.1f} MiB, fp16)")
    return 0


def _checkpoint_command(argv: list[str], name: str, options: dict[str, str], run) -> int:
    """A command on one checkpoint: ``worldjepa <name> <ckpt> [key=<value> ...]`` with the
    keys of ``options`` (key -> placeholder for the usage line). ``run(ckpt, opts)`` does
    the work and returns the line to print; a usage error or a refused input exits 2."""
    args = [a for a in argv if "=" not in a]
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    unknown = set(opts) - set(options)
    if len(args) != 1 or unknown:
        usage = " ".join(f"[{k}={v}]" for k, v in options.items())
        report.error(f"usage: worldjepa {name} <world-model checkpoint dir> {usage}{'; unknown: ' + ', '.join(sorted(unknown)) if unknown else ''}")
        return 2
    from worldjepa.data.episodes import DatasetError
    from worldjepa.train.checkpoint import CheckpointError

    try:
        message = run(args[0], opts)
    except (ValueError, FileNotFoundError, DatasetError, CheckpointError) as exc:
        report.error(str(exc))
        return 2
    report.say(message)
    return 0


def cmd_readout(argv: list[str]) -> int:
    """worldjepa readout <ckpt> [data=<dir>] [frames=<n>]: fit the goal read-out of an existing world model."""
    from worldjepa.train.readout import add_readout

    def run(ckpt: str, opts: dict) -> str:
        info = add_readout(ckpt, opts.get("data"), max_frames=int(opts.get("frames", 6000)))
        return f"goal read-out of {ckpt}: ridge on {info['frames']} frames, held-out mean abs error per proprio dim {info['val_err']}"

    return _checkpoint_command(argv, "readout", {"data": "<dir>", "frames": "<n>"}, run)


def cmd_refit_prior(argv: list[str]) -> int:
    """worldjepa refit-prior <ckpt> [data=<dir>] [epochs=<n>]: refit the prior of an existing categorical latent model."""
    from worldjepa.train.prior_fit import refit_prior

    def run(ckpt: str, opts: dict) -> str:
        info = refit_prior(ckpt, opts.get("data"), epochs=int(opts.get("epochs", 300)))
        return (
            f"prior of {ckpt} refitted on {info['transitions']} transitions: held-out cross-entropy {info['val_ce_before']:.3f} -> "
            f"{info['val_ce_after']:.3f} nats (epoch {info['best_epoch']} of {info['epochs']})"
        )

    return _checkpoint_command(argv, "refit-prior", {"data": "<dir>", "epochs": "<n>"}, run)


def _all_steps_weight(value) -> float:
    """``energy_all_steps`` from the config: true / false or a weight in [0, 1]."""
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"energy_all_steps must be true, false or a weight in [0, 1], got {value!r}") from None
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"energy_all_steps must be true, false or a weight in [0, 1], got {value!r}")
    return w


def _warn_beyond_trained_horizon(ckpt: str, horizon: int) -> None:
    """Warn when the plan is longer than the rollouts the model was trained on: past them the
    predictions drift (on TwoRoom an agent resting on the goal was predicted to slide 0.1-0.17 m
    over model steps 6-8 of a model trained on 5-step rollouts)."""
    import warnings

    from worldjepa.train.checkpoint import read_meta

    obj = read_meta(ckpt).get("objective", {})
    trained = obj.get("rollout_steps")
    if trained and horizon > int(trained):
        warnings.warn(
            f"planner.horizon={horizon} is longer than the {trained}-step rollouts {ckpt} was trained on; predictions past step {trained} "
            f"drift. Train with objective.rollout_steps={horizon} objective.clip_len={horizon + 1} to plan this far.",
            stacklevel=2,
        )


def plan_cost_kwargs(cfg) -> dict:
    """The energy settings of a ``plan`` config, as keyword arguments of ``goal_cost``."""
    return {
        "energy": str(cfg.energy),
        "proprio_weight": float(cfg.energy_proprio_weight),
        "all_steps": _all_steps_weight(cfg.energy_all_steps),
        "futures": int(cfg.risk.futures),
        "risk": str(cfg.risk.aggregate),
        "beta": float(cfg.risk.beta),
        "alpha": float(cfg.risk.alpha),
        "common_noise": bool(cfg.risk.common_noise),
        "proprio_noise": float(cfg.risk.proprio_noise),
        "min_prob": float(cfg.risk.min_prob),
        "stratified": bool(cfg.risk.stratified),
        "hold": bool(cfg.hold_actions),
        "action_weight": float(cfg.energy_action_weight),
        "latent_weight": float(cfg.energy_latent_weight),
        "proprio_scale": str(cfg.energy_proprio_scale),
        "proprio_norm": str(cfg.energy_proprio_norm),
    }


def cmd_plan(cfg) -> None:
    import json

    import hydra as _hydra

    from worldjepa.eval.planning import evaluate
    from worldjepa.world_model import WorldModel

    episodes, budget = int(cfg.episodes), int(cfg.budget)
    if episodes <= 0 or budget <= 0:
        raise ValueError(f"episodes and budget must be > 0, got {episodes}, {budget}")
    from omegaconf import OmegaConf

    from worldjepa.eval.planning import members_of

    device = resolve_device(str(cfg.device))
    # model=<dir>, or model=[<dir>,<dir>,...]: an ensemble whose members' futures are pooled (ensemble_cost)
    many = OmegaConf.is_list(cfg.checkpoint)
    if many and len(cfg.checkpoint) == 0:
        raise ValueError("model=[] names no checkpoint: give a directory, or a list of them for an ensemble")
    ckpts = [resolve_checkpoint(str(c), cfg.env.name) for c in (cfg.checkpoint if many else [cfg.checkpoint])]
    members = members_of([WorldModel.load(c, map_location=device) for c in ckpts])
    futures = int(cfg.risk.futures)
    flat = [c for c, m in zip(ckpts, members) if m.latent is None]
    if futures > 1 and flat:  # name the member: an ensemble's error would otherwise not say which
        raise ValueError(
            f"risk.futures={futures} samples futures from each model's latent variable, but {', '.join(flat)} {'has' if len(flat) == 1 else 'have'} none "
            f"(deterministic: predictor.z_dim=0): use risk.futures=1, or plan without it"
        )
    wm, ckpt = members[0], (ckpts if many else ckpts[0])
    hold = bool(cfg.hold_actions)

    def make_planner():
        try:
            return _hydra.utils.instantiate(cfg.planner, action_dim=wm.spec.env_action_dim if hold else wm.action_dim)
        except _hydra.errors.InstantiationException as exc:
            cause = exc.__cause__ or exc
            raise ValueError(f"bad planner settings: {cause}") from None

    make_planner()  # fail early on bad planner settings
    import warnings

    from worldjepa.eval.planning import EVAL_SEED0

    first, record = int(cfg.first_seed), (str(cfg.record) if cfg.record is not None else None)
    if record is not None and first < EVAL_SEED0 + 50 and first + episodes > EVAL_SEED0:
        warnings.warn(
            f"record={record} with first_seed={first}: these episodes overlap the evaluation list (seeds {EVAL_SEED0}-{EVAL_SEED0 + 49}); "
            f"a model trained on them is then evaluated on its own training data (use e.g. first_seed=100000)",
            stacklevel=2,
        )
    for c in ckpts:
        _warn_beyond_trained_horizon(c, int(cfg.planner.horizon))
    out = str(cfg.out)
    cost_kw = plan_cost_kwargs(cfg)
    summary, _ = evaluate(
        cfg.env.name,
        members,
        make_planner,
        episodes,
        budget,
        int(cfg.execute),
        media_dir=out,
        media_episodes=int(cfg.media_episodes),
        progress=bool(cfg.progress),
        cost_kw=cost_kw,
        shrink=bool(cfg.shrink_horizon),
        first_seed=first,
        record=record,
        record_info={"model": ckpt},
    )
    summary.update(
        env=cfg.env.name,
        model=ckpt,
        planner=OmegaConf.to_container(cfg.planner, resolve=True),
        budget=budget,
        execute=int(cfg.execute),
        energy=cost_kw["energy"],
        energy_proprio_weight=cost_kw["proprio_weight"],
        energy_all_steps=cost_kw["all_steps"],
        energy_action_weight=cost_kw["action_weight"],
        energy_latent_weight=cost_kw["latent_weight"],
        energy_proprio_scale=cost_kw["proprio_scale"],
        energy_proprio_norm=cost_kw["proprio_norm"],
        hold_actions=hold,
        shrink_horizon=bool(cfg.shrink_horizon),
        first_seed=first,
        record=record,
        risk=OmegaConf.to_container(cfg.risk),
    )
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json.tmp"), "w") as f:
        json.dump(summary, f, indent=2)
    os.replace(os.path.join(out, "results.json.tmp"), os.path.join(out, "results.json"))
    lo, hi = summary["success_ci95"]
    report.say(f"{cfg.env.name}: {summary['successes']}/{episodes} episodes reached the goal image")
    report.table(
        [
            ("success rate", f"{summary['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%})"),
            ("final distance", f"{summary['final_distance_mean']:.4f} (task units; {summary['start_distance_mean']:.4f} at the start)"),
            ("time per replan", f"{summary['replan_seconds_mean']:.3f} s"),
            *(
                [
                    (
                        "trapped by the hazard",
                        f"{summary['trapped_share']:.0%} of episodes ({summary['trapped_by_gust_share']:.0%} thrown in by a gust, "
                        f"{summary['trapped_driving_in_share']:.0%} driven in)",
                    )
                ]
                if "trapped_share" in summary
                else []
            ),
            *([("entered the gust strip", f"{summary['entered_share']:.0%} of episodes")] if "entered_share" in summary else []),
            *([("pushed by a gust", f"{summary['pushed_share']:.0%} of episodes")] if "pushed_share" in summary else []),
            ("budget", f"{budget} env steps, planner {cfg.planner._target_.split('.')[-1]}"),
            ("results", os.path.join(out, "results.json")),
        ]
    )


def cmd_pipeline(cfg) -> None:
    """Each stage composes its own sub-command's config, so defaults stay in one place."""
    import time

    from hydra import compose
    from omegaconf import open_dict

    from worldjepa.data.episodes import EpisodeStore

    root, env = str(cfg.root), str(cfg.env.name)
    data, pre, world, plan = (os.path.join(root, d) for d in ("data", "pretrain", "world", "plan"))
    t0 = time.perf_counter()
    have = len(EpisodeStore(data)) if os.path.exists(os.path.join(data, "dataset.json")) else 0
    if have < int(cfg.episodes):
        report.say(f"[1/4] collecting {int(cfg.episodes) - have} episodes of {env}")
        cmd_collect(compose("collect", overrides=[f"env={env}", f"episodes={int(cfg.episodes) - have}", f"out={data}", f"workers={int(cfg.workers)}"]))
    else:
        report.say(f"[1/4] dataset {data} has {have} episodes: kept")
    if not os.path.exists(os.path.join(pre, "final", "meta.json")):
        report.say("[2/4] pre-training the encoder")
        cmd_pretrain(
            compose("pretrain", overrides=[f"env={env}", f"data={data}", f"run_dir={pre}", f"train.steps={int(cfg.pretrain_steps)}", f"device={cfg.device}"])
        )
    else:
        report.say(f"[2/4] encoder {pre}/final exists: kept")
    if not os.path.exists(os.path.join(world, "final", "meta.json")):
        report.say("[3/4] training the world model")
        wcfg = compose(
            "train",
            overrides=[f"env={env}", f"data={data}", f"encoder={pre}/final", f"run_dir={world}", f"train.steps={int(cfg.train_steps)}", f"device={cfg.device}"],
        )
        with open_dict(wcfg):
            wcfg.predictor = cfg.predictor
        cmd_train(wcfg)
    else:
        report.say(f"[3/4] world model {world}/final exists: kept")
    report.say("[4/4] planning towards goal images")
    pcfg = compose("plan", overrides=[f"env={env}", f"checkpoint={world}/final", f"episodes={int(cfg.plan_episodes)}", f"out={plan}", f"device={cfg.device}"])
    with open_dict(pcfg):
        pcfg.planner = cfg.planner
    cmd_plan(pcfg)
    report.say(f"pipeline {env} done in {time.perf_counter() - t0:.0f} s")


HYDRA_COMMANDS: dict[str, Callable] = {"pipeline": cmd_pipeline, "collect": cmd_collect, "pretrain": cmd_pretrain, "train": cmd_train, "plan": cmd_plan}


def _run_hydra(name: str, overrides: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig

    from worldjepa.data.episodes import DatasetError
    from worldjepa.train.checkpoint import CheckpointError
    from worldjepa.train.loop import TrainingDiverged

    status = {"code": 0}

    @hydra.main(config_path=str(config_dir()), config_name=name, version_base="1.3")
    def app(cfg: DictConfig) -> None:
        try:
            HYDRA_COMMANDS[name](cfg)
        except (ValueError, TypeError, FileNotFoundError, DatasetError, CheckpointError, TrainingDiverged, RuntimeError) as exc:
            report.error(str(exc))
            status["code"] = 2
        except KeyboardInterrupt:
            report.error("interrupted; finished work is kept on disk")
            status["code"] = 130

    if name == "plan":
        # `model` is also the encoder-preset config group; for plan it names the checkpoint
        overrides = ["checkpoint=" + o[len("model=") :] if o.startswith("model=") else o for o in overrides]
    saved = sys.argv
    sys.argv = [f"worldjepa {name}", *overrides]
    try:
        app()
    finally:
        sys.argv = saved
    return status["code"]


# ----- plain sub-commands ------------------------------------------------------------
def cmd_dataset(argv: list[str]) -> int:
    from worldjepa.data.episodes import DatasetError, EpisodeStore
    from worldjepa.data.info import contact_sheet, summarize

    parser = argparse.ArgumentParser(prog="worldjepa dataset", description="Inspect a collected dataset.")
    sub = parser.add_subparsers(dest="action", required=True)
    p_info = sub.add_parser("info", help="print a summary and write a contact-sheet PNG")
    p_info.add_argument("dir")
    p_info.add_argument("--sheet", default=None, help="PNG path (default: <dir>/contact_sheet.png)")
    p_verify = sub.add_parser("verify", help="check every episode's checksum and decoding")
    p_verify.add_argument("dir")
    args = parser.parse_args(argv)
    try:
        store = EpisodeStore(args.dir)
        if args.action == "info":
            s = summarize(store)
            report.say(f"dataset {s['root']}")
            report.table([(k, v) for k, v in s.items() if k != "root"])
            if len(store):
                sheet = contact_sheet(store, args.sheet or os.path.join(store.root, "contact_sheet.png"))
                report.say(f"contact sheet: {sheet}")
            return 0
        problems = store.verify()
        for p in problems:
            report.error(p)
        report.say(f"{len(store) - len(problems)} of {len(store)} episodes OK")
        return 1 if problems else 0
    except (FileNotFoundError, DatasetError) as exc:
        report.error(str(exc))
        return 2


USAGE = """usage: worldjepa <command> [key=value ...]

commands:
  collect     collect rollouts into a dataset (Hydra: worldjepa collect --help)
  pretrain    V-JEPA pre-training of the video encoder (Hydra: worldjepa pretrain --help)
  train       train the action-conditioned world model (Hydra: worldjepa train --help)
  plan        MPC towards goal images with a trained world model (Hydra: worldjepa plan --help)
  pipeline    collect -> pretrain -> train -> plan in one resumable command
  dataset     inspect a dataset: worldjepa dataset info <dir> | verify <dir>
  ship        store a trained world model in the package as its task's default: worldjepa ship <run>/final
  readout     fit the goal read-out (proprio from a goal image) of a trained model: worldjepa readout <run>/final
  refit-prior refit the prior of a categorical latent model on its codes' winners: worldjepa refit-prior <run>/final
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not log.handlers:  # our own messages only; third-party INFO logs stay quiet
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    if not argv or argv[0] in ("-h", "--help", "help"):
        report.say(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name in HYDRA_COMMANDS:
        return _run_hydra(name, rest)
    if name == "dataset":
        return cmd_dataset(rest)
    if name == "ship":
        return cmd_ship(rest)
    if name == "readout":
        return cmd_readout(rest)
    if name == "refit-prior":
        return cmd_refit_prior(rest)
    report.error(f"unknown command {name!r}")
    report.say(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
