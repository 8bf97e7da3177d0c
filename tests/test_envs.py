import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.tasks import PushEnv, ReachEnv, TwoRoomEnv

TASKS = ["reach", "tworoom", "push"]


@pytest.mark.parametrize("name", TASKS + ["gym:Reacher-v5"])
def test_check_env(name):
    env = envs.make(name)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("name", TASKS)
def test_registered_ids_and_interface(name):
    env = gym.make(envs.TASKS[name].env_id, image_size=48)
    obs, info = env.reset(seed=1)
    assert obs["pixels"].shape == (48, 48, 3) and obs["pixels"].dtype == np.uint8
    assert obs["proprio"].dtype == np.float32
    assert info["goal_pixels"].shape == (48, 48, 3) and info["goal_pixels"].dtype == np.uint8
    assert info["goal_state"].shape == (env.unwrapped.goal_dim,)
    assert isinstance(info["is_success"], bool)
    assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0
    # the observation changes when the robot moves: frames are informative
    obs2, *_ = env.step(np.ones(env.action_space.shape, dtype=np.float32))
    assert np.abs(obs2["pixels"].astype(int) - obs["pixels"].astype(int)).sum() > 0
    env.close()


@pytest.mark.parametrize("name", TASKS + ["gym:Reacher-v5"])
def test_state_round_trip_bit_for_bit(name):
    env = envs.make(name).unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    saved = env.get_state()
    actions = rng.uniform(-1, 1, (15,) + env.action_space.shape).astype(np.float32)
    first = [env.step(a) for a in actions]
    # disturb, then restore and replay the same actions
    env.reset(seed=99)
    env.set_state(saved)
    np.testing.assert_array_equal(env.get_state(), saved)
    second = [env.step(a) for a in actions]
    for (o1, r1, *_, i1), (o2, r2, *_, i2) in zip(first, second):
        np.testing.assert_array_equal(o1["pixels"], o2["pixels"])
        np.testing.assert_array_equal(o1["proprio"], o2["proprio"])
        np.testing.assert_array_equal(i1["state"], i2["state"])
        assert r1 == r2


@pytest.mark.parametrize("name", TASKS)
def test_seeding_is_deterministic(name):
    a, b = envs.make(name), envs.make(name)
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    np.testing.assert_array_equal(oa["pixels"], ob["pixels"])
    np.testing.assert_array_equal(ia["goal_state"], ib["goal_state"])
    oc, ic = b.reset(seed=8)
    assert not np.array_equal(ia["goal_state"], ic["goal_state"])


@pytest.mark.parametrize("name", TASKS)
def test_goal_image_shows_goal_state(name):
    """Putting the simulator at the goal pose renders the goal image, and counts as success."""
    env = envs.make(name).unwrapped
    obs, info = env.reset(seed=5)
    assert not info["is_success"]
    env.data.qpos[:] = env.goal_qpos(info["goal_state"])
    env.data.qvel[:] = 0
    import mujoco

    mujoco.mj_forward(env.model, env.data)
    np.testing.assert_array_equal(env._render(), info["goal_pixels"])
    assert env.is_success(env.achieved(), info["goal_state"])


def test_tworoom_start_and_goal_in_different_rooms():
    env = envs.make("tworoom").unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        assert np.sign(env.data.qpos[0]) != np.sign(env.goal_state[0])


def test_action_repeat_moves_further():
    import mujoco

    one, two = envs.make("tworoom", action_repeat=1).unwrapped, envs.make("tworoom", action_repeat=2).unwrapped
    for env in (one, two):
        env.reset(seed=0)
        env.data.qpos[:] = [-0.4, 0.2]  # left room, clear of walls for the moves below
        mujoco.mj_forward(env.model, env.data)
        for _ in range(3):
            env.step(np.array([1.0, 0.0], dtype=np.float32))
    d1, d2 = one.data.qpos[0] + 0.4, two.data.qpos[0] + 0.4
    assert d1 > 0.05 and d2 > 1.7 * d1


@pytest.mark.parametrize("kwargs, match", [({"image_size": 0}, "image_size"), ({"image_size": -5}, "image_size"), ({"action_repeat": 0}, "action_repeat")])
def test_bad_constructor_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReachEnv(**kwargs)


def test_unknown_env_name():
    with pytest.raises(ValueError, match="unknown env 'rech'.*reach"):
        envs.make("rech")


@pytest.mark.parametrize("action, match", [([0.5, np.nan], "NaN"), ([1.5, 0.0], "out of bounds"), ([0.1, 0.2, 0.3], "shape")])
def test_bad_actions(action, match):
    env = TwoRoomEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(np.array(action, dtype=np.float32))


def test_set_state_wrong_length():
    env = PushEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=f"length {env.state_dim}"):
        env.set_state(np.zeros(env.state_dim - 1))
    with pytest.raises(ValueError, match="NaN"):
        env.set_state(np.full(env.state_dim, np.nan))


def test_tworoom_directed_policy_crosses_the_door():
    env = envs.make("tworoom").unwrapped
    crossed = 0
    for seed in range(8):
        env.reset(seed=seed, options={"policy": "directed"})
        sides = {np.sign(env.data.qpos[0])}
        for _ in range(100):
            env.step(env.explore_action())
            sides.add(np.sign(env.data.qpos[0]))
        crossed += len(sides) > 1
    assert crossed >= 6


def test_tworoom_directed_policy_also_meets_the_walls():
    """Exploration must show walls stopping the agent, or a world model cannot learn them."""
    env = envs.make("tworoom").unwrapped
    blocked = 0
    for seed in range(8):
        env.reset(seed=seed, options={"policy": "directed"})
        for _ in range(100):
            a = env.explore_action()
            x0 = env.data.qpos[0]
            env.step(a)
            dx = env.data.qpos[0] - x0
            # at a wall (the middle one, off the door, or an outer one), pushing into it, x not moving
            at_wall = (abs(x0) < 0.1 and abs(env.data.qpos[1]) > 0.1) or abs(x0) > 0.4
            into = a[0] * (-np.sign(x0) if abs(x0) < 0.1 else np.sign(x0)) > 0.5
            blocked += bool(at_wall and into and abs(dx) < 0.01)
    assert blocked >= 20


@pytest.mark.parametrize("name", ["tworoom", "hazard"])
def test_directed_policy_also_rests(name):
    """The data must show an agent standing still under (near) zero actions away from its
    start, or a world model predicts a resting agent drifting off (at the goal, say)."""
    env = envs.make(name).unwrapped
    rests = steps = 0
    for seed in range(16):  # on Hazard most episodes end in a pit early: enough of them for the free steps
        env.reset(seed=seed, options={"policy": "directed"})
        start = env.data.qpos[:2].copy()
        for _ in range(40):
            a = env.explore_action()
            p = env.data.qpos[:2].copy()
            env.step(a)
            if getattr(env, "_trapped_at", None) is not None:
                break  # a trapped agent stands still whatever it does: not a rest
            steps += 1
            moved_on = np.linalg.norm(p - start) > 0.05
            rests += bool(moved_on and np.abs(a).max() < 0.35 and np.linalg.norm(env.data.qpos[:2] - p) < 0.005)
    assert rests >= 0.04 * steps, (rests, steps)


def test_push_directed_policy_moves_the_block():
    env = envs.make("push").unwrapped
    moved = []
    for seed in range(4):
        env.reset(seed=seed, options={"policy": "directed"})
        start = env.block_pose()
        for _ in range(100):
            env.step(env.explore_action())
        moved.append(np.linalg.norm(env.block_pose()[:2] - start[:2]))
    assert np.mean(moved) > 0.05


def test_unknown_policy():
    env = envs.make("reach")
    with pytest.raises(ValueError, match="unknown exploration policy 'spiral'"):
        env.reset(seed=0, options={"policy": "spiral"})


def test_hazard_has_two_modes_and_a_trap():
    """Same state, same action into the gust strip: pushed up in some seeds, down in
    others; a push into a pit freezes the agent."""
    import mujoco

    env = envs.make("hazard")
    u = env.unwrapped
    outcomes, traps = set(), 0
    for seed in range(12):
        env.reset(seed=seed, options={"goal_state": np.array([0.35, 0.0])})
        u.data.qpos[:2], u.data.qvel[:] = [-0.16, 0.09], 0.0  # the strip's upper edge: a push up lands in the pit, one down does not
        mujoco.mj_forward(u.model, u.data)
        for _ in range(4):
            obs, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
        outcomes.add(info["gust"])
        if info["trapped"]:
            traps += 1
            before = obs["proprio"][:2].copy()
            obs, _, _, _, info = env.step(np.array([-1.0, -1.0], dtype=np.float32))
            assert np.allclose(obs["proprio"][:2], before) and info["trapped"]
    assert outcomes == {1, -1} and 0 < traps < 12


def test_hazard_snapshot_restore_replays_the_future():
    """restore(snapshot) with the same generator gives the same gusts and positions; a
    different generator can give the other push; a dict that is no snapshot is refused."""
    env = envs.make("hazard").unwrapped
    env.reset(seed=0, options={"goal_state": np.array([0.35, 0.0])})
    env.restore({**env.snapshot(), "qpos": np.array([-0.16, 0.09]), "qvel": np.zeros(2)})
    snap = env.snapshot()

    def run(seed):
        env.restore(snap, np.random.default_rng(seed))
        path = [env.simulate(np.array([1.0, 0.0])) for _ in range(4)]
        return np.stack(path), env.snapshot()["gust"]

    first, gust = run(7)
    again, gust_again = run(7)
    assert np.array_equal(first, again) and gust == gust_again != 0
    assert {run(s)[1] for s in range(12)} == {1, -1}
    with pytest.raises(ValueError, match="not a HazardEnv snapshot"):
        env.restore({"qpos": snap["qpos"]})


def test_hazard_exploration_goes_round_the_pits():
    """The directed policy also drives the safe routes: in the middle column above or
    below the pits (|x| < 0.12, |y| > 0.34), where a planner going round must know the
    dynamics."""
    env = envs.make("hazard").unwrapped
    round_steps = steps = 0
    for seed in range(10):
        env.reset(seed=seed, options={"policy": "directed"})
        for _ in range(40):
            env.step(env.explore_action())
            x, y = env.data.qpos[:2]
            steps += 1
            round_steps += bool(abs(x) < 0.12 and abs(y) > 0.34)
    assert round_steps >= 0.03 * steps, (round_steps, steps)


def test_hazard_pits_leave_no_safe_way_through_the_middle():
    """Into the strip's middle, either push lands in a pit; the strip's edge traps on one
    push only; straight across above the pits stays free."""
    env = envs.make("hazard").unwrapped
    for y0, both in ((0.0, True), (0.03, True), (0.09, False)):
        trapped = set()
        for seed in range(12):
            env.reset(seed=seed, options={"goal_state": np.array([0.35, 0.0])})
            env.restore({**env.snapshot(), "qpos": np.array([-0.16, y0]), "qvel": np.zeros(2)}, np.random.default_rng(seed))
            for _ in range(4):
                _, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
            trapped.add((info["gust"], info["trapped"]))
        assert {g for g, _ in trapped} == {1, -1}
        assert all(t for _, t in trapped) if both else trapped == {(1, True), (-1, False)}, (y0, trapped)
    env.reset(seed=0, options={"goal_state": np.array([0.35, 0.0])})
    env.restore({**env.snapshot(), "qpos": np.array([-0.3, 0.4]), "qvel": np.zeros(2)})
    for _ in range(12):
        _, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
        assert not info["trapped"] and not info["pushed"]
    assert env.data.qpos[0] > 0.2


def test_hazard_gamble_crossing_passes_or_is_trapped():
    """hazard_gamble: straight through the strip's middle, some seeds pass untouched (no
    push, reach the far side) and the others are pushed into a pit; every entry is
    reported in info["entered"]. Plain Hazard pushes at every entry."""
    for name, prob in (("hazard_gamble", 0.35), ("hazard", 1.0)):
        env = envs.make(name).unwrapped
        assert env.gust_prob == prob
        results = []
        for seed in range(20):
            env.reset(seed=seed, options={"goal_state": np.array([0.35, 0.0])})
            env.restore({**env.snapshot(), "qpos": np.array([-0.16, 0.0]), "qvel": np.zeros(2)}, np.random.default_rng(seed))
            entered = pushed = 0
            for _ in range(12):
                _, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
                entered += info["entered"]
                pushed += info["pushed"]
            assert entered == 1, (name, seed)
            results.append((pushed, info["trapped"], env.data.qpos[0] > 0.12))
        if prob < 1:
            assert {r for r in results} == {(0, False, True), (1, True, False)}, results
        else:
            assert all(r == (1, True, False) for r in results), results


def test_hazard_gust_prob_is_checked():
    with pytest.raises(ValueError, match=r"gust_prob must lie in \[0, 1\], got 1.5"):
        envs.make("hazard", gust_prob=1.5)
    assert envs.make("hazard", gust_prob=0.25).unwrapped.gust_prob == 0.25


def test_held_policy_changes_action_only_at_decisions():
    """policy_hold=5: the exploration action is constant within each block of 5 env steps
    (aligned with step 0, as the model's frameskip cuts an episode) and changes between
    blocks; 0 is refused."""
    env = envs.make("hazard").unwrapped
    env.reset(seed=3, options={"policy": "directed", "policy_hold": 5})
    acts = []
    for _ in range(20):
        a = env.explore_action().copy()
        acts.append(a)
        env.step(a)
    acts = np.stack(acts)
    for b in range(4):
        assert np.all(acts[5 * b : 5 * b + 5] == acts[5 * b]), acts[5 * b : 5 * b + 5]
    assert len({tuple(acts[5 * b]) for b in range(4)}) > 1
    with pytest.raises(ValueError, match="policy hold must be >= 1"):
        env.reset(seed=0, options={"policy": "directed", "policy_hold": 0})
