"""The narrow predictor of V-JEPA pre-training.

It maps the context tokens' embeddings, plus learned mask tokens placed at the target
positions, to predictions of the target encoder's embeddings there.
"""

from __future__ import annotations

import torch
from torch import nn

from worldjepa.models.rope import rope_angles
from worldjepa.models.vit import Block, init_weights


class MaskPredictor(nn.Module):
    """Narrow ViT over [context tokens, mask tokens at target positions].

    Args:
        enc_dim: encoder width D.
        dim: predictor width (narrow: e.g. D / 2).
        depth: transformer blocks.
        heads: attention heads.
    """

    def __init__(self, enc_dim: int, dim: int = 96, depth: int = 2, heads: int = 3, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"predictor dim {dim} must be divisible by heads {heads}")
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, enc_dim)
        self.heads = heads
        init_weights(self, depth)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def forward(self, ctx: torch.Tensor, ctx_pos: torch.Tensor, tgt_pos: torch.Tensor) -> torch.Tensor:
        """ctx (B, n_ctx, D), ctx_pos (B, n_ctx, 3), tgt_pos (B, n_tgt, 3) -> (B, n_tgt, D)."""
        B, n_tgt = tgt_pos.shape[:2]
        x = torch.cat([self.embed(ctx), self.mask_token.expand(B, n_tgt, -1)], dim=1)  # (B, n_ctx+n_tgt, d)
        pos = torch.cat([ctx_pos, tgt_pos], dim=1)
        rope = rope_angles(pos, x.shape[-1] // self.heads)
        for blk in self.blocks:
            x = blk(x, rope=rope)
        return self.out(self.norm(x[:, -n_tgt:]))
