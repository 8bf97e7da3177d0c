"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA).

Project embeddings on M random unit directions and compare each 1-D distribution with
N(0, 1) through the Epps-Pulley statistic

    N * integral |phi_hat(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt,   phi_hat(t) = mean_n exp(i t y_n),

by trapezoidal quadrature on t in [0, t_max] (17 nodes by default). The statistic is
averaged over directions. Under N(0, I) it stays O(1) whatever N; it grows with N
otherwise, so keep the batch size fixed (or set ``scale_by_n=False``).
"""

from __future__ import annotations

import torch
from torch import nn


class SIGReg(nn.Module):
    """Epps-Pulley statistic of embeddings against N(0, I) along random directions.

    Args:
        num_directions: M, fresh random directions each call.
        num_nodes: quadrature nodes on [0, t_max].
        t_max: upper end of the integration range.
        scale_by_n: multiply by the number of samples (the test statistic's usual form).
    """

    def __init__(self, num_directions: int = 256, num_nodes: int = 17, t_max: float = 3.0, scale_by_n: bool = True) -> None:
        super().__init__()
        if num_directions <= 0 or num_nodes < 2 or t_max <= 0:
            raise ValueError(f"need num_directions > 0, num_nodes >= 2, t_max > 0; got {num_directions}, {num_nodes}, {t_max}")
        t = torch.linspace(0.0, t_max, num_nodes)
        w = torch.full((num_nodes,), t_max / (num_nodes - 1))
        w[0] = w[-1] = w[0] / 2  # trapezoid
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("weights", w * torch.exp(-0.5 * t**2), persistent=False)  # w_k * exp(-t^2/2)
        self.register_buffer("target_cf", torch.exp(-0.5 * t**2), persistent=False)
        self.num_directions, self.scale_by_n = num_directions, scale_by_n

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """z (N, D) -> scalar statistic (mean over directions)."""
        if z.dim() != 2:
            raise ValueError(f"SIGReg expects embeddings of shape (N, D), got {tuple(z.shape)}")
        N, D = z.shape
        dirs = torch.randn(D, self.num_directions, generator=generator, device="cpu" if generator is not None else z.device)
        dirs = dirs.to(device=z.device, dtype=z.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        y = z @ dirs  # (N, M)
        ty = y.unsqueeze(-1) * self.t.to(z)  # (N, M, K)
        re = torch.cos(ty).mean(0)  # (M, K)
        im = torch.sin(ty).mean(0)
        err = (re - self.target_cf.to(z)) ** 2 + im**2  # (M, K)
        stat = (err * self.weights.to(z)).sum(-1)  # (M,)
        if self.scale_by_n:
            stat = stat * N
        return stat.mean()
