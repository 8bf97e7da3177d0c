"""Per-step latent variable z for multimodal futures: Gaussian or categorical, KL with free bits.

The predictor's step t can go several ways from the same history and action; z_t says
which. In training z_t is drawn from a **posterior** q(z_t | s_t, a_t, s_t+1) that sees
the real next state; at test time from a **prior** p(z_t | s_t, a_t) that does not. The
KL(q || p) term trains the prior and limits what z carries: it is clipped from below at
``free_bits`` nats per step (no pressure below that) and weighted, so that the path
"target -> z -> prediction" cannot simply copy the next state.

Two kinds (``kind``):

* ``gaussian``: z ~ N(mu, std^2) of ``z_dim`` dimensions, reparameterised. Its prior is
  unimodal, so two distinct outcomes must be told apart by where a sample falls.
* ``categorical``: ``z_dim / classes`` groups of ``classes`` one-hot codes, sampled with
  the straight-through estimator (DreamerV2). A prior over codes can put half its mass on
  each of two outcomes, which is what a coin-flip future needs. The groups are independent
  under the prior, so a coin flip must live in one group: on Hazard, with 2 groups of 4
  codes, the posterior spelled "up" and "down" across both groups, and the prior, a
  product of the two groups' marginals, could not put its mass on those combinations
  (47 % on the pushing codes where a gust was certain, against 98 % with one group of 8;
  docs/BENCHMARKS.md §5). With ``z_dim == classes`` (one group) the prior can hold any
  distribution over the codes.

Inputs are the pooled state tokens (mean over K, plus proprio) of step t (and t+1 and the
change for the posterior). They are standardised by running statistics first: the pooled
features are mostly a constant offset with small per-dimension variation, and a transition
that matters (a gust's 0.18 m push) moves them by a few hundredths, too little for the
heads to pick up at initialisation; unnormalised, the posterior stayed uninformative and
the predictor learned to ignore z (posterior collapse).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from worldjepa.models.vit import mlp

KINDS = ("gaussian", "categorical")


@dataclass(frozen=True)
class LatentConfig:
    """Latent-variable sizes (configs/predictor/*.yaml, keys ``z_*``)."""

    z_dim: int = 0  # 0 = deterministic predictor; categorical: groups x classes (one-hot width)
    hidden: int = 128
    kind: str = "gaussian"  # gaussian | categorical
    classes: int = 4  # categorical: codes per group
    min_std: float = 0.05  # gaussian: smallest std
    max_std: float = 1.0  # gaussian: largest std (unbounded, an ignored z's std drifted to 16)
    unimix: float = 0.01  # categorical: share of a uniform mixed into every distribution (no zero probabilities)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"invalid latent settings: kind must be one of {KINDS}, got {self.kind!r}")
        if self.z_dim < 0 or self.hidden <= 0 or not 0 < self.min_std < self.max_std or not 0 <= self.unimix < 1 or self.classes < 2:
            raise ValueError(f"invalid latent settings: {self}")
        if self.kind == "categorical" and self.z_dim % self.classes:
            raise ValueError(f"invalid latent settings: categorical z_dim {self.z_dim} must be a multiple of classes {self.classes}")

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_kl(mu_q: torch.Tensor, std_q: torch.Tensor, mu_p: torch.Tensor, std_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, std_q^2) || N(mu_p, std_p^2)) per dimension (elementwise)."""
    var_q, var_p = std_q.pow(2), std_p.pow(2)
    return torch.log(std_p / std_q) + (var_q + (mu_q - mu_p).pow(2)) / (2 * var_p) - 0.5


def categorical_kl(logp_q: torch.Tensor, logp_p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) of categoricals given log-probabilities (..., C) -> (...,)."""
    return (logp_q.exp() * (logp_q - logp_p)).sum(-1)


def check_min_prob(min_prob: float) -> None:
    """``min_prob`` (the smallest prior probability a code is drawn with) must be in [0, 1)."""
    if not 0 <= min_prob < 1:
        raise ValueError(f"min_prob (the smallest prior probability a code is drawn with) must be in [0, 1), got {min_prob}")


def free_bits_kl(kl_step: torch.Tensor, free_bits: float) -> torch.Tensor:
    """KL in nats per step (...,): clip each step's KL below at ``free_bits``, then mean."""
    return kl_step.clamp(min=free_bits).mean()


class RunningNorm(nn.Module):
    """Centre features (..., D) by their running per-dimension mean and scale them by one
    running global standard deviation (the root mean of the per-dimension variances).

    One scale, not one per dimension: a dimension that hardly varied while the statistics
    were gathered would otherwise be blown up hundreds of times once the pooler's features
    drift (the Gaussian heads' outputs then reached std 16). The statistics are updated (an
    exponential moving average) only when ``update`` is true in training mode; the gradient
    sees a fixed affine map, so training and evaluation normalise alike.
    """

    def __init__(self, dim: int, momentum: float = 0.02, eps: float = 1e-8) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, update: bool = False) -> torch.Tensor:
        if update and self.training:
            with torch.no_grad():
                flat = x.detach().reshape(-1, x.shape[-1]).float()
                m, v = flat.mean(0), flat.var(0, unbiased=False)
                w = 1.0 if int(self.count) == 0 else self.momentum
                self.mean.lerp_(m, w)
                self.var.lerp_(v, w)
                self.count += 1
        return (x - self.mean.to(x.dtype)) * torch.rsqrt(self.var.mean() + self.eps).to(x.dtype)


class Latent(nn.Module):
    """Prior and posterior heads over a per-step z (``cfg.kind``). A distribution is a tuple
    of tensors: (mu, std) for the Gaussian, (log-probabilities (..., G, C),) for the
    categorical; ``sample``, ``mode`` and ``kl`` take such tuples."""

    def __init__(self, state_dim: int, action_dim: int, cfg: LatentConfig) -> None:
        super().__init__()
        if cfg.z_dim <= 0:
            raise ValueError("a latent variable needs z_dim > 0")
        self.cfg = cfg
        out = 2 * cfg.z_dim if cfg.kind == "gaussian" else cfg.z_dim
        self.norm_state = RunningNorm(state_dim)
        self.norm_delta = RunningNorm(state_dim)
        self.prior_net = mlp(state_dim + action_dim, [cfg.hidden, cfg.hidden], out)
        # the posterior also gets the change next - current: what z must say (which way a
        # push went) is in that difference, which an MLP otherwise has to learn to form
        self.post_net = mlp(3 * state_dim + action_dim, [cfg.hidden, cfg.hidden], out)

    def _dist(self, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.cfg.kind == "gaussian":
            mu, raw = out.chunk(2, dim=-1)
            lo, hi = self.cfg.min_std, self.cfg.max_std
            return mu, lo + (hi - lo) * torch.sigmoid(raw)
        C = self.cfg.classes
        probs = out.view(*out.shape[:-1], -1, C).softmax(-1)
        probs = (1 - self.cfg.unimix) * probs + self.cfg.unimix / C
        return (probs.log(),)

    def prior(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """state (..., S), action (..., A) -> the distribution of z_t."""
        return self._dist(self.prior_net(torch.cat([self.norm_state(state), action], -1)))

    def posterior(self, state: torch.Tensor, action: torch.Tensor, next_state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Like ``prior`` but also sees the real next state (training; updates the input statistics)."""
        s, n = self.norm_state(state, update=True), self.norm_state(next_state)
        d = self.norm_delta(next_state - state, update=True)
        return self._dist(self.post_net(torch.cat([s, action, n, d], -1)))

    @property
    def noise_shape(self) -> tuple[int, ...]:
        """Shape of the noise behind one draw: (z_dim,) normals (Gaussian) or (groups, classes) uniforms (categorical)."""
        if self.cfg.kind == "gaussian":
            return (self.cfg.z_dim,)
        return (self.cfg.z_dim // self.cfg.classes, self.cfg.classes)

    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of the noise ``sample`` turns into z: (n, *noise_shape), on the CPU."""
        if self.cfg.kind == "gaussian":
            return torch.randn((n, *self.noise_shape), generator=generator)
        return torch.rand((n, *self.noise_shape), generator=generator)

    def stratified_noise(self, sets: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniforms for ``sample_inverse``: (sets * k, D), the k rows of each set together
        (D = groups for a categorical z, z_dim for a Gaussian one).

        Systematic sampling: in each set, each of the D columns holds the k points
        (u0 + j) / k, j = 0..k-1, of one random offset u0, in a random order of its own. Each
        row alone is uniform, so each draw is still a draw from the distribution, and rows
        of a column are matched to strata independently of other columns and calls (steps).
        Together, a set's k draws take a code of probability p floor(k p) or ceil(k p)
        times, so every code with p >= 1/k at least once, where k independent draws miss it
        with probability (1 - p)^k (0.36 for p = 1/16 and k = 16)."""
        if sets < 1 or k < 1:
            raise ValueError(f"stratified noise needs sets >= 1 and k >= 1, got {sets} and {k}")
        D = self.noise_shape[0]
        order = torch.rand((sets, k, D), generator=generator).argsort(1)
        u0 = torch.rand((sets, 1, D), generator=generator)
        return ((order + u0) / k).reshape(sets * k, D)

    def sample_inverse(self, dist: tuple[torch.Tensor, ...], u: torch.Tensor) -> torch.Tensor:
        """The draw (..., z_dim) that uniforms u (..., D) (``stratified_noise``) pick through
        the distribution's inverse CDF: each group's codes in order (categorical, straight-
        through as ``sample``) or each dimension's normal quantile (Gaussian)."""
        ref = dist[0]
        D = self.noise_shape[0]
        if u.shape[-1] != D:
            raise ValueError(f"sample_inverse needs uniforms of last dimension {D}, got shape {tuple(u.shape)}")
        u = u.to(ref).clamp(1e-6, 1 - 1e-6)
        if self.cfg.kind == "gaussian":
            mu, std = dist
            return mu + std * (math.sqrt(2.0) * torch.erfinv(2 * u - 1))
        probs = ref.exp()  # (..., G, C)
        cum = probs.cumsum(-1)
        idx = (cum < u.unsqueeze(-1) * cum[..., -1:]).sum(-1).clamp(max=self.cfg.classes - 1)
        onehot = nn.functional.one_hot(idx, self.cfg.classes).to(ref)
        return (onehot + probs - probs.detach()).flatten(-2)

    def sample(self, dist: tuple[torch.Tensor, ...], generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """A differentiable sample (..., z_dim): reparameterised (Gaussian) or straight-through one-hot (categorical).

        ``noise`` (..., *noise_shape), e.g. from ``draw_noise``, fixes the draw instead of
        the generator: the same noise gives the same z wherever the distribution is the
        same, which is how planners compare candidates under common random numbers."""
        ref = dist[0]
        dev = "cpu" if generator is not None else ref.device
        if self.cfg.kind == "gaussian":
            mu, std = dist
            eps = torch.randn(mu.shape, generator=generator, device=dev) if noise is None else noise
            return mu + std * eps.to(mu)
        logp = ref
        u = torch.rand(logp.shape, generator=generator, device=dev) if noise is None else noise
        u = u.to(logp).clamp(1e-9, 1 - 1e-9)
        idx = (logp - torch.log(-torch.log(u))).argmax(-1)  # Gumbel-max: a draw from the categorical
        onehot = nn.functional.one_hot(idx, self.cfg.classes).to(logp)
        probs = logp.exp()
        return (onehot + probs - probs.detach()).flatten(-2)

    def truncate(self, dist: tuple[torch.Tensor, ...], min_prob: float) -> tuple[torch.Tensor, ...]:
        """The distribution with every code below ``min_prob`` dropped and the rest renormalised
        (categorical z; each group's most likely code is always kept): the prior's small
        leftover mass on codes that do not fit the state is not drawn as a future. 0 = as is."""
        check_min_prob(min_prob)
        if min_prob == 0:
            return dist
        if self.cfg.kind != "categorical":
            raise ValueError("min_prob > 0 truncates a categorical prior: this model's z is Gaussian (predictor.z_kind=categorical)")
        logp = dist[0]
        keep = (logp.exp() >= min_prob) | (logp == logp.amax(-1, keepdim=True))
        logp = logp.masked_fill(~keep, float("-inf"))
        return (logp - torch.logsumexp(logp, -1, keepdim=True),)

    def all_codes(self, max_codes: int = 4096) -> torch.Tensor:
        """Every value a categorical z can take, (M, z_dim) with M = classes ** groups, in
        the order of ``code_log_probs``. Refused for a Gaussian z or when M > ``max_codes``."""
        if self.cfg.kind != "categorical":
            raise ValueError("all_codes needs a categorical z (predictor.z_kind=categorical)")
        C, G = self.cfg.classes, self.cfg.z_dim // self.cfg.classes
        if C**G > max_codes:
            raise ValueError(f"a categorical z of {G} groups x {C} classes has {C**G} codes, more than {max_codes} to enumerate")
        idx = torch.cartesian_prod(*[torch.arange(C)] * G).reshape(-1, G)  # (M, G)
        return nn.functional.one_hot(idx, C).flatten(-2).float()

    def code_log_probs(self, dist: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """log q(code) of every code in ``all_codes`` order: (..., G, C) log-probabilities -> (..., M)."""
        logp = dist[0]
        G = logp.shape[-2]
        out = logp[..., 0, :]
        for g in range(1, G):  # the groups are independent: log-probabilities add
            out = (out.unsqueeze(-1) + logp[..., g, None, :]).flatten(-2)
        return out

    def mode(self, dist: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The most likely z (..., z_dim): the mean (Gaussian) or the most likely code of each group."""
        if self.cfg.kind == "gaussian":
            return dist[0]
        logp = dist[0]
        return nn.functional.one_hot(logp.argmax(-1), self.cfg.classes).to(logp).flatten(-2)

    def kl(self, q: tuple[torch.Tensor, ...], p: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """KL(q || p) in nats per step (...,)."""
        if self.cfg.kind == "gaussian":
            return gaussian_kl(*q, *p).sum(-1)
        return categorical_kl(q[0], p[0]).sum(-1)

    def balanced_kl(self, q: tuple[torch.Tensor, ...], p: tuple[torch.Tensor, ...], balance: float, free_bits: float) -> torch.Tensor:
        """KL loss with KL balancing (DreamerV2): ``balance`` of it trains the prior towards
        the posterior, the rest the posterior towards the prior, each clipped below at
        ``free_bits`` nats per step. ``balance`` = 0.5 is half the plain KL's gradient."""
        sg = lambda d: tuple(t.detach() for t in d)  # noqa: E731
        return balance * free_bits_kl(self.kl(sg(q), p), free_bits) + (1 - balance) * free_bits_kl(self.kl(q, sg(p)), free_bits)
