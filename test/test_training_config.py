"""Training options: defaults < YAML < command line, refusal of unknown or data-owned keys, and
the shipped config files."""
from __future__ import annotations

from pathlib import Path

import pytest

from retf_ros.errors import RetfError
from retf_ros.fusion import R3DConfig
from retf_ros.training.config import load_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def test_command_line_overrides_the_yaml_which_overrides_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\nlr: 0.01\nmodel: {dim: 64, fusion: sum}\n")
    config = load_config(path, {"lr": 0.5, "seed": None, "model.fusion": "concat"})
    assert (config.epochs, config.lr, config.seed, config.batch_size) == (7, 0.5, 1, 8)
    assert config.model == {"dim": 64, "fusion": "concat"}


@pytest.mark.parametrize("text, message", [
    ("epochz: 3\n", "unknown option"),
    ("task: online\n", "task must be"),
    ("model: {num_classes: 3}\n", "comes from the data"),
    ("window: 0\n", "window must be >= 1"),
])
def test_bad_options_are_refused_naming_them(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RetfError, match=message):
        load_config(path, {})


@pytest.mark.parametrize("name", ["train_synth", "ablate_synth", "train_utkinect", "train_ntu"])
def test_shipped_training_configs_load_and_build_a_model_config(name):
    config = load_config(CONFIG_DIR / f"{name}.yaml", {})
    model = R3DConfig(num_classes=9, **config.model)
    assert config.window <= model.max_frames
    assert config.task in ("stream", "protocol")
