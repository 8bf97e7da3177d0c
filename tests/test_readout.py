"""The goal read-out: a ridge map from patch tokens to proprio, fitted after training."""

import shutil

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from tests.test_world_model import decoded  # noqa: F401  (the module-scoped fixture)
from worldjepa.data.episodes import EpisodeStore
from worldjepa.train.checkpoint import CheckpointError, load_state, read_meta, save_checkpoint
from worldjepa.train.readout import _moving_frames, add_readout, fit_ridge
from worldjepa.world_model import WorldModel


def test_ridge_recovers_a_linear_map_and_shrinks_what_it_cannot_read():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(40, 1, generator=g)
    X, Xv = torch.randn(300, 40, generator=g), torch.randn(100, 40, generator=g)
    # column 0 is a linear function of X; column 1 is noise no feature explains
    Y = torch.cat([X @ W + 0.3, torch.randn(300, 1, generator=g)], 1)
    Yv = torch.cat([Xv @ W + 0.3, torch.randn(100, 1, generator=g)], 1)
    fit = fit_ridge(X, Y, Xv, Yv)
    pred = Xv @ fit["weight"] + fit["bias"]
    assert (pred[:, 0] - Yv[:, 0]).abs().mean() < 0.05 * Yv[:, 0].abs().mean()
    # each column gets its own strength: little shrinkage for the readable one, much for the noise
    assert fit["lambda"][0] < fit["lambda"][1]
    assert fit["val_err"][0] < 0.05 < fit["val_err"][1]
    with pytest.raises(ValueError, match="at least 2 training frames"):
        fit_ridge(X[:1], Y[:1], Xv, Yv)


def test_repeated_frames_are_fitted_once():
    p = np.array([[0.0, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0], [0.2, 0.1]])
    assert _moving_frames(p).tolist() == [0, 1, 4]


def test_readout_reads_held_out_frames_and_survives_save_load(decoded, tiny_reach_dataset, tmp_path):  # noqa: F811
    model, run = decoded
    ck = str(tmp_path / "wm")
    shutil.copytree(f"{run}/final", ck)
    info = add_readout(ck, tiny_reach_dataset, max_frames=500)
    assert info["frames"] > 20 and len(info["val_err"]) == model.spec.proprio_dim
    # per dimension, the better of the ridge map and the MLP decoder on held-out frames
    assert len(info["ridge_dims"]) == model.spec.proprio_dim and all(isinstance(u, bool) for u in info["ridge_dims"])
    wm = WorldModel.load(ck)
    assert wm.readout is not None and read_meta(ck)["readout"]["frames"] == info["frames"]
    # everything else of the checkpoint is kept
    assert read_meta(ck)["train_episodes"] == read_meta(f"{run}/final")["train_episodes"]
    store = EpisodeStore(tiny_reach_dataset)
    ep = store.load(read_meta(ck)["val_episodes"][0] if read_meta(ck)["val_episodes"] else 3)
    with torch.no_grad():
        _, got = wm.encode_goal(torch.from_numpy(ep["frames"]))
    true = torch.from_numpy(ep["proprio"])
    mean = torch.from_numpy(np.concatenate([store.load(i)["proprio"] for i in range(len(store))]).mean(0))
    # the joint angles (cos, sin) of unseen frames: better than the data's mean
    assert (got - true)[:, :4].abs().mean() < 0.85 * (mean - true)[:, :4].abs().mean()
    # save -> load gives the same read-out; a checkpoint whose weights lack it is refused
    again = WorldModel.load(wm.save(str(tmp_path / "again")))
    with torch.no_grad():
        assert torch.equal(again.encode_goal(torch.from_numpy(ep["frames"]))[1], got)
    state = {k: v for k, v in load_state(ck).items() if not k.startswith("readout.")}
    save_checkpoint(str(tmp_path / "broken"), torch.nn.Module(), read_meta(ck))
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "broken" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="readout"):
        WorldModel.load(str(tmp_path / "broken"))


def test_readout_bad_input(decoded, tiny_reach_dataset, tmp_path):  # noqa: F811
    model, run = decoded
    with pytest.raises(ValueError, match="read-out weight must be"):
        model.set_readout(torch.zeros(3, 6), torch.zeros(6))
    ck = str(tmp_path / "wm")
    shutil.copytree(f"{run}/final", ck)
    with pytest.raises(FileNotFoundError, match="not a dataset directory"):
        add_readout(ck, str(tmp_path / "nowhere"))
    res = run_cli("readout", ck, "frames=100", "colour=red")
    assert res.returncode == 2 and "unknown: colour" in res.stderr
    res = run_cli("readout", ck, f"data={tiny_reach_dataset}", "frames=200")
    assert res.returncode == 0, res.stderr
    assert "readout" in read_meta(ck)
