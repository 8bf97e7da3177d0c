"""Open-loop evaluation of a world model on held-out episodes.

For clips of ``history + H`` model steps, the model rolls out H steps from the first
``history`` observed ones under the recorded actions. Errors per horizon step:

* latent: mean L1 between predicted and encoded true state tokens;
* probe: position error in metres, reading both through a linear probe (state tokens ->
  the task's position quantity) fitted on encoded real frames of training episodes.

Baselines: "copy last" (the last context state, unchanged) and "shuffled actions" (the
same model under another clip's actions: a model that ignores actions scores the same).
"""

from __future__ import annotations

import numpy as np
import torch

from worldjepa.data.clips import ClipDataset
from worldjepa.eval.probe import fit_probe


@torch.no_grad()
def _encode_clips(wm, ds: ClipDataset, idx: list[int], device) -> dict[str, torch.Tensor]:
    items = [ds[i] for i in idx]
    frames = torch.stack([it["frames"] for it in items]).to(device)
    out = {k: torch.stack([it[k] for it in items]).to(device) for k in ("actions", "proprio", "states")}
    patches = torch.cat([wm.encoder.encode_frames(frames[i : i + 16]) for i in range(0, len(frames), 16)])  # (B, T, N, D)
    out["z"] = wm.pool(patches)  # (B, T, K, D)
    if wm.proprio_decoder is not None:
        out["decoded_proprio"] = wm.decode_proprio(patches)  # (B, T, P)
    return out


def held_out_clips(wm, data: str, episodes: list[int], horizon: int, clips: int, seed: int, device):
    """Up to ``clips`` random clips of history + horizon model steps, encoded.

    Returns (history C, clip length T, the rng that chose them, their indices, the batch)."""
    C = wm.spec.history
    T = C + horizon
    test = ClipDataset(data, clip_len=T, frameskip=wm.spec.frameskip, episodes=episodes)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(test), size=min(clips, len(test)), replace=False).tolist()
    return C, T, rng, idx, _encode_clips(wm, test, idx, device)


@torch.no_grad()
def open_loop_errors(
    wm, data: str, train_episodes: list[int], test_episodes: list[int], env, horizon: int = 10, clips: int = 64, seed: int = 0, device="cpu"
) -> dict:
    """Per-horizon errors of the model and the two baselines (see module docstring).

    Returns:
        {"horizon": [1..H], "latent": {"model", "copy_last", "shuffled"}: lists,
         "probe_m": same keys (metres), "probe_name": the probed quantity}.
    """
    wm = wm.to(device).eval()
    C, T, rng, idx, b = held_out_clips(wm, data, test_episodes, horizon, clips, seed, device)
    z, a, p = b["z"], b["actions"], b["proprio"]
    use_p = p[:, :C] if wm.spec.proprio_dim else None
    ctx_a = a[:, : C - 1] if C > 1 else None
    pred, _ = wm.rollout(z[:, :C], a[:, C - 1 : T - 1], use_p, context_actions=ctx_a)
    perm = torch.from_numpy(rng.permutation(len(idx)))
    shuf, _ = wm.rollout(z[:, :C], a[perm, C - 1 : T - 1], use_p, context_actions=ctx_a)
    truth = z[:, C:]
    copy = z[:, C - 1 : C].expand_as(truth)

    def l1(x):
        return (x - truth).abs().mean(dim=(0, 2, 3)).tolist()

    out = {"horizon": list(range(1, horizon + 1)), "latent": {"model": l1(pred), "copy_last": l1(copy), "shuffled": l1(shuf)}}
    if env is None:  # latent errors only (no env to name the probed quantity)
        return out

    # linear probe: state tokens -> the task's first (position) quantity
    train = ClipDataset(data, clip_len=1, frameskip=1, episodes=train_episodes)
    tidx = rng.choice(len(train), size=min(1500, len(train)), replace=False).tolist()
    tb = _encode_clips(wm, train, tidx, device)
    name = next(iter(env.task_state(tb["states"][:1, 0].cpu().numpy().astype(np.float64))))
    Xtr = tb["z"][:, 0].flatten(1).cpu().numpy()
    Ytr = env.task_state(tb["states"][:, 0].cpu().numpy().astype(np.float64))[name]
    true_pos = env.task_state(b["states"][:, C:].cpu().numpy().astype(np.float64))[name]  # (B, H, k)
    probe_err = {}
    for key, x in (("model", pred), ("copy_last", copy), ("shuffled", shuf)):
        Xte = x.flatten(2).cpu().numpy().reshape(-1, Xtr.shape[1])
        est = fit_probe(Xtr, Ytr, Xte, true_pos.reshape(-1, true_pos.shape[-1]))["pred"].reshape(true_pos.shape)
        probe_err[key] = np.linalg.norm(est - true_pos, axis=-1).mean(0).tolist()
    out["probe_m"] = probe_err
    out["probe_name"] = name
    return out


def plot_errors(res: dict, path: str, title: str = "") -> str:
    from worldjepa.eval.plots import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "latent", "latent L1"), (axes[1], "probe_m", f"probe error of {res['probe_name']} (m)")):
        for name, style in (("model", "-o"), ("shuffled", "--s"), ("copy_last", ":^")):
            ax.plot(res["horizon"], res[key][name], style, label=name.replace("_", " "), markersize=3)
        ax.set_xlabel("horizon (model steps)")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


@torch.no_grad()
def goal_ranking(
    wm, data: str, test_episodes: list[int], horizon: int = 5, clips: int = 64, candidates: int = 63, seed: int = 0, device="cpu", proprio_weight: float = 0.0
) -> dict:
    """How well the energy singles out the actions that really reach a goal (a planning proxy).

    For held-out clips, the goal is the encoded frame ``horizon`` model steps after the
    context. The recorded action sequence competes with ``candidates`` uniformly random
    ones; a world model fit for planning gives the recorded one a low energy. The energy
    is the planner's (``proprio_weight`` adds the proprio term, see ``goal_cost``).

    Returns:
        {"rank": mean fraction of random sequences with lower energy than the recorded one
         (0 is best, 0.5 means the energy ignores the actions), "top1": fraction of clips
         where the recorded sequence has the lowest energy}.
    """
    wm = wm.to(device).eval()
    C, T, rng, idx, b = held_out_clips(wm, data, test_episodes, horizon, clips, seed, device)
    z, a, p = b["z"], b["actions"], b["proprio"]
    B, N, A = len(idx), candidates + 1, wm.action_dim
    gen = torch.Generator().manual_seed(seed)
    rand = torch.rand(B, candidates, horizon, A, generator=gen).to(device) * 2 - 1
    acts = torch.cat([a[:, None, C - 1 : T - 1], rand], 1)  # (B, N, H, A), recorded first
    ctx = z[:, :C].repeat_interleave(N, 0)
    use_p = p[:, :C].repeat_interleave(N, 0) if wm.spec.proprio_dim else None
    ctx_a = a[:, : C - 1].repeat_interleave(N, 0) if C > 1 else None
    pred, pred_p = wm.rollout(ctx, acts.flatten(0, 1), use_p, context_actions=ctx_a)
    goal_p = b["decoded_proprio"][:, T - 1].repeat_interleave(N, 0) if proprio_weight > 0 else None
    e = wm.goal_energy(pred, pred_p, z[:, T - 1].repeat_interleave(N, 0), goal_p, proprio_weight=proprio_weight).view(B, N)
    lower = (e[:, 1:] < e[:, :1]).float().mean(1)
    return {"rank": float(lower.mean()), "top1": float((lower == 0).float().mean())}
