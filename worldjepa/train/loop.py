"""The training loop shared by encoder pre-training and world-model training.

It owns the mechanics: AdamW with warm-up + cosine or warm-up/stable/decay schedules,
gradient clipping, bf16 autocast on CUDA, a NaN/Inf guard, atomic checkpoints every N
steps with exact resume, metrics in a CSV (and TensorBoard if installed), and a progress
bar with loss and throughput. What is trained is a :class:`Task`: it builds the batch of
a step (deterministically from the step number, so a resumed run sees the same data),
computes the loss, and may update extra state after each step (the EMA target).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from worldjepa.train.checkpoint import average_states, load_checkpoint, load_strict, save_checkpoint

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN/Inf; the last good checkpoint is kept."""


class Task(Protocol):
    """What the loop trains. ``module`` holds every trainable and saved tensor."""

    module: nn.Module

    def batch(self, step: int, device: torch.device) -> Any:
        """The batch of ``step``; must depend only on the step (and a seed) for exact resume."""

    def loss(self, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss to minimise and metrics to log."""

    def after_step(self, step: int) -> None:
        """Called after each optimizer step (e.g. the EMA update)."""

    def monitor(self, step: int) -> dict[str, float]:
        """Extra (slower) metrics, every ``monitor_every`` steps."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping settings (configs/train/*.yaml)."""

    steps: int = 2000  # optimizer steps in total
    lr: float = 1e-3  # peak learning rate
    min_lr_ratio: float = 0.05  # final lr = min_lr_ratio * lr
    weight_decay: float = 0.05  # AdamW decoupled weight decay (not on norms and biases)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup: int = 100  # linear warm-up steps
    schedule: str = "cosine"  # "cosine" or "wsd" (warm-up, stable, decay over the last decay_frac)
    decay_frac: float = 0.2  # share of steps spent decaying under "wsd"
    grad_clip: float = 1.0  # max gradient norm (<= 0 disables)
    ckpt_every: int = 500  # steps between checkpoints
    keep_last: int = 2  # checkpoints kept on disk
    average_last: int = 0  # > 1: final = the mean weights of the last this many checkpoints (one every ckpt_every steps); 0 = the last step's
    log_every: int = 10  # steps between CSV rows
    monitor_every: int = 250  # steps between monitor() calls (0 disables)
    amp: bool = True  # bf16 autocast when on CUDA (ignored on CPU)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.lr <= 0 or self.ckpt_every <= 0 or self.log_every <= 0:
            raise ValueError(f"steps, lr, ckpt_every and log_every must be > 0, got {self.steps}, {self.lr}, {self.ckpt_every}, {self.log_every}")
        if self.schedule not in ("cosine", "wsd"):
            raise ValueError(f"schedule must be 'cosine' or 'wsd', got {self.schedule!r}")
        if self.average_last < 0 or self.average_last > max(1, self.keep_last):
            raise ValueError(
                f"average_last must be in [0, keep_last] (the checkpoints it averages must be kept on disk), got {self.average_last} with keep_last {self.keep_last}"
            )
        if self.warmup < 0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"warmup must be >= 0 and min_lr_ratio in [0, 1], got {self.warmup}, {self.min_lr_ratio}")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of (0-based) ``step``."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    lo = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return lo + 0.5 * (cfg.lr - lo) * (1 + math.cos(math.pi * min(1.0, frac)))
    decay_start = int(cfg.steps * (1 - cfg.decay_frac))
    if step < decay_start:
        return cfg.lr
    frac = (step - decay_start) / max(1, cfg.steps - decay_start)
    return cfg.lr + (lo - cfg.lr) * min(1.0, frac)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay on matrices, none on norms, biases, tokens and 1-D parameters."""
    decay, no_decay = [], []
    for _, p in module.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def checkpoint_steps(run_dir: str) -> list[int]:
    """Steps of the complete checkpoints in ``run_dir/checkpoints`` (those with a meta.json), ascending."""
    root = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    return sorted(int(n[5:]) for n in os.listdir(root) if n.startswith("step_") and n[5:].isdigit() and os.path.exists(os.path.join(root, n, "meta.json")))


def latest_checkpoint(run_dir: str) -> str | None:
    """Path of the newest complete checkpoint in ``run_dir/checkpoints``, or None."""
    steps = checkpoint_steps(run_dir)
    return os.path.join(run_dir, "checkpoints", f"step_{steps[-1]:07d}") if steps else None


class Trainer:
    """Runs a :class:`Task` for ``cfg.steps`` steps in ``run_dir``, resuming if it can.

    Args:
        task: what to train.
        cfg: optimisation settings.
        run_dir: where checkpoints (``checkpoints/step_N``), ``metrics.csv`` and ``final/`` go.
        meta: JSON-able description saved in every checkpoint (model config, data, ...).
        device: where to train.
    """

    def __init__(self, task: Task, cfg: TrainConfig, run_dir: str, meta: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.task, self.cfg, self.run_dir, self.meta = task, cfg, os.path.abspath(run_dir), meta
        self.device = torch.device(device)
        self.optimizer = torch.optim.AdamW(param_groups(task.module, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        self.step = 0
        self.last_good: str | None = None

    # ----- checkpoints ------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {**self.meta, "step": self.step, "train": asdict(self.cfg)}

    def save(self) -> str:
        for name, p in self.task.module.state_dict().items():
            if p.is_floating_point() and not torch.isfinite(p).all():
                raise TrainingDiverged(f"weights {name} are not finite at step {self.step}; not saving. Last good checkpoint: {self.last_good}")
        path = os.path.join(self.run_dir, "checkpoints", f"step_{self.step:07d}")
        save_checkpoint(path, self.task.module, self._meta(), self.optimizer)
        self.last_good = path
        root = os.path.dirname(path)
        old = sorted(n for n in os.listdir(root) if n.startswith("step_") and "." not in n)
        for name in old[: max(0, len(old) - self.cfg.keep_last)]:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        return path

    def resume(self) -> bool:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return False
        meta = load_checkpoint(path, self.task.module, self.optimizer)
        self.step = int(meta["step"])
        self.last_good = path
        log.info("resumed from %s (step %d)", path, self.step)
        return True

    # ----- training ---------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train to ``cfg.steps``. Returns the last logged metrics. Writes ``run_dir/final``."""
        cfg = self.cfg
        os.makedirs(self.run_dir, exist_ok=True)
        self.task.module.to(self.device)
        self.resume()
        metrics_csv = MetricsCSV(os.path.join(self.run_dir, "metrics.csv"))
        metrics_csv.truncate_after(self.step)
        tb = _tensorboard(self.run_dir)
        use_amp = cfg.amp and self.device.type == "cuda"
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=not cfg.progress, unit="step")
        last: dict[str, float] = {}
        t_last, n_last = time.perf_counter(), 0
        try:
            while self.step < cfg.steps:
                step = self.step
                lr = lr_at(cfg, step)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                batch = self.task.batch(step, self.device)
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss, metrics = self.task.loss(batch, step)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"loss became {loss.item()} at step {step}; stopping. Last good checkpoint: {self.last_good or 'none yet'}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(self.task.module.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
                if not torch.isfinite(gnorm):
                    raise TrainingDiverged(
                        f"gradient norm became {gnorm.item()} at step {step}; stopping. Last good checkpoint: {self.last_good or 'none yet'}"
                    )
                self.optimizer.step()
                self.task.after_step(step)
                self.step += 1
                n_last += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    row = {
                        "step": self.step,
                        "lr": lr,
                        "loss": float(loss.detach()),
                        "grad_norm": float(gnorm),
                        **metrics,
                        "steps_per_s": n_last / max(now - t_last, 1e-9),
                    }
                    t_last, n_last = now, 0
                    if cfg.monitor_every and (self.step % cfg.monitor_every == 0 or self.step == cfg.steps):
                        row.update(self.task.monitor(self.step))
                    metrics_csv.append(row)
                    if tb is not None:
                        for k, v in row.items():
                            if k != "step":
                                tb.add_scalar(k, v, self.step)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", it_s=f"{row['steps_per_s']:.2f}")
                    last = row
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save()
        finally:
            bar.close()
            if tb is not None:
                tb.close()
        meta = self._meta()
        if cfg.average_last > 1:
            meta["averaged_steps"] = self._average_last()
        save_checkpoint(os.path.join(self.run_dir, "final"), self.task.module, meta)
        return last

    def _average_last(self) -> list[int]:
        """Load the mean weights of the last ``average_last`` checkpoints into the module
        (weight averaging, as SWA: a model whose quality drifts from one checkpoint to the
        next, docs/BENCHMARKS.md section 5, gets the steadier mean). Returns their steps."""
        root = os.path.join(self.run_dir, "checkpoints")
        steps = [s for s in checkpoint_steps(self.run_dir) if s <= self.step][-self.cfg.average_last :]
        if len(steps) < self.cfg.average_last:
            log.warning("average_last=%d: only %d checkpoints on disk (steps %s); averaging those", self.cfg.average_last, len(steps), steps)
        load_strict(self.task.module, average_states([os.path.join(root, f"step_{s:07d}") for s in steps]), source=f"the mean of checkpoints {steps}")
        log.info("final weights: the mean of the checkpoints of steps %s", steps)
        return steps


class MetricsCSV:
    """metrics.csv with one header; a row with new columns rewrites the file (atomically)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.fields: list[str] = []
        if os.path.exists(path):
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or [])
                self.rows = list(reader)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they belong to a run cut off before its checkpoint)."""
        kept = [r for r in self.rows if int(float(r["step"])) <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new or not os.path.exists(self.path):
            self.fields += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, restval="").writerow(row)

    def _rewrite(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, restval="")
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)


def _tensorboard(run_dir: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(os.path.join(run_dir, "tb"))
