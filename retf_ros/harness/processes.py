"""Starting and stopping the node, the synthetic camera and the probe as real processes: the one
place tests, benchmarks and demos orchestrate ROS processes.

Every process gets the environment the caller passes, which must come from
:func:`retf_ros.harness.loopback.loopback_environment` (DDS on loopback only). Output goes to a log
file per process; commands go to its stdin.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from retf_ros.harness.loopback import shm_files_in_use

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class RosProcess:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def send(self, line: str) -> None:
        """Write one command line to the process's stdin."""
        self.popen.stdin.write(line.rstrip("\n") + "\n")
        self.popen.stdin.flush()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit status; SIGKILL (status returned negative) after ``timeout``."""
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except BrokenPipeError:
                pass
        return self.popen.returncode


def start(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> RosProcess:
    """Start ``python -m``-style ``argv`` with ``env``; stdout+stderr to ``log_dir/name.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log:
        popen = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
    return RosProcess(name, popen, log_path)


NODE_MODULE = "retf_ros.ros.node"
POSE_NODE_MODULE = "retf_ros.ros.pose_node"


def node_argv(params_file: Path | None = None, overrides: dict | None = None, node_name: str | None = None,
              remaps: dict[str, str] | None = None, namespace: str | None = None,
              command: list[str] | None = None) -> list[str]:
    """``anticipation_node`` with a params file, ``-p`` overrides and ``-r`` remappings.

    ``command`` starts the node (default: ``python -m retf_ros.ros.node`` with this interpreter;
    e.g. ``python -m retf_ros.ros.pose_node`` or an installed ``lib/retf_ros/anticipation_node``)."""
    argv = [*(command or [sys.executable, "-m", NODE_MODULE]), "--ros-args"]
    if params_file is not None:
        argv += ["--params-file", str(params_file)]
    for key, value in (overrides or {}).items():
        argv += ["-p", f"{key}:={_ros_arg_value(value)}"]
    if node_name:
        argv += ["-r", f"__node:={node_name}"]
    if namespace:
        argv += ["-r", f"__ns:={namespace}"]
    for source, target in (remaps or {}).items():
        argv += ["-r", f"{source}:={target}"]
    return argv


def _ros_arg_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def publisher_argv(*options: str) -> list[str]:
    return [sys.executable, "-m", "retf_ros.harness.synthetic_publisher", *options]


@dataclass
class ProbeProcess:
    """A running probe (retf_ros.harness.probe) and the events it recorded."""

    process: RosProcess
    events_path: Path
    _offset: int = 0
    _events: list[dict] = field(default_factory=list)

    def events(self, kind: str | None = None) -> list[dict]:
        """All events so far (reads what the probe appended since the last call)."""
        if self.events_path.exists():
            with self.events_path.open() as fh:
                fh.seek(self._offset)
                chunk = fh.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            self._offset += len(complete.encode())
            self._events.extend(json.loads(line) for line in complete.splitlines() if line)
        return [e for e in self._events if kind is None or e["kind"] == kind]

    def command(self, line: str, timeout: float = 60.0) -> dict:
        """Send a command and wait for its reply event."""
        before = len(self.events("reply"))
        self.process.send(line)
        return wait_for(lambda: (self.events("reply")[before:] or [None])[0], timeout, f"reply to {line!r}")

    def stop(self) -> int:
        return self.process.stop()


def start_probe(env: dict[str, str], log_dir: Path, node_name: str = "anticipation_node",
                visuals: bool = False, skeleton_topic: str | None = None) -> ProbeProcess:
    events = log_dir / "probe_events.jsonl"
    argv = [sys.executable, "-m", "retf_ros.harness.probe", "--out", str(events), "--node", node_name]
    if visuals:
        argv.append("--visuals")
    if skeleton_topic:
        argv += ["--skeleton", skeleton_topic]
    probe = ProbeProcess(start("probe", argv, env, log_dir), events)
    wait_for(lambda: probe.events("ready"), 30, "the probe to start")
    return probe


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for pid {pid}")


def environment_for(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus this checkout on PYTHONPATH (children import the same retf_ros)."""
    out = dict(env)
    root = str(Path(__file__).resolve().parents[2])
    out["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return out


@dataclass
class AnticipationSession:
    """A node, a synthetic camera and a probe in one namespace of their own (so concurrent runs
    on the same DDS domain never see each other's topics); with ``pose``, a pose_node between
    the camera and the node whose PoseArrays the probe records."""

    namespace: str
    node: RosProcess
    camera: RosProcess
    probe: ProbeProcess
    stamps_path: Path
    log_dir: Path
    pose: RosProcess | None = None

    @property
    def node_name(self) -> str:
        return f"{self.namespace}/anticipation_node"

    def published_stamps(self) -> set[int]:
        text = self.stamps_path.read_text() if self.stamps_path.exists() else ""
        return {int(line) for line in text.splitlines() if line.strip()}

    def anticipations(self) -> list[dict]:
        """Anticipation events so far: {"received_ns", "doc"} (plus "invalid_json" if unparsable)."""
        return self.probe.events("anticipation")

    def skeletons(self) -> list[dict]:
        """PoseArray events from pose_node so far: {"received_ns", "stamp_ns", "frame_id", "joints"}."""
        return self.probe.events("skeleton")

    def wait_for_skeleton(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        """Wait for a PoseArray event arriving from now on that satisfies ``predicate``."""
        seen = len(self.skeletons())

        def match():
            self.check_running()
            return next((e for e in self.skeletons()[seen:] if predicate(e)), None)

        return wait_for(match, timeout, what)

    def diagnostics(self, node: str = "anticipation_node") -> list[dict[str, dict]]:
        """One dict per /diagnostics message of ``node`` (anticipation_node or pose_node) in this
        session's namespace: status part ("inputs", ...) -> status."""
        prefix = f"{self.namespace}/{node}: "
        out = []
        for event in self.probe.events("diagnostics"):
            mine = {s["name"][len(prefix):]: s for s in event["status"] if s["name"].startswith(prefix)}
            if mine:
                out.append(mine)
        return out

    def wait_for_anticipations(self, count: int, timeout: float = 60.0) -> list[dict]:
        """Wait until ``count`` more anticipations than now arrived; returns the new ones."""
        before = len(self.anticipations())
        self.check_running()
        try:
            wait_for(lambda: self.check_running() and len(self.anticipations()) >= before + count, timeout,
                     f"{count} anticipations from {self.node_name}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {len(self.published_stamps())} frames sent; node log:\n"
                               f"{self.node.log()[-3000:]}") from None
        return self.anticipations()[before:]

    def wait_for_anticipation(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        """Wait for an anticipation document arriving from now on that satisfies ``predicate``."""
        seen = len(self.anticipations())

        def match():
            self.check_running()
            return next((e["doc"] for e in self.anticipations()[seen:] if "doc" in e and predicate(e["doc"])), None)

        return wait_for(match, timeout, what)

    def wait_for_diagnostics(self, predicate: Callable[[dict[str, dict]], bool], timeout: float, what: str,
                             node: str = "anticipation_node") -> dict:
        """Wait for a diagnostics message of ``node`` arriving from now on that satisfies ``predicate``."""
        seen = len(self.diagnostics(node))

        def match():
            self.check_running()
            return next((d for d in self.diagnostics(node)[seen:] if predicate(d)), None)

        return wait_for(match, timeout, what)

    def check_running(self) -> bool:
        for process in (self.node, self.camera, self.probe.process, *([self.pose] if self.pose else [])):
            if not process.alive():
                raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()[-3000:]}")
        return True

    def stop(self, sig: int = signal.SIGINT) -> dict[str, int]:
        """Stop the node with ``sig``, then the camera and the probe; their exit statuses."""
        codes = {"node": self.node.stop(sig)}
        if self.pose is not None:
            codes["pose"] = self.pose.stop(sig)
        codes["camera"] = self.camera.stop()
        codes["probe"] = self.probe.stop()
        return codes


def start_session(env: dict[str, str], log_dir: Path, *, namespace: str, checkpoint: str | Path | None = None,
                  params_file: Path | None = None, overrides: dict | None = None,
                  camera_options: tuple[str, ...] = (), visuals: bool = False,
                  pose_overrides: dict | None = None) -> AnticipationSession:
    """Start camera, node and probe in ``namespace`` (e.g. "/t1234") with the given params.

    ``pose_overrides`` (a dict, possibly empty): also start pose_node with config/pose.yaml and
    these ``-p`` overrides; it publishes ``skeleton`` in the namespace, which the node reads
    (give the node ``skeleton.layout: mediapipe_33``), and the probe records it."""
    ns_args = ["--ros-args", "-r", f"__ns:={namespace}"]
    stamps = log_dir / "stamps.txt"
    overrides = dict(overrides or {})
    if checkpoint is not None:
        overrides["checkpoint"] = str(checkpoint)
    node_cmd = node_argv(params_file, overrides, namespace=namespace)
    camera = start("camera", publisher_argv(*camera_options, "--stamps-file", str(stamps), *ns_args), env, log_dir)
    node = start("node", node_cmd, env, log_dir)
    pose = None
    if pose_overrides is not None:
        pose_params = Path(__file__).resolve().parents[2] / "config" / "pose.yaml"
        pose_cmd = node_argv(pose_params if pose_params.exists() else None, pose_overrides, namespace=namespace,
                             command=[sys.executable, "-m", POSE_NODE_MODULE])
        pose = start("pose", pose_cmd, env, log_dir)
    probe = start_probe(env, log_dir, node_name=f"{namespace}/anticipation_node", visuals=visuals,
                        skeleton_topic=f"{namespace}/skeleton" if pose is not None else None)
    return AnticipationSession(namespace, node, camera, probe, stamps, log_dir, pose)


def shm_files_of(pid: int) -> set[str]:
    """/dev/shm files a live process maps or holds open."""
    found: set[str] = set()
    proc = Path(f"/proc/{pid}")
    for line in (proc / "maps").read_text().splitlines():
        if "/dev/shm/" in line:
            found.add(line[line.index("/dev/shm/"):].removesuffix(" (deleted)"))
    for fd in (proc / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/dev/shm/"):
            found.add(target)
    return {f for f in found if Path(f).name.startswith(("fastdds_", "sem.fastdds_"))}


def leftover_shm(files: set[str]) -> set[str]:
    """Those of ``files`` (what a process mapped, from :func:`shm_files_of`) left behind after
    it and its peers exited although no live process uses them: leaked segments.

    Only the participants' own segments (``fastdds_<guid>`` and their ``_el`` files) are judged.
    ``fastdds_port*`` segments belong to the DDS domain, are shared with every other
    participant on the machine, and are removed by whichever participant closes them last,
    which on a shared machine may be somebody else's process exiting (or being killed) later.
    """
    own = {f for f in files if Path(f).exists() and "fastdds_port" not in Path(f).name}
    return own - shm_files_in_use() if own else set()
