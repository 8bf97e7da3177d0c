import pytest
import torch

from planners import CEM, MPC, MPPI, Bounds, GradientPlanner, shift_warm_start

TARGET = torch.tensor([[[0.3, -0.5], [0.7, 0.2], [-0.4, 0.9]], [[-0.6, 0.1], [0.0, 0.0], [0.5, -0.8]]])  # (B=2, H=3, A=2)


def bowl(actions):
    """Quadratic bowl with a different minimum per problem: (B, N, H, A) -> (B, N)."""
    return ((actions - TARGET[:, None]) ** 2).sum(dim=(-1, -2))


PLANNERS = {
    "cem": lambda: CEM(3, 2, samples=200, elites=20, iterations=20, seed=0),
    "mppi": lambda: MPPI(3, 2, samples=200, iterations=40, temperature=0.02, seed=0),
    "gradient": lambda: GradientPlanner(3, 2, samples=4, iterations=150, lr=0.05, seed=0),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_minimises_quadratic_bowl(name):
    res = PLANNERS[name]().plan(bowl, batch=2)
    assert res.actions.shape == (2, 3, 2)
    torch.testing.assert_close(res.actions, TARGET, atol=0.05, rtol=0)
    assert res.history[-1]["best"].max() < 0.01
    assert (res.history[-1]["best"] <= res.history[0]["best"]).all()  # the cost went down


@pytest.mark.parametrize("name", PLANNERS)
def test_respects_bounds(name):
    far = TARGET * 5  # minimum outside the box: the answer is the box's corner/edge
    planner = PLANNERS[name]()
    planner.bounds = Bounds(-0.5, 0.5)
    res = planner.plan(lambda a: ((a - far[:, None]) ** 2).sum(dim=(-1, -2)), batch=2)
    assert res.actions.min() >= -0.5 and res.actions.max() <= 0.5
    # MPPI's weighted mean of clamped samples approaches a corner from inside
    torch.testing.assert_close(res.actions, far.clamp(-0.5, 0.5), atol=0.1 if name == "mppi" else 0.05, rtol=0)


def test_cem_finds_the_deeper_of_two_basins():
    # 1-D, H=1: a shallow basin at -0.6 (cost 0.3) and a deeper one at +0.7 (cost 0)
    def two_basin(a):
        x = a[..., 0, 0]
        return torch.minimum((x + 0.6) ** 2 * 4 + 0.3, (x - 0.7) ** 2 * 4)

    res = CEM(1, 1, samples=100, elites=10, iterations=15, seed=1).plan(two_basin, batch=3)
    torch.testing.assert_close(res.actions[:, 0, 0], torch.full((3,), 0.7), atol=0.03, rtol=0)


def test_cem_can_return_its_mean_on_a_plateau():
    """Only the last step matters (a final-step energy): every first action is as good. The
    best sample keeps its random first action; the refitted mean averages it towards 0."""

    def last_step_only(a):
        return ((a[..., -1, :] - 0.5) ** 2).sum(-1) + 1e-3 * (a[..., :-1, :] ** 2).sum(dim=(-1, -2))

    best = CEM(3, 2, samples=100, elites=10, iterations=6, seed=0).plan(last_step_only, batch=4)
    mean = CEM(3, 2, samples=100, elites=10, iterations=6, seed=0, result="mean").plan(last_step_only, batch=4)
    torch.testing.assert_close(mean.actions[:, -1], torch.full((4, 2), 0.5), atol=0.1, rtol=0)
    torch.testing.assert_close(mean.cost, last_step_only(mean.actions[:, None])[:, 0])  # the cost of what it returns
    assert mean.actions[:, 0].abs().mean() < best.actions[:, 0].abs().mean()
    with pytest.raises(ValueError, match="result must be 'best' or 'mean'"):
        CEM(3, 2, result="median")


def test_cem_coarse_to_fine():
    """The first iterations try tiled candidates (one number held across each group of
    ``coarse``), the rest refine every number: the answer is still the exact minimum."""
    target = torch.tensor([0.6, -0.2, 0.5, -0.3, 0.7, -0.1])  # three env actions of size 2, nearly held
    seen = []

    def cost(a):
        seen.append(a.clone())
        return ((a - target) ** 2).sum(dim=(-1, -2))

    res = CEM(2, 6, samples=100, elites=10, iterations=12, coarse=3, coarse_iterations=4, seed=0).plan(cost, batch=2)
    tiled = [bool(torch.equal(a, a[..., :2].repeat(1, 1, 1, 3))) for a in seen]
    assert tiled == [True] * 4 + [False] * 8
    torch.testing.assert_close(res.actions, target.expand(2, 2, 6), atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="coarse \\(4\\) must divide action_dim \\(6\\)"):
        CEM(2, 6, coarse=4, coarse_iterations=2)
    with pytest.raises(ValueError, match="scalar action bounds"):
        CEM(2, 6, coarse=3, coarse_iterations=2, bounds=Bounds(torch.full((6,), -1.0), torch.full((6,), 1.0)))


def test_colored_noise_and_cem_with_it():
    """iCEM noise: unit variance at every step, neighbouring steps correlated for beta > 0
    and not for beta = 0, the first and last steps not tied by the FFT's wrap-around; CEM
    sampling with it still finds the bowl's minimum."""
    from planners.base import colored_noise

    g = torch.Generator().manual_seed(0)
    for beta, lag1 in ((0.0, (-0.05, 0.05)), (2.0, (0.6, 0.95))):
        x = colored_noise((20000, 8, 2), beta, g)
        torch.testing.assert_close(x.var(0), torch.ones(8, 2), atol=0.06, rtol=0)
        c = torch.corrcoef(torch.stack([x[:, 0, 0], x[:, 1, 0], x[:, -1, 0], x[:, 0, 1]]))
        assert lag1[0] < c[0, 1] < lag1[1]
        assert c[0, 2] < 0.1 and abs(c[0, 3]) < 0.05  # no wrap-around; action dims independent
    res = CEM(3, 2, samples=200, elites=20, iterations=20, seed=0, noise_beta=2.0).plan(bowl, batch=2)
    torch.testing.assert_close(res.actions, TARGET, atol=0.05, rtol=0)
    with pytest.raises(ValueError, match="noise_beta"):
        CEM(3, 2, noise_beta=-1.0)


def test_bad_settings_and_costs():
    with pytest.raises(ValueError, match="elites \\(50\\) must not exceed samples \\(10\\)"):
        CEM(3, 2, samples=10, elites=50)
    with pytest.raises(ValueError, match="iterations must be > 0"):
        MPPI(3, 2, iterations=0)
    with pytest.raises(ValueError, match="budget must be > 0"):
        MPC(CEM(3, 2), budget=0)
    with pytest.raises(ValueError, match="non-finite"):
        CEM(3, 2, samples=10, elites=2, iterations=1).plan(lambda a: torch.full(a.shape[:2], float("nan")), batch=1)
    with pytest.raises(ValueError, match=r"shape \(B, N\) = \(1, 10\)"):
        CEM(3, 2, samples=10, elites=2, iterations=1).plan(lambda a: a.sum(-1), batch=1)


def test_warm_start_shift():
    plan = torch.arange(6.0).view(1, 3, 2)
    torch.testing.assert_close(shift_warm_start(plan, 1), torch.tensor([[[2.0, 3.0], [4.0, 5.0], [4.0, 5.0]]]))


class PointMass:
    """A toy env with exactly known dynamics: x' = x + 0.1 * a, a in [-1, 1]^2."""

    def __init__(self, start, goal):
        self.x, self.goal = torch.tensor(start), torch.tensor(goal)

    def rollout_cost(self, x0):
        def cost(actions):  # (B, N, H, A): distance of the final state to the goal
            final = x0 + 0.1 * actions.sum(dim=2)
            return (final - self.goal).norm(dim=-1)

        return cost

    def act(self, a):
        self.x = self.x + 0.1 * a.clamp(-1, 1)
        return False


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_mpc_reaches_goal_with_true_dynamics(name):
    env = PointMass([-0.8, 0.5], [0.6, -0.4])
    planner = (
        CEM(5, 2, samples=100, elites=10, iterations=8, seed=0)
        if name == "cem"
        else MPPI(5, 2, samples=100, iterations=8, temperature=0.005, std_min=0.01, seed=0)
    )
    log = MPC(planner, execute=2, budget=30).run(observe=lambda: env.x.clone(), make_cost=env.rollout_cost, act=env.act)
    assert len(log.actions) == 30 and len(log.replan_seconds) == 15
    assert (env.x - env.goal).norm() < 0.05


def test_mpc_shrinks_the_horizon_to_the_steps_left():
    # the goal is 0.3 away and the budget 3 steps of at most 0.1: only a plan that goes
    # full speed for exactly the steps left ends on it; the horizon (5) is longer
    env = PointMass([0.0, 0.0], [0.3, 0.0])
    seen = []

    def make_cost(x):
        cost = env.rollout_cost(x)

        def final_only(a):  # energy at the end of the scored plan
            seen.append(a.shape[2])
            return cost(a)

        return final_only

    MPC(CEM(5, 2, samples=200, elites=20, iterations=10, seed=0), budget=3, shrink=True).run(lambda: env.x.clone(), make_cost, env.act)
    assert sorted(set(seen)) == [1, 2, 3]  # every plan is scored on the steps left
    assert (env.x - env.goal).norm() < 0.02
