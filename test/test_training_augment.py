"""Training augmentation (training/augment.py): skeleton rotation / scale / noise, temporal speed
change and random observation ratios, and their record in the recipe."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from retf_ros.training import windows
from retf_ros.training.augment import Augmentation, rotate_vertical
from retf_ros.training.config import load_config
from retf_ros.training.dataset import TaskSpec, WindowDataset
from retf_ros.training.prepared import PrepareSpec, PreparedCache

SPEC = PrepareSpec(modalities=("rgb", "depth", "skeleton"), fps=5.0, image_size=(8, 10), depth_size=(8, 10),
                   skeleton_layout="kinect_v2_25", source_layout="kinect_v2_25")
STREAM = TaskSpec(task="stream", window=6, horizon=5, num_queries=4, none_class=4)
PROTOCOL = TaskSpec(task="protocol", window=6, horizon=0, num_queries=4, none_class=4, alphas=(0.2, 0.3, 0.5))


@pytest.fixture
def cache(tiny_clip_store, tmp_path):
    return PreparedCache(tiny_clip_store, tmp_path / "cache", SPEC)


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, x)


def test_rotation_about_the_vertical_keeps_bone_lengths_and_heights():
    joints = torch.randn(4, 25, 3)
    turned = rotate_vertical(joints, math.radians(37.0))
    torch.testing.assert_close(_pairwise(turned), _pairwise(joints), atol=1e-5, rtol=0)
    torch.testing.assert_close(turned[..., 1], joints[..., 1])
    # a quarter turn maps x to -z and z to x
    point = torch.tensor([[1.0, 2.0, 0.0]])
    torch.testing.assert_close(rotate_vertical(point, math.pi / 2), torch.tensor([[0.0, 2.0, -1.0]]),
                               atol=1e-6, rtol=0)


def test_skeleton_augmentation_rotates_scales_and_leaves_absent_joints_at_zero():
    joints = torch.randn(6, 25, 3)
    joints[2] = 0.0          # a frame without a skeleton
    joints[:, 7] = 0.0       # a joint the sensor never delivered
    present = torch.ones(6, dtype=torch.bool)
    present[2] = False
    rotation_only = Augmentation(rotation_deg=45.0)
    out = rotation_only.apply_skeleton(joints, present, np.random.default_rng(0))
    torch.testing.assert_close(_pairwise(out[0]), _pairwise(joints[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[..., 1], joints[..., 1])
    assert not torch.allclose(out, joints)
    assert out[2].eq(0).all() and out[:, 7].eq(0).all()

    scale_only = Augmentation(scale=0.2)
    scaled = scale_only.apply_skeleton(joints, present, np.random.default_rng(1))
    factor = (scaled[0].norm() / joints[0].norm()).item()
    assert 0.8 <= factor <= 1.2 and abs(factor - 1.0) > 1e-3
    torch.testing.assert_close(scaled, joints * factor, atol=1e-5, rtol=0)


def test_joint_noise_has_the_configured_spread_on_delivered_joints_only():
    joints = torch.ones(200, 25, 3)
    present = torch.ones(200, dtype=torch.bool)
    present[:50] = False
    joints[:50] = 0.0
    out = Augmentation(joint_noise=0.05).apply_skeleton(joints, present, np.random.default_rng(2))
    noise = out[50:] - joints[50:]
    assert abs(noise.std().item() - 0.05) < 0.003 and abs(noise.mean().item()) < 0.003
    assert out[:50].eq(0).all()


@pytest.mark.parametrize("speed", [0.8, 1.0, 1.25])
def test_speed_change_reads_window_and_future_at_that_pace_with_the_right_lengths(speed):
    window = windows.stream_window(100, 8, speed)
    future = windows.stream_future(100, 10, speed)
    assert window.shape == (8,) and future.shape == (10,)
    assert window[-1] == 100 and window[0] == 100 - round(speed * 7)
    assert future[0] == 100 + round(speed) and future[-1] == 100 + round(speed * 10)
    assert (np.diff(window) >= 0).all() and (np.diff(future) >= 0).all()
    if speed == 1.0:
        np.testing.assert_array_equal(window, np.arange(93, 101))
        np.testing.assert_array_equal(future, np.arange(101, 111))
    # the observed prefix of 10 frames played at this speed: round(10 / speed) frames
    prefix = windows.protocol_window(10, 16, speed)
    kept = prefix[prefix >= 0]
    assert len(kept) == round(10 / speed) and kept[0] == 0 and kept[-1] == 9


def test_stream_window_at_a_faster_speed_near_the_clip_start_pads_after_the_frames():
    np.testing.assert_array_equal(windows.stream_window(4, 6, 2.0), [0, 2, 4, -1, -1, -1])


def test_augmentation_off_gives_the_samples_drawn_without_it(cache):
    plain = WindowDataset(cache, ["clip00", "clip01"], STREAM, samples_per_clip=4, train=True, seed=5)
    off = WindowDataset(cache, ["clip00", "clip01"], STREAM, samples_per_clip=4, train=True, seed=5,
                        augmentation=Augmentation())
    for index in range(8):
        a, b = plain[index], off[index]
        assert torch.equal(a["frame_labels"], b["frame_labels"])
        assert torch.equal(a["inputs"]["skeleton"], b["inputs"]["skeleton"])


def test_augmented_training_samples_are_reproducible_and_validation_is_never_augmented(cache):
    augmentation = Augmentation(rotation_deg=30.0, scale=0.1, joint_noise=0.01, speed=0.2)
    train = WindowDataset(cache, ["clip00", "clip01"], STREAM, samples_per_clip=4, train=True, seed=5,
                          augmentation=augmentation)
    plain = WindowDataset(cache, ["clip00", "clip01"], STREAM, samples_per_clip=4, train=True, seed=5)
    assert torch.equal(train[3]["inputs"]["skeleton"], train[3]["inputs"]["skeleton"])
    assert any(not torch.equal(train[i]["inputs"]["skeleton"], plain[i]["inputs"]["skeleton"]) for i in range(8))
    val = WindowDataset(cache, ["clip00"], STREAM, samples_per_clip=3, train=False, augmentation=augmentation)
    val_plain = WindowDataset(cache, ["clip00"], STREAM, samples_per_clip=3, train=False)
    for index in range(3):
        assert torch.equal(val[index]["inputs"]["skeleton"], val_plain[index]["inputs"]["skeleton"])


def test_random_observation_ratios_draw_alphas_between_the_configured_ones(cache):
    data = WindowDataset(cache, ["clip00"], PROTOCOL, samples_per_clip=40, train=True, seed=1,
                         augmentation=Augmentation(random_ratios=True))
    observed = {int(data[i]["mask"].sum()) for i in range(40)}
    n = cache.open("clip00").num_frames
    fixed = {min(windows.observed_length(n, a), PROTOCOL.window) for a in PROTOCOL.alphas}
    assert observed - fixed  # lengths the three fixed ratios never give
    lowest = windows.observed_length(n, 0.2)
    assert min(observed) >= lowest


def test_recipe_records_and_prints_the_augmentation():
    from retf_ros.training.recipe import describe, format_recipe

    assert "augmentation none" in format_recipe(describe(load_config(None, {}), 10.0, 30.0, 8, 2))
    on = load_config(None, {"augment_rotation_deg": 30.0, "augment_scale": 0.1, "augment_joint_noise": 0.01,
                            "augment_speed": 0.2, "random_ratios": True, "task": "protocol"})
    recipe = describe(on, 10.0, 30.0, train_clips=8, val_clips=2)
    assert recipe["augmentation"] == {"skeleton_rotation_deg": 30.0, "skeleton_scale": 0.1,
                                      "skeleton_joint_noise": 0.01, "speed_change": 0.2,
                                      "random_observation_ratios": True}
    text = format_recipe(recipe)
    assert ("rotation about the vertical +-30 deg, scale 1+-0.1, joint noise sd 0.01 torso, speed 1+-0.2, "
            "random observation ratios") in text


def test_a_run_saved_before_the_augmentation_options_resumes_only_without_augmentation():
    from retf_ros.training.trainer import changed_options

    current = load_config(None, {}).to_dict()
    saved = {k: v for k, v in current.items() if not k.startswith("augment_") and k != "random_ratios"}
    assert changed_options(saved, current) == []
    augmented = load_config(None, {"augment_speed": 0.2}).to_dict()
    assert changed_options(saved, augmented) == ["augment_speed"]
    assert changed_options(saved, {**current, "epochs": 99}) == []
