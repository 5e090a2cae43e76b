"""A probe process for tests and benchmarks: records what the anticipation node publishes and
drives its lifecycle and parameters.

Run: ``python -m retf_ros.harness.probe --out events.jsonl [--node anticipation_node] [--visuals]
[--skeleton TOPIC]`` (in an environment from retf_ros.harness.loopback). Every received message
becomes one JSON line in ``--out`` with ``kind`` ("anticipation", "diagnostics", "markers",
"debug_image", "skeleton" (a PoseArray: stamp_ns, frame_id, joints, NaN for missing), "reply")
and ``received_ns`` (wall clock, the clock ROS stamps use without sim time). Commands on stdin,
one per line, each answered by a "reply" event:
``transition configure|activate|deactivate|cleanup|shutdown``, ``state``,
``get NAME``, ``set NAME VALUE`` (VALUE parsed as YAML), ``quit``.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from retf_ros.ros.qos import output_qos
from retf_ros.ros.shutdown import spin_until_stopped

SERVICE_TIMEOUT_S = 30.0


class Probe:
    def __init__(self, node, target: str, out: Path, visuals: bool, skeleton_topic: str | None = None):
        self.node = node
        self._out = out.open("a")
        self._lock = threading.Lock()
        base = f"/{target.strip('/')}"
        node.create_subscription(String, f"{base}/anticipation", self._on_anticipation, output_qos())
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, output_qos())
        if visuals:
            node.create_subscription(MarkerArray, f"{base}/markers", self._on_markers, output_qos())
            node.create_subscription(Image, f"{base}/debug_image", self._on_debug_image, output_qos(2))
        if skeleton_topic:
            node.create_subscription(PoseArray, skeleton_topic, self._on_skeleton, output_qos())
        self._change_state = node.create_client(ChangeState, f"{base}/change_state")
        self._get_state = node.create_client(GetState, f"{base}/get_state")
        self._set_parameters = node.create_client(SetParameters, f"{base}/set_parameters")
        self._get_parameters = node.create_client(GetParameters, f"{base}/get_parameters")

    def record(self, kind: str, **fields) -> None:
        line = json.dumps({"kind": kind, "received_ns": time.time_ns(), **fields})
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def _on_anticipation(self, msg) -> None:
        try:
            self.record("anticipation", doc=json.loads(msg.data))
        except json.JSONDecodeError as exc:
            self.record("anticipation", invalid_json=str(exc), raw=msg.data[:2000])

    def _on_diagnostics(self, msg) -> None:
        status = [{"name": s.name, "level": s.level[0] if isinstance(s.level, bytes) else int(s.level),
                   "message": s.message, "hardware_id": s.hardware_id,
                   "values": {kv.key: kv.value for kv in s.values}} for s in msg.status]
        self.record("diagnostics", status=status)

    def _on_markers(self, msg) -> None:
        self.record("markers", texts=[m.text for m in msg.markers],
                    stamps=[m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in msg.markers])

    def _on_debug_image(self, msg) -> None:
        self.record("debug_image", width=msg.width, height=msg.height, encoding=msg.encoding,
                    stamp_ns=msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)

    def _on_skeleton(self, msg) -> None:
        self.record("skeleton", stamp_ns=msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
                    frame_id=msg.header.frame_id,
                    joints=[[p.position.x, p.position.y, p.position.z] for p in msg.poses])

    def command(self, line: str) -> None:
        words = line.split(maxsplit=2)
        if not words:
            return
        try:
            if words[0] == "transition" and len(words) == 2:
                self.record("reply", command=line.strip(), success=self._transition(words[1]))
            elif words[0] == "state":
                self.record("reply", command="state", state=self._state())
            elif words[0] == "get" and len(words) == 2:
                self.record("reply", command=line.strip(), success=True, value=self._get(words[1]))
            elif words[0] == "set" and len(words) == 3:
                success, reason = self._set(words[1], words[2])
                self.record("reply", command=line.strip(), success=success, reason=reason)
            else:
                self.record("reply", command=line.strip(), success=False, reason="unknown command")
        except TimeoutError as exc:
            self.record("reply", command=line.strip(), success=False, reason=str(exc))

    def _call(self, client, request):
        if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
            raise TimeoutError(f"service {client.srv_name} not available")
        response = client.call(request, timeout_sec=SERVICE_TIMEOUT_S)
        if response is None:
            raise TimeoutError(f"service {client.srv_name} did not answer")
        return response

    def _transition(self, label: str) -> bool:
        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
               "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}
        request = ChangeState.Request()
        request.transition.id = ids[label]
        return bool(self._call(self._change_state, request).success)

    def _state(self) -> str:
        return self._call(self._get_state, GetState.Request()).current_state.label

    def _get(self, name: str):
        values = self._call(self._get_parameters, GetParameters.Request(names=[name])).values
        return parameter_value_to_python(values[0]) if values else None

    def _set(self, name: str, text: str) -> tuple[bool, str]:
        request = SetParameters.Request(parameters=[Parameter(name, value=yaml.safe_load(text)).to_parameter_msg()])
        result = self._call(self._set_parameters, request).results[0]
        return bool(result.successful), result.reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--node", default="anticipation_node", help="name (with namespace) of the node to probe")
    parser.add_argument("--visuals", action="store_true", help="also subscribe to markers and debug_image")
    parser.add_argument("--skeleton", default=None, help="also record the PoseArrays on this topic")
    argv = sys.argv[1:] if argv is None else argv
    options = parser.parse_args(rclpy.utilities.remove_ros_args(["prog", *argv])[1:])
    rclpy.init(args=["prog", *argv])
    node = rclpy.create_node("retf_probe")
    probe = Probe(node, options.node, options.out, options.visuals, options.skeleton)
    stop = threading.Event()

    def read_commands():
        for line in sys.stdin:
            if line.strip() == "quit":
                break
            probe.command(line)
        stop.set()

    threading.Thread(target=read_commands, daemon=True).start()
    probe.record("ready")
    try:
        spin_until_stopped(node, stop)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
