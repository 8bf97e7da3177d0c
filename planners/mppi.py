"""Model-predictive path integral (MPPI): a temperature-weighted average of sampled sequences."""

from __future__ import annotations

import torch

from planners.base import BestTracker, Bounds, CostFn, PlanResult, check_positive, evaluate, initial_mean_std, sample_around


class MPPI:
    """Batched MPPI planner.

    Each iteration samples candidates around the mean (the mean itself included), weighs
    them by ``softmax(-(cost - min cost) / temperature)`` and moves the mean (and, with
    ``adapt_std``, the std) to the weighted statistics.

    Args:
        horizon, action_dim: H and A.
        samples: N candidates per iteration.
        iterations: updates per plan.
        temperature: lambda, in cost units; smaller is greedier.
        std_init, std_min: sampling std as a fraction of the bounds' half width, and its floor.
        adapt_std: refit the std to the weighted candidates.
        bounds, seed: as for CEM.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int = 300,
        iterations: int = 10,
        temperature: float = 0.05,
        std_init: float = 0.5,
        std_min: float = 0.05,
        adapt_std: bool = True,
        bounds: Bounds = Bounds(),
        seed: int = 0,
    ) -> None:
        check_positive(horizon=horizon, action_dim=action_dim, samples=samples, iterations=iterations, temperature=temperature, std_init=std_init)
        self.H, self.A, self.N, self.iters = horizon, action_dim, samples, iterations
        self.temperature, self.std_init, self.std_min, self.adapt_std, self.bounds = temperature, std_init, std_min, adapt_std, bounds
        self.gen = torch.Generator().manual_seed(seed)

    def plan(self, cost: CostFn, batch: int = 1, init: torch.Tensor | None = None, device: torch.device | str = "cpu") -> PlanResult:
        """Minimise ``cost`` for ``batch`` problems; ``init`` (B, H, A) warm-starts the mean."""
        mean, std, half = initial_mean_std(self.bounds, batch, self.H, self.A, self.std_init, init, device)
        best = BestTracker(mean)
        for _ in range(self.iters):
            cand = sample_around(mean, std, self.N, self.bounds, self.gen)  # (B, N, H, A)
            c = evaluate(cost, cand)  # (B, N)
            w = torch.softmax(-(c - c.min(1, keepdim=True).values) / self.temperature, dim=1)  # (B, N)
            mean = (w[:, :, None, None] * cand).sum(1)
            if self.adapt_std:
                var = (w[:, :, None, None] * (cand - mean.unsqueeze(1)) ** 2).sum(1)
                std = var.sqrt().clamp_min(self.std_min * float(half.min()))
            best.update(cand, c)
        return best.result()
