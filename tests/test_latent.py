import math

import pytest
import torch

from worldjepa.models.latent import Latent, LatentConfig, RunningNorm, categorical_kl, free_bits_kl, gaussian_kl


def test_kl_arithmetic():
    z, o = torch.zeros(3), torch.ones(3)
    assert torch.allclose(gaussian_kl(z, o, z, o), torch.zeros(3))
    assert torch.allclose(gaussian_kl(o, o, z, o), torch.full((3,), 0.5))  # (mu diff)^2 / 2
    # KL(N(0, 0.5^2) || N(0, 1)) = log 2 + 0.25 / 2 - 0.5
    assert torch.allclose(gaussian_kl(z, o * 0.5, z, o), torch.full((3,), math.log(2) + 0.125 - 0.5))


def test_categorical_kl_arithmetic():
    u = torch.full((2, 4), 0.25).log()
    assert torch.allclose(categorical_kl(u, u), torch.zeros(2))
    q = torch.tensor([[1.0 - 3e-6, 1e-6, 1e-6, 1e-6]]).log()  # (almost) one code, against uniform: log 4
    assert torch.allclose(categorical_kl(q, u[:1]), torch.tensor([math.log(4)]), atol=1e-4)
    half = torch.tensor([[0.5, 0.5, 1e-9, 1e-9]]).log()
    assert torch.allclose(categorical_kl(half, u[:1]), torch.tensor([math.log(2)]), atol=1e-4)


def test_free_bits_clip_and_gradient():
    small = torch.full((4,), 0.4, requires_grad=True)  # 0.4 nats per step < 1
    loss = free_bits_kl(small, 1.0)
    assert torch.isclose(loss, torch.tensor(1.0))
    loss.backward()
    assert torch.all(small.grad == 0)  # below the free bits: no pressure
    big = torch.full((4,), 4.0, requires_grad=True)  # 4 nats per step
    free_bits_kl(big, 1.0).backward()
    assert torch.all(big.grad > 0)


def test_kl_balance_splits_the_gradient_between_prior_and_posterior():
    torch.manual_seed(0)
    lat = Latent(3, 1, LatentConfig(z_dim=4))
    q = (torch.randn(5, 4, requires_grad=True), torch.rand(5, 4) + 0.5)
    p = (torch.randn(5, 4, requires_grad=True), torch.rand(5, 4) + 0.5)
    plain = torch.autograd.grad(lat.kl(q, p).mean(), [q[0], p[0]])
    bal = torch.autograd.grad(lat.balanced_kl(q, p, 0.8, 0.0), [q[0], p[0]])
    assert torch.allclose(bal[0], 0.2 * plain[0], atol=1e-6) and torch.allclose(bal[1], 0.8 * plain[1], atol=1e-6)


def test_categorical_samples_follow_the_probabilities_and_pass_gradients():
    lat = Latent(3, 1, LatentConfig(z_dim=8, kind="categorical", classes=4, unimix=0.0))
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0]).repeat(2).requires_grad_(True)
    dist = lat._dist(logits.expand(20000, 8))
    z = lat.sample(dist, generator=torch.Generator().manual_seed(0))
    assert z.shape == (20000, 8) and torch.allclose(z.detach().sum(-1), torch.full((20000,), 2.0))  # one code per group
    freq = z.detach().view(20000, 2, 4).mean(0)
    assert torch.allclose(freq, torch.tensor([0.0, 1.0, 2.0, -1.0]).softmax(0).expand(2, 4), atol=0.02)
    (z * torch.arange(8.0)).sum().backward()  # straight-through: the gradient reaches the logits
    assert logits.grad.abs().sum() > 0
    assert torch.equal(lat.mode(dist)[0], torch.tensor([0.0, 0, 1, 0, 0, 0, 1, 0]))


def test_stratified_draws_take_each_code_k_times_its_probability_and_each_is_still_a_draw():
    """Systematic sampling (``stratified_noise`` + ``sample_inverse``): in every set of k
    draws a code of probability p is taken floor(k p) or ceil(k p) times, so no code of
    p >= 1/k is missed; one draw alone follows the probabilities; the groups are drawn
    independently; the straight-through gradient still reaches the logits."""
    lat = Latent(3, 1, LatentConfig(z_dim=8, kind="categorical", classes=4, unimix=0.0))
    probs = torch.tensor([[0.62, 0.3, 0.065, 0.015], [0.1, 0.2, 0.3, 0.4]])  # two groups
    logits = probs.log().flatten().requires_grad_(True)
    sets, k = 3000, 16
    dist = lat._dist(logits.expand(sets * k, 8))
    z = lat.sample_inverse(dist, lat.stratified_noise(sets, k, torch.Generator().manual_seed(0)))
    counts = z.detach().round().view(sets, k, 2, 4).sum(1)  # (sets, groups, codes)
    assert ((counts >= (k * probs).floor()) & (counts <= (k * probs).ceil())).all()
    assert (counts[:, 0, 2] >= 1).all()  # p = 0.065 >= 1/16: never missed ...
    iid = lat.sample(dist, generator=torch.Generator().manual_seed(0)).detach().round().view(sets, k, 2, 4).sum(1)
    assert (iid[:, 0, 2] == 0).float().mean() > 0.25  # ... where independent draws miss it (1 - 0.065)^16 = 34 % of the time
    first = z.detach().view(sets, k, 8)[:, 0].view(sets, 2, 4).mean(0)  # the first draw of each set alone
    assert torch.allclose(first, probs, atol=0.03)
    rows = z.detach().view(sets * k, 2, 4).argmax(-1)
    both = torch.stack([(rows[:, 0] == 0) & (rows[:, 1] == j) for j in range(4)], 0).float().mean(1)
    assert torch.allclose(both, 0.62 * probs[1], atol=0.02)  # a row's groups are independent
    (z * torch.arange(8.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="uniforms of last dimension 2"):
        lat.sample_inverse(dist, torch.rand(sets * k, 8))
    with pytest.raises(ValueError, match="sets >= 1 and k >= 1"):
        lat.stratified_noise(1, 0)


def test_stratified_gaussian_draws_fill_every_stratum_once():
    lat = Latent(3, 1, LatentConfig(z_dim=3))
    sets, k = 2000, 8
    mu, std = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.5, 2.0])
    z = lat.sample_inverse((mu.expand(sets * k, 3), std.expand(sets * k, 3)), lat.stratified_noise(sets, k, torch.Generator().manual_seed(1)))
    cdf = 0.5 * (1 + torch.erf((z - mu) / std / 2**0.5))  # back to the uniforms
    strata = (cdf * k).floor().view(sets, k, 3).sort(1).values
    assert torch.equal(strata, torch.arange(k).view(1, k, 1).expand(sets, k, 3).to(strata))  # one draw per stratum
    first = z.view(sets, k, 3)[:, 0]  # one draw alone: N(mu, std^2)
    assert torch.allclose(first.mean(0), mu, atol=0.1) and torch.allclose(first.std(0), std, rtol=0.06)


def test_truncated_prior_never_draws_the_codes_below_min_prob():
    lat = Latent(3, 1, LatentConfig(z_dim=4, kind="categorical", classes=4, unimix=0.0))
    probs = torch.tensor([[0.55, 0.3, 0.1, 0.05], [0.4, 0.3, 0.2, 0.1]])
    dist = (probs.log()[:, None, :],)  # (2, 1 group, 4 codes)
    kept = lat.truncate(dist, 0.15)[0].exp()[:, 0]
    assert torch.allclose(kept, torch.tensor([[0.55 / 0.85, 0.3 / 0.85, 0, 0], [0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0]]))
    assert lat.truncate(dist, 0.0) is dist
    flat = (torch.tensor([0.26, 0.25, 0.25, 0.24]).log()[None, None],)
    assert torch.allclose(lat.truncate(flat, 0.9)[0].exp(), torch.tensor([1.0, 0, 0, 0]))  # the most likely code always stays
    cut = lat.truncate(dist, 0.15)[0][:1]
    z = lat.sample((cut.expand(5000, -1, -1),), generator=torch.Generator().manual_seed(0)).view(5000, 4)
    assert z[:, 2:].sum() == 0 and z[:, 0].mean().item() == pytest.approx(0.55 / 0.85, abs=0.03)
    z_all = lat.sample((dist[0][:1].expand(5000, -1, -1),), generator=torch.Generator().manual_seed(0)).view(5000, 4)
    assert z_all[:, 2:].sum() > 0  # without the cut those codes are drawn
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="min_prob .* must be in \\[0, 1\\)"):
            lat.truncate(dist, bad)
    with pytest.raises(ValueError, match="this model's z is Gaussian"):
        Latent(3, 1, LatentConfig(z_dim=4)).truncate((torch.zeros(2, 4), torch.ones(2, 4)), 0.1)


def test_running_norm_centres_scales_and_only_learns_when_asked():
    norm = RunningNorm(2, momentum=1.0)
    x = torch.randn(4000, 2) * torch.tensor([0.01, 0.07]) + torch.tensor([3.0, -1.0])
    y = norm(x, update=True)
    assert torch.allclose(y.mean(0), torch.zeros(2), atol=1e-3)
    assert y.pow(2).mean() == pytest.approx(1.0, rel=0.02)  # one global scale ...
    assert y[:, 1].std() / y[:, 0].std() == pytest.approx(7.0, rel=0.05)  # ... so the dims keep their ratio
    before = norm.mean.clone()
    norm(x + 10.0)  # no update unless asked
    norm.eval()
    norm(x + 10.0, update=True)  # nor in eval mode
    assert torch.equal(norm.mean, before)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_posterior_sees_the_target_and_the_prior_does_not(kind):
    torch.manual_seed(0)
    lat = Latent(16, 2, LatentConfig(z_dim=4, kind=kind, classes=2))
    s, a = torch.randn(5, 16), torch.randn(5, 2)
    nxt = torch.randn(5, 16, requires_grad=True)
    q = lat.posterior(s, a, nxt)[0]
    (g,) = torch.autograd.grad(q.sum(), nxt)
    assert g.abs().sum() > 0
    p = lat.prior(s, a)
    assert torch.autograd.grad(p[0].sum(), nxt, allow_unused=True)[0] is None  # no path from the target
    if kind == "gaussian":
        assert torch.all(p[1] >= lat.cfg.min_std) and torch.all(p[1] <= lat.cfg.max_std)


@pytest.mark.parametrize("kind", ["gaussian", "categorical"])
def test_latent_covers_both_modes_where_a_deterministic_model_averages(kind):
    """Tiny bimodal data: from x, the next value is x + 1 or x - 1 (a coin flip).
    A deterministic regressor predicts about x; the latent model's prior samples land
    near both x + 1 and x - 1."""
    torch.manual_seed(0)
    zd = 2 if kind == "gaussian" else 4
    lat = Latent(1, 1, LatentConfig(z_dim=zd, hidden=32, kind=kind, classes=4))
    dec = torch.nn.Sequential(torch.nn.Linear(1 + zd, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    det = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam([*lat.parameters(), *dec.parameters(), *det.parameters()], lr=3e-3)
    a0 = torch.zeros(256, 1)
    for _ in range(1500):
        x = torch.rand(256, 1) * 2 - 1
        y = x + torch.where(torch.rand(256, 1) < 0.5, 1.0, -1.0)
        post, prior = lat.posterior(x, a0, y), lat.prior(x, a0)
        z = lat.sample(post)
        kl = lat.balanced_kl(post, prior, 0.8, 0.0)
        loss = (dec(torch.cat([x, z], -1)) - y).pow(2).mean() + 0.05 * kl + (det(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x = torch.linspace(-0.8, 0.8, 20).unsqueeze(-1)
        assert (det(x) - x).abs().mean() < 0.2  # the deterministic model predicts the mean
        xs = x.repeat(16, 1)
        samples = dec(torch.cat([xs, lat.sample(lat.prior(xs, torch.zeros_like(xs)))], -1)).view(16, 20)
        near_up = ((samples - (x.T + 1)).abs() < 0.3).any(0)
        near_down = ((samples - (x.T - 1)).abs() < 0.3).any(0)
    assert near_up.float().mean() >= 0.9 and near_down.float().mean() >= 0.9


@pytest.mark.parametrize("kw", [{"z_dim": -1}, {"kind": "vq"}, {"z_dim": 6, "kind": "categorical", "classes": 4}, {"unimix": 1.0}, {"min_std": 2.0}])
def test_bad_latent_settings(kw):
    with pytest.raises(ValueError, match="invalid latent"):
        LatentConfig(**kw)


def test_prior_refit_learns_the_winning_codes_and_keeps_the_best_held_out_epoch():
    """fit_prior on transitions whose winning code is a function of the state and action:
    the prior learns it (held-out cross-entropy from log 8 to a fraction of it, the right
    code most likely in 90 % of held-out cases), and only the prior network changes."""
    from worldjepa.train.prior_fit import fit_prior, prior_ce

    torch.manual_seed(0)
    lat = Latent(3, 2, LatentConfig(z_dim=8, kind="categorical", classes=8, hidden=32))
    gen = torch.Generator().manual_seed(0)

    def data(n):
        f, a = torch.randn(n, 3, generator=gen), torch.rand(n, 2, generator=gen) * 2 - 1
        return f, a, (f[:, 0] > 0).long() * 4 + (a[:, 0] > 0).long() * 2 + (f[:, 1] > 0.5).long()

    train, val = data(2000), data(500)
    post = {k: v.clone() for k, v in lat.post_net.state_dict().items()}
    info = fit_prior(lat, train, val, epochs=40, lr=3e-3)
    assert info["val_ce_before"] > 1.8 and info["val_ce_after"] < 0.5 * info["val_ce_before"]
    with torch.no_grad():
        kept = float(prior_ce(lat, *val))
    assert abs(kept - info["val_ce_after"]) < 1e-5  # the kept epoch is the one reported
    with torch.no_grad():
        best = lat.code_log_probs(lat.prior(val[0], val[1])).argmax(-1)
    assert (best == val[2]).float().mean() > 0.9
    assert all(torch.equal(v, lat.post_net.state_dict()[k]) for k, v in post.items())
    with pytest.raises(ValueError, match="epochs >= 1"):
        fit_prior(lat, train, val, epochs=0)


def test_prior_refit_on_sets_of_fitting_codes():
    """With a mask of the codes that fit each step (``code_targets(tolerance > 0)``), the
    cross-entropy is minus the log of the prior's mass on the set, and the fit moves the
    mass onto the set however it splits inside it."""
    from worldjepa.train.prior_fit import fit_prior, prior_ce

    torch.manual_seed(0)
    lat = Latent(3, 2, LatentConfig(z_dim=8, kind="categorical", classes=8, hidden=32, unimix=0.0))
    f, a = torch.randn(4, 3), torch.zeros(4, 2)
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[:, :3] = True
    with torch.no_grad():
        logp = lat.code_log_probs(lat.prior(f, a))
        assert float(prior_ce(lat, f, a, mask)) == pytest.approx(float(-logp[:, :3].exp().sum(-1).log().mean()), rel=1e-5)
    gen = torch.Generator().manual_seed(1)

    def data(n):  # codes 0-2 all fit where f0 > 0, codes 5-6 elsewhere
        f, a = torch.randn(n, 3, generator=gen), torch.rand(n, 2, generator=gen) * 2 - 1
        m = torch.zeros(n, 8, dtype=torch.bool)
        m[f[:, 0] > 0, :3] = True
        m[f[:, 0] <= 0, 5:7] = True
        return f, a, m

    train, val = data(2000), data(500)
    fit_prior(lat, train, val, epochs=30, lr=3e-3)
    with torch.no_grad():
        on_set = (lat.code_log_probs(lat.prior(val[0], val[1])).exp() * val[2]).sum(-1)
    assert on_set.mean() > 0.95
