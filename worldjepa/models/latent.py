"""Per-step latent variable z for multimodal futures (continuous Gaussian, KL with free bits).

The predictor's step t can go several ways from the same history and action; z_t says
which. In training z_t is drawn from a **posterior** q(z_t | s_t, a_t, s_t+1) that sees
the real next state; at test time from a **prior** p(z_t | s_t, a_t) that does not. The
KL(q || p) term trains the prior and limits what z carries: it is clipped from below at
``free_bits`` nats per step (no pressure below that), and weighted by ``kl_weight``, so
that the path "target -> z -> prediction" cannot simply copy the next state.

Inputs are the pooled state tokens (mean over K) of step t (and t+1 for the posterior)
and the step's action; the prior is Markov in the current state, which suits tasks whose
image shows their state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from worldjepa.models.vit import mlp


@dataclass(frozen=True)
class LatentConfig:
    """Latent-variable sizes (configs/predictor/*.yaml, key ``latent``)."""

    z_dim: int = 0  # 0 = deterministic predictor
    hidden: int = 128
    free_bits: float = 1.0  # nats per step below which KL is not penalised
    kl_weight: float = 0.1
    min_std: float = 0.05

    def __post_init__(self) -> None:
        if self.z_dim < 0 or self.hidden <= 0 or self.free_bits < 0 or self.kl_weight < 0 or self.min_std <= 0:
            raise ValueError(f"invalid latent settings: {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_kl(mu_q: torch.Tensor, std_q: torch.Tensor, mu_p: torch.Tensor, std_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, std_q^2) || N(mu_p, std_p^2)) per dimension (elementwise)."""
    var_q, var_p = std_q.pow(2), std_p.pow(2)
    return torch.log(std_p / std_q) + (var_q + (mu_q - mu_p).pow(2)) / (2 * var_p) - 0.5


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Sum KL over the last dim (nats per step), clip each step's total below at free_bits, mean."""
    return kl_per_dim.sum(-1).clamp(min=free_bits).mean()


class GaussianLatent(nn.Module):
    """Prior and posterior heads over a per-step Gaussian z. Shapes in the methods."""

    def __init__(self, state_dim: int, action_dim: int, cfg: LatentConfig) -> None:
        super().__init__()
        if cfg.z_dim <= 0:
            raise ValueError("GaussianLatent needs z_dim > 0")
        self.cfg = cfg
        self.prior_net = mlp(state_dim + action_dim, [cfg.hidden, cfg.hidden], 2 * cfg.z_dim)
        # the posterior also gets the change next - current: what z must say (which way a
        # push went) is in that difference, which an MLP otherwise has to learn to form
        self.post_net = mlp(3 * state_dim + action_dim, [cfg.hidden, cfg.hidden], 2 * cfg.z_dim)

    def _dist(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = out.chunk(2, dim=-1)
        return mu, nn.functional.softplus(raw) + self.cfg.min_std

    def prior(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state (..., S), action (..., A) -> (mu, std) each (..., z_dim)."""
        return self._dist(self.prior_net(torch.cat([state, action], -1)))

    def posterior(self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like ``prior`` but also sees the real next state (training only)."""
        return self._dist(self.post_net(torch.cat([state, action, next_state, next_state - state], -1)))

    @staticmethod
    def sample(mu: torch.Tensor, std: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample mu + std * eps."""
        eps = torch.randn(mu.shape, generator=generator, device="cpu" if generator is not None else mu.device).to(mu)
        return mu + std * eps

    def kl_loss(self, post: tuple[torch.Tensor, torch.Tensor], prior: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted free-bits KL loss, raw mean KL in nats per step)."""
        kl = gaussian_kl(*post, *prior)
        return self.cfg.kl_weight * free_bits_kl(kl, self.cfg.free_bits), kl.sum(-1).mean().detach()
