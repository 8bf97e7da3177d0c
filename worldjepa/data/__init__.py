"""Rollout collection, the on-disk episode store, and clip datasets."""

from worldjepa.data.clips import ClipDataset, split_episodes
from worldjepa.data.episodes import DatasetCorruptError, DatasetError, EpisodeStore

__all__ = ["ClipDataset", "split_episodes", "EpisodeStore", "DatasetError", "DatasetCorruptError"]
