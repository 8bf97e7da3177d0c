"""Transformer building blocks shared by the encoder and the predictors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.models.rope import apply_rope


def mlp(in_dim: int, hidden: list[int], out_dim: int, act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """An MLP: Linear layers through ``hidden`` sizes with ``act`` between them."""
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class Attention(nn.Module):
    """Multi-head self-attention with optional RoPE and an optional mask or KV cache."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None, mask: torch.Tensor | None = None, cache: dict | None = None
    ) -> torch.Tensor:
        """x (B, N, D) -> (B, N, D).

        mask: boolean (N, N_total) or (B, 1, N, N_total), True where attention is allowed.
        cache: dict holding "k", "v" of earlier tokens (B, heads, M, hd); new keys/values are appended.
        """
        B, N, D = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, h, N, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, N, hd)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = mlp(dim, [int(dim * mlp_ratio)], dim)

    def forward(self, x: torch.Tensor, rope=None, mask=None, cache=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope=rope, mask=mask, cache=cache)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module, depth: int) -> None:
    """Truncated-normal init, with residual output projections scaled by 1/sqrt(2*depth)."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if name.endswith("attn.proj") or name.endswith("mlp.2"):
                m.weight.data.div_((2.0 * depth) ** 0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
