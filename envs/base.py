"""Shared base for the goal-image MuJoCo tasks.

A task subclasses :class:`GoalImageEnv` and fills in a few small methods, in the spirit
of Gymnasium's ``MujocoEnv``:

* ``reset_model()`` sets the start state, using only ``self.np_random``;
* ``sample_goal()`` returns the task's goal vector (``goal_state``);
* ``goal_qpos(goal_state)`` gives a qpos that shows the goal, for the goal image;
* ``achieved(…)`` returns the task's goal vector measured in the current state;
* ``goal_distance(achieved, goal)`` and ``success_threshold`` define success;
* ``_proprio()`` returns the proprioceptive vector.

The base class handles rendering, action checking, action repeat, the goal image,
and the flat state used by ``get_state`` / ``set_state``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

ASSETS = os.path.join(os.path.dirname(__file__), "assets")

# The integration state holds everything mj_step reads (time, qpos, qvel, act,
# warm-start accelerations, ctrl, ...), so restoring it reproduces a trajectory bit-for-bit.
_SIM_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


def run_exploration(env, steps: int) -> dict[str, np.ndarray]:
    """Roll the exploration policy chosen at reset for up to ``steps`` steps (stops if the
    env terminates) and return the episode as arrays: frames (L+1, H, W, 3), actions (L, A),
    proprio (L+1, P), states (L+1, S), success (L+1,), distance (L+1,), goal_pixels, goal_state.

    Running a whole episode in one call lets a vector env's worker process do it with one
    round trip, instead of one per step (measured 2x faster collection with 2 workers).
    """
    rec = EpisodeRecord(env._last_obs, env._last_info)
    for _ in range(steps):
        action = env.explore_action()
        obs, _, terminated, _, info = env.step(action)
        rec.add(action, obs, info)
        if terminated:
            break
    return rec.arrays(env)


class EpisodeRecord:
    """An episode as it happens, for the dataset: the first observation and info, then
    each step's action, observation and info (``add``); ``arrays(env)`` gives the arrays
    of an episode file (frames, actions, proprio, states, success, distance, goal_pixels,
    goal_state), with their dtypes."""

    def __init__(self, obs: dict, info: dict) -> None:
        self.frames, self.proprio, self.states = [obs["pixels"]], [obs["proprio"]], [info["state"]]
        self.success, self.distance, self.actions = [info["is_success"]], [info["distance"]], []

    def add(self, action, obs: dict, info: dict) -> None:
        self.actions.append(action)
        self.frames.append(obs["pixels"])
        self.proprio.append(obs["proprio"])
        self.states.append(info["state"])
        self.success.append(info["is_success"])
        self.distance.append(info["distance"])

    def arrays(self, env) -> dict[str, np.ndarray]:
        return {
            "frames": np.stack(self.frames),
            "actions": np.stack(self.actions).astype(np.float32),
            "proprio": np.stack(self.proprio).astype(np.float32),
            "states": np.stack(self.states).astype(np.float64),
            "success": np.array(self.success, dtype=bool),
            "distance": np.array(self.distance, dtype=np.float32),
            "goal_pixels": env.goal_pixels.copy(),
            "goal_state": np.asarray(env.goal_state, dtype=np.float64).copy(),
        }


class GoalImageEnv(gym.Env):
    """A goal-conditioned MuJoCo task observed through pixels and proprioception.

    Args:
        xml_file: MJCF file name inside ``envs/assets`` (or an absolute path).
        frame_skip: physics steps per control step (fixed per task: it sets the speed scale).
        image_size: side of the square observation images, in pixels (> 0).
        action_repeat: how many times each action is applied (control steps per env step).
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns the observation image).
        camera: name of the camera used for observations and goals.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    success_threshold: float = 0.05
    exploration_policies: tuple[str, ...] = ("random",)

    def __init__(
        self,
        xml_file: str,
        frame_skip: int,
        image_size: int = 64,
        action_repeat: int = 1,
        render_mode: str | None = None,
        camera: str = "top",
    ) -> None:
        if not isinstance(image_size, (int, np.integer)) or image_size <= 0:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if not isinstance(action_repeat, (int, np.integer)) or action_repeat <= 0:
            raise ValueError(f"action_repeat must be a positive integer, got {action_repeat!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        path = xml_file if os.path.isabs(xml_file) else os.path.join(ASSETS, xml_file)
        if not os.path.exists(path):
            raise FileNotFoundError(f"MJCF file not found: {path}")
        self.model = mujoco.MjModel.from_xml_path(path)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = int(frame_skip)
        self.image_size = int(image_size)
        self.action_repeat = int(action_repeat)
        self.render_mode = render_mode
        self.camera = camera
        self._renderer: mujoco.Renderer | None = None
        self._sim_state_size = mujoco.mj_stateSize(self.model, _SIM_STATE)
        self.metadata = dict(self.metadata, render_fps=max(1, round(1.0 / self.control_dt)))

        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.model.nu,), dtype=np.float32)
        proprio_dim = self._proprio().shape[0]
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(self.image_size, self.image_size, 3), dtype=np.uint8),
                "proprio": spaces.Box(-np.inf, np.inf, shape=(proprio_dim,), dtype=np.float32),
            }
        )
        self.goal_state = np.zeros(self.goal_dim, dtype=np.float64)
        self.goal_pixels = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        self._policy = None
        self._next_action = np.zeros(self.action_space.shape, dtype=np.float32)

    # ----- task hooks (overridden by each task) -------------------------------------
    goal_dim: int = 2

    def reset_model(self) -> None:
        """Set the start state in ``self.data`` (qpos/qvel), using ``self.np_random`` only."""
        raise NotImplementedError

    def sample_goal(self) -> np.ndarray:
        """Return a goal vector of length ``goal_dim`` for the current start state."""
        raise NotImplementedError

    def goal_qpos(self, goal_state: np.ndarray) -> np.ndarray:
        """Return a full qpos that shows ``goal_state`` (used to render the goal image)."""
        raise NotImplementedError

    def achieved(self) -> np.ndarray:
        """Return the goal vector measured in the current simulator state."""
        raise NotImplementedError

    def goal_distance(self, achieved: np.ndarray, goal: np.ndarray) -> float:
        """Distance between two goal vectors; success is ``distance <= success_threshold``."""
        return float(np.linalg.norm(achieved - goal))

    def is_success(self, achieved: np.ndarray, goal: np.ndarray) -> bool:
        """The task's own success criterion (default: distance within ``success_threshold``)."""
        return bool(self.goal_distance(achieved, goal) <= self.success_threshold)

    def _proprio(self) -> np.ndarray:
        """Proprioceptive vector (what the robot knows about itself), float32."""
        raise NotImplementedError

    def make_policy(self, name: str, rng: np.random.Generator):
        """Build an exploration policy by name (see ``exploration_policies``)."""
        from envs.policies import RandomPolicy

        if name == "random":
            return RandomPolicy(self, rng)
        raise ValueError(f"unknown exploration policy {name!r} for {type(self).__name__}; expected one of {self.exploration_policies}")

    # ----- gymnasium API -----------------------------------------------------------
    @property
    def control_dt(self) -> float:
        """Simulated seconds per env step."""
        return float(self.model.opt.timestep) * self.frame_skip * self.action_repeat

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        mujoco.mj_resetData(self.model, self.data)
        self.reset_model()
        mujoco.mj_forward(self.model, self.data)
        if options.get("goal_state") is not None:
            goal = np.asarray(options["goal_state"], dtype=np.float64)
            if goal.shape != (self.goal_dim,):
                raise ValueError(f"options['goal_state'] must have shape ({self.goal_dim},), got {goal.shape}")
        else:
            goal = self.sample_goal()
        self._set_goal(goal)
        policy = options.get("policy")
        # The exploration policy draws from its own generator, seeded from np_random, so
        # that choosing a policy does not change the start state or the goal.
        self._policy = None
        if policy is not None:
            self._policy = self.make_policy(policy, np.random.default_rng(self.np_random.integers(2**63)))
            hold = int(options.get("policy_hold", 1))
            if hold != 1:
                from envs.policies import HeldPolicy

                self._policy = HeldPolicy(self._policy, hold)
        self._last_obs, self._last_info = self._get_obs(), self._info(with_goal=True)
        return self._last_obs, self._last_info

    def step(self, action):
        self._advance(self._check_action(action))
        obs = self._get_obs()
        info = self._info()
        self._last_obs, self._last_info = obs, info
        reward = -info["distance"]
        return obs, reward, False, False, info

    def _advance(self, action: np.ndarray) -> None:
        """Apply a checked action and simulate one env step (tasks with extra dynamics override it)."""
        self.data.ctrl[:] = action
        for _ in range(self.action_repeat):
            mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)

    def render(self):
        if self.render_mode == "rgb_array":
            return self._render()
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ----- state -------------------------------------------------------------------
    @property
    def state_dim(self) -> int:
        return self._sim_state_size + self.goal_dim

    def get_state(self) -> np.ndarray:
        """Full state as a flat float64 array: MuJoCo's integration state, then the goal."""
        sim = np.empty(self._sim_state_size, dtype=np.float64)
        mujoco.mj_getState(self.model, self.data, sim, _SIM_STATE)
        return np.concatenate([sim, self.goal_state])

    def state_qpos(self, states: np.ndarray) -> np.ndarray:
        """qpos part of flat states (..., state_dim) -> (..., nq); MuJoCo puts time first, then qpos."""
        return np.asarray(states)[..., 1 : 1 + self.model.nq]

    def task_state(self, states: np.ndarray) -> dict[str, np.ndarray]:
        """Named low-dimensional task quantities of flat states (..., state_dim), for probes
        and evaluation (e.g. {"fingertip": (..., 2)}). Default: the whole qpos."""
        return {"qpos": self.state_qpos(states)}

    def set_state(self, state) -> None:
        """Restore a state returned by :meth:`get_state` (the goal image is re-rendered)."""
        state = np.asarray(state, dtype=np.float64)
        if state.ndim != 1 or state.shape[0] != self.state_dim:
            raise ValueError(f"set_state expects a flat array of length {self.state_dim} for {type(self).__name__}, got shape {state.shape}")
        if not np.all(np.isfinite(state)):
            raise ValueError("set_state got a state with NaN or Inf values")
        mujoco.mj_setState(self.model, self.data, state[: self._sim_state_size], _SIM_STATE)
        mujoco.mj_forward(self.model, self.data)
        goal = state[self._sim_state_size :]
        if not np.array_equal(goal, self.goal_state):
            self._set_goal(goal)

    # ----- exploration ---------------------------------------------------------------
    def explore_action(self) -> np.ndarray:
        """Next action of the exploration policy chosen with ``reset(options={"policy": name})``."""
        if self._policy is None:
            raise RuntimeError("no exploration policy: call reset(options={'policy': name}) first")
        return self._next_action

    def explore_rollout(self, steps: int) -> dict[str, np.ndarray]:
        """Run the exploration policy from the current state; see :func:`run_exploration`."""
        return run_exploration(self, steps)

    # ----- helpers -------------------------------------------------------------------
    def _check_action(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains NaN or Inf: {action}")
        if np.any(np.abs(action) > 1.0 + 1e-6):
            raise ValueError(f"action out of bounds [-1, 1]: {action}")
        return np.clip(action, -1.0, 1.0)

    def _set_goal(self, goal: np.ndarray) -> None:
        """Store the goal and render its image by posing the model, then restoring it."""
        self.goal_state = np.array(goal, dtype=np.float64)
        saved = np.empty(self._sim_state_size, dtype=np.float64)
        mujoco.mj_getState(self.model, self.data, saved, _SIM_STATE)
        self.data.qpos[:] = self.goal_qpos(self.goal_state)
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self.goal_pixels = self._render().copy()
        mujoco.mj_setState(self.model, self.data, saved, _SIM_STATE)
        mujoco.mj_forward(self.model, self.data)

    def _render(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def _get_obs(self) -> dict[str, np.ndarray]:
        return {"pixels": self._render().copy(), "proprio": self._proprio().astype(np.float32)}

    def _info(self, with_goal: bool = False) -> dict[str, Any]:
        achieved = self.achieved()
        info = {
            "is_success": self.is_success(achieved, self.goal_state),
            "distance": self.goal_distance(achieved, self.goal_state),
            "state": self.get_state(),
        }
        if self._policy is not None:
            # the policy's next action travels with the step's result, so a vector env
            # needs one round trip per step rather than two
            self._next_action = np.asarray(self._policy(), dtype=np.float32)
            info["explore_action"] = self._next_action
        if with_goal:
            info["goal_state"] = self.goal_state.copy()
            info["goal_pixels"] = self.goal_pixels.copy()
        return info
