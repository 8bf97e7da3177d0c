"""Rotary position embeddings over (time, height, width).

The head dimension is split in three parts, one rotated by each coordinate (V-JEPA 2's
3D RoPE). Attention scores then depend on positions only through their differences.
Dimensions left over after the three even parts are not rotated.
"""

from __future__ import annotations

import torch


def rope_split(head_dim: int, axes: int = 3) -> int:
    """Rotated dimensions per axis (even), e.g. 64 -> 20 (60 rotated, 4 left as is)."""
    per_axis = 2 * (head_dim // (2 * axes))
    if per_axis == 0:
        raise ValueError(f"head_dim {head_dim} is too small for {axes}-axis RoPE (needs >= {2 * axes})")
    return per_axis


def rope_angles(pos: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for token positions.

    Args:
        pos: (..., N, 3) float positions (t, h, w) of each token.
        head_dim: attention head dimension.

    Returns:
        cos, sin: (..., N, head_dim // 2) each; the pairs beyond the rotated ones get angle 0.
    """
    per_axis = rope_split(head_dim, pos.shape[-1])
    half = per_axis // 2
    freqs = base ** (-torch.arange(half, device=pos.device, dtype=torch.float32) / half)  # (half,)
    ang = pos.float().unsqueeze(-1) * freqs  # (..., N, 3, half)
    ang = ang.flatten(-2)  # (..., N, 3*half)
    pad = head_dim // 2 - ang.shape[-1]
    if pad:
        ang = torch.cat([ang, ang.new_zeros(*ang.shape[:-1], pad)], dim=-1)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of x (B, heads, N, head_dim) by the angles.

    cos/sin: (N, head_dim//2) or (B, N, head_dim//2); broadcast over heads.
    """
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B, 1, N, hd/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, h, N, hd/2, 2)
    return out.flatten(-2)


def sincos_3d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Fixed 3D sin-cos absolute position embeddings (V-JEPA 1): pos (N, 3) -> (N, dim)."""
    per_axis = 2 * (dim // 6)
    half = per_axis // 2
    freqs = 10000.0 ** (-torch.arange(half, dtype=torch.float32, device=pos.device) / half)
    ang = pos.float().unsqueeze(-1) * freqs  # (N, 3, half)
    emb = torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)  # (N, 3*per_axis)
    pad = dim - emb.shape[-1]
    return torch.cat([emb, emb.new_zeros(emb.shape[0], pad)], dim=-1) if pad else emb
