"""Per-task defaults in configs/env/*.yaml reach the commands that use them."""

import os

import hydra
import pytest
from omegaconf import OmegaConf

from worldjepa.cli import config_dir

TASKS = sorted(os.path.splitext(n)[0] for n in os.listdir(config_dir() / "env") if n.endswith(".yaml"))


def _compose(name: str, *overrides: str):
    with hydra.initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return hydra.compose(name, overrides=list(overrides))


@pytest.mark.parametrize("task", TASKS)
def test_default_plans_stay_within_the_trained_rollouts(task):
    # a plan longer than the rollouts the model was trained on is scored on predictions
    # it never learned to make (TwoRoom: 0.03 -> 0.13 m error at step 8)
    train = _compose("train", f"env={task}")
    for planner in ("cem", "mppi", "gradient"):
        plan = _compose("plan", f"env={task}", f"planner={planner}")
        assert plan.planner.horizon <= train.objective.rollout_steps, (task, planner)
    assert train.objective.clip_len >= train.objective.history + train.objective.rollout_steps


def test_tworoom_defaults_are_the_measured_recipe():
    train = _compose("train", "env=tworoom")
    plan = _compose("plan", "env=tworoom")
    assert (train.objective.rollout_steps, train.objective.clip_len, train.objective.proprio_weight) == (8, 9, 5.0)
    p = OmegaConf.to_container(plan.planner, resolve=True)
    assert (p["horizon"], p["iterations"], p["coarse"], p["coarse_iterations"]) == (8, 6, 5, 3)
    assert plan.energy_action_weight == 0.1 and plan.energy_all_steps == 0.2


def test_command_line_overrides_beat_the_task_defaults():
    plan = _compose("plan", "env=tworoom", "planner.horizon=5", "energy_action_weight=0.0")
    assert plan.planner.horizon == 5 and plan.energy_action_weight == 0.0
    reach = _compose("plan")  # the README's main command keeps the shipped Reach settings
    assert (reach.planner.horizon, reach.planner.iterations, reach.planner.coarse, reach.energy_action_weight) == (5, 5, 1, 0.0)


def test_hazard_plans_with_coloured_noise_by_default():
    # Hazard's detour round the pits is a smooth action sequence; white-noise CEM seldom draws it
    for task in ("hazard", "hazard_gamble"):
        assert OmegaConf.to_container(_compose("plan", f"env={task}").planner, resolve=True)["noise_beta"] == 2.0, task
    for task in sorted(set(TASKS) - {"hazard", "hazard_gamble"}):
        assert OmegaConf.to_container(_compose("plan", f"env={task}").planner, resolve=True)["noise_beta"] == 0.0, task
    white = OmegaConf.to_container(_compose("plan", "env=hazard", "planner.noise_beta=0").planner, resolve=True)
    assert white["noise_beta"] == 0
