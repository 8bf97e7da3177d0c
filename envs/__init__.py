"""Gymnasium MuJoCo goal-image tasks for worldjepa.

Every task returns observations ``{"pixels": uint8 (H, W, 3), "proprio": float32 (P,)}``,
puts ``goal_pixels`` and ``goal_state`` in the ``info`` of ``reset()``, reports
``info["is_success"]`` from its own threshold and offers exact ``get_state()`` /
``set_state()``. This package depends on numpy, mujoco and gymnasium only (never torch).

Tasks are registered under the ``worldjepa`` namespace::

    import gymnasium as gym
    import envs  # registers worldjepa/Reach-v0, worldjepa/TwoRoom-v0, worldjepa/Push-v0
    env = gym.make("worldjepa/Reach-v0", image_size=64)
"""

import os
import sys

# MuJoCo picks its OpenGL backend when it is first imported. Without a display, the
# default (GLFW) cannot open a context, so we pick headless EGL unless the user chose.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
    # Mesa's software rasteriser (llvmpipe) splits each frame over threads; for our small
    # images the hand-off costs more than it saves (measured: 1.6 -> 0.9 ms per TwoRoom
    # step), and collection runs one env per core anyway. Ignored by GPU drivers.
    os.environ.setdefault("LP_NUM_THREADS", "0")

from gymnasium.envs.registration import register  # noqa: E402

from envs.registry import TASKS, make, task_names  # noqa: E402

for _name, _task in TASKS.items():
    register(id=_task.env_id, entry_point=_task.entry_point, max_episode_steps=_task.max_episode_steps)

__all__ = ["TASKS", "make", "task_names"]
