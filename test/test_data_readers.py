"""Dataset importers on small fixtures written here in the public formats (docs/data.md)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from retf_ros.cli import main
from retf_ros.data.clipstore import ClipStore
from retf_ros.data.readers import import_futr, import_ntu, import_utkinect
from retf_ros.errors import DataFormatError


# ---------------------------------------------------------------- UTKinect-Action3D
def _joint_values(frame: int) -> list[float]:
    return [round(frame * 0.001 + j * 0.01, 4) for j in range(60)]


def _joints_file(path, frames, first_copy_marker=None):
    lines = []
    for frame in frames:
        values = _joint_values(frame)
        if first_copy_marker is not None and frame == first_copy_marker[0]:
            values = [first_copy_marker[1]] * 60
            first_copy_marker = None  # only the first occurrence is marked
        lines.append(" ".join([str(frame)] + [f"{v:g}" for v in values]))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def utkinect(tmp_path):
    src = tmp_path / "UTKinect"
    (src / "joints").mkdir(parents=True)
    # s01_e01: ids with gaps and a repeated id (112 twice; the first line is marked 7.0).
    _joints_file(src / "joints" / "joints_s01_e01.txt", [100, 102, 104, 112, 112, 113, 130, 131, 150],
                 first_copy_marker=(112, 7.0))
    _joints_file(src / "joints" / "joints_s09_e02.txt", [10, 11, 12, 13])
    _joints_file(src / "joints" / "joints_s02_e01.txt", [5, 6, 7])
    bad = src / "joints" / "joints_s03_e01.txt"
    bad.write_text("1 " + " ".join(["0.1"] * 60) + "\n2 " + " ".join(["0.1"] * 50) + "\n")
    (src / "actionLabel.txt").write_text(
        "s01_e01\nwalk: 102 104\nsitDown: NaN NaN\nstandUp: 112 130\npickUp: 150 150\n"
        "s09_e02\nwalk: 10 11\nclapHands: 12 13\n"
        "s02_e01\nthrow: 5 7\n"
        "s03_e01\nwalk: 1 2\n")
    return src


def test_utkinect_frames_labels_stamps_and_split(utkinect, tmp_path):
    result = import_utkinect(utkinect, tmp_path / "out")
    assert result.clips == 3 and result.frames == 8 + 4 + 3
    assert len(result.problems) == 1 and "joints_s03_e01.txt:2: expected 60 numbers, found 50" in result.problems[0]
    store = ClipStore(tmp_path / "out")
    assert store.classes[0] == "undefined" and store.classes[1] == "walk" and len(store.classes) == 11
    assert store.skeleton_layout == "kinect_v1_20" and store.modalities == ["skeleton"]
    clip = store.load("s01_e01")
    ids = np.array([100, 102, 104, 112, 113, 130, 131, 150])
    np.testing.assert_allclose(clip.stamps, ids / 30.0)
    name = [store.classes[i] for i in clip.labels]
    assert name == ["undefined", "walk", "walk", "standUp", "standUp", "standUp", "undefined", "pickUp"]
    assert clip.skeleton.shape == (8, 20, 3) and clip.skeleton.dtype == np.float32
    np.testing.assert_array_equal(clip.skeleton[3], np.full((20, 3), 7.0, np.float32))  # first copy of id 112
    np.testing.assert_allclose(clip.skeleton[0].ravel(), _joint_values(100), atol=1e-6)
    assert store.default_split == "cross_subject"
    assert store.clip_ids("cross_subject", "train") == ["s01_e01"]
    assert store.clip_ids("cross_subject", "val") == ["s09_e02"]
    assert store.clip_ids("cross_subject", "test") == ["s02_e01"]
    assert store.fps == pytest.approx(30.0)  # median id step is 1 here


def test_utkinect_cli_reports_skipped_files_and_missing_src(utkinect, tmp_path, capsys):
    assert main(["data", "import", "utkinect", str(utkinect), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "imported 3 clips" in captured.out and "joints_s03_e01.txt:2" in captured.err
    assert main(["data", "import", "utkinect", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 2
    assert "SRC" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "import", "utkinect", str(empty), "--out", str(tmp_path / "o3")]) == 2
    assert "no actionLabel.txt found" in capsys.readouterr().err


# ---------------------------------------------------------------- NTU RGB+D
def _ntu_body(body_id: str, joints: np.ndarray) -> list[str]:
    lines = [f"{body_id} 0 1 1 1 1 0 0.1 0.2 2", "25"]
    for x, y, z in joints:
        lines.append(f"{x:.4f} {y:.4f} {z:.4f} 250.1 200.2 960.3 540.4 0.1 0.2 0.3 0.4 2")
    return lines


def _ntu_file(path, frames: list[list[tuple[str, np.ndarray]]]) -> None:
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines += _ntu_body(body_id, joints)
    path.write_text("\r\n".join(lines) + "\r\n")  # the released files use CRLF


def _pose(offset: float) -> np.ndarray:
    return (np.arange(75).reshape(25, 3) * 0.01 + offset).astype(np.float32)


@pytest.fixture
def ntu(tmp_path):
    src = tmp_path / "nturgbd"
    skel = src / "nturgb+d_skeletons"
    skel.mkdir(parents=True)
    # One body, three frames, the middle one without any body.
    _ntu_file(skel / "S001C001P001R001A005.skeleton",
              [[("72057594037931101", _pose(0.0))], [], [("72057594037931101", _pose(0.1))]])
    # Two bodies: the second appears in frame 2 and moves much more: it is the main actor.
    _ntu_file(skel / "S001C002P002R001A050.skeleton",
              [[("111", _pose(0.0))],
               [("111", _pose(0.01)), ("222", _pose(1.0))],
               [("111", _pose(0.0)), ("222", _pose(2.0))],
               [("111", _pose(0.01)), ("222", _pose(0.5))]])
    _ntu_file(skel / "S002C003P003R002A001.skeleton", [[("5", _pose(0.3))], [("5", _pose(0.4))]])
    # Malformed: a joint line with 11 values (line 3 header, body line 3, count 4, joints from 5).
    bad = skel / "S001C001P004R001A002.skeleton"
    _ntu_file(bad, [[("9", _pose(0.0))]])
    lines = bad.read_text().splitlines()
    lines[7] = " ".join(lines[7].split()[:11])
    bad.write_text("\n".join(lines) + "\n")
    # Masked depth PNGs (16-bit mm, 512x424) and an RGB video for the first clip.
    depth_dir = src / "nturgb+d_depth_masked" / "S001C001P001R001A005"
    depth_dir.mkdir(parents=True)
    for i in range(3):
        image = np.zeros((424, 512), np.uint16)
        image[100:300, 200:300] = 1500 + 100 * i
        assert cv2.imwrite(str(depth_dir / f"MDepth-{i + 1:08d}.png"), image)
    video = cv2.VideoWriter(str(src / "S001C001P001R001A005_rgb.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30,
                            (192, 108))
    assert video.isOpened()
    for i in range(3):
        video.write(np.full((108, 192, 3), (40 * i, 80, 160), np.uint8))
    video.release()
    return src


def test_ntu_bodies_main_actor_labels_and_companions(ntu, tmp_path):
    result = import_ntu(ntu, tmp_path / "out")
    assert result.clips == 3
    assert len(result.problems) == 1
    assert "S001C001P004R001A002.skeleton:8: expected 12 numbers, found 11" in result.problems[0]
    store = ClipStore(tmp_path / "out")
    assert len(store.classes) == 60 and store.classes[4] == "drop" and store.classes[49] == "punching_or_slapping_other_person"
    assert store.meta["task"] == "early_recognition" and store.skeleton_layout == "kinect_v2_25"
    assert store.modalities == ["skeleton"]  # depth/rgb only for one clip

    two = store.load("S001C002P002R001A050")
    assert two.skeletons.shape == (4, 2, 25, 3)
    assert np.isnan(two.skeletons[0, 1]).all() and np.isfinite(two.skeletons[1:, 1]).all()
    np.testing.assert_allclose(two.skeleton[1:], two.skeletons[1:, 1])   # body 222 moves most
    assert np.isnan(two.skeleton[0]).all()
    assert (two.labels == 49).all()
    np.testing.assert_allclose(two.stamps, np.arange(4) / 30.0)

    one = store.load("S001C001P001R001A005")
    assert np.isnan(one.skeleton[1]).all() and np.isfinite(one.skeleton[[0, 2]]).all()
    np.testing.assert_allclose(one.skeleton[2], _pose(0.1), atol=1e-4)
    assert one.depth.shape == (3, 132, 160) and one.depth.dtype == np.uint16
    assert set(np.unique(one.depth[2])) == {0, 1700}   # nearest-neighbour keeps exact mm and holes
    assert one.rgb.shape == (3, 90, 160, 3) and one.rgb.dtype == np.uint8
    assert abs(int(one.rgb[2, 45, 80, 2]) - 80) < 12 and abs(int(one.rgb[2, 45, 80, 0]) - 160) < 12  # BGR -> RGB


def test_ntu_cross_subject_and_cross_view_splits(ntu, tmp_path):
    import_ntu(ntu, tmp_path / "out")
    store = ClipStore(tmp_path / "out")
    # Performers 1 and 2 train (2, the highest, is carved out as validation), 3 is a test subject.
    assert store.clip_ids("cross_subject", "train") == ["S001C001P001R001A005"]
    assert store.clip_ids("cross_subject", "val") == ["S001C002P002R001A050"]
    assert store.clip_ids("cross_subject", "test") == ["S002C003P003R002A001"]
    # Cameras 2 and 3 train, camera 1 test.
    assert store.clip_ids("cross_view", "test") == ["S001C001P001R001A005"]
    assert sorted(store.clip_ids("cross_view", "train") + store.clip_ids("cross_view", "val")) == [
        "S001C002P002R001A050", "S002C003P003R002A001"]


def test_ntu_only_malformed_files_is_an_error(tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "S001C001P001R001A001.skeleton").write_text("2\n1\n")
    with pytest.raises(DataFormatError, match=r"S001C001P001R001A001.skeleton:3: file ends early"):
        import_ntu(src, tmp_path / "out")


# ---------------------------------------------------------------- FUTR / R3D feature folders
@pytest.fixture
def futr(tmp_path):
    src = tmp_path / "breakfast"
    for sub in ("features", "features_depth", "groundTruth", "splits"):
        (src / sub).mkdir(parents=True)
    (src / "mapping.txt").write_text("0 SIL\n1 pour_milk\n2 stir\n")
    rng = np.random.default_rng(0)
    videos = {"v1": (["SIL", "pour_milk", "pour_milk", "stir", "SIL"], "DT"),
              "v2": (["SIL"] * 3 + ["stir"] * 3, "TD"),
              "v3": (["pour_milk"] * 5, "DT"),          # D == T == 5: FUTR's (D, T) assumed
              "v4": (["SIL"] * 4, "bad")}
    arrays = {}
    for name, (labels, layout) in videos.items():
        t = len(labels)
        d = 5 if name == "v3" else 8
        feats = rng.normal(size=(t, d)).astype(np.float32)
        arrays[name] = feats
        stored = {"DT": feats.T, "TD": feats, "bad": rng.normal(size=(3, 7))}[layout]
        np.save(src / "features" / f"{name}.npy", stored)
        np.save(src / "features_depth" / f"{name}.npy", stored[:, :] * 2)
        (src / "groundTruth" / f"{name}.txt").write_text("\n".join(labels) + "\n")
    (src / "groundTruth" / "v5.txt").write_text("SIL\nfry_egg\n")
    np.save(src / "features" / "v5.npy", np.zeros((8, 2), np.float32))
    (src / "splits" / "train.split1.bundle").write_text("v1.txt\nv2.txt\nv5.txt\n")
    (src / "splits" / "test.split1.bundle").write_text("v3.txt\nv4.txt\n")
    return src, arrays


def test_futr_features_orientation_labels_and_splits(futr, tmp_path):
    src, arrays = futr
    result = import_futr(src, tmp_path / "out")
    assert result.clips == 3 and result.splits == ["split1"]
    problems = "\n".join(result.problems)
    assert "v4.npy: shape (3, 7) has no axis of length 4" in problems
    assert "v5.txt:2: label 'fry_egg' is not in mapping.txt" in problems
    store = ClipStore(tmp_path / "out")
    assert store.classes == ["SIL", "pour_milk", "stir"]
    assert store.modalities == ["rgb_features", "depth_features"] and store.default_split == "split1"
    for name in ("v1", "v2", "v3"):
        clip = store.load(name)
        np.testing.assert_array_equal(clip.rgb_features, arrays[name])
        np.testing.assert_array_equal(clip.depth_features, arrays[name] * 2)
        assert clip.rgb_features.dtype == np.float32
    assert store.load("v1").labels.tolist() == [0, 1, 1, 2, 0]
    np.testing.assert_allclose(store.load("v2").stamps, np.arange(6) / 15.0)
    assert store.clip_ids("split1", "train") == ["v1", "v2"] and store.clip_ids("split1", "test") == ["v3"]


def test_futr_cli_missing_pieces_exit_2(tmp_path, capsys):
    src = tmp_path / "f"
    (src / "features").mkdir(parents=True)
    assert main(["data", "import", "futr", str(src), "--out", str(tmp_path / "o")]) == 2
    assert "missing mapping.txt" in capsys.readouterr().err


def test_ntu_action_names_follow_the_dataset_label_order():
    from retf_ros.data.readers.ntu import ACTION_NAMES

    assert len(ACTION_NAMES) == len(set(ACTION_NAMES)) == 120
    # Spot checks across both releases (A001, A025, A060, A061, A069, A120 of the authors' list).
    assert [ACTION_NAMES[i - 1] for i in (1, 25, 60, 61, 69, 120)] == [
        "drink_water", "put_in_or_take_out_of_pocket", "walking_apart_from_each_other", "put_on_headphone",
        "thumb_up", "finger_guessing_game"]
