"""VICReg's variance and covariance terms (Bardes et al.), used against collapse."""

from __future__ import annotations

import torch


def vicreg_terms(z: torch.Tensor, std_target: float = 1.0, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance hinge and covariance penalty of embeddings z (N, D).

    Returns:
        (variance, covariance): mean over dims of relu(std_target - std), and the sum of
        squared off-diagonal covariances divided by D.
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"vicreg_terms expects (N >= 2, D) embeddings, got {tuple(z.shape)}")
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + eps)
    variance = torch.relu(std_target - std).mean()
    N, D = z.shape
    cov = (z.T @ z) / (N - 1)  # (D, D)
    off = cov - torch.diag(torch.diag(cov))
    covariance = off.pow(2).sum() / D
    return variance, covariance
