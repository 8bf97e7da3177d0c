import numpy as np
import pytest
import torch

from planners import CEM
from planners.risk import aggregate


def test_aggregations_on_known_inputs():
    c = torch.tensor([[1.0, 2.0, 3.0, 10.0]])
    assert torch.allclose(aggregate(c, "mean"), torch.tensor([4.0]))
    std = torch.tensor([1.0, 2.0, 3.0, 10.0]).std(unbiased=False)
    assert torch.allclose(aggregate(c, "mean_std", beta=2.0), 4.0 + 2.0 * std)
    assert torch.allclose(aggregate(c, "cvar", alpha=0.25), torch.tensor([10.0]))
    assert torch.allclose(aggregate(c, "cvar", alpha=0.5), torch.tensor([6.5]))
    assert torch.allclose(aggregate(c, "cvar", alpha=1.0), aggregate(c, "mean"))


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"kind": "median"}, "unknown aggregation"),
        ({"kind": "mean_std", "beta": -1.0}, "beta"),
        ({"kind": "cvar", "alpha": 0.0}, "alpha"),
        ({"kind": "cvar", "alpha": 1.5}, "alpha"),
    ],
)
def test_bad_risk_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        aggregate(torch.ones(2, 3), **kw)


def test_risk_aware_planning_avoids_the_hazard():
    """A 1-D toy: a short route (a > 0) usually reaches the goal but 30 % of futures fall
    into a hazard; the safe route (a < 0) always costs a bit more. Risk-neutral CEM takes
    the short route, CVaR and mean + std take the safe one."""
    gen = torch.Generator().manual_seed(0)
    trapped = (torch.rand(64, generator=gen) < 0.3).float()  # k = 64 sampled futures

    def futures(actions):  # (B, N, H=1, A=1) -> (B, N, k)
        a = actions[..., 0, 0].unsqueeze(-1)
        short = 0.2 + 3.0 * trapped  # expected 1.1
        safe = torch.full_like(trapped, 1.4)
        w = torch.sigmoid(10 * a)  # a > 0 -> short route
        return w * short + (1 - w) * safe

    def plan(kind, **kw):
        cem = CEM(horizon=1, action_dim=1, samples=64, elites=8, iterations=8, seed=0)
        return float(cem.plan(lambda a: aggregate(futures(a), kind, **kw), batch=1).actions[0, 0, 0])

    assert plan("mean") > 0.3
    assert plan("cvar", alpha=0.2) < -0.3
    assert plan("mean_std", beta=1.0) < -0.3


def test_summary_counts_trapped_episodes():
    import numpy as np

    from worldjepa.eval.planning import EpisodeResult, summarize

    def ep(seed, ok, trapped, cause=None, pushes=None, entered=None):
        return EpisodeResult(seed, ok, 0.1, [0.5], [], np.zeros((4, 4, 3), np.uint8), [[1.0]], trapped, trap_cause=cause, pushes=pushes, entered=entered)

    s = summarize(
        [
            ep(0, True, False, pushes=0, entered=1),
            ep(1, False, True, "gust", 1, 1),
            ep(2, False, True, "drove in", 0, 0),
            ep(3, True, False, pushes=2, entered=2),
        ]
    )
    assert s["entered_share"] == 0.75 and s["per_episode"][0]["entered"] == 1
    assert s["trapped_share"] == 0.5 and s["per_episode"][1]["trapped"] is True
    assert s["trapped_by_gust_share"] == 0.25 and s["trapped_driving_in_share"] == 0.25
    assert s["per_episode"][2]["trap_cause"] == "drove in" and "trap_cause" not in s["per_episode"][0]
    assert s["pushed_share"] == 0.5 and s["per_episode"][3]["pushes"] == 2
    assert "trapped_share" not in summarize([ep(0, True, None)]) and "pushed_share" not in summarize([ep(0, True, None)])


def test_trap_cause_tells_a_gust_from_driving_in():
    """On the real task: pushed into a pit by the gust -> "gust"; steered into a pit from
    outside the strip, with no push -> "drove in"; free -> None."""
    import envs
    from worldjepa.eval.planning import TrapCause

    env = envs.make("hazard").unwrapped
    causes = set()
    for seed in range(12):  # into the strip from the left, at its upper edge: up pushes land in the upper pit, down ones do not
        env.reset(seed=seed, options={"goal_state": np.array([0.35, 0.0])})
        env.restore({**env.snapshot(), "qpos": np.array([-0.16, 0.09]), "qvel": np.zeros(2)})
        tc = TrapCause(window=5)
        for _ in range(6):
            _, _, _, _, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
            tc.update(info)
        assert (tc.cause == "gust") == info["trapped"] and (tc.cause is None) == (not info["trapped"])
        assert tc.pushes == 1 and tc.entered == 1  # through the strip's edge once: one push
        causes.add(tc.cause)
    assert causes == {"gust", None}
    env.reset(seed=0, options={"goal_state": np.array([0.35, 0.0])})
    env.restore({**env.snapshot(), "qpos": np.array([0.0, 0.4]), "qvel": np.zeros(2)})  # above the upper pit
    tc = TrapCause(window=5)
    for _ in range(8):
        _, _, _, _, info = env.step(np.array([0.0, -1.0], dtype=np.float32))
        tc.update(info)
        assert not info["pushed"]
    assert info["trapped"] and tc.cause == "drove in" and tc.pushes == 0
