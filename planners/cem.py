"""Cross-entropy method (CEM) over action sequences.

Per step and action dimension a Gaussian; each iteration samples candidates, keeps the
``elites`` cheapest and refits mean and std to them (with optional momentum and a std
floor). The current mean is always one of the candidates, so the best cost never gets
worse than the mean's. Warm start: pass the previous plan shifted by one step.
"""

from __future__ import annotations

import torch

from planners.base import BestTracker, Bounds, CostFn, PlanResult, check_positive, evaluate, initial_mean_std, sample_around


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
        result: "best" returns the cheapest candidate seen; "mean" returns the final
            refitted mean (the average of the last elites, as V-JEPA 2-AC's and DINO-WM's
            CEM do). Where many plans are about as good (a final-step energy: any detour
            that ends on the goal), the best sample carries its own random first action,
            and under MPC that action is executed; the mean averages such noise out.
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
        result: str = "best",
    ) -> None:
        if result not in ("best", "mean"):
            raise ValueError(f"result must be 'best' or 'mean', got {result!r}")
        check_positive(horizon=horizon, action_dim=action_dim, samples=samples, elites=elites, iterations=iterations, std_init=std_init)
        if elites > samples:
            raise ValueError(f"elites ({elites}) must not exceed samples ({samples})")
        if not 0.0 <= momentum < 1.0 or std_min < 0:
            raise ValueError(f"need 0 <= momentum < 1 and std_min >= 0, got {momentum}, {std_min}")
        self.H, self.A, self.N, self.K, self.iters = horizon, action_dim, samples, elites, iterations
        self.std_init, self.std_min, self.momentum, self.bounds = std_init, std_min, momentum, bounds
        self.gen = torch.Generator().manual_seed(seed)
        self.result = result

    def plan(self, cost: CostFn, batch: int = 1, init: torch.Tensor | None = None, device: torch.device | str = "cpu") -> PlanResult:
        """Minimise ``cost`` for ``batch`` problems; ``init`` (B, H, A) warm-starts the mean."""
        mean, std, half = initial_mean_std(self.bounds, batch, self.H, self.A, self.std_init, init, device)
        best = BestTracker(mean)
        for _ in range(self.iters):
            cand = sample_around(mean, std, self.N, self.bounds, self.gen)  # (B, N, H, A)
            c = evaluate(cost, cand)  # (B, N)
            top = c.topk(self.K, dim=1, largest=False).indices  # (B, K)
            elite = torch.gather(cand, 1, top[:, :, None, None].expand(-1, -1, self.H, self.A))
            m = self.momentum
            mean = m * mean + (1 - m) * elite.mean(1)
            std = (m * std + (1 - m) * elite.std(1, unbiased=False)).clamp_min(self.std_min * float(half.min()))
            best.update(cand, c)
        if self.result == "mean":
            final = self.bounds.clamp(mean)
            return PlanResult(final, evaluate(cost, final.unsqueeze(1))[:, 0], best.history)
        return best.result()
