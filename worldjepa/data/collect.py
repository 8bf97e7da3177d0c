"""Parallel rollout collection into an episode store (``worldjepa collect``)."""

from __future__ import annotations

import logging
import time
from functools import partial

import gymnasium as gym
from tqdm.auto import tqdm

import envs
from worldjepa.data.episodes import EpisodeStore

log = logging.getLogger(__name__)


def _make_env(name: str, episode_len: int, env_kwargs: dict):
    return envs.make(name, max_episode_steps=episode_len, **env_kwargs)


def dataset_meta(env_name: str, env_kwargs: dict, episode_len: int) -> dict:
    """Dataset-wide metadata for collecting ``env_name`` with ``env_kwargs``."""
    probe = _make_env(env_name, episode_len, env_kwargs)
    try:
        u = probe.unwrapped
        return {
            "task": env_name,
            "env_id": probe.spec.id if probe.spec is not None else env_name,
            "env_kwargs": dict(env_kwargs),
            "image_size": int(u.image_size),
            "action_repeat": int(u.action_repeat),
            "action_dim": int(probe.action_space.shape[0]),
            "proprio_dim": int(probe.observation_space["proprio"].shape[0]),
            "state_dim": int(u.state_dim),
            "goal_dim": int(u.goal_dim),
        }
    finally:
        probe.close()


def collect(
    env: str,
    episodes: int,
    out: str,
    policy: str = "directed",
    workers: int = 1,
    episode_len: int = 50,
    seed: int = 0,
    image_size: int = 64,
    action_repeat: int = 1,
    progress: bool = True,
    policy_hold: int = 1,
) -> EpisodeStore:
    """Collect ``episodes`` rollouts of ``policy`` in ``env`` and append them to the dataset at ``out``.

    Episodes run ``workers`` at a time in a Gymnasium vector env (subprocesses when
    ``workers > 1``). Each finished episode is committed to disk at once, so an interrupted
    run keeps every episode it finished. Episode ``i`` of the dataset is reset with seed
    ``seed + i``, so appending to a dataset continues the sequence rather than repeating it.
    ``policy_hold`` > 1 holds each policy action for that many env steps (set it to the
    world model's frameskip on a stochastic task, see ``envs.policies.HeldPolicy``).

    Returns:
        The episode store (opened for reading and appending).
    """
    if episodes <= 0:
        raise ValueError(f"episodes must be > 0, got {episodes}")
    if workers <= 0:
        raise ValueError(f"workers must be > 0, got {workers}")
    if policy_hold <= 0:
        raise ValueError(f"policy_hold must be >= 1 env step, got {policy_hold}")
    if episode_len <= 0:
        raise ValueError(f"episode_len must be > 0, got {episode_len}")
    env_kwargs = {"image_size": int(image_size), "action_repeat": int(action_repeat)}
    meta = dataset_meta(env, env_kwargs, episode_len)
    store = EpisodeStore.create_or_append(out, meta)
    fns = [partial(_make_env, env, episode_len, env_kwargs) for _ in range(workers)]
    # spawn: workers open their own EGL context instead of inheriting the parent's state
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn") if workers > 1 else gym.vector.SyncVectorEnv(fns)
    bar = tqdm(total=episodes * episode_len, unit="frame", desc=f"collect {env}", disable=not progress)
    t0, done = time.perf_counter(), 0
    try:
        while done < episodes:
            n = min(workers, episodes - done)
            first = len(store)
            seeds = [seed + first + j for j in range(workers)]
            venv.reset(seed=seeds, options={"policy": policy, "policy_hold": int(policy_hold)})
            # each worker runs its whole episode in one call (one round trip per episode)
            rollouts = venv.call("explore_rollout", episode_len)
            for j in range(n):
                episode = rollouts[j]
                store.append(
                    episode,
                    {"seed": seeds[j], "policy": policy, "policy_hold": int(policy_hold), "action_repeat": int(action_repeat), "image_size": int(image_size)},
                )
                bar.update(int(episode["actions"].shape[0]))
            done += n
    finally:
        bar.close()
        venv.close()
    elapsed = time.perf_counter() - t0
    log.info(
        "collected %d episodes (%d frames) in %.1f s: %.0f frames/s -> %s",
        done,
        done * episode_len,
        elapsed,
        done * episode_len / max(elapsed, 1e-9),
        store.root,
    )
    return store
