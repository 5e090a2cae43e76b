"""The node's parameters: one table, declared once each with a ParameterDescriptor.

Each entry gives the default (which fixes the type), a description, and either a numeric range
(enforced by rclpy through the descriptor) or a set of allowed strings (enforced by
:func:`validation_problem`, which the node registers as its set-parameters callback before
declaring, so a bad value in a YAML file, on the command line (``-p``) or from a remote
``set_parameters`` call is refused with a message naming the parameter).

Most parameters take effect at the next ``configure`` transition; config/anticipation.yaml
(anticipation_node, ``PARAMETERS``) and config/pose.yaml (pose_node, ``POSE_PARAMETERS``)
document every one.
"""
from __future__ import annotations

from dataclasses import dataclass

from retf_ros.fusion.skeleton import LAYOUTS
from retf_ros.runtime.health import (DEFAULT_ERROR_PERCENTILE, DEFAULT_HIGH_PERCENTILE, DEFAULT_WARN_PERCENTILE,
                                     DISTRIBUTION_PERCENTILES)
from retf_ros.runtime.frames import MODALITIES
from retf_ros.runtime.sync import POLICIES
from retf_ros.ros.qos import HISTORIES, RELIABILITIES

DEVICE_HELP = "auto | cpu | cuda | cuda:N"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: bool | int | float | str
    description: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None


def _qos_specs(modality: str) -> list[ParamSpec]:
    return [
        ParamSpec(f"qos.{modality}.reliability", "best_effort",
                  f"Reliability of the {modality} subscription (best_effort accepts both kinds of publisher).",
                  choices=tuple(RELIABILITIES)),
        ParamSpec(f"qos.{modality}.history", "keep_last", f"History policy of the {modality} subscription.",
                  choices=tuple(HISTORIES)),
        ParamSpec(f"qos.{modality}.depth", 2, f"Queue depth of the {modality} subscription.", low=1, high=100),
    ]


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("autostart", True, "Run configure and activate on start-up (false: wait for lifecycle transitions)."),
    ParamSpec("checkpoint", "", "Checkpoint path (.safetensors, .json, stem or run directory); empty = the demo "
              "checkpoint shipped with the package."),
    ParamSpec("device", "auto", "Inference device: auto, cpu, cuda or cuda:N. The device actually used is logged and in "
              "diagnostics; a CUDA device this machine does not have is refused when set (no silent fallback)."),
    ParamSpec("precision", "fp32", "Inference precision (fp16 needs CUDA).", choices=("fp32", "fp16", "bf16")),
    ParamSpec("torch_threads", 2, "torch intra-op threads (each DDS process already runs ~18 threads).",
              low=1, high=256),
    ParamSpec("window.frames", 0, "Frames per inference window W (0 = the checkpoint's).", low=0, high=4096),
    ParamSpec("window.fps", 0.0, "Model frame rate the camera stream is resampled to (0 = the checkpoint's).",
              low=0.0, high=1000.0),
    ParamSpec("window.stride", 0, "Re-run the temporal model every N model frames (0 = the runtime's default).",
              low=0, high=4096),
    ParamSpec("window.horizon_s", 0.0, "Anticipation horizon in seconds (0 = the checkpoint's).",
              low=0.0, high=3600.0),
    ParamSpec("sync.slop_s", 0.03, "Largest stamp difference between matched RGB and depth frames (s).",
              low=0.0005, high=10.0),
    ParamSpec("sync.max_age_s", 0.5, "A modality without a frame this close to the reference stamp is "
              "'missing' (closer but unmatched: 'stale'); also how long the reference may pause (s).",
              low=0.001, high=60.0),
    ParamSpec("sync.queue_size", 5, "Frames buffered per modality for matching.", low=1, high=1000),
    ParamSpec("sync.reference", "rgb", "Modality whose frames drive the synchroniser.", choices=MODALITIES),
    ParamSpec("sync.policy", "available", "require_all: only complete sets; available: run with the fresh "
              "modalities, the others masked and reported.", choices=POLICIES),
    ParamSpec("sync.wait_s", 0.1, "How long (wall time) a reference frame waits for late partners before it "
              "goes out with them marked stale / missing (policy available) or is dropped (require_all) (s).",
              low=0.0, high=10.0),
    ParamSpec("sync.time_jump_s", 1.0, "The node's clock (/clock under use_sim_time) going back this far resets "
              "all buffers (a looped bag); offline bag evaluation: a stamp this far behind a modality's newest "
              "does (s).", low=0.001, high=1e6),
    ParamSpec("stamps.max_ahead_s", 0.5, "A frame stamped more than this ahead of the node's clock is dropped "
              "(stamp_in_future), never used nor a reason to reset (s).", low=0.001, high=1e6),
    ParamSpec("stamps.max_behind_s", 1.0, "A frame stamped more than this behind the node's clock is dropped "
              "(stamp_too_old), never used nor a reason to reset (s).", low=0.001, high=1e6),
    ParamSpec("stamps.jump_frames", 10, "Consecutive frames off the node's clock by the same amount, with a frame of "
              "every active input among them, that make the stamp check follow the stream's clock and reset all "
              "buffers (a bag played without /clock); fewer are dropped one by one.", low=2, high=100000),
    ParamSpec("rgb.compressed", False, "Subscribe to sensor_msgs/CompressedImage on rgb/image_raw/compressed "
              "instead of Image on rgb/image_raw."),
    ParamSpec("skeleton.type", "pose_array", "pose_array: geometry_msgs/PoseArray in skeleton.layout order; "
              "marker_array: Azure Kinect body-tracking MarkerArray (id = body * 100 + joint).",
              choices=("pose_array", "marker_array")),
    ParamSpec("skeleton.layout", "", "Joint order of incoming PoseArrays (empty = the checkpoint's); "
              "converted by joint name to the checkpoint's layout.", choices=("", *LAYOUTS)),
    ParamSpec("skeleton.max_age_s", 0.2, "Zero-order hold: a skeleton is reused for frames up to this much "
              "newer (s).", low=0.001, high=60.0),
    ParamSpec("skeleton.body_id", -1, "MarkerArray body to follow (-1 = the body nearest the camera).",
              low=-1, high=2**31 - 1),
    *_qos_specs("rgb"), *_qos_specs("depth"), *_qos_specs("skeleton"),
    ParamSpec("diagnostics.rate_hz", 1.0, "Rate of /diagnostics messages.", low=0.01, high=100.0),
    ParamSpec("diagnostics.log_throttle_s", 5.0, "At most one log line per drop reason in this period (s).",
              low=0.0, high=3600.0),
    ParamSpec("erank.fused_warn", -1.0, "WARN (feature collapse) when the fused effective rank falls below; -1 = "
              "auto: the checkpoint's validation percentile erank.warn_percentile when it records its erank "
              "distribution, else 2.5; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.fused_error", -1.0, "ERROR (feature collapse) when the fused effective rank falls below; -1 = "
              "auto: the checkpoint's percentile erank.error_percentile, else 1.5; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.mutual_gain_warn", -1.0, "WARN (modality collapse) when a modality pair's mutual rank gain falls "
              "below; -1 = auto: the lowest pair's percentile erank.warn_percentile (off where that is 0), else "
              "0.05; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.mutual_gain_error", -1.0, "ERROR (modality collapse) when a pair's mutual rank gain falls below; "
              "-1 = auto: the lowest pair's percentile erank.error_percentile (off where 0), else off; 0 disables.",
              low=-1.0, high=1e6),
    ParamSpec("erank.warn_percentile", DEFAULT_WARN_PERCENTILE, "With a checkpoint that records its validation erank "
              "distribution: WARN naming the modality when its erank before the exchange falls below this "
              "percentile of it (also the auto fused / mutual-gain WARN); one of the recorded percentiles, 0 disables.",
              low=0.0, high=50.0),
    ParamSpec("erank.error_percentile", DEFAULT_ERROR_PERCENTILE, "ERROR naming the modality when its erank before "
              "the exchange falls below this percentile of the checkpoint's distribution (also the auto fused / "
              "mutual-gain ERROR); one of the recorded percentiles, 0 disables.", low=0.0, high=50.0),
    ParamSpec("erank.high_percentile", DEFAULT_HIGH_PERCENTILE, "WARN naming the modality when its erank before the "
              "exchange rises above this percentile of the checkpoint's distribution (noise-like input); one of "
              "the recorded percentiles, 0 disables.", low=0.0, high=100.0),
    ParamSpec("erank.min_frames", 4, "Frames a modality needs in the window to get an effective rank.",
              low=2, high=4096),
)

SPECS = {spec.name: spec for spec in PARAMETERS}
PERCENTILE_PARAMETERS = ("erank.warn_percentile", "erank.error_percentile", "erank.high_percentile")

# pose_node (config/pose.yaml): RGB + depth + CameraInfo -> 3D landmarks. Parameters it shares
# with anticipation_node are the same entries.
POSE_PARAMETERS: tuple[ParamSpec, ...] = (
    SPECS["autostart"],
    SPECS["rgb.compressed"],
    ParamSpec("estimator.tracking", True, "Follow the person from frame to frame (the detector runs only when the "
              "track is lost); false estimates every image on its own."),
    ParamSpec("estimator.min_detection_confidence", 0.5, "Detector score a person needs to be reported.",
              low=0.0, high=1.0),
    ParamSpec("estimator.min_tracking_confidence", 0.5, "Landmark-model score below which the track counts as "
              "lost (the detector runs again).", low=0.0, high=1.0),
    ParamSpec("lifting.patch_radius", 2, "A landmark's depth is the median of the valid depth pixels in a "
              "(2r+1)^2 patch around it (px).", low=0, high=20),
    ParamSpec("lifting.min_valid_fraction", 0.3, "Fraction of the patch that must have a valid depth, else the "
              "landmark is missing (NaN).", low=0.01, high=1.0),
    ParamSpec("lifting.max_spread_m", 0.1, "A patch whose valid depths spread wider (interquartile range, m) "
              "straddles a depth edge: the landmark is missing (NaN).", low=0.001, high=100.0),
    ParamSpec("lifting.min_visibility", 0.5, "Estimator visibility below which a landmark is missing (NaN): an "
              "occluded landmark's depth would be the occluder's.", low=0.0, high=1.0),
    SPECS["sync.slop_s"], SPECS["sync.queue_size"],
    SPECS["stamps.max_ahead_s"], SPECS["stamps.max_behind_s"], SPECS["stamps.jump_frames"],
    *_qos_specs("rgb"), *_qos_specs("depth"), *_qos_specs("camera_info"),
    SPECS["diagnostics.rate_hz"], SPECS["diagnostics.log_throttle_s"],
)
POSE_SPECS = {spec.name: spec for spec in POSE_PARAMETERS}


def validation_problem(name: str, value, specs: dict[str, ParamSpec] = SPECS) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name`` of the node whose table is
    ``specs`` (None when it is).

    Ranges and types are also enforced by rclpy from the descriptors; this covers the string
    choices and the device syntax, which descriptors cannot express.
    """
    spec = specs.get(name)
    if spec is None:
        return None
    if spec.choices is not None and value not in spec.choices:
        shown = ", ".join(repr(c) for c in spec.choices)
        return f"parameter '{name}' must be one of {shown}, got {value!r}"
    if name == "device" and not _valid_device(str(value)):
        return f"parameter 'device' must be {DEVICE_HELP}, got {value!r}"
    if name in PERCENTILE_PARAMETERS and value != 0 and value not in DISTRIBUTION_PERCENTILES:
        recorded = ", ".join(f"{p:g}" for p in DISTRIBUTION_PERCENTILES)
        return f"parameter '{name}' must be 0 or a recorded percentile ({recorded}), got {value!r}"
    if spec.low is not None and not isinstance(value, bool) and isinstance(value, (int, float)):
        if not spec.low <= value <= spec.high:
            return f"parameter '{name}' must be in [{spec.low}, {spec.high}], got {value!r}"
    return None


_TYPE_NAMES = {bool: "a bool", int: "an integer", float: "a double", str: "a string"}


def type_problem(name: str, value, specs: dict[str, ParamSpec] = SPECS) -> str | None:
    """Why ``value`` has the wrong type for parameter ``name`` of the node whose table is
    ``specs`` (None when it is right or the name is not in it): rclpy's own refusal does not
    name the parameter."""
    spec = specs.get(name)
    if spec is None or type(value) is type(spec.default):
        return None
    return (f"parameter '{name}' must be {_TYPE_NAMES[type(spec.default)]} (default {spec.default!r}), "
            f"got {_TYPE_NAMES.get(type(value), type(value).__name__)} {value!r}")


def unknown_problem(unknown: list[str], node_name: str, params_file: str) -> str:
    """The refusal of setting parameters the node has not declared (rclpy's own says "Invalid
    access to undeclared parameter(s): []", without the names)."""
    listed = ", ".join(repr(n) for n in unknown)
    return (f"unknown parameter{'s' if len(unknown) > 1 else ''} {listed}: {node_name} declares only the "
            f"parameters listed in {params_file}")


def device_problem(name: str, value) -> str | None:
    """A device this machine does not have is refused when it is asked for, not at the next
    configure (None for other parameters and for a device that is there)."""
    if name != "device":
        return None
    from retf_ros.device import unavailable_device   # torch: imported only when a device is set

    problem = unavailable_device(value)
    return None if problem is None else f"parameter 'device': {problem}"


def _valid_device(text: str) -> bool:
    if text in ("auto", "cpu", "cuda"):
        return True
    prefix, _, index = text.partition(":")
    return prefix == "cuda" and index.isdigit()


def descriptor(spec: ParamSpec):
    """The rcl_interfaces ParameterDescriptor of one parameter (description, type, range)."""
    # ROS: the table is also read without it
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    result = ParameterDescriptor(name=spec.name, type=types[type(spec.default)], description=spec.description)
    if spec.choices is not None:
        result.additional_constraints = "one of: " + ", ".join(repr(c) for c in spec.choices)
    if spec.low is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        result.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=0)]
    elif spec.low is not None and isinstance(spec.default, float):
        result.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high),
                                                          step=0.0)]
    return result


def declare_parameters(node, parameters: tuple[ParamSpec, ...]) -> None:
    """Declare ``parameters`` on ``node``, each once with its descriptor, after registering the
    check that refuses bad values (so a bad value from YAML or ``-p`` is refused at declaration,
    and a later ``set_parameters`` call too)."""
    # ROS: the table is also read without it
    from rcl_interfaces.msg import SetParametersResult

    specs = {spec.name: spec for spec in parameters}

    def check(changed) -> SetParametersResult:
        for parameter in changed:
            problem = (validation_problem(parameter.name, parameter.value, specs)
                       or device_problem(parameter.name, parameter.value))
            if problem:
                node.get_logger().error(f"refused: {problem}")
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    for spec in parameters:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
