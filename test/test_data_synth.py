"""The synthetic generator: determinism, sensor realism, and that each branch is announced by a
cue in exactly one modality (the property the fusion ablations rely on)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from retf_ros.data.synthetic import grammar
from retf_ros.data.synthetic.body import joint_index
from retf_ros.data.synthetic.generate import SynthConfig, generate_sequence, split_sequences
from retf_ros.fusion.inputs import DEPTH_SCALE_M, prepare_depth

SHORT = 16.0  # seconds: enough for the first cycle to run through all three branches


@pytest.fixture(scope="module")
def sequence():
    return generate_sequence(seed=5, index=2, duration_s=45.0)


def test_same_seed_gives_identical_arrays_and_other_seeds_differ():
    a = generate_sequence(seed=11, index=0, duration_s=6.0).clip
    b = generate_sequence(seed=11, index=0, duration_s=6.0).clip
    for key in ("rgb", "depth", "skeleton", "labels", "stamps", "intrinsics"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    c = generate_sequence(seed=12, index=0, duration_s=6.0).clip
    d = generate_sequence(seed=11, index=1, duration_s=6.0).clip
    assert not np.array_equal(a.rgb, c.rgb) and not np.array_equal(a.rgb, d.rgb)
    assert not np.allclose(a.intrinsics, c.intrinsics)  # camera pose/intrinsics vary per sequence


def test_shapes_dtypes_and_sensor_effects(sequence):
    clip = sequence.clip
    n = clip.num_frames
    assert n == int(45.0 * 15)
    assert clip.rgb.shape == (n, 120, 160, 3) and clip.rgb.dtype == np.uint8
    assert clip.depth.shape == (n, 120, 160) and clip.depth.dtype == np.uint16
    assert clip.skeleton.shape == (n, 25, 3) and clip.skeleton.dtype == np.float32
    np.testing.assert_allclose(clip.stamps, np.arange(n) / 15.0)
    assert clip.labels.dtype == np.int64 and set(np.unique(clip.labels)) <= set(range(len(grammar.CLASSES)))
    valid = clip.depth[clip.depth > 0]
    assert 400 <= valid.min() and valid.max() <= 4500
    invalid_fraction = float((clip.depth == 0).mean())
    assert 0.003 < invalid_fraction < 0.5
    # Depth noise: the same static pixel is not constant over time.
    assert clip.depth[:, 110, 80].std() > 1.0
    # Skeleton: dropped joints and whole-frame dropouts are NaN, the rest finite and metric.
    dropped_frames = np.isnan(clip.skeleton).all(axis=(1, 2))
    assert 0 < dropped_frames.sum() < 0.05 * n
    partly = np.isnan(clip.skeleton).any(axis=(1, 2)) & ~dropped_frames
    assert partly.sum() > 0
    z = clip.skeleton[..., 2][np.isfinite(clip.skeleton[..., 2])]
    assert 1.0 < z.min() and z.max() < 4.0


def test_limb_lengths_are_human_and_constant_within_a_sequence(sequence):
    J = joint_index()
    s = sequence.clip.skeleton
    for a, b, lo, hi in (("shoulder_right", "elbow_right", 0.25, 0.37), ("elbow_right", "wrist_right", 0.22, 0.33),
                         ("pelvis", "spine_shoulder", 0.42, 0.62)):
        length = np.linalg.norm(s[:, J[a]] - s[:, J[b]], axis=-1)
        length = length[np.isfinite(length)]
        assert lo < np.median(length) < hi, (a, b)
        assert np.std(length) < 0.02  # only tracker jitter


def test_the_grammar_uses_every_class_and_cycles_repeat(sequence):
    assert set(np.unique(sequence.clip.labels)) == set(range(len(grammar.CLASSES)))
    assert len(sequence.plan.cycles) >= 3


def _frames_before(seq, t):
    return seq.clip.stamps < t


def _world(seq, joints_cam):
    return joints_cam @ seq.camera.rotation + seq.camera.centre


def _branch_pair(cue: str):
    """The same sequence with its first cycle's ``cue`` branch forced true and false, the time the
    cue is revealed and the frames before it."""
    true = generate_sequence(seed=3, index=0, duration_s=SHORT, force={(0, cue): True})
    false = generate_sequence(seed=3, index=0, duration_s=SHORT, force={(0, cue): False})
    reveal = true.plan.cycles[0].reveal_s[cue]
    return true, false, reveal, _frames_before(true, reveal)


def _assert_same_before(true, false, before, arrays: tuple[str, ...]) -> None:
    for name in arrays:
        np.testing.assert_array_equal(getattr(true.clip, name)[before], getattr(false.clip, name)[before],
                                      err_msg=name)


def _assert_only_the_true_branch_does(true, false, action: str) -> None:
    """The outcome follows the cue: ``action`` happens in the first cycle of the true branch only."""
    cycle0 = true.clip.stamps < true.plan.cycles[0].end_s
    class_id = grammar.CLASS_ID[action]
    assert (true.clip.labels[cycle0] == class_id).any() and not (false.clip.labels[cycle0] == class_id).any()


def test_colour_cue_is_only_in_rgb():
    red, blue, reveal, before = _branch_pair("colour")
    assert reveal == blue.plan.cycles[0].reveal_s["colour"] and reveal > 2.0
    _assert_same_before(red, blue, before, ("depth", "skeleton", "labels"))
    assert not np.array_equal(red.clip.rgb[before], blue.clip.rgb[before])
    # The part's pixel is red / blue in RGB while the branch is still ahead.
    frames = np.flatnonzero(before & red.part_visible)
    u, v = np.rint(red.part_pixel[frames]).astype(int).T
    r_px = red.clip.rgb[frames, v, u].astype(int)
    b_px = blue.clip.rgb[frames, v, u].astype(int)
    assert np.median(r_px[:, 0] - r_px[:, 2]) > 60
    assert np.median(b_px[:, 2] - b_px[:, 0]) > 60
    # ... and the outcome follows: red parts get screwed, blue ones do not.
    _assert_only_the_true_branch_does(red, blue, "screw")


def test_tray_cue_is_only_in_depth():
    near, far, reveal, before = _branch_pair("tray")
    assert reveal > 4.0
    _assert_same_before(near, far, before, ("rgb", "skeleton"))
    # Depth inside the tray's image rectangle is the near or the far distance.
    lo = np.ceil(near.tray.corners.min(0)).astype(int) + 1
    hi = np.floor(near.tray.corners.max(0)).astype(int) - 1
    patch_near = near.clip.depth[before, lo[1]:hi[1], lo[0]:hi[0]].astype(float)
    patch_far = far.clip.depth[before, lo[1]:hi[1], lo[0]:hi[0]].astype(float)
    assert abs(np.median(patch_near[patch_near > 0]) - 1000 * near.tray.z_near) < 10
    assert abs(np.median(patch_far[patch_far > 0]) - 1000 * near.tray.z_far) < 15
    assert near.tray.z_far - near.tray.z_near > 0.3
    _assert_only_the_true_branch_does(near, far, "hand_over")


@pytest.mark.parametrize("size", [(160, 120), (64, 48)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_a_fixed_3x3_core_of_the_model_grid_shows_the_tray_distance_in_every_sequence(size):
    """Wherever a sequence places the tray, the same 9 pixels of the 24x32 depth the model sees
    hold the tray's distance, so the cue needs no search for the tray to be read."""
    width, height = size
    config = SynthConfig(width=width, height=height)
    for index in range(40):
        seq = generate_sequence(seed=8, index=index, config=config, duration_s=0.2)
        z = seq.tray.z_near if seq.plan.cycles[0].tray_near else seq.tray.z_far
        core = prepare_depth(seq.clip.depth[:1], (24, 32))[0, 0, 4:7, 25:28].numpy() * DEPTH_SCALE_M
        valid = core > 0  # a sensor hole may blank a pixel; what is there is the tray
        assert valid.sum() >= 7, (index, core)
        np.testing.assert_allclose(core[valid], z, atol=0.02, err_msg=f"sequence {index}")


def test_gesture_cue_is_only_in_the_skeleton():
    up, flat, reveal, before = _branch_pair("gesture")
    assert reveal > 3.0
    _assert_same_before(up, flat, before, ("rgb", "depth"))
    J = joint_index()
    lift_up = _thumb_lift(up, before, J)
    lift_flat = _thumb_lift(flat, before, J)
    assert np.nanmedian(lift_up) > 0.04 and np.nanmedian(lift_flat) < 0.02
    # Only the hand-tip and thumb joints carry it.
    others = [i for i in range(25) if i not in (J["thumb_left"], J["hand_tip_left"])]
    np.testing.assert_array_equal(up.clip.skeleton[before][:, others], flat.clip.skeleton[before][:, others])
    _assert_only_the_true_branch_does(up, flat, "inspect")


def _thumb_lift(seq, frames, J) -> np.ndarray:
    """Height of the left thumb above the left hand centre (world up, metres), per frame."""
    world = _world(seq, seq.clip.skeleton[frames].astype(np.float64))
    return world[:, J["thumb_left"], 2] - world[:, J["hand_left"], 2]


def test_every_branch_outcome_is_announced_by_its_cue(sequence):
    """Over a whole sequence with random outcomes: each cycle's cue (read from the data of its
    modality before the branch) predicts the action that follows."""
    J = joint_index()
    clip = sequence.clip
    lo = np.ceil(sequence.tray.corners.min(0)).astype(int) + 1
    hi = np.floor(sequence.tray.corners.max(0)).astype(int) - 1
    threshold_mm = 500 * (sequence.tray.z_near + sequence.tray.z_far)
    checked = 0
    for cycle in sequence.plan.cycles:
        if cycle.end_s >= clip.stamps[-1]:
            continue  # cut by the end of the sequence
        window = (clip.stamps >= cycle.start_s)
        in_cycle = window & (clip.stamps < cycle.end_s)
        labels = set(clip.labels[in_cycle].tolist())
        # colour (RGB)
        frames = np.flatnonzero(window & (clip.stamps < cycle.reveal_s["colour"]) & sequence.part_visible)
        u, v = np.rint(sequence.part_pixel[frames]).astype(int).T
        px = clip.rgb[frames, v, u].astype(int)
        looks_red = np.median(px[:, 0] - px[:, 2]) > 0
        assert looks_red == cycle.red == (grammar.CLASS_ID["screw"] in labels)
        # tray (depth)
        frames = window & (clip.stamps < cycle.reveal_s["tray"])
        patch = clip.depth[frames, lo[1]:hi[1], lo[0]:hi[0]]
        looks_near = np.median(patch[patch > 0]) < threshold_mm
        assert looks_near == cycle.tray_near == (grammar.CLASS_ID["hand_over"] in labels)
        # gesture (skeleton)
        frames = window & (clip.stamps < cycle.reveal_s["gesture"])
        thumb_up = np.nanmedian(_thumb_lift(sequence, frames, J)) > 0.03
        assert thumb_up == cycle.thumb_up == (grammar.CLASS_ID["inspect"] in labels)
        checked += 1
    assert checked >= 2


def test_branch_outcomes_are_balanced_coins():
    rng = np.random.default_rng(0)
    plan = grammar.plan_sequence(rng, duration_s=4000.0, speed=1.0)
    for branch in grammar.BRANCHES:
        rate = np.mean([c.outcome(branch) for c in plan.cycles])
        assert 0.4 < rate < 0.6, branch
    lead = np.array([c.reveal_s["colour"] - c.start_s for c in plan.cycles])
    assert lead.min() > 1.5  # announced seconds ahead


def test_splits_partition_sequences_70_15_15():
    parts = split_sequences(60, seed=0)
    assert [len(parts[p]) for p in ("train", "val", "test")] == [42, 9, 9]
    every = parts["train"] + parts["val"] + parts["test"]
    assert sorted(every) == [f"synth_{i:04d}" for i in range(60)]
    assert split_sequences(60, seed=0) == parts and split_sequences(60, seed=1) != parts


def test_resolution_and_fps_are_configurable():
    seq = generate_sequence(seed=0, index=0, config=SynthConfig(width=96, height=72, fps=10.0), duration_s=3.0)
    assert seq.clip.rgb.shape == (30, 72, 96, 3) and seq.clip.depth.shape == (30, 72, 96)
    np.testing.assert_allclose(seq.clip.stamps[1], 0.1)


def test_one_cycle_clips_follow_the_plan_of_the_first_cycle_of_the_continuous_sequence():
    whole = generate_sequence(seed=7, index=3, duration_s=45.0)
    one = generate_sequence(seed=7, index=3, config=SynthConfig(cycles=1))
    first = whole.plan.cycles[0]
    assert len(one.plan.cycles) == 1 and one.plan.cycles[0] == first
    assert one.plan.segments == tuple(s for s in whole.plan.segments if s.cycle == 0)
    assert one.plan.duration_s == first.end_s == one.plan.segments[-1].end_s
    labels = one.clip.labels
    assert one.clip.num_frames == int(np.floor(first.end_s * 15.0))
    np.testing.assert_array_equal(labels, whole.clip.labels[:len(labels)])
    assert grammar.CLASSES[labels[0]] == "idle" and grammar.CLASSES[labels[-1]] == "retract"
    two = generate_sequence(seed=7, index=3, config=SynthConfig(cycles=2))
    assert two.plan.cycles == whole.plan.cycles[:2]


def test_retf_synth_writes_a_clip_store_and_reports_speed(tmp_path, capsys):
    from retf_ros.cli import main
    from retf_ros.data.clipstore import ClipStore

    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--sequences", "3", "--seed", "4",
                 "--min-duration", "6", "--max-duration", "8", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 sequences" in printed and "with 2 process(es)" in printed and "frames/s per core" in printed
    store = ClipStore(out)
    assert store.meta["source"] == "synthetic" and store.meta["generator"]["seed"] == 4
    assert store.modalities == ["rgb", "depth", "skeleton"] and store.classes == list(grammar.CLASSES)
    assert store.skeleton_layout == "kinect_v2_25" and store.fps == 15.0 and store.meta["resolution"] == [160, 120]
    parts = [store.clip_ids("default", p) for p in ("train", "val", "test")]
    assert sorted(sum(parts, [])) == ["synth_0000", "synth_0001", "synth_0002"] and all(len(p) == 1 for p in parts)
    cycles = json.loads((out / "cycles" / "synth_0001.json").read_text())
    assert cycles["cue_modality"] == {"colour": "rgb", "gesture": "skeleton", "tray": "depth"}
    assert cycles["cycles"][0]["start_s"] == 0.0 and set(cycles["cycles"][0]["outcome"]) == set(grammar.BRANCHES)
    clip = store.load("synth_0001")
    direct = generate_sequence(seed=4, index=1, config=SynthConfig(min_duration_s=6, max_duration_s=8)).clip
    np.testing.assert_array_equal(clip.rgb, direct.rgb)
    np.testing.assert_array_equal(clip.skeleton, direct.skeleton)


def test_retf_synth_preview_and_bad_arguments(tmp_path, capsys):
    import cv2

    from retf_ros.cli import main

    png = tmp_path / "sheet.png"
    assert main(["synth", "--preview", str(png), "--seed", "1", "--min-duration", "20", "--max-duration", "20"]) == 0
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] == 6 * (2 * 160 + 4) and image.shape[0] > 3 * 2 * 120
    capsys.readouterr()
    assert main(["synth"]) == 2
    assert "give --out DIR" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "x"), "--width", "8"]) == 2
    assert main(["synth", "--out", str(tmp_path / "x"), "--cycles", "0"]) == 2
    assert "--cycles must be at least 1" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["synth", "--out", str(busy), "--sequences", "1"]) == 2
    assert "not a clip store" in capsys.readouterr().err and (busy / "notes.txt").exists()
