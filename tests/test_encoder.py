import pytest
import torch

from worldjepa.losses import SIGReg, vicreg_terms
from worldjepa.models.encoder import EncoderConfig, VideoEncoder
from worldjepa.models.masks import LONG, SHORT, MaskSpec, block_mask, make_masks
from worldjepa.models.rope import apply_rope, rope_angles

SMALL = EncoderConfig(image_size=32, patch=8, tubelet=2, dim=48, depth=2, heads=2)


def clip(B=2, T=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, T, size, size, 3), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("pos", ["rope", "sincos"])
def test_encoder_shapes(pos):
    cfg = EncoderConfig(**{**SMALL.to_dict(), "pos": pos})
    enc = VideoEncoder(cfg)
    z = enc(clip())
    assert z.shape == (2, 2 * 16, 48)  # (B, T/tubelet * 4*4, D)
    keep = torch.tensor([[0, 3, 7], [1, 2, 31]])
    assert enc(clip(), keep=keep).shape == (2, 3, 48)
    f = enc.encode_frames(clip(T=3))
    assert f.shape == (2, 3, 16, 48)
    # encoding a frame on its own equals encoding the clip of that frame repeated
    frame = clip(T=1)
    torch.testing.assert_close(enc.encode_frames(frame)[:, 0], enc(frame.expand(-1, 2, -1, -1, -1)))


def test_context_encoding_sees_only_kept_tokens():
    """Changing pixels outside the kept tokens' patches leaves the context embeddings unchanged."""
    enc = VideoEncoder(SMALL)
    x = clip(B=1)
    keep = torch.tensor([[0, 1, 4, 5]])  # first tubelet, top-left 2x2 patches (pixels [0:16, 0:16])
    y = x.clone()
    y[:, :, 16:, :, :] = 0
    y[:, 2:] = 0  # second tubelet
    torch.testing.assert_close(enc(x, keep=keep), enc(y, keep=keep))


def test_rope_depends_only_on_relative_position():
    torch.manual_seed(0)
    hd = 24
    q, k = torch.randn(1, 1, 1, hd), torch.randn(1, 1, 1, hd)

    def score(pq, pk):
        cq, sq = rope_angles(torch.tensor([pq], dtype=torch.float32), hd)
        ck, sk = rope_angles(torch.tensor([pk], dtype=torch.float32), hd)
        return (apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum()

    a = score([1.0, 2.0, 3.0], [0.0, 5.0, 1.0])
    b = score([4.0, 0.0, 7.0], [3.0, 3.0, 5.0])  # same differences, shifted
    c = score([1.0, 2.0, 3.0], [0.0, 4.0, 1.0])  # another difference
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    # the rotation keeps norms
    cos, sin = rope_angles(torch.tensor([[2.0, 1.0, 3.0]]), hd)
    torch.testing.assert_close(apply_rope(q, cos, sin).norm(), q.norm())


def test_bad_inputs():
    enc = VideoEncoder(SMALL)
    with pytest.raises(ValueError, match="uint8"):
        enc(clip().float())
    with pytest.raises(ValueError, match=r"shape \(B, T, 32, 32, 3\)"):
        enc(clip(size=40))
    with pytest.raises(ValueError, match="divisible by the tubelet size 2"):
        enc(clip(T=3))
    with pytest.raises(ValueError, match="multiple of patch"):
        EncoderConfig(image_size=60, patch=8)
    with pytest.raises(ValueError, match="divisible by heads"):
        EncoderConfig(dim=100, heads=3)


def test_masks_are_reproducible_and_cover_as_specified():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = make_masks(8, (2, 8, 8), (SHORT, LONG), g1)
    b = make_masks(8, (2, 8, 8), (SHORT, LONG), g2)
    for (c1, t1), (c2, t2) in zip(a, b):
        assert torch.equal(c1, c2) and torch.equal(t1, t2)
    for ctx, tgt in a:
        for i in range(8):
            assert not set(ctx[i].tolist()) & set(tgt[i].tolist())  # disjoint
        assert 0.5 <= tgt.shape[1] / 128 <= 0.8
    # blocks span the whole clip in time: the same spatial pattern in every tubelet
    g = torch.Generator().manual_seed(0)
    m = block_mask(SHORT, 4, 8, 8, g).view(4, 8, 8)
    assert all(torch.equal(m[0], m[t]) for t in range(4))
    fracs = torch.tensor([float(block_mask(SHORT, 1, 8, 8, g).float().mean()) for _ in range(200)])
    assert 0.55 <= fracs.min() and fracs.max() <= 0.8 and 0.6 < fracs.mean() < 0.75
    other = make_masks(8, (2, 8, 8), (SHORT,), torch.Generator().manual_seed(4))[0][1]
    assert other.shape != a[0][1].shape or not torch.equal(other, a[0][1])  # another seed, other masks


def test_mask_spec_validation():
    with pytest.raises(ValueError, match="scale"):
        MaskSpec(blocks=2, scale=1.5)
    with pytest.raises(ValueError, match="aspect"):
        MaskSpec(aspect=(2.0, 1.0))


def test_sigreg_scores_gaussian_low_and_others_high():
    g = torch.Generator().manual_seed(0)
    sig = SIGReg(num_directions=128)
    gauss = torch.randn(1024, 32, generator=g)
    low = sig(gauss, generator=torch.Generator().manual_seed(1))
    shifted = sig(gauss + 1.0, generator=torch.Generator().manual_seed(1))
    squashed = sig(gauss * 0.1, generator=torch.Generator().manual_seed(1))
    collapsed = sig(torch.zeros(1024, 32), generator=torch.Generator().manual_seed(1))
    assert low < 1.0
    assert shifted > 20 * low and squashed > 20 * low and collapsed > 20 * low
    # differentiable: the gradient pushes collapsed embeddings apart
    z = (0.1 * gauss).requires_grad_()
    sig(z, generator=torch.Generator().manual_seed(1)).backward()
    assert z.grad.abs().sum() > 0


def test_vicreg_terms():
    g = torch.Generator().manual_seed(0)
    wide = 2.0 * torch.randn(512, 16, generator=g)
    var, cov = vicreg_terms(wide)
    assert var == 0 and cov < 0.5
    var_c, _ = vicreg_terms(0.01 * torch.randn(512, 16, generator=g))
    assert var_c > 0.9
    correlated = torch.randn(512, 1, generator=g).expand(512, 16) + 0.01 * torch.randn(512, 16, generator=g)
    assert vicreg_terms(correlated)[1] > 10


def test_ema_update():
    from worldjepa.train.pretrain import JEPA, JEPAConfig

    m = JEPA(SMALL, JEPAConfig())
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in m.target_encoder.parameters()]
    m.ema_update(0.9)
    for t0, t1, c in zip(before, m.target_encoder.parameters(), m.encoder.parameters()):
        torch.testing.assert_close(t1, 0.9 * t0 + 0.1 * c)
    assert not any(p.requires_grad for p in m.target_encoder.parameters())
