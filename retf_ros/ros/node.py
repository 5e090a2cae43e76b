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
implausible against the node's clock is one of them (retf_ros.runtime.stamps, in the shared
base retf_ros.ros.lifecycle): it is never used, and buffers are reset only when the whole
stream (or the clock) jumped; the worker then starts a new window. Non-finite skeleton joints
are masked (missing) and counted.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from importlib import resources
from pathlib import Path

from geometry_msgs.msg import PoseArray
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from retf_ros.errors import RetfError
from retf_ros.ros.diagnostics import LatencyWindow, NodeHealth, add_sync_health, diagnostic_statuses
from retf_ros.ros.input_check import input_problems
from retf_ros.ros.lifecycle import SUCCESS, SensorLifecycleNode, run_lifecycle_node
from retf_ros.ros.params import PARAMETERS
from retf_ros.ros.qos import output_qos
from retf_ros.ros.topics import INPUT_TOPICS
from retf_ros.ros.visualisation import anticipation_markers, debug_image
from retf_ros.runtime.anticipation import anticipation_document
from retf_ros.runtime.messages import InvalidMessage, SkeletonReader
from retf_ros.runtime.settings import RuntimeSettings, runtime_settings

NODE_NAME = "anticipation_node"
PARAMS_FILE = "config/anticipation.yaml"
DEMO_CHECKPOINT = "checkpoints/demo.safetensors"


def demo_checkpoint_path() -> Path:
    """The demo checkpoint shipped inside the package (default of the ``checkpoint`` parameter)."""
    return Path(str(resources.files("retf_ros").joinpath(DEMO_CHECKPOINT)))


class AnticipationNode(SensorLifecycleNode):
    def __init__(self, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, PARAMETERS, PARAMS_FILE, **kwargs)
        self._checkpoint = None
        self._predictor = None
        self._skeleton: SkeletonReader | None = None
        self._rgb_shape: tuple[int, int] | None = None
        self._last_states: dict[str, str] = {}
        self._reset_counters()

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
        # torch and the model load on configure: the node answers lifecycle requests at once
        import torch

        from retf_ros.checkpoint import load_checkpoint
        from retf_ros.device import select_device, select_precision

        self._apply_reporting_parameters()
        path = self._p("checkpoint") or str(demo_checkpoint_path())
        try:
            torch.set_num_threads(self._p("torch_threads"))
            select_precision(self._p("precision"), select_device(self._p("device")))
            self._checkpoint = load_checkpoint(path, device="cpu")
            settings = self.runtime_settings()
            # Building a CPU predictor checks window / stride / fps / horizon against the metadata.
            checked = self._build_predictor(settings, device="cpu", precision="fp32")
            self._sync_config = settings.sync_for(checked.modalities)
            self._skeleton = SkeletonReader(settings.skeleton_type, settings.skeleton_layout or checked.skeleton_layout,
                                            checked.skeleton_layout, settings.skeleton_body_id)
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
        self.get_logger().info(f"configured: checkpoint {self._checkpoint.path} (sha256 "
                               f"{self._checkpoint.sha256[:12]}), modalities {', '.join(self._sync_config.modalities)}")
        return SUCCESS

    def runtime_settings(self) -> RuntimeSettings:
        """The runtime settings of the declared parameters for the loaded checkpoint (the one
        translation, retf_ros.runtime.settings, that offline bag evaluation uses too)."""
        return runtime_settings(self.parameter_values(), self._checkpoint.metadata)

    def _build_predictor(self, settings: RuntimeSettings, device: str, precision: str):
        # with the predictor (torch), on configure
        from retf_ros.runtime.predictor import StreamingPredictor

        return StreamingPredictor(self._checkpoint, device=device, precision=precision,
                                  **settings.predictor_options())

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._predictor = self._build_predictor(self.runtime_settings(), self._p("device"), self._p("precision"))
        except (RetfError, RuntimeError) as exc:
            self._release_model()
            return self._fail("activate", str(exc))
        self._start_input(self._sync_config)
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
        return super().on_activate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_outputs()
        self._checkpoint = None
        return SUCCESS

    def _stop_active(self) -> None:
        """Unsubscribe, stop the worker and free the model (also on process exit)."""
        super()._stop_active()
        self._release_model()

    def _release_model(self) -> None:
        if self._predictor is not None:
            self._predictor.release()  # moves the checkpoint's module back to the CPU, frees the cache
            self._predictor = None

    # ------------------------------------------------------------------ input side
    def _subscribe(self) -> None:
        modalities = self._sync_config.modalities
        self._subscribe_images(rgb="rgb" in modalities, depth="depth" in modalities)
        if "skeleton" in modalities:
            self._inputs.append(self.create_subscription(
                _skeleton_message_type(self._skeleton.kind), INPUT_TOPICS["skeleton"],
                lambda m, info: self._on_frame("skeleton", m, info, self._convert_skeleton),
                self._input_qos("skeleton")))

    def _convert_skeleton(self, msg):
        skeleton = self._skeleton.convert_tracked(msg)
        if self._skeleton.masked_joints(skeleton):
            self._masked_skeletons += 1
        return skeleton

    def _check_frame(self, modality: str, array):
        """Colour on the RGB topic, depth on the depth topic, depth registered to the RGB size."""
        array = super()._check_frame(modality, array)
        if modality == "rgb":
            self._rgb_shape = array.shape[:2]
        elif modality == "depth":
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
        health = NodeHealth(node_name=self.get_fully_qualified_name(), lifecycle_state=self.lifecycle_state(),
                            error=self._error, checkpoint=str(self._checkpoint.path) if self._checkpoint else "")
        predictor, sync = self._predictor, self._sync
        if predictor is not None:
            health.device = predictor.device_name
        if sync is None or health.lifecycle_state != "active":
            return health
        self._reported_drops = add_sync_health(health, sync, self._stamp_gate, self._frame_errors,
                                               self._reported_drops, self._sync_config.max_age_s,
                                               self.get_clock().now().nanoseconds, self._last_states)
        health.masked_skeletons = self._masked_skeletons
        health.inference_ms = self._inference_ms.summary()
        health.end_to_end_ms = self._end_to_end_ms.summary()
        health.windows_run = self._windows_run
        health.skipped_windows = self._missed_model_frames // max(1, predictor.stride) if predictor else 0
        health.erank = self._last_erank
        if any(m.state in ("waiting", "missing") for m in health.modalities.values()):
            health.input_problems = input_problems(self, self._inputs)
        return health

    def diagnostic_statuses(self) -> list:
        return diagnostic_statuses(self.health())


def _marker_type():
    return MarkerArray


def _skeleton_message_type(kind: str):
    if kind == "marker_array":
        return _marker_type()

    return PoseArray


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``anticipation_node`` (``--ros-args --params-file FILE -p name:=value``).

    Exit status 0 after SIGINT/SIGTERM, 2 when a parameter value is refused at start-up. A
    signal stops inference first and only then shuts rclpy down (retf_ros.ros.lifecycle).
    """
    return run_lifecycle_node(AnticipationNode, NODE_NAME, argv)


if __name__ == "__main__":
    raise SystemExit(main())
