"""The model shipped in the package plans towards goal images (slow: about a minute)."""

import pytest
import torch

from worldjepa.world_model import WorldModel, shipped_model


def test_shipped_reach_model_loads_strictly():
    path = shipped_model("reach")
    assert path is not None, "the Reach model must ship inside the package (worldjepa ship)"
    wm = WorldModel.load(path)
    assert wm.spec.task == "reach" and wm.proprio_decoder is not None
    assert wm.readout is not None and len(wm.readout_info["ridge_dims"]) == wm.spec.proprio_dim  # the fitted goal read-out ships too
    assert all(p.dtype == torch.float32 for p in wm.parameters())  # stored as fp16, loaded as fp32


@pytest.mark.slow
def test_shipped_reach_model_reaches_goal_images():
    import hydra
    from omegaconf import OmegaConf

    from worldjepa.cli import config_dir
    from worldjepa.eval.planning import evaluate

    wm = WorldModel.load(shipped_model("reach"))
    with hydra.initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = hydra.compose("plan")
    summary, _ = evaluate(
        "reach",
        wm,
        lambda: hydra.utils.instantiate(cfg.planner, action_dim=wm.action_dim),
        episodes=10,
        budget=int(cfg.budget),
        progress=False,
        cost_kw={"energy": str(cfg.energy), "proprio_weight": float(cfg.energy_proprio_weight), "all_steps": float(cfg.energy_all_steps)},
        shrink=bool(cfg.shrink_horizon),
    )
    assert OmegaConf.select(cfg, "planner._target_") == "planners.CEM"
    assert summary["successes"] >= 5, summary
