"""Goal-image planning runs (DESIGN.md section 3 protocol).

For a fixed list of (start, goal) pairs (seeds 1000, 1001, ...), the planner sees only
the current observation (pixels and proprio), the goal *image*, and its own
observations after acting. It is never told whether the goal was reached: it acts until
the step budget is spent, and success is the task's own criterion at the end.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from envs.base import EpisodeRecord
from planners import MPC
from planners.risk import aggregate, check_risk
from worldjepa.models.latent import check_min_prob
from worldjepa.world_model import WorldModel, check_energy_terms, steps_weight

log = logging.getLogger(__name__)

EVAL_SEED0 = 1000  # episode i of an evaluation uses reset seed EVAL_SEED0 + i


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a success rate."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def goal_cost(
    wm: WorldModel,
    context: torch.Tensor,
    goal: torch.Tensor,
    proprio: torch.Tensor | None,
    energy: str = "l1",
    proprio_weight: float = 0.0,
    goal_proprio: torch.Tensor | None = None,
    all_steps: bool | float = False,
    futures: int = 1,
    risk: str = "mean",
    beta: float = 0.0,
    alpha: float = 1.0,
    hold: bool = False,
    common_noise: bool = True,
    noise_seed: int = 0,
    action_weight: float = 0.0,
    latent_weight: float = 1.0,
    proprio_scale: str = "decoder",
    proprio_noise: float = 0.0,
    proprio_norm: str = "l1",
    min_prob: float = 0.0,
    stratified: bool = False,
    reduce: bool = True,
    context_actions: torch.Tensor | None = None,
):
    """Cost closure for planners: candidate action sequences -> energy to the goal.

    The energy is the distance between the predicted final state tokens and the goal's,
    plus ``proprio_weight`` x the distance between the predicted final proprio and the
    proprio the model reads from the goal image (never the goal's true proprio), each
    dimension divided by the decoder's training error (``WorldModel.proprio_distance``).

    Args:
        context: (1, C, K, D) state tokens of the current observation, after the C - 1
            observations before it (C up to the model's trained ``history``).
        goal: (1, K, D) state tokens of the goal image.
        proprio: (1, C, P) the same steps' proprio, if the model uses it.
        context_actions: (1, C - 1, A) the model actions executed between those steps
            (needed when C > 1).
        goal_proprio: (1, P) proprio read from the goal image (``WorldModel.encode_goal``),
            needed when ``proprio_weight > 0``.
        all_steps: weight in [0, 1] of the energy averaged over every predicted step
            against the final step's (``WorldModel.goal_energy``); True = 1, False = 0.
        futures: sampled futures per candidate (latent models; 1 = the mean future).
        risk, beta, alpha: how the futures' energies become one cost (planners/risk.py):
            "mean", "mean_std" (mean + beta * std) or "cvar" (mean of the worst alpha).
        hold: candidates are env actions (A = the env's action size), each held for the
            model step's frameskip (``WorldModel.hold``), instead of full model actions.
        common_noise: with ``futures > 1``, every candidate, at every planner iteration,
            is scored on the same ``futures`` scenarios (common random numbers, drawn from
            ``noise_seed``): otherwise the elites are the candidates whose own draws missed
            the risk by luck, and the costs of one iteration and the next do not compare.
        action_weight: + this weight x the mean squared action of the candidate (a control
            cost, as in MPPI): where many plans reach about the same energy (an agent
            already on its goal), the planner keeps still instead of executing the random
            first action of whichever plan happened to score a hair lower.
        latent_weight: weight of the state-token distance (``WorldModel.goal_energy``);
            0 plans on the proprio term alone.
        proprio_scale: "decoder" | "readout", what each proprio dimension's distance is
            divided by (``WorldModel.proprio_distance``).
        proprio_norm: "l1" | "l2", how the proprio dimensions' distances are summed.
        proprio_noise: with ``futures > 1``, the std of the model's own error added to each
            predicted proprio step of each future (``WorldModel.sample_futures``).
        min_prob: with ``futures > 1`` and a categorical z, each prior draw skips the codes
            the prior gives less than this (``WorldModel.sample_futures``).
        stratified: with ``futures > 1``, a candidate's futures draw their z by systematic
            sampling, so that an outcome the prior gives at least 1/futures is never missed
            (``WorldModel.sample_futures``).
        reduce: False returns each future's energy, (B, N, futures), without the risk
            aggregation and the control cost (an ensemble pools its members' futures first:
            :func:`ensemble_cost`).

    Returns:
        cost(actions (B, N, H, A)) -> (B, N), or (B, N, futures) with ``reduce=False``.
    """

    check_risk(risk, beta, alpha)
    steps_weight(all_steps)  # fail on a bad weight now, not at the first plan
    check_energy_terms(latent_weight, proprio_scale, proprio_norm)
    if latent_weight == 0 and proprio_weight <= 0:
        raise ValueError("energy_latent_weight=0 needs energy_proprio_weight > 0: the energy would be zero for every plan")
    if not action_weight >= 0:
        raise ValueError(f"energy_action_weight must be >= 0, got {action_weight}")
    if futures <= 0:
        raise ValueError(f"futures (sampled futures per candidate) must be >= 1, got {futures}")
    if futures > 1 and wm.latent is None:
        raise ValueError("futures > 1 needs a model with a latent variable (predictor.z_dim > 0); this one predicts a single future")
    if not proprio_noise >= 0:
        raise ValueError(f"risk.proprio_noise must be >= 0 (a std in proprio units), got {proprio_noise}")
    if proprio_noise and futures <= 1:
        raise ValueError(f"risk.proprio_noise={proprio_noise} perturbs sampled futures: it needs risk.futures > 1")
    check_min_prob(min_prob)  # fail at set-up, not at the first draw
    if min_prob and futures <= 1:
        raise ValueError(f"risk.min_prob={min_prob} truncates the prior of sampled futures: it needs risk.futures > 1")
    if min_prob and (wm.latent is None or wm.latent.cfg.kind != "categorical"):
        raise ValueError(f"risk.min_prob={min_prob} truncates a categorical prior: this model has no categorical z")
    if stratified and futures <= 1:
        raise ValueError("risk.stratified=true spreads the draws of sampled futures: it needs risk.futures > 1")
    gen = torch.Generator().manual_seed(0)
    sampling = {"common": common_noise, "proprio_noise": proprio_noise, "min_prob": min_prob, "stratified": stratified}
    # the observation and goal are constants of the plan (no graph back into the encoder)
    context, goal = context.detach(), goal.detach()
    proprio = proprio.detach() if proprio is not None else None
    context_actions = context_actions.detach() if context_actions is not None else None
    goal_proprio = goal_proprio.detach() if goal_proprio is not None else None
    if proprio_weight > 0 and (proprio is None or goal_proprio is None):
        raise ValueError("energy_proprio_weight > 0 needs a model with proprio and a proprio decoder (predictor.proprio_decoder_hidden > 0)")

    def cost(actions: torch.Tensor) -> torch.Tensor:
        effort = actions.pow(2).mean(dim=(-1, -2)) if action_weight > 0 else None  # (B, N)
        if hold:
            actions = wm.hold(actions)
        B, N, H, A = actions.shape
        ctx = context.expand(B * N, -1, -1, -1)
        prop = proprio.expand(B * N, -1, -1) if proprio is not None else None
        past = context_actions.expand(B * N, -1, -1) if context_actions is not None else None
        flat = actions.reshape(B * N, H, A)
        if futures > 1:  # (B*N, k, H, ...) -> energies (B*N, k) -> one risk-aggregated cost
            if common_noise:
                gen.manual_seed(noise_seed)
            pred, pred_p = wm.sample_futures(ctx, flat, futures, prop, context_actions=past, generator=gen, **sampling)
            g = goal.expand(B * N, -1, -1).unsqueeze(1)
        else:  # gradient planners pass actions that require grad and differentiate through the rollout
            pred, pred_p = wm.rollout(ctx, flat, prop, context_actions=past, grad=actions.requires_grad)  # (B*N, H, K, D)
            g = goal.expand(B * N, -1, -1)
        e = wm.goal_energy(
            pred,
            pred_p,
            g,
            goal_proprio,
            kind=energy,
            proprio_weight=proprio_weight,
            all_steps=all_steps,
            latent_weight=latent_weight,
            proprio_scale=proprio_scale,
            proprio_norm=proprio_norm,
        )
        if not reduce:
            return e.view(B, N, -1)
        if futures > 1:
            e = aggregate(e, risk, beta, alpha)
        e = e.view(B, N)
        return e + action_weight * effort if effort is not None else e

    return cost


def members_of(wm) -> list[WorldModel]:
    """One world model, or an ensemble given as a list of them, as a list; an ensemble's
    members must agree on everything a plan relies on (task, image size, action and proprio
    sizes, frameskip, history), else ValueError names the first difference."""
    members = list(wm) if isinstance(wm, (list, tuple)) else [wm]
    if not members:
        raise ValueError("an ensemble needs at least one world model")
    first = members[0].spec.to_dict()
    for i, m in enumerate(members[1:], 1):
        spec = m.spec.to_dict()
        for key in ("task", "image_size", "env_action_dim", "frameskip", "proprio_dim", "history"):
            if spec[key] != first[key]:
                raise ValueError(
                    f"ensemble member {i} has {key}={spec[key]!r}, member 0 has {first[key]!r}: the members must be trained for the same task and interface"
                )
    return members


def ensemble_cost(costs: list, risk: str = "mean", beta: float = 0.0, alpha: float = 1.0, action_weight: float = 0.0):
    """One cost from several members' unreduced costs (``goal_cost(..., reduce=False)``).

    Each member scores every candidate on its own ``futures`` sampled futures (with
    ``futures = 1`` its mean future, so deterministic members form an ensemble too; with
    more, every member needs a latent variable); the members' futures are pooled and the
    pool is aggregated by ``risk`` as one model's futures are. So the model's own
    disagreement (where members trained from different seeds predict different outcomes:
    epistemic uncertainty) counts as risk alongside the latent's sampled outcomes
    (aleatoric), in the manner of PETS's probabilistic ensembles. CVaR over the pool takes
    the worst ``alpha`` share of all members' futures.
    """
    check_risk(risk, beta, alpha)
    if not costs:
        raise ValueError("an ensemble cost needs at least one member's cost")

    def cost(actions: torch.Tensor) -> torch.Tensor:
        e = torch.cat([c(actions) for c in costs], dim=-1)  # (B, N, members x futures)
        e = aggregate(e, risk, beta, alpha)
        if action_weight > 0:
            e = e + action_weight * actions.pow(2).mean(dim=(-1, -2))
        return e

    return cost


def replan_cost(
    members: list[WorldModel], goals: list, obs: dict, cost_kw: dict, device: torch.device | str = "cpu", past: list[tuple[dict, np.ndarray]] | None = None
):
    """One replan's cost from observation ``obs`` (``pixels``, ``proprio``): each member
    encodes it and scores candidates towards its own read of the goal (``goals``: the
    members' ``encode_goal`` outputs); one model aggregates its own futures, an ensemble
    pools them first (:func:`ensemble_cost`). ``cost_kw`` are :func:`goal_cost`'s energy
    settings, ``noise_seed`` included.

    ``past``: for models trained with a history of C > 1 steps, up to C - 1 earlier
    (observation, model action executed from it) pairs at model-step spacing, oldest
    first; they join the context. Early in an episode the context is shorter (the
    teacher-forced loss trains every step, the first too, on the steps before it alone)."""
    spec = members[0].spec
    past = list(past or [])[-(spec.history - 1) :] if spec.history > 1 else []
    seen = [o for o, _ in past] + [obs]
    prop = torch.from_numpy(np.stack([o["proprio"] for o in seen]))[None].to(device) if spec.proprio_dim else None
    pixels = torch.from_numpy(np.stack([o["pixels"] for o in seen]))[None].to(device)
    acts = torch.from_numpy(np.stack([a for _, a in past])).float()[None].to(device) if past else None
    single = len(members) == 1
    costs = []
    for m, (goal, goal_p) in zip(members, goals):
        with torch.no_grad():
            ctx = m.encode(pixels)
        costs.append(goal_cost(m, ctx, goal, prop, goal_proprio=goal_p, **cost_kw, reduce=single, context_actions=acts))
    if single:
        return costs[0]
    return ensemble_cost(costs, cost_kw.get("risk", "mean"), cost_kw.get("beta", 0.0), cost_kw.get("alpha", 1.0), cost_kw.get("action_weight", 0.0))


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    final_distance: float
    replan_seconds: list[float]
    frames: list[np.ndarray]
    goal_pixels: np.ndarray
    energies: list[list[float]]  # per replan, best energy per planner iteration
    trapped: bool | None = None  # tasks with a hazard (info["trapped"]) at the end; None elsewhere
    trap_cause: str | None = None  # when trapped: "gust" (a push within the model step before) or "drove in"
    start_distance: float = float("nan")  # the task's distance to the goal at the start: how much of it the plan closed
    pushes: int | None = None  # tasks with gusts (info["pushed"]): how many times a gust pushed the agent
    entered: int | None = None  # tasks with gusts (info["entered"]): how many times the plan entered the strip, pushed or not
    path: list[list[float]] | None = None  # the task's achieved state (e.g. the agent's position) at the start and after each model step
    entries: list[list[float]] | None = None  # tasks with gusts: the proprio one env step before each entry into the strip
    episode: dict[str, np.ndarray] | None = None  # with record=True: the executed episode as dataset arrays (EpisodeStore.append)


class TrapCause:
    """Why a hazard trapped the agent, from the env's step infos (``trapped``, ``pushed``):
    ``"gust"`` when a push came within ``window`` env steps up to the trapping step (one model
    step), ``"drove in"`` otherwise (the plan itself led into the pit); None while free.
    ``pushes`` counts the pushes, ``entered`` the times the plan took the agent into the
    strip (``info["entered"]``; where a task reports only pushes, every push is an entry)."""

    def __init__(self, window: int) -> None:
        self.window, self.since_push, self.cause, self._trapped = window, None, None, False
        self.pushes = self.entered = 0

    def update(self, info: dict) -> bool:
        """Take one env step's info; returns whether the agent entered the strip in it."""
        if self.since_push is not None:
            self.since_push += 1
        if info.get("pushed"):
            self.since_push = 0
            self.pushes += 1
        entered = bool(info.get("entered", info.get("pushed")))
        self.entered += entered
        if info.get("trapped") and not self._trapped:
            self.cause = "gust" if self.since_push is not None and self.since_push < self.window else "drove in"
        self._trapped = bool(info.get("trapped"))
        return entered


def run_episode(
    env,
    wm: WorldModel | list[WorldModel],
    planner,
    seed: int,
    budget: int,
    execute: int = 1,
    keep_frames: bool = False,
    cost_kw: dict | None = None,
    shrink: bool = False,
    record: bool = False,
) -> EpisodeResult:
    """One MPC episode towards the goal image of ``env.reset(seed=seed)``.

    ``wm``: one world model, or an ensemble (a list of them) whose members' futures are
    pooled before the risk aggregation (:func:`ensemble_cost`).

    ``record``: also return the executed episode as dataset arrays (every frame, env
    action, proprio and simulator state; ``EpisodeResult.episode``), so that a model can
    be trained on the states its own planner visits.

    ``budget`` counts env steps; each model action is ``frameskip`` env actions.
    ``cost_kw`` holds the energy settings passed to :func:`goal_cost` (energy, proprio_weight,
    all_steps, futures, risk, beta, alpha, hold); with ``hold`` the planner's actions are env
    actions held for the frameskip.
    """
    members = members_of(wm)
    wm = members[0]
    spec = wm.spec
    obs, info = env.reset(seed=seed)
    start_distance = float(info["distance"])
    goal_px = info["goal_pixels"]
    if goal_px.shape != (spec.image_size, spec.image_size, 3) or goal_px.dtype != np.uint8:
        raise ValueError(f"goal image must be uint8 ({spec.image_size}, {spec.image_size}, 3) for this model, got {goal_px.dtype} {goal_px.shape}")
    device = next(wm.parameters()).device
    with torch.no_grad():  # each member reads the goal image its own way: (1, K, D), (1, P) or None
        goals = [m.encode_goal(torch.from_numpy(goal_px)[None].to(device)) for m in members]
    fs = spec.frameskip
    state = {"obs": obs, "info": info, "frames": [obs["pixels"]] if keep_frames else []}
    traps = TrapCause(window=fs)
    gusty = "pushed" in info  # a task with gusts: count them
    achieved = getattr(env.unwrapped, "achieved", None)  # the task's goal-space state, where it has one
    path = [np.asarray(achieved(), dtype=float).tolist()] if achieved else None
    entries: list[list[float]] = []
    rec = EpisodeRecord(obs, info) if record else None
    past: list[tuple[dict, np.ndarray]] = []  # (observation, model action executed from it) of earlier model steps, for a history > 1

    def observe():
        return state["obs"]

    replans = [0]

    def make_cost(o):
        replans[0] += 1
        kw = dict(cost_kw or {})
        if kw.get("futures", 1) > 1:
            kw.setdefault("noise_seed", seed * 1000 + replans[0])  # new scenarios each replan
        return replan_cost(members, goals, o, kw, device, past=past)

    def act(a: torch.Tensor) -> bool:
        if (cost_kw or {}).get("hold"):
            a = wm.hold(a)
        chunks = np.clip(a.detach().cpu().numpy().reshape(fs, spec.env_action_dim), -1, 1)  # as executed
        if spec.history > 1:  # the context of later replans (replan_cost keeps the last history - 1)
            past.append((state["obs"], chunks.reshape(-1).astype(np.float32)))
        done = False
        for chunk in chunks:
            before = state["obs"].get("proprio")
            o, _, terminated, truncated, inf = env.step(chunk.astype(np.float32))
            if traps.update(inf) and before is not None:
                entries.append(np.asarray(before, dtype=float).tolist())
            if rec is not None:
                rec.add(chunk, o, inf)
            state["obs"], state["info"] = o, inf
            if keep_frames:
                state["frames"].append(o["pixels"])
            if terminated or truncated:
                done = True
                break
        if path is not None:
            path.append(np.asarray(achieved(), dtype=float).tolist())
        return done

    model_budget = max(1, budget // fs)
    mpc = MPC(planner, execute=execute, budget=model_budget, device=device, shrink=shrink)
    log_ = mpc.run(observe, make_cost, act)
    final = state["info"]
    energies = [[float(h["best"][0]) for h in hist] for hist in log_.histories]
    trapped = bool(final["trapped"]) if "trapped" in final else None
    episode = rec.arrays(env.unwrapped) if rec is not None else None
    return EpisodeResult(
        seed,
        bool(final["is_success"]),
        float(final["distance"]),
        log_.replan_seconds,
        state["frames"],
        goal_px,
        energies,
        trapped,
        start_distance=start_distance,
        trap_cause=traps.cause if trapped else None,
        pushes=traps.pushes if gusty else None,
        entered=traps.entered if gusty else None,
        path=path,
        entries=entries if gusty else None,
        episode=episode,
    )


def summarize(results: list[EpisodeResult]) -> dict:
    n = len(results)
    k = sum(r.success for r in results)
    lo, hi = wilson_interval(k, n)
    times = [t for r in results for t in r.replan_seconds]
    hazard = [r.trapped for r in results if r.trapped is not None]
    extra = {}
    if hazard:
        causes = [r.trap_cause for r in results if r.trapped]
        extra = {
            "trapped_share": sum(hazard) / len(hazard),
            "trapped_by_gust_share": causes.count("gust") / len(hazard),
            "trapped_driving_in_share": causes.count("drove in") / len(hazard),
        }
    gusted = [r.pushes > 0 for r in results if r.pushes is not None]
    if gusted:  # how often a gust pushed the agent
        extra["pushed_share"] = sum(gusted) / len(gusted)
    went_in = [r.entered > 0 for r in results if r.entered is not None]
    if went_in:  # how often the plan took the agent into the gust strip: the planner's choice, without the coin of whether and where the gust pushes
        extra["entered_share"] = sum(went_in) / len(went_in)
    return {
        **extra,
        "episodes": n,
        "successes": k,
        "success_rate": k / max(n, 1),
        "success_ci95": [lo, hi],
        "final_distance_mean": float(np.mean([r.final_distance for r in results])) if results else float("nan"),
        "start_distance_mean": float(np.mean([r.start_distance for r in results])) if results else float("nan"),
        "replan_seconds_mean": float(np.mean(times)) if times else float("nan"),
        "per_episode": [
            {
                "seed": r.seed,
                "success": r.success,
                "start_distance": r.start_distance,
                "final_distance": r.final_distance,
                **({"trapped": r.trapped} if r.trapped is not None else {}),
                **({"trap_cause": r.trap_cause} if r.trap_cause is not None else {}),
                **({"pushes": r.pushes} if r.pushes is not None else {}),
                **({"entered": r.entered} if r.entered is not None else {}),
                **({"entries": r.entries} if r.entries is not None else {}),
                **({"path": r.path} if r.path is not None else {}),
            }
            for r in results
        ],
    }


def save_episode_media(res: EpisodeResult, gif_path: str, png_path: str | None = None) -> None:
    """GIF of the executed trajectory beside the goal image; PNG of energy over planner iterations."""
    import os

    import imageio.v2 as imageio

    frames = [np.concatenate([f, res.goal_pixels], axis=1) for f in res.frames]
    frames = [np.kron(f, np.ones((3, 3, 1), dtype=np.uint8)) for f in frames]
    tmp = gif_path + ".tmp.gif"
    imageio.mimsave(tmp, frames, duration=0.1, loop=0)
    os.replace(tmp, gif_path)
    if png_path and res.energies:
        from worldjepa.eval.plots import plt, save_figure

        fig, ax = plt.subplots(figsize=(5, 3.2))
        for i, e in enumerate(res.energies[:: max(1, len(res.energies) // 8)]):
            ax.plot(e, label=f"replan {i * max(1, len(res.energies) // 8)}")
        ax.set_xlabel("planner iteration")
        ax.set_ylabel("best energy")
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, png_path)


def evaluate(
    env_name: str,
    wm: WorldModel | list[WorldModel],
    make_planner,
    episodes: int,
    budget: int,
    execute: int = 1,
    media_dir: str | None = None,
    media_episodes: int = 3,
    progress: bool = True,
    cost_kw: dict | None = None,
    shrink: bool = False,
    first_seed: int = EVAL_SEED0,
    record: str | None = None,
    record_info: dict | None = None,
) -> tuple[dict, list[EpisodeResult]]:
    """Run ``episodes`` planning episodes of the fixed evaluation list and summarise them.

    ``first_seed``: the reset seed of the first episode (the evaluation list starts at
    ``EVAL_SEED0``; data for training should come from other seeds). ``record``: a dataset
    directory to append every executed episode to (created if missing; an existing one
    must hold the same task and image size), each committed as soon as it ends, with
    ``record_info`` in its index entry: the planner's own visits, to train a model on.
    """
    import os

    from tqdm.auto import tqdm

    import envs

    members = members_of(wm)  # one model, or an ensemble (a list of models: ensemble_cost)
    wm = members[0]
    env = envs.make(env_name, max_episode_steps=budget + 1, image_size=wm.spec.image_size)
    if wm.spec.task != env_name:
        raise ValueError(f"the model was trained on {wm.spec.task!r}, not {env_name!r}: train one for {env_name} or pass env={wm.spec.task}")
    if env.action_space.shape[0] != wm.spec.env_action_dim:
        raise ValueError(f"the model was trained for {wm.spec.env_action_dim}-D actions, but {env_name} has {env.action_space.shape[0]}-D actions")
    if wm.spec.proprio_dim and env.observation_space["proprio"].shape[0] != wm.spec.proprio_dim:
        raise ValueError(f"the model expects {wm.spec.proprio_dim}-D proprio, but {env_name} gives {env.observation_space['proprio'].shape[0]}-D")
    u = env.unwrapped
    store = None
    if record is not None:
        from worldjepa.data.collect import dataset_meta
        from worldjepa.data.episodes import EpisodeStore

        store = EpisodeStore.create_or_append(record, dataset_meta(env_name, {"image_size": int(u.image_size), "action_repeat": int(u.action_repeat)}, budget))
    results = []
    t0 = time.perf_counter()
    for i in tqdm(range(episodes), desc=f"plan {env_name}", disable=not progress):
        keep = media_dir is not None and i < media_episodes
        seed = first_seed + i
        r = run_episode(env, members, make_planner(), seed, budget, execute, keep_frames=keep, cost_kw=cost_kw, shrink=shrink, record=store is not None)
        if store is not None:
            store.append(
                r.episode, {"seed": seed, "policy": "plan", "action_repeat": int(u.action_repeat), "image_size": int(u.image_size), **(record_info or {})}
            )
            r.episode = None  # committed: do not keep every frame of every episode in memory
        results.append(r)
        if keep:
            os.makedirs(media_dir, exist_ok=True)
            save_episode_media(r, os.path.join(media_dir, f"episode_{i:02d}.gif"), os.path.join(media_dir, f"energy_{i:02d}.png"))
    summary = summarize(results)
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary, results
