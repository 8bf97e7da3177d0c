"""Multi-block spatiotemporal masks for V-JEPA pre-training.

A mask set is the union of several rectangular blocks in (h, w) that span the whole clip
in time. The target is the union; the context is the complement. Two sets are drawn
per sample, as in V-JEPA: short-range (8 blocks of scale 0.15) and long-range (2 blocks
of scale 0.7), with aspect ratios in [0.75, 1.5]. All randomness comes from the
generator passed in, so masks are reproducible from a seed.

On our small token grids (8x8 at 64 px) two blocks of scale 0.7 mask 85 % of a frame on
average (up to 97 %), which leaves almost no context once a batch is trimmed to equal
counts. So the long-range default here is scale 0.5 (68 % masked on average), and a draw
is kept only if its masked fraction lies in ``masked_range`` (default 0.55-0.8, around
V-JEPA's 60-80 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskSpec:
    """One kind of mask: ``blocks`` rectangles, each covering ``scale`` of the frame's area."""

    blocks: int = 8
    scale: float = 0.15
    aspect: tuple[float, float] = (0.75, 1.5)
    masked_range: tuple[float, float] = (0.55, 0.8)  # accepted masked fraction of a frame

    def __post_init__(self) -> None:
        if not 0.0 <= self.masked_range[0] < self.masked_range[1] <= 1.0:
            raise ValueError(f"masked_range must satisfy 0 <= low < high <= 1, got {self.masked_range}")
        if self.blocks <= 0 or not 0.0 < self.scale <= 1.0:
            raise ValueError(f"mask blocks must be > 0 and scale in (0, 1], got {self.blocks}, {self.scale}")
        lo, hi = self.aspect
        if not 0 < lo <= hi:
            raise ValueError(f"aspect range must satisfy 0 < low <= high, got {self.aspect}")


SHORT = MaskSpec(blocks=8, scale=0.15)
LONG = MaskSpec(blocks=2, scale=0.5)


def block_mask(spec: MaskSpec, t: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Boolean (t*h*w,) mask, True on target tokens, in (t, h, w) order. Keeps >= 1 context column."""
    lo, hi = spec.masked_range
    m = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(50):
        m = torch.zeros(h, w, dtype=torch.bool)
        for _ in range(spec.blocks):
            u = torch.rand(2, generator=gen)
            log_lo, log_hi = math.log(spec.aspect[0]), math.log(spec.aspect[1])
            ar = math.exp(log_lo + float(u[0]) * (log_hi - log_lo))
            area = spec.scale * h * w
            bh = max(1, min(h, round(math.sqrt(area * ar))))
            bw = max(1, min(w, round(math.sqrt(area / ar))))
            top = int(torch.randint(0, h - bh + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - bw + 1, (1,), generator=gen))
            m[top : top + bh, left : left + bw] = True
        frac = float(m.float().mean())
        if lo <= frac <= hi and not m.all():
            return m.unsqueeze(0).expand(t, h, w).reshape(-1)
    # no draw fell in the range (tiny grids): keep the last one, with at least one context column
    m[int(torch.randint(0, h, (1,), generator=gen)), int(torch.randint(0, w, (1,), generator=gen))] = False
    return m.unsqueeze(0).expand(t, h, w).reshape(-1)


def make_masks(batch: int, grid: tuple[int, int, int], specs: tuple[MaskSpec, ...], gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Context/target index sets for a batch, one pair per mask spec.

    Counts are made equal across the batch by trimming each sample's sets to the smallest
    count in the batch (random tokens are dropped), so the indices stack into tensors.

    Returns:
        A list with, per spec, (context (B, n_ctx) long, target (B, n_tgt) long).
    """
    t, h, w = grid
    out = []
    for spec in specs:
        masks = [block_mask(spec, t, h, w, gen) for _ in range(batch)]
        n_tgt = min(int(m.sum()) for m in masks)
        n_ctx = min(int((~m).sum()) for m in masks)
        ctx, tgt = [], []
        for m in masks:
            tgt_idx = m.nonzero().squeeze(1)
            ctx_idx = (~m).nonzero().squeeze(1)
            tgt_idx = tgt_idx[torch.randperm(len(tgt_idx), generator=gen)[:n_tgt]].sort().values
            ctx_idx = ctx_idx[torch.randperm(len(ctx_idx), generator=gen)[:n_ctx]].sort().values
            ctx.append(ctx_idx)
            tgt.append(tgt_idx)
        out.append((torch.stack(ctx), torch.stack(tgt)))
    return out
