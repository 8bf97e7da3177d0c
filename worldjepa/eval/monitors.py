"""Collapse monitors: per-dimension standard deviation and RankMe effective rank."""

from __future__ import annotations

import torch


def embedding_std(z: torch.Tensor) -> dict[str, float]:
    """Per-dimension std of embeddings z (N, D): its mean and minimum over dimensions.

    A collapsing encoder drives these towards 0 (complete collapse) or leaves a few
    dimensions alive (dimensional collapse, seen in the min and in RankMe).
    """
    z = z.float().reshape(-1, z.shape[-1])
    std = z.std(dim=0)
    return {"std_mean": float(std.mean()), "std_min": float(std.min())}


def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al.): exp of the entropy of the normalised singular values of z (N, D).

    Ranges from 1 (all embeddings on a line) to min(N, D) (full rank, evenly spread).
    """
    z = z.float().reshape(-1, z.shape[-1])
    s = torch.linalg.svdvals(z)
    p = s / (s.sum() + eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))
