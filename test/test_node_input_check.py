"""The node names why an input delivers nothing: a real publisher of the wrong type or QoS."""
from __future__ import annotations

import pytest

from conftest import write_tiny_checkpoint
from retf_ros.harness.processes import node_argv, publisher_argv, start, start_probe, wait_for


@pytest.mark.parametrize("node_options,camera_options,expected", [
    ({"skeleton.type": "marker_array"}, ("--skeleton-type", "pose_array"),
     "{ns}/skeleton: {ns}/synthetic_camera publishes geometry_msgs/msg/PoseArray, "
     "the node expects visualization_msgs/msg/MarkerArray"),
    ({"qos.skeleton.reliability": "reliable"}, ("--reliability", "best_effort"),
     "{ns}/skeleton: {ns}/synthetic_camera offers incompatible QoS"),
], ids=["wrong_type", "incompatible_qos"])
def test_inputs_diagnostic_names_topic_seen_type_and_expected_type(ros_env, tmp_path, node_options, camera_options,
                                                                  expected):
    namespace = "/check_" + ("type" if "skeleton.type" in node_options else "qos")
    checkpoint = write_tiny_checkpoint(tmp_path / "ckpt", modalities=("skeleton",))
    node = start("node", node_argv(overrides={"checkpoint": str(checkpoint), "diagnostics.rate_hz": 5.0,
                                              "sync.reference": "skeleton",
                                              **node_options}) + ["-r", f"__ns:={namespace}"], ros_env, tmp_path)
    camera = start("camera", publisher_argv("--modalities", "skeleton", *camera_options,
                                            "--ros-args", "-r", f"__ns:={namespace}"), ros_env, tmp_path)
    probe = start_probe(ros_env, tmp_path, node_name=f"{namespace}/anticipation_node")
    wanted = expected.format(ns=namespace)

    def inputs_message():
        for event in reversed(probe.events("diagnostics")):
            for status in event["status"]:
                if status["name"] == f"{namespace}/anticipation_node: inputs":
                    return status["message"]
        return ""
    try:
        try:
            wait_for(lambda: wanted in inputs_message(), 90, "the inputs diagnostic")
        except TimeoutError:
            pytest.fail(f"the inputs diagnostic never said {wanted!r}; last: {inputs_message()!r}; "
                        f"node log: {node.log()[-2000:]}")
        assert "waiting for input" not in inputs_message()
    finally:
        probe.stop()
        camera.stop()
        node.stop()
