"""Exploration policies for data collection.

A policy is built by a task (``env.make_policy(name, rng)``) and called with no argument
to get the next action in [-1, 1]. Directed policies read the simulator state: they are
privileged scripts for covering the task space with data, never used for planning.
Each draws only from the generator it is given.
"""

from __future__ import annotations

import numpy as np

from envs.tasks import wrap_angle


class HeldPolicy:
    """Wraps a policy so that its action changes only every ``hold`` steps (the first call
    is a decision): the action is held in between, as a world model with frameskip
    ``hold`` and a planner over held actions see it.

    The inner policy is still called at every step (its waypoints, rests and counters run
    in env steps), but only its action at a decision step is used. Without the hold, a
    reactive policy's actions *inside* one model step answer what happened in that step:
    on Hazard the agent steered back at once after a gust, so the model step's action
    vector told which way the gust had pushed, and a world model learned that from the
    actions instead of from its latent variable (where a planner, which commits to the
    whole step in advance, cannot supply it).
    """

    def __init__(self, inner, hold: int) -> None:
        if int(hold) < 1:
            raise ValueError(f"policy hold must be >= 1 env step, got {hold}")
        self.inner, self.hold = inner, int(hold)
        self._count, self._action = 0, None

    def __call__(self) -> np.ndarray:
        a = self.inner()
        if self._count % self.hold == 0:
            self._action = a
        self._count += 1
        return self._action


class RandomPolicy:
    """Uniform random actions, held for a random 1-4 steps (so motion is not pure jitter)."""

    def __init__(self, env, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self._action = np.zeros(env.action_space.shape, dtype=np.float32)
        self._left = 0

    def __call__(self) -> np.ndarray:
        if self._left <= 0:
            self._action = self.rng.uniform(-1.0, 1.0, size=self._action.shape).astype(np.float32)
            self._left = int(self.rng.integers(1, 5))
        self._left -= 1
        return self._action


class Dwell:
    """Rests at a reached waypoint for a while: zero actions, or tiny ones.

    Without it the data never show an agent standing still away from its start (the
    directed policies leave every waypoint at once), and a world model learned from them
    predicts a resting agent drifting off, which is wrong exactly where plans end: at the
    goal. ``prob``: share of waypoints rested at; ``steps``: range of the rest's length.
    """

    def __init__(self, rng: np.random.Generator, shape: tuple, prob: float = 0.35, steps: tuple[int, int] = (3, 16)) -> None:
        self.rng, self.shape, self.prob, self.steps = rng, shape, prob, steps
        self.left = 0

    def maybe_start(self) -> np.ndarray | None:
        """Called when a waypoint is reached: start a rest with probability ``prob``;
        returns its first action, or None when not resting."""
        if self.rng.random() < self.prob:
            self.left = int(self.rng.integers(*self.steps))
        return self()

    def __call__(self) -> np.ndarray | None:
        """The next action of a rest in progress, or None when not resting."""
        if self.left <= 0:
            return None
        self.left -= 1
        if self.rng.random() < 0.5:
            return np.zeros(self.shape, dtype=np.float32)
        return np.clip(self.rng.normal(0.0, 0.1, size=self.shape), -1.0, 1.0).astype(np.float32)


def _towards(delta: np.ndarray, step: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Action that covers ``delta`` at ``step`` units per full action, plus Gaussian noise."""
    action = delta / step + noise * rng.standard_normal(delta.shape)
    return np.clip(action, -1.0, 1.0).astype(np.float32)


class ReachDirectedPolicy:
    """Moves the arm towards random target poses with noise; a new target when reached or after 25 steps."""

    def __init__(self, env, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self._target = None
        self._age = 0

    def __call__(self) -> np.ndarray:
        q = self.env.data.qpos[:2]
        if self._target is None or self._age >= 25 or np.max(np.abs(wrap_angle(self._target - q))) < 0.1:
            lim = self.env.elbow_limit
            self._target = np.array([self.rng.uniform(-np.pi, np.pi), self.rng.uniform(-lim, lim)])
            self._age = 0
        self._age += 1
        delta = wrap_angle(self._target - q)
        delta[1] = self._target[1] - q[1]  # the elbow is limited: go the direct way
        return _towards(delta, step=0.3, noise=0.3, rng=self.rng)


class TwoRoomDirectedPolicy:
    """Visits random waypoints in both rooms, going through the door when the waypoint is across.

    About half of the waypoints lie in the other room, so most episodes cross the door.
    Some waypoints are headed for straight, through a wall (the middle one, or an outer
    one): a world model learns that walls stop the agent only from data where they do,
    and the door route alone never shows it. At a third of the reached waypoints the agent
    rests a while (``Dwell``).
    """

    route_steps = 40  # steps allowed per waypoint of a door route before picking another
    bump_prob = 0.3  # share of waypoints driven at in a straight line, walls or not
    bump_steps = 20  # steps spent pushing at such a waypoint before picking another

    def __init__(self, env, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self._route: list[np.ndarray] = []
        self._age = 0
        self._limit = self.route_steps
        self._dwell = Dwell(rng, env.action_space.shape)

    def _plan_route(self) -> None:
        pos = self.env.data.qpos[:2]
        side = 1.0 if self.rng.random() < 0.5 else -1.0
        goal = np.array([side * self.rng.uniform(*self.env.room_x), self.rng.uniform(-self.env.room_y, self.env.room_y)])
        self._age, self._limit = 0, self.route_steps
        if self.rng.random() < self.bump_prob:  # straight at it; half of these aim beyond an outer wall
            if self.rng.random() < 0.5:
                goal = goal * np.array([1.4, 1.3])
            self._route, self._limit = [goal], self.bump_steps
            return
        route = []
        if np.sign(goal[0]) != np.sign(pos[0]):
            y = self.rng.uniform(-0.03, 0.03)
            route += [np.array([np.sign(pos[0]) * 0.12, y]), np.array([-np.sign(pos[0]) * 0.12, y])]
        self._route = route + [goal]

    def __call__(self) -> np.ndarray:
        pos = self.env.data.qpos[:2]
        if not self._route or self._age > self._limit:
            self._plan_route()
        rest = self._dwell()
        if rest is not None:
            return rest
        if np.linalg.norm(self._route[0] - pos) < 0.04:
            self._route.pop(0)
            self._age = 0
            if not self._route:
                self._plan_route()
                rest = self._dwell.maybe_start()
                if rest is not None:
                    return rest
        self._age += 1
        return _towards(self._route[0] - pos, step=0.05, noise=0.3, rng=self.rng)


class PushDirectedPolicy:
    """Goes behind the block along a random direction, then pushes through it.

    Each push picks a direction and a contact offset (so the block both slides and turns),
    moves the pusher to a point behind the block, then drives through it for a few steps.
    """

    def __init__(self, env, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self._phase = "approach"
        self._age = 0
        self._new_push()

    def _new_push(self) -> None:
        # push towards a random point of the region where goals lie, so the block stays
        # on the table's middle instead of ending up against a wall
        r = self.env.block_range
        target = self.rng.uniform(-r, r, size=2)
        delta = target - self.env.data.qpos[:2]
        theta = np.arctan2(delta[1], delta[0]) + self.rng.normal(0.0, 0.5)
        self._dir = np.array([np.cos(theta), np.sin(theta)])
        self._offset = self.rng.uniform(-0.06, 0.06)  # lateral offset of the contact point
        self._push_steps = int(self.rng.integers(2, 6))
        self._phase, self._age = "approach", 0

    def __call__(self) -> np.ndarray:
        pusher = self.env.data.qpos[3:5]
        block = self.env.data.qpos[:2]
        normal = np.array([-self._dir[1], self._dir[0]])
        self._age += 1
        if self._phase == "approach":
            target = block - 0.16 * self._dir + self._offset * normal
            if np.linalg.norm(target - pusher) < 0.03:
                self._phase, self._age = "push", 0
            elif self._age > 30:
                self._new_push()
            return _towards(target - pusher, step=0.05, noise=0.3, rng=self.rng)
        if self._age > self._push_steps:
            self._new_push()
        return _towards(self._dir * 0.05, step=0.05, noise=0.2, rng=self.rng)


class HazardDirectedPolicy:
    """Drives to waypoints: 45 % of them across the hall through the gust strip, so the
    data show both of its outcomes (and the pits); 35 % in the corridors above and below
    the pits (the long safe routes, which straight lines to random points seldom follow);
    the rest random points. At a third of the reached targets the agent rests a while
    (``Dwell``)."""

    def __init__(self, env, rng: np.random.Generator) -> None:
        self.env, self.rng = env, rng
        self._target: np.ndarray | None = None
        self._age = 0
        self._dwell = Dwell(rng, env.action_space.shape)
        self._pending: list[np.ndarray] = []

    def _new_target(self) -> None:
        pos = self.env.data.qpos[:2]
        self._age = 0
        if self._pending:
            self._target = self._pending.pop(0)
            return
        u = self.rng.random()
        if u < 0.45:  # across, on a line through the strip
            self._target = np.array([-np.sign(pos[0] or 1.0) * self.rng.uniform(0.2, 0.42), self.rng.uniform(-0.08, 0.08)])
        elif u < 0.8:  # round: up or down on this side, then along the corridor above or below the pits
            side, y = np.sign(pos[0] or 1.0), self.rng.choice([-1.0, 1.0]) * self.rng.uniform(0.37, 0.45)
            self._target = np.array([side * self.rng.uniform(0.18, 0.3), y])
            self._pending = [np.array([-side * self.rng.uniform(0.05, 0.3), y])]
        else:
            self._target = self.rng.uniform(-0.45, 0.45, size=2)

    def __call__(self) -> np.ndarray:
        pos = self.env.data.qpos[:2]
        rest = self._dwell()
        if rest is not None:
            return rest
        reached = self._target is not None and np.linalg.norm(self._target - pos) < 0.04
        if self._target is None or self._age > 30 or reached:
            self._new_target()
            rest = self._dwell.maybe_start() if reached else None
            if rest is not None:
                return rest
        self._age += 1
        a = 8.0 * (self._target - pos) + self.rng.normal(0, 0.3, size=2)
        return np.clip(a, -1.0, 1.0)
