"""What anticipation_node and pose_node share: a lifecycle node whose parameters come from one
table (retf_ros.ros.params), whose image callbacks only convert and store frames in an
approximate-time synchroniser, whose worker thread takes the newest set, and which publishes
/diagnostics on a timer and logs bad input at a limited rate. Also the process entry point.

A subclass sets ``self._sync`` on activate, starts ``self._worker`` and calls
:meth:`SensorLifecycleNode._subscribe_images`; it implements :meth:`diagnostic_statuses` and may
refine :meth:`_check_frame` (per-modality checks of a converted frame) and :meth:`_stop_active`.
"""
from __future__ import annotations

import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image

from retf_ros.runtime.messages import (InvalidMessage, compressed_image_to_array, frame_id, image_to_array,
                                       stamp_nanoseconds)
from retf_ros.runtime.sync import NS, ApproximateTimeSynchronizer
from retf_ros.ros.params import ParamSpec, declare_parameters
from retf_ros.ros.qos import input_qos, output_qos
from retf_ros.ros.shutdown import until_signalled
from retf_ros.ros.topics import INPUT_TOPICS, compressed_topic

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class ThrottledLog:
    """At most one line per key per period, with the count of lines held back meanwhile."""

    def __init__(self, logger, period_s: float):
        self._logger, self._period = logger, period_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self._period:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        self._logger.warning(text + (f" ({held} more since the last report)" if held else ""))


class SensorLifecycleNode(LifecycleNode):
    def __init__(self, node_name: str, parameters: tuple[ParamSpec, ...], **kwargs):
        super().__init__(node_name, **kwargs)
        declare_parameters(self, parameters)
        self._lifecycle = "unconfigured"
        self._error = ""
        self._sync: ApproximateTimeSynchronizer | None = None
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

    def _apply_reporting_parameters(self) -> None:
        """(Re)start the diagnostics timer and the log throttle from their parameters."""
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
        self._diagnostics_timer = self.create_timer(1.0 / self._p("diagnostics.rate_hz"), self._publish_diagnostics)
        self._log = ThrottledLog(self.get_logger(), self._p("diagnostics.log_throttle_s"))

    def _fail(self, transition: str, message: str) -> TransitionCallbackReturn:
        self._error = f"{transition} failed: {message}"
        self.get_logger().error(self._error)
        return FAILURE

    # ------------------------------------------------------------------ lifecycle
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_active()
        self._lifecycle = "inactive"
        return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return SUCCESS

    def stop(self) -> None:
        """Stop the inputs and the worker (also on process exit)."""
        self._stop_active()
        self._lifecycle = "finalized"

    def _stop_active(self) -> None:
        """Unsubscribe, then stop and join the worker."""
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join()
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

    def _subscribe_images(self, rgb: bool = True, depth: bool = True) -> None:
        """``rgb/image_raw`` (or its ``/compressed`` topic with ``rgb.compressed``) and
        ``depth/image_raw`` into the synchroniser."""
        if rgb and self._p("rgb.compressed"):
            self._inputs.append(self.create_subscription(
                CompressedImage, compressed_topic(INPUT_TOPICS["rgb"]),
                lambda m: self._on_frame("rgb", m, compressed_image_to_array), self._input_qos("rgb")))
        elif rgb:
            self._inputs.append(self.create_subscription(
                Image, INPUT_TOPICS["rgb"], lambda m: self._on_frame("rgb", m, image_to_array), self._input_qos("rgb")))
        if depth:
            self._inputs.append(self.create_subscription(
                Image, INPUT_TOPICS["depth"], lambda m: self._on_frame("depth", m, image_to_array),
                self._input_qos("depth")))

    def _on_frame(self, modality: str, msg, convert) -> None:
        """Subscription callback: convert and store only (the work runs in the worker)."""
        received = time.monotonic()
        sync = self._sync
        if sync is None:
            return
        try:
            array = self._check_frame(modality, convert(msg))
            stamp_ns = stamp_nanoseconds(msg)
        except InvalidMessage as exc:
            sync.count_drop(modality, exc.reason, received)
            self._log.warning(f"{modality}/{exc.reason}", f"dropped {modality} message: {exc}")
            return
        if sync.add(modality, stamp_ns, array, frame_id(msg), received):
            self._wake.set()
        else:
            self._log.warning(f"{modality}/order", f"dropped {modality} message stamped {stamp_ns / NS:.3f} s: "
                              f"not newer than the previous {modality} frame")

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
        array = DiagnosticArray(status=self.diagnostic_statuses())
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


def run_lifecycle_node(make_node, program: str, argv: list[str] | None) -> int:
    """Run a lifecycle node built by ``make_node()`` until SIGINT/SIGTERM (autostart: configure +
    activate first). Exit status 0 after the signal, 2 when a parameter value is refused at start-up."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = None
    try:
        with until_signalled():
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
            executor.spin()
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
