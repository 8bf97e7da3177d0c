"""On-disk episode store (format described in docs/DATASET.md).

A dataset is a directory::

    dataset.json        dataset-wide metadata (task, env id and kwargs, image size, dims)
    index.jsonl         one JSON line per committed episode: file, sha256, length, seed, ...
    episodes/ep_000000.npz
    episodes/ep_000001.npz
    ...

Each episode is one compressed ``.npz``, written to a temporary file, fsynced and renamed
into place; only then is its index line appended (and fsynced). So a crash loses at
most the episode in progress, and the index names exactly the episodes that are whole.
The index carries a SHA-256 of each file, checked when the episode is first read.
Writers take an advisory lock (``.lock``, flock) around each append, so several
processes may append to one dataset at once (two ``worldjepa plan record=`` runs side by
side): each sees the others' episodes before it names its file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per dataset at a time there
    fcntl = None

log = logging.getLogger(__name__)

FORMAT = "worldjepa-episodes"
VERSION = 1
EPISODE_KEYS = ("frames", "actions", "proprio", "states", "goal_pixels", "goal_state", "success", "distance")


class DatasetError(ValueError):
    """The dataset is missing, of another kind, or does not match what was asked."""


class DatasetCorruptError(DatasetError):
    """A dataset file is truncated, altered or unreadable; the message names the file."""


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_index(path: str) -> tuple[list[dict[str, Any]], int]:
    """Parse index.jsonl. Returns (entries, byte length of the whole lines).

    A last line without its newline is an append cut short by a crash: it is ignored (the
    writer truncates it). A malformed line anywhere else is corruption.
    """
    if not os.path.exists(path):
        return [], 0
    with open(path, "rb") as f:
        raw = f.read()
    entries, good = [], 0
    lines = raw.split(b"\n")
    for lineno, line in enumerate(lines, start=1):
        is_last = lineno == len(lines)
        if is_last:
            if line.strip():
                log.warning("%s: ignoring an incomplete last line (an append was interrupted)", path)
            break
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not {"file", "sha256", "length"} <= entry.keys():
                raise ValueError("missing keys")
        except ValueError as exc:
            raise DatasetCorruptError(f"{path}: line {lineno} is not a valid index entry ({exc})") from None
        entries.append(entry)
        good += len(line) + 1
    return entries, good


class EpisodeStore:
    """Reads and appends episodes of one dataset directory.

    Args:
        root: the dataset directory.
        cache_bytes: bound on decoded episodes kept in memory (least recently used go first).
    """

    def __init__(self, root: str, cache_bytes: int = 512 * 2**20) -> None:
        self.root = os.path.abspath(root)
        meta_path = os.path.join(self.root, "dataset.json")
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"no dataset directory at {self.root}")
        if not os.path.exists(meta_path):
            raise DatasetError(f"{self.root} is not a worldjepa dataset: dataset.json is missing")
        try:
            with open(meta_path) as f:
                self.meta: dict[str, Any] = json.load(f)
        except ValueError as exc:
            raise DatasetCorruptError(f"{meta_path}: not valid JSON ({exc})") from None
        if self.meta.get("format") != FORMAT:
            raise DatasetError(f"{meta_path}: format is {self.meta.get('format')!r}, expected {FORMAT!r}")
        if self.meta.get("version") != VERSION:
            raise DatasetError(f"{meta_path}: version {self.meta.get('version')!r} is not supported (expected {VERSION})")
        self.index_path = os.path.join(self.root, "index.jsonl")
        self.entries, self._index_good_bytes = _read_index(self.index_path)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cache_bytes, self._cache_limit = 0, int(cache_bytes)
        self._verified: set[int] = set()

    # ----- creation ------------------------------------------------------------------
    @classmethod
    def create_or_append(cls, root: str, meta: dict[str, Any]) -> EpisodeStore:
        """Open ``root`` for appending, creating it if needed.

        An existing dataset must have the same task, env kwargs and dims as ``meta``;
        otherwise :class:`DatasetError` is raised and nothing on disk is touched.
        """
        root = os.path.abspath(root)
        meta = {"format": FORMAT, "version": VERSION, **meta}
        meta_path = os.path.join(root, "dataset.json")
        if os.path.exists(meta_path):
            store = cls(root)
            keys = ("task", "env_kwargs", "image_size", "action_dim", "proprio_dim", "state_dim")
            diff = {k: (store.meta.get(k), meta.get(k)) for k in keys if store.meta.get(k) != meta.get(k)}
            if diff:
                detail = ", ".join(f"{k}: dataset has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
                raise DatasetError(f"{root} holds a dataset of another kind ({detail}); choose another out= directory")
            with store._writer_lock():
                store._repair()
            return store
        if os.path.isdir(root) and os.listdir(root):
            raise DatasetError(f"{root} exists, is not empty and is not a worldjepa dataset; choose another out= directory")
        os.makedirs(os.path.join(root, "episodes"), exist_ok=True)
        atomic_write_bytes(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
        return cls(root)

    @contextlib.contextmanager
    def _writer_lock(self):
        """Hold the dataset's writer lock (an exclusive flock on ``.lock``; none without fcntl)."""
        with open(os.path.join(self.root, ".lock"), "a") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _sync_index(self) -> None:
        """Under the writer lock: re-read the index if its size changed (another process
        appended, or a crash left half a line), then drop an interrupted append."""
        size = os.path.getsize(self.index_path) if os.path.exists(self.index_path) else 0
        if size == self._index_good_bytes:
            return
        self.entries, self._index_good_bytes = _read_index(self.index_path)
        if size != self._index_good_bytes:
            with open(self.index_path, "r+b") as f:
                f.truncate(self._index_good_bytes)

    def _repair(self) -> None:
        """Under the writer lock, on opening for appends: sync the index and delete stale
        temporary files (no writer has one open while the lock is held)."""
        self._sync_index()
        ep_dir = os.path.join(self.root, "episodes")
        for name in os.listdir(ep_dir):
            if name.endswith(".tmp"):
                os.remove(os.path.join(ep_dir, name))

    # ----- writing -------------------------------------------------------------------
    def append(self, episode: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, Any]:
        """Write one episode and commit it to the index. Returns its index entry."""
        missing = [k for k in EPISODE_KEYS if k not in episode]
        if missing:
            raise ValueError(f"episode is missing arrays {missing}")
        length = int(episode["actions"].shape[0])
        if episode["frames"].shape[0] != length + 1:
            raise ValueError(f"an episode with {length} actions needs {length + 1} frames, got {episode['frames'].shape[0]}")
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.ascontiguousarray(episode[k]) for k in EPISODE_KEYS})
        data = buf.getvalue()
        with self._writer_lock():
            self._sync_index()
            next_id = 1 + max((int(e["file"][-10:-4]) for e in self.entries), default=-1)
            rel = f"episodes/ep_{next_id:06d}.npz"
            atomic_write_bytes(os.path.join(self.root, rel), data)
            entry = {"file": rel, "sha256": sha256(data), "bytes": len(data), "length": length, **info}
            line = (json.dumps(entry, sort_keys=True) + "\n").encode()
            with open(self.index_path, "ab") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.entries.append(entry)
            self._index_good_bytes += len(line)
        return entry

    # ----- reading -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_steps(self) -> int:
        return sum(int(e["length"]) for e in self.entries)

    def load(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i`` as a dict of arrays (checksum verified on first read; cached)."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        entry = self.entries[i]
        path = os.path.join(self.root, entry["file"])
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise DatasetCorruptError(f"{path}: episode file listed in index.jsonl is missing") from None
        if i not in self._verified:
            digest = sha256(data)
            if digest != entry["sha256"]:
                raise DatasetCorruptError(
                    f"{path}: checksum mismatch (index says {entry['sha256'][:12]}…, file is {digest[:12]}…); the file is truncated or altered"
                )
            self._verified.add(i)
        try:
            with np.load(io.BytesIO(data)) as z:
                episode = {k: z[k] for k in EPISODE_KEYS}
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            raise DatasetCorruptError(f"{path}: cannot decode episode ({exc})") from None
        if episode["actions"].shape[0] != int(entry["length"]) or episode["frames"].shape[0] != int(entry["length"]) + 1:
            raise DatasetCorruptError(f"{path}: array lengths disagree with index.jsonl (length {entry['length']})")
        self._cache_put(i, episode)
        return episode

    def _cache_put(self, i: int, episode: dict[str, np.ndarray]) -> None:
        size = sum(a.nbytes for a in episode.values())
        self._cache[i] = episode
        self._cache_bytes += size
        while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= sum(a.nbytes for a in old.values())

    def verify(self) -> list[str]:
        """Check every episode (checksum and decoding). Returns a list of problems, empty if none."""
        problems = []
        for i in range(len(self.entries)):
            try:
                self._verified.discard(i)
                self._cache.pop(i, None)
                self.load(i)
            except DatasetCorruptError as exc:
                problems.append(str(exc))
        return problems

    def __getstate__(self):
        # DataLoader workers get a copy without the cache (each fills its own).
        state = self.__dict__.copy()
        state["_cache"], state["_cache_bytes"] = OrderedDict(), 0
        return state
