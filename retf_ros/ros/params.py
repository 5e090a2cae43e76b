"""The nodes' parameters declared once each with a ParameterDescriptor, and their checks.

anticipation_node's table is plain data in retf_ros.runtime.parameters (``PARAMETERS``,
``SPECS``; offline replay reads it too); pose_node's (``POSE_PARAMETERS``) is here, sharing
entries with it. Each entry gives the default (which fixes the type), a description, and either
a numeric range (enforced by rclpy through the descriptor) or a set of allowed strings (enforced by
:func:`validation_problem`, which the node registers as its set-parameters callback before
declaring, so a bad value in a YAML file, on the command line (``-p``) or from a remote
``set_parameters`` call is refused with a message naming the parameter).

Most parameters take effect at the next ``configure`` transition; config/anticipation.yaml
(anticipation_node, ``PARAMETERS``) and config/pose.yaml (pose_node, ``POSE_PARAMETERS``)
document every one.
"""
from __future__ import annotations

import inspect

from retf_ros.pose.estimator import MediaPipePose
from retf_ros.pose.lifting import LiftConfig
from retf_ros.runtime.health import DISTRIBUTION_PERCENTILES
# PARAMETERS and SPECS are anticipation_node's table, declared and checked from here.
from retf_ros.runtime.parameters import PARAMETERS, SPECS, ParamSpec, qos_specs

DEVICE_HELP = "auto | cpu | cuda | cuda:N"
PERCENTILE_PARAMETERS = ("erank.warn_percentile", "erank.error_percentile", "erank.high_percentile")


def _estimator_default(argument: str):
    """The default of a MediaPipePose argument (its home; the estimator.* parameters take it)."""
    return inspect.signature(MediaPipePose).parameters[argument].default


# pose_node (config/pose.yaml): RGB + depth + CameraInfo -> 3D landmarks. Parameters it shares
# with anticipation_node are the same entries; the lifting.* defaults are LiftConfig's.
POSE_PARAMETERS: tuple[ParamSpec, ...] = (
    SPECS["autostart"],
    SPECS["rgb.compressed"],
    ParamSpec("estimator.tracking", _estimator_default("tracking"), "Follow the person from frame to frame (the "
              "detector runs only when the track is lost); false estimates every image on its own."),
    ParamSpec("estimator.min_detection_confidence", _estimator_default("min_detection_confidence"),
              "Detector score a person needs to be reported.", low=0.0, high=1.0),
    ParamSpec("estimator.min_tracking_confidence", _estimator_default("min_tracking_confidence"),
              "Landmark-model score below which the track counts as lost (the detector runs again).",
              low=0.0, high=1.0),
    ParamSpec("lifting.patch_radius", LiftConfig.patch_radius, "A landmark's depth is the median of the valid depth "
              "pixels in a (2r+1)^2 patch around it (px).", low=0, high=20),
    ParamSpec("lifting.min_valid_fraction", LiftConfig.min_valid_fraction, "Fraction of the patch that must have a "
              "valid depth, else the landmark is missing (NaN).", low=0.01, high=1.0),
    ParamSpec("lifting.max_spread_m", LiftConfig.max_spread_m, "A patch whose valid depths spread wider "
              "(interquartile range, m) straddles a depth edge: the landmark is missing (NaN).", low=0.001, high=100.0),
    ParamSpec("lifting.min_visibility", LiftConfig.min_visibility, "Estimator visibility below which a landmark is "
              "missing (NaN): an occluded landmark's depth would be the occluder's.", low=0.0, high=1.0),
    SPECS["sync.slop_s"], SPECS["sync.queue_size"],
    SPECS["stamps.max_ahead_s"], SPECS["stamps.max_behind_s"], SPECS["stamps.jump_frames"],
    *qos_specs("rgb"), *qos_specs("depth"), *qos_specs("camera_info"),
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
