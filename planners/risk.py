"""Aggregating a candidate's cost over k sampled futures: risk-neutral or risk-aware.

A stochastic world model gives each candidate action sequence k sampled futures and so k
energies. ``aggregate`` turns them into one cost:

* ``mean``: the expected energy (risk-neutral);
* ``mean_std``: mean + beta * std (beta >= 0; PLDM-style variance penalty);
* ``cvar``: the mean of the worst alpha-fraction of the k energies (alpha in (0, 1];
  alpha = 1 is the mean, small alpha looks at the worst futures only).
"""

from __future__ import annotations

import math

import torch

AGGREGATIONS = ("mean", "mean_std", "cvar")


def check_risk(kind: str, beta: float = 0.0, alpha: float = 1.0) -> None:
    """Raise ValueError naming what is wrong with an aggregation setting."""
    if kind not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {kind!r}: expected one of {', '.join(AGGREGATIONS)}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if not (0 < alpha <= 1):
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")


def aggregate(costs: torch.Tensor, kind: str = "mean", beta: float = 0.0, alpha: float = 1.0) -> torch.Tensor:
    """costs (..., k) over k sampled futures -> (...)."""
    check_risk(kind, beta, alpha)
    k = costs.shape[-1]
    if k < 1:
        raise ValueError("need at least one sampled future (k >= 1)")
    if kind == "mean":
        return costs.mean(-1)
    if kind == "mean_std":
        std = costs.std(-1, unbiased=False) if k > 1 else torch.zeros_like(costs[..., 0])
        return costs.mean(-1) + beta * std
    n = max(1, math.ceil(alpha * k))
    return costs.topk(n, dim=-1).values.mean(-1)
