"""Task names, Gymnasium ids and a single ``make`` for our tasks and adapted stock envs."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym


@dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    name: str  # short name used by configs and the CLI (env=reach)
    env_id: str  # Gymnasium id
    entry_point: str  # "module:Class"
    max_episode_steps: int  # TimeLimit for gym.make


TASKS: dict[str, TaskSpec] = {
    "reach": TaskSpec("reach", "worldjepa/Reach-v0", "envs.tasks:ReachEnv", 50),
    "tworoom": TaskSpec("tworoom", "worldjepa/TwoRoom-v0", "envs.tasks:TwoRoomEnv", 100),
    "push": TaskSpec("push", "worldjepa/Push-v0", "envs.tasks:PushEnv", 100),
    "hazard": TaskSpec("hazard", "worldjepa/Hazard-v0", "envs.tasks:HazardEnv", 100),
    "hazard_gamble": TaskSpec("hazard_gamble", "worldjepa/HazardGamble-v0", "envs.tasks:HazardGambleEnv", 100),
}

GYM_PREFIX = "gym:"  # "gym:Reacher-v5" adapts a stock Gymnasium MuJoCo env


def task_names() -> list[str]:
    """Short names of our tasks, plus the form for adapted stock envs."""
    return list(TASKS) + [GYM_PREFIX + "<Gymnasium MuJoCo id>"]


def make(name: str, max_episode_steps: int | None = None, **kwargs) -> gym.Env:
    """Make a task by short name (``reach``), Gymnasium id (``worldjepa/Reach-v0``) or ``gym:<id>``.

    Args:
        name: the task.
        max_episode_steps: TimeLimit; None keeps the task's default.
        **kwargs: passed to the task's constructor (``image_size``, ``action_repeat``, ...).

    Raises:
        ValueError: the name is not a known task.
    """
    if name.startswith(GYM_PREFIX):
        from envs.adapter import GoalImageAdapter

        env = GoalImageAdapter(gym.make(name[len(GYM_PREFIX) :]).unwrapped, **kwargs)
        return gym.wrappers.TimeLimit(env, max_episode_steps or 100)
    spec = TASKS.get(name) or next((t for t in TASKS.values() if t.env_id == name), None)
    if spec is None:
        raise ValueError(f"unknown env {name!r}; expected one of {task_names()}")
    import envs  # noqa: F401  (registers the ids)

    return gym.make(spec.env_id, max_episode_steps=max_episode_steps or spec.max_episode_steps, **kwargs)
