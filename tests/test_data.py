import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from worldjepa.data.clips import ClipDataset, split_episodes
from worldjepa.data.collect import collect
from worldjepa.data.episodes import DatasetCorruptError, DatasetError, EpisodeStore


def test_collected_dataset_layout(tiny_reach_dataset):
    store = EpisodeStore(tiny_reach_dataset)
    assert len(store) == 4 and store.meta["task"] == "reach"
    ep = store.load(0)
    assert ep["frames"].shape == (21, 64, 64, 3) and ep["frames"].dtype == np.uint8
    assert ep["actions"].shape == (20, 2) and ep["proprio"].shape == (21, 6)
    assert ep["states"].shape == (21, store.meta["state_dim"])
    assert np.all(np.abs(ep["actions"]) <= 1.0)
    assert [e["seed"] for e in store.entries] == [0, 1, 2, 3]
    assert store.verify() == []


def test_states_replay_the_stored_frames(tiny_reach_dataset):
    """The stored state of step t, restored in a fresh env, renders the stored frame t."""
    import envs

    store = EpisodeStore(tiny_reach_dataset)
    ep = store.load(1)
    env = envs.make("reach").unwrapped
    env.reset(seed=0)
    env.set_state(ep["states"][7])
    obs, *_ = env.step(ep["actions"][7])
    np.testing.assert_array_equal(obs["pixels"], ep["frames"][8])


def test_clip_dataset(tiny_reach_dataset):
    ds = ClipDataset(tiny_reach_dataset, clip_len=4, frameskip=2)
    assert len(ds) == 4 * (20 - 8 + 1)
    item = ds[len(ds) - 1]
    assert item["frames"].shape == (4, 64, 64, 3) and item["frames"].dtype == torch.uint8
    assert item["actions"].shape == (4, 4) and item["actions"].dtype == torch.float32
    assert item["proprio"].shape == (4, 6)
    ep_idx, t0 = ds.locate(len(ds) - 1)
    ep = ds.store.load(ep_idx)
    np.testing.assert_array_equal(item["frames"].numpy(), ep["frames"][[t0, t0 + 2, t0 + 4, t0 + 6]])
    # the actions of a clip step are the frameskip env actions after its frame, concatenated
    np.testing.assert_array_equal(item["actions"][1].numpy(), ep["actions"][t0 + 2 : t0 + 4].reshape(-1))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)
    batch = next(iter(loader))
    assert batch["frames"].shape == (8, 4, 64, 64, 3)
    with pytest.raises(ValueError, match="long enough"):
        ClipDataset(tiny_reach_dataset, clip_len=30)


def test_clip_dataset_stride_starts_on_held_blocks(tiny_reach_dataset):
    """stride=s: clips start only at steps 0, s, 2s, ... of each episode (20 steps each here)."""
    ds = ClipDataset(tiny_reach_dataset, clip_len=2, frameskip=5, stride=5)
    # span 10 steps: starts 0, 5, 10 fit in 20 steps (a start at 15 would need 25)
    assert len(ds) == 4 * 3
    starts = sorted({ds.locate(i)[1] for i in range(len(ds))})
    assert starts == [0, 5, 10]
    ep_idx, t0 = ds.locate(5)
    assert (ep_idx, t0) == (ds.episodes[1], 10)
    ep = ds.store.load(ep_idx)
    np.testing.assert_array_equal(ds[5]["actions"][1].numpy(), ep["actions"][15:20].reshape(-1))
    # stride 1 is every start, as before
    assert len(ClipDataset(tiny_reach_dataset, clip_len=2, frameskip=5)) == 4 * 11
    with pytest.raises(ValueError, match="stride must be > 0"):
        ClipDataset(tiny_reach_dataset, clip_len=2, frameskip=5, stride=0)


def test_split_episodes_is_disjoint_and_deterministic():
    tr, va = split_episodes(50, 0.2, seed=1)
    assert len(va) == 10 and not set(tr) & set(va) and sorted(tr + va) == list(range(50))
    assert split_episodes(50, 0.2, seed=1) == (tr, va)


def test_append_same_task_and_refuse_other_task(tmp_path):
    out = str(tmp_path / "ds")
    collect("tworoom", episodes=2, out=out, episode_len=5, progress=False)
    collect("tworoom", episodes=1, out=out, episode_len=5, progress=False)
    store = EpisodeStore(out)
    assert [e["seed"] for e in store.entries] == [0, 1, 2]
    before = open(os.path.join(out, "index.jsonl")).read()
    with pytest.raises(DatasetError, match="another kind.*task: dataset has 'tworoom', asked 'push'"):
        collect("push", episodes=1, out=out, episode_len=5, progress=False)
    assert open(os.path.join(out, "index.jsonl")).read() == before
    assert EpisodeStore(out).verify() == []


def test_refuse_non_dataset_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty and is not a worldjepa dataset"):
        collect("reach", episodes=1, out=str(tmp_path), episode_len=5, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_missing_dataset():
    with pytest.raises(FileNotFoundError, match="no dataset directory"):
        EpisodeStore("/nonexistent/dataset")


def _copy_dataset(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


def test_corrupt_episode_is_named(tiny_reach_dataset, tmp_path):
    root = _copy_dataset(tiny_reach_dataset, tmp_path / "ds")
    path = os.path.join(root, "episodes", "ep_000002.npz")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    store = EpisodeStore(root)
    store.load(0)
    with pytest.raises(DatasetCorruptError, match="ep_000002.npz: checksum mismatch"):
        store.load(2)
    problems = EpisodeStore(root).verify()
    assert len(problems) == 1 and "ep_000002.npz" in problems[0]


def test_truncated_episode_is_named(tiny_reach_dataset, tmp_path):
    root = _copy_dataset(tiny_reach_dataset, tmp_path / "ds")
    path = os.path.join(root, "episodes", "ep_000001.npz")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])
    with pytest.raises(DatasetCorruptError, match="ep_000001.npz"):
        EpisodeStore(root).load(1)
    os.remove(path)
    with pytest.raises(DatasetCorruptError, match="ep_000001.npz: episode file listed in index.jsonl is missing"):
        EpisodeStore(root).load(1)


def test_corrupt_index_line_is_named(tiny_reach_dataset, tmp_path):
    root = _copy_dataset(tiny_reach_dataset, tmp_path / "ds")
    idx = os.path.join(root, "index.jsonl")
    lines = open(idx).read().splitlines()
    lines[1] = lines[1][:20]
    open(idx, "w").write("\n".join(lines) + "\n")
    with pytest.raises(DatasetCorruptError, match="index.jsonl: line 2"):
        EpisodeStore(root)


def test_interrupted_index_append_is_ignored_then_repaired(tiny_reach_dataset, tmp_path):
    root = _copy_dataset(tiny_reach_dataset, tmp_path / "ds")
    idx = os.path.join(root, "index.jsonl")
    with open(idx, "a") as f:
        f.write('{"file": "episodes/ep_0000')  # a crash in the middle of an append
    open(os.path.join(root, "episodes", "ep_000004.npz.123.tmp"), "wb").write(b"partial")
    assert len(EpisodeStore(root)) == 4
    collect("reach", episodes=1, out=root, episode_len=20, progress=False)
    store = EpisodeStore(root)
    assert len(store) == 5 and store.verify() == []
    assert not [n for n in os.listdir(os.path.join(root, "episodes")) if n.endswith(".tmp")]
    assert all(json.loads(line) for line in open(idx))


def _append_tagged(root, tag, n):
    store = EpisodeStore(root)
    for i in range(n):
        length = 3 + i % 3
        episode = {
            "frames": np.full((length + 1, 4, 4, 3), tag, np.uint8),
            "actions": np.zeros((length, 2), np.float32),
            "proprio": np.zeros((length + 1, 4), np.float32),
            "states": np.zeros((length + 1, 4)),
            "goal_pixels": np.zeros((4, 4, 3), np.uint8),
            "goal_state": np.zeros(2),
            "success": np.zeros(length + 1, bool),
            "distance": np.zeros(length + 1, np.float32),
        }
        store.append(episode, {"seed": int(tag) * 100 + i, "policy": "test"})


def test_two_processes_append_to_one_dataset(tmp_path):
    """Two writers side by side (two `plan record=` runs on one dataset): every episode is
    kept under its own file, the index lists each once, and every checksum holds."""
    import multiprocessing

    root = str(tmp_path / "ds")
    meta = {"task": "test", "env_kwargs": {}, "image_size": 4, "action_dim": 2, "proprio_dim": 4, "state_dim": 4}
    EpisodeStore.create_or_append(root, meta)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_tagged, args=(root, tag, 12)) for tag in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = EpisodeStore(root)
    assert len(store) == 24 and len({e["file"] for e in store.entries}) == 24
    assert sorted(e["seed"] for e in store.entries) == sorted([100 + i for i in range(12)] + [200 + i for i in range(12)])
    assert store.verify() == []
    for i, e in enumerate(store.entries):
        assert int(store.load(i)["frames"][0, 0, 0, 0]) == e["seed"] // 100


def test_kill_during_collection_keeps_a_readable_dataset(tmp_path):
    out = str(tmp_path / "ds")
    cmd = [sys.executable, "-m", "worldjepa.cli", "collect", "env=tworoom", "episodes=500", "episode_len=10", f"out={out}", "progress=false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    idx = os.path.join(out, "index.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(idx) and open(idx).read().count("\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EpisodeStore(out)
    assert 3 <= len(store) < 500
    assert store.verify() == []
    n = len(store)
    collect("tworoom", episodes=2, out=out, episode_len=10, progress=False)
    assert len(EpisodeStore(out)) == n + 2 and EpisodeStore(out).verify() == []


def test_parallel_collection_matches_serial(tmp_path):
    """Two worker processes produce exactly the episodes one process does (same seeds)."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    collect("push", episodes=3, out=a, episode_len=8, workers=1, progress=False)
    collect("push", episodes=3, out=b, episode_len=8, workers=2, progress=False)
    sa, sb = EpisodeStore(a), EpisodeStore(b)
    assert len(sb) == 3
    for i in range(3):
        for key in ("frames", "actions", "states"):
            np.testing.assert_array_equal(sa.load(i)[key], sb.load(i)[key])


def test_cli_collect_and_info(tmp_path):
    out = str(tmp_path / "ds")
    res = run_cli("collect", "env=push", "episodes=2", "episode_len=6", f"out={out}", "progress=false")
    assert res.returncode == 0, res.stderr
    res = run_cli("dataset", "info", out)
    assert res.returncode == 0, res.stderr
    assert "episodes        2" in res.stdout
    assert os.path.getsize(os.path.join(out, "contact_sheet.png")) > 1000
    res = run_cli("dataset", "verify", out)
    assert res.returncode == 0 and "2 of 2 episodes OK" in res.stdout


def test_cli_bad_inputs(tmp_path):
    res = run_cli("collect", "env=reach", "episodez=3", f"out={tmp_path}/x")
    assert res.returncode != 0 and "episodez" in res.stderr
    res = run_cli("collect", "env=rech", f"out={tmp_path}/x")
    assert res.returncode != 0 and "rech" in res.stderr
    res = run_cli("collect", "env=reach", "env.image_size=0", f"out={tmp_path}/x")
    assert res.returncode == 2 and "image_size must be a positive integer" in res.stderr
    res = run_cli("dataset", "info", str(tmp_path / "missing"))
    assert res.returncode == 2 and "no dataset directory" in res.stderr
    res = run_cli("frobnicate")
    assert res.returncode == 2 and "unknown command 'frobnicate'" in res.stderr


def test_collect_policy_hold_is_recorded(tmp_path):
    """collect(policy_hold=5) stores held actions and says so in each episode's entry."""
    out = str(tmp_path / "held")
    store = collect("hazard", episodes=1, out=out, episode_len=10, policy_hold=5, progress=False)
    a = store.load(0)["actions"]
    assert np.all(a[:5] == a[0]) and np.all(a[5:] == a[5])
    assert store.entries[0]["policy_hold"] == 5
    from worldjepa.train.world import held_block_mismatch

    # training clips must not cut across the held blocks
    assert held_block_mismatch(store, [0], clip_stride=5, frameskip=5) is None
    assert "clip_stride=1" in held_block_mismatch(store, [0], clip_stride=1, frameskip=5)
    assert "frameskip=2" in held_block_mismatch(store, [0], clip_stride=5, frameskip=2)
    with pytest.raises(ValueError, match="policy_hold must be >= 1"):
        collect("hazard", episodes=1, out=out, episode_len=10, policy_hold=0, progress=False)


def test_rare_clip_weights_find_the_clips_that_hold_a_jump(tmp_path):
    """Proprio that follows the actions linearly except for one jump per episode (a gust's
    push): exactly the clips whose span holds the jump are drawn 1 + factor times as often."""
    from worldjepa.data.clips import rare_clip_weights
    from worldjepa.train.world import WorldObjective

    root = str(tmp_path / "ds")
    meta = {"task": "test", "env_kwargs": {}, "image_size": 4, "action_dim": 2, "proprio_dim": 2, "state_dim": 2}
    EpisodeStore.create_or_append(root, meta)
    store, rng, length, jumps = EpisodeStore(root), np.random.default_rng(0), 40, []
    for i in range(30):
        a = rng.uniform(-1, 1, (length, 2)).astype(np.float32)
        steps = 0.05 * a + rng.normal(0, 0.002, a.shape)
        jump = int(rng.integers(0, length))
        steps[jump, 1] += 0.5
        jumps.append(jump)
        p = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, 0)]).astype(np.float32)
        episode = {
            "frames": np.zeros((length + 1, 4, 4, 3), np.uint8),
            "actions": a,
            "proprio": p,
            "states": p.astype(np.float64),
            "goal_pixels": np.zeros((4, 4, 3), np.uint8),
            "goal_state": np.zeros(2),
            "success": np.zeros(length + 1, bool),
            "distance": np.zeros(length + 1, np.float32),
        }
        store.append(episode, {"seed": i, "policy": "test"})
    ds = ClipDataset(root, clip_len=3, frameskip=2, stride=2)
    n = 30 * length  # env steps; the cut falls between the 30 jumps and the largest ordinary step
    w, stats = rare_clip_weights(ds, factor=4.0, quantile=(n - 30 - 0.5) / (n - 1))
    expect = np.array([1.0 + 4.0 * (t0 <= jumps[e] < t0 + 4) for e, t0 in (ds.locate(i) for i in range(len(ds)))])
    np.testing.assert_array_equal(w, expect)
    assert 0 < stats["clips_with_rare"] < 0.2 and stats["drawn_share"] > stats["clips_with_rare"]
    with pytest.raises(ValueError, match="factor"):
        rare_clip_weights(ds, factor=-1.0)
    with pytest.raises(ValueError, match="quantile"):
        rare_clip_weights(ds, factor=1.0, quantile=1.0)
    with pytest.raises(ValueError, match="oversample"):
        WorldObjective(oversample=-1.0)
