"""V-JEPA-style video encoder: a ViT over tubelets.

A clip (B, T, H, W, 3) uint8 is cut into tubelets of ``tubelet`` frames x P x P pixels by
a Conv3d (kernel = stride), giving N = (T/tubelet)(H/P)(W/P) tokens in (t, h, w) order.
Pre-norm transformer blocks with SDPA attention follow, with 3D RoPE (default) or fixed
3D sin-cos positions. A single frame is encoded by repeating it ``tubelet`` times.
The context encoder of pre-training sees only the kept tokens (``keep`` indices).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from worldjepa.models.rope import rope_angles, sincos_3d
from worldjepa.models.vit import Block, init_weights


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the video encoder (see configs/model/*.yaml)."""

    image_size: int = 64  # input frames are image_size x image_size
    patch: int = 8  # spatial patch side P (image_size must be divisible by it)
    tubelet: int = 2  # frames per tubelet (clip length must be divisible by it)
    dim: int = 192  # token width D
    depth: int = 4  # transformer blocks
    heads: int = 3  # attention heads (dim must be divisible by it)
    mlp_ratio: float = 4.0  # MLP hidden width = mlp_ratio * dim
    pos: str = "rope"  # "rope" (3D rotary, V-JEPA 2) or "sincos" (fixed 3D sin-cos, V-JEPA 1)

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.patch <= 0 or self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} must be a positive multiple of patch {self.patch}")
        if self.tubelet <= 0:
            raise ValueError(f"tubelet must be > 0, got {self.tubelet}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        if self.pos not in ("rope", "sincos"):
            raise ValueError(f"pos must be 'rope' or 'sincos', got {self.pos!r}")

    @property
    def grid(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch

    def to_dict(self) -> dict:
        return asdict(self)


def check_pixels(pixels: torch.Tensor, image_size: int, name: str = "pixels") -> None:
    """Raise ValueError unless pixels is uint8 (B, T, image_size, image_size, 3)."""
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pixels).__name__}")
    if pixels.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 images in [0, 255], got dtype {pixels.dtype}")
    if pixels.dim() != 5 or pixels.shape[-1] != 3 or pixels.shape[2] != image_size or pixels.shape[3] != image_size:
        raise ValueError(f"{name} must have shape (B, T, {image_size}, {image_size}, 3), got {tuple(pixels.shape)}")


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return pixels.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


class VideoEncoder(nn.Module):
    """ViT over tubelets. See the module docstring for shapes."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Conv3d(3, cfg.dim, kernel_size=(cfg.tubelet, cfg.patch, cfg.patch), stride=(cfg.tubelet, cfg.patch, cfg.patch))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        init_weights(self, cfg.depth)
        self._pos_cache: dict = {}

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def tokens_per_frame(self) -> int:
        return self.cfg.grid**2

    def positions(self, t_tokens: int, device: torch.device) -> torch.Tensor:
        """(N, 3) float (t, h, w) positions of the tokens of a clip with t_tokens tubelets (cached)."""
        key = (t_tokens, str(device))
        if key not in self._pos_cache:
            g = self.cfg.grid
            t, h, w = torch.meshgrid(torch.arange(t_tokens), torch.arange(g), torch.arange(g), indexing="ij")
            self._pos_cache[key] = torch.stack([t, h, w], dim=-1).reshape(-1, 3).float().to(device)
        return self._pos_cache[key]

    def forward(self, pixels: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode a clip.

        Args:
            pixels: uint8 (B, T, H, W, 3), T divisible by ``tubelet``.
            keep: optional long (B, n) indices of the tokens to encode (the context).

        Returns:
            (B, N, D) token embeddings, or (B, n, D) for the kept tokens.
        """
        check_pixels(pixels, self.cfg.image_size)
        T = pixels.shape[1]
        if T % self.cfg.tubelet:
            raise ValueError(f"clip length {T} must be divisible by the tubelet size {self.cfg.tubelet}")
        x = self.patch_embed(to_float(pixels))  # (B, D, T/tub, g, g)
        B, D, Tt = x.shape[:3]
        x = x.flatten(2).transpose(1, 2)  # (B, N, D), tokens in (t, h, w) order
        pos = self.positions(Tt, x.device)  # (N, 3)
        if keep is not None:
            x = torch.gather(x, 1, keep.unsqueeze(-1).expand(-1, -1, D))  # (B, n, D)
            pos = pos[keep]  # (B, n, 3)
        rope = None
        if self.cfg.pos == "rope":
            rope = rope_angles(pos, D // self.cfg.heads)
        else:
            x = x + sincos_3d(pos.reshape(-1, 3), D).reshape(*pos.shape[:-1], D).to(x.dtype)
        for blk in self.blocks:
            x = blk(x, rope=rope)
        return self.norm(x)

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode every frame on its own (each repeated ``tubelet`` times).

        Args:
            pixels: uint8 (B, T, H, W, 3).

        Returns:
            (B, T, g*g, D) patch embeddings per frame.
        """
        check_pixels(pixels, self.cfg.image_size)
        B, T = pixels.shape[:2]
        frames = pixels.reshape(B * T, 1, *pixels.shape[2:]).expand(-1, self.cfg.tubelet, -1, -1, -1)  # (B*T, tub, H, W, 3)
        z = self(frames)  # (B*T, g*g, D)
        return z.reshape(B, T, *z.shape[1:])
