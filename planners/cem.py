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
        coarse, coarse_iterations: coarse-to-fine search. The first ``coarse_iterations``
            iterations search A / ``coarse`` numbers per step, tiled ``coarse`` times to
            fill the A (a model action made of ``coarse`` env actions then holds one env
            action for the whole step: few, long, decisive moves, which find routes that
            independent env actions, averaging out within a step, do not); the remaining
            iterations refine every number from there.
        noise_beta: colour of the sampling noise along the horizon (iCEM): 0 is white
            noise; 2 draws smooth sequences that keep a direction for several steps and
            turn slowly (detours round an obstacle), which white noise seldom draws.
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
        coarse: int = 1,
        coarse_iterations: int = 0,
        noise_beta: float = 0.0,
    ) -> None:
        if result not in ("best", "mean"):
            raise ValueError(f"result must be 'best' or 'mean', got {result!r}")
        check_positive(horizon=horizon, action_dim=action_dim, samples=samples, elites=elites, iterations=iterations, std_init=std_init)
        if not 0.0 <= noise_beta <= 4.0:
            raise ValueError(f"noise_beta must lie in [0, 4], got {noise_beta}")
        if elites > samples:
            raise ValueError(f"elites ({elites}) must not exceed samples ({samples})")
        if not 0.0 <= momentum < 1.0 or std_min < 0:
            raise ValueError(f"need 0 <= momentum < 1 and std_min >= 0, got {momentum}, {std_min}")
        self.H, self.A, self.N, self.K, self.iters = horizon, action_dim, samples, elites, iterations
        self.std_init, self.std_min, self.momentum, self.bounds = std_init, std_min, momentum, bounds
        if coarse < 1 or action_dim % coarse or not 0 <= coarse_iterations <= iterations:
            raise ValueError(
                f"coarse ({coarse}) must divide action_dim ({action_dim}) and coarse_iterations ({coarse_iterations}) lie in [0, iterations = {iterations}]"
            )
        if coarse > 1 and any(torch.as_tensor(b).numel() > 1 for b in (bounds.low, bounds.high)):
            raise ValueError("coarse > 1 needs scalar action bounds (the same for every action number)")
        self.gen = torch.Generator().manual_seed(seed)
        self.beta = float(noise_beta)
        self.result, self.coarse, self.coarse_iters = result, coarse, coarse_iterations if coarse > 1 else 0

    def plan(self, cost: CostFn, batch: int = 1, init: torch.Tensor | None = None, device: torch.device | str = "cpu") -> PlanResult:
        """Minimise ``cost`` for ``batch`` problems; ``init`` (B, H, A) warm-starts the mean."""
        mean, std, half = initial_mean_std(self.bounds, batch, self.H, self.A, self.std_init, init, device)
        best = BestTracker(mean)
        k = self.coarse
        if self.coarse_iters:  # search the tiled sub-space first: (B, H, A) -> (B, H, A / k)
            mean, std = mean.view(batch, self.H, k, -1).mean(2), std.view(batch, self.H, k, -1).mean(2)
        for it in range(self.iters):
            if self.coarse_iters and it == self.coarse_iters:  # from here on, every number
                mean, std = mean.repeat(1, 1, k), std.repeat(1, 1, k)
            coarse = self.coarse_iters and it < self.coarse_iters
            cand = sample_around(mean, std, self.N, self.bounds, self.gen, self.beta)  # (B, N, H, A or A / k)
            full = cand.repeat(1, 1, 1, k) if coarse else cand
            c = evaluate(cost, full)  # (B, N)
            top = c.topk(self.K, dim=1, largest=False).indices  # (B, K)
            elite = torch.gather(cand, 1, top[:, :, None, None].expand(-1, -1, *cand.shape[2:]))
            m = self.momentum
            mean = m * mean + (1 - m) * elite.mean(1)
            std = (m * std + (1 - m) * elite.std(1, unbiased=False)).clamp_min(self.std_min * float(half.min()))
            best.update(full, c)
        if self.coarse_iters == self.iters:
            mean = mean.repeat(1, 1, k)
        if self.result == "mean":
            final = self.bounds.clamp(mean)
            return PlanResult(final, evaluate(cost, final.unsqueeze(1))[:, 0], best.history)
        return best.result()
