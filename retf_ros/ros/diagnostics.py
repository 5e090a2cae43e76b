"""The node's /diagnostics content: a snapshot of its state -> DiagnosticStatus entries.

diagnostic_updater is not available here; the node assembles a :class:`NodeHealth` snapshot
once per diagnostics period and :func:`diagnostic_statuses` turns it into four statuses:
``<node>: inputs`` (per-modality rate, stamp age, state), ``<node>: synchronisation`` (drop
counts by modality/reason), ``<node>: inference`` (lifecycle state, device actually used,
latency percentiles, skipped windows, configure errors) and ``<node>: effective rank`` (the
last window's erank health); pose_node's are ``inputs``, ``synchronisation`` and ``pose``
(:func:`pose_statuses`). Levels are bytes (DiagnosticStatus.OK == b'\\x00').
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from retf_ros.runtime.health import ErankReport
from retf_ros.runtime.stamps import STAMP_DROP_REASONS
from retf_ros.runtime.stats import latency_distribution


class LatencyWindow:
    """The last ``size`` latencies (ms) and their p50 / p95 / max."""

    def __init__(self, size: int = 500):
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value_ms: float) -> None:
        self._values.append(float(value_ms))

    def __len__(self) -> int:
        return len(self._values)

    def summary(self) -> dict[str, float] | None:
        """p50 / p95 / max of the window (what diagnostics report), None when empty."""
        full = latency_distribution(self._values)
        return None if full is None else {k: full[k] for k in ("p50", "p95", "max")}


@dataclass
class ModalityHealth:
    state: str                  # ok | stale | missing (in the last emitted frame set), or "waiting"
    rate_hz: float              # usable frames (converted, plausible stamp, in order) per second
    stamp_age_s: float | None   # node clock now - newest accepted source stamp
    frames: int = 0             # messages received since activation (dropped ones included)
    received_hz: float | None = None   # every message that reached the node's callback
    taken_hz: float | None = None      # distinct frames that went into a frame set the worker took
    lost_hz: float | None = None       # sent by a publisher, never reached the callback (queue overwritten)
    lost: int = 0
    max_age_s: float | None = None     # oldest usable frame on arrival, over the rate window
    bad_stamps: int = 0                # frames dropped for an implausible stamp since the last report
    reference: bool = False            # the modality that drives the synchroniser


# The node takes markedly fewer frames than arrive: below this share it is reported (WARN).
INTAKE_SHARE_WARN = 0.8
MIN_RATE_HZ = 1.0   # below this a rate says too little to compare


@dataclass
class NodeHealth:
    node_name: str
    lifecycle_state: str
    device: str = ""
    checkpoint: str = ""
    error: str = ""                                   # why configure/activate failed, if it did
    modalities: dict[str, ModalityHealth] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    new_drops: dict[str, int] = field(default_factory=dict)   # since the previous snapshot
    last_drop: str = ""
    resets: int = 0
    reset_reasons: dict[str, int] = field(default_factory=dict)   # stamp gate resets by reason
    age_bound_s: float | None = None                             # sync.max_age_s: frames older WARN
    masked_skeletons: int = 0     # skeleton frames used with some joints masked (NaN / Inf from the tracker)
    inference_ms: dict[str, float] | None = None
    end_to_end_ms: dict[str, float] | None = None
    windows_run: int = 0
    skipped_windows: int = 0
    erank: ErankReport | None = None
    input_problems: list[str] = field(default_factory=list)   # why inputs deliver nothing (ros/input_check.py)


def add_sync_health(health: NodeHealth, sync, gate, extra_drops: dict[str, int], reported: dict[str, int],
                    max_age_s: float, now_ros_ns: int, states: dict[str, str] | None = None) -> dict[str, int]:
    """Fill ``health``'s inputs and drops from an ApproximateTimeSynchronizer (retf_ros.runtime.sync)
    and the StampGate in front of it (retf_ros.runtime.stamps).

    A modality with nothing received for ``max_age_s`` is "missing", else its state in the last
    emitted set (``states``, default "ok"); "waiting" before its first frame. Its intake (received,
    taken, lost rates), the oldest arrival age (``max_age_s`` is also the bound that WARNs) and the
    frames dropped for implausible stamps go with it. ``extra_drops``: the node's own drop
    counters; ``reported``: the drops of the previous snapshot (new ones are those since). Returns
    the drops to pass as ``reported`` next time."""
    drops = {**sync.drops(), **extra_drops}
    health.drops = drops
    health.new_drops = {k: n - reported.get(k, 0) for k, n in drops.items() if n > reported.get(k, 0)}
    if health.new_drops:
        health.last_drop = sorted(health.new_drops.items(), key=lambda kv: -kv[1])[0][0]
    now_wall = time.monotonic()
    for modality, stats in sync.stats(now_wall).items():
        fresh = stats.last_received is not None and now_wall - stats.last_received <= max_age_s
        state = (states or {}).get(modality, "ok") if fresh else "missing"
        # Ages against the stream's clock the gate follows (a bag played without /clock).
        age = None if stats.last_stamp_ns is None else (now_ros_ns - stats.last_stamp_ns + gate.offset_ns) / 1e9
        health.modalities[modality] = ModalityHealth(
            state=state if stats.frames else "waiting", rate_hz=stats.rate_hz, stamp_age_s=age,
            frames=stats.frames, received_hz=stats.received_hz, taken_hz=stats.taken_hz, lost_hz=stats.lost_hz,
            lost=stats.lost, max_age_s=gate.max_age_s(modality, now_wall),
            bad_stamps=sum(health.new_drops.get(f"{modality}/{r}", 0) for r in STAMP_DROP_REASONS),
            reference=modality == sync.config.reference)
    health.age_bound_s = max_age_s
    health.resets = sync.resets
    health.reset_reasons = dict(gate.resets)
    return drops


def _kv(values: dict) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _status(health: NodeHealth, part: str, level: bytes, message: str, values: dict) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=f"{health.node_name}: {part}", message=message,
                            hardware_id=health.device or "none", values=_kv(values))


@dataclass
class PoseHealth:
    """pose_node's own part of a snapshot (its inputs and drops are in the NodeHealth)."""

    frames: int = 0                                # RGB-D pairs estimated since activation
    detection_rate: float | None = None            # share of the recent pairs with a person
    landmarks_with_depth: float | None = None      # mean landmarks lifted to 3D per recent detection
    landmarks: int = 0                             # landmarks per person in the layout
    layout: str = ""
    camera_info: str = ""                          # "" until a CameraInfo arrived, else "WxH"
    process_ms: dict[str, float] | None = None     # estimation + lifting per frame
    age_ms: dict[str, float] | None = None         # publish time - source stamp


def diagnostic_statuses(health: NodeHealth) -> list[DiagnosticStatus]:
    return [_inputs(health), _synchronisation(health), _inference(health), _erank(health)]


def pose_statuses(health: NodeHealth, pose: PoseHealth) -> list[DiagnosticStatus]:
    """pose_node's statuses: ``inputs`` and ``synchronisation`` as anticipation_node's, and ``pose``."""
    return [_inputs(health), _synchronisation(health), _pose(health, pose)]


def _pose(health: NodeHealth, pose: PoseHealth) -> DiagnosticStatus:
    values = {"lifecycle_state": health.lifecycle_state, "layout": pose.layout or "none", "frames": pose.frames,
              "detection_rate": pose.detection_rate, "landmarks_with_depth": pose.landmarks_with_depth,
              "landmarks": pose.landmarks, "camera_info": pose.camera_info or "none"}
    values.update(_latency_values(process_ms=pose.process_ms, age_ms=pose.age_ms))
    not_running = _not_running(health, "pose", values)
    if not_running is not None:
        return not_running
    if not pose.camera_info:
        return _status(health, "pose", DiagnosticStatus.WARN,
                       "no CameraInfo received yet: frames cannot be lifted to 3D and are dropped", values)
    if pose.detection_rate is None:
        return _status(health, "pose", DiagnosticStatus.OK, "no frame estimated yet", values)
    message = f"person in {100 * pose.detection_rate:.0f}% of recent frames"
    if pose.landmarks_with_depth is not None:
        message += f", {pose.landmarks_with_depth:.1f}/{pose.landmarks} landmarks with depth"
    if pose.process_ms is not None:
        message += f", {pose.process_ms['p50']:.1f} ms per frame"
    return _status(health, "pose", DiagnosticStatus.OK, message, values)


def _inputs(health: NodeHealth) -> DiagnosticStatus:
    values, problems = {}, []
    for modality, m in health.modalities.items():
        values[f"{modality}.state"] = m.state
        values[f"{modality}.rate_hz"] = m.rate_hz
        values[f"{modality}.stamp_age_s"] = m.stamp_age_s
        values[f"{modality}.frames"] = m.frames
        if m.state in ("stale", "missing"):
            problems.append(f"{modality} {m.state}")
        elif m.state == "waiting":
            problems.append(f"{modality}: nothing received yet")
        intake_values, intake_problems = _intake(modality, m, health.age_bound_s)
        values.update(intake_values)
        problems.extend(intake_problems)
    if "skeleton" in health.modalities:
        values["skeleton.masked_joint_frames"] = health.masked_skeletons
    if health.lifecycle_state != "active":
        return _status(health, "inputs", DiagnosticStatus.OK, f"not subscribed ({health.lifecycle_state})", values)
    if health.input_problems:  # why nothing arrives beats "waiting": the topic, the type seen, the type expected
        return _status(health, "inputs", DiagnosticStatus.WARN, "; ".join(health.input_problems + problems), values)
    if not health.modalities or all(m.state == "waiting" for m in health.modalities.values()):
        return _status(health, "inputs", DiagnosticStatus.WARN, "waiting for input", values)
    level = DiagnosticStatus.WARN if problems else DiagnosticStatus.OK
    return _status(health, "inputs", level, ", ".join(problems) or "all inputs ok", values)


def _intake(modality: str, m: ModalityHealth, age_bound_s: float | None) -> tuple[dict, list[str]]:
    """What arrives at the node vs what it takes, and how old it is: values and problems.

    Received: messages that reached the callback; lost: frames their publisher sent that never
    did (the node's queue overwritten under load, or dropped on the way); usable: received
    minus drops; taken: went into a frame set the worker used (a slow worker passes over)."""
    values = {f"{modality}.received_hz": m.received_hz, f"{modality}.taken_hz": m.taken_hz,
              f"{modality}.lost_hz": m.lost_hz, f"{modality}.lost": m.lost, f"{modality}.max_age_s": m.max_age_s}
    problems = []
    if m.received_hz is not None and m.lost_hz is not None:
        sent_hz = m.received_hz + m.lost_hz
        if sent_hz >= MIN_RATE_HZ and m.received_hz < INTAKE_SHARE_WARN * sent_hz:
            problems.append(f"{modality}: node receives {m.received_hz:.1f} of {sent_hz:.1f} Hz sent "
                            f"({m.lost_hz:.1f} Hz lost in its queues)")
    if m.reference and m.taken_hz is not None and m.rate_hz >= MIN_RATE_HZ \
            and m.taken_hz < INTAKE_SHARE_WARN * m.rate_hz:
        problems.append(f"{modality}: node takes {m.taken_hz:.1f} of {m.rate_hz:.1f} Hz usable frames")
    if m.bad_stamps:
        problems.append(f"{modality}: {m.bad_stamps} frame{'s' if m.bad_stamps > 1 else ''} with implausible stamps "
                        f"dropped")
    if age_bound_s is not None and m.max_age_s is not None and m.max_age_s > age_bound_s:
        problems.append(f"{modality}: frames up to {m.max_age_s:.3f} s old on arrival (bound {age_bound_s:g} s)")
    return values, problems


def _synchronisation(health: NodeHealth) -> DiagnosticStatus:
    values = {f"drops.{key}": count for key, count in health.drops.items()}
    values["buffer_resets"] = health.resets
    values.update({f"resets.{reason}": count for reason, count in sorted(health.reset_reasons.items())})
    values["last_drop"] = health.last_drop or "none"
    # Frames passed over because a newer one was ready are the newest-window policy at work.
    bad = {k: n for k, n in health.new_drops.items() if not k.endswith("/superseded")}
    if bad:
        message = "dropping: " + ", ".join(f"{k} x{n}" for k, n in sorted(bad.items()))
        return _status(health, "synchronisation", DiagnosticStatus.WARN, message, values)
    return _status(health, "synchronisation", DiagnosticStatus.OK, "no drops since last report", values)


def _latency_values(**summaries: dict[str, float] | None) -> dict:
    """``name.p50`` / ``name.p95`` / ``name.max`` of each LatencyWindow summary (None: n/a)."""
    return {f"{name}.{key}": None if summary is None else summary[key]
            for name, summary in summaries.items() for key in ("p50", "p95", "max")}


def _not_running(health: NodeHealth, part: str, values: dict) -> DiagnosticStatus | None:
    """ERROR with the reason when a transition failed, OK with the state when not active, else None."""
    if health.error:
        values["error"] = health.error
        return _status(health, part, DiagnosticStatus.ERROR, health.error, values)
    if health.lifecycle_state != "active":
        return _status(health, part, DiagnosticStatus.OK, health.lifecycle_state, values)
    return None


def _inference(health: NodeHealth) -> DiagnosticStatus:
    values = {"lifecycle_state": health.lifecycle_state, "device": health.device or "none",
              "checkpoint": health.checkpoint or "none", "windows_run": health.windows_run,
              "skipped_windows": health.skipped_windows}
    values.update(_latency_values(inference_ms=health.inference_ms, end_to_end_ms=health.end_to_end_ms))
    not_running = _not_running(health, "inference", values)
    if not_running is not None:
        return not_running
    message = f"running on {health.device}"
    if health.inference_ms is not None:
        message += f", inference p50 {health.inference_ms['p50']:.1f} ms"
    return _status(health, "inference", DiagnosticStatus.OK, message, values)


_ERANK_LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def _erank(health: NodeHealth) -> DiagnosticStatus:
    report = health.erank
    if report is None:
        return _status(health, "effective rank", DiagnosticStatus.OK, "no window yet", {})
    values = {"convention": report.convention, "fused": report.fused}
    values.update({f"before.{m}": v for m, v in report.before.items()})
    values.update({f"after.{m}": v for m, v in report.after.items()})
    values.update({f"mutual_gain.{p}": v for p, v in report.mutual_gain.items()})
    message = "; ".join(report.messages) or "effective ranks healthy"
    return _status(health, "effective rank", _ERANK_LEVELS[report.status], message, values)
