"""Checkpoints: safetensors weights + JSON metadata, written atomically, loaded strictly.

A checkpoint is a directory::

    model.safetensors    the model's state dict (unwrapped module, never a compiled wrapper)
    optim.safetensors    optimizer tensors (AdamW moments and step counts), for resuming
    meta.json            config, step, optimizer hyper-parameters and anything JSON

It is written into a temporary sibling directory and renamed into place, so a crash
never leaves a half-written checkpoint. No pickled code is ever loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model it is loaded into."""


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str, model: nn.Module, meta: dict[str, Any], optimizer: torch.optim.Optimizer | None = None, dtype: torch.dtype | None = None) -> str:
    """Write a checkpoint directory atomically. Returns its path.

    ``dtype`` (e.g. torch.float16) stores floating-point weights at that precision, for a
    smaller file; loading casts them back to the model's dtype.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, os.path.join(tmp, "model.safetensors"))
    meta = dict(meta)
    if optimizer is not None:
        tensors, opt_meta = _flatten_optimizer(optimizer)
        save_file(tensors, os.path.join(tmp, "optim.safetensors"))
        meta["optimizer"] = opt_meta
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    for name in os.listdir(tmp):
        with open(os.path.join(tmp, name), "rb") as f:
            os.fsync(f.fileno())
    if os.path.exists(path):
        old = f"{path}.old-{os.getpid()}"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path


def read_meta(path: str) -> dict[str, Any]:
    """meta.json of a checkpoint directory."""
    meta_path = os.path.join(path, "meta.json")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint directory at {path}")
    if not os.path.exists(meta_path):
        raise CheckpointError(f"{path} is not a worldjepa checkpoint: meta.json is missing")
    try:
        with open(meta_path) as f:
            return json.load(f)
    except ValueError as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from None


def training_episodes(meta: dict[str, Any], data: str | None, what: str):
    """The dataset a checkpoint was trained on and its split: ``data``, or the dataset
    named in ``meta`` -> (EpisodeStore, training episodes, held-out episodes), each list
    cut to the episodes the store holds. ``what`` says what needs the data, for the error
    (e.g. "the read-out is fitted")."""
    from worldjepa.data.episodes import EpisodeStore

    data = data or meta.get("data")
    if not data or not os.path.isdir(data):
        raise FileNotFoundError(f"{what} on the model's training data: {data!r} is not a dataset directory; pass data=<dir>")
    store = EpisodeStore(data)
    n = len(store)
    return store, [e for e in meta.get("train_episodes", range(n)) if e < n], [e for e in meta.get("val_episodes", []) if e < n]


def load_state(path: str, file: str = "model.safetensors") -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (safetensors only: no code is executed)."""
    full = os.path.join(path, file)
    if not os.path.exists(full):
        raise CheckpointError(f"{full} is missing")
    try:
        return load_file(full)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{full}: cannot read weights ({exc}); the file is corrupt or truncated") from None


def average_states(paths: list[str]) -> dict[str, torch.Tensor]:
    """The mean of the weights of several checkpoints of one model: floating-point tensors
    are averaged (summed in float64), integer ones (counters) are taken from the last. All
    must hold the same keys and shapes, else a ``CheckpointError`` names the first that
    does not."""
    if not paths:
        raise ValueError("average_states needs at least one checkpoint")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for path in paths:
        state = load_state(path)
        if total and (state.keys() != total.keys() or any(state[k].shape != total[k].shape for k in state)):
            raise CheckpointError(f"{path} does not hold the same tensors as {paths[0]}: checkpoints of different models cannot be averaged")
        for k, v in state.items():
            dtypes.setdefault(k, v.dtype)
            if not v.is_floating_point():
                total[k] = v
            elif k in total:
                total[k] += v.double()
            else:
                total[k] = v.double()
    return {k: (v / len(paths)).to(dtypes[k]) if v.is_floating_point() else v for k, v in total.items()}


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into ``module``; any missing, unexpected or mis-shaped key is an error listing them."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:

        def few(items):
            return ", ".join(items[:8]) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {few(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {few(shapes)}")
        raise CheckpointError(f"{source} does not fit {type(module).__name__} (another architecture?): " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def load_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Load weights (strictly) and, if given, the optimizer state. Returns meta.json."""
    meta = read_meta(path)
    load_strict(model, load_state(path), source=path)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{path} holds no optimizer state to resume from")
        sd = _unflatten_optimizer(load_state(path, "optim.safetensors"), meta["optimizer"])
        optimizer.load_state_dict(sd)
    return meta
