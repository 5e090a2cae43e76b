"""What ``ros2 launch retf_ros anticipation.launch.py`` starts, as plain data.

launch/anticipation.launch.py declares :data:`LAUNCH_ARGUMENTS` and turns each :class:`NodeLaunch`
of :func:`nodes_to_launch` into a ``launch_ros.actions.Node``; everything that decides which
argument becomes which parameter or remapping is here, testable where launch_ros is not
installed (the PyPI wheels have no launch_ros).

Rules:

- a parameter argument (``device:=cuda``) overrides the parameters file only when it is given:
  its launch default is empty, which means "what ``params_file`` says";
- a topic argument remaps the node's input only when it is given. ``rgb_topic`` names the image
  topic; with ``rgb.compressed: true`` the node reads ``<rgb_topic>/compressed`` (image_transport's
  naming; a value that already ends in ``/compressed`` is taken as the compressed topic itself).

Each node the launch file can start has one function ``<node>_launch(given, share_dir)``
returning its :class:`NodeLaunch` (or None when the arguments leave it out);
:func:`nodes_to_launch` lists them. ``pose:=true`` adds pose_node on the same RGB and depth
topics (plus ``camera_info_topic``); it publishes the skeleton topic, which the anticipation node
then reads as a mediapipe_33 PoseArray.

``ros2 launch`` runs on the distro's Python, not the venv that holds torch (README,
"Installing"), so this module imports only the standard library, PyYAML and light retf_ros modules:
a given parameter argument takes the type of that parameter's default in the package's
config/anticipation.yaml (which documents every parameter, test_node_params checks it against
params.py), and the node itself refuses a value out of range, naming the parameter.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from retf_ros.param_file import node_parameters
from retf_ros.ros.topics import CAMERA_INFO_TOPIC, COMPRESSED_SUFFIX, INPUT_TOPICS, compressed_topic

PACKAGE = "retf_ros"
NOT_GIVEN = ""  # the launch default of every optional argument: "leave the node's own value"
ANTICIPATION_EXECUTABLE = "anticipation_node"
ANTICIPATION_PARAMS = os.path.join("config", "anticipation.yaml")
POSE_EXECUTABLE = "pose_node"
POSE_PARAMS = os.path.join("config", "pose.yaml")
# What pose_node publishes, set on the anticipation node with pose:=true.
POSE_SKELETON = {"skeleton.type": "pose_array", "skeleton.layout": "mediapipe_33"}

# Launch arguments that override the node parameter of the same name when given.
PARAMETER_ARGUMENTS = ("device", "autostart", "checkpoint")
# Launch argument -> the node's input it remaps when given.
TOPIC_ARGUMENTS = {"rgb_topic": "rgb", "depth_topic": "depth", "skeleton_topic": "skeleton"}


class LaunchArgumentError(ValueError):
    """A launch argument's value that is not of its parameter's type; the message names the argument."""


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    description: str
    default: str = NOT_GIVEN


@dataclass(frozen=True)
class NodeLaunch:
    """One node to start: ``launch_ros.actions.Node(package=PACKAGE, executable=..., name=...,
    namespace=..., parameters=self.parameters, remappings=self.remappings)``."""

    executable: str
    name: str
    namespace: str
    params_file: str
    overrides: dict = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def parameters(self) -> list:
        """The parameters file, then the given overrides (later entries win in launch_ros)."""
        return [self.params_file, dict(self.overrides)] if self.overrides else [self.params_file]


def _parameter_argument(name: str) -> LaunchArgument:
    return LaunchArgument(name, f"Node parameter {name} (config/anticipation.yaml documents its values). "
                                "Empty: the value in params_file.")


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("namespace", "Namespace of the node and of its relative input topics."),
    LaunchArgument("params_file", "YAML parameters file. Empty: the package's config/anticipation.yaml."),
    *(_parameter_argument(name) for name in PARAMETER_ARGUMENTS),
    LaunchArgument("rgb_topic", f"RGB image topic. Empty: {INPUT_TOPICS['rgb']}. With rgb.compressed: true "
                                f"the node reads <rgb_topic>{COMPRESSED_SUFFIX}."),
    LaunchArgument("depth_topic", f"Depth image topic (registered to RGB). Empty: {INPUT_TOPICS['depth']}."),
    LaunchArgument("skeleton_topic", "Skeleton topic (PoseArray or MarkerArray, see skeleton.type). "
                                     f"Empty: {INPUT_TOPICS['skeleton']}."),
    LaunchArgument("pose", "true: also start pose_node, which estimates the 3D skeleton from the RGB-D camera "
                           "and publishes it on skeleton_topic for the anticipation node. Empty: false."),
    LaunchArgument("camera_info_topic", f"CameraInfo of the RGB image, for pose_node. Empty: {CAMERA_INFO_TOPIC}."),
    LaunchArgument("pose_params_file", "YAML parameters file of pose_node. Empty: the package's config/pose.yaml."),
)


def package_defaults(share_dir: str) -> dict:
    """Every node parameter's default, by dotted name, from the package's parameters file."""
    return node_parameters(os.path.join(share_dir, ANTICIPATION_PARAMS))


def parameter_value(name: str, text: str, default):
    """Launch argument ``name`` given as ``text``, typed like the parameter's ``default``;
    :class:`LaunchArgumentError` naming the argument when the text is not of that type."""
    kind = type(default)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError("expected true or false")
            return lowered == "true"
        return kind(text)
    except ValueError as exc:
        raise LaunchArgumentError(f"launch argument {name}:={text!r}: {exc}") from None


def topic_remappings(given: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(node topic, user topic) pairs for the topic arguments that were given."""
    remappings: list[tuple[str, str]] = []
    for argument, modality in TOPIC_ARGUMENTS.items():
        target = given.get(argument, NOT_GIVEN)
        if target == NOT_GIVEN:
            continue
        source = INPUT_TOPICS[modality]
        if modality == "rgb":
            image = target.removesuffix(COMPRESSED_SUFFIX)
            remappings += [(source, image), (compressed_topic(source), compressed_topic(image))]
        else:
            remappings.append((source, target))
    return tuple(remappings)


def given_overrides(given: Mapping[str, str], share_dir: str) -> dict:
    """The parameter arguments that were given, typed like their parameters."""
    chosen = [name for name in PARAMETER_ARGUMENTS if given.get(name, NOT_GIVEN) != NOT_GIVEN]
    defaults = package_defaults(share_dir) if chosen else {}
    return {name: parameter_value(name, given[name], defaults[name]) for name in chosen}


def pose_requested(given: Mapping[str, str]) -> bool:
    text = given.get("pose", NOT_GIVEN)
    return text != NOT_GIVEN and parameter_value("pose", text, False)


def anticipation_node_launch(given: Mapping[str, str], share_dir: str) -> NodeLaunch:
    """anticipation_node for the launch configurations ``given`` (argument name -> text)."""
    params_file = given.get("params_file", NOT_GIVEN) or os.path.join(share_dir, ANTICIPATION_PARAMS)
    overrides = given_overrides(given, share_dir)
    if pose_requested(given):
        overrides.update(POSE_SKELETON)
    return NodeLaunch(executable=ANTICIPATION_EXECUTABLE, name=ANTICIPATION_EXECUTABLE,
                      namespace=given.get("namespace", NOT_GIVEN), params_file=params_file,
                      overrides=overrides, remappings=topic_remappings(given))


def pose_node_launch(given: Mapping[str, str], share_dir: str) -> NodeLaunch | None:
    """pose_node with ``pose:=true``: it reads the same image topics the anticipation node reads
    and publishes on its skeleton topic (the same remappings), plus the CameraInfo topic."""
    if not pose_requested(given):
        return None
    params_file = given.get("pose_params_file", NOT_GIVEN) or os.path.join(share_dir, POSE_PARAMS)
    overrides = {name: value for name, value in given_overrides(given, share_dir).items() if name == "autostart"}
    camera_info = given.get("camera_info_topic", NOT_GIVEN)
    remappings = topic_remappings(given) + (((CAMERA_INFO_TOPIC, camera_info),) if camera_info != NOT_GIVEN else ())
    return NodeLaunch(executable=POSE_EXECUTABLE, name=POSE_EXECUTABLE, namespace=given.get("namespace", NOT_GIVEN),
                      params_file=params_file, overrides=overrides, remappings=remappings)


def nodes_to_launch(given: Mapping[str, str], share_dir: str) -> list[NodeLaunch]:
    """Every node the launch file starts for the launch configurations ``given``."""
    candidates = (anticipation_node_launch(given, share_dir), pose_node_launch(given, share_dir))
    return [node for node in candidates if node is not None]
