"""The three goal-image tasks: Reach, TwoRoom and Push.

Each is a small class on :class:`envs.base.GoalImageEnv`. Distances are in metres
(radians for joint angles, converted through forward kinematics where it matters).
"""

from __future__ import annotations

import mujoco
import numpy as np

from envs.base import GoalImageEnv


def wrap_angle(a):
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


class ReachEnv(GoalImageEnv):
    """Planar two-link arm; the goal is an arm pose shown in a goal image.

    goal_state: the two joint angles (shoulder, elbow) of the goal pose.
    Success: the fingertip is within ``success_threshold`` metres of the goal pose's fingertip.
    proprio: (cos q1, sin q1, cos q2, sin q2, dq1, dq2).
    """

    goal_dim = 2
    success_threshold = 0.025
    link_lengths = (0.1, 0.11)
    elbow_limit = 2.4  # sample inside the joint range (2.6) so poses are reachable
    exploration_policies = ("random", "directed")

    def __init__(self, image_size: int = 64, action_repeat: int = 1, render_mode: str | None = None) -> None:
        super().__init__("reach.xml", frame_skip=10, image_size=image_size, action_repeat=action_repeat, render_mode=render_mode)

    def _random_pose(self) -> np.ndarray:
        return np.array([self.np_random.uniform(-np.pi, np.pi), self.np_random.uniform(-self.elbow_limit, self.elbow_limit)])

    def reset_model(self) -> None:
        self.data.qpos[:] = self._random_pose()
        self.data.qvel[:] = 0.0

    def sample_goal(self) -> np.ndarray:
        return self._random_pose()

    def goal_qpos(self, goal_state: np.ndarray) -> np.ndarray:
        return np.array(goal_state, dtype=np.float64)

    def achieved(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    def fingertip(self, q: np.ndarray) -> np.ndarray:
        """Fingertip (x, y) of joint angles q (..., 2) by forward kinematics."""
        q = np.asarray(q, dtype=np.float64)
        l1, l2 = self.link_lengths
        a1, a12 = q[..., 0], q[..., 0] + q[..., 1]
        return np.stack([l1 * np.cos(a1) + l2 * np.cos(a12), l1 * np.sin(a1) + l2 * np.sin(a12)], axis=-1)

    def goal_distance(self, achieved: np.ndarray, goal: np.ndarray) -> float:
        return float(np.linalg.norm(self.fingertip(achieved) - self.fingertip(goal)))

    def task_state(self, states: np.ndarray) -> dict[str, np.ndarray]:
        q = self.state_qpos(states)
        return {"fingertip": self.fingertip(q), "joints": np.concatenate([np.cos(q), np.sin(q)], axis=-1)}

    def _proprio(self) -> np.ndarray:
        q, dq = self.data.qpos[:2], self.data.qvel[:2]
        return np.array([np.cos(q[0]), np.sin(q[0]), np.cos(q[1]), np.sin(q[1]), dq[0], dq[1]], dtype=np.float32)

    def make_policy(self, name: str, rng: np.random.Generator):
        from envs.policies import ReachDirectedPolicy

        if name == "directed":
            return ReachDirectedPolicy(self, rng)
        return super().make_policy(name, rng)


class PointMassEnv(GoalImageEnv):
    """Shared parts of the point-mass tasks: the goal and the achieved state are the agent's
    (x, y); proprio is (x, y, vx, vy)."""

    def goal_qpos(self, goal_state: np.ndarray) -> np.ndarray:
        return np.array(goal_state, dtype=np.float64)

    def achieved(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    def task_state(self, states: np.ndarray) -> dict[str, np.ndarray]:
        return {"agent": self.state_qpos(states)[..., :2]}

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2]]).astype(np.float32)


class TwoRoomEnv(PointMassEnv):
    """A point mass in two rooms joined by a door in the middle wall (x = 0, |y| < 0.08).

    Start and goal lie in different rooms, so every episode needs a path through the door.
    goal_state: the goal (x, y). Success: within ``success_threshold`` metres of it.
    proprio: (x, y, vx, vy).
    """

    goal_dim = 2
    success_threshold = 0.05
    door_half_width = 0.08
    room_x = (0.08, 0.44)  # |x| range of a room's free interior (the agent's centre)
    room_y = 0.44  # |y| bound of the free interior
    exploration_policies = ("random", "directed")

    def __init__(self, image_size: int = 64, action_repeat: int = 1, render_mode: str | None = None) -> None:
        super().__init__("tworoom.xml", frame_skip=10, image_size=image_size, action_repeat=action_repeat, render_mode=render_mode)

    def _point_in_room(self, side: float) -> np.ndarray:
        x = side * self.np_random.uniform(*self.room_x)
        y = self.np_random.uniform(-self.room_y, self.room_y)
        return np.array([x, y])

    def reset_model(self) -> None:
        side = 1.0 if self.np_random.random() < 0.5 else -1.0
        self.data.qpos[:] = self._point_in_room(side)
        self.data.qvel[:] = 0.0

    def sample_goal(self) -> np.ndarray:
        # the goal always lies in the other room than the start
        side = -1.0 if self.data.qpos[0] > 0 else 1.0
        return self._point_in_room(side)

    def make_policy(self, name: str, rng: np.random.Generator):
        from envs.policies import TwoRoomDirectedPolicy

        if name == "directed":
            return TwoRoomDirectedPolicy(self, rng)
        return super().make_policy(name, rng)


class PushEnv(GoalImageEnv):
    """A round pusher and a T-shaped block on a walled table; the goal is the block's pose.

    goal_state: (block x, block y, block yaw, pusher x, pusher y). The goal image shows the
    block at its goal pose and the pusher at a rest position beside it; success looks at the
    block only: position error <= ``success_threshold`` metres and yaw error <= ``yaw_threshold``.
    proprio: (pusher x, pusher y, pusher vx, pusher vy).
    qpos layout: (block x, block y, block yaw, pusher x, pusher y).
    """

    goal_dim = 5
    success_threshold = 0.03
    yaw_threshold = 0.3
    block_range = 0.12  # start and goal block centres lie in [-0.12, 0.12]^2
    pusher_range = 0.28
    exploration_policies = ("random", "directed")

    def __init__(self, image_size: int = 64, action_repeat: int = 1, render_mode: str | None = None) -> None:
        super().__init__("push.xml", frame_skip=20, image_size=image_size, action_repeat=action_repeat, render_mode=render_mode)

    def _free_pusher_xy(self, block_pose: np.ndarray) -> np.ndarray:
        """A pusher position on the table, clear of the block (rejection sampling)."""
        for _ in range(100):
            xy = self.np_random.uniform(-self.pusher_range, self.pusher_range, size=2)
            if np.linalg.norm(xy - block_pose[:2]) > 0.16:
                return xy
        raise RuntimeError("could not place the pusher clear of the block")

    def reset_model(self) -> None:
        block = np.array([*self.np_random.uniform(-self.block_range, self.block_range, size=2), self.np_random.uniform(-np.pi, np.pi)])
        self.data.qpos[:3] = block
        self.data.qpos[3:5] = self._free_pusher_xy(block)
        self.data.qvel[:] = 0.0

    def sample_goal(self) -> np.ndarray:
        start = self.data.qpos[:3]
        # a reachable goal: a moderate translation and rotation of the start pose
        shift = self.np_random.uniform(0.05, 0.15) * np.array([np.cos(th := self.np_random.uniform(-np.pi, np.pi)), np.sin(th)])
        xy = np.clip(start[:2] + shift, -self.block_range, self.block_range)
        yaw = wrap_angle(start[2] + self.np_random.uniform(-0.8, 0.8))
        block = np.array([xy[0], xy[1], yaw])
        return np.concatenate([block, self._free_pusher_xy(block)])

    def goal_qpos(self, goal_state: np.ndarray) -> np.ndarray:
        return np.array(goal_state, dtype=np.float64)

    def achieved(self) -> np.ndarray:
        return self.data.qpos[:5].copy()

    def goal_distance(self, achieved: np.ndarray, goal: np.ndarray) -> float:
        # block position error plus yaw error weighted by the block's size (0.07 m per rad)
        return float(np.linalg.norm(achieved[:2] - goal[:2]) + 0.07 * abs(wrap_angle(achieved[2] - goal[2])))

    def is_success(self, achieved: np.ndarray, goal: np.ndarray) -> bool:
        pos_err = np.linalg.norm(achieved[:2] - goal[:2])
        yaw_err = abs(wrap_angle(achieved[2] - goal[2]))
        return bool(pos_err <= self.success_threshold and yaw_err <= self.yaw_threshold)

    def task_state(self, states: np.ndarray) -> dict[str, np.ndarray]:
        q = self.state_qpos(states)
        yaw = q[..., 2:3]
        return {"block": q[..., :2], "block_yaw": np.concatenate([np.cos(yaw), np.sin(yaw)], axis=-1), "pusher": q[..., 3:5]}

    def block_pose(self) -> np.ndarray:
        return self.data.qpos[:3].copy()

    def _proprio(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[3:5], self.data.qvel[3:5]]).astype(np.float32)

    def make_policy(self, name: str, rng: np.random.Generator):
        from envs.policies import PushDirectedPolicy

        if name == "directed":
            return PushDirectedPolicy(self, rng)
        return super().make_policy(name, rng)


class HazardEnv(PointMassEnv):
    """A stochastic task: a point mass crosses a hall past a gust strip and two pits.

    Entering the gust strip (|x| < 0.1, |y| < 0.12) knocks the agent ``gust_push`` metres
    up or down, each with probability 1/2: the future has two modes. Ending up in a pit
    (|x| < 0.12, 0.12 < |y| < 0.32, right above and below the strip) traps the agent for
    the rest of the episode; a push from the strip's middle (|y| < 0.06) lands in a pit
    either way, one from its edges half the time. Start and goal lie on opposite sides; the
    straight route crosses the strip (short, risky), the routes above or below the pits
    (|y| > 0.32, corridors 18 cm wide up to the walls) are longer and safe. There is no
    short safe way: until 2026-11-24 the pits began at |y| = 0.2, and the 8 cm gap between
    them and the strip was a short safe route that only a model precise to a centimetre
    could use, so the task measured that precision instead of the choice between risk and
    a detour (docs/BENCHMARKS.md section 5).

    ``gust_prob`` is the chance that the gust fires when the agent enters the strip
    (default 1: every entry is pushed). Below 1 the crossing is a gamble: it passes
    untouched with probability 1 - ``gust_prob`` and lands in a pit otherwise
    (``HazardGambleEnv``, the task ``hazard_gamble``, uses 0.35).

    ``info["gust"]`` is the last push (+1 up, -1 down, 0 none yet this episode),
    ``info["pushed"]`` whether one happened during this step, ``info["entered"]`` whether
    the agent entered the strip during this step (pushed or not), and
    ``info["trapped"]`` whether a pit holds the agent: for tests and metrics only; the
    planner never sees them. proprio: (x, y, vx, vy). Success: within 0.05 m of the goal.
    """

    success_threshold = 0.05
    gust_half = (0.1, 0.12)
    pit_x, pit_y = 0.12, (0.12, 0.32)
    gust_push = 0.18
    gust_prob = 1.0
    exploration_policies = ("random", "directed")

    def __init__(self, image_size: int = 64, action_repeat: int = 1, render_mode: str | None = None, gust_prob: float | None = None) -> None:
        super().__init__("hazard.xml", frame_skip=10, image_size=image_size, action_repeat=action_repeat, render_mode=render_mode)
        if gust_prob is not None:
            if not 0.0 <= float(gust_prob) <= 1.0:
                raise ValueError(f"gust_prob must lie in [0, 1], got {gust_prob}")
            self.gust_prob = float(gust_prob)
        self._gust, self._in_gust, self._trapped_at = 0, False, None
        self._pushed = self._entered = False

    def _side_point(self, side: float) -> np.ndarray:
        return np.array([side * self.np_random.uniform(0.28, 0.42), self.np_random.uniform(-0.1, 0.1)])

    def reset_model(self) -> None:
        self._gust, self._in_gust, self._trapped_at = 0, False, None
        self._pushed = self._entered = False
        self.data.qpos[:] = self._side_point(-1.0 if self.np_random.random() < 0.5 else 1.0)
        self.data.qvel[:] = 0.0

    def sample_goal(self) -> np.ndarray:
        return self._side_point(-np.sign(self.data.qpos[0]))

    def in_gust(self, xy: np.ndarray) -> bool:
        return bool(abs(xy[0]) < self.gust_half[0] and abs(xy[1]) < self.gust_half[1])

    @classmethod
    def in_pit(cls, xy: np.ndarray) -> np.ndarray:
        """Whether positions (..., 2) lie inside one of the pits -> bool (...); also for arrays of them."""
        x, y = np.abs(np.asarray(xy)[..., 0]), np.abs(np.asarray(xy)[..., 1])
        return (x < cls.pit_x) & (y > cls.pit_y[0]) & (y < cls.pit_y[1])

    def _advance(self, action: np.ndarray) -> None:
        self._pushed = self._entered = False
        if self._trapped_at is None:
            super()._advance(action)
            inside = self.in_gust(self.data.qpos[:2])
            self._entered = inside and not self._in_gust
            # entering the strip: with probability gust_prob a push up or down, 50/50 (at
            # gust_prob 1 no extra draw, so the task's random stream is as it always was)
            if self._entered and (self.gust_prob >= 1.0 or self.np_random.random() < self.gust_prob):
                self._gust = 1 if self.np_random.random() < 0.5 else -1
                self.data.qpos[1] += self._gust * self.gust_push
                self._pushed = True
            self._in_gust = inside
            if self.in_pit(self.data.qpos[:2]):
                self._trapped_at = self.data.qpos[:2].copy()
        if self._trapped_at is not None:  # a pit holds the agent: it does not move again
            self.data.qpos[:2], self.data.qvel[:] = self._trapped_at, 0.0
        mujoco.mj_forward(self.model, self.data)

    def snapshot(self) -> dict:
        """What decides the rest of an episode: position, velocity, the last gust and whether
        the agent is in the strip or held by a pit (copies; undo with ``restore``)."""
        return {
            "qpos": self.data.qpos.copy(),
            "qvel": self.data.qvel.copy(),
            "gust": self._gust,
            "in_gust": self._in_gust,
            "trapped_at": None if self._trapped_at is None else self._trapped_at.copy(),
        }

    def restore(self, snap: dict, rng: np.random.Generator | None = None) -> None:
        """Go back to a ``snapshot``; ``rng``, if given, draws the gusts from then on."""
        missing = {"qpos", "qvel", "gust", "in_gust", "trapped_at"} - set(snap)
        if missing:
            raise ValueError(f"not a HazardEnv snapshot: missing {sorted(missing)}")
        self.data.qpos[:], self.data.qvel[:] = snap["qpos"], snap["qvel"]
        self._gust, self._in_gust = snap["gust"], snap["in_gust"]
        self._trapped_at = None if snap["trapped_at"] is None else np.array(snap["trapped_at"], dtype=np.float64)
        if rng is not None:
            self.np_random = rng
        mujoco.mj_forward(self.model, self.data)

    def simulate(self, action) -> np.ndarray:
        """One env step of the dynamics, gusts and pits included, without rendering (for
        using the task as its own model); returns the agent's (x, y)."""
        self._advance(self._check_action(action))
        return self.data.qpos[:2].copy()

    def _info(self, with_goal: bool = False) -> dict:
        info = super()._info(with_goal)
        info["gust"] = self._gust
        info["pushed"] = self._pushed  # a gust pushed the agent during this step
        info["entered"] = self._entered  # the agent entered the strip during this step (pushed or not)
        info["trapped"] = self._trapped_at is not None
        return info

    def make_policy(self, name: str, rng: np.random.Generator):
        from envs.policies import HazardDirectedPolicy

        if name == "directed":
            return HazardDirectedPolicy(self, rng)
        return super().make_policy(name, rng)


class HazardGambleEnv(HazardEnv):
    """Hazard where the crossing is a gamble: entering the strip fires the gust at 35 % of
    the entries (``gust_prob``). A crossing from the strip's middle then reaches the far
    side untouched in 65 % of the cases and lands in a pit in the rest, so on the average
    future the short route often scores better than the detour round the pits, while its
    worst case is a pit: the choice where a risk-neutral planner (the mean over futures)
    and a risk-aware one (CVaR) part. With the simulator as the model, 0.5 made the
    risk-neutral planner go round too (it entered the strip in 26 % of the episodes,
    trapped 4 %), and 0.25 let four sampled futures miss the gust often enough that the
    risk-aware one gambled as well (docs/BENCHMARKS.md section 5, twentieth session).
    Layout, pits, goals and policies are those of ``HazardEnv``."""

    gust_prob = 0.35
