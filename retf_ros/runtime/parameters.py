"""anticipation_node's parameters as plain data: one table of name, default, description and range.

Each entry gives the default (which fixes the type), a description, and either a numeric range
or a set of allowed strings. The table is the node's single list of parameters: retf_ros.ros.params
declares each one on the node with an rclpy ParameterDescriptor and refuses bad values;
:mod:`retf_ros.runtime.settings` turns values of it into the runtime's settings objects (for the
node and for offline bag evaluation); config/anticipation.yaml documents every entry.

One home per number: a parameter that sets a field of a runtime settings object (SyncConfig,
StampPolicy, ErankThresholds) takes that field's default, so the number lives in the runtime
class and nowhere else. No rclpy here: offline replay reads the table too.
"""
from __future__ import annotations

from dataclasses import dataclass

from retf_ros.fusion.skeleton import LAYOUTS
from retf_ros.runtime.frames import MODALITIES
from retf_ros.runtime.health import (DEFAULT_ERROR_PERCENTILE, DEFAULT_HIGH_PERCENTILE, DEFAULT_WARN_PERCENTILE,
                                     ErankThresholds)
from retf_ros.runtime.messages import SKELETON_MESSAGE_KINDS, SkeletonReader
from retf_ros.runtime.stamps import StampPolicy
from retf_ros.runtime.sync import POLICIES, SyncConfig

# Subscription QoS choices; retf_ros.ros.qos maps each to rclpy's policy (it stays torch-free for
# the test publisher and probe, so it does not import this table; a test checks they agree).
RELIABILITIES = ("best_effort", "reliable")
HISTORIES = ("keep_last", "keep_all")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: bool | int | float | str
    description: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None


def qos_specs(topic: str) -> list[ParamSpec]:
    """``qos.<topic>.reliability|history|depth``: the subscription profile of one input."""
    return [
        ParamSpec(f"qos.{topic}.reliability", "best_effort",
                  f"Reliability of the {topic} subscription (best_effort accepts both kinds of publisher).",
                  choices=RELIABILITIES),
        ParamSpec(f"qos.{topic}.history", "keep_last", f"History policy of the {topic} subscription.",
                  choices=HISTORIES),
        ParamSpec(f"qos.{topic}.depth", 2, f"Queue depth of the {topic} subscription.", low=1, high=100),
    ]


def _fixed(threshold: float | None) -> str:
    """A fixed ErankThresholds default as the descriptions say it ("off" for a disabled check)."""
    return "off" if threshold is None else f"{threshold:g}"


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
    ParamSpec("sync.slop_s", SyncConfig.slop_s, "Largest stamp difference between matched RGB and depth frames (s).",
              low=0.0005, high=10.0),
    ParamSpec("sync.max_age_s", SyncConfig.max_age_s, "A modality without a frame this close to the reference stamp "
              "is 'missing' (closer but unmatched: 'stale'); also how long the reference may pause (s).",
              low=0.001, high=60.0),
    ParamSpec("sync.queue_size", SyncConfig.queue_size, "Frames buffered per modality for matching.", low=1, high=1000),
    ParamSpec("sync.reference", SyncConfig.reference, "Modality whose frames drive the synchroniser.",
              choices=MODALITIES),
    ParamSpec("sync.policy", SyncConfig.policy, "require_all: only complete sets; available: run with the fresh "
              "modalities, the others masked and reported.", choices=POLICIES),
    ParamSpec("sync.wait_s", SyncConfig.wait_s, "How long (wall time) a reference frame waits for late partners before "
              "it goes out with them marked stale / missing (policy available) or is dropped (require_all) (s).",
              low=0.0, high=10.0),
    ParamSpec("sync.time_jump_s", SyncConfig.time_jump_s, "The node's clock (/clock under use_sim_time) going back "
              "this far resets all buffers (a looped bag); offline bag evaluation: a stamp this far behind a "
              "modality's newest does (s).", low=0.001, high=1e6),
    ParamSpec("stamps.max_ahead_s", StampPolicy.max_ahead_s, "A frame stamped more than this ahead of the node's clock "
              "is dropped (stamp_in_future), never used nor a reason to reset (s).", low=0.001, high=1e6),
    ParamSpec("stamps.max_behind_s", StampPolicy.max_behind_s, "A frame stamped more than this behind the node's clock "
              "is dropped (stamp_too_old), never used nor a reason to reset (s).", low=0.001, high=1e6),
    ParamSpec("stamps.jump_frames", StampPolicy.jump_frames, "Consecutive frames off the node's clock by the same "
              "amount, with a frame of every active input among them, that make the stamp check follow the stream's "
              "clock and reset all buffers (a bag played without /clock); fewer are dropped one by one.",
              low=2, high=100000),
    ParamSpec("rgb.compressed", False, "Subscribe to sensor_msgs/CompressedImage on rgb/image_raw/compressed "
              "instead of Image on rgb/image_raw."),
    ParamSpec("skeleton.type", "pose_array", "pose_array: geometry_msgs/PoseArray in skeleton.layout order; "
              "marker_array: Azure Kinect body-tracking MarkerArray (id = body * 100 + joint).",
              choices=SKELETON_MESSAGE_KINDS),
    ParamSpec("skeleton.layout", "", "Joint order of incoming PoseArrays (empty = the checkpoint's); "
              "converted by joint name to the checkpoint's layout.", choices=("", *LAYOUTS)),
    ParamSpec("skeleton.max_age_s", SyncConfig.skeleton_max_age_s, "Zero-order hold: a skeleton is reused for frames "
              "up to this much newer (s).", low=0.001, high=60.0),
    ParamSpec("skeleton.body_id", SkeletonReader.body_id, "MarkerArray body to follow (-1 = the body nearest the "
              "camera).", low=-1, high=2**31 - 1),
    *qos_specs("rgb"), *qos_specs("depth"), *qos_specs("skeleton"),
    ParamSpec("diagnostics.rate_hz", 1.0, "Rate of /diagnostics messages.", low=0.01, high=100.0),
    ParamSpec("diagnostics.log_throttle_s", 5.0, "At most one log line per drop reason in this period (s).",
              low=0.0, high=3600.0),
    ParamSpec("erank.fused_warn", -1.0, "WARN (feature collapse) when the fused effective rank falls below; -1 = "
              "auto: the checkpoint's validation percentile erank.warn_percentile when it records its erank "
              f"distribution, else {_fixed(ErankThresholds.fused_warn)}; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.fused_error", -1.0, "ERROR (feature collapse) when the fused effective rank falls below; -1 = "
              f"auto: the checkpoint's percentile erank.error_percentile, else {_fixed(ErankThresholds.fused_error)}; "
              "0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.mutual_gain_warn", -1.0, "WARN (modality collapse) when a modality pair's mutual rank gain falls "
              "below; -1 = auto: the lowest pair's percentile erank.warn_percentile (off where that is 0), else "
              f"{_fixed(ErankThresholds.mutual_gain_warn)}; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.mutual_gain_error", -1.0, "ERROR (modality collapse) when a pair's mutual rank gain falls below; "
              "-1 = auto: the lowest pair's percentile erank.error_percentile (off where 0), else "
              f"{_fixed(ErankThresholds.mutual_gain_error)}; 0 disables.", low=-1.0, high=1e6),
    ParamSpec("erank.warn_percentile", DEFAULT_WARN_PERCENTILE, "With a checkpoint that records its validation erank "
              "distribution: the auto fused / mutual-gain WARN below this percentile of it; without recorded "
              "fault statistics (spread) also WARN naming a modality whose erank of its last tokens falls below "
              "it; one of the recorded percentiles, 0 disables.",
              low=0.0, high=50.0),
    ParamSpec("erank.error_percentile", DEFAULT_ERROR_PERCENTILE, "The auto fused / mutual-gain ERROR below this "
              "percentile of the checkpoint's distribution; without recorded fault statistics also ERROR naming a "
              "modality whose erank of its last tokens falls below it; one of the recorded percentiles, 0 disables.",
              low=0.0, high=50.0),
    ParamSpec("erank.high_percentile", DEFAULT_HIGH_PERCENTILE, "WARN naming the modality (noise-like input) when the "
              "erank of its last tokens, or their centred erank while they move, rises above this percentile of "
              "the checkpoint's distribution; one of the recorded percentiles, 0 disables.", low=0.0, high=100.0),
    ParamSpec("erank.min_frames", ErankThresholds.min_frames, "Frames a modality needs in the window to get an "
              "effective rank.", low=2, high=4096),
)

SPECS = {spec.name: spec for spec in PARAMETERS}
