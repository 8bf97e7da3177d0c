"""Dataset summary and contact sheet (``worldjepa dataset info <dir>``)."""

from __future__ import annotations

import collections
import os

import imageio.v2 as imageio
import numpy as np

from worldjepa.data.episodes import EpisodeStore


def summarize(store: EpisodeStore) -> dict:
    """Counts, sizes and per-policy numbers of a dataset (reads the index, not the episodes)."""
    entries = store.entries
    lengths = [int(e["length"]) for e in entries]
    meta = store.meta
    return {
        "root": store.root,
        "task": meta["task"],
        "env_id": meta["env_id"],
        "image_size": meta["image_size"],
        "action_dim": meta["action_dim"],
        "proprio_dim": meta["proprio_dim"],
        "state_dim": meta["state_dim"],
        "episodes": len(entries),
        "steps": int(sum(lengths)),
        "frames": int(sum(lengths)) + len(entries),
        "episode_length": {"min": min(lengths, default=0), "max": max(lengths, default=0)},
        "bytes_on_disk": int(sum(int(e.get("bytes", 0)) for e in entries)),
        "policies": dict(collections.Counter(e.get("policy", "?") for e in entries)),
    }


def contact_sheet(store: EpisodeStore, path: str, rows: int = 6, cols: int = 8, seed: int = 0) -> str:
    """Write a PNG grid of frames: one row per sampled episode, frames evenly spaced in time,
    and the episode's goal image in the last column. Returns the path."""
    if len(store) == 0:
        raise ValueError(f"{store.root} has no episodes to show")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(store), size=min(rows, len(store)), replace=False).tolist())
    lines = []
    for i in chosen:
        ep = store.load(i)
        n = ep["frames"].shape[0]
        idx = np.linspace(0, n - 1, cols - 1).round().astype(int)
        tiles = [ep["frames"][t] for t in idx] + [ep["goal_pixels"]]
        tiles = [np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255) for t in tiles]
        lines.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(lines, axis=0)
    scale = max(1, 96 // store.meta["image_size"])  # make small frames visible
    sheet = np.kron(sheet, np.ones((scale, scale, 1), dtype=np.uint8))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    imageio.imwrite(tmp, sheet)
    os.replace(tmp, path)
    return path
