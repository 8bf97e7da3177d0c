import csv
import json
import os

import numpy as np
import pytest
import torch

import envs
from worldjepa.data.episodes import EpisodeStore
from worldjepa.eval.rollout_eval import open_loop_errors
from worldjepa.models.encoder import EncoderConfig
from worldjepa.models.predictor import PredictorConfig
from worldjepa.train.checkpoint import CheckpointError, save_checkpoint
from worldjepa.train.loop import TrainConfig
from worldjepa.train.pretrain import JEPA, JEPAConfig
from worldjepa.train.world import WorldObjective, train_world_model
from worldjepa.world_model import WorldModel, WorldModelSpec

ENC = EncoderConfig(image_size=64, patch=16, tubelet=2, dim=48, depth=2, heads=2)


def pred_cfg(**kw):
    return PredictorConfig(
        **{"enc_dim": 48, "grid": 4, "num_state_tokens": 2, "action_dim": 2, "proprio_dim": 6, "dim": 48, "depth": 2, "heads": 2, "max_steps": 16, **kw}
    )


def tcfg(steps):
    return TrainConfig(steps=steps, lr=2e-3, warmup=5, ckpt_every=1000, log_every=1, monitor_every=0, progress=False)


@pytest.fixture(scope="module")
def trained(tiny_reach_dataset, tmp_path_factory):
    """A small frozen-recipe world model (all patch tokens) on the tiny Reach dataset.

    The frozen encoder is a randomly initialised one saved as a pre-training checkpoint:
    its patch features already carry the arm's pose (see the probe benchmark)."""
    tmp = tmp_path_factory.mktemp("wm")
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp / "pre"), JEPA(ENC, JEPAConfig()), {"encoder": ENC.to_dict()})
    obj = WorldObjective(recipe="frozen", clip_len=5, batch_size=16)
    model, _ = train_world_model(tiny_reach_dataset, str(tmp / "run"), ENC, pred_cfg(num_state_tokens=0), obj, tcfg(300), encoder_ckpt=ck)
    return model, str(tmp / "run")


def test_loss_falls(trained):
    _, run = trained
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    tf = [float(r["tf_loss"]) for r in rows]
    assert np.mean(tf[-10:]) < 0.7 * np.mean(tf[:10])


def test_beats_copy_last_and_uses_actions(trained, tiny_reach_dataset):
    model, _ = trained
    store = EpisodeStore(tiny_reach_dataset)
    res = open_loop_errors(model, tiny_reach_dataset, [0, 1, 2], [3], envs.make("reach").unwrapped, horizon=3, clips=12)
    lat = res["latent"]
    assert lat["model"][0] < lat["copy_last"][0]
    assert lat["model"][0] < lat["shuffled"][0]
    assert len(store) == 4


def test_save_load_identical_predictions(trained, tmp_path):
    model, _ = trained
    path = model.save(str(tmp_path / "wm"))
    again = WorldModel.load(path)
    px = torch.randint(0, 256, (2, 1, 64, 64, 3), dtype=torch.uint8)
    acts = torch.rand(2, 4, 2) * 2 - 1
    prop = torch.randn(2, 1, 6)
    s1, s2 = model.encode(px), again.encode(px)
    assert torch.equal(s1, s2)
    p1, q1 = model.rollout(s1, acts, prop)
    p2, q2 = again.rollout(s2, acts, prop)
    assert torch.equal(p1, p2) and torch.equal(q1, q2)
    e = WorldModel.energy(p1, s1[:, 0])
    assert e.shape == (2,) and torch.all(e >= 0)


def test_kv_cache_matches_in_world_model(trained):
    model, _ = trained
    s = model.encode(torch.randint(0, 256, (3, 1, 64, 64, 3), dtype=torch.uint8))
    acts, prop = torch.rand(3, 6, 2) * 2 - 1, torch.randn(3, 1, 6)
    a, _ = model.rollout(s, acts, prop, use_cache=True)
    b, _ = model.rollout(s, acts, prop, use_cache=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bad_inputs(trained, tiny_reach_dataset, tmp_path):
    model, _ = trained
    s = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    prop = torch.zeros(1, 1, 6)
    with pytest.raises(ValueError, match=r"actions must have shape \(B, H, 2\)"):
        model.rollout(s, torch.zeros(1, 3, 4), prop)
    with pytest.raises(ValueError, match="NaN"):
        model.rollout(s, torch.full((1, 3, 2), float("nan")), prop)
    with pytest.raises(ValueError, match="max_steps=16"):
        model.rollout(s, torch.zeros(1, 40, 2), prop)
    with pytest.raises(ValueError, match="pass proprio"):
        model.rollout(s, torch.zeros(1, 3, 2))
    # an encoder checkpoint of another shape than the model config
    other = EncoderConfig(image_size=64, patch=16, tubelet=2, dim=64, depth=2, heads=2)
    ck = save_checkpoint(str(tmp_path / "pre"), JEPA(other, JEPAConfig()), {"encoder": other.to_dict()})
    with pytest.raises(ValueError, match="has config .* but the model config asks for"):
        train_world_model(tiny_reach_dataset, str(tmp_path / "r"), ENC, pred_cfg(), WorldObjective(clip_len=6), tcfg(1), encoder_ckpt=ck)
    with pytest.raises(ValueError, match="frozen recipe needs a pre-trained encoder"):
        train_world_model(tiny_reach_dataset, str(tmp_path / "r2"), ENC, pred_cfg(), WorldObjective(clip_len=6), tcfg(1))
    with pytest.raises(ValueError, match="action_dim 4 must equal env action dim 2 x frameskip 1"):
        WorldModel(ENC, pred_cfg(action_dim=4), WorldModelSpec(env_action_dim=2, frameskip=1, proprio_dim=6))
    # the joint recipe with a trainable pooler trains from scratch too
    run = str(tmp_path / "joint")
    _, m = train_world_model(tiny_reach_dataset, run, ENC, pred_cfg(), WorldObjective(recipe="joint", clip_len=5, batch_size=8), tcfg(3))
    assert np.isfinite(m["loss"]) and "reg" in m
    with pytest.raises(CheckpointError, match="not a world model"):
        WorldModel.load(ck)


def test_planning_episode_and_protocol_errors(trained):
    from planners import CEM
    from worldjepa.eval.planning import evaluate, run_episode, wilson_interval

    model, _ = trained
    summary, results = evaluate("reach", model, lambda: CEM(2, 2, samples=16, elites=4, iterations=2), episodes=1, budget=3, progress=False)
    assert summary["episodes"] == 1 and 0.0 <= summary["success_ci95"][0] <= summary["success_ci95"][1] <= 1.0
    assert len(results[0].replan_seconds) == 3 and summary["final_distance_mean"] > 0
    # the start distance is the env's own distance right after reset, for every episode
    start = envs.make("reach").reset(seed=1000)[1]["distance"]
    assert summary["per_episode"][0]["start_distance"] == pytest.approx(start) and summary["start_distance_mean"] == pytest.approx(start)
    # the path: the task's achieved state at the start and after each model step, ending where the final distance was measured
    env = envs.make("reach").unwrapped
    goal_state = env.reset(seed=1000)[1]["goal_state"]
    path = summary["per_episode"][0]["path"]
    assert len(path) == 4 and path[0] == pytest.approx(env.achieved().tolist())
    assert env.goal_distance(np.array(path[-1]), goal_state) == pytest.approx(summary["per_episode"][0]["final_distance"])
    assert results[0].entries is None and "entries" not in summary["per_episode"][0]  # no gusts on Reach
    with pytest.raises(ValueError, match="trained on 'reach', not 'push'"):
        evaluate("push", model, lambda: CEM(2, 2), episodes=1, budget=3, progress=False)
    with pytest.raises(ValueError, match=r"goal image must be uint8 \(64, 64, 3\)"):
        run_episode(envs.make("reach", image_size=32), model, CEM(2, 2, samples=8, elites=2, iterations=1), seed=0, budget=2)
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.786, abs=1e-3) and hi == pytest.approx(0.957, abs=1e-3)


def test_planning_records_its_episodes_as_a_dataset(trained, tmp_path):
    """record=: every executed episode is appended to a dataset that replays in the task,
    from seeds off the evaluation list; a directory that is no dataset is refused."""
    from planners import CEM
    from worldjepa.data.episodes import DatasetError, EpisodeStore
    from worldjepa.eval.planning import evaluate

    model, _ = trained
    out = str(tmp_path / "visits")

    def plan(n):
        return evaluate("reach", model, lambda: CEM(2, 2, samples=8, elites=2, iterations=1), episodes=n, budget=3, progress=False, first_seed=5000, record=out)

    summary, results = plan(2)
    store = EpisodeStore(out)
    assert len(store) == 2 and [e["seed"] for e in store.entries] == [5000, 5001] and store.entries[0]["policy"] == "plan"
    assert results[0].episode is None  # committed to disk, not kept in memory
    ep = store.load(1)
    assert ep["frames"].shape == (4, 64, 64, 3) and ep["actions"].shape == (3, 2) and ep["proprio"].shape[0] == 4
    env = envs.make("reach").unwrapped
    env.reset(seed=5001)
    for a in ep["actions"]:  # the recorded actions replay the recorded states
        env.step(a)
    assert np.allclose(env.state_qpos(env.get_state()), env.state_qpos(ep["states"][-1]), atol=1e-6)
    assert summary["per_episode"][1]["final_distance"] == pytest.approx(float(ep["distance"][-1]))
    plan(1)  # appends
    assert len(EpisodeStore(out)) == 3
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a worldjepa dataset"):
        evaluate("reach", model, lambda: CEM(2, 2), episodes=1, budget=3, progress=False, record=str(tmp_path / "junk"))


@pytest.fixture(scope="module")
def decoded(tiny_reach_dataset, tmp_path_factory):
    """K = 1 pooled state with a proprio decoder (the shipped recipe, tiny sizes)."""
    tmp = tmp_path_factory.mktemp("wm_dec")
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp / "pre"), JEPA(ENC, JEPAConfig()), {"encoder": ENC.to_dict()})
    obj = WorldObjective(recipe="frozen", clip_len=4, rollout_steps=2, reg="none", proprio_decode_weight=1.0, batch_size=16)
    cfg = pred_cfg(num_state_tokens=1, proprio_decoder_hidden=32)
    model, _ = train_world_model(tiny_reach_dataset, str(tmp / "run"), ENC, cfg, obj, tcfg(200), encoder_ckpt=ck)
    return model, str(tmp / "run")


def test_proprio_decoder_learns_and_is_saved(decoded, tiny_reach_dataset, tmp_path):
    model, run = decoded
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    dec = [float(r["proprio_decode_loss"]) for r in rows]
    assert np.mean(dec[-10:]) < 0.8 * np.mean(dec[:10])
    # joint angles (cos, sin) are read from the image better than velocities, and the
    # running error the planner weighs by says so
    err = model.proprio_decoder_err
    assert err[:4].mean() < err[4:].mean()
    # held-out frames: the decoder beats predicting the training mean on the angles
    store = EpisodeStore(tiny_reach_dataset)
    ep = store.load(3)
    with torch.no_grad():
        _, got = model.encode_goal(torch.from_numpy(ep["frames"]))
    true = torch.from_numpy(ep["proprio"])
    mean = torch.from_numpy(np.concatenate([store.load(i)["proprio"] for i in range(3)]).mean(0))
    assert (got - true)[:, :4].abs().mean() < (mean - true)[:, :4].abs().mean()
    again = WorldModel.load(model.save(str(tmp_path / "wm")))
    assert torch.equal(again.proprio_decoder_err, model.proprio_decoder_err)


def test_goal_cost_proprio_and_all_steps(decoded):
    from worldjepa.eval.planning import goal_cost

    model, _ = decoded
    torch.manual_seed(1)
    px = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8)
    goal, goal_p = model.encode_goal(px)
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    prop = torch.randn(1, 1, 6)
    acts = torch.rand(2, 3, 4, 2) * 2 - 1
    pred, pred_p = model.rollout(ctx.expand(6, -1, -1, -1), acts.reshape(6, 4, 2), prop.expand(6, -1, -1))
    want_last = WorldModel.energy(pred, goal.expand(6, -1, -1)) + 0.5 * model.proprio_distance(pred_p[:, -1], goal_p)
    want_all = WorldModel.energy(pred, goal.expand(6, -1, -1), last_only=False) + 0.5 * model.proprio_distance(pred_p, goal_p[:, None]).mean(-1)
    last = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p)(acts)
    every = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, all_steps=True)(acts)
    assert torch.allclose(last, want_last.view(2, 3), atol=1e-5) and torch.allclose(every, want_all.view(2, 3), atol=1e-5)
    # a weight in between mixes the two: the end counts most, arriving sooner still pays
    mixed = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, all_steps=0.25)(acts)
    assert torch.allclose(mixed, 0.75 * last + 0.25 * every, atol=1e-5)
    with pytest.raises(ValueError, match="proprio decoder"):
        goal_cost(model, ctx, goal, prop, proprio_weight=0.5)
    for bad in (1.5, -0.1, "often"):
        with pytest.raises(ValueError, match="energy_all_steps must be a weight in"):
            goal_cost(model, ctx, goal, prop, all_steps=bad)
    # energy_latent_weight scales the state-token term; 0 leaves the proprio term alone
    proprio_only = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, latent_weight=0.0)(acts)
    assert torch.allclose(proprio_only, (0.5 * model.proprio_distance(pred_p[:, -1], goal_p)).view(2, 3), atol=1e-5)
    half = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, latent_weight=0.5)(acts)
    assert torch.allclose(half, 0.5 * (last + proprio_only), atol=1e-5)
    with pytest.raises(ValueError, match="energy_latent_weight must be >= 0"):
        goal_cost(model, ctx, goal, prop, latent_weight=-1.0)
    with pytest.raises(ValueError, match="needs energy_proprio_weight > 0"):
        goal_cost(model, ctx, goal, prop, latent_weight=0.0)
    # energy_proprio_scale=readout divides by the goal read-out's held-out error instead
    saved, model.readout_info = model.readout_info, {"val_err": [0.5, 1.0, 2.0, 0.25, 1.0, 1.0]}
    try:
        by_readout = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, latent_weight=0.0, proprio_scale="readout")(acts)
    finally:
        model.readout_info = saved
    err = torch.tensor([0.5, 1.0, 2.0, 0.25, 1.0, 1.0])
    assert torch.allclose(by_readout, (0.5 * ((pred_p[:, -1] - goal_p).abs() / err).mean(-1)).view(2, 3), atol=1e-5)
    with pytest.raises(ValueError, match="energy_proprio_scale must be"):
        goal_cost(model, ctx, goal, prop, proprio_scale="metres")
    # energy_proprio_norm=l2: the root mean square of the scaled distances, a straight line
    euclid = goal_cost(model, ctx, goal, prop, proprio_weight=0.5, goal_proprio=goal_p, latent_weight=0.0, proprio_norm="l2")(acts)
    z = (pred_p[:, -1] - goal_p) / model.proprio_decoder_err
    assert torch.allclose(euclid, (0.5 * z.norm(dim=-1) / 6**0.5).view(2, 3), atol=1e-5)
    assert not torch.allclose(euclid, proprio_only, atol=1e-3)
    with pytest.raises(ValueError, match="energy_proprio_norm must be 'l1' or 'l2'"):
        goal_cost(model, ctx, goal, prop, proprio_norm="manhattan")


def test_proprio_decoding_needs_a_decoder(tiny_reach_dataset, tmp_path):
    obj = WorldObjective(recipe="joint", clip_len=4, proprio_decode_weight=1.0)
    with pytest.raises(ValueError, match="proprio_decoder_hidden"):
        train_world_model(tiny_reach_dataset, str(tmp_path / "r"), ENC, pred_cfg(), obj, tcfg(2))


def test_gradient_planner_through_the_world_model(decoded):
    """The planning cost is differentiable for gradient planners (and gradient-free otherwise)."""
    from planners import GradientPlanner
    from worldjepa.eval.planning import goal_cost

    model, _ = decoded
    torch.manual_seed(2)
    goal, goal_p = model.encode_goal(torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8))
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    cost = goal_cost(model, ctx, goal, torch.randn(1, 1, 6), proprio_weight=1.0, goal_proprio=goal_p, all_steps=True)
    assert not cost(torch.zeros(1, 2, 3, 2)).requires_grad
    res = GradientPlanner(horizon=3, action_dim=2, samples=4, iterations=15, lr=0.1, seed=0).plan(cost, batch=1)
    best = [float(h["best"][0]) for h in res.history]
    assert best[-1] < best[0]


@pytest.fixture(scope="module")
def latent_model(tiny_reach_dataset, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wm_lat")
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp / "pre"), JEPA(ENC, JEPAConfig()), {"encoder": ENC.to_dict()})
    obj = WorldObjective(recipe="frozen", clip_len=4, rollout_steps=2, reg="none", batch_size=8, kl_weight=0.1, free_bits=0.5)
    model, _ = train_world_model(tiny_reach_dataset, str(tmp / "run"), ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=32), obj, tcfg(30), encoder_ckpt=ck)
    return model, str(tmp / "run")


def test_latent_model_trains_samples_and_reloads(latent_model, tmp_path):
    model, run = latent_model
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    assert all(float(r["kl_nats"]) >= 0 for r in rows)
    torch.manual_seed(3)
    ctx = model.encode(torch.randint(0, 256, (2, 1, 64, 64, 3), dtype=torch.uint8))
    acts, prop = torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
    s, p = model.sample_futures(ctx, acts, 5, prop, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 5, 4, 1, 48) and p.shape == (2, 5, 4, 6)
    assert (s[:, 0] - s[:, 1]).abs().max() > 0  # different z, different futures
    s2, _ = model.sample_futures(ctx, acts, 5, prop, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s2)  # seeded
    mean, _ = model.rollout(ctx, acts, prop)  # the prior-mean future
    again = WorldModel.load(model.save(str(tmp_path / "wm")))
    assert torch.equal(again.rollout(ctx, acts, prop)[0], mean)
    with pytest.raises(ValueError, match="k .* must be >= 1"):
        model.sample_futures(ctx, acts, 0, prop)


def test_sampling_needs_a_latent_and_risk_settings_are_checked(trained, latent_model):
    from worldjepa.eval.planning import goal_cost

    det, _ = trained
    with pytest.raises(ValueError, match="no latent variable"):
        det.sample_futures(torch.zeros(1, 1, 16, 48), torch.zeros(1, 2, 2), 4, torch.zeros(1, 1, 6))
    model, _ = latent_model
    ctx, goal, prop = torch.zeros(1, 1, 1, 48), torch.zeros(1, 1, 48), torch.zeros(1, 1, 6)
    with pytest.raises(ValueError, match="unknown aggregation"):
        goal_cost(model, ctx, goal, prop, futures=4, risk="median")
    with pytest.raises(ValueError, match="alpha"):
        goal_cost(model, ctx, goal, prop, futures=4, risk="cvar", alpha=2.0)
    with pytest.raises(ValueError, match="latent variable"):
        goal_cost(det, torch.zeros(1, 1, 16, 48), torch.zeros(1, 16, 48), prop, futures=4)
    cost = goal_cost(model, ctx, goal, prop, futures=4, risk="cvar", alpha=0.5)
    assert cost(torch.zeros(1, 3, 2, 2)).shape == (1, 3)


def test_latent_rollout_cached_equals_uncached(latent_model):
    model, _ = latent_model
    torch.manual_seed(4)
    ctx = model.encode(torch.randint(0, 256, (2, 1, 64, 64, 3), dtype=torch.uint8))
    acts, prop = torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
    a, ap = model.rollout(ctx, acts, prop, use_cache=True)
    b, bp = model.rollout(ctx, acts, prop, use_cache=False)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(ap, bp, atol=1e-5)
    shift = lambda p: p + 0.1  # noqa: E731  a perturbation of each predicted proprio, fed to the next step
    zc = torch.zeros(2, 1, model.latent.cfg.z_dim)
    a2, ap2 = model.predictor.rollout(ctx, acts, prop, use_cache=True, z_context=zc, z_next=lambda s, p, a: zc, perturb=shift)
    b2, bp2 = model.predictor.rollout(ctx, acts, prop, use_cache=False, z_context=zc, z_next=lambda s, p, a: zc, perturb=shift)
    assert torch.allclose(a2, b2, atol=1e-5) and torch.allclose(ap2, bp2, atol=1e-5)


@pytest.mark.parametrize("stopgrad", [False, True])
def test_target_stopgrad_and_state_decoder(stopgrad):
    """With ``target_stopgrad`` the frame that is only a target passes no gradient back
    (V-JEPA's stop-gradient); a decoder reading the pooled states trains the pooler."""
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    cfg = pred_cfg(num_state_tokens=1, proprio_decoder_hidden=16, state_decoder_hidden=16)
    model = WorldModel(ENC, cfg, WorldModelSpec(proprio_dim=6))
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, proprio_weight=0.0, target_stopgrad=stopgrad, reg="none")
    assert obj.state_decode_weight == 0.0
    task = WorldTask.__new__(WorldTask)
    task.obj, task.module, task.sigreg = obj, model, None
    task.trainable_states = True
    patches = torch.randn(2, 3, 16, 48, requires_grad=True)
    batch = {"patches": patches, "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}
    loss, _ = task.loss(batch, 0)
    loss.backward()
    last = patches.grad[:, -1].abs().sum()  # frame 2 is never an input, only a target
    assert (last == 0) if stopgrad else (last > 0)
    # the state decoder reads the pooled states: its loss reaches the pooler
    model.zero_grad()
    model.decode_state_proprio(model.pool(torch.randn(2, 1, 16, 48))).sum().backward()
    assert model.pooler.queries.grad.abs().sum() > 0 and model.state_decoder[0].in_features == 48


def test_state_decoding_needs_a_state_decoder(tiny_reach_dataset, tmp_path):
    obj = WorldObjective(recipe="frozen", clip_len=4, state_decode_weight=1.0)
    with pytest.raises(ValueError, match="state_decoder_hidden"):
        train_world_model(tiny_reach_dataset, str(tmp_path / "r"), ENC, pred_cfg(num_state_tokens=1), obj, tcfg(2), encoder_ckpt="unused")


def test_bad_decoder_input():
    with pytest.raises(ValueError, match="proprio_decoder_input"):
        pred_cfg(proprio_decoder_input="pixels")
    model = WorldModel(ENC, pred_cfg(num_state_tokens=1, proprio_decoder_hidden=8, proprio_decoder_input="states"), WorldModelSpec(proprio_dim=6))
    assert model.proprio_decoder[0].in_features == 48 and model.decode_proprio(torch.randn(3, 16, 48)).shape == (3, 6)


def test_held_actions_plan_in_the_env_action_space():
    """hold_actions: the planner searches env actions, each held for the frameskip."""
    from planners import CEM
    from worldjepa.eval.planning import goal_cost, run_episode

    torch.manual_seed(0)
    wm = WorldModel(ENC, pred_cfg(action_dim=6), WorldModelSpec(task="reach", env_action_dim=2, frameskip=3, proprio_dim=6)).eval()
    a = torch.tensor([[0.5, -1.0], [0.25, 0.75]])
    assert torch.equal(wm.hold(a), torch.tensor([[0.5, -1.0] * 3, [0.25, 0.75] * 3]))
    with pytest.raises(ValueError, match="held actions must have 2"):
        wm.hold(torch.zeros(4, 6))
    ctx = wm.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    goal, prop = ctx[:, 0] + 0.1, torch.randn(1, 1, 6)
    env_acts = torch.rand(2, 3, 4, 2) * 2 - 1
    held = goal_cost(wm, ctx, goal, prop, hold=True)(env_acts)
    assert torch.allclose(held, goal_cost(wm, ctx, goal, prop)(wm.hold(env_acts)))
    res = run_episode(envs.make("reach"), wm, CEM(2, 2, samples=8, elites=2, iterations=1), seed=0, budget=6, cost_kw={"hold": True})
    assert len(res.replan_seconds) == 2  # 6 env steps = 2 model steps of 3 held env actions


def test_common_random_numbers_score_candidates_on_the_same_futures(latent_model):
    from worldjepa.eval.planning import goal_cost

    model, _ = latent_model
    torch.manual_seed(5)
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    prop = torch.randn(1, 1, 6)
    acts = (torch.rand(1, 4, 2) * 2 - 1).expand(3, -1, -1)  # three identical candidates
    s, _ = model.sample_futures(ctx.expand(3, -1, -1, -1), acts, 6, prop.expand(3, -1, -1), generator=torch.Generator().manual_seed(0), common=True)
    assert torch.equal(s[0], s[1]) and torch.equal(s[0], s[2])  # the same scenarios for every candidate
    assert (s[0, 0] - s[0, 1:]).abs().amax() > 0  # and still several futures
    s, _ = model.sample_futures(ctx.expand(3, -1, -1, -1), acts, 6, prop.expand(3, -1, -1), generator=torch.Generator().manual_seed(0))
    assert not torch.equal(s[0], s[1])  # independent draws differ between identical candidates
    # under common noise the cost of a candidate is the same at every planner iteration
    goal = torch.randn(1, 1, 48)
    cost = goal_cost(model, ctx, goal, prop, futures=6, risk="cvar", alpha=0.5, noise_seed=3)
    cands = torch.rand(1, 5, 4, 2) * 2 - 1
    assert torch.equal(cost(cands), cost(cands))
    loose = goal_cost(model, ctx, goal, prop, futures=6, risk="cvar", alpha=0.5, common_noise=False)
    assert not torch.equal(loose(cands), loose(cands))


def test_stratified_futures_are_seeded_shared_under_common_noise_and_checked(latent_model):
    from worldjepa.eval.planning import goal_cost

    model, _ = latent_model
    torch.manual_seed(7)
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8)).expand(3, -1, -1, -1)
    prop = torch.randn(1, 1, 6).expand(3, -1, -1)
    acts = (torch.rand(1, 4, 2) * 2 - 1).expand(3, -1, -1)  # three identical candidates

    def draw(common, seed=0):
        return model.sample_futures(ctx, acts, 8, prop, generator=torch.Generator().manual_seed(seed), common=common, stratified=True)

    s, _ = draw(True)
    assert torch.equal(s[0], s[1]) and torch.equal(s[0], s[2])
    assert torch.equal(s, draw(True)[0]) and not torch.equal(s, draw(True, seed=1)[0])
    assert (s[0, 0] - s[0, 1:]).abs().amax() > 0
    s, _ = draw(False)
    assert not torch.equal(s[0], s[1])
    cost = goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], futures=8, risk="cvar", alpha=0.25, stratified=True)
    cands = torch.rand(1, 5, 4, 2) * 2 - 1
    assert torch.equal(cost(cands), cost(cands))
    with pytest.raises(ValueError, match="risk.stratified=true .* needs risk.futures > 1"):
        goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], stratified=True)


def test_proprio_noise_puts_the_models_error_into_each_future(latent_model):
    """``proprio_noise``: each future's predicted proprio gets a normal error of that std at
    every step, which the next step starts from; shared by the candidates under common
    random numbers; 0 changes nothing; bad values are refused."""
    from worldjepa.eval.planning import goal_cost

    model, _ = latent_model
    torch.manual_seed(6)
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8)).expand(2, -1, -1, -1)
    prop = torch.randn(1, 1, 6).expand(2, -1, -1)
    acts = (torch.rand(1, 3, 2) * 2 - 1).expand(2, -1, -1)  # two identical candidates
    k = 400

    def futures(noise, seed=0):
        return model.sample_futures(ctx, acts, k, prop, generator=torch.Generator().manual_seed(seed), common=True, proprio_noise=noise)

    s0, p0 = futures(0.0)
    s1, p1 = model.sample_futures(ctx, acts, k, prop, generator=torch.Generator().manual_seed(0), common=True)
    assert torch.equal(p0, p1) and torch.equal(s0, s1)  # 0: the futures of old
    s, p = futures(0.05, seed=1)
    assert torch.equal(p[0], p[1]) and torch.equal(s[0], s[1])  # the same scenarios for both candidates
    # the first step's error against the same draws without noise: std 0.05 in every dimension
    base = model.sample_futures(ctx, acts, k, prop, generator=torch.Generator().manual_seed(1), common=True)[1]
    first = (p - base)[0, :, 0]  # (k, 6); z draws come first from the generator, so the same z as without noise
    assert torch.allclose(first.std(0), torch.full((6,), 0.05), rtol=0.2)
    assert (s[0, :, 1:] - s0[0, :, 1:]).abs().amax() > 0  # the next steps start from the perturbed proprio
    with pytest.raises(ValueError, match="proprio_noise must be >= 0"):
        futures(-0.1)
    with pytest.raises(ValueError, match="proprio_noise must be >= 0"):
        goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], futures=4, proprio_noise=-1.0)
    with pytest.raises(ValueError, match="needs risk.futures > 1"):
        goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], proprio_noise=0.02)
    with pytest.raises(ValueError, match="truncates a categorical prior: this model has no categorical z"):
        goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], futures=4, min_prob=0.1)
    with pytest.raises(ValueError, match="min_prob .*must be in"):
        model.sample_futures(ctx, acts, k, prop, min_prob=1.5)
    cands = torch.rand(1, 5, 3, 2) * 2 - 1
    cost = goal_cost(model, ctx[:1], torch.randn(1, 1, 48), prop[:1], futures=4, risk="cvar", alpha=0.25, proprio_noise=0.02)
    assert torch.equal(cost(cands), cost(cands))  # still common random numbers across iterations


def test_plan_config_energy_all_steps():
    from worldjepa.cli import _all_steps_weight

    assert _all_steps_weight(True) == 1.0 and _all_steps_weight(False) == 0.0 and _all_steps_weight(0.2) == 0.2
    for bad in (2, -1, "sometimes", None):
        with pytest.raises(ValueError, match="energy_all_steps must be true, false or a weight"):
            _all_steps_weight(bad)


def test_plan_warns_past_the_trained_rollout():
    """A plan longer than the model's training rollouts gets a warning naming the fix."""
    import warnings

    from worldjepa.cli import _warn_beyond_trained_horizon
    from worldjepa.world_model import SHIPPED_DIR

    shipped = os.path.join(SHIPPED_DIR, "reach")  # trained on 5-step rollouts
    with pytest.warns(UserWarning, match="objective.rollout_steps=8 objective.clip_len=9"):
        _warn_beyond_trained_horizon(shipped, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_beyond_trained_horizon(shipped, 5)


def test_latent_heads_can_read_the_proprio_alone():
    """``z_inputs='proprio'``: the prior of z depends on the proprio and the action, never on
    the pooled state tokens (which drift in a rollout); the default reads both."""
    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    only = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_inputs="proprio"), spec)
    both = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16), spec)
    s1, s2, p, a = torch.randn(3, 1, 1, 48), torch.randn(3, 1, 1, 48), torch.randn(3, 1, 6), torch.randn(3, 2)
    for m, same in ((only, True), (both, False)):
        q1 = m.latent.prior(m.latent_features(s1, p)[:, 0], a)[0]
        q2 = m.latent.prior(m.latent_features(s2, p)[:, 0], a)[0]
        assert torch.allclose(q1, q2) == same
    assert not torch.allclose(*(only.latent.prior(only.latent_features(s1, pp)[:, 0], a)[0] for pp in (p, p + 1)))
    with pytest.raises(ValueError, match="z_inputs"):
        pred_cfg(z_dim=4, z_inputs="pixels")
    with pytest.raises(ValueError, match="needs a proprio token"):
        pred_cfg(z_dim=4, z_inputs="proprio", proprio_dim=0)


def test_action_weight_adds_a_control_cost():
    """``energy_action_weight`` adds weight x the mean squared action to each candidate's
    energy, exactly; a negative weight is refused."""
    from worldjepa.eval.planning import goal_cost

    torch.manual_seed(0)
    m = WorldModel(ENC, pred_cfg(), WorldModelSpec(proprio_dim=6))
    ctx, goal, prop = torch.randn(1, 1, 2, 48), torch.randn(1, 2, 48), torch.randn(1, 1, 6)
    acts = torch.rand(1, 5, 3, 2) * 2 - 1
    with torch.no_grad():
        plain = goal_cost(m, ctx, goal, prop)(acts)
        taxed = goal_cost(m, ctx, goal, prop, action_weight=0.3)(acts)
    torch.testing.assert_close(taxed - plain, 0.3 * acts.pow(2).mean(dim=(-1, -2)))
    with pytest.raises(ValueError, match="energy_action_weight must be >= 0"):
        goal_cost(m, ctx, goal, prop, action_weight=-0.1)


def test_kl_warmup_ramps_the_kl_weight_and_prices_nothing_at_first():
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    model = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16), WorldModelSpec(proprio_dim=6))
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", kl_weight=0.2, free_bits=0.0, kl_warmup=100)
    task = WorldTask.__new__(WorldTask)
    task.obj, task.module, task.sigreg, task.trainable_states = obj, model, None, True
    assert [task.kl_weight(s) for s in (0, 50, 100, 500)] == pytest.approx([0.0, 0.1, 0.2, 0.2])
    batch = {"patches": torch.randn(2, 3, 16, 48), "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}
    # at step 0 the KL is measured but not in the loss: the prior head gets no gradient
    loss, metrics = task.loss(batch, 0)
    loss.backward()
    assert metrics["kl_nats"] > 0 and all(p.grad is None or p.grad.abs().sum() == 0 for p in model.latent.prior_net.parameters())
    model.zero_grad()
    loss, _ = task.loss(batch, 100)
    loss.backward()
    assert sum(p.grad.abs().sum() for p in model.latent.prior_net.parameters()) > 0
    with pytest.raises(ValueError, match="kl_warmup must be >= 0"):
        WorldObjective(kl_warmup=-1)


def test_z_to_proprio_is_a_direct_path_and_keeps_the_cache_exact():
    """``z_to_proprio``: the predicted proprio moves with z through a linear path of its
    own (its gradient reaches z without the transformer), and the KV-cached rollout still
    equals the uncached one."""
    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=2, z_to_proprio=True), spec)
    s, a, p = torch.randn(2, 3, 1, 48), torch.randn(2, 3, 2), torch.randn(2, 3, 6)
    z = torch.zeros(2, 3, 4, requires_grad=True)
    _, prop = m.predictor(s, a, p, z=z)
    prop[..., 1].sum().backward()
    direct = m.predictor.z_proprio.weight[1]
    assert direct.abs().sum() > 0 and z.grad.abs().sum() > 0
    # the state-token path alone gives z a different gradient: the direct one adds to it
    plain = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=2), spec)
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("predictor.z_proprio")})
    z2 = torch.zeros(2, 3, 4, requires_grad=True)
    plain.predictor(s, a, p, z=z2)[1][..., 1].sum().backward()
    assert torch.allclose(z.grad - z2.grad, direct.expand_as(z.grad), atol=1e-5)
    ctx = torch.randn(2, 1, 1, 48)
    acts, prop0 = torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
    x, xp = m.rollout(ctx, acts, prop0, use_cache=True)
    y, yp = m.rollout(ctx, acts, prop0, use_cache=False)
    assert torch.allclose(x, y, atol=1e-5) and torch.allclose(xp, yp, atol=1e-5)
    with pytest.raises(ValueError, match="z_to_proprio needs"):
        pred_cfg(z_to_proprio=True)


def test_marginal_proprio_loss_is_the_expectation_over_codes():
    """``objective.z_marginal_proprio``: the proprio loss equals sum_c q(c) |base + W c - target|
    (or the squared error) computed code by code, its gradient reaches the posterior's
    head, and the option is refused without the direct path."""
    from worldjepa.train.world import WorldTask, marginal_proprio_loss

    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=2, z_to_proprio=True), spec)
    s, a, p, tgt = torch.randn(2, 3, 1, 48), torch.randn(2, 3, 2), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    feats = m.latent_features(s, p)
    post = m.latent.posterior(feats, a, feats + 0.5)
    z = m.latent.sample(post, generator=torch.Generator().manual_seed(0))
    _, prop = m.predictor(s, a, p, z=z)
    probs = post[0].exp()  # (B, T, 2 groups, 2 classes)
    W = m.predictor.z_proprio.weight  # (P, Z)
    for kind, err in (("l1", torch.abs), ("mse", torch.square)):
        got = marginal_proprio_loss(m, prop, z, post, tgt, kind=kind)
        want = torch.zeros(())
        for c0 in range(2):
            for c1 in range(2):
                code = torch.zeros(4)
                code[c0], code[2 + c1] = 1.0, 1.0
                pred_c = prop - z @ W.T + code @ W.T  # the prediction had the direct path read code c
                want = want + (probs[..., 0, c0] * probs[..., 1, c1] * err(pred_c - tgt).mean(-1)).mean()
        torch.testing.assert_close(got, want)
    got.backward()
    assert sum(q.grad.abs().sum() for q in m.latent.post_net.parameters()) > 0
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_marginal_proprio=True)
    plain = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=2), spec)
    with pytest.raises(ValueError, match="z_marginal_proprio needs"):
        WorldTask(None, plain, obj)


def test_z_proprio_mlp_reads_the_step_and_keeps_the_cache_exact():
    """``z_proprio_hidden > 0``: the direct path is an MLP of (z, proprio, action), so the
    same code can move the predicted proprio differently at different states; the cached
    rollout still equals the uncached one; the MLP without ``z_to_proprio`` is refused."""
    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=2, z_to_proprio=True, z_proprio_hidden=16), spec)
    assert m.predictor.z_proprio is None and m.predictor.z_proprio_mlp is not None
    s, a = torch.randn(1, 1, 1, 48), torch.randn(1, 1, 2)
    p1, p2 = torch.zeros(1, 1, 6), torch.ones(1, 1, 6)
    za, zb = torch.tensor([[[1.0, 0, 1, 0]]]), torch.tensor([[[0, 1.0, 0, 1]]])
    with torch.no_grad():
        shift_1 = m.predictor(s, a, p1, z=za)[1] - m.predictor(s, a, p1, z=zb)[1]
        shift_2 = m.predictor(s, a, p2, z=za)[1] - m.predictor(s, a, p2, z=zb)[1]
    assert not torch.allclose(shift_1, shift_2, atol=1e-4)  # a linear path would give the same shift at both states
    z = torch.zeros(1, 1, 4, requires_grad=True)
    m.predictor(s, a, p1, z=z)[1].sum().backward()
    assert z.grad.abs().sum() > 0
    ctx, acts, prop0 = torch.randn(2, 1, 1, 48), torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
    x, xp = m.rollout(ctx, acts, prop0, use_cache=True)
    y, yp = m.rollout(ctx, acts, prop0, use_cache=False)
    assert torch.allclose(x, y, atol=1e-5) and torch.allclose(xp, yp, atol=1e-5)
    with pytest.raises(ValueError, match="z_proprio_hidden"):
        pred_cfg(z_dim=4, z_proprio_hidden=16)


def test_z_token_false_sends_z_only_to_the_proprio():
    """``z_token=false``: the steps have no z token (one token fewer per block), the
    predicted state tokens do not depend on z while the proprio does, the cached rollout
    (z chosen from each predicted step) equals the uncached one, and z without a direct path is refused."""
    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    kw = dict(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=4, z_to_proprio=True, z_proprio_hidden=16, z_inputs="proprio")
    m = WorldModel(ENC, pred_cfg(**kw, z_token=False), spec)
    assert m.predictor.cfg.block_size == pred_cfg(**kw).block_size - 1 and m.predictor.z_in is None
    s, a, p = torch.randn(1, 2, 1, 48), torch.randn(1, 2, 2), torch.randn(1, 2, 6)
    za, zb = torch.eye(4)[[0, 0]][None], torch.eye(4)[[3, 3]][None]
    with torch.no_grad():
        (sa, pa), (sb, pb) = m.predictor(s, a, p, z=za), m.predictor(s, a, p, z=zb)
    assert torch.equal(sa, sb) and not torch.allclose(pa, pb, atol=1e-4)
    with pytest.raises(ValueError, match="pass z of shape"):
        m.predictor(s, a, p)
    ctx, acts, prop0 = torch.randn(2, 1, 1, 48), torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
    codes = torch.eye(4)
    z_next = lambda st, pr, ac: codes[(pr[:, :, 0] > 0).long() * 3]  # noqa: E731  a code that depends on the predicted step
    with torch.no_grad():
        x = m.predictor.rollout(ctx, acts, prop0, use_cache=True, z_context=codes[[1, 2]][:, None], z_next=z_next)
        y = m.predictor.rollout(ctx, acts, prop0, use_cache=False, z_context=codes[[1, 2]][:, None], z_next=z_next)
    for u, v in zip(x, y):
        assert torch.allclose(u, v, atol=1e-5)
    with pytest.raises(ValueError, match="z_token=false"):
        pred_cfg(z_dim=4, z_token=False)


def test_marginal_loss_on_the_mlp_path_is_the_expectation_over_codes():
    """With the MLP direct path the marginal squared error is sum_c q(c) (base + D(c, p, a) -
    target)^2, code by code; the MLP's last layer starts at zero so every code starts
    from the same prediction."""
    from worldjepa.train.world import WorldTask, marginal_proprio_loss

    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = WorldModel(
        ENC, pred_cfg(num_state_tokens=1, z_dim=3, z_hidden=16, z_kind="categorical", z_classes=3, z_to_proprio=True, z_proprio_hidden=8, z_token=False), spec
    )
    s, a, p, tgt = torch.randn(2, 3, 1, 48), torch.randn(2, 3, 2), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    post = m.latent.posterior(m.latent_features(s, p), a, m.latent_features(s, p) + 0.5)
    z = m.latent.sample(post, generator=torch.Generator().manual_seed(0))
    _, prop = m.predictor(s, a, p, z=z)
    got = marginal_proprio_loss(m, prop, z, post, tgt, kind="mse", proprio=p, actions=a)
    want = torch.zeros(())
    for c in range(3):
        _, pc = m.predictor(s, a, p, z=torch.eye(3)[c].expand(2, 3, 3))
        want = want + (post[0].exp()[..., 0, c] * (pc - tgt).pow(2).mean(-1)).mean()
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="needs the steps' proprio"):
        marginal_proprio_loss(m, prop, z, post, tgt, kind="mse")
    WorldTask(None, m, WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_marginal_proprio=True, proprio_loss="mse"))
    with torch.no_grad():
        p0, p1 = m.predictor(s, a, p, z=torch.eye(3)[0].expand(2, 3, 3))[1], m.predictor(s, a, p, z=torch.eye(3)[2].expand(2, 3, 3))[1]
    assert torch.equal(p0, p1)


def test_z_null_code_reaches_no_path():
    """``z_null``: code 0 means "nothing random happened". Under it the prediction does not
    depend on any z weight (token, state shift, direct path), while another code's does; the
    marginal loss gives code 0 no offset and still equals the code-by-code sum; the cached
    rollout equals the uncached one; a Gaussian z or several groups are refused."""
    from worldjepa.train.world import marginal_proprio_loss

    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    for hidden in (0, 8):
        m = WorldModel(
            ENC,
            pred_cfg(num_state_tokens=1, z_dim=3, z_hidden=16, z_kind="categorical", z_classes=3, z_to_proprio=True, z_proprio_hidden=hidden, z_null=True),
            spec,
        )
        direct = m.predictor.z_proprio if hidden == 0 else m.predictor.z_proprio_mlp
        with torch.no_grad():
            for prm in direct.parameters():  # the MLP's last layer starts at zero: give every code an offset
                prm.add_(torch.randn_like(prm))
        s, a, p, tgt = torch.randn(2, 3, 1, 48), torch.randn(2, 3, 2), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
        null, other = torch.eye(3)[0].expand(2, 3, 3), torch.eye(3)[1].expand(2, 3, 3)
        with torch.no_grad():
            before = [m.predictor(s, a, p, z=z) for z in (null, other)]
            for mod in (m.predictor.z_in, m.predictor.z_to_state, direct):
                for prm in mod.parameters():
                    prm.add_(torch.randn_like(prm))
            after = [m.predictor(s, a, p, z=z) for z in (null, other)]
        assert torch.equal(before[0][0], after[0][0]) and torch.equal(before[0][1], after[0][1])
        assert not torch.allclose(before[1][0], after[1][0], atol=1e-4) and not torch.allclose(before[1][1], after[1][1], atol=1e-4)
        assert torch.equal(m.predictor.z_direct(null, p, a), torch.zeros(2, 3, 6))
        post = m.latent.posterior(m.latent_features(s, p), a, m.latent_features(s, p) + 0.5)
        z = m.latent.sample(post, generator=torch.Generator().manual_seed(0))
        _, prop = m.predictor(s, a, p, z=z)
        got = marginal_proprio_loss(m, prop, z, post, tgt, kind="mse", proprio=p, actions=a)
        base = prop - m.predictor.z_direct(z, p, a)  # the transformer's part, which read the sampled code
        offsets = [torch.zeros(6)] + [m.predictor.z_direct(torch.eye(3)[c].expand(2, 3, 3), p, a) for c in (1, 2)]
        want = sum((post[0].exp()[..., 0, c] * (base + offsets[c] - tgt).pow(2).mean(-1)).mean() for c in range(3))
        torch.testing.assert_close(got, want)
        ctx, acts, prop0 = torch.randn(2, 1, 1, 48), torch.rand(2, 4, 2) * 2 - 1, torch.randn(2, 1, 6)
        z_next = lambda st, pr, ac: torch.eye(3)[(pr[:, :, 0] > 0).long()]  # noqa: E731  null or code 1, depending on the predicted step
        with torch.no_grad():
            x = m.predictor.rollout(ctx, acts, prop0, use_cache=True, z_context=torch.eye(3)[[0, 2]][:, None], z_next=z_next)
            y = m.predictor.rollout(ctx, acts, prop0, use_cache=False, z_context=torch.eye(3)[[0, 2]][:, None], z_next=z_next)
        for u, v in zip(x, y):
            assert torch.allclose(u, v, atol=1e-5)
    with pytest.raises(ValueError, match="z_null needs a categorical z of one group"):
        pred_cfg(z_dim=4, z_null=True)
    with pytest.raises(ValueError, match="z_null needs a categorical z of one group"):
        pred_cfg(z_dim=4, z_kind="categorical", z_classes=2, z_null=True)


def test_z_null_cost_charges_the_non_null_codes_after_its_warmup():
    """``objective.z_null_cost``: the loss grows by cost x (1 - posterior's null probability),
    nothing before ``z_null_warmup`` steps, ramping to full at twice that; one step of
    gradient on it alone raises the null probability. ``z_null_weight`` adds the null code's
    own prediction loss. Both are refused without ``z_null``."""
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    model = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=4, z_null=True), spec)
    batch = {"patches": torch.randn(2, 3, 16, 48), "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}

    def task(cost, warmup=0):
        t = WorldTask.__new__(WorldTask)
        t.obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_null_cost=cost, z_null_warmup=warmup)
        t.module, t.sigreg, t.trainable_states = model, None, True
        return t

    (free, m0), (charged, m1) = task(0.0).loss(batch, 0), task(2.0).loss(batch, 0)
    assert m0["post_null"] == pytest.approx(m1["post_null"]) and 0 < m1["post_null"] < 1
    assert float((charged - free).detach()) == pytest.approx(2.0 * (1 - m1["post_null"]), rel=1e-4)
    assert [task(2.0, 100).null_cost(s) for s in (0, 100, 150, 200, 900)] == [0.0, 0.0, 1.0, 2.0, 2.0]
    opt = torch.optim.SGD(model.latent.post_net.parameters(), lr=1.0)
    opt.zero_grad()
    (charged - free).backward()
    opt.step()
    assert task(0.0).loss(batch, 0)[1]["post_null"] > m1["post_null"]
    # z_null_weight: the null code's own loss, every step: state L1 + proprio_weight x proprio L1 with z = code 0
    t = task(0.0)
    t.obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_null_weight=0.5, proprio_weight=0.3)
    total, m2 = t.loss(batch, 0)
    with torch.no_grad():
        s = model.pool(batch["patches"])
        pred0, prop0 = model.predictor(s[:, :-1], batch["actions"][:, :-1], batch["proprio"][:, :-1], z=torch.eye(4)[0].expand(2, 2, 4))
    want = (pred0 - s[:, 1:]).abs().mean() + 0.3 * (prop0 - batch["proprio"][:, 1:]).abs().mean()
    assert m2["null_loss"] == pytest.approx(float(want), rel=1e-5)
    plain = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=16, z_kind="categorical", z_classes=4), spec)
    with pytest.raises(ValueError, match="z_null_cost and z_null_weight need a null code"):
        WorldTask(None, plain, WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_null_cost=0.1))
    with pytest.raises(ValueError, match="z_null_cost, z_null_weight and z_null_warmup must be >= 0"):
        WorldObjective(z_null_cost=-1.0)


def test_proprio_loss_mse_option():
    """``objective.proprio_loss=mse`` scores the predicted proprio by its squared error
    (the reported proprio loss equals the MSE of the predictor's output); other names are refused."""
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    model = WorldModel(ENC, pred_cfg(num_state_tokens=1), WorldModelSpec(proprio_dim=6))
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", proprio_loss="mse", proprio_weight=1.0)
    task = WorldTask.__new__(WorldTask)
    task.obj, task.module, task.sigreg, task.trainable_states = obj, model, None, True
    batch = {"patches": torch.randn(2, 3, 16, 48), "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}
    _, metrics = task.loss(batch, 0)
    with torch.no_grad():
        s = model.pool(batch["patches"])
        _, prop = model.predictor(s[:, :-1], batch["actions"][:, :-1], batch["proprio"][:, :-1])
    assert metrics["proprio_loss"] == pytest.approx(float((prop - batch["proprio"][:, 1:]).pow(2).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="proprio_loss must be 'l1' or 'mse'"):
        WorldObjective(proprio_loss="huber")


def _wta_model(spec, **kw):
    cfg = dict(
        num_state_tokens=1, z_dim=3, z_hidden=16, z_kind="categorical", z_classes=3, z_to_proprio=True, z_proprio_hidden=16, z_token=False, z_inputs="proprio"
    )
    return WorldModel(ENC, pred_cfg(**{**cfg, **kw}), spec)


def _task(model, obj):
    from worldjepa.train.world import WorldTask

    t = WorldTask.__new__(WorldTask)
    t.obj, t.module, t.sigreg, t.trainable_states = obj, model, None, True
    return t


def test_wta_scores_the_best_code_and_trains_the_prior_on_it():
    """``objective.z_assign=wta``: the proprio loss is the best code's error plus
    ``z_wta_relax`` x every code's mean error (computed here code by code), the prior is
    scored by the winner's log-probability; with ``z_token=true`` one pass per code picks
    the winners; ``rollout_proprio`` adds the rolled-out steps' proprio loss; settings the
    winner cannot be picked under are refused."""
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = _wta_model(spec)
    batch = {"patches": torch.randn(2, 3, 16, 48), "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_assign="wta", z_wta_relax=0.1, proprio_loss="mse")
    _, met = _task(m, obj).loss(batch, 0)
    s, a, p = m.pool(batch["patches"]), batch["actions"], batch["proprio"]
    with torch.no_grad():
        errs = torch.stack(
            [(m.predictor(s[:, :-1], a[:, :-1], p[:, :-1], z=torch.eye(3)[c].expand(2, 2, 3))[1] - p[:, 1:]).pow(2).mean(-1) for c in range(3)], -1
        )
        win = errs.argmin(-1)
        want = errs.gather(-1, win[..., None]).mean() + 0.1 * errs.mean()
        logp = m.latent.code_log_probs(m.latent.prior(m.latent_features(s, p)[:, :-1], a[:, :-1]))
    assert met["proprio_loss"] == pytest.approx(float(want), rel=1e-5)
    assert met["kl_nats"] == pytest.approx(float(-logp.gather(-1, win[..., None]).mean()), rel=1e-5)
    # the rolled-out steps' proprio is scored too, with rollout_proprio (and only then)
    obj_r = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=2, reg="none", z_assign="wta", rollout_proprio=True)
    _, met_r = _task(m, obj_r).loss(batch, 0)
    assert met_r["rollout_proprio_loss"] > 0
    _, met_n = _task(m, WorldObjective(recipe="frozen", clip_len=3, rollout_steps=2, reg="none", z_assign="wta")).loss(batch, 0)
    assert "rollout_proprio_loss" not in met_n
    # the transformer sees z (z_token=true): one pass per code picks the winners; the winners' pass is scored
    mt = _wta_model(spec, z_token=True)
    _, met_t = _task(mt, obj).loss(batch, 0)
    s = mt.pool(batch["patches"])
    with torch.no_grad():
        errs = torch.stack(
            [(mt.predictor(s[:, :-1], a[:, :-1], p[:, :-1], z=torch.eye(3)[c].expand(2, 2, 3))[1] - p[:, 1:]).pow(2).mean(-1) for c in range(3)], -1
        )
        zw = torch.eye(3)[errs.argmin(-1)]
        prop_w = mt.predictor(s[:, :-1], a[:, :-1], p[:, :-1], z=zw)[1]
        # relax: one more pass, with a code drawn at random for each step (the loss's own draw)
        zo = torch.eye(3)[torch.randint(3, (2, 2), generator=torch.Generator().manual_seed(batch["seed"] + 2))]
        pred_o, prop_o = mt.predictor(s[:, :-1], a[:, :-1], p[:, :-1], z=zo)
        want_r = (pred_o - s[:, 1:]).abs().mean() + obj.proprio_weight * (prop_o - p[:, 1:]).pow(2).mean()
    want_t = (prop_w - p[:, 1:]).pow(2).mean()
    assert met_t["relax_loss"] == pytest.approx(float(want_r), rel=1e-5)
    assert met_t["proprio_loss"] == pytest.approx(float(want_t), rel=1e-5)
    for bad in ({"z_token": True, "z_to_proprio": False, "z_proprio_hidden": 0}, {"z_dim": 6}, {"z_kind": "gaussian"}):
        with pytest.raises(ValueError, match="z_assign=wta picks"):
            WorldTask(None, _wta_model(spec, **bad), obj)
    with pytest.raises(ValueError, match="z_assign must be"):
        WorldObjective(z_assign="best")
    with pytest.raises(ValueError, match="z_wta_margin"):
        WorldObjective(z_wta_margin=-0.1)


def test_wta_margin_gives_ties_to_the_lowest_code_and_ramps_up():
    """With ``z_wta_margin`` the winner is the lowest-numbered code within the margin of
    the nearest (without it, the smallest loss); the margin is 0 for
    ``z_wta_margin_warmup`` steps, then ramps up over as many."""
    from worldjepa.train.world import WorldTask, wta_winner

    dist = torch.tensor([[0.30, 0.05, 0.06, 0.20], [0.04, 0.05, 0.01, 0.50], [0.50, 0.40, 0.30, 0.01]])
    assert wta_winner(dist, dist, 0.0).tolist() == [1, 2, 3]
    assert wta_winner(dist, dist, 0.03).tolist() == [1, 0, 3]
    assert wta_winner(dist, dist, 0.3).tolist() == [0, 0, 2]
    t = WorldTask.__new__(WorldTask)
    t.obj = WorldObjective(z_assign="wta", z_wta_margin=0.04, z_wta_margin_warmup=100)
    assert [t.wta_margin(k) for k in (0, 100, 150, 200, 500)] == pytest.approx([0.0, 0.0, 0.02, 0.04, 0.04])
    # in the loss, with or without the z token: a margin wider than any gap hands every step to code 0
    torch.manual_seed(0)
    batch = {"patches": torch.randn(2, 3, 16, 48), "actions": torch.randn(2, 3, 2), "proprio": torch.randn(2, 3, 6), "seed": 0}
    for token in (False, True):
        m = _wta_model(WorldModelSpec(proprio_dim=6), z_token=token)
        wide = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=0, reg="none", z_assign="wta", z_wta_margin=100.0)
        _, met = _task(m, wide).loss(batch, 0)
        assert met["codes_used"] == 1
        with torch.no_grad():
            s = m.pool(batch["patches"])
            logp = m.latent.code_log_probs(m.latent.prior(m.latent_features(s, batch["proprio"])[:, :-1], batch["actions"][:, :-1]))
        assert met["kl_nats"] == pytest.approx(float(-logp[..., 0].mean()), rel=1e-5)


def test_wta_covers_both_outcomes_of_a_coin_and_agrees_where_there_is_none():
    """On a synthetic task whose proprio moves by the action, plus a coin-flip jump of +-1
    in its first dimension where that dimension is positive, a model trained with
    ``z_assign=wta`` samples both jumps from its prior there, and its samples agree
    elsewhere."""
    torch.manual_seed(0)
    spec = WorldModelSpec(proprio_dim=6)
    m = _wta_model(spec, z_dim=4, z_classes=4, proprio_residual=True)
    obj = WorldObjective(recipe="frozen", clip_len=2, rollout_steps=0, reg="none", z_assign="wta", proprio_loss="mse", kl_weight=1.0)
    task = _task(m, obj)
    gen = torch.Generator().manual_seed(0)

    def batch(n):  # one transition per clip: p1 = p0 + (a, 0, ...) + a coin's jump where p0[0] > 0
        p0 = torch.randn(n, 1, 6, generator=gen)
        a = torch.rand(n, 2, 2, generator=gen) - 0.5
        coin = torch.where(torch.rand(n, 1, generator=gen) < 0.5, 1.0, -1.0)
        step = torch.cat([a[:, :1], torch.zeros(n, 1, 4)], -1)
        step[..., 0] += coin * (p0[..., 0] > 0)
        return {"patches": torch.randn(n, 2, 16, 48, generator=gen) * 0.1, "actions": a, "proprio": torch.cat([p0, p0 + step], 1), "seed": 0}

    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(400):
        loss, _ = task.loss(batch(64), 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    n = 200
    p0 = torch.randn(n, 1, 6, generator=gen)
    a = torch.rand(n, 1, 2, generator=gen) - 0.5
    ctx = m.pool(torch.randn(n, 1, 16, 48, generator=gen) * 0.1)
    with torch.no_grad():
        _, sp = m.sample_futures(ctx, a, 16, p0, generator=torch.Generator().manual_seed(1))  # (n, 16, 1, 6)
    calm_next = p0[:, 0, 0] + a[:, 0, 0]
    x = sp[:, :, 0, 0]
    coin = p0[:, 0, 0] > 0
    up = ((x - (calm_next + 1)[:, None]).abs() < 0.3).any(1)
    down = ((x - (calm_next - 1)[:, None]).abs() < 0.3).any(1)
    assert (up & down)[coin].float().mean() > 0.9
    assert x[~coin].std(1).median() < 0.1  # no invented uncertainty where the future is fixed


def test_refit_prior_rewrites_a_categorical_checkpoint(tiny_reach_dataset, tmp_path):
    """`worldjepa refit-prior`: on a real checkpoint with a categorical z, the prior is
    refitted to the codes that fit each step (training cross-entropy falls), the
    checkpoint is rewritten and loads strictly with the refit in its meta.json, and only
    the prior changed; bad inputs give clear errors."""
    from conftest import run_cli

    from worldjepa.train.checkpoint import read_meta
    from worldjepa.train.prior_fit import refit_prior

    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / "pre"), JEPA(ENC, JEPAConfig()), {"encoder": ENC.to_dict()})
    obj = WorldObjective(recipe="frozen", clip_len=3, rollout_steps=1, reg="none", batch_size=8, kl_weight=0.1, free_bits=0.0)
    cfg = pred_cfg(num_state_tokens=1, z_dim=4, z_kind="categorical", z_classes=4, z_hidden=32, z_to_proprio=True)
    train_world_model(tiny_reach_dataset, str(tmp_path / "run"), ENC, cfg, obj, tcfg(10), encoder_ckpt=ck, val_fraction=0.25)
    final = str(tmp_path / "run" / "final")
    meta_path = os.path.join(final, "meta.json")
    meta = json.load(open(meta_path))
    meta["val_episodes"] = meta["train_episodes"]  # a tiny dataset: score the kept epoch on the training episodes, so that one is kept
    json.dump(meta, open(meta_path, "w"))
    before = WorldModel.load(final)
    info = refit_prior(final, tiny_reach_dataset, epochs=60, lr=3e-3)
    assert info["transitions"] > 0 and info["val_transitions"] > 0
    assert info["train_ce_after"] < info["train_ce_before"] - 0.1 and info["best_epoch"] > 0
    after = WorldModel.load(final)
    assert read_meta(final)["prior_refit"]["best_epoch"] == info["best_epoch"]
    changed = {k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])}
    assert changed and all(k.startswith("latent.prior_net.") for k in changed)
    res = run_cli("refit-prior", final, "epochs=2", f"data={tiny_reach_dataset}")
    assert res.returncode == 0, res.stderr
    assert "prior of" in res.stdout + res.stderr
    res = run_cli("refit-prior", final, "epoch=2")
    assert res.returncode == 2 and "unknown: epoch" in res.stdout + res.stderr
    with pytest.raises(FileNotFoundError, match="not a dataset directory"):
        refit_prior(final, str(tmp_path / "nowhere"))
    gauss = str(tmp_path / "gauss")
    train_world_model(tiny_reach_dataset, gauss, ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=32), obj, tcfg(2), encoder_ckpt=ck, val_fraction=0.25)
    with pytest.raises(ValueError, match="categorical latent"):
        refit_prior(os.path.join(gauss, "final"), tiny_reach_dataset)


def test_an_ensemble_pools_its_members_futures(latent_model, tmp_path):
    """model=[a,b]: each member scores a candidate on its own sampled futures, the pool is
    aggregated as one model's futures are (so the members' disagreement counts as risk),
    the control cost is added once; members must share the task and interfaces."""
    from planners import CEM
    from planners.risk import aggregate
    from worldjepa.eval.planning import ensemble_cost, evaluate, goal_cost, members_of

    model, _ = latent_model
    torch.manual_seed(7)
    other = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=32), model.spec).eval()  # a second member: other weights
    ctx = model.encode(torch.randint(0, 256, (1, 1, 64, 64, 3), dtype=torch.uint8))
    prop, goal = torch.randn(1, 1, 6), torch.randn(1, 1, 48)
    cands = torch.rand(2, 5, 3, 2) * 2 - 1
    kw = {"futures": 4, "risk": "cvar", "alpha": 0.25, "noise_seed": 3}
    raw = [goal_cost(m, ctx, goal, prop, reduce=False, **kw)(cands) for m in (model, other)]
    assert raw[0].shape == (2, 5, 4)
    pooled = ensemble_cost([goal_cost(m, ctx, goal, prop, reduce=False, **kw) for m in (model, other)], "cvar", alpha=0.25)(cands)
    assert torch.allclose(pooled, aggregate(torch.cat(raw, -1), "cvar", alpha=0.25))  # the worst 2 of the 8 pooled futures
    worst2 = [aggregate(r, "cvar", alpha=0.5) for r in raw]  # each member's own worst two
    assert (pooled >= torch.maximum(*worst2) - 1e-6).all() and (pooled > torch.minimum(*worst2)).any()
    # one member twice is that member: the same futures, duplicated
    twice = ensemble_cost([goal_cost(model, ctx, goal, prop, reduce=False, **kw)] * 2, "cvar", alpha=0.25)(cands)
    assert torch.allclose(twice, goal_cost(model, ctx, goal, prop, **kw)(cands))
    # risk-neutral with a control cost: the mean over both members, plus the cost once
    e0 = goal_cost(model, ctx, goal, prop, futures=4, noise_seed=3)(cands)
    e1 = goal_cost(other, ctx, goal, prop, futures=4, noise_seed=3)(cands)
    m2 = ensemble_cost([goal_cost(m, ctx, goal, prop, reduce=False, futures=4, noise_seed=3) for m in (model, other)], "mean", action_weight=0.5)(cands)
    assert torch.allclose(m2, (e0 + e1) / 2 + 0.5 * cands.pow(2).mean(dim=(-1, -2)), atol=1e-6)
    with pytest.raises(ValueError, match="unknown aggregation"):
        ensemble_cost([], "median")
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_cost([], "mean")
    # a member trained for another task or interface is refused, naming the difference
    push = WorldModel(ENC, pred_cfg(num_state_tokens=1), WorldModelSpec(task="push", proprio_dim=6))
    with pytest.raises(ValueError, match="member 1 has task='push', member 0 has 'reach'"):
        members_of([model, push])
    with pytest.raises(ValueError, match="at least one world model"):
        members_of([])
    # a planning episode with the ensemble, both members reading the goal image themselves
    summary, results = evaluate("reach", [model, other], lambda: CEM(2, 2, samples=8, elites=2, iterations=1), episodes=1, budget=2, progress=False, cost_kw=kw)
    assert summary["episodes"] == 1 and len(results[0].replan_seconds) == 2


def test_plan_command_takes_an_ensemble(latent_model, tmp_path, monkeypatch, capsys):
    """``worldjepa plan model=[a,b]``: both checkpoints are loaded and recorded in
    results.json; a member for another task is refused with the difference named."""
    import json

    from worldjepa.cli import main

    model, run = latent_model
    a = model.save(str(tmp_path / "a"))
    b = WorldModel(ENC, pred_cfg(num_state_tokens=1, z_dim=4, z_hidden=32), model.spec).save(str(tmp_path / "b"))
    monkeypatch.chdir(tmp_path)
    common = [
        "plan",
        "env=reach",
        "episodes=1",
        "budget=2",
        "media_episodes=0",
        "progress=false",
        "planner.samples=8",
        "planner.elites=2",
        "planner.iterations=1",
        "energy_proprio_weight=0",
    ]
    assert main([*common, f"model=[{a},{b}]", "risk.futures=2", "risk.aggregate=cvar", "out=out"]) == 0
    res = json.load(open(tmp_path / "out" / "results.json"))
    assert res["model"] == [a, b] and res["episodes"] == 1
    c = WorldModel(ENC, pred_cfg(num_state_tokens=1), WorldModelSpec(task="push", proprio_dim=6)).save(str(tmp_path / "c"))
    capsys.readouterr()
    assert main([*common, f"model=[{a},{c}]", "out=out2"]) == 2
    assert "ensemble member 1 has task='push', member 0 has 'reach'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out2" / "results.json")
    # a deterministic member cannot sample futures: the error names it, not just "this one"
    d = WorldModel(ENC, pred_cfg(num_state_tokens=1), model.spec).save(str(tmp_path / "d"))
    assert main([*common, f"model=[{a},{d}]", "risk.futures=2", "out=out3"]) == 2
    err = capsys.readouterr().err
    assert f"risk.futures=2 samples futures from each model's latent variable, but {d} has none" in err  # d alone, not a
    assert not os.path.exists(tmp_path / "out3" / "results.json")
    assert main([*common, f"model=[{a},{d}]", "risk.futures=1", "out=out4"]) == 0  # one future each: a mixed ensemble plans


def test_planning_gives_a_history_model_its_past_steps():
    """A model trained with history C > 1 plans from the last C observations and the
    actions executed between them, as it was trained; the context is shorter only at the
    episode's start, and an ensemble's members must agree on the history."""
    from planners import CEM
    from worldjepa.eval.planning import goal_cost, members_of, replan_cost, run_episode

    torch.manual_seed(0)
    wm = WorldModel(ENC, pred_cfg(num_state_tokens=1), WorldModelSpec(proprio_dim=6, history=2)).eval()
    env = envs.make("reach")
    o0, info = env.reset(seed=3)
    a0 = np.array([0.9, -0.7], np.float32)
    o1 = env.step(a0)[0]
    o2 = env.step(-a0)[0]
    with torch.no_grad():
        goals = [wm.encode_goal(torch.from_numpy(info["goal_pixels"])[None])]
    kw = {"energy": "l1"}
    cand = torch.rand(1, 5, 3, 2) * 2 - 1
    with torch.no_grad():
        with_past = replan_cost([wm], goals, o1, kw, past=[(o0, a0)])(cand)
        alone = replan_cost([wm], goals, o1, kw)(cand)
        px = torch.from_numpy(np.stack([o0["pixels"], o1["pixels"]]))[None]
        pp = torch.from_numpy(np.stack([o0["proprio"], o1["proprio"]]))[None]
        by_hand = goal_cost(wm, wm.encode(px), goals[0][0], pp, context_actions=torch.from_numpy(a0)[None, None], **kw)(cand)
        # only the last C - 1 = 1 past steps join the context
        longer = replan_cost([wm], goals, o2, kw, past=[(o0, a0), (o1, -a0)])(cand)
        last = replan_cost([wm], goals, o2, kw, past=[(o1, -a0)])(cand)
    assert torch.allclose(with_past, by_hand, atol=1e-6)
    assert not torch.allclose(with_past, alone, atol=1e-4)  # the past step changes the prediction
    assert torch.allclose(longer, last, atol=1e-6)
    res = run_episode(envs.make("reach"), wm, CEM(3, 2, samples=8, elites=2, iterations=1), seed=1000, budget=3)
    assert len(res.replan_seconds) == 3
    one = WorldModel(ENC, pred_cfg(num_state_tokens=1), WorldModelSpec(proprio_dim=6))
    with pytest.raises(ValueError, match="history=1"):
        members_of([wm, one])


def test_frozen_cache_keeps_only_reachable_frames(tiny_reach_dataset):
    """Clips that start every 2 env steps and step by 4 read only even frames: the frozen
    recipe's embedding cache encodes and keeps those alone, and a batch's patches are the
    encoder's own embeddings of the frames each clip names."""
    from worldjepa.data.clips import ClipDataset
    from worldjepa.train.world import WorldTask

    torch.manual_seed(0)
    obj = WorldObjective(recipe="frozen", clip_len=3, frameskip=4, clip_stride=2, batch_size=6, rollout_steps=0, reg="none")
    ds = ClipDataset(tiny_reach_dataset, clip_len=3, frameskip=4, stride=2)
    spec = WorldModelSpec(task="reach", image_size=64, env_action_dim=2, frameskip=4, proprio_dim=6)
    task = WorldTask(ds, WorldModel(ENC, pred_cfg(num_state_tokens=0, action_dim=8), spec), obj)
    batch = task.batch(0, torch.device("cpu"))
    gen = torch.Generator().manual_seed(obj.seed * 1_000_003)
    idx = torch.randint(len(ds), (obj.batch_size,), generator=gen)
    for b, i in enumerate(idx):
        ep, t0 = ds.locate(int(i))
        frames = torch.from_numpy(ds.store.load(ep)["frames"][t0 : t0 + 3 * 4 : 4])
        with torch.no_grad():
            want = task.module.encoder.eval().encode_frames(frames[None])[0].to(torch.float16).float()
        assert torch.equal(batch["patches"][b], want)
        length = int(ds.store.entries[ep]["length"]) + 1  # frames per episode
        assert len(task._emb_cache[ep]) == (length + 1) // 2  # frames 0, 2, 4, ...
