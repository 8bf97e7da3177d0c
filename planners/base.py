"""Shared planner mechanics: the cost interface, bounds, sampling, clamping, warm starts.

A planner sees a world model only through a cost function::

    cost(actions: (B, N, H, A)) -> (B, N)

B independent problems, N candidate action sequences each, horizon H, action size A.
Lower is better. Any model, or an analytic function, can be planned over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch


class CostFn(Protocol):
    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        """actions (B, N, H, A) -> costs (B, N)."""


@dataclass
class PlanResult:
    """Output of a planner.

    actions: (B, H, A) best sequence found per problem.
    cost: (B,) its cost.
    history: per iteration, {"best": (B,), "mean": (B,)} costs (floats on CPU), for plots.
    """

    actions: torch.Tensor
    cost: torch.Tensor
    history: list[dict[str, torch.Tensor]] = field(default_factory=list)


@dataclass(frozen=True)
class Bounds:
    """Box bounds on each action dimension (scalars or (A,) tensors)."""

    low: float | torch.Tensor = -1.0
    high: float | torch.Tensor = 1.0

    def clamp(self, a: torch.Tensor) -> torch.Tensor:
        low = torch.as_tensor(self.low, dtype=a.dtype, device=a.device)
        high = torch.as_tensor(self.high, dtype=a.dtype, device=a.device)
        return torch.maximum(torch.minimum(a, high), low)

    def centre_and_half_width(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.as_tensor(self.low, dtype=like.dtype, device=like.device)
        high = torch.as_tensor(self.high, dtype=like.dtype, device=like.device)
        if torch.any(high <= low):
            raise ValueError(f"action bounds need high > low, got low={self.low}, high={self.high}")
        return (low + high) / 2, (high - low) / 2


def evaluate(cost: CostFn, actions: torch.Tensor) -> torch.Tensor:
    """Call the cost and check its output: (B, N) and finite."""
    B, N = actions.shape[:2]
    c = cost(actions)
    if not isinstance(c, torch.Tensor) or c.shape != (B, N):
        raise ValueError(f"cost must return a tensor of shape (B, N) = ({B}, {N}), got {getattr(c, 'shape', type(c))}")
    if not torch.isfinite(c).all():
        bad = int((~torch.isfinite(c)).sum())
        raise ValueError(f"cost returned {bad} non-finite value(s) (NaN or Inf); check the model and the goal")
    return c


def shift_warm_start(plan: torch.Tensor, steps: int = 1, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Drop the first ``steps`` actions of (B, H, A) plans and repeat the last one (or ``fill``) at the end."""
    if steps <= 0:
        return plan
    tail = plan[:, -1:].expand(-1, steps, -1) if fill is None else fill.expand(plan.shape[0], steps, plan.shape[2])
    return torch.cat([plan[:, steps:], tail], dim=1)[:, : plan.shape[1]]


def check_positive(**values) -> None:
    for name, v in values.items():
        if v <= 0:
            raise ValueError(f"{name} must be > 0, got {v}")


def initial_mean_std(
    bounds: Bounds, batch: int, horizon: int, action_dim: int, std_init: float, init: torch.Tensor | None, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Starting mean (bounds' centre, or ``init``), std (``std_init`` x half width), and half width."""
    centre, half = bounds.centre_and_half_width(torch.zeros(1, device=device))
    mean = centre.expand(batch, horizon, action_dim).clone() if init is None else init.to(device).clone()
    if mean.shape != (batch, horizon, action_dim):
        raise ValueError(f"init must have shape ({batch}, {horizon}, {action_dim}), got {tuple(mean.shape)}")
    std = (std_init * half).expand(batch, horizon, action_dim).clone()
    return mean, std, half


def colored_noise(shape: tuple[int, ...], beta: float, gen: torch.Generator) -> torch.Tensor:
    """Standard-normal noise (..., H, A) whose power along H falls as 1 / f^beta (iCEM,
    Pinneri et al. 2020): beta = 0 is white noise; beta = 2 gives smooth, slowly turning
    action sequences. Every entry has unit variance whatever beta. Drawn over 2H steps and
    cut to H, so that the first and last steps are not neighbours (the FFT is circular)."""
    *lead, H, A = shape
    if beta == 0 or H < 2:
        return torch.randn(shape, generator=gen)
    n = 2 * H
    f = torch.fft.rfftfreq(n)  # (F,) cycles per step, 0 .. 0.5
    f[0] = f[1]  # the constant part gets the power of the slowest oscillation
    s = f.pow(-beta / 2)
    real_only = torch.zeros(len(f), dtype=torch.bool)
    real_only[0] = True
    real_only[-1] = True  # the Nyquist bin (n is even) is real too
    re = torch.randn((*lead, A, len(f)), generator=gen)
    im = torch.randn((*lead, A, len(f)), generator=gen)
    scale = torch.where(real_only, s, s / 2**0.5)
    spec = torch.complex(re * scale, torch.where(real_only, torch.zeros_like(im), im * scale))
    x = torch.fft.irfft(spec, n=n, norm="ortho")[..., :H]  # (..., A, H)
    var = (torch.where(real_only, 1.0, 2.0) * s.pow(2)).sum() / n
    return (x / var.sqrt()).transpose(-1, -2)


def sample_around(mean: torch.Tensor, std: torch.Tensor, samples: int, bounds: Bounds, gen: torch.Generator, beta: float = 0.0) -> torch.Tensor:
    """(B, N, H, A) candidates: the mean itself, then N - 1 Gaussian samples (coloured along H
    when ``beta`` > 0, see ``colored_noise``), clamped to bounds."""
    B, H, A = mean.shape
    noise = colored_noise((B, samples - 1, H, A), beta, gen).to(mean.device)
    return bounds.clamp(torch.cat([mean.unsqueeze(1), mean.unsqueeze(1) + std.unsqueeze(1) * noise], dim=1))


class BestTracker:
    """Keeps the cheapest candidate seen over iterations, and the per-iteration history."""

    def __init__(self, mean: torch.Tensor) -> None:
        self.actions = mean.clone()
        self.cost = torch.full((mean.shape[0],), float("inf"), device=mean.device)
        self.history: list[dict[str, torch.Tensor]] = []

    def update(self, cand: torch.Tensor, costs: torch.Tensor) -> None:
        i = costs.argmin(1)
        it_best = costs.gather(1, i[:, None]).squeeze(1)
        improved = it_best < self.cost
        self.cost = torch.where(improved, it_best, self.cost)
        self.actions = torch.where(improved[:, None, None], cand[torch.arange(cand.shape[0]), i], self.actions)
        self.history.append({"best": it_best.detach().cpu(), "mean": costs.mean(1).detach().cpu()})

    def result(self) -> PlanResult:
        return PlanResult(self.actions, self.cost, self.history)
