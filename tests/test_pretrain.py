import os

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from worldjepa.data.clips import ClipDataset
from worldjepa.models.encoder import EncoderConfig, VideoEncoder
from worldjepa.train.checkpoint import CheckpointError, load_checkpoint, load_state, load_strict, save_checkpoint
from worldjepa.train.loop import TrainConfig, Trainer, TrainingDiverged, latest_checkpoint, lr_at
from worldjepa.train.pretrain import JEPAConfig, PretrainTask, load_encoder, pretrain, set_seed

TINY = EncoderConfig(image_size=64, patch=16, tubelet=2, dim=48, depth=2, heads=2)
OBJ = JEPAConfig(pred_dim=32, pred_depth=1, pred_heads=2, batch_size=8, clip_len=4)


def make_task(data, steps, obj=OBJ, seed=0):
    set_seed(seed)
    ds = ClipDataset(data, clip_len=obj.clip_len)
    return PretrainTask(ds, ds, TINY, obj, steps)


def cfg(steps, **kw):
    return TrainConfig(**{"steps": steps, "lr": 2e-3, "warmup": 3, "ckpt_every": 5, "log_every": 1, "monitor_every": 0, "progress": False, **kw})


def test_loss_falls(tiny_reach_dataset, tmp_path):
    task = make_task(tiny_reach_dataset, 40)
    Trainer(task, cfg(40), str(tmp_path), {}).fit()
    import csv

    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


@pytest.mark.parametrize("reg", ["vicreg", "sigreg"])
def test_regularised_objectives_train(tiny_reach_dataset, tmp_path, reg):
    obj = JEPAConfig(**{**OBJ.__dict__, "reg": reg, "reg_weight": 0.1})
    task = make_task(tiny_reach_dataset, 6, obj)
    last = Trainer(task, cfg(6), str(tmp_path), {}).fit()
    assert np.isfinite(last["loss"]) and (("sigreg" in last) if reg == "sigreg" else ("vicreg_var" in last))


def test_resume_is_bit_for_bit(tiny_reach_dataset, tmp_path):
    straight = make_task(tiny_reach_dataset, 10)
    Trainer(straight, cfg(10), str(tmp_path / "a"), {}).fit()
    # a run killed at step 7 (after its step-5 checkpoint), then resumed from scratch objects

    class Killed(PretrainTask):
        def batch(self, step, device):
            if step == 7:
                raise KeyboardInterrupt
            return super().batch(step, device)

    set_seed(0)
    ds = ClipDataset(tiny_reach_dataset, clip_len=4)
    with pytest.raises(KeyboardInterrupt):
        Trainer(Killed(ds, ds, TINY, OBJ, 10), cfg(10), str(tmp_path / "b"), {}).fit()
    assert latest_checkpoint(str(tmp_path / "b")).endswith("step_0000005")
    second = make_task(tiny_reach_dataset, 10, seed=123)  # other initial weights: resume must overwrite them
    Trainer(second, cfg(10), str(tmp_path / "b"), {}).fit()
    sa, sb = straight.module.state_dict(), second.module.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_average_last_makes_final_the_mean_of_the_last_checkpoints(tiny_reach_dataset, tmp_path):
    """``train.average_last``: final holds the mean weights of the last N checkpoints (and
    says which); the plain run's final is the last step's; bad settings and mixed
    checkpoints are refused."""
    from worldjepa.train.checkpoint import average_states, read_meta

    Trainer(make_task(tiny_reach_dataset, 15), cfg(15, keep_last=3, average_last=3), str(tmp_path / "avg"), {}).fit()
    ck = tmp_path / "avg" / "checkpoints"
    states = [load_state(str(ck / f"step_{s:07d}")) for s in (5, 10, 15)]
    final = load_state(str(tmp_path / "avg" / "final"))
    assert read_meta(str(tmp_path / "avg" / "final"))["averaged_steps"] == [5, 10, 15]
    moved = [k for k in final if final[k].is_floating_point() and not torch.equal(states[0][k], states[2][k])]
    assert moved  # the weights changed between the checkpoints, so the mean is not any one of them
    for k in moved:
        assert torch.allclose(final[k], (states[0][k] + states[1][k] + states[2][k]) / 3, atol=1e-6), k
        assert not torch.equal(final[k], states[2][k])
    Trainer(make_task(tiny_reach_dataset, 10), cfg(10), str(tmp_path / "plain"), {}).fit()
    plain = load_state(str(tmp_path / "plain" / "final"))
    last = load_state(str(tmp_path / "plain" / "checkpoints" / "step_0000010"))
    assert all(torch.equal(plain[k], last[k]) for k in plain) and "averaged_steps" not in read_meta(str(tmp_path / "plain" / "final"))
    with pytest.raises(ValueError, match="average_last must be in \\[0, keep_last\\]"):
        cfg(10, keep_last=2, average_last=4)
    other = save_checkpoint(str(tmp_path / "other"), VideoEncoder(EncoderConfig(image_size=64, patch=16, tubelet=2, dim=32, depth=1, heads=2)), {})
    with pytest.raises(CheckpointError, match="cannot be averaged"):
        average_states([str(ck / "step_0000015"), other])


def test_a_copied_last_checkpoint_in_a_new_run_dir_only_writes_final(tiny_reach_dataset, tmp_path):
    """A checkpoint copied into a fresh run dir at the run's last step (to refit or evaluate a
    trained model on other data): fit runs no step, final holds the checkpoint's weights, and
    the learning-curve plot skips the metrics.csv that no step wrote instead of failing."""
    import shutil

    from worldjepa.eval.plots import plot_metrics

    Trainer(make_task(tiny_reach_dataset, 5), cfg(5), str(tmp_path / "a"), {}).fit()
    assert plot_metrics(str(tmp_path / "a" / "metrics.csv"), str(tmp_path / "a.png"), ["loss"]) == str(tmp_path / "a.png")
    assert os.path.getsize(tmp_path / "a.png") > 0
    os.makedirs(tmp_path / "b" / "checkpoints")
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step_0000005", tmp_path / "b" / "checkpoints" / "step_0000005")
    Trainer(make_task(tiny_reach_dataset, 5, seed=123), cfg(5), str(tmp_path / "b"), {}).fit()
    copied, final = load_state(str(tmp_path / "a" / "final")), load_state(str(tmp_path / "b" / "final"))
    assert all(torch.equal(copied[k], final[k]) for k in copied)
    assert not os.path.exists(tmp_path / "b" / "metrics.csv")
    assert plot_metrics(str(tmp_path / "b" / "metrics.csv"), str(tmp_path / "b.png"), ["loss"]) is None
    assert not os.path.exists(tmp_path / "b.png")


def test_nan_guard_keeps_last_good_checkpoint(tiny_reach_dataset, tmp_path):
    class Poisoned(PretrainTask):
        def after_step(self, step):
            super().after_step(step)
            if step == 6:  # weights go bad after the 7th step
                with torch.no_grad():
                    next(self.module.encoder.parameters()).fill_(float("nan"))

    set_seed(0)
    ds = ClipDataset(tiny_reach_dataset, clip_len=4)
    task = Poisoned(ds, ds, TINY, OBJ, 20)
    with pytest.raises(TrainingDiverged, match="step 7.*Last good checkpoint: .*step_0000005"):
        Trainer(task, cfg(20), str(tmp_path), {}).fit()
    good = latest_checkpoint(str(tmp_path))
    assert good.endswith("step_0000005")
    state = load_state(good)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_checkpoint_is_strict_and_atomic(tmp_path):
    enc = VideoEncoder(TINY)
    path = save_checkpoint(str(tmp_path / "ck"), enc, {"encoder": TINY.to_dict()})
    assert sorted(os.listdir(path)) == ["meta.json", "model.safetensors"]
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]
    other = VideoEncoder(EncoderConfig(image_size=64, patch=16, dim=64, depth=3, heads=2))
    with pytest.raises(CheckpointError, match="another architecture.*unexpected keys: blocks.2|missing keys: blocks.2"):
        load_checkpoint(path, other)
    with pytest.raises(CheckpointError, match=r"shape mismatches: .*\(48,\) vs model \(64,\)"):
        load_checkpoint(path, other)
    state = load_state(path)
    del state["norm.weight"]
    with pytest.raises(CheckpointError, match="missing keys: norm.weight"):
        load_strict(VideoEncoder(TINY), state)
    # a truncated weights file is named
    f = os.path.join(path, "model.safetensors")
    open(f, "wb").write(open(f, "rb").read()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors: cannot read weights"):
        load_checkpoint(path, VideoEncoder(TINY))
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        load_checkpoint(str(tmp_path / "nope"), enc)


def test_lr_schedules():
    c = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(c, 0) == pytest.approx(0.1) and lr_at(c, 9) == pytest.approx(1.0)
    assert lr_at(c, 99) == pytest.approx(0.1, abs=1e-3)
    w = TrainConfig(steps=100, lr=1.0, warmup=10, schedule="wsd", decay_frac=0.2, min_lr_ratio=0.0)
    assert lr_at(w, 50) == 1.0 and lr_at(w, 90) == pytest.approx(0.5) and lr_at(w, 100) == 0.0
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


def test_pretrain_end_to_end_and_encoder_loading(tiny_reach_dataset, tmp_path):
    run = str(tmp_path / "run")
    pretrain(tiny_reach_dataset, run, TINY, OBJ, cfg(4))
    enc = load_encoder(os.path.join(run, "final"))
    assert enc.cfg == TINY
    with pytest.raises(CheckpointError, match="holds no 'decoder' weights"):
        load_encoder(os.path.join(run, "final"), which="decoder")


def test_pretrain_refuses_wrong_image_size(tiny_reach_dataset, tmp_path):
    with pytest.raises(ValueError, match="dataset frames are 64 px but the encoder expects 32 px"):
        pretrain(tiny_reach_dataset, str(tmp_path), EncoderConfig(image_size=32, patch=8, dim=48, depth=1, heads=2), OBJ, cfg(2))


def test_cli_pretrain_bad_config(tiny_reach_dataset, tmp_path):
    res = run_cli("pretrain", f"data={tiny_reach_dataset}", f"run_dir={tmp_path}", "objective.foo=1")
    assert res.returncode != 0 and "foo" in res.stderr
    res = run_cli("pretrain", f"data={tiny_reach_dataset}", f"run_dir={tmp_path}", "model.dim=100")
    assert res.returncode == 2 and "divisible by heads" in res.stderr
    res = run_cli("pretrain", f"data={tmp_path}/missing", f"run_dir={tmp_path}/r")
    assert res.returncode == 2 and "no dataset directory" in res.stderr


def test_probe_beats_random_encoder(tmp_path_factory):
    """V-JEPA pre-training (with VICReg) gives a better linear state probe than the same
    encoder at random initialisation, on held-out episodes of a small real dataset."""
    import envs
    from worldjepa.data.collect import collect
    from worldjepa.data.episodes import EpisodeStore
    from worldjepa.eval.probe import probe_encoder

    root = str(tmp_path_factory.mktemp("probe") / "reach")
    collect("reach", episodes=12, out=root, episode_len=30, progress=False)
    run = str(tmp_path_factory.mktemp("probe_run"))
    obj = JEPAConfig(pred_dim=32, pred_depth=1, pred_heads=2, batch_size=16, reg="vicreg", reg_weight=1.0)
    pretrain(root, run, TINY, obj, TrainConfig(steps=60, lr=2e-3, warmup=5, progress=False, monitor_every=0))
    store, env = EpisodeStore(root), envs.make("reach").unwrapped
    train_eps, test_eps = list(range(9)), [9, 10, 11]
    set_seed(0)
    floor = probe_encoder(VideoEncoder(TINY), store, env, train_eps, test_eps, stride=1)
    ours = probe_encoder(load_encoder(os.path.join(run, "final")), store, env, train_eps, test_eps, stride=1)
    assert ours["r2/mean"] > floor["r2/mean"]
    assert ours["r2/fingertip"] > 0.8
