import pytest
import torch

from worldjepa.models.predictor import ACPredictor, AttentivePooler, PredictorConfig


@pytest.fixture(params=[1, 4, 0], ids=["K1", "K4", "all"])
def pred(request):
    torch.manual_seed(0)
    cfg = PredictorConfig(enc_dim=32, grid=4, num_state_tokens=request.param, action_dim=3, proprio_dim=2, dim=32, depth=2, heads=2, max_steps=12)
    return ACPredictor(cfg).eval()


def inputs(cfg, B=2, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, T, cfg.tokens_per_state, cfg.enc_dim, generator=g)
    a = torch.rand(B, T, cfg.action_dim, generator=g) * 2 - 1
    p = torch.randn(B, T, cfg.proprio_dim, generator=g)
    return s, a, p


def test_block_causal_no_information_from_the_future(pred):
    s, a, p = inputs(pred.cfg)
    out, prop = pred(s, a, p)
    assert out.shape == s.shape and prop.shape == p.shape
    t = 2
    s2, a2, p2 = s.clone(), a.clone(), p.clone()
    s2[:, t + 1 :] += 5.0
    a2[:, t + 1 :] = -a2[:, t + 1 :]
    p2[:, t + 1 :] += 3.0
    out2, prop2 = pred(s2, a2, p2)
    torch.testing.assert_close(out2[:, : t + 1], out[:, : t + 1])
    torch.testing.assert_close(prop2[:, : t + 1], prop[:, : t + 1])
    assert not torch.allclose(out2[:, t + 1 :], out[:, t + 1 :])
    # the prediction of step t+1 depends on the action taken at step t
    a3 = a.clone()
    a3[:, t] = -a3[:, t]
    assert not torch.allclose(pred(s, a3, p)[0][:, t], out[:, t])


def test_kv_cached_rollout_equals_uncached(pred):
    s, a, p = inputs(pred.cfg, T=8)
    C = 3
    cached, cp = pred.rollout(s[:, :C], a, p[:, :C], use_cache=True)
    plain, pp = pred.rollout(s[:, :C], a, p[:, :C], use_cache=False)
    assert cached.shape == (2, 8 - C + 1, pred.cfg.tokens_per_state, 32)
    torch.testing.assert_close(cached, plain, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cp, pp, rtol=1e-4, atol=1e-5)


def test_bad_inputs(pred):
    s, a, p = inputs(pred.cfg)
    with pytest.raises(ValueError, match=r"actions must have shape \(B, T, 3\)"):
        pred(s, a[..., :2], p)
    bad = a.clone()
    bad[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pred(s, bad, p)
    with pytest.raises(ValueError, match="pass proprio"):
        pred(s, a, None)
    s_long, a_long, p_long = inputs(pred.cfg, T=4)
    with pytest.raises(ValueError, match="max_steps=12"):
        pred.rollout(s_long[:, :2], torch.zeros(2, 20, 3), p_long[:, :2])


def test_attentive_pooler_shapes():
    pool = AttentivePooler(32, 4, heads=2, grid=4)
    assert pool(torch.randn(3, 16, 32)).shape == (3, 4, 32)
    with pytest.raises(ValueError, match="16 patch tokens"):
        pool(torch.randn(3, 9, 32))


def test_attentive_pooler_sees_where():
    """The same object in another patch gives another pooled token (positions reach the pooler)."""
    torch.manual_seed(0)
    pool = AttentivePooler(32, 1, heads=2, grid=4).eval()
    pool.queries.data.normal_()  # a trained, non-uniform query (without positions, moving a token would change nothing)
    bg, obj = torch.zeros(32), torch.randn(32)
    a, b = torch.stack([bg] * 16), torch.stack([bg] * 16)
    a[0], b[15] = obj, obj
    with torch.no_grad():
        pa, pb = pool(a[None]), pool(b[None])
    assert (pa - pb).abs().mean() > 1e-2


def test_proprio_residual_predicts_the_change():
    """proprio_residual: next proprio = the step's proprio + the head's output, in the
    teacher-forced pass and in the cached rollout alike; an untrained head starts near copy."""
    torch.manual_seed(0)
    cfg = PredictorConfig(enc_dim=32, grid=4, num_state_tokens=1, action_dim=3, proprio_dim=2, dim=32, depth=2, heads=2, max_steps=12, proprio_residual=True)
    res = ACPredictor(cfg).eval()
    s, a, p = inputs(cfg, T=6)
    _, prop = res(s, a, p)
    assert (prop - p).abs().mean() < 0.5 * (prop - p.roll(1, 0)).abs().mean()
    # the same weights without the flag predict exactly the change
    plain = ACPredictor(PredictorConfig(**{**cfg.__dict__, "proprio_residual": False})).eval()
    plain.load_state_dict(res.state_dict())
    torch.testing.assert_close(prop - p, plain(s, a, p)[1])
    cached, cp = res.rollout(s[:, :2], a, p[:, :2], use_cache=True)
    _, pp = res.rollout(s[:, :2], a, p[:, :2], use_cache=False)
    torch.testing.assert_close(cp, pp, rtol=1e-4, atol=1e-5)


def test_proprio_skip_adds_a_linear_map_of_proprio_and_action():
    """proprio_skip: starts at zero (the same prediction as without it), then adds exactly
    W [proprio, action] + b to the predicted change, in the cached rollout too; it learns a
    linear dynamics on its own; it is refused without proprio_residual."""
    torch.manual_seed(0)
    base = dict(enc_dim=32, grid=4, num_state_tokens=1, action_dim=3, proprio_dim=2, dim=32, depth=2, heads=2, max_steps=12, proprio_residual=True)
    cfg = PredictorConfig(**base, proprio_skip=True)
    sk = ACPredictor(cfg).eval()
    plain = ACPredictor(PredictorConfig(**base)).eval()
    plain.load_state_dict({k: v for k, v in sk.state_dict().items() if not k.startswith("proprio_skip.")})
    s, a, p = inputs(cfg, T=6)
    torch.testing.assert_close(sk(s, a, p)[1], plain(s, a, p)[1])
    with torch.no_grad():
        sk.proprio_skip.weight.normal_()
        sk.proprio_skip.bias.normal_()
    _, prop = sk(s, a, p)
    expect = plain(s, a, p)[1] + torch.cat([p, a], -1) @ sk.proprio_skip.weight.T + sk.proprio_skip.bias
    torch.testing.assert_close(prop, expect)
    _, cp = sk.rollout(s[:, :2], a, p[:, :2], use_cache=True)
    _, pp = sk.rollout(s[:, :2], a, p[:, :2], use_cache=False)
    torch.testing.assert_close(cp, pp, rtol=1e-4, atol=1e-5)
    # a linear dynamics (next = p + 0.3 a[:2]) is learned by the skip
    torch.manual_seed(1)
    train = ACPredictor(cfg)
    opt = torch.optim.Adam(train.parameters(), 3e-3)
    losses = []
    for _ in range(150):
        s, a, p = inputs(cfg, B=16, T=4, seed=len(losses))
        _, prop = train(s, a, p)
        loss = ((prop - (p + 0.3 * a[..., :2])) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    with pytest.raises(ValueError, match="proprio_skip.*proprio_residual"):
        PredictorConfig(**{**base, "proprio_residual": False}, proprio_skip=True)
