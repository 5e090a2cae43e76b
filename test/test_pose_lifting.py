"""2D landmarks -> 3D joints: the robust patch depth and its refusals on made-up depth images,
then MediaPipe + lifting on the real Kinect frame (joints must lie on the person)."""
from __future__ import annotations

import numpy as np
import pytest

from retf_ros.pose.lifting import LiftConfig, PinholeIntrinsics, landmark_depths, lift_landmarks

K = PinholeIntrinsics(fx=500.0, fy=400.0, cx=31.5, cy=23.5, width=64, height=48)


def _plane(z: float = 2.0) -> np.ndarray:
    return np.full((48, 64), z, np.float32)


def test_landmark_on_a_plane_back_projects_through_the_intrinsics():
    pixels = np.array([[10.0, 5.0], [31.5, 23.5], [60.2, 40.7]])
    joints = lift_landmarks(pixels, np.ones(3), _plane(2.0), K)
    expected = np.stack([(pixels[:, 0] - 31.5) * 2.0 / 500.0, (pixels[:, 1] - 23.5) * 2.0 / 400.0, np.full(3, 2.0)], 1)
    np.testing.assert_allclose(joints, expected, rtol=1e-6, atol=1e-7)
    assert joints.dtype == np.float32


def test_one_flying_or_missing_pixel_does_not_move_the_depth():
    depth = _plane(2.0)
    depth[20, 20] = 9.0          # a flying pixel under the landmark itself
    depth[21, 21] = np.nan
    depth[19, 19] = np.inf
    depth[19, 21] = 0.0
    assert landmark_depths(depth, np.array([[20.0, 20.0]]), LiftConfig(patch_radius=2))[0] == 2.0


def test_landmark_without_valid_depth_is_missing_not_guessed():
    depth = _plane(2.0)
    depth[8:13, 8:13] = np.nan
    depth[9, 9] = 2.0            # one valid pixel of 25: below min_valid_fraction 0.3
    joints = lift_landmarks(np.array([[10.0, 10.0], [40.0, 10.0]]), np.ones(2), depth, K)
    assert np.isnan(joints[0]).all() and np.isfinite(joints[1]).all()


def test_depth_edge_low_visibility_and_outside_image_are_missing():
    depth = _plane(4.0)
    depth[:, :30] = 1.5          # a body in front of the wall: its silhouette edge at u = 29.5
    pixels = np.array([[30.0, 20.0], [10.0, 20.0], [10.0, 20.0], [70.0, 20.0], [-3.0, 20.0]])
    visibility = np.array([1.0, 1.0, 0.2, 1.0, 1.0])
    joints = lift_landmarks(pixels, visibility, depth, K)
    assert np.isnan(joints[0]).all()                      # patch straddles 1.5 m and 4 m
    assert joints[1, 2] == pytest.approx(1.5)
    assert np.isnan(joints[2]).all()                      # the estimator thinks it is occluded
    assert np.isnan(joints[3]).all() and np.isnan(joints[4]).all()
    # a patch reaching 2 px over the edge into the image still has enough valid pixels
    assert lift_landmarks(np.array([[64.5, 20.0]]), np.ones(1), _plane(2.0), K)[0, 2] == pytest.approx(2.0)


def test_depth_of_another_size_than_the_intrinsics_is_refused():
    with pytest.raises(ValueError, match="32x24"):
        lift_landmarks(np.zeros((1, 2)), np.ones(1), np.ones((24, 32), np.float32), K)


def test_config_is_checked():
    with pytest.raises(ValueError, match="min_valid_fraction"):
        LiftConfig(min_valid_fraction=0.0)
    with pytest.raises(ValueError, match="patch_radius"):
        LiftConfig(patch_radius=-1)


# ---- the real frame ----

@pytest.fixture(scope="module")
def real_frame(shared_data):
    from retf_ros.data.pcd import read_rgbd

    return read_rgbd(shared_data / "pcl" / "five_people.pcd")


@pytest.fixture(scope="module")
def estimator():
    pytest.importorskip("mediapipe", reason="MediaPipe is not installed (requirements-pose.txt)")
    from retf_ros.pose.estimator import MediaPipePose

    pose = MediaPipePose(tracking=False)
    yield pose
    pose.close()


def nearest_cloud_distance(points: np.ndarray, pixels: np.ndarray, joints: np.ndarray, radius: int = 2) -> np.ndarray:
    """(J,) distance from each joint to the nearest valid cloud point within ``radius`` pixels of its
    landmark (NaN where the neighbourhood has no point)."""
    out = np.full(len(joints), np.nan)
    for j, ((u, v), joint) in enumerate(zip(np.rint(pixels).astype(int), joints)):
        near = points[max(0, v - radius):v + radius + 1, max(0, u - radius):u + radius + 1].reshape(-1, 3)
        near = near[np.isfinite(near).all(axis=1)]
        if len(near):
            out[j] = np.linalg.norm(near - joint, axis=1).min()
    return out


def test_real_frame_joints_lie_on_the_person(real_frame, estimator):
    from retf_ros.pose.estimator import Landmarks2D

    landmarks = estimator.estimate(real_frame.rgb)
    assert isinstance(landmarks, Landmarks2D) and landmarks.pixels.shape == (33, 2)
    joints = lift_landmarks(landmarks.pixels, landmarks.visibility, real_frame.depth, real_frame.intrinsics)
    found = np.isfinite(joints).all(axis=1)
    assert found.sum() >= 15
    distance = nearest_cloud_distance(real_frame.points, landmarks.pixels[found], joints[found])
    assert np.nanmax(distance) < 0.03 and np.isfinite(distance).all()
    # the person is a person: shoulders about 25-60 cm apart, head above the hips (y down)
    names = landmarks.layout.joints
    at = {n: joints[names.index(n)] for n in ("shoulder_left", "shoulder_right", "nose", "hip_left")}
    assert 0.25 < np.linalg.norm(at["shoulder_left"] - at["shoulder_right"]) < 0.6
    assert at["nose"][1] < at["hip_left"][1] - 0.3


def test_an_image_with_nobody_gives_no_landmarks(real_frame, estimator):
    assert estimator.estimate(np.full_like(real_frame.rgb, 128)) is None
    wall = np.ascontiguousarray(real_frame.rgb[:, 230:290])  # ceiling and posters above the people
    assert estimator.estimate(np.ascontiguousarray(np.tile(wall[:120], (1, 4, 1)))) is None
