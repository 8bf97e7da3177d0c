"""The goal read-out: proprio from an image's patch tokens, fitted by ridge regression.

A goal is given only as an image, so the planner's proprio term compares the predicted
proprio with the proprio the model *reads* from the goal image. The MLP proprio decoder
trained alongside the predictor reads it poorly where the data are thin: on Hazard and
TwoRoom it pulls an agent near the image's left or right edge 0.1-0.3 m towards the
middle, where most training frames show it (the edges hold a few % of them). A linear
map from the flattened patch tokens, solved in closed form, has no such bias: on
Hazard's start and goal images it reads the agent to 0.009 m in x, against 0.13-0.19 m
for the MLP (docs/BENCHMARKS.md section 5).

The fit runs after training (``worldjepa train`` does it at the end; ``worldjepa
readout <ckpt>`` adds it to an existing checkpoint) on the checkpoint's training
episodes, in the dual form (features outnumber frames), with the ridge strength picked on
its held-out episodes.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from worldjepa.data.episodes import EpisodeStore

log = logging.getLogger("worldjepa")

# ridge strengths tried, relative to the mean squared norm of a centred feature row
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _moving_frames(proprio: np.ndarray) -> np.ndarray:
    """Indices of the frames whose proprio differs from the previous kept frame's.

    A resting or trapped agent repeats one frame for the rest of an episode (60 % of
    Hazard's frames); kept, such repeats would dominate the fit."""
    keep, last = [], None
    for t, p in enumerate(proprio):
        if last is None or np.abs(p - last).max() > 1e-6:
            keep.append(t)
            last = p
    return np.asarray(keep, dtype=np.int64)


@torch.no_grad()
def readout_features(wm, store: EpisodeStore, episodes: list[int], max_frames: int, seed: int = 0, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened patch tokens (n, N*D) and proprio (n, P) of up to ``max_frames`` distinct frames of ``episodes``."""
    frames, props = [], []
    for e in episodes:
        ep = store.load(e)
        idx = _moving_frames(ep["proprio"])
        frames.append(ep["frames"][idx])
        props.append(ep["proprio"][idx])
    frames, props = np.concatenate(frames), np.concatenate(props)
    if len(frames) > max_frames:
        pick = np.sort(np.random.default_rng(seed).choice(len(frames), max_frames, replace=False))
        frames, props = frames[pick], props[pick]
    device = next(wm.parameters()).device
    enc = wm.encoder.eval()
    feats = [
        enc.encode_frames(torch.from_numpy(frames[i : i + batch]).to(device)[:, None])[:, 0].flatten(1).float().cpu() for i in range(0, len(frames), batch)
    ]
    return torch.cat(feats), torch.from_numpy(props).float()  # (n, N*D), (n, P)


def fit_ridge(X: torch.Tensor, Y: torch.Tensor, Xv: torch.Tensor, Yv: torch.Tensor, lambdas=LAMBDAS) -> dict:
    """Ridge regression Y ~ X W + b (dual form), the strength of each column of Y picked
    on (Xv, Yv) by its held-out mean absolute error (what one image shows well, a position,
    wants little shrinkage; what it cannot show, a velocity, wants much).

    Returns:
        {"weight": (F, P), "bias": (P,), "lambda": [relative strength per column], "val_err": (P,) mean abs error}.
    """
    if len(X) < 2 or len(Xv) < 1:
        raise ValueError(f"the read-out needs at least 2 training frames and 1 held-out frame, got {len(X)} and {len(Xv)}")
    mu, ym = X.mean(0), Y.mean(0)
    Xc, Yc = X - mu, (Y - ym).double()
    K = (Xc @ Xc.T).double()  # (n, n); the products in float32, the solves in float64
    scale = float(K.diagonal().mean())
    cross = ((Xv - mu) @ Xc.T).double()  # (m, n)
    eye = torch.eye(len(K), dtype=K.dtype)
    P = Y.shape[1]
    best_err = torch.full((P,), float("inf"), dtype=torch.float64)
    alpha = torch.zeros(len(K), P, dtype=torch.float64)
    lam_of = [lambdas[0]] * P
    for lam in lambdas:
        a = torch.linalg.solve(K + lam * scale * eye, Yc)  # (n, P)
        err = (cross @ a + ym.double() - Yv.double()).abs().mean(0)
        better = err < best_err
        alpha[:, better], best_err[better] = a[:, better], err[better]
        lam_of = [lam if b else old for b, old in zip(better.tolist(), lam_of)]
    W = Xc.double().T @ alpha  # (F, P)
    b = ym.double() - mu.double() @ W
    return {"weight": W.float(), "bias": b.float(), "lambda": lam_of, "val_err": best_err.float()}


def fit_goal_readout(wm, store: EpisodeStore, train_episodes: list[int], val_episodes: list[int], max_frames: int = 6000, seed: int = 0) -> dict:
    """Fit ``wm``'s goal read-out on the stored episodes and attach it (``WorldModel.set_readout``).

    Returns the read-out's description (also kept in the checkpoint's meta.json)."""
    if not wm.spec.proprio_dim:
        raise ValueError("this model does not use proprio: there is nothing for a goal read-out to read")
    if store.meta.get("proprio_dim") != wm.spec.proprio_dim:
        raise ValueError(f"dataset proprio has {store.meta.get('proprio_dim')} values, the model's {wm.spec.proprio_dim}: not this model's data")
    if not val_episodes:
        val_episodes = train_episodes[-max(1, len(train_episodes) // 10) :]
        train_episodes = train_episodes[: len(train_episodes) - len(val_episodes)]
    X, Y = readout_features(wm, store, train_episodes, max_frames, seed)
    Xv, Yv = readout_features(wm, store, val_episodes, max(256, max_frames // 4), seed + 1)
    fit = fit_ridge(X, Y, Xv, Yv)
    err = fit["val_err"]
    use = [True] * len(err)
    if wm.proprio_decoder is not None:  # keep the MLP decoder for the dimensions it reads better
        g = wm.enc_cfg.grid
        with torch.no_grad():
            mlp_err = (wm.decode_proprio(Xv.view(len(Xv), g * g, -1).to(next(wm.parameters()).device)).cpu() - Yv).abs().mean(0)
        use = (err <= mlp_err).tolist()
        err = torch.where(err <= mlp_err, err, mlp_err)
        log.info("goal read-out: MLP decoder held-out error per proprio dim %s", [round(float(v), 5) for v in mlp_err])
    info = {
        "frames": len(X),
        "val_frames": len(Xv),
        "lambda": fit["lambda"],
        "ridge_dims": use,  # per proprio dim: read by the ridge map (True) or by the MLP decoder
        "val_err": [round(float(v), 5) for v in err],
    }
    wm.set_readout(fit["weight"], fit["bias"], info)
    log.info("goal read-out: ridge on %d frames (lambda %s), held-out mean abs error per proprio dim %s", len(X), fit["lambda"], info["val_err"])
    return info


def add_readout(checkpoint: str, data: str | None = None, max_frames: int = 6000) -> dict:
    """Fit the goal read-out of the world model at ``checkpoint`` and rewrite it in place
    (atomically; its meta.json keeps everything else). ``data``: the training dataset,
    by default the one named in the checkpoint's meta.json."""
    from worldjepa.train.checkpoint import read_meta, training_episodes
    from worldjepa.world_model import WorldModel

    meta = read_meta(checkpoint)
    wm = WorldModel.load(checkpoint)
    store, train_eps, val_eps = training_episodes(meta, data, "the read-out is fitted")
    info = fit_goal_readout(wm, store, train_eps, val_eps, max_frames=max_frames)
    wm.save(checkpoint, meta={k: v for k, v in meta.items() if k != "readout"})
    return info
