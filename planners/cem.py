"""Cross-entropy method (CEM) over action sequences.

Per step and action dimension a Gaussian; each iteration samples candidates, keeps the
``elites`` cheapest and refits mean and std to them (with optional momentum and a std
floor). The current mean is always one of the candidates, so the best cost never gets
worse than the mean's. Warm start: pass the previous plan shifted by one step.
"""

from __future__ import annotations

import torch

from planners.base import Bounds, CostFn, PlanResult, check_positive, evaluate


class CEM:
    """Batched CEM planner.

    Args:
        horizon: H, steps per action sequence.
        action_dim: A.
        samples: N candidates per iteration (the mean included).
        elites: how many of the cheapest candidates refit the Gaussian.
        iterations: refits per plan.
        std_init: initial std, as a fraction of the bounds' half width.
        std_min: std floor, same units.
        momentum: new = momentum * old + (1 - momentum) * elite statistics.
        bounds: action bounds; samples are clamped to them.
        seed: the planner's own generator seed.
    """

    def __init__(
        self,
        horizon: int,
        action_dim: int,
        samples: int = 300,
        elites: int = 30,
        iterations: int = 30,
        std_init: float = 1.0,
        std_min: float = 0.05,
        momentum: float = 0.0,
        bounds: Bounds = Bounds(),
        seed: int = 0,
    ) -> None:
        check_positive(horizon=horizon, action_dim=action_dim, samples=samples, elites=elites, iterations=iterations, std_init=std_init)
        if elites > samples:
            raise ValueError(f"elites ({elites}) must not exceed samples ({samples})")
        if not 0.0 <= momentum < 1.0 or std_min < 0:
            raise ValueError(f"need 0 <= momentum < 1 and std_min >= 0, got {momentum}, {std_min}")
        self.H, self.A, self.N, self.K, self.iters = horizon, action_dim, samples, elites, iterations
        self.std_init, self.std_min, self.momentum, self.bounds = std_init, std_min, momentum, bounds
        self.gen = torch.Generator().manual_seed(seed)

    def plan(self, cost: CostFn, batch: int = 1, init: torch.Tensor | None = None, device: torch.device | str = "cpu") -> PlanResult:
        """Minimise ``cost`` for ``batch`` problems; ``init`` (B, H, A) warm-starts the mean."""
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
            cand = torch.cat([mean.unsqueeze(1), mean.unsqueeze(1) + std.unsqueeze(1) * noise], dim=1)  # (B, N, H, A)
            cand = self.bounds.clamp(cand)
            c = evaluate(cost, cand)  # (B, N)
            top = c.topk(self.K, dim=1, largest=False).indices  # (B, K)
            elite = torch.gather(cand, 1, top[:, :, None, None].expand(-1, -1, self.H, self.A))
            m = self.momentum
            mean = m * mean + (1 - m) * elite.mean(1)
            std = (m * std + (1 - m) * elite.std(1, unbiased=False)).clamp_min(self.std_min * float(half.min()))
            it_best = c.gather(1, top[:, :1]).squeeze(1)
            improved = it_best < best_c
            best_c = torch.where(improved, it_best, best_c)
            best_a = torch.where(improved[:, None, None], cand[torch.arange(batch), top[:, 0]], best_a)
            history.append({"best": it_best.detach().cpu(), "mean": c.mean(1).detach().cpu()})
        return PlanResult(best_a, best_c, history)
