"""Shared fixtures. The DDS network rule lives here, once: every ROS process a test starts
gets its environment from the ``ros_env`` fixture (loopback-only Fast DDS profile, a
ROS_DOMAIN_ID of its own per test worker, ROS_LOG_DIR in a temporary directory)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data next to the checkout (CI); a worktree elsewhere on a development machine finds
# the same folder through RETF_SHARED_DATA or at /work/shared/data.
SHARED_DATA = next((p for p in (REPO_ROOT.parent / "shared" / "data", Path(os.environ.get("RETF_SHARED_DATA", "")),
                                Path("/work/shared/data")) if str(p) != "." and p.is_dir()),
                   REPO_ROOT.parent / "shared" / "data")
PYTHON = sys.executable


def _worker_domain_id() -> int:
    """A ROS_DOMAIN_ID (10..99) of this pytest process's own, so concurrent test runs and
    pytest-xdist workers on one machine do not discover each other's nodes."""
    return 10 + os.getpid() % 90


def _loopback_env(log_dir: Path):
    """The one DDS environment of every test process (see ``ros_env``), then shm clean-up."""
    from retf_ros.harness.loopback import loopback_environment, remove_stale_shm_segments

    yield loopback_environment(_worker_domain_id(), log_dir)
    remove_stale_shm_segments()


@pytest.fixture
def ros_env(tmp_path_factory):
    """Environment dict for subprocesses that use DDS: loopback only, private domain, temp logs.

    Also removes Fast DDS shared-memory segments left behind by killed processes afterwards.
    """
    yield from _loopback_env(tmp_path_factory.mktemp("ros_log"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real recorded data next to the checkout (../shared/data); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not present")
    return SHARED_DATA


# --- small randomly initialised checkpoints (runtime, node and replay tests; no trained weights) ---

TINY_CLASSES = ("idle", "walk", "sit down", "wave")


def write_tiny_checkpoint(path: Path, *, modalities=("rgb", "depth", "skeleton"), classes=TINY_CLASSES,
                          fps: float = 15.0, window: int = 16, horizon_s: float = 4.0,
                          image_size=(24, 32), skeleton_layout: str = "kinect_v2_25", seed: int = 0,
                          anticipates: bool = False) -> Path:
    """Write a small random R3D checkpoint (dim 32) with its metadata; returns the weights path.

    ``anticipates``: push the NONE logit down and sharpen the class head, so the random model
    anticipates actions (a fresh model mostly predicts NONE, which scores 0)."""
    import torch

    from retf_ros.checkpoint import save_checkpoint
    from retf_ros.fusion import R3DConfig, R3DModel

    torch.manual_seed(seed)
    config = R3DConfig(num_classes=len(classes), modalities=tuple(modalities), dim=32,
                       image_size=tuple(image_size), skeleton_layout=skeleton_layout, fusion_heads=4,
                       heads=4, max_frames=window, num_queries=4, encoder_layers=1, ffn_mult=2)
    metadata = {"classes": list(classes), "modalities": list(modalities), "fps": fps, "window": window,
                "horizon_s": horizon_s, "image_size": list(image_size), "skeleton_layout": skeleton_layout,
                "name": "tiny-random", "task": "stream"}
    model = R3DModel(config)
    if anticipates:
        with torch.no_grad():
            model.class_head.bias[-1] = -4.0
            model.class_head.weight.mul_(4.0)
    return save_checkpoint(path, model, metadata)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small random RGB + depth + skeleton checkpoint (15 fps, window 16, horizon 4 s, 4 classes)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


# --- a tiny clip store for training / evaluation tests (retf_ros.training) ---

def write_tiny_clip_store(root: Path, *, clips: int = 6, frames: int = 40, fps: float = 10.0, seed: int = 0,
                          size=(16, 20)):
    """A small clip store (4 classes cycling in order, segment lengths 5-11 frames, RGB red
    channel = 60 x class so the labels are learnable, flat depth, random skeleton whose frames
    3-5 of every clip are all-NaN dropouts). Split "default": 4 train, 1 val, 1 test clips."""
    import numpy as np

    from retf_ros.data.clipstore import Clip, ClipStoreWriter

    rng = np.random.default_rng(seed)
    writer = ClipStoreWriter(Path(root), list(TINY_CLASSES), {
        "fps": fps, "modalities": ["rgb", "depth", "skeleton"], "skeleton_layout": "kinect_v2_25",
        "default_split": "default", "source": "test"})
    ids = []
    for i in range(clips):
        labels = np.zeros(frames, np.int64)
        t, c = 0, int(rng.integers(4))
        while t < frames:
            d = int(rng.integers(5, 12))
            labels[t:t + d] = c
            t, c = t + d, (c + 1) % 4
        rgb = rng.integers(0, 20, (frames, *size, 3)).astype(np.uint8)
        rgb[..., 0] += (labels * 60).astype(np.uint8)[:, None, None]
        depth = np.full((frames, *size), 1500, np.uint16)
        skeleton = rng.normal(0, 0.3, (frames, 25, 3)).astype(np.float32)
        skeleton[3:6] = np.nan
        clip_id = f"clip{i:02d}"
        ids.append(clip_id)
        writer.add(Clip(clip_id, stamps=np.arange(frames) / fps, labels=labels, rgb=rgb, depth=depth,
                        skeleton=skeleton))
    writer.write_split("default", {"train": ids[:-2], "val": ids[-2:-1], "test": ids[-1:]})
    return writer.finish()


@pytest.fixture(scope="session")
def tiny_clip_store(tmp_path_factory):
    """A ClipStore from write_tiny_clip_store (6 clips of 40 frames at 10 fps)."""
    return write_tiny_clip_store(tmp_path_factory.mktemp("tiny_store"))


# Training options for the tiny clip store: a model that trains on it in seconds on one thread.
# Tests add what they vary (epochs, samples_per_clip, batch_size).
TINY_TRAIN_YAML = """\
fps: 5.0
window: 8
horizon_s: 2.0
threads: 1
model: {dim: 32, heads: 4, fusion_heads: 4, image_size: [8, 10], max_frames: 8, num_queries: 4,
        encoder_layers: 1, ffn_mult: 2}
"""


# --- node integration tests: one node + camera + probe shared by a test module ---

@pytest.fixture(scope="module")
def ros_env_shared(tmp_path_factory):
    """``ros_env`` for processes shared by the tests of one module (same loopback settings)."""
    yield from _loopback_env(tmp_path_factory.mktemp("ros_log"))


def serving_session(env: dict, log_dir: Path, **options):
    """start_session (retf_ros.harness.processes) with ``options``, yielded once start-up is over (an
    anticipation with every input ok: until each topic is discovered an anticipation rightly
    reports it missing); stopped afterwards. For module fixtures: ``yield from``."""
    from retf_ros.harness.processes import start_session

    session = start_session(env, log_dir, **options)
    try:
        session.wait_for_anticipation(lambda doc: set(doc["modalities"].values()) == {"ok"}, timeout=150,
                                      what="an anticipation with every modality ok")
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def unique_namespace() -> str:
    """A namespace no concurrent test run uses, so sessions on one DDS domain stay apart."""
    return f"/retf_test_{os.getpid()}_{os.urandom(3).hex()}"


# ---- replay (bags, bag eval, demo): small real inputs shared by test/test_replay_*.py ----
REPLAY_SEED = 4242


def synthetic_world(root: Path, sequences: int, seed: int, min_s: float, max_s: float) -> Path:
    """A clip store of ``sequences`` sequences of the synthetic generator (160x120, 15 fps)."""
    from retf_ros.data.synthetic.generate import SynthConfig, generate_store

    generate_store(root, sequences, seed, SynthConfig(min_duration_s=min_s, max_duration_s=max_s), progress=False)
    return root


@pytest.fixture(scope="session")
def replay_clip_store(tmp_path_factory) -> Path:
    """Two short (8-10 s) sequences of the synthetic generator, 160x120 at 15 fps."""
    return synthetic_world(tmp_path_factory.mktemp("replay") / "clips", 2, REPLAY_SEED, 8.0, 10.0)


@pytest.fixture(scope="session")
def replay_checkpoint(tmp_path_factory, replay_clip_store) -> Path:
    """A small random streaming checkpoint for the synthetic classes at their native 15 fps
    (window 16, horizon 5 s so the 1/2/4 s leads are inside it) that anticipates actions."""
    from retf_ros.data.clipstore import ClipStore

    store = ClipStore(replay_clip_store)
    return write_tiny_checkpoint(tmp_path_factory.mktemp("replay_ckpt") / "tiny", classes=store.classes,
                                 fps=store.fps, window=16, horizon_s=5.0, image_size=(48, 64),
                                 skeleton_layout=store.skeleton_layout, anticipates=True)


@pytest.fixture(scope="session")
def replay_bag(tmp_path_factory, replay_clip_store) -> Path:
    """``replay_clip_store`` exported to an MCAP bag (both clips, 10 s of silence between them)."""
    from retf_ros.data.clipstore import ClipStore
    from retf_ros.bags.export import ExportOptions, export_clip_store

    store = ClipStore(replay_clip_store)
    bag = tmp_path_factory.mktemp("replay_bag") / "sample"
    export_clip_store(store.root, bag, ExportOptions(clip_ids=tuple(store.all_clip_ids())), progress=False)
    return bag
