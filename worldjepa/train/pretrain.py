"""V-JEPA self-supervised pre-training of the video encoder on rollouts.

The context encoder sees the tokens outside the masked blocks; a narrow predictor, with
learned mask tokens at the masked positions, predicts the target encoder's embeddings
there (targets: ``layer_norm`` of the target encoder's outputs; loss: L1). The target
encoder is an EMA of the context encoder. Optional anti-collapse terms on the context
embeddings: VICReg (variance + covariance) or SIGReg.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.data.clips import ClipDataset, split_episodes
from worldjepa.eval.monitors import embedding_std, rankme
from worldjepa.losses import SIGReg, vicreg_terms
from worldjepa.models.encoder import EncoderConfig, VideoEncoder
from worldjepa.models.mask_predictor import MaskPredictor
from worldjepa.models.masks import MaskSpec, make_masks
from worldjepa.train.loop import TrainConfig, Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JEPAConfig:
    """Pre-training objective (configs/pretrain.yaml, key ``objective``)."""

    pred_dim: int = 96  # predictor width (narrow)
    pred_depth: int = 2  # predictor blocks
    pred_heads: int = 3
    ema_start: float = 0.996  # EMA momentum at step 0 ...
    ema_end: float = 1.0  # ... rising linearly to this at the last step (V-JEPA 1); equal values = constant (V-JEPA 2)
    reg: str = "none"  # anti-collapse on context embeddings: "none" (EMA only), "vicreg" or "sigreg"
    reg_weight: float = 0.05  # weight of the regulariser (SIGReg lambda; VICReg variance weight)
    vicreg_cov_weight: float = 0.04  # VICReg covariance weight
    sigreg_directions: int = 256  # random directions per SIGReg evaluation
    clip_len: int = 4  # frames per training clip
    frameskip: int = 1  # env steps between clip frames
    batch_size: int = 32
    short_blocks: int = 8  # short-range mask: blocks ...
    short_scale: float = 0.15  # ... of this share of the frame
    long_blocks: int = 2  # long-range mask
    long_scale: float = 0.5  # (0.7 in V-JEPA; see worldjepa/models/masks.py for why 0.5 on 8x8 grids)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reg not in ("none", "vicreg", "sigreg"):
            raise ValueError(f"objective.reg must be 'none', 'vicreg' or 'sigreg', got {self.reg!r}")
        if not 0.0 <= self.ema_start <= self.ema_end <= 1.0:
            raise ValueError(f"need 0 <= ema_start <= ema_end <= 1, got {self.ema_start}, {self.ema_end}")
        if self.batch_size <= 0 or self.clip_len <= 0:
            raise ValueError(f"batch_size and clip_len must be > 0, got {self.batch_size}, {self.clip_len}")


class JEPA(nn.Module):
    """Context encoder, EMA target encoder and mask predictor, saved together."""

    def __init__(self, enc: EncoderConfig, obj: JEPAConfig) -> None:
        super().__init__()
        self.encoder = VideoEncoder(enc)
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)
        self.predictor = MaskPredictor(enc.dim, obj.pred_dim, obj.pred_depth, obj.pred_heads)

    @torch.no_grad()
    def ema_update(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * context."""
        for pt, pc in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            pt.lerp_(pc.detach(), 1.0 - momentum)


class PretrainTask:
    """The V-JEPA objective as a :class:`~worldjepa.train.loop.Task`."""

    def __init__(self, data: ClipDataset, val: ClipDataset, enc: EncoderConfig, obj: JEPAConfig, total_steps: int) -> None:
        if data.meta["image_size"] != enc.image_size:
            raise ValueError(f"dataset frames are {data.meta['image_size']} px but the encoder expects {enc.image_size} px (model.image_size)")
        if obj.clip_len % enc.tubelet:
            raise ValueError(f"objective.clip_len {obj.clip_len} must be divisible by the tubelet size {enc.tubelet}")
        self.data, self.val, self.enc, self.obj, self.total_steps = data, val, enc, obj, total_steps
        self.module = JEPA(enc, obj)
        self.sigreg = SIGReg(obj.sigreg_directions) if obj.reg == "sigreg" else None
        self.specs = (MaskSpec(obj.short_blocks, obj.short_scale), MaskSpec(obj.long_blocks, obj.long_scale))
        self.grid = (obj.clip_len // enc.tubelet, enc.grid, enc.grid)

    def _gen(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.obj.seed * 1_000_003 + step)

    def batch(self, step: int, device: torch.device) -> dict:
        gen = self._gen(step)
        idx = torch.randint(len(self.data), (self.obj.batch_size,), generator=gen)
        frames = torch.stack([self.data[int(i)]["frames"] for i in idx]).to(device)  # (B, T, H, W, 3)
        masks = [(c.to(device), t.to(device)) for c, t in make_masks(self.obj.batch_size, self.grid, self.specs, gen)]
        return {"frames": frames, "masks": masks, "seed": int(torch.randint(2**31, (1,), generator=gen))}

    def loss(self, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        m = self.module
        frames = batch["frames"]
        with torch.no_grad():
            target = F.layer_norm(m.target_encoder(frames), (self.enc.dim,))  # (B, N, D)
        pos = m.encoder.positions(self.grid[0], frames.device)  # (N, 3)
        pred_loss, reg_loss, ctx_all = 0.0, torch.zeros((), device=frames.device), []
        for ctx_idx, tgt_idx in batch["masks"]:
            ctx = m.encoder(frames, keep=ctx_idx)  # (B, n_ctx, D)
            pred = m.predictor(ctx, pos[ctx_idx], pos[tgt_idx])  # (B, n_tgt, D)
            tgt = torch.gather(target, 1, tgt_idx.unsqueeze(-1).expand(-1, -1, self.enc.dim))
            pred_loss = pred_loss + F.l1_loss(pred, tgt)
            ctx_all.append(ctx.reshape(-1, self.enc.dim))
        pred_loss = pred_loss / len(batch["masks"])
        metrics = {"pred_loss": float(pred_loss.detach())}
        z = torch.cat(ctx_all).float()
        if self.obj.reg == "vicreg":
            var, cov = vicreg_terms(z)
            reg_loss = self.obj.reg_weight * var + self.obj.vicreg_cov_weight * cov
            metrics.update(vicreg_var=float(var.detach()), vicreg_cov=float(cov.detach()))
        elif self.obj.reg == "sigreg":
            # a fixed number of samples keeps the statistic's scale independent of mask sizes
            gen = torch.Generator().manual_seed(batch["seed"])
            sub = z[torch.randperm(len(z), generator=gen)[:512].to(z.device)]
            sig = self.sigreg(sub, generator=gen)
            reg_loss = self.obj.reg_weight * sig
            metrics["sigreg"] = float(sig.detach())
        return pred_loss + reg_loss, metrics

    def momentum(self, step: int) -> float:
        frac = step / max(1, self.total_steps - 1)
        return self.obj.ema_start + (self.obj.ema_end - self.obj.ema_start) * frac

    def after_step(self, step: int) -> None:
        self.module.ema_update(self.momentum(step))

    @torch.no_grad()
    def monitor(self, step: int) -> dict[str, float]:
        """Std and RankMe of the target encoder's embeddings on a fixed validation batch."""
        gen = torch.Generator().manual_seed(12345)
        idx = torch.randint(len(self.val), (min(64, len(self.val)),), generator=gen)
        device = next(self.module.parameters()).device
        frames = torch.stack([self.val[int(i)]["frames"] for i in idx]).to(device)
        enc = self.module.target_encoder
        was_training = enc.training
        enc.eval()
        z = enc(frames)  # (B, N, D)
        enc.train(was_training)
        out = {f"target_{k}": v for k, v in embedding_std(z).items()}
        out["rankme_tokens"] = rankme(z.reshape(-1, z.shape[-1])[:2048])
        out["rankme_clips"] = rankme(z.mean(1))
        return out


def pretrain(
    data: str, run_dir: str, enc: EncoderConfig, obj: JEPAConfig, train: TrainConfig, device: str = "cpu", val_fraction: float = 0.1, probe_env=None
) -> dict:
    """Pre-train an encoder on the dataset at ``data``; resumable in ``run_dir``.

    Returns:
        The last logged metrics, plus probe R^2 (if ``probe_env`` is given) on held-out episodes.
    """
    probe_ds = ClipDataset(data, clip_len=obj.clip_len, frameskip=obj.frameskip)
    train_eps, val_eps = split_episodes(len(probe_ds.store), val_fraction, seed=0)
    if not val_eps:
        raise ValueError(f"{data} has {len(probe_ds.store)} episode(s); pre-training needs at least 2 (one held out)")
    tr = ClipDataset(data, clip_len=obj.clip_len, frameskip=obj.frameskip, episodes=train_eps)
    va = ClipDataset(data, clip_len=obj.clip_len, frameskip=obj.frameskip, episodes=val_eps)
    set_seed(obj.seed)  # the same seed gives the same initial weights
    task = PretrainTask(tr, va, enc, obj, train.steps)
    meta = {
        "kind": "jepa_pretrain",
        "encoder": enc.to_dict(),
        "objective": asdict(obj),
        "data": os.path.abspath(data),
        "task": tr.meta["task"],
        "train_episodes": train_eps,
        "val_episodes": val_eps,
    }
    trainer = Trainer(task, train, run_dir, meta, device=device)
    metrics = trainer.fit()
    if probe_env is not None:
        from worldjepa.eval.probe import probe_encoder

        res = probe_encoder(task.module.target_encoder, tr.store, probe_env, train_eps, val_eps, device=device)
        metrics.update(res)
        log.info("probe R^2 on held-out episodes: %s", {k: round(v, 3) for k, v in res.items()})
    return metrics


def load_encoder(path: str, which: str = "target_encoder") -> VideoEncoder:
    """The encoder of a pre-training checkpoint directory (the EMA target by default)."""
    from worldjepa.train.checkpoint import CheckpointError, load_state, load_strict, read_meta

    meta = read_meta(path)
    if "encoder" not in meta:
        raise CheckpointError(f"{path} has no encoder config in meta.json")
    enc = VideoEncoder(EncoderConfig(**meta["encoder"]))
    state = load_state(path)
    prefix = which + "."
    sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise CheckpointError(f"{path} holds no '{which}' weights")
    load_strict(enc, sub, source=f"{path} ({which})")
    return enc


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
