"""`retf train --init CHECKPOINT`: fine-tuning keeps encoders, fuser and temporal model, and
rebuilds the class heads exactly when the class list differs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import TINY_CLASSES, write_tiny_checkpoint
from retf_ros.checkpoint import load_checkpoint
from retf_ros.errors import RetfError
from retf_ros.fusion import R3DModel
from retf_ros.training.config import load_config
from retf_ros.training.finetune import load_initial_weights
from retf_ros.training.trainer import Trainer

FINETUNE_CONFIG = "fps: 5.0\nwindow: 8\nhorizon_s: 2.0\nepochs: 1\nsamples_per_clip: 4\nbatch_size: 8\nthreads: 1\n"
HEADS = {"class_head.weight", "class_head.bias", "segmentation_head.weight", "segmentation_head.bias"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("base") / "base", window=16)


@pytest.fixture(scope="module")
def renamed_store(tiny_clip_store, tmp_path_factory):
    """The tiny store with other class names (same number): the heads must not be reused."""
    root = tmp_path_factory.mktemp("renamed") / "store"
    shutil.copytree(tiny_clip_store.root, root)
    (root / "mapping.txt").write_text("".join(f"{i} task_{i}\n" for i in range(len(TINY_CLASSES))))
    return root


def _trainer(store_root, base, tmp_path, **overrides) -> Trainer:
    (tmp_path / "ft.yaml").write_text(FINETUNE_CONFIG)
    config = load_config(tmp_path / "ft.yaml", {"cache_dir": str(tmp_path / "cache"), "device": "cpu",
                                                "init": str(base), **overrides})
    return Trainer(config, store_root, tmp_path / "run", command="pytest")


def _initialised(trainer: Trainer):
    model = R3DModel(trainer.model_config)
    fresh = load_initial_weights(model, trainer.init, trainer.store.classes)
    return model, fresh


def test_same_classes_keep_every_weight(tiny_clip_store, base, tmp_path):
    trainer = _trainer(tiny_clip_store.root, base, tmp_path)
    assert trainer.model_config.image_size == (24, 32) and trainer.model_config.max_frames == 16  # the checkpoint's
    model, fresh = _initialised(trainer)
    assert fresh == []
    source = load_checkpoint(base).model.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, source[name]), name


def test_other_classes_rebuild_only_the_class_heads(renamed_store, base, tmp_path):
    trainer = _trainer(renamed_store, base, tmp_path)
    model, fresh = _initialised(trainer)
    assert set(fresh) == HEADS
    source = load_checkpoint(base).model.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, source[name]) != (name in HEADS), name
    kept = {name.split(".")[0] for name in model.state_dict() if name not in HEADS}
    assert {"encoders", "fusion", "encoder", "decoder", "queries", "position", "duration_head"} <= kept


def test_a_checkpoint_needing_a_modality_the_data_lacks_is_refused(tiny_clip_store, base, tmp_path):
    with pytest.raises(RetfError, match="the checkpoint uses rgb, depth, skeleton but the data has no rgb, depth"):
        _trainer(tiny_clip_store.root, base, tmp_path, modalities=["skeleton"])


def test_train_init_cli_fine_tunes_and_records_the_initial_checkpoint(renamed_store, base, tmp_path):
    (tmp_path / "ft.yaml").write_text(FINETUNE_CONFIG)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "retf_ros", "train", "--data", str(renamed_store), "--out", str(out),
                             "--config", str(tmp_path / "ft.yaml"), "--init", str(base), "--device", "cpu",
                             "--cache-dir", str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert f"initialised from {base}" in result.stderr
    assert "rebuilt: class_head, segmentation_head" in result.stderr
    metadata = json.loads((out / "best.json").read_text())
    assert metadata["classes"] == [f"task_{i}" for i in range(len(TINY_CLASSES))]
    assert metadata["training"]["init"] == {"path": str(base), "sha256": load_checkpoint(base).sha256}
