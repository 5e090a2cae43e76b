"""Image / PoseArray / MarkerArray <-> numpy conversions, on rclpy messages and on the same
bytes deserialised by rosbags (the node path and the offline bag path must agree)."""
from __future__ import annotations

import numpy as np
import pytest

from retf_ros.fusion.skeleton import AZURE_KINECT_32, KINECT_V1_20, KINECT_V2_25, MEDIAPIPE_33
from retf_ros.runtime.messages import (InvalidMessage, array_to_image_fields, compressed_image_to_array, convert_joints,
                                       image_to_array, marker_array_to_skeleton, pose_array_to_skeleton,
                                       stamp_nanoseconds)

rclpy_serialization = pytest.importorskip("rclpy.serialization")
from geometry_msgs.msg import Pose, PoseArray  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402


def _rosbags_copy(msg):
    """The same message as rosbags deserialises it from the CDR bytes rclpy writes."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    msgtype = type(msg).__module__.split(".")[0] + "/msg/" + type(msg).__name__
    return store.deserialize_cdr(rclpy_serialization.serialize_message(msg), msgtype)


BOTH = pytest.mark.parametrize("flavour", ["rclpy", "rosbags"])


def _as(flavour, msg):
    return msg if flavour == "rclpy" else _rosbags_copy(msg)


def _image(array, encoding, **kwargs) -> Image:
    msg = Image(**array_to_image_fields(array, encoding, **kwargs))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1700000000, 123456789
    msg.header.frame_id = "camera"
    return msg


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


@BOTH
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_round_trip_gives_rgb_order_with_row_padding(flavour, encoding, rgb):
    msg = _as(flavour, _image(rgb, encoding, row_padding=7))
    assert msg.step == 5 * 3 + 7
    out = image_to_array(msg)
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out, rgb)


@BOTH
def test_bgr8_bytes_are_swapped_to_rgb(flavour):
    msg = _as(flavour, Image(height=1, width=1, encoding="bgr8", step=3, data=bytes([10, 20, 30])))
    np.testing.assert_array_equal(image_to_array(msg)[0, 0], [30, 20, 10])


@BOTH
def test_mono8_is_replicated_to_three_channels(flavour):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = image_to_array(_as(flavour, _image(gray, "mono8", row_padding=1)))
    assert out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out[..., 1], gray)


@BOTH
@pytest.mark.parametrize("bigendian", [False, True])
def test_16uc1_millimetres_to_metres_zero_is_nan(flavour, bigendian):
    mm = np.array([[0, 1000, 2500], [65535, 1, 300]], dtype=np.uint16)
    out = image_to_array(_as(flavour, _image(mm, "16UC1", bigendian=bigendian, row_padding=2)))
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert np.isnan(out[0, 0])
    np.testing.assert_allclose(out.ravel()[1:], [1.0, 2.5, 65.535, 0.001, 0.3], rtol=1e-6)


@BOTH
@pytest.mark.parametrize("bigendian", [False, True])
def test_32fc1_non_finite_and_non_positive_become_nan(flavour, bigendian):
    metres = np.array([[1.5, np.nan, np.inf], [-np.inf, -1.0, 0.0]], dtype=np.float32)
    out = image_to_array(_as(flavour, _image(metres, "32FC1", bigendian=bigendian)))
    assert out[0, 0] == pytest.approx(1.5)
    assert np.isnan(out.ravel()[1:]).all()


def test_big_endian_bytes_are_read_as_big_endian():
    raw = np.array([[1000]], dtype=">u2").tobytes()
    msg = Image(height=1, width=1, encoding="16UC1", is_bigendian=1, step=2, data=raw)
    assert image_to_array(msg)[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("fields, reason", [
    (dict(height=2, width=2, encoding="yuv422", step=4, data=bytes(8)), "encoding"),
    (dict(height=0, width=2, encoding="rgb8", step=6, data=b""), "zero_size"),
    (dict(height=2, width=0, encoding="rgb8", step=0, data=b""), "zero_size"),
    (dict(height=2, width=2, encoding="rgb8", step=5, data=bytes(10)), "step_too_small"),
    (dict(height=2, width=2, encoding="rgb8", step=6, data=bytes(11)), "data_too_short"),
    (dict(height=1, width=2, encoding="32FC1", step=8,
          data=np.array([np.nan, np.inf], np.float32).tobytes()), "depth_all_invalid"),
    (dict(height=1, width=2, encoding="16UC1", step=4, data=bytes(4)), "depth_all_invalid"),
])
def test_bad_images_raise_invalid_message_with_reason(fields, reason):
    with pytest.raises(InvalidMessage) as info:
        image_to_array(Image(**fields))
    assert info.value.reason == reason


def test_conversion_result_does_not_alias_message_buffer(rgb):
    msg = _image(rgb, "rgb8")
    out = image_to_array(msg)
    msg.data = bytes(len(msg.data))
    np.testing.assert_array_equal(out, rgb)


def test_stamp_is_exact_integer_nanoseconds(rgb):
    assert stamp_nanoseconds(_image(rgb, "rgb8")) == 1700000000_123456789


def test_compressed_png_and_jpeg_decode_to_rgb(rgb):
    cv2 = pytest.importorskip("cv2")
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])
    assert ok
    np.testing.assert_array_equal(compressed_image_to_array(CompressedImage(format="png", data=png.tobytes())), rgb)
    flat = np.full((8, 8, 3), (200, 100, 50), np.uint8)
    _, jpeg = cv2.imencode(".jpg", flat[:, :, ::-1])
    out = compressed_image_to_array(_rosbags_copy(CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes())))
    assert np.abs(out.astype(int) - flat).max() <= 3


def test_compressed_depth_png_with_header_gives_metres():
    cv2 = pytest.importorskip("cv2")
    mm = np.array([[0, 1200], [3000, 450]], np.uint16)
    _, png = cv2.imencode(".png", mm)
    msg = CompressedImage(format="16UC1; compressedDepth png", data=bytes(12) + png.tobytes())
    out = compressed_image_to_array(msg)
    assert np.isnan(out[0, 0])
    np.testing.assert_allclose(out.ravel()[1:], [1.2, 3.0, 0.45], rtol=1e-6)


@pytest.mark.parametrize("data, reason", [(b"", "zero_size"), (b"not an image", "decode_failed")])
def test_bad_compressed_images_raise(data, reason):
    pytest.importorskip("cv2")
    with pytest.raises(InvalidMessage) as info:
        compressed_image_to_array(CompressedImage(format="jpeg", data=data))
    assert info.value.reason == reason


def _pose_array(points) -> PoseArray:
    msg = PoseArray()
    for x, y, z in points:
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = float(x), float(y), float(z)
        msg.poses.append(pose)
    return msg


@BOTH
def test_pose_array_gives_joints_and_nan_for_non_finite(flavour):
    points = np.arange(60, dtype=np.float64).reshape(20, 3) / 10
    points[3] = (np.nan, 0.0, 1.0)
    out = pose_array_to_skeleton(_as(flavour, _pose_array(points)), "kinect_v1_20")
    assert out.shape == (20, 3) and out.dtype == np.float32
    assert np.isnan(out[3]).all()
    np.testing.assert_allclose(out[4], points[4], rtol=1e-6)


def test_pose_array_with_wrong_joint_count_is_refused():
    with pytest.raises(InvalidMessage) as info:
        pose_array_to_skeleton(_pose_array(np.zeros((17, 3))), KINECT_V2_25)
    assert info.value.reason == "joint_count"


def _marker_array(bodies: dict[int, np.ndarray]) -> MarkerArray:
    msg = MarkerArray()
    for body, joints in bodies.items():
        for j, (x, y, z) in enumerate(joints):
            marker = Marker(id=body * 100 + j, action=Marker.ADD)
            marker.header.stamp.sec = 5
            marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = float(x), float(y), float(z)
            msg.markers.append(marker)
    return msg


@BOTH
def test_marker_array_picks_nearest_body_and_converts_layout_by_joint_name(flavour):
    rng = np.random.default_rng(1)
    near = rng.uniform(-0.5, 0.5, (32, 3)) + (0, 0, 1.5)
    far = rng.uniform(-0.5, 0.5, (32, 3)) + (0, 0, 4.0)
    msg = _as(flavour, _marker_array({3: far, 7: near}))
    out = marker_array_to_skeleton(msg, KINECT_V1_20)
    assert out.shape == (20, 3)
    for j, name in enumerate(KINECT_V1_20.joints):
        np.testing.assert_allclose(out[j], near[AZURE_KINECT_32.index(name)], rtol=1e-6)
    chosen = marker_array_to_skeleton(msg, "azure_kinect_32", body_id=3)
    np.testing.assert_allclose(chosen, far, rtol=1e-6)
    assert stamp_nanoseconds(msg) == 5_000_000_000


def test_marker_array_without_wanted_body_is_refused():
    with pytest.raises(InvalidMessage) as info:
        marker_array_to_skeleton(_marker_array({1: np.ones((32, 3))}), KINECT_V2_25, body_id=2)
    assert info.value.reason == "no_body"
    with pytest.raises(InvalidMessage):
        marker_array_to_skeleton(MarkerArray(), KINECT_V2_25)


def test_marker_array_joints_the_tracker_lacks_are_nan():
    out = marker_array_to_skeleton(_marker_array({0: np.ones((32, 3))}), MEDIAPIPE_33)
    missing = [j for j, name in enumerate(MEDIAPIPE_33.joints) if name not in AZURE_KINECT_32.joints]
    assert missing and np.isnan(out[missing]).all()
    present = [j for j in range(33) if j not in missing]
    np.testing.assert_array_equal(out[present], 1.0)


def test_empty_pose_array_means_nobody_in_view():
    with pytest.raises(InvalidMessage) as info:
        pose_array_to_skeleton(_pose_array(np.zeros((0, 3))), MEDIAPIPE_33)
    assert info.value.reason == "no_body"


def test_mediapipe_joints_give_the_kinect_spine_as_midpoints_and_missing_stays_missing():
    rng = np.random.default_rng(3)
    points = rng.normal(0, 1, (33, 3)).astype(np.float32)
    points[MEDIAPIPE_33.index("ear_right")] = np.nan  # a landmark without depth
    out = convert_joints(points, MEDIAPIPE_33, KINECT_V2_25)
    at = {name: points[MEDIAPIPE_33.index(name)] for name in MEDIAPIPE_33.joints}
    np.testing.assert_allclose(out[KINECT_V2_25.index("pelvis")], (at["hip_left"] + at["hip_right"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[KINECT_V2_25.index("spine_shoulder")],
                               (at["shoulder_left"] + at["shoulder_right"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[KINECT_V2_25.index("spine_mid")], np.mean(
        [at[n] for n in ("hip_left", "hip_right", "shoulder_left", "shoulder_right")], axis=0), rtol=1e-5)
    np.testing.assert_array_equal(out[KINECT_V2_25.index("wrist_left")], at["wrist_left"])
    # the head needs both ears; the neck and the hands are not landmarks of MediaPipe at all
    for name in ("head", "neck", "hand_left", "hand_right"):
        assert np.isnan(out[KINECT_V2_25.index(name)]).all(), name
    assert np.isfinite(out).all(axis=1).sum() == 25 - 4


def test_numpy_and_torch_layout_conversions_agree():
    import torch

    from retf_ros.fusion.skeleton import convert_layout

    points = np.random.default_rng(4).normal(0, 1, (2, 33, 3)).astype(np.float32)
    points[1, 24] = np.nan
    expected = np.stack([convert_joints(p, MEDIAPIPE_33, KINECT_V2_25) for p in points])
    got = convert_layout(torch.from_numpy(points), MEDIAPIPE_33, KINECT_V2_25).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)
    assert np.isnan(got[1, KINECT_V2_25.index("pelvis")]).all() and np.isfinite(got[0, 0]).all()


def test_a_mediapipe_skeleton_keeps_its_shape_in_a_kinect_model():
    """Without a derived pelvis the Kinect origin is missing and normalisation zeroes the frame."""
    from retf_ros.fusion.inputs import prepare_skeleton

    points = np.random.default_rng(5).normal(0, 0.3, (33, 3)).astype(np.float32) + (0, 0, 2.5)
    points[:11] = np.nan  # the face, seen from behind
    model = prepare_skeleton(points, "kinect_v2_25", "mediapipe_33").numpy()
    wrist = KINECT_V2_25.index("wrist_left")
    assert np.abs(model[wrist]).sum() > 0.1 and np.isfinite(model).all()
    assert np.allclose(model[KINECT_V2_25.index("pelvis")], 0.0, atol=1e-6)  # the origin


@BOTH
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_tracked_skeleton_without_a_finite_joint_is_dropped_as_nonfinite_joints(flavour, value):
    from retf_ros.runtime.messages import SkeletonReader

    msg = _as(flavour, _pose_array(np.full((25, 3), value)))
    assert np.isnan(pose_array_to_skeleton(msg, KINECT_V2_25)).all()   # as recorded (offline evaluation)
    with pytest.raises(InvalidMessage) as info:
        SkeletonReader("pose_array", "kinect_v2_25", "kinect_v2_25").convert_tracked(msg)   # the node
    assert info.value.reason == "nonfinite_joints"


def test_marker_array_whose_joints_are_all_non_finite_is_dropped_as_nonfinite_joints():
    with pytest.raises(InvalidMessage) as info:
        marker_array_to_skeleton(_marker_array({0: np.full((32, 3), np.inf)}), KINECT_V2_25)
    assert info.value.reason == "nonfinite_joints"


@pytest.mark.parametrize("kind, layout, source", [("pose_array", "kinect_v2_25", "kinect_v2_25"),
                                                  ("pose_array", "kinect_v1_20", "kinect_v2_25")])
def test_skeleton_reader_counts_masked_joints_but_not_the_ones_the_input_layout_lacks(kind, layout, source):
    from retf_ros.fusion.skeleton import get_layout
    from retf_ros.runtime.messages import SkeletonReader

    reader = SkeletonReader(kind, layout, source)
    points = np.ones((get_layout(layout).num_joints, 3))
    assert reader.masked_joints(reader.convert(_pose_array(points))) == 0
    points[[0, 1]] = np.nan   # pelvis and spine_mid: in both layouts
    assert reader.masked_joints(reader.convert(_pose_array(points))) == 2


@BOTH
@pytest.mark.parametrize("array, encoding, expect", [
    (np.zeros((4, 5), np.uint16), "16UC1", "colour"),   # all-zero depth on the RGB topic: not "depth_all_invalid"
    (np.ones((4, 5), np.float32), "32FC1", "colour"),
    (np.zeros((4, 5, 3), np.uint8), "rgb8", "depth"),
])
def test_an_image_of_the_other_kind_is_refused_as_encoding_before_its_pixels_are_read(flavour, array, encoding,
                                                                                       expect):
    with pytest.raises(InvalidMessage) as info:
        image_to_array(_as(flavour, _image(array, encoding)), expect=expect)
    assert info.value.reason == "encoding" and encoding in str(info.value) and expect in str(info.value)
