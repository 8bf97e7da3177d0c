"""Gradient-based planning: Adam on the action sequence through a differentiable cost."""

from __future__ import annotations

import torch

from planners.base import Bounds, CostFn, PlanResult, check_positive, evaluate, initial_mean_std


class GradientPlanner:
    """Batched gradient planner with projection onto the bounds after each step.

    ``samples`` sequences per problem are optimised in parallel from random starts (the
    first from ``init`` or the bounds' centre); the cheapest one is returned. The cost
    must be differentiable in the actions.

    Args:
        horizon, action_dim: H and A.
        samples: parallel starts per problem.
        iterations: Adam steps.
        lr: Adam step size, in action units.
        bounds, seed: as for CEM.
    """

    def __init__(
        self, horizon: int, action_dim: int, samples: int = 8, iterations: int = 50, lr: float = 0.1, bounds: Bounds = Bounds(), seed: int = 0
    ) -> None:
        check_positive(horizon=horizon, action_dim=action_dim, samples=samples, iterations=iterations, lr=lr)
        self.H, self.A, self.N, self.iters, self.lr, self.bounds = horizon, action_dim, samples, iterations, lr, bounds
        self.gen = torch.Generator().manual_seed(seed)

    def plan(self, cost: CostFn, batch: int = 1, init: torch.Tensor | None = None, device: torch.device | str = "cpu") -> PlanResult:
        start, _, half = initial_mean_std(self.bounds, batch, self.H, self.A, 1.0, init, device)
        centre, _ = self.bounds.centre_and_half_width(start)
        rand = centre + half * (2 * torch.rand(batch, self.N - 1, self.H, self.A, generator=self.gen).to(device) - 1)
        a = torch.cat([start.unsqueeze(1), rand], dim=1).requires_grad_(True)  # (B, N, H, A)
        opt = torch.optim.Adam([a], lr=self.lr)
        history = []
        for _ in range(self.iters):
            with torch.enable_grad():
                c = evaluate(cost, a)
                opt.zero_grad(set_to_none=True)
                c.sum().backward()
            opt.step()
            with torch.no_grad():
                a.copy_(self.bounds.clamp(a))
            history.append({"best": c.min(1).values.detach().cpu(), "mean": c.mean(1).detach().cpu()})
        with torch.no_grad():
            c = evaluate(cost, a)
            i = c.argmin(1)
            return PlanResult(a[torch.arange(batch), i].detach(), c.gather(1, i[:, None]).squeeze(1), history)
