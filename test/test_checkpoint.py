"""Checkpoints: safetensors + JSON round trip, and refusal of anything that is not that."""
import json
import pickle

import pytest
import torch

from retf_ros.checkpoint import load_checkpoint, read_metadata, resolve_checkpoint, save_checkpoint
from retf_ros.errors import CheckpointError
from retf_ros.fusion import R3DConfig, R3DModel


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = R3DModel(R3DConfig(num_classes=3, modalities=("skeleton", "depth"), dim=32, heads=4,
                               fusion_heads=4, image_size=(24, 32), max_frames=16, num_queries=4))
    save_checkpoint(tmp_path / "run" / "best", model, {"classes": ["a", "b", "c"], "fps": 15.0})
    return model, tmp_path / "run"


def test_round_trip_restores_identical_weights_and_metadata(saved):
    model, run = saved
    loaded = load_checkpoint(run)  # a run directory means its best checkpoint
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
    assert loaded.classes == ["a", "b", "c"]
    assert loaded.metadata["fps"] == 15.0
    assert loaded.metadata["model_config"]["modalities"] == ["skeleton", "depth"]
    assert loaded.sha256 == loaded.metadata["weights_sha256"] and len(loaded.sha256) == 64
    assert not loaded.model.training
    for alias in (run / "best", run / "best.json", run / "best.safetensors"):
        assert resolve_checkpoint(alias)[0] == run / "best.safetensors"


def test_pickle_checkpoint_is_refused_without_unpickling(saved, tmp_path):
    _, run = saved
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (run / "best.safetensors").write_bytes(pickle.dumps(Exploit(), protocol=4))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(run)
    assert not marker.exists()


def test_torch_save_file_is_refused(saved):
    model, run = saved
    torch.save(model.state_dict(), run / "best.safetensors")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(run)


@pytest.mark.parametrize("damage", ["truncate", "metadata_json", "metadata_format", "config_mismatch", "sha"])
def test_damaged_checkpoints_give_clear_errors(saved, damage):
    _, run = saved
    weights, meta_path = run / "best.safetensors", run / "best.json"
    meta = json.loads(meta_path.read_text())
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "metadata_json":
        meta_path.write_text("{not json")
    elif damage == "metadata_format":
        meta_path.write_text(json.dumps({**meta, "format": "something/else"}))
    elif damage == "config_mismatch":
        meta_path.write_text(json.dumps({**meta, "model_config": {**meta["model_config"], "dim": 64}}))
    else:
        meta_path.write_text(json.dumps({**meta, "weights_sha256": "0" * 64}))
    with pytest.raises(CheckpointError):
        load_checkpoint(run)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="best.safetensors"):
        read_metadata(tmp_path)


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "weights.ckpt", "state.pkl"])
def test_a_pickle_file_name_is_refused_as_a_pickle_not_reported_missing(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert str(path) in message and "pickle" in message and "arbitrary code" in message
    assert "not found" not in message and ".safetensors + .json" in message
