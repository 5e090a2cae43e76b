"""What anticipation_node and pose_node share: a lifecycle node whose parameters come from one
table (retf_ros.ros.params), whose image callbacks only convert and store frames in an
approximate-time synchroniser, whose worker thread takes the newest set, and which publishes
/diagnostics on a timer and logs bad input at a limited rate. Also the process entry point.

Shared input rules: a frame whose stamp is implausible against the node's clock is dropped with
its own reason and never used; buffers are reset only when the whole stream (or the clock)
jumped (retf_ros.runtime.stamps, parameters ``stamps.*``); gaps in the publishers' sequence
numbers count the frames lost before the callback (retf_ros.runtime.intake). A refused
parameter is named in the refusal (an unknown name, a wrong type, a device this machine lacks).

A subclass calls :meth:`SensorLifecycleNode._start_input` on activate, starts ``self._worker``
and calls :meth:`SensorLifecycleNode._subscribe_images`; it implements :meth:`diagnostic_statuses`
and may refine :meth:`_check_frame` (per-modality checks of a converted frame) and
:meth:`_stop_active`. Its worker may look at ``self._stream_reset`` (set when the buffers were
reset) to drop what it kept from before.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image

from retf_ros.runtime.intake import SequenceGaps, message_info_key
from retf_ros.runtime.messages import (InvalidMessage, compressed_image_to_array, frame_id, image_to_array,
                                       stamp_nanoseconds)
from retf_ros.runtime.settings import stamp_policy
from retf_ros.runtime.stamps import StampGate
from retf_ros.runtime.sync import NS, ApproximateTimeSynchronizer, SyncConfig
from retf_ros.ros.params import ParamSpec, declare_parameters, type_problem, unknown_problem
from retf_ros.ros.qos import input_qos, output_qos
from retf_ros.ros.shutdown import SIGNAL_POLL_S, signal_event
from retf_ros.ros.throttled_log import ThrottledLog
from retf_ros.ros.topics import INPUT_TOPICS, compressed_topic

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class SensorLifecycleNode(LifecycleNode):
    def __init__(self, node_name: str, parameters: tuple[ParamSpec, ...], params_file: str, **kwargs):
        """``parameters``: the node's table (retf_ros.ros.params); ``params_file``: the file that
        documents it (named when an unknown parameter is refused)."""
        super().__init__(node_name, **kwargs)
        self._specs = {spec.name: spec for spec in parameters}
        self._params_file = params_file
        declare_parameters(self, parameters)
        self._error = ""
        self._sync: ApproximateTimeSynchronizer | None = None
        self._sync_config: SyncConfig | None = None
        self._stamp_gate: StampGate | None = None
        self._sequence_gaps = SequenceGaps()
        self._stream_reset = threading.Event()   # set by a callback when the buffers were reset
        self._inputs = []
        self._outputs: dict = {}
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reported_drops: dict[str, int] = {}
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", output_qos())
        self._diagnostics_timer = None
        self._apply_reporting_parameters()

    def _p(self, name: str):
        return self.get_parameter(name).value

    def parameter_values(self) -> dict:
        """Every declared parameter's current value by name (what retf_ros.runtime.settings reads)."""
        return {name: self._p(name) for name in self._specs}

    def lifecycle_state(self) -> str:
        """The label of rclpy's lifecycle state: "unconfigured", "inactive", "active" or
        "finalized" (a transition's label while its callback runs)."""
        # rclpy offers no public getter; its own trigger_shutdown reads the state machine so.
        return self._state_machine.current_state[1]

    def _apply_reporting_parameters(self) -> None:
        """(Re)start the diagnostics timer and the log throttle from their parameters."""
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
        self._diagnostics_timer = self.create_timer(1.0 / self._p("diagnostics.rate_hz"), self._publish_diagnostics)
        logger = self.get_logger()
        self._log = ThrottledLog(lambda text: logger.warning(text), self._p("diagnostics.log_throttle_s"))

    def _refuse(self, problem: str) -> SetParametersResult:
        self.get_logger().error(f"refused: {problem}")
        return SetParametersResult(successful=False, reason=problem)

    def set_parameters_atomically(self, parameter_list) -> SetParametersResult:
        """rclpy's checks, with refusals that name the parameter: an unknown name, a wrong type.
        (The parameter services call this for each request.)"""
        unknown = [p.name for p in parameter_list if not self.has_parameter(p.name)]
        if unknown:
            return self._refuse(unknown_problem(unknown, self.get_name(), self._params_file))
        for parameter in parameter_list:
            problem = type_problem(parameter.name, parameter.value, self._specs)
            if problem:
                return self._refuse(problem)
        return super().set_parameters_atomically(parameter_list)

    def _fail(self, transition: str, message: str) -> TransitionCallbackReturn:
        self._error = f"{transition} failed: {message}"
        self.get_logger().error(self._error)
        return FAILURE

    # ------------------------------------------------------------------ lifecycle
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_active()
        return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return SUCCESS

    def stop(self) -> None:
        """Stop the inputs and the worker (also on process exit)."""
        self._stop_active()

    def _stop_active(self) -> None:
        """Unsubscribe, then stop and join the worker."""
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join()
            self.get_logger().info(f"{self._worker.name} stopped")   # the worker thread is named for its work
            self._worker = None

    def _destroy_outputs(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_publisher(publisher)
        self._outputs = {}

    # ------------------------------------------------------------------ input side
    def _input_qos(self, topic: str):
        """The subscription profile from the ``qos.<topic>.*`` parameters."""
        return input_qos(self._p(f"qos.{topic}.reliability"), self._p(f"qos.{topic}.history"),
                         self._p(f"qos.{topic}.depth"))

    def _start_input(self, config: SyncConfig) -> None:
        """A fresh synchroniser, stamp gate and loss count for an activation (what publishers
        sent while unsubscribed was not lost). The synchroniser never resets itself on one
        frame stamped far back: the gate decides resets from the stream as a whole."""
        self._sync_config = dataclasses.replace(config, reset_on_time_jump=False)
        self._sync = ApproximateTimeSynchronizer(self._sync_config)
        self._stamp_gate = StampGate(stamp_policy(self.parameter_values(), config))
        self._sequence_gaps = SequenceGaps()
        self._stream_reset.clear()

    def _subscribe_images(self, rgb: bool = True, depth: bool = True) -> None:
        """``rgb/image_raw`` (or its ``/compressed`` topic with ``rgb.compressed``) and
        ``depth/image_raw`` into the synchroniser. Callbacks take the MessageInfo too: its
        publication sequence numbers show frames lost before the callback."""
        if rgb and self._p("rgb.compressed"):
            self._inputs.append(self.create_subscription(
                CompressedImage, compressed_topic(INPUT_TOPICS["rgb"]),
                lambda m, info: self._on_frame("rgb", m, info, compressed_image_to_array), self._input_qos("rgb")))
        elif rgb:
            self._inputs.append(self.create_subscription(
                Image, INPUT_TOPICS["rgb"], lambda m, info: self._on_frame("rgb", m, info, _colour_image),
                self._input_qos("rgb")))
        if depth:
            self._inputs.append(self.create_subscription(
                Image, INPUT_TOPICS["depth"], lambda m, info: self._on_frame("depth", m, info, _depth_image),
                self._input_qos("depth")))

    def _on_frame(self, modality: str, msg, info, convert) -> None:
        """Subscription callback: check the stamp, convert and store only (the work runs in the worker)."""
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
            array = self._check_frame(modality, convert(msg))
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

    def _check_frame(self, modality: str, array):
        """Colour on the RGB topic, depth on the depth topic (InvalidMessage otherwise)."""
        if modality == "rgb" and array.ndim != 3:
            raise InvalidMessage("encoding", "the rgb topic carries a depth encoding")
        if modality == "depth" and array.ndim != 2:
            raise InvalidMessage("encoding", "the depth topic carries a colour encoding")
        return array

    # ------------------------------------------------------------------ diagnostics
    def diagnostic_statuses(self) -> list:
        raise NotImplementedError

    def _publish_diagnostics(self) -> None:
        self._log.flush()
        array = DiagnosticArray(status=self.diagnostic_statuses())
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def _colour_image(msg):
    return image_to_array(msg, expect="colour")


def _depth_image(msg):
    return image_to_array(msg, expect="depth")


def run_lifecycle_node(make_node, program: str, argv: list[str] | None) -> int:
    """Run a lifecycle node built by ``make_node()`` until SIGINT/SIGTERM (autostart: configure +
    activate first). Exit status 0 after the signal, 2 when a parameter value is refused at start-up.
    A signal stops the node's worker first and only then shuts rclpy down (retf_ros.ros.shutdown),
    so the worker never publishes through a context that is gone."""
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        with signal_event() as stop:
            try:
                node = make_node()
            except (rclpy.exceptions.InvalidParameterValueException, rclpy.exceptions.InvalidParameterTypeException,
                    rclpy.exceptions.ParameterException) as exc:
                print(f"{program}: error: {exc}", file=sys.stderr)
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
