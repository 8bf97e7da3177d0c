"""Adapter: any Gymnasium MuJoCo env in the goal-image form of our tasks.

``GoalImageAdapter(gym.make("Reacher-v5").unwrapped)`` observes ``pixels`` (rendered
from the env's ``MjModel``/``MjData`` with our own renderer) and ``proprio`` (qpos and
qvel), takes actions in [-1, 1] (rescaled to the env's bounds) and, at reset, makes a
goal by running ``goal_steps`` random actions from the start state, rendering that
state as the goal image, and restoring the start. Success: the qpos error to the goal
is at most ``success_threshold``. State get/set goes through ``MjData`` directly.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

_SIM_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


class GoalImageAdapter(gym.Env):
    """Wraps an (unwrapped) Gymnasium ``MujocoEnv`` into pixels + proprio + goal image.

    Args:
        env: a Gymnasium MuJoCo env with ``model``, ``data`` and a Box action space.
        image_size: side of the square images, in pixels.
        goal_steps: random actions taken from the start to reach the goal state.
        success_threshold: qpos L2 error under which the goal counts as reached.
        action_repeat: times each action is applied.
        camera: a camera name of the model, ``"top"`` (a free camera looking straight
            down, right for planar envs such as Reacher) or ``"free"`` (MuJoCo's default view).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        env: gym.Env,
        image_size: int = 64,
        goal_steps: int = 20,
        success_threshold: float = 0.05,
        action_repeat: int = 1,
        render_mode: str | None = None,
        camera: str = "top",
    ) -> None:
        if not hasattr(env, "model") or not hasattr(env, "data"):
            raise TypeError(f"GoalImageAdapter needs a MuJoCo env with .model and .data, got {type(env).__name__}")
        if not isinstance(env.action_space, spaces.Box):
            raise TypeError(f"GoalImageAdapter needs a Box action space, got {env.action_space}")
        if image_size <= 0:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        if action_repeat <= 0 or goal_steps < 0:
            raise ValueError(f"action_repeat must be > 0 and goal_steps >= 0, got {action_repeat}, {goal_steps}")
        self.env = env
        self.model, self.data = env.model, env.data
        self.image_size, self.goal_steps, self.action_repeat = int(image_size), int(goal_steps), int(action_repeat)
        self.success_threshold = float(success_threshold)
        self.render_mode = render_mode
        self._low, self._high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, shape=env.action_space.shape, dtype=np.float32)
        nq, nv = self.model.nq, self.model.nv
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, shape=(self.image_size, self.image_size, 3), dtype=np.uint8),
                "proprio": spaces.Box(-np.inf, np.inf, shape=(nq + nv,), dtype=np.float32),
            }
        )
        self._sim_state_size = mujoco.mj_stateSize(self.model, _SIM_STATE)
        self._renderer: mujoco.Renderer | None = None
        self._camera: mujoco.MjvCamera | str = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(self.model, self._camera)
        if camera == "top":
            self._camera.elevation, self._camera.azimuth = -90.0, 90.0
            self._camera.distance = 0.6 * self.model.stat.extent
        elif camera != "free":
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
                raise ValueError(f"unknown camera {camera!r}; expected 'top', 'free' or a camera of the model")
            self._camera = camera
        self.goal_state = np.zeros(nq)
        self.goal_pixels = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        self.goal_dim = nq

    @property
    def state_dim(self) -> int:
        return self._sim_state_size + self.goal_dim

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.env.reset(seed=int(self.np_random.integers(2**31)))
        start = self._sim_state()
        for _ in range(self.goal_steps):
            self._step_inner(self.np_random.uniform(-1.0, 1.0, size=self.action_space.shape))
        self.goal_state = self.data.qpos.copy()
        self.goal_pixels = self._render().copy()
        self._restore(start)
        self._explore = (options or {}).get("policy")
        if self._explore not in (None, "random"):
            raise ValueError(f"unknown exploration policy {self._explore!r} for GoalImageAdapter; expected 'random'")
        if int((options or {}).get("policy_hold", 1)) != 1:
            raise ValueError("GoalImageAdapter's random policy has no policy_hold; use policy_hold=1")
        info = self._info()
        info["goal_state"], info["goal_pixels"] = self.goal_state.copy(), self.goal_pixels.copy()
        self._last_obs, self._last_info = self._get_obs(), info
        return self._last_obs, info

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {action.shape}")
        if not np.all(np.isfinite(action)) or np.any(np.abs(action) > 1.0 + 1e-6):
            raise ValueError(f"action must be finite and inside [-1, 1], got {action}")
        terminated = False
        for _ in range(self.action_repeat):
            terminated = self._step_inner(action) or terminated
        info = self._info()
        self._last_obs, self._last_info = self._get_obs(), info
        return self._last_obs, -info["distance"], terminated, False, info

    def _step_inner(self, action: np.ndarray) -> bool:
        scaled = self._low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self._high - self._low)
        _, _, terminated, _, _ = self.env.step(scaled.astype(self.env.action_space.dtype))
        return bool(terminated)

    def get_state(self) -> np.ndarray:
        """MuJoCo's integration state of the wrapped env, then the goal qpos."""
        return np.concatenate([self._sim_state(), self.goal_state])

    def set_state(self, state) -> None:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_dim,):
            raise ValueError(f"set_state expects a flat array of length {self.state_dim}, got shape {state.shape}")
        self._restore(state[: self._sim_state_size])
        self.goal_state = state[self._sim_state_size :].copy()

    def render(self):
        return self._render() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.env.close()

    def _sim_state(self) -> np.ndarray:
        s = np.empty(self._sim_state_size)
        mujoco.mj_getState(self.model, self.data, s, _SIM_STATE)
        return s

    def _restore(self, sim_state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, sim_state, _SIM_STATE)
        mujoco.mj_forward(self.model, self.data)

    def _render(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
        self._renderer.update_scene(self.data, camera=self._camera)
        return self._renderer.render()

    def _get_obs(self):
        proprio = np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float32)
        return {"pixels": self._render().copy(), "proprio": proprio}

    def _info(self):
        distance = float(np.linalg.norm(self.data.qpos - self.goal_state))
        info = {"is_success": distance <= self.success_threshold, "distance": distance, "state": self.get_state()}
        if getattr(self, "_explore", None) is not None:
            self._next_action = self.np_random.uniform(-1.0, 1.0, size=self.action_space.shape).astype(np.float32)
            info["explore_action"] = self._next_action
        return info

    def explore_rollout(self, steps: int) -> dict[str, np.ndarray]:
        """Run the random exploration policy from the current state (see ``envs.base.run_exploration``)."""
        from envs.base import run_exploration

        return run_exploration(self, steps)

    def explore_action(self) -> np.ndarray:
        """Next uniform random action (the adapter's only exploration policy, ``policy="random"``)."""
        if getattr(self, "_explore", None) is None:
            raise RuntimeError("no exploration policy: call reset(options={'policy': 'random'}) first")
        return self._next_action
