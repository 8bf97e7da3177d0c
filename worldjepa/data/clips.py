"""PyTorch dataset of fixed-length clips cut from stored episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from worldjepa.data.episodes import EpisodeStore


def split_episodes(num_episodes: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of episode indices (at least one of each if possible)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(num_episodes)
    n_val = int(round(num_episodes * val_fraction))
    if val_fraction > 0 and num_episodes > 1:
        n_val = max(1, n_val)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class ClipDataset(Dataset):
    """Clips of ``clip_len`` frames, ``frameskip`` env steps apart.

    Item ``i`` is a dict of tensors:

    * ``frames``  uint8   (T, H, W, 3)
    * ``actions`` float32 (T, frameskip * A): the env actions taken after each frame,
      concatenated over the ``frameskip`` steps up to the next frame (DINO-WM's convention)
    * ``proprio`` float32 (T, P)
    * ``states``  float32 (T, S): simulator states, for probes and evaluation only

    Every clip start that fits inside an episode and is a multiple of ``stride`` is one
    item. Episodes are read lazily (and cached up to the store's ``cache_bytes``), never
    all at once.

    Args:
        root: dataset directory.
        clip_len: T, frames per clip.
        frameskip: env steps between consecutive clip frames.
        episodes: indices of the episodes to use (e.g. a train split); all by default.
        cache_bytes: bound on decoded episodes kept in memory per process.
        stride: env steps between the starts of consecutive clips (1: every step). Set it
            to the collection's ``policy_hold`` so that each clip step's actions are one
            held block: a clip that starts inside a block mixes the end of one block with
            the start of the next, which the policy chose after seeing the first part
            (on Hazard, after the gust pushed; docs/BENCHMARKS.md §5).
    """

    def __init__(
        self,
        root: str,
        clip_len: int = 8,
        frameskip: int = 1,
        episodes: Sequence[int] | None = None,
        cache_bytes: int = 512 * 2**20,
        stride: int = 1,
    ) -> None:
        if clip_len <= 0 or frameskip <= 0 or stride <= 0:
            raise ValueError(f"clip_len, frameskip and stride must be > 0, got {clip_len}, {frameskip}, {stride}")
        self.store = EpisodeStore(root, cache_bytes=cache_bytes)
        self.clip_len, self.frameskip, self.stride = int(clip_len), int(frameskip), int(stride)
        self.episodes = list(range(len(self.store))) if episodes is None else [int(e) for e in episodes]
        for e in self.episodes:
            if not 0 <= e < len(self.store):
                raise IndexError(f"episode {e} out of range: the dataset has {len(self.store)} episodes")
        span = self.clip_len * self.frameskip
        # starts 0, stride, 2*stride, ... up to length - span
        counts = [max(0, (int(self.store.entries[e]["length"]) - span) // self.stride + 1) for e in self.episodes]
        if sum(counts) == 0:
            raise ValueError(f"no episode is long enough for clips of {clip_len} frames with frameskip {frameskip} (need {span} steps)")
        self._ends = np.cumsum(counts)

    @property
    def meta(self) -> dict:
        return self.store.meta

    def __len__(self) -> int:
        return int(self._ends[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """(episode index, start step) of item ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"clip index {i} out of range [0, {len(self)})")
        k = int(np.searchsorted(self._ends, i, side="right"))
        start = i - (int(self._ends[k - 1]) if k > 0 else 0)
        return self.episodes[k], start * self.stride

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ep_idx, t0 = self.locate(int(i))
        ep = self.store.load(ep_idx)
        T, s = self.clip_len, self.frameskip
        idx = t0 + s * np.arange(T)  # frame indices of the clip
        acts = ep["actions"][t0 : t0 + T * s]  # (T*s, A)
        return {
            "frames": torch.from_numpy(ep["frames"][idx]),
            "actions": torch.from_numpy(acts.reshape(T, -1).astype(np.float32)),  # (T, s*A)
            "proprio": torch.from_numpy(ep["proprio"][idx].astype(np.float32)),
            "states": torch.from_numpy(ep["states"][idx].astype(np.float32)),
        }


def rare_clip_weights(ds: ClipDataset, factor: float, quantile: float = 0.99, ridge: float = 1e-3) -> tuple[np.ndarray, dict]:
    """Sampling weights that draw the clips holding a rare transition ``1 + factor`` times as often.

    A ridge-regularised linear model of one env step's proprio change, from the proprio
    and the action, is fitted on every env step of ``ds``'s episodes. It explains the
    ordinary steps (driving, braking); a step whose residual (each proprio dimension in
    units of its change's standard deviation) lies above the ``quantile`` of all residuals
    is rare: on Hazard the gust's push, a pit that stops the agent, a wall. These are the
    steps a latent variable has to learn its outcomes from, and at well under one step in
    a hundred a uniform sampler shows each of them only rarely.

    Returns (weights (len(ds),) float64, stats): the share of rare env steps, the share of
    clips that hold one, the share of drawn clips they will make up, and the residual cut.
    """
    if factor < 0:
        raise ValueError(f"the oversampling factor must be >= 0, got {factor}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"the rare-transition quantile must lie in (0, 1), got {quantile}")
    xs, ys, lengths = [], [], []
    for e in ds.episodes:
        ep = ds.store.load(e)
        p, a = ep["proprio"].astype(np.float64), ep["actions"].astype(np.float64)
        xs.append(np.concatenate([p[:-1], a, np.ones((len(a), 1))], 1))
        ys.append(np.diff(p, axis=0))
        lengths.append(len(a))
    X, Y = np.concatenate(xs), np.concatenate(ys)
    Yz = Y / (Y.std(0) + 1e-8)
    w = np.linalg.solve(X.T @ X + ridge * len(X) * np.eye(X.shape[1]), X.T @ Yz)
    resid = np.linalg.norm(Yz - X @ w, axis=1)
    cut = float(np.quantile(resid, quantile))
    # rare[j]: how many rare env steps lie among the first j of the concatenated episodes
    rare = np.concatenate([[0], np.cumsum(resid > cut)])
    offsets = dict(zip(ds.episodes, np.concatenate([[0], np.cumsum(lengths)])))  # episode -> its first env step
    span = (ds.clip_len - 1) * ds.frameskip  # env steps between a clip's first and last frame
    weights = np.ones(len(ds))
    for i in range(len(ds)):
        e, t = ds.locate(i)
        t0 = offsets[e] + t
        if rare[t0 + span] > rare[t0]:
            weights[i] += factor
    held = weights > 1
    stats = {
        "rare_steps": float((resid > cut).mean()),
        "clips_with_rare": float(held.mean()),
        "drawn_share": float(weights[held].sum() / weights.sum()),
        "residual_cut": cut,
    }
    return weights, stats
