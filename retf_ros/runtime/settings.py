"""Node parameters -> the runtime's settings objects: the one translation.

anticipation_node (retf_ros.ros.node) calls :func:`runtime_settings` with the values of its
declared parameters and offline bag evaluation (retf_ros.replay.offline) with the values of a
parameter file (retf_ros.param_file.node_parameters), so both run the synchroniser, the
predictor and the erank health with the same settings from the same values (the bag
evaluation report states the thresholds of :func:`erank_thresholds`, the same ones). Both nodes
build their stamp gate with :func:`stamp_policy`; pose_node its synchroniser with :func:`sync_config`.

Parameters are a flat mapping of dotted names (``sync.wait_s``) to values. A name the mapping
lacks takes its default from the table (retf_ros.runtime.parameters); a name the table does not
hold is ignored (a parameter file may carry other parameters). No rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from retf_ros.errors import RetfError
from retf_ros.runtime.health import THRESHOLD_PARAMETERS, ErankThresholds, thresholds_for
from retf_ros.runtime.parameters import SPECS, ParamSpec
from retf_ros.runtime.stamps import StampPolicy
from retf_ros.runtime.sync import SyncConfig


@dataclass(frozen=True)
class RuntimeSettings:
    """What anticipation_node's parameters set in the runtime, for one checkpoint.

    ``window`` / ``stride`` / ``horizon_s`` / ``fps``: StreamingPredictor options (None: the
    checkpoint's value, the runtime's default stride); ``sync``: the synchroniser over every
    modality (:meth:`sync_for` narrows it to a checkpoint's); ``erank_thresholds``: for the
    checkpoint whose metadata they were derived from; ``skeleton_type``, ``skeleton_layout``
    (None: the checkpoint's layout) and ``skeleton_body_id``: how skeleton messages are read.
    """

    window: int | None
    stride: int | None
    horizon_s: float | None
    fps: float | None
    sync: SyncConfig
    erank_thresholds: ErankThresholds
    skeleton_type: str
    skeleton_layout: str | None
    skeleton_body_id: int

    def predictor_options(self) -> dict:
        """Keyword arguments of StreamingPredictor besides the checkpoint, device and precision."""
        return {"window": self.window, "stride": self.stride, "horizon_s": self.horizon_s, "fps": self.fps,
                "erank_thresholds": self.erank_thresholds}

    def sync_for(self, modalities: tuple[str, ...]) -> SyncConfig:
        """The synchroniser settings for a checkpoint with ``modalities``; RetfError when
        ``sync.reference`` is not one of them."""
        if self.sync.reference not in modalities:
            raise RetfError(f"parameter 'sync.reference' is {self.sync.reference!r} but the checkpoint uses only "
                            f"{', '.join(modalities)}")
        return replace(self.sync, modalities=tuple(modalities))


def runtime_settings(params: Mapping[str, object], metadata: Mapping) -> RuntimeSettings:
    """The runtime settings of anticipation_node's parameters ``params`` for the checkpoint with
    ``metadata`` (its erank distribution gives the "auto" thresholds). RetfError names a value
    the runtime refuses."""
    values = parameter_values(params)

    def positive_or_none(name: str):
        return values[name] if values[name] > 0 else None

    return RuntimeSettings(window=positive_or_none("window.frames"), stride=positive_or_none("window.stride"),
                           horizon_s=positive_or_none("window.horizon_s"), fps=positive_or_none("window.fps"),
                           sync=sync_config(values), erank_thresholds=erank_thresholds(values, metadata),
                           skeleton_type=values["skeleton.type"], skeleton_layout=values["skeleton.layout"] or None,
                           skeleton_body_id=values["skeleton.body_id"])


def erank_thresholds(params: Mapping[str, object], metadata: Mapping) -> ErankThresholds:
    """The erank thresholds of ``erank.*`` for the checkpoint with ``metadata``: derived from its
    validation erank distribution where it records one; explicit parameters win."""
    values = parameter_values(params)
    return thresholds_for(metadata, {name: values[name] for name in THRESHOLD_PARAMETERS},
                          warn_percentile=values["erank.warn_percentile"],
                          error_percentile=values["erank.error_percentile"],
                          high_percentile=values["erank.high_percentile"], min_frames=values["erank.min_frames"])


def sync_config(params: Mapping[str, object]) -> SyncConfig:
    """The synchroniser settings of ``sync.*`` and ``skeleton.max_age_s``, over every modality."""
    values = parameter_values(params)
    try:
        return SyncConfig(reference=values["sync.reference"], slop_s=values["sync.slop_s"],
                          max_age_s=values["sync.max_age_s"], skeleton_max_age_s=values["skeleton.max_age_s"],
                          queue_size=values["sync.queue_size"], policy=values["sync.policy"],
                          time_jump_s=values["sync.time_jump_s"], wait_s=values["sync.wait_s"])
    except ValueError as exc:
        raise RetfError(f"node parameters: {exc}") from exc


def stamp_policy(params: Mapping[str, object], sync: SyncConfig) -> StampPolicy:
    """The stamp gate's tolerances of ``stamps.*``; the clock jump that resets and the time an
    input counts as active are the synchroniser's ``time_jump_s`` and ``max_age_s``."""
    values = parameter_values(params)
    return StampPolicy(max_ahead_s=values["stamps.max_ahead_s"], max_behind_s=values["stamps.max_behind_s"],
                       jump_frames=values["stamps.jump_frames"], clock_jump_s=sync.time_jump_s,
                       active_s=sync.max_age_s)


def parameter_values(params: Mapping[str, object]) -> dict:
    """Every parameter of the table: its value in ``params`` or its default."""
    return {name: _typed(spec, params[name]) if name in params else spec.default for name, spec in SPECS.items()}


def _typed(spec: ParamSpec, value):
    """An integer written for a double parameter as the double (a parameter file may say 1 for
    1.0), so the same file gives equal settings wherever it is read."""
    if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
