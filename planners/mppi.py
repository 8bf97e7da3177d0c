"""Model-predictive path integral (MPPI): a temperature-weighted average of sampled sequences."""

from __future__ import annotations

import torch

from planners.base import Bounds, CostFn, PlanResult, check_positive, evaluate


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
        ref = torch.zeros(1, device=device)
        centre, half = self.bounds.centre_and_half_width(ref)
        mean = centre.expand(batch, self.H, self.A).clone() if init is None else init.to(device).clone()
        if mean.shape != (batch, self.H, self.A):
            raise ValueError(f"init must have shape ({batch}, {self.H}, {self.A}), got {tuple(mean.shape)}")
        std = (self.std_init * half).expand(batch, self.H, self.A).clone()
        best_a, best_c = mean.clone(), torch.full((batch,), float("inf"), device=device)
        history = []
        for _ in range(self.iters):
            noise = torch.randn(batch, self.N - 1, self.H, self.A, generator=self.gen).to(device)
            cand = self.bounds.clamp(torch.cat([mean.unsqueeze(1), mean.unsqueeze(1) + std.unsqueeze(1) * noise], dim=1))
            c = evaluate(cost, cand)  # (B, N)
            w = torch.softmax(-(c - c.min(1, keepdim=True).values) / self.temperature, dim=1)  # (B, N)
            mean = (w[:, :, None, None] * cand).sum(1)
            if self.adapt_std:
                var = (w[:, :, None, None] * (cand - mean.unsqueeze(1)) ** 2).sum(1)
                std = var.sqrt().clamp_min(self.std_min * float(half.min()))
            i = c.argmin(1)
            it_best = c.gather(1, i[:, None]).squeeze(1)
            improved = it_best < best_c
            best_c = torch.where(improved, it_best, best_c)
            best_a = torch.where(improved[:, None, None], cand[torch.arange(batch), i], best_a)
            history.append({"best": it_best.detach().cpu(), "mean": c.mean(1).detach().cpu()})
        return PlanResult(best_a, best_c, history)
