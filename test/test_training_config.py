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


def test_default_frame_rate_is_the_stores_capped_so_the_window_spans_3_2_seconds():
    from retf_ros.training.recipe import default_fps, describe, format_recipe

    assert default_fps(30.0, 32) == 10.0 and default_fps(5.0, 32) == 5.0 and default_fps(30.0, 64) == 20.0
    capped = describe(load_config(None, {}), 10.0, 30.0, train_clips=8, val_clips=2)
    assert capped["fps_source"] == "capped from the store's 30 so the window spans 3.2 s"
    assert capped["select_by"] == "val_moc" and capped["validation_alphas"] == [0.15, 0.2, 0.25, 0.3, 0.35]
    text = format_recipe(capped)
    assert "8 training / 2 validation clips" in text and "fps 10 (capped" in text and "validation MoC" in text
    assert describe(load_config(None, {"fps": 5.0}), 5.0, 30.0, 8, 2)["fps_source"] == "configured"
