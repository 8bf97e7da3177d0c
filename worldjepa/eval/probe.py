"""Linear probes from frozen embeddings to the true task state.

Features are the flattened patch-token embeddings of single frames (N*D values), so a
linear read-out can use where things are as well as what they look like. The probe is
ridge regression (solved in its dual form, since features outnumber samples), fitted
on training episodes with the ridge strength picked on a held-out part of them, and
scored by R^2 on separate held-out episodes.
"""

from __future__ import annotations

import numpy as np
import torch

from worldjepa.data.episodes import EpisodeStore


@torch.no_grad()
def frame_features(
    encoder, store: EpisodeStore, episodes: list[int], stride: int = 2, batch: int = 64, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Flattened per-frame token embeddings and the stored states of every ``stride``-th frame.

    Returns:
        features (n, N*D) float32, states (n, S) float64.
    """
    encoder.eval()
    feats, states = [], []
    frames_all, states_all = [], []
    for e in episodes:
        ep = store.load(e)
        frames_all.append(ep["frames"][::stride])
        states_all.append(ep["states"][::stride])
    frames = np.concatenate(frames_all)
    for i in range(0, len(frames), batch):
        px = torch.from_numpy(frames[i : i + batch]).to(device).unsqueeze(1)  # (b, 1, H, W, 3)
        z = encoder.encode_frames(px)  # (b, 1, N, D)
        feats.append(z.flatten(1).float().cpu().numpy())
    states.append(np.concatenate(states_all))
    return np.concatenate(feats), states[0]


def _ridge_dual(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, lam: float) -> np.ndarray:
    K = Xtr @ Xtr.T  # (n, n)
    alpha = np.linalg.solve(K + lam * np.eye(len(K)), Ytr)
    return Xte @ Xtr.T @ alpha


def r2_score(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-column coefficient of determination."""
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    return 1.0 - ss_res / np.maximum(ss_tot, 1e-12)


def fit_probe(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Yte: np.ndarray, lambdas=(1e-2, 1e-1, 1.0, 10.0, 100.0)) -> dict:
    """Ridge probe with lambda (relative to the mean kernel diagonal) chosen on the last 20 % of the training rows.

    Returns:
        {"r2": per-column R^2 on the test set, "lambda": chosen, "pred": test predictions}.
    """
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    ymu = Ytr.mean(0)
    Ytr_c = Ytr - ymu
    scale = float((Xtr**2).sum(1).mean())
    n_fit = int(len(Xtr) * 0.8)
    best, best_lam = -np.inf, lambdas[0]
    for lam in lambdas:
        pred = _ridge_dual(Xtr[:n_fit], Ytr_c[:n_fit], Xtr[n_fit:], lam * scale) + ymu
        score = float(np.mean(r2_score(Ytr[n_fit:], pred)))
        if score > best:
            best, best_lam = score, lam
    pred = _ridge_dual(Xtr, Ytr_c, Xte, best_lam * scale) + ymu
    return {"r2": r2_score(Yte, pred), "lambda": best_lam, "pred": pred}


def probe_encoder(encoder, store: EpisodeStore, env, train_episodes: list[int], test_episodes: list[int], stride: int = 2, device="cpu") -> dict[str, float]:
    """R^2 on held-out episodes of a linear probe to each of ``env.task_state``'s quantities.

    Args:
        encoder: a :class:`~worldjepa.models.encoder.VideoEncoder` (frozen here).
        store: the dataset.
        env: the task's (unwrapped) env, for ``task_state``.
        train_episodes, test_episodes: disjoint episode indices.

    Returns:
        {"r2/<name>": mean R^2 over that quantity's columns, ..., "r2/mean": over all}.
    """
    Xtr, Str = frame_features(encoder, store, train_episodes, stride, device=device)
    Xte, Ste = frame_features(encoder, store, test_episodes, stride, device=device)
    ytr, yte = env.task_state(Str), env.task_state(Ste)
    names = list(ytr)
    Ytr = np.concatenate([ytr[k] for k in names], axis=-1)
    Yte = np.concatenate([yte[k] for k in names], axis=-1)
    res = fit_probe(Xtr, Ytr, Xte, Yte)
    out, col = {}, 0
    for k in names:
        width = ytr[k].shape[-1]
        out[f"r2/{k}"] = float(np.mean(res["r2"][col : col + width]))
        col += width
    out["r2/mean"] = float(np.mean(res["r2"]))
    return out
