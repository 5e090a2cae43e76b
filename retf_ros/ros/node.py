"""``anticipation_node``: synchronised RGB, depth and skeleton in; anticipations and
effective-rank diagnostics out. An rclpy LifecycleNode.

Flow: subscription callbacks only convert the message (retf_ros.runtime.messages) and store the
frame in the synchroniser (a short lock); an inference worker thread takes the NEWEST complete
frame set, feeds it to the StreamingPredictor and, when a window is due, publishes the
anticipation (JSON), and markers / debug image while someone subscribes. A slow model therefore
never works through a backlog: frames it had no time for are passed over and counted.

Lifecycle: configure = validate parameters + load the checkpoint (a missing, corrupt or pickle
checkpoint fails the transition with one clear log line and the node stays up, ready to be
reconfigured); activate = build the predictor on the device, warm up, subscribe; deactivate =
unsubscribe, stop the worker, free device memory; cleanup = drop the checkpoint. ``autostart``
runs configure + activate at start-up. Bad messages are dropped, counted per reason, logged
(rate-limited) and reported in /diagnostics; they never stop the node. A frame whose stamp is
implausible against the node's clock is one of them (retf_ros.runtime.stamps): it is never
used, and buffers are reset only when the whole stream (or the clock) jumped.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from retf_ros.errors import RetfError
from retf_ros.runtime.intake import SequenceGaps, message_info_key
from retf_ros.runtime.messages import (InvalidMessage, SkeletonReader, compressed_image_to_array, frame_id,
                                       image_to_array, stamp_nanoseconds)
from retf_ros.runtime.stamps import STAMP_DROP_REASONS, StampGate, StampPolicy
from retf_ros.runtime.sync import NS, ApproximateTimeSynchronizer, SyncConfig
from retf_ros.ros.diagnostics import LatencyWindow, ModalityHealth, NodeHealth, diagnostic_statuses
from retf_ros.ros.params import PARAMETERS, descriptor, type_problem, unknown_problem, validation_problem
from retf_ros.ros.qos import input_qos, output_qos
from retf_ros.ros.shutdown import SIGNAL_POLL_S, signal_event
from retf_ros.ros.throttled_log import ThrottledLog

NODE_NAME = "anticipation_node"
DEMO_CHECKPOINT = "checkpoints/demo.safetensors"
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def demo_checkpoint_path() -> Path:
    """The demo checkpoint shipped inside the package (default of the ``checkpoint`` parameter)."""
    return Path(str(resources.files("retf_ros").joinpath(DEMO_CHECKPOINT)))


class AnticipationNode(LifecycleNode):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        # Registered before declaring, so a bad value from YAML or -p is refused at declaration.
        self.add_on_set_parameters_callback(self._check_parameters)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        self._lifecycle = "unconfigured"
        self._error = ""
        self._checkpoint = None
        self._predictor = None
        self._sync: ApproximateTimeSynchronizer | None = None
        self._stamp_gate: StampGate | None = None
        self._sequence_gaps = SequenceGaps()
        self._stream_reset = threading.Event()   # set by a callback, the worker then clears the predictor
        self._skeleton: SkeletonReader | None = None
        self._inputs = []
        self._outputs: dict = {}
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._rgb_shape: tuple[int, int] | None = None
        self._last_states: dict[str, str] = {}
        self._reported_drops: dict[str, int] = {}
        self._reset_counters()
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", output_qos())
        self._diagnostics_timer = None
        self._apply_reporting_parameters()

    def _apply_reporting_parameters(self) -> None:
        """(Re)start the diagnostics timer and the log throttle from their parameters."""
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
        self._diagnostics_timer = self.create_timer(1.0 / self._p("diagnostics.rate_hz"), self._publish_diagnostics)
        logger = self.get_logger()
        self._log = ThrottledLog(lambda text: logger.warning(text), self._p("diagnostics.log_throttle_s"))

    # ------------------------------------------------------------------ parameters
    def _p(self, name: str):
        return self.get_parameter(name).value

    def _check_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            problem = validation_problem(parameter.name, parameter.value) or self._device_problem(parameter)
            if problem:
                return self._refuse(problem)
        return SetParametersResult(successful=True)

    @staticmethod
    def _device_problem(parameter) -> str | None:
        """A device this machine does not have is refused when it is asked for, not at the next configure."""
        if parameter.name != "device":
            return None
        from retf_ros.device import unavailable_device

        problem = unavailable_device(parameter.value)
        return None if problem is None else f"parameter 'device': {problem}"

    def _refuse(self, problem: str) -> SetParametersResult:
        self.get_logger().error(f"refused: {problem}")
        return SetParametersResult(successful=False, reason=problem)

    def set_parameters_atomically(self, parameter_list) -> SetParametersResult:
        """rclpy's checks, with refusals that name the parameter: an unknown name, a wrong type.
        (The parameter services call this for each request.)"""
        unknown = [p.name for p in parameter_list if not self.has_parameter(p.name)]
        if unknown:
            return self._refuse(unknown_problem(unknown))
        for parameter in parameter_list:
            problem = type_problem(parameter.name, parameter.value)
            if problem:
                return self._refuse(problem)
        return super().set_parameters_atomically(parameter_list)

    def _reset_counters(self) -> None:
        self._inference_ms = LatencyWindow()
        self._end_to_end_ms = LatencyWindow()
        self._windows_run = 0
        self._missed_model_frames = 0
        self._last_taken_stamp: float | None = None
        self._last_erank = None
        self._frame_errors: Counter[str] = Counter()
        self._masked_skeletons = 0

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        import torch

        from retf_ros.checkpoint import load_checkpoint
        from retf_ros.device import select_device, select_precision

        self._apply_reporting_parameters()
        path = self._p("checkpoint") or str(demo_checkpoint_path())
        try:
            torch.set_num_threads(self._p("torch_threads"))
            select_precision(self._p("precision"), select_device(self._p("device")))
            self._checkpoint = load_checkpoint(path, device="cpu")
            # Building a CPU predictor checks window / stride / fps / horizon against the metadata.
            checked = self._build_predictor(device="cpu", precision="fp32")
            self._sync_config = self._make_sync_config(checked.modalities)
            self._stamp_policy = self._make_stamp_policy()
            self._skeleton = SkeletonReader(self._p("skeleton.type"), self._p("skeleton.layout")
                                            or checked.skeleton_layout, checked.skeleton_layout,
                                            self._p("skeleton.body_id"))
            checked.release()
        except (RetfError, ValueError, OSError) as exc:
            self._checkpoint = None
            demo_missing = not self._p("checkpoint") and not demo_checkpoint_path().exists()
            hint = "; the shipped demo checkpoint is missing: set parameter 'checkpoint'" if demo_missing else ""
            return self._fail("configure", f"{exc} (checkpoint {path}{hint})")
        self._outputs = {
            "anticipation": self.create_publisher(String, "~/anticipation", output_qos()),
            "markers": self.create_publisher(_marker_type(), "~/markers", output_qos()),
            "debug_image": self.create_publisher(Image, "~/debug_image", output_qos(2)),
        }
        self._error = ""
        self._lifecycle = "inactive"
        self.get_logger().info(f"configured: checkpoint {self._checkpoint.path} (sha256 "
                               f"{self._checkpoint.sha256[:12]}), modalities {', '.join(self._sync_config.modalities)}")
        return SUCCESS

    def _fail(self, transition: str, message: str) -> TransitionCallbackReturn:
        self._error = f"{transition} failed: {message}"
        self.get_logger().error(self._error)
        return FAILURE

    def _build_predictor(self, device: str, precision: str):
        from retf_ros.runtime.health import ErankThresholds
        from retf_ros.runtime.predictor import StreamingPredictor

        def positive_or_none(name):
            value = self._p(name)
            return value if value > 0 else None

        thresholds = ErankThresholds(
            fused_warn=positive_or_none("erank.fused_warn"), fused_error=positive_or_none("erank.fused_error"),
            mutual_gain_warn=positive_or_none("erank.mutual_gain_warn"),
            mutual_gain_error=positive_or_none("erank.mutual_gain_error"), min_frames=self._p("erank.min_frames"))
        return StreamingPredictor(self._checkpoint, device=device, precision=precision,
                                  window=positive_or_none("window.frames"), stride=positive_or_none("window.stride"),
                                  horizon_s=positive_or_none("window.horizon_s"), fps=positive_or_none("window.fps"),
                                  erank_thresholds=thresholds)

    def _make_sync_config(self, modalities: tuple[str, ...]) -> SyncConfig:
        reference = self._p("sync.reference")
        if reference not in modalities:
            raise RetfError(f"parameter 'sync.reference' is {reference!r} but the checkpoint uses only "
                            f"{', '.join(modalities)}")
        return SyncConfig(modalities=modalities, reference=reference, slop_s=self._p("sync.slop_s"),
                          max_age_s=self._p("sync.max_age_s"), skeleton_max_age_s=self._p("skeleton.max_age_s"),
                          queue_size=self._p("sync.queue_size"), policy=self._p("sync.policy"),
                          time_jump_s=self._p("sync.time_jump_s"), wait_s=self._p("sync.wait_s"),
                          reset_on_time_jump=False)   # the stamp gate decides resets from the whole stream

    def _make_stamp_policy(self) -> StampPolicy:
        return StampPolicy(max_ahead_s=self._p("stamps.max_ahead_s"), max_behind_s=self._p("stamps.max_behind_s"),
                           jump_frames=self._p("stamps.jump_frames"), clock_jump_s=self._p("sync.time_jump_s"),
                           active_s=self._p("sync.max_age_s"))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._predictor = self._build_predictor(self._p("device"), self._p("precision"))
        except (RetfError, RuntimeError) as exc:
            self._release_model()
            return self._fail("activate", str(exc))
        self._sync = ApproximateTimeSynchronizer(self._sync_config)
        self._stamp_gate = StampGate(self._stamp_policy)
        self._sequence_gaps = SequenceGaps()   # what publishers sent while unsubscribed was not lost
        self._stream_reset.clear()
        self._reset_counters()
        self._reported_drops = {}
        self._rgb_shape = None
        self._stop.clear()
        # The warm-up runs in the inference thread itself: CUDA libraries keep per-thread handles
        # and kernel choices, and a warm-up done in this (executor) thread left the worker's first
        # window of every length 100-180 ms slow in fp16/bf16 (measured on an H200).
        warmed: list[str | None] = []
        ready = threading.Event()
        self._worker = threading.Thread(target=self._work, args=(ready, warmed), name="inference", daemon=True)
        self._worker.start()
        ready.wait()
        if warmed[0] is not None:
            self._worker.join()
            self._worker = None
            self._release_model()
            return self._fail("activate", warmed[0])
        self._subscribe()
        self._error = ""
        self._lifecycle = "active"
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_active()
        self._lifecycle = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for publisher in self._outputs.values():
            self.destroy_publisher(publisher)
        self._outputs = {}
        self._checkpoint = None
        self._lifecycle = "unconfigured"
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return SUCCESS

    def stop(self) -> None:
        """Stop the worker and free the model (also on process exit)."""
        self._stop_active()
        self._lifecycle = "finalized"

    def _stop_active(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
            self.get_logger().info("inference stopped")
        self._release_model()

    def _release_model(self) -> None:
        if self._predictor is not None:
            self._predictor.release()  # moves the checkpoint's module back to the CPU, frees the cache
            self._predictor = None

    # ------------------------------------------------------------------ input side
    def _subscribe(self) -> None:
        def qos(modality):
            return input_qos(self._p(f"qos.{modality}.reliability"), self._p(f"qos.{modality}.history"),
                             self._p(f"qos.{modality}.depth"))

        modalities = self._sync_config.modalities
        # Callbacks take the MessageInfo too: its publication sequence numbers show frames lost
        # before the callback (retf_ros.runtime.intake).
        if "rgb" in modalities:
            if self._p("rgb.compressed"):
                self._inputs.append(self.create_subscription(
                    CompressedImage, "rgb/image_raw/compressed",
                    lambda m, info: self._on_frame("rgb", m, info, compressed_image_to_array), qos("rgb")))
            else:
                self._inputs.append(self.create_subscription(
                    Image, "rgb/image_raw",
                    lambda m, info: self._on_frame("rgb", m, info, _colour_image), qos("rgb")))
        if "depth" in modalities:
            self._inputs.append(self.create_subscription(
                Image, "depth/image_raw",
                lambda m, info: self._on_frame("depth", m, info, _depth_image), qos("depth")))
        if "skeleton" in modalities:
            self._inputs.append(self.create_subscription(
                _skeleton_message_type(self._skeleton.kind), "skeleton",
                lambda m, info: self._on_frame("skeleton", m, info, self._convert_skeleton), qos("skeleton")))

    def _convert_skeleton(self, msg):
        skeleton = self._skeleton.convert_tracked(msg)
        if self._skeleton.masked_joints(skeleton):
            self._masked_skeletons += 1
        return skeleton

    def _on_frame(self, modality: str, msg, info, convert) -> None:
        """Subscription callback: check the stamp, convert and store only (inference runs in the worker)."""
        received = time.monotonic()
        sync, gate = self._sync, self._stamp_gate
        if sync is None or gate is None:
            return
        lost = self._sequence_gaps.lost(*message_info_key(info))
        if lost:
            sync.count_lost(modality, lost, received)
        try:
            stamp_ns = stamp_nanoseconds(msg)
            self._check_stamp(gate, sync, modality, stamp_ns, received)
            array = self._check_shape(modality, convert(msg))
        except InvalidMessage as exc:
            sync.count_drop(modality, exc.reason, received)
            self._log.warning(f"{modality}/{exc.reason}", f"dropped {modality} message: {exc}")
            return
        if sync.add(modality, stamp_ns, array, frame_id(msg), received):
            self._wake.set()
        else:
            self._log.warning(f"{modality}/order", f"dropped {modality} message stamped {stamp_ns / NS:.3f} s: "
                              f"not newer than the previous {modality} frame")

    def _check_stamp(self, gate: StampGate, sync: ApproximateTimeSynchronizer, modality: str, stamp_ns: int,
                     received: float) -> None:
        """Raise InvalidMessage for an implausible stamp; reset every buffer when the gate says
        the whole stream (or the clock) jumped."""
        decision = gate.check(modality, stamp_ns, self.get_clock().now().nanoseconds, received)
        if decision.reset is not None:
            sync.reset()
            self._stream_reset.set()
            self._log.warning(f"reset/{decision.reset}", f"buffers reset ({decision.reset}): {modality} stamped "
                              f"{stamp_ns / NS:.3f} s, {decision.offset_s:+.3f} s from the node's clock")
        if decision.drop is not None:
            relation = "ahead of" if decision.drop == "stamp_in_future" else "behind"
            raise InvalidMessage(decision.drop, f"stamped {stamp_ns / NS:.3f} s, {abs(decision.offset_s):.3f} s "
                                 f"{relation} the node's clock (tolerated: stamps.max_ahead_s "
                                 f"{gate.policy.max_ahead_s} s ahead, stamps.max_behind_s {gate.policy.max_behind_s} s "
                                 f"behind); not used")

    def _check_shape(self, modality: str, array):
        """Colour on the RGB topic, depth on the depth topic, depth registered to the RGB size."""
        if modality == "rgb":
            if array.ndim != 3:
                raise InvalidMessage("encoding", "the rgb topic carries a depth encoding")
            self._rgb_shape = array.shape[:2]
        elif modality == "depth":
            if array.ndim != 2:
                raise InvalidMessage("encoding", "the depth topic carries a colour encoding")
            if self._rgb_shape is not None and array.shape != self._rgb_shape:
                raise InvalidMessage("size_mismatch", f"depth is {array.shape[1]}x{array.shape[0]}, rgb is "
                                     f"{self._rgb_shape[1]}x{self._rgb_shape[0]} (depth must be registered to rgb)")
        return array

    # ------------------------------------------------------------------ the worker
    def _work(self, ready: threading.Event, warmed: list[str | None]) -> None:
        """The inference thread: warm up (reporting the outcome through ``warmed``), then feed the
        newest synchronised set to the predictor until stopped."""
        started = time.perf_counter()
        try:
            self._predictor.warm_up()
            warmed.append(None)
        except (RetfError, RuntimeError) as exc:
            warmed.append(str(exc))
        ready.set()
        if warmed[0] is not None:
            return
        self.get_logger().info(f"inference on {self._predictor.device_name} ({self._p('precision')}), "
                               f"warm-up {1000 * (time.perf_counter() - started):.0f} ms")
        idle_s = min(0.02, max(self._sync_config.wait_s, 0.002) / 2)
        while not self._stop.is_set():
            self._wake.wait(idle_s)
            self._wake.clear()
            frames = self._sync.take(time.monotonic())
            if frames is None:
                continue
            self._wake.set()  # a newer set may already be complete: look again without waiting
            self._last_states = dict(frames.states)
            if self._stream_reset.is_set():   # the stream jumped: its old window is over
                self._stream_reset.clear()
                self._predictor.clear_cache()
                self._last_taken_stamp = None
            try:
                self._count_missed(frames.stamp)
                if self._predictor.add_frame(frames) and self._predictor.due():
                    self._publish(self._predictor.predict(), frames)
            except RetfError as exc:
                self._frame_errors["frame/invalid"] += 1
                self._log.warning("frame/invalid", f"frame set stamped {frames.stamp:.3f} s not used: {exc}")
            except Exception as exc:  # a bug must not silently stop inference: log it and go on
                self._frame_errors["frame/inference_error"] += 1
                self._log.warning("frame/error", f"inference failed on frame {frames.stamp:.3f} s: "
                                  f"{type(exc).__name__}: {exc}")

    def _count_missed(self, stamp: float) -> None:
        """Model-grid frames that passed without a frame being fed while input was flowing (a
        busy worker, frames dropped on the way); a pause longer than sync.max_age_s is the
        input stopping, not the node skipping, and is not counted."""
        previous = self._last_taken_stamp
        self._last_taken_stamp = stamp
        if previous is not None and 0 < stamp - previous <= self._sync_config.max_age_s:
            self._missed_model_frames += max(0, round((stamp - previous) * self._predictor.fps) - 1)

    def _publish(self, anticipation, frames) -> None:
        from retf_ros.runtime.anticipation import anticipation_document
        from retf_ros.ros.visualisation import anticipation_markers, debug_image

        end_to_end_ms = (self.get_clock().now().nanoseconds - anticipation.exact_stamp_ns()) / 1e6
        document = anticipation_document(anticipation, model_name=self._checkpoint.name,
                                         checkpoint_sha256=self._checkpoint.sha256, end_to_end_ms=end_to_end_ms)
        self._outputs["anticipation"].publish(String(data=json.dumps(document, allow_nan=False)))
        self._windows_run += 1
        self._inference_ms.add(anticipation.inference_ms)
        self._end_to_end_ms.add(end_to_end_ms)
        self._last_erank = anticipation.erank
        if self._outputs["markers"].get_subscription_count() > 0:
            self._outputs["markers"].publish(anticipation_markers(anticipation, frames.skeleton))
        if self._outputs["debug_image"].get_subscription_count() > 0:
            self._outputs["debug_image"].publish(debug_image(anticipation, frames.rgb))

    # ------------------------------------------------------------------ diagnostics
    def health(self) -> NodeHealth:
        health = NodeHealth(node_name=self.get_fully_qualified_name(), lifecycle_state=self._lifecycle, error=self._error,
                            checkpoint=str(self._checkpoint.path) if self._checkpoint else "")
        predictor, sync = self._predictor, self._sync
        if predictor is not None:
            health.device = predictor.device_name
        if sync is None or self._lifecycle != "active":
            return health
        now_wall, now_ros = time.monotonic(), self.get_clock().now().nanoseconds
        drops = {**sync.drops(), **self._frame_errors}
        health.drops = drops
        health.new_drops = {k: n - self._reported_drops.get(k, 0) for k, n in drops.items()
                            if n > self._reported_drops.get(k, 0)}
        if health.new_drops:
            health.last_drop = sorted(health.new_drops.items(), key=lambda kv: -kv[1])[0][0]
        self._reported_drops = drops
        gate = self._stamp_gate
        for modality, stats in sync.stats(now_wall).items():
            fresh = stats.last_received is not None and now_wall - stats.last_received <= self._sync_config.max_age_s
            state = self._last_states.get(modality, "ok") if fresh else "missing"
            age = None if stats.last_stamp_ns is None else (now_ros - stats.last_stamp_ns + gate.offset_ns) / NS
            health.modalities[modality] = ModalityHealth(
                state=state if stats.frames else "waiting", rate_hz=stats.rate_hz, stamp_age_s=age,
                frames=stats.frames, received_hz=stats.received_hz, taken_hz=stats.taken_hz, lost_hz=stats.lost_hz,
                lost=stats.lost, max_age_s=gate.max_age_s(modality, now_wall),
                bad_stamps=sum(health.new_drops.get(f"{modality}/{r}", 0) for r in STAMP_DROP_REASONS),
                reference=modality == self._sync_config.reference)
        health.age_bound_s = self._sync_config.max_age_s
        health.masked_skeletons = self._masked_skeletons
        health.resets = sync.resets
        health.reset_reasons = dict(gate.resets)
        health.inference_ms = self._inference_ms.summary()
        health.end_to_end_ms = self._end_to_end_ms.summary()
        health.windows_run = self._windows_run
        health.skipped_windows = self._missed_model_frames // max(1, predictor.stride) if predictor else 0
        health.erank = self._last_erank
        return health

    def _publish_diagnostics(self) -> None:
        self._log.flush()
        array = DiagnosticArray(status=diagnostic_statuses(self.health()))
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def _colour_image(msg):
    return image_to_array(msg, expect="colour")


def _depth_image(msg):
    return image_to_array(msg, expect="depth")


def _marker_type():
    from visualization_msgs.msg import MarkerArray

    return MarkerArray


def _skeleton_message_type(kind: str):
    if kind == "marker_array":
        return _marker_type()
    from geometry_msgs.msg import PoseArray

    return PoseArray


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``anticipation_node`` (``--ros-args --params-file FILE -p name:=value``).

    Exit status 0 after SIGINT/SIGTERM, 2 when a parameter value is refused at start-up. A
    signal stops inference first and only then shuts rclpy down (retf_ros.ros.shutdown), so
    the worker never publishes through a context that is gone.
    """
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        with signal_event() as stop:
            try:
                node = AnticipationNode()
            except (rclpy.exceptions.InvalidParameterValueException, rclpy.exceptions.InvalidParameterTypeException,
                    rclpy.exceptions.ParameterException) as exc:
                print(f"anticipation_node: error: {exc}", file=sys.stderr)
                return 2
            if node.get_parameter("autostart").value and node.trigger_configure() == SUCCESS:
                node.trigger_activate()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while not stop.is_set():
                executor.spin_once(timeout_sec=SIGNAL_POLL_S)
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
