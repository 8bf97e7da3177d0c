"""Refit the prior of a categorical latent model on what its own codes predict.

At test time futures are drawn from the prior p(z_t | state, action), so a code the prior
names must be one whose prediction fits what happens. Trained jointly with everything
else, the prior is far from that: on Hazard it gave the code that fits a gust step 11-12 %
of its mass on the training transitions themselves (uniform over 8 codes is 12.5 %), and
64 % of its mass went to codes more than 6 cm from every possible outcome
(docs/BENCHMARKS.md section 5, thirteenth session). The dynamics were fine: for 92 % of the
gust steps some code predicted each outcome to within 6 cm.

The refit freezes everything but the prior. For each model step of the training episodes
(one observed frame, the step's actions, its proprio), every code's one-step proprio
prediction is compared with the real next proprio, and the code that fits best wins, by
the rule the model was trained with (``wta_winner``; the checkpoint's
``objective.z_wta_margin``, 0 for a posterior-trained model). The prior is then fitted to
the winners by cross-entropy (Adam), and the epoch with the lowest cross-entropy on the
checkpoint's held-out episodes is kept. ``worldjepa train`` does it at the end
(``prior_refit_epochs``); ``worldjepa refit-prior <ckpt>`` does it for an existing model.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from worldjepa.data.episodes import EpisodeStore

log = logging.getLogger("worldjepa")


@torch.no_grad()
def code_targets(
    wm, store: EpisodeStore, episodes: list[int], margin: float, kind: str, batch: int = 256, tolerance: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The prior's inputs and targets on one-step transitions of ``episodes``, one per
    model step (stride = the frameskip): features (n, S), actions (n, A) and the targets:
    with ``tolerance`` 0, the winning code (n,) among ``all_codes`` (the one whose proprio
    prediction fits the real next proprio best, ``wta_winner`` with ``margin``; ``kind`` is
    the proprio loss, l1 or mse); with ``tolerance`` > 0, a mask (n, M) of every code whose
    prediction is within ``tolerance`` (L2, proprio units) of the best one's distance, the
    winner included."""
    from worldjepa.train.world import proprio_err, wta_winner

    fs = wm.spec.frameskip
    frames, acts, p0, p1 = [], [], [], []
    for e in episodes:
        ep = store.load(e)
        for t in range(0, len(ep["actions"]) - fs + 1, fs):
            frames.append(ep["frames"][t])
            acts.append(ep["actions"][t : t + fs].reshape(-1))
            p0.append(ep["proprio"][t])
            p1.append(ep["proprio"][t + fs])
    if not frames:
        raise ValueError(f"no model step of {fs} env steps fits in episodes {list(episodes)[:5]}...: the prior cannot be refitted")
    device = next(wm.parameters()).device
    feats, actions, wins = [], [], []
    for i in range(0, len(frames), batch):
        fr = torch.from_numpy(np.stack(frames[i : i + batch])).to(device)[:, None]
        a = torch.from_numpy(np.stack(acts[i : i + batch])).float().to(device)[:, None]
        p = torch.from_numpy(np.stack(p0[i : i + batch])).float().to(device)[:, None]
        nxt = torch.from_numpy(np.stack(p1[i : i + batch])).float().to(device)[:, None]  # (b, 1, P)
        ctx = wm.encode(fr)
        every = wm.code_predictions(ctx, a, p)  # (b, M, P)
        dist = (every - nxt).norm(dim=-1)  # (b, M)
        win = wta_winner(proprio_err(every, nxt, kind), dist, margin)
        if tolerance > 0:
            fit = dist <= dist.min(-1, keepdim=True).values + tolerance
            win = fit.scatter(-1, win[:, None], True)
        wins.append(win)
        feats.append(wm.latent_features(ctx, p)[:, 0].float())
        actions.append(a[:, 0])
    return torch.cat(feats), torch.cat(actions), torch.cat(wins)


def prior_ce(latent, feats: torch.Tensor, actions: torch.Tensor, wins: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats, mean) of the prior's code distribution against the winners
    (n,), or, for a mask of fitting codes (n, M), minus the log of the prior's mass on them."""
    logp = latent.code_log_probs(latent.prior(feats, actions))
    if wins.dim() == 2:
        return -torch.logsumexp(logp.masked_fill(~wins, float("-inf")), -1).mean()
    return -logp.gather(-1, wins[:, None]).mean()


def fit_prior(latent, train: tuple, val: tuple, epochs: int, lr: float = 1e-3, batch: int = 256, seed: int = 0) -> dict:
    """Fit ``latent``'s prior network to ``train`` = (features, actions, winners) by
    cross-entropy for ``epochs``; keep the epoch with the lowest cross-entropy on ``val``.
    Returns {"epochs", "best_epoch", "train_ce_before/after", "val_ce_before/after"}."""
    if epochs < 1:
        raise ValueError(f"the prior refit needs epochs >= 1, got {epochs}")
    if len(train[2]) == 0 or len(val[2]) == 0:
        raise ValueError(f"the prior refit needs training and held-out transitions, got {len(train[2])} and {len(val[2])}")
    net = latent.prior_net
    with torch.no_grad():
        before = (float(prior_ce(latent, *train)), float(prior_ce(latent, *val)))
    best, best_state, best_epoch = before[1], copy.deepcopy(net.state_dict()), 0
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    was_training = latent.training
    latent.train()
    n = len(train[2])
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen).to(train[2].device)
        for i in range(0, n, batch):
            j = perm[i : i + batch]
            loss = prior_ce(latent, train[0][j], train[1][j], train[2][j])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            v = float(prior_ce(latent, *val))
        if v < best:
            best, best_state, best_epoch = v, copy.deepcopy(net.state_dict()), epoch
        if epoch % 50 == 0 or epoch == epochs:
            log.info(f"prior refit: epoch {epoch}/{epochs}, held-out cross-entropy {v:.3f} nats (best {best:.3f} at epoch {best_epoch})")
    net.load_state_dict(best_state)
    latent.train(was_training)
    with torch.no_grad():
        after = (float(prior_ce(latent, *train)), float(prior_ce(latent, *val)))
    return {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "train_ce_before": before[0],
        "train_ce_after": after[0],
        "val_ce_before": before[1],
        "val_ce_after": after[1],
    }


def refit_prior(checkpoint: str, data: str | None = None, epochs: int = 300, lr: float = 1e-3, seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """Refit the prior of the categorical latent model at ``checkpoint`` (module docstring)
    and rewrite the checkpoint in place, atomically; meta.json keeps everything else and
    records the refit under ``prior_refit``. ``data``: the training dataset, by default the
    one named in the checkpoint's meta.json. ``device``: where the model runs for it."""
    from worldjepa.train.checkpoint import read_meta, training_episodes
    from worldjepa.world_model import WorldModel

    meta = read_meta(checkpoint)
    wm = WorldModel.load(checkpoint, map_location=device)
    if wm.latent is None or wm.latent.cfg.kind != "categorical":
        raise ValueError(f"{checkpoint}: refitting the prior needs a categorical latent variable (predictor.z_dim > 0, predictor.z_kind=categorical)")
    if not wm.spec.proprio_dim:
        raise ValueError(f"{checkpoint}: the refit picks each step's code by its proprio prediction, and this model predicts no proprio")
    store, train_eps, val_eps = training_episodes(meta, data, "the prior is refitted")
    if not val_eps:
        raise ValueError(f"{checkpoint}: the refit keeps the epoch that does best on held-out episodes, and its meta.json lists none")
    obj = meta.get("objective", {})
    margin = float(obj.get("z_wta_margin", 0.0)) if obj.get("z_assign") == "wta" else 0.0
    kind = str(obj.get("proprio_loss", "l1"))
    train = code_targets(wm, store, train_eps, margin, kind)
    val = code_targets(wm, store, val_eps, margin, kind)
    info = fit_prior(wm.latent, train, val, epochs, lr=lr, seed=seed)
    info.update(transitions=len(train[2]), val_transitions=len(val[2]))
    wm.save(checkpoint, meta={**{k: v for k, v in meta.items() if k != "prior_refit"}, "prior_refit": info})
    return info
