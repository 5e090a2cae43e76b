"""The launch file's wiring (retf_ros.ros.launch_arguments), checked without launch_ros: launch
arguments left out never override the parameters file, rgb_topic serves raw and compressed RGB,
and launch/anticipation.launch.py declares exactly these arguments and builds its nodes from them.
test_colcon_workspace.py starts the installed node with what this wiring produces."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from retf_ros.ros import launch_arguments as wiring
from retf_ros.ros.launch_arguments import (LAUNCH_ARGUMENTS, NOT_GIVEN, LaunchArgumentError, anticipation_node_launch,
                                           nodes_to_launch)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "anticipation.launch.py"
SHARE = str(ROOT)  # laid out like the installed share/retf_ros for what the wiring reads (config/)
DEFAULT_PARAMS = str(ROOT / "config" / "anticipation.yaml")


def launch_defaults() -> dict[str, str]:
    """The launch configurations when the user passes no argument (what `ros2 launch` fills in)."""
    return {argument.name: argument.default for argument in LAUNCH_ARGUMENTS}


def test_no_argument_given_starts_the_node_with_the_package_params_file_only():
    node = anticipation_node_launch(launch_defaults(), SHARE)
    assert node.parameters == [DEFAULT_PARAMS]
    assert node.remappings == ()
    assert (node.executable, node.name, node.namespace) == ("anticipation_node", "anticipation_node", "")


def test_parameter_arguments_left_out_do_not_override_the_users_params_file():
    given = launch_defaults() | {"params_file": "/robot/anticipation.yaml"}
    assert anticipation_node_launch(given, SHARE).parameters == ["/robot/anticipation.yaml"]


def test_given_parameter_arguments_override_the_params_file_with_the_declared_types():
    given = launch_defaults() | {"device": "cuda:1", "autostart": "False", "checkpoint": "/models/run7"}
    assert anticipation_node_launch(given, SHARE).parameters == [
        DEFAULT_PARAMS, {"device": "cuda:1", "autostart": False, "checkpoint": "/models/run7"}]


@pytest.mark.parametrize("text", ["yes", "1", ""])
def test_a_value_not_of_the_parameters_type_fails_naming_the_argument(text):
    given = launch_defaults() | {"autostart": text or " "}
    with pytest.raises(LaunchArgumentError) as refused:
        anticipation_node_launch(given, SHARE)
    assert f"launch argument autostart:={text or ' '!r}: expected true or false" == str(refused.value)


def test_the_wiring_imports_nothing_the_distros_python_lacks():
    """`ros2 launch` runs on the distro's Python, without the venv's torch: importing the wiring
    loads only the standard library, PyYAML and retf_ros itself."""
    code = ("import sys; before = set(sys.modules); from retf_ros.ros.launch_arguments import nodes_to_launch; "
            f"nodes_to_launch({{'device': 'cpu', 'rgb_topic': '/c'}}, {SHARE!r}); "
            "print(' '.join({m.split('.')[0] for m in set(sys.modules) - before}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    third_party = {name for name in loaded if name not in sys.stdlib_module_names and "cython" not in name}
    assert third_party == {"retf_ros", "yaml"}, loaded  # "cython": PyYAML's C loader


@pytest.mark.parametrize("given_topic", ["/camera/color/image_raw", "/camera/color/image_raw/compressed"])
def test_rgb_topic_remaps_the_raw_and_the_compressed_rgb_input(given_topic):
    node = anticipation_node_launch(launch_defaults() | {"rgb_topic": given_topic}, SHARE)
    assert node.remappings == (("rgb/image_raw", "/camera/color/image_raw"),
                               ("rgb/image_raw/compressed", "/camera/color/image_raw/compressed"))


def test_depth_and_skeleton_topics_remap_only_their_input():
    given = launch_defaults() | {"depth_topic": "/camera/aligned_depth_to_color/image_raw",
                                 "skeleton_topic": "/body_tracking_data"}
    assert anticipation_node_launch(given, SHARE).remappings == (
        ("depth/image_raw", "/camera/aligned_depth_to_color/image_raw"), ("skeleton", "/body_tracking_data"))


def test_every_declared_argument_changes_what_is_launched():
    examples = {"namespace": "/front", "params_file": "/robot/a.yaml", "device": "cpu", "autostart": "false",
                "checkpoint": "/models/run7", "rgb_topic": "/c/rgb", "depth_topic": "/c/depth",
                "skeleton_topic": "/c/skeleton", "pose": "true"}
    pose_examples = {"camera_info_topic": "/c/info", "pose_params_file": "/robot/pose.yaml"}  # matter with pose:=true
    assert set(examples) | set(pose_examples) == {argument.name for argument in LAUNCH_ARGUMENTS}
    baseline = nodes_to_launch(launch_defaults(), SHARE)
    for name, value in examples.items():
        assert nodes_to_launch(launch_defaults() | {name: value}, SHARE) != baseline, name
    with_pose = launch_defaults() | {"pose": "true"}
    for name, value in pose_examples.items():
        assert nodes_to_launch(with_pose | {name: value}, SHARE) != nodes_to_launch(with_pose, SHARE), name


def test_pose_true_starts_pose_node_on_the_camera_topics_feeding_the_skeleton_input():
    given = launch_defaults() | {"pose": "true", "rgb_topic": "/cam/color", "depth_topic": "/cam/depth",
                                 "camera_info_topic": "/cam/color/info", "autostart": "false"}
    anticipation, pose = nodes_to_launch(given, SHARE)
    assert pose.executable == "pose_node" and pose.params_file == str(Path(SHARE) / "config" / "pose.yaml")
    assert dict(pose.remappings) == {"rgb/image_raw": "/cam/color", "rgb/image_raw/compressed": "/cam/color/compressed",
                                     "depth/image_raw": "/cam/depth", "rgb/camera_info": "/cam/color/info"}
    assert pose.overrides == {"autostart": False}
    assert anticipation.overrides == {"autostart": False, "skeleton.type": "pose_array",
                                      "skeleton.layout": "mediapipe_33"}
    # Both read the skeleton under the same (here unremapped) name: pose_node publishes what the other reads.
    assert "skeleton" not in dict(pose.remappings) and "skeleton" not in dict(anticipation.remappings)
    assert len(nodes_to_launch(launch_defaults() | {"pose": "false"}, SHARE)) == 1


def test_every_optional_argument_defaults_to_not_given():
    assert all(argument.default == NOT_GIVEN for argument in LAUNCH_ARGUMENTS)


def test_launch_file_declares_the_wiring_arguments_and_builds_its_nodes_from_them():
    tree = ast.parse(LAUNCH_FILE.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == wiring.__name__ for alias in node.names}
    assert {"LAUNCH_ARGUMENTS", "nodes_to_launch"} <= imported
    assert all(hasattr(wiring, name) for name in imported)
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"DeclareLaunchArgument", "OpaqueFunction", "Node", "nodes_to_launch"} <= called
    # No argument declared by hand beside the table, and the usage line documents every one.
    declared = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "DeclareLaunchArgument"]
    assert len(declared) == 1 and isinstance(declared[0].args[0], ast.Attribute)
    usage = ast.get_docstring(tree)
    assert all(f"{argument.name}:=" in usage for argument in LAUNCH_ARGUMENTS)
