"""Receding-horizon control: observe, plan, execute the first k actions, repeat.

The controller sees no env internals: an ``observe`` callable returns whatever the cost
builder needs (e.g. the current image and proprio), ``make_cost(observation)`` returns the
cost closure for the planner, and ``act(actions)`` executes actions and reports whether
the episode ended on its own (for example a time limit). It is never told whether the
goal was reached: it runs until its step budget is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from planners.base import CostFn, shift_warm_start


@dataclass
class MPCLog:
    """What happened: executed actions, per-replan wall time and best cost, plan histories."""

    actions: list[torch.Tensor] = field(default_factory=list)
    replan_seconds: list[float] = field(default_factory=list)
    plan_costs: list[float] = field(default_factory=list)
    histories: list[list[dict]] = field(default_factory=list)


def _first_steps(cost: CostFn, n: int) -> CostFn:
    """The cost of a plan's first ``n`` steps only: (B, N, H, A) -> (B, N)."""
    return lambda actions: cost(actions[:, :, :n])


class MPC:
    """Receding-horizon controller around any planner with ``plan(cost, batch, init)``.

    Args:
        planner: a CEM, MPPI or GradientPlanner (its horizon sets the plan length).
        execute: actions executed per replan (k >= 1, at most the horizon).
        budget: env steps in total.
        warm_start: start each plan from the previous one shifted by ``execute`` steps.
        device: where the planner samples its candidates (the device the cost runs on).
        shrink: once fewer steps are left in the budget than the horizon, score plans on
            the steps left only, so the cost is about where the episode ends (the budget
            is part of the task; the controller still never learns whether it succeeded).
    """

    def __init__(self, planner, execute: int = 1, budget: int = 50, warm_start: bool = True, device: torch.device | str = "cpu", shrink: bool = False) -> None:
        if budget <= 0:
            raise ValueError(f"budget must be > 0, got {budget}")
        if not 1 <= execute <= planner.H:
            raise ValueError(f"execute must be in [1, horizon={planner.H}], got {execute}")
        self.planner, self.execute, self.budget, self.warm_start, self.device = planner, execute, budget, warm_start, device
        self.shrink = shrink

    def run(self, observe: Callable[[], Any], make_cost: Callable[[Any], CostFn], act: Callable[[torch.Tensor], bool]) -> MPCLog:
        """Control until ``budget`` steps are spent or ``act`` reports the episode ended."""
        log = MPCLog()
        steps, prev = 0, None
        while steps < self.budget:
            obs = observe()
            cost = make_cost(obs)
            left = self.budget - steps
            if self.shrink and left < self.planner.H:
                cost = _first_steps(cost, left)
            init = shift_warm_start(prev, self.execute) if (self.warm_start and prev is not None) else None
            t = time.perf_counter()
            res = self.planner.plan(cost, batch=1, init=init, device=self.device)
            log.replan_seconds.append(time.perf_counter() - t)
            log.plan_costs.append(float(res.cost[0]))
            log.histories.append(res.history)
            prev = res.actions
            ended = False
            for a in res.actions[0, : min(self.execute, self.budget - steps)]:
                log.actions.append(a.detach().cpu())
                steps += 1
                if act(a):
                    ended = True
                    break
            if ended:
                break
        return log
