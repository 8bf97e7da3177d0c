"""Multimodal futures on the Hazard task: latent model vs deterministic, on held-out transitions.

    python benchmarks/bench_futures.py --data data/hazard --latent runs/hz_z8/final --det runs/hz_z0/final

A transition (one model step) is a *gust* case when the recorded trajectory shows a push
(a jump of the agent's y by more than 0.12 m within one env step); its two modes are the
recorded next position and the same position pushed the other way (2 x 0.18 m away in y).
Figures, read through the predicted proprio position (x, y):

* best-of-k error / deterministic error on gust cases (k = 16 prior samples);
* mode coverage: the share of gust cases where some sample lands within 0.06 m of each mode
  (the modes taken as the recorded outcome and its mirror, 2 x 0.18 m away in y; and, more
  exactly, the two outcomes replayed in the simulator from the recorded state with the
  gust forced up and down, a pit catching one of them included);
* mode coverage as categories: each sample is labelled with the simulated outcome it lies
  nearest (push up, push down, or no push at all, the last only where it is a distinct
  place), as a recorded outcome would be; a case is covered when the labels include both
  pushes. The 0.06 m figure above asks for more: that the sample also lands precisely;
* spread: the mean std (m) of the k sampled positions on gust cases, on cases far from
  the strip (|x| > 0.25 at both ends), and on every calm case (no push during the step)
  and the calm ones near the strip: where the future is deterministic, the samples
  should agree;
* pit or not: the share of gust cases whose k samples include both an outcome inside a
  pit and one outside (the outcome that matters for risk);
* where the pits are lost: which outcome each sample lies nearest (the push up, the push
  down, or no push, each replayed in the simulator), and of the samples that head for an
  outcome in a pit, how many land in the pit;
* for a categorical z, the prior against the codes: how much of its mass goes to codes
  that predict one of the outcomes, and to the code that fits the recorded one best (a
  prior that names the wrong codes loses outcomes the codes can predict; ``worldjepa
  refit-prior`` refits it);
* futures from 2 and 3 model steps before the gust's step (what a planner sees coming):
  the share that ends in a pit against the true probability, and their coverage;
* the error with z from the posterior (which sees the real next frame), or for a model
  trained with ``objective.z_assign=wta`` with the code that fits best: what z can carry at
  best. If it is no better than the deterministic error, the predictor ignores z
  (posterior collapse); if it is much better but best-of-k is not, the prior is at fault.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from envs.tasks import HazardEnv, HazardGambleEnv
from worldjepa.data.episodes import EpisodeStore
from worldjepa.world_model import WorldModel


def push_steps(proprio: np.ndarray) -> np.ndarray:
    """Env steps whose change of y is a gust push (a jump of more than 0.12 m): (L+1, P) -> bool (L,)."""
    return np.abs(np.diff(proprio[:, 1])) > 0.12


def forced_coin(up: bool) -> np.random.Generator:
    """A generator whose first draw sends the Hazard gust up (``up``) or down (its coin: up when < 1/2)."""
    seed = 0
    while (np.random.default_rng(seed).random() < 0.5) != up:
        seed += 1
    return np.random.default_rng(seed)


def simulated_modes(env: HazardEnv, p0: np.ndarray, actions: np.ndarray, calm: bool = False) -> np.ndarray:
    """Both outcomes of a transition, replayed in the simulator from proprio ``p0`` (x, y,
    vx, vy) under env actions (n, 2) with the gust forced up, then down: (2, 2) positions.
    A pit that catches one outcome holds it where it fell in, as in the task. ``calm``:
    a third row, the outcome with the gust switched off for the whole replay: (3, 2)."""
    out = np.empty((3 if calm else 2, 2))
    chance = env.gust_prob
    try:
        for i, up in enumerate((True, False, None)[: len(out)]):
            env.gust_prob = chance if up is not None else 0.0  # 0: an entry never fires
            start = {"qpos": p0[:2].astype(np.float64), "qvel": p0[2:4].astype(np.float64), "gust": 0, "in_gust": env.in_gust(p0[:2]), "trapped_at": None}
            env.restore(start, forced_coin(bool(up)))
            for a in actions:
                xy = env.simulate(np.clip(a, -1, 1))
            out[i] = xy
    finally:
        env.gust_prob = chance
    return out


def heading(xy: np.ndarray, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which outcome each sample lies nearest: samples ``xy`` (N, k, 2), ``outcomes`` (N, 3, 2)
    (push up, push down, no push, from :func:`simulated_modes` with ``calm=True``). Returns
    (the nearest outcome's index (N, k), whether each push ends in a pit (N, 2), whether each
    sample heads for an outcome in a pit (N, k))."""
    near = np.linalg.norm(xy[:, :, None] - outcomes[:, None], axis=-1).argmin(-1)
    pit_mode = HazardEnv.in_pit(outcomes[:, :2])
    to_pit = np.take_along_axis(np.concatenate([pit_mode, np.zeros((len(xy), 1), bool)], 1), near, 1)
    return near, pit_mode, to_pit


def in_modes(xy: np.ndarray, outcomes: np.ndarray, same: float = 0.06) -> np.ndarray:
    """Which outcomes the samples land on, read as categories: samples ``xy`` (N, k, 2),
    outcomes (N, 3, 2) (push up, push down, no push, from :func:`simulated_modes` with
    ``calm=True``). Each sample is given the outcome it lies nearest, as the truth would be
    labelled. The no-push outcome takes part only where it lies more than ``same`` (m) from
    both pushes (where a pit stops a push and the unpushed agent at the same place, the two
    are one outcome, and the no-push one counts as landed on with its push). Returns (N, 3):
    some sample landed on the push up / down / no push."""
    d = np.linalg.norm(xy[:, :, None] - outcomes[:, None], axis=-1)  # (N, k, 3)
    merged = np.linalg.norm(outcomes[:, 2:3] - outcomes[:, :2], axis=-1).min(-1) <= same  # (N,)
    d[merged, :, 2] = np.inf
    near = d.argmin(-1)
    return np.stack([(near == 0).any(1), (near == 1).any(1), (near == 2).any(1) | merged], -1)


def pooled_futures(models: list, frames: torch.Tensor, actions: torch.Tensor, p0: torch.Tensor, k: int, stratified: bool, ctx=None) -> torch.Tensor:
    """k prior-sampled futures per case, k / len(models) from each model, pooled as a
    planning ensemble pools them: frames (N, 1, H, W, 3), actions (N, S, A), proprio
    (N, 1, P) -> predicted proprio (N, k, S, P). ``ctx``: the first model's encoding of the
    frames, if already computed. ``stratified``: systematic draws within each model."""
    if k % len(models):
        raise SystemExit(f"--k {k} must divide among the {len(models)} pooled models")
    out = []
    with torch.no_grad():
        for i, m in enumerate(models):
            c = ctx if i == 0 and ctx is not None else m.encode(frames)
            out.append(m.sample_futures(c, actions, k // len(models), p0, generator=torch.Generator().manual_seed(i), stratified=stratified)[1])
    return torch.cat(out, 1)


def final_positions(models: list, frames: list, acts: list, starts: list, k: int, stratified: bool = False) -> np.ndarray:
    """k prior-sampled futures from each case (a frame (H, W, 3), its model actions (S, A)
    and its proprio), pooled over ``models`` (:func:`pooled_futures`), their final
    predicted positions: (N, k, 2)."""
    fr = torch.from_numpy(np.stack(frames))[:, None]
    p0 = torch.from_numpy(np.stack(starts))[:, None]
    sp = pooled_futures(models, fr, torch.from_numpy(np.stack(acts)).float(), p0, k, stratified)
    return sp[:, :, -1, :2].numpy()


def entry_steps(proprio: np.ndarray, env: HazardEnv) -> np.ndarray:
    """Env steps in which the agent entered the gust strip, pushed or not: (L+1, P) -> bool (L,).
    A push throws the agent out of the strip within the step, so a push step counts too."""
    inside = np.array([env.in_gust(xy) for xy in proprio[:, :2]])
    return (~inside[:-1] & inside[1:]) | push_steps(proprio)


def y_shortfall(xy: np.ndarray, outcomes: np.ndarray, near: np.ndarray, to_pit: np.ndarray) -> float:
    """How far the samples that head for a pit outcome stop short of it in |y| (m; positive =
    short of the outcome, towards the strip): samples ``xy`` (N, k, 2), ``outcomes`` (N, 3, 2+),
    ``near`` and ``to_pit`` from :func:`heading`. NaN when no sample heads for a pit."""
    if not to_pit.any():
        return float("nan")
    target = np.take_along_axis(outcomes[:, :, 1], near, 1)  # (N, k) y of the outcome each sample heads for
    return float((np.abs(target) - np.abs(xy[..., 1]))[to_pit].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--latent", required=True)
    ap.add_argument("--det", default=None, help="a deterministic twin (z_dim 0) for the best-of-k ratio; without it the ratio is not printed")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--push", type=float, default=HazardEnv.gust_push)
    ap.add_argument(
        "--entries",
        action="store_true",
        help="hazard_gamble: also the coverage of the three outcomes (a push up, a push down, no push) over the model steps that enter the strip",
    )
    ap.add_argument(
        "--gust-prob",
        type=float,
        default=HazardGambleEnv.gust_prob,
        help="with --entries: the task's chance that an entry fires the gust (for the perfect model's coverage)",
    )
    ap.add_argument(
        "--held-out-of",
        default=None,
        help="a run whose held-out episodes to use (default: --latent's), so that models trained on different splits face the same cases",
    )
    ap.add_argument(
        "--min-episode",
        type=int,
        default=0,
        help="use only the held-out episodes numbered this or above (e.g. those appended after a starting checkpoint was trained)",
    )
    ap.add_argument(
        "--stratified",
        action="store_true",
        help="draw each case's k futures by systematic sampling (risk.stratified): an outcome the prior gives >= 1/k is never missed",
    )
    ap.add_argument(
        "--pool",
        default=None,
        help="other models (comma-separated <run>/final): the k futures are drawn k / n from each of the n models and pooled, as a planning ensemble pools them; the figures of one model's internals (posterior, codes, prior) stay --latent's",
    )
    ap.add_argument("--png", default=None, help="figure of k sampled futures at the strip (several model steps)")
    args = ap.parse_args()
    torch.manual_seed(0)
    lat = WorldModel.load(args.latent)
    det = WorldModel.load(args.det) if args.det else None
    members = [lat] + [WorldModel.load(p) for p in args.pool.split(",")] if args.pool else [lat]
    fs = lat.spec.frameskip
    meta = json.load(open(f"{args.latent}/meta.json"))
    store = EpisodeStore(args.data)
    frames, nexts, acts, props, gust, env_acts = [], [], [], [], [], []
    held = json.load(open(f"{args.held_out_of}/meta.json"))["val_episodes"] if args.held_out_of else meta["val_episodes"]
    held = [ep for ep in held if ep >= args.min_episode]
    if not held:
        raise SystemExit(f"no held-out episode numbered {args.min_episode} or above")
    val = [store.load(ep) for ep in held]  # loaded once, read again by gust_ahead
    for e in val:
        jump = push_steps(e["proprio"])  # (L,) env-step pushes
        for t0 in range(0, len(e["actions"]) - fs + 1, fs):
            frames.append(e["frames"][t0])
            nexts.append(e["frames"][t0 + fs])
            acts.append(e["actions"][t0 : t0 + fs].reshape(-1))
            props.append((e["proprio"][t0], e["proprio"][t0 + fs]))
            gust.append(bool(jump[t0 : t0 + fs].any()))
            env_acts.append(e["actions"][t0 : t0 + fs])
    fr = torch.from_numpy(np.stack(frames))[:, None]
    a = torch.from_numpy(np.stack(acts)).float()[:, None]
    p0 = torch.from_numpy(np.stack([p[0] for p in props]))[:, None]
    p1 = np.stack([p[1] for p in props])
    gust = np.array(gust)
    with torch.no_grad():
        ctx_l = lat.encode(fr)
        if det is not None:
            _, dp = det.rollout(det.encode(fr), a, p0)
        sp = pooled_futures(members, fr, a, p0, args.k, args.stratified, ctx=ctx_l)
        if meta["objective"].get("z_assign") == "wta":  # no learned posterior: the code that fits best, as in training
            every = lat.code_predictions(ctx_l, a, p0)  # (N, M, P)
            best = (every[..., :2] - torch.from_numpy(p1[:, None, :2])).norm(dim=-1).argmin(1)
            qp = every[torch.arange(len(best)), best][:, None]
        else:
            nxt_l = lat.encode(torch.from_numpy(np.stack(nexts))[:, None])
            p1t = torch.from_numpy(p1)[:, None]
            q = lat.latent.posterior(lat.latent_features(ctx_l, p0)[:, 0], a[:, 0], lat.latent_features(nxt_l, p1t)[:, 0])
            _, qp = lat.predictor(ctx_l, a, p0, z=lat.latent.mode(q)[:, None])
    smp_xy = sp[:, :, 0, :2].numpy()  # (N, k, 2)
    true_xy = p1[:, :2]
    err_det = np.linalg.norm(dp[:, 0, :2].numpy() - true_xy, axis=-1) if det is not None else None
    err_best = np.linalg.norm(smp_xy - true_xy[:, None], axis=-1).min(1)
    other = true_xy.copy()
    dy = np.sign(p1[:, 1] - p0[:, 0, 1].numpy())
    other[:, 1] -= dy * 2 * args.push
    hit_true = (np.linalg.norm(smp_xy - true_xy[:, None], axis=-1) < 0.06).any(1)
    hit_other = (np.linalg.norm(smp_xy - other[:, None], axis=-1) < 0.06).any(1)
    # the two outcomes from the simulator itself (exact, pits included), gust cases only
    sim = HazardEnv()
    sim.reset(seed=0)
    gi = np.flatnonzero(gust)
    modes3 = np.stack([simulated_modes(sim, props[i][0], env_acts[i], calm=True) for i in gi])  # (G, 3, 2): up, down, no push
    modes = modes3[:, :2]
    replay_err = np.min(np.linalg.norm(modes - true_xy[gi, None], axis=-1), 1)  # the recorded outcome is one of them
    d_modes = np.linalg.norm(smp_xy[gi, :, None] - modes[:, None], axis=-1)  # (G, k, 2)
    hit_modes = (d_modes < 0.06).any(1)  # (G, 2)
    spread = smp_xy.std(1).mean(-1)
    far = (np.abs(p0[:, 0, 0].numpy()) > 0.25) & (np.abs(true_xy[:, 0]) > 0.25) & ~gust
    g = gust
    print(
        f"held-out transitions: {len(gust)}, gust cases: {g.sum()}, far-from-strip cases: {far.sum()}; {args.k} futures per case{f' ({args.k // len(members)} from each of {len(members)} models)' if len(members) > 1 else ''}, drawn {'by systematic sampling' if args.stratified else 'independently'}"
    )
    if det is not None:
        print(
            f"gust cases: deterministic error {err_det[g].mean():.4f} m, best-of-{args.k} latent error {err_best[g].mean():.4f} m, ratio {err_best[g].mean() / err_det[g].mean():.2f}"
        )
    else:
        print(f"gust cases: best-of-{args.k} latent error {err_best[g].mean():.4f} m (no --det: no ratio)")
    print(
        f"mode coverage (both modes hit within 0.06 m): {(hit_true & hit_other)[g].mean():.0%} (recorded mode {hit_true[g].mean():.0%}, other mode {hit_other[g].mean():.0%})"
    )
    print(
        f"mode coverage against the simulator's two outcomes (replayed from the recorded state; replay error {np.median(replay_err):.4f} m median): "
        f"{hit_modes.all(1).mean():.0%} (up {hit_modes[:, 0].mean():.0%}, down {hit_modes[:, 1].mean():.0%}); "
        f"outcomes apart {np.linalg.norm(modes[:, 0] - modes[:, 1], axis=-1).mean():.3f} m; nearest sample to each: {d_modes.min(1).mean():.4f} m"
    )
    cat = in_modes(smp_xy[gi], modes3)[:, :2]
    print(
        f"mode coverage as categories (each sample labelled with the simulated outcome it lies nearest: push up, down, or none): "
        f"{cat.all(1).mean():.0%} (up {cat[:, 0].mean():.0%}, down {cat[:, 1].mean():.0%})"
    )
    print(f"sample spread (std, m): gust cases {spread[g].mean():.4f}, far from the strip {spread[far].mean():.4f}")
    calm = ~gust  # no push during the step: the future is fixed by the state and the actions
    near = calm & (np.abs(p0[:, 0, 0].numpy()) < 0.35)  # calm, but starting within 0.35 m of the strip's centre line
    print(
        f"sample spread where nothing random happens (std, m): all {calm.sum()} calm cases mean {spread[calm].mean():.4f} / median {np.median(spread[calm]):.4f}; "
        f"{near.sum()} calm cases near the strip (|x| < 0.35) mean {spread[near].mean():.4f}; "
        f"share of calm cases with samples more than 0.06 m apart {(np.ptp(smp_xy, axis=1).max(-1) > 0.06)[calm].mean():.0%}"
    )
    pit_s = HazardEnv.in_pit(smp_xy)  # (N, k)
    both = pit_s.any(1) & ~pit_s.all(1)
    print(
        f"pit or not, gust cases: truth in a pit {HazardEnv.in_pit(true_xy)[g].mean():.0%} (recorded), "
        f"{HazardEnv.in_pit(modes).mean():.0%} (both simulated outcomes, 50/50); samples in a pit {pit_s[g].mean():.0%}; "
        f"cases whose samples hold both outcomes {both[g].mean():.0%} (deterministic model: one outcome each)"
    )
    # where the pit outcomes are lost: which outcome each sample is nearest (a push up, down,
    # or none), and whether the samples that take a pit outcome's direction land in the pit
    near, pit_mode, to_pit = heading(smp_xy[gi], modes3)  # near: 0 up, 1 down, 2 no push
    print(
        f"gust cases, the outcome each sample is nearest: a push up {(near == 0).mean():.0%}, down {(near == 1).mean():.0%}, no push {(near == 2).mean():.0%}; "
        f"samples that take a pit outcome's direction: {to_pit.mean():.0%} (truth {pit_mode.mean():.0%}), of which in the pit {pit_s[gi][to_pit].mean():.0%}, "
        f"short of it in |y| by {y_shortfall(smp_xy[gi], modes3, near, to_pit):+.3f} m on average"
    )
    if lat.latent.cfg.kind == "categorical":
        prior_on_codes(lat, ctx_l[gi], a[gi], p0[gi], modes3, true_xy[gi])
    if lat.predictor.cfg.z_null:  # how much of the prior is on "nothing random happened"
        with torch.no_grad():
            p_null = lat.latent.prior(lat.latent_features(ctx_l, p0)[:, 0], a[:, 0])[0][..., 0, 0].exp().numpy()
        print(f"prior on the null code: calm cases mean {p_null[calm].mean():.3f} (min {p_null[calm].min():.3f}), gust cases mean {p_null[g].mean():.3f}")
    err_post = np.linalg.norm(qp[:, 0, :2].numpy() - true_xy, axis=-1)
    who = "the best code (winner takes all, as in training)" if meta["objective"].get("z_assign") == "wta" else "posterior z (sees the next frame)"
    if det is not None:
        print(f"{who}, gust cases: error {err_post[g].mean():.4f} m (deterministic {err_det[g].mean():.4f})")
        print(f"all cases: deterministic error {err_det.mean():.4f} m, best-of-{args.k} {err_best.mean():.4f} m")
    else:
        print(f"{who}, gust cases: error {err_post[g].mean():.4f} m; all cases: best-of-{args.k} {err_best.mean():.4f} m")
    for ahead in (2, 3):
        gust_ahead(members, val, args.k, ahead, sim, args.stratified)
    if args.entries:
        entry_coverage(members, val, args.k, sim, args.gust_prob, args.stratified)
    if args.png:
        futures_figure(lat, det, store, held, args.k, args.png, stratified=args.stratified)


def prior_on_codes(lat, ctx, a, p0, outcomes: np.ndarray, true_xy: np.ndarray) -> None:
    """A categorical model's prior against its own codes, on gust cases: every code's
    one-step prediction (N, M, 2), the prior's probability of each code, and the three
    outcomes (N, 3, 2): how often some code predicts each outcome to within 0.06 m, how
    much prior mass goes to such codes and to codes far from every outcome, and how much
    to the code that fits the recorded outcome best (the one a refitted prior learns)."""
    with torch.no_grad():
        every = lat.code_predictions(ctx, a, p0)[..., :2].numpy()  # (N, M, 2)
        prob = lat.code_probs(ctx, a, p0).numpy()  # (N, M)
    d = np.linalg.norm(every[:, :, None] - outcomes[:, None], axis=-1)  # (N, M, 3)
    close = d < 0.06
    best = np.linalg.norm(every - true_xy[:, None], axis=-1).argmin(1)
    print(
        f"prior against the {prob.shape[1]} codes, gust cases: some code within 0.06 m of the push up / down / no push "
        f"{close[:, :, 0].any(1).mean():.0%} / {close[:, :, 1].any(1).mean():.0%} / {close[:, :, 2].any(1).mean():.0%}; "
        f"prior mass on such codes {(prob * close[:, :, 0]).sum(1).mean():.2f} / {(prob * close[:, :, 1]).sum(1).mean():.2f} / "
        f"{(prob * close[:, :, 2]).sum(1).mean():.2f}, on codes far from every outcome {(prob * ~close.any(-1)).sum(1).mean():.2f}; "
        f"on the code that fits the recorded outcome best {prob[np.arange(len(best)), best].mean():.2f}"
    )


def gust_ahead(models: list, episodes: list[dict], k: int, ahead: int, sim: HazardEnv, stratified: bool = False) -> None:
    """What a planner needs: futures rolled out from ``ahead`` model steps before the step
    that holds the gust, under the recorded actions; the share that ends in a pit against
    the true probability (both outcomes replayed in the simulator, 50/50)."""
    fs = models[0].spec.frameskip
    frames, acts, starts, ends = [], [], [], []
    for e in episodes:  # loaded episodes (EpisodeStore.load)
        jump = np.flatnonzero(push_steps(e["proprio"]))
        if not len(jump):
            continue
        t0 = (jump[0] // fs - ahead + 1) * fs
        t1 = t0 + ahead * fs
        if t0 < 0 or t1 > len(e["actions"]):
            continue
        frames.append(e["frames"][t0])
        acts.append(e["actions"][t0:t1].reshape(ahead, -1))
        starts.append(e["proprio"][t0])
        ends.append(simulated_modes(sim, e["proprio"][t0], e["actions"][t0:t1], calm=True))
    if not frames:
        print(f"gust {ahead} model steps ahead: no held-out case")
        return
    xy, ends3 = final_positions(models, frames, acts, starts, k, stratified), np.stack(ends)  # (N, k, 2), (N, 3, 2): up, down, no push
    ends = ends3[:, :2]
    d = np.linalg.norm(xy[:, :, None] - ends[:, None], axis=-1).min(1)  # (N, 2) nearest sample to each outcome
    near, pit_mode, to_pit = heading(xy, ends3)
    print(
        f"gust {ahead} model steps ahead ({len(frames)} cases): futures in a pit {HazardEnv.in_pit(xy).mean():.0%} "
        f"(true probability {HazardEnv.in_pit(ends).mean():.0%}); coverage of both outcomes {(d < 0.06).all(1).mean():.0%}, "
        f"nearest sample to each {d.mean():.3f} m; as categories {in_modes(xy, ends3)[:, :2].all(1).mean():.0%}; nearest a push up / down / none {(near == 0).mean():.0%} / {(near == 1).mean():.0%} / {(near == 2).mean():.0%}; "
        f"towards a pit outcome {to_pit.mean():.0%} (truth {pit_mode.mean():.0%}), of which in the pit {HazardEnv.in_pit(xy)[to_pit].mean():.0%}, short of it in |y| by {y_shortfall(xy, ends3, near, to_pit):+.3f} m"
    )


def systematic_hits_all(masses: list[float], k: int, sets: int = 1, grid: int = 4000) -> float:
    """The chance that ``sets`` independent sets of k systematic draws (points (u0 + j) / k,
    ``WorldModel.sample_futures`` with ``stratified``; one set per pooled model) from outcomes
    of these probabilities, laid end to end, hold every one of them: the share of offsets u0
    for which each interval holds a point (a fine grid for one set, 20,000 seeded random
    offsets per set for several)."""
    edges = np.concatenate([[0.0], np.cumsum(masses)])
    if sets == 1:
        u0 = (np.arange(grid)[:, None] + 0.5) / grid
    else:
        u0 = np.random.default_rng(0).random((20000, sets))
    pts = ((u0[:, :, None] + np.arange(k)[None, None]) / k).reshape(len(u0), -1)  # (offsets, sets * k)
    held = [((pts >= lo) & (pts < hi)).any(1) for lo, hi in zip(edges[:-1], edges[1:])]
    return float(np.all(held, 0).mean())


def coverage_ceiling(merged: np.ndarray, gust_prob: float, k: int, stratified: bool = False, sets: int = 1) -> np.ndarray:
    """The chance that k independent draws from the true outcomes of an entry (a push up
    and a push down at ``gust_prob`` / 2 each, no push at 1 - ``gust_prob``) hold every
    distinct outcome, by inclusion-exclusion: a perfect model's coverage. Where the no-push
    outcome is ``merged`` (N,) with a push (one place), it counts as that push's. With
    ``stratified``, ``sets`` sets of k / sets systematic draws instead (one per pooled model,
    :func:`systematic_hits_all`). Returns (N,)."""
    up, none = gust_prob / 2, 1.0 - gust_prob
    if stratified:
        per = k // sets
        return np.where(merged, systematic_hits_all([up, up + none], per, sets), systematic_hits_all([up, up, none], per, sets))
    # distinct: up, down, none (each missed with prob (1 - p)^k); merged: up and down+none
    three = 1 - 2 * (1 - up) ** k - (1 - none) ** k + 2 * none**k + up**k
    two = 1 - (1 - up) ** k - up**k
    return np.where(merged, two, three)


def entry_coverage(models: list, episodes: list[dict], k: int, sim: HazardEnv, gust_prob: float, stratified: bool = False) -> None:
    """Where the gust fires at only some entries (``hazard_gamble``), an entry has three
    outcomes: a push up, a push down, or none. Over the held-out model steps that enter the
    strip (pushed or not), the share whose k samples, read as categories
    (:func:`in_modes`), include all three (the no-push outcome only where it is a distinct
    place), and the share with a sample within 0.06 m of each."""
    fs = models[0].spec.frameskip
    frames, acts, starts, ends = [], [], [], []
    for e in episodes:
        into = entry_steps(e["proprio"], sim)
        for t0 in range(0, len(e["actions"]) - fs + 1, fs):
            if into[t0 : t0 + fs].any() and not sim.in_gust(e["proprio"][t0, :2]):
                frames.append(e["frames"][t0])
                acts.append(e["actions"][t0 : t0 + fs].reshape(1, -1))
                starts.append(e["proprio"][t0])
                ends.append(simulated_modes(sim, e["proprio"][t0], e["actions"][t0 : t0 + fs], calm=True))
    if not frames:
        print("strip entries: no held-out case")
        return
    xy, out = final_positions(models, frames, acts, starts, k, stratified), np.stack(ends)  # (N, k, 2), (N, 3, 2)
    cat = in_modes(xy, out)  # (N, 3)
    d = np.linalg.norm(xy[:, :, None] - out[:, None], axis=-1)  # (N, k, 3)
    ceiling = coverage_ceiling(np.linalg.norm(out[:, 2:3] - out[:, :2], axis=-1).min(-1) <= 0.06, gust_prob, k, stratified, len(models))
    print(
        f"strip entries ({len(xy)} model steps): coverage of the three outcomes as categories {cat.all(1).mean():.0%} "
        f"(push up {cat[:, 0].mean():.0%}, down {cat[:, 1].mean():.0%}, none {cat[:, 2].mean():.0%}); "
        f"a sample within 0.06 m of each {(d.min(1) < 0.06).all(1).mean():.0%}; samples nearest no push {(d.argmin(-1) == 2).mean():.0%} "
        f"(truth {1 - gust_prob:.0%}); a perfect model's {k} samples (the true chances) would cover {ceiling.mean():.0%}"
    )


def futures_figure(lat, det, store, episodes, k: int, path: str, steps: int = 3, cases: int = 4, stratified: bool = False) -> None:
    """k sampled futures (predicted x, y over ``steps`` model steps) from just before the
    gust strip, under the recorded actions, beside the deterministic model (if given) and the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fs = lat.spec.frameskip
    found = []
    for ep in episodes:
        e = store.load(ep)
        jump = np.flatnonzero(push_steps(e["proprio"]))
        if len(jump) and jump[0] >= fs and jump[0] + steps * fs < len(e["actions"]):
            t0 = (jump[0] // fs) * fs  # the model step whose transition holds the push
            found.append((e, t0))
        if len(found) == cases:
            break
    fig, axes = plt.subplots(1, len(found), figsize=(3.2 * len(found), 3.4), squeeze=False)
    gen = torch.Generator().manual_seed(1)
    for ax, (e, t0) in zip(axes[0], found):
        fr = torch.from_numpy(e["frames"][t0])[None, None]
        a = torch.from_numpy(e["actions"][t0 : t0 + steps * fs].reshape(steps, fs * e["actions"].shape[1])).float()[None]
        p0 = torch.from_numpy(e["proprio"][t0])[None, None]
        with torch.no_grad():
            _, sp = lat.sample_futures(lat.encode(fr), a, k, p0, generator=gen, stratified=stratified)
            dp = det.rollout(det.encode(fr), a, p0)[1] if det is not None else None
        (gx, gy), (px, (py0, py1)) = HazardEnv.gust_half, (HazardEnv.pit_x, HazardEnv.pit_y)
        ax.add_patch(Rectangle((-gx, -gy), 2 * gx, 2 * gy, color="tab:orange", alpha=0.25, label="gust strip"))
        for sy in (1, -1):
            ax.add_patch(Rectangle((-px, py0 if sy > 0 else -py1), 2 * px, py1 - py0, color="k", alpha=0.3, label="pit" if sy > 0 else None))
        start = e["proprio"][t0, :2]
        for j in range(k):
            xy = np.vstack([start, sp[0, j, :, :2].numpy()])
            ax.plot(xy[:, 0], xy[:, 1], "-", color="tab:blue", alpha=0.35, lw=1, label="sampled futures" if j == 0 else None)
        if dp is not None:
            dxy = np.vstack([start, dp[0, :, :2].numpy()])
            ax.plot(dxy[:, 0], dxy[:, 1], "--", color="tab:red", lw=1.5, label="deterministic model")
        true = e["proprio"][t0 : t0 + steps * fs + 1 : fs, :2]
        ax.plot(true[:, 0], true[:, 1], "-o", color="k", ms=3, lw=1.5, label="what happened")
        ax.set(xlim=(-0.5, 0.5), ylim=(-0.5, 0.5), aspect="equal", xticks=[], yticks=[])
    axes[0, 0].legend(fontsize=6, loc="lower left")
    against = " vs the deterministic model" if det is not None else ""
    fig.suptitle(f"{k} sampled futures{against} at the gust strip (Hazard, {steps} model steps)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
