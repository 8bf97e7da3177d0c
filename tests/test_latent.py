import math

import pytest
import torch

from worldjepa.models.latent import GaussianLatent, LatentConfig, free_bits_kl, gaussian_kl


def test_kl_arithmetic():
    z, o = torch.zeros(3), torch.ones(3)
    assert torch.allclose(gaussian_kl(z, o, z, o), torch.zeros(3))
    assert torch.allclose(gaussian_kl(o, o, z, o), torch.full((3,), 0.5))  # (mu diff)^2 / 2
    # KL(N(0, 0.5^2) || N(0, 1)) = log 2 + 0.25 / 2 - 0.5
    assert torch.allclose(gaussian_kl(z, o * 0.5, z, o), torch.full((3,), math.log(2) + 0.125 - 0.5))


def test_free_bits_clip_and_gradient():
    small = torch.full((4, 8), 0.05, requires_grad=True)  # 0.4 nats per step < 1
    loss = free_bits_kl(small, 1.0)
    assert torch.isclose(loss, torch.tensor(1.0))
    loss.backward()
    assert torch.all(small.grad == 0)  # below the free bits: no pressure
    big = torch.full((4, 8), 0.5, requires_grad=True)  # 4 nats per step
    free_bits_kl(big, 1.0).backward()
    assert torch.all(big.grad > 0)


def test_posterior_sees_the_target_and_the_prior_does_not():
    torch.manual_seed(0)
    lat = GaussianLatent(16, 2, LatentConfig(z_dim=4))
    s, a = torch.randn(5, 16), torch.randn(5, 2)
    nxt = torch.randn(5, 16, requires_grad=True)
    mu_q, _ = lat.posterior(s, a, nxt)
    (g,) = torch.autograd.grad(mu_q.sum(), nxt)
    assert g.abs().sum() > 0
    mu_p, std_p = lat.prior(s, a)
    assert torch.autograd.grad(mu_p.sum(), nxt, allow_unused=True)[0] is None  # no path from the target
    assert torch.all(std_p >= lat.cfg.min_std)


def test_latent_covers_both_modes_where_a_deterministic_model_averages():
    """Tiny bimodal data: from x, the next value is x + 1 or x - 1 (a coin flip).
    A deterministic regressor predicts about x; the latent model's prior samples land
    near both x + 1 and x - 1."""
    torch.manual_seed(0)
    lat = GaussianLatent(1, 1, LatentConfig(z_dim=2, hidden=32, free_bits=0.0, kl_weight=1.0))
    dec = torch.nn.Sequential(torch.nn.Linear(1 + 2, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    det = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam([*lat.parameters(), *dec.parameters(), *det.parameters()], lr=3e-3)
    a0 = torch.zeros(256, 1)
    for _ in range(1500):
        x = torch.rand(256, 1) * 2 - 1
        y = x + torch.where(torch.rand(256, 1) < 0.5, 1.0, -1.0)
        post, prior = lat.posterior(x, a0, y), lat.prior(x, a0)
        z = lat.sample(*post)
        kl, _ = lat.kl_loss(post, prior)
        loss = (dec(torch.cat([x, z], -1)) - y).pow(2).mean() + 0.05 * kl + (det(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x = torch.linspace(-0.8, 0.8, 20).unsqueeze(-1)
        assert (det(x) - x).abs().mean() < 0.2  # the deterministic model predicts the mean
        xs = x.repeat(16, 1)
        samples = dec(torch.cat([xs, lat.sample(*lat.prior(xs, torch.zeros_like(xs)))], -1)).view(16, 20)
        near_up = ((samples - (x.T + 1)).abs() < 0.3).any(0)
        near_down = ((samples - (x.T - 1)).abs() < 0.3).any(0)
    assert near_up.float().mean() >= 0.9 and near_down.float().mean() >= 0.9


@pytest.mark.parametrize("kw", [{"z_dim": -1}, {"free_bits": -0.1}, {"kl_weight": -1.0}])
def test_bad_latent_settings(kw):
    with pytest.raises(ValueError, match="invalid latent"):
        LatentConfig(**kw)
