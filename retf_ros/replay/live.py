"""Live replay evaluation: the real node, the bag player and a recorder as DDS processes.

``anticipation_node`` runs with the given parameter file and checkpoint (``use_sim_time``),
the player publishes the bag's camera and skeleton topics with ``/clock``, and the recorder
stores the node's ``~/anticipation`` documents and ``/diagnostics`` in an MCAP bag (receive
time as log time) while echoing each document, so callers can print them as they arrive.
All three get their environment from :func:`retf_ros.harness.loopback.loopback_environment`
(NETWORK RULE: this module is the demo/evaluation launcher that sets the DDS environment).

End-to-end latency here is measured, not taken from the node: the player logs the wall time
at which it published each message, the recorder the wall time at which the anticipation for
that frame (same source stamp) arrived (its log time in the recording); latency = arrival - publication of the last message
of the frame the node used (its modalities reported "ok"). Both clocks are this machine's.
"""
from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from retf_ros.bags.bagio import BagReader
from retf_ros.bags.conventions import RGB_COMPRESSED_TOPIC, ModalityTopics
from retf_ros.bags.frames import FrameStream, resolve_topics
from retf_ros.errors import RetfError
from retf_ros.evaluation.bag_scoring import ReplayRun
from retf_ros.harness.loopback import loopback_environment, remove_stale_shm_segments
from retf_ros.harness.processes import environment_for, node_argv, start, wait_for
from retf_ros.runtime.anticipation import document_stamp_ns

NODE_NAME = "anticipation_node"
ECHO_PREFIX = "echo "
DIAGNOSTICS_TOPIC = "/diagnostics"
OUTPUT_TOPIC = f"/{NODE_NAME}/anticipation"


@dataclass(frozen=True)
class LiveOptions:
    """``overrides``: extra node parameters (``-p name:=value``); ``domain_id`` None = random
    in 60..99 (tests use 40+); ``startup_timeout_s``: for the node to configure (checkpoint
    load); ``subscriber_timeout_s``: for the player to see the node's subscriptions (activation
    and DDS discovery); ``drain_s``: how long to wait for the node's last outputs."""

    params_file: Path | None = None
    rate: float = 1.0
    domain_id: int | None = None
    startup_timeout_s: float = 180.0
    subscriber_timeout_s: float = 60.0
    drain_s: float = 3.0
    max_idle_s: float = 0.5
    overrides: dict = field(default_factory=dict)
    topics: ModalityTopics = ModalityTopics()
    distro: str | None = None  # definitions of a bag that stores none (the player converts)


class _LineTail:
    """New complete lines of a growing log file."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode(errors="replace").splitlines()


def _log_tail(process, lines: int = 15) -> str:
    text = process.log().strip().splitlines()
    return "\n".join(text[-lines:])


def run_live(bag: str | Path, checkpoint: str | Path, work_dir: Path, options: LiveOptions = LiveOptions(),
             on_document: Callable[[dict], None] | None = None, model_modalities: tuple[str, ...] | None = None
             ) -> ReplayRun:
    """Replay ``bag`` to a real node and collect what it publishes (module docstring).

    Raises RetfError with the relevant log lines when a process fails or the node publishes
    nothing. ``model_modalities``: the checkpoint's modalities (which topics to play).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(bag, checkpoint, work_dir, options, model_modalities)
    env = environment_for(loopback_environment(plan.domain, work_dir / "ros_log"))
    processes = []
    started = time.perf_counter()
    try:
        node = start(NODE_NAME, node_argv(options.params_file, plan.overrides, remaps=plan.remaps), env, work_dir)
        processes.append(node)
        recorder = start("recorder", [sys.executable, "-m", "retf_ros.bags.recorder", OUTPUT_TOPIC,
                                      DIAGNOSTICS_TOPIC, "--out", str(plan.recorded), "--echo"], env, work_dir)
        processes.append(recorder)
        watch = _NodeWatch(node, recorder, on_document)
        try:
            wait_for(lambda: watch.node_alive() and "recorder ready" in recorder.log(), options.startup_timeout_s,
                     "the node's anticipation publisher")
        except TimeoutError as exc:
            raise RetfError(f"{exc}; last lines of {node.log_path}:\n{_log_tail(node)}") from None
        player = start("player", _player_argv(bag, plan, options), env, work_dir)
        processes.append(player)
        watch.follow(player)
        watch.drain(options.drain_s)
        recorder.stop()
        watch.collect()
        node.stop()
    finally:
        for process in processes:
            process.stop()
        remove_stale_shm_segments()
    return _replay_run(plan, work_dir, time.perf_counter() - started)


@dataclass(frozen=True)
class _Plan:
    """What the three processes are started with, from the bag, the checkpoint and the options.
    ``stream``: the bag's topics per modality and notes about them;
    ``remaps``: the node's standard relative input names -> the bag's topics."""

    stream: FrameStream
    play_topics: list[str]
    domain: int
    overrides: dict
    remaps: dict[str, str]
    recorded: Path
    publish_log: Path


def _plan(bag: str | Path, checkpoint: str | Path, work_dir: Path, options: LiveOptions,
          model_modalities: tuple[str, ...] | None) -> _Plan:
    reader = BagReader(bag, distro=options.distro)
    stream = resolve_topics(reader, model_modalities or ("rgb", "depth", "skeleton"), options.topics)
    overrides = {"checkpoint": str(Path(checkpoint).resolve()), "use_sim_time": True, **options.overrides}
    compressed = stream.modality_topics.get("rgb") not in (None, options.topics.rgb.lstrip("/"))
    if compressed:
        overrides.setdefault("rgb.compressed", True)
    # The node subscribes to the standard relative names; point them at the bag's topics.
    standard = ModalityTopics().by_modality()
    remaps = {(RGB_COMPRESSED_TOPIC if m == "rgb" and compressed else standard[m]): "/" + topic
              for m, topic in stream.modality_topics.items()}
    recorded = work_dir / "live_outputs"
    if recorded.exists():
        raise RetfError(f"{recorded} exists already; use an empty --report directory")
    return _Plan(stream=stream, play_topics=sorted(stream.modality_topics.values()),
                 domain=options.domain_id if options.domain_id is not None else random.randint(60, 99),
                 overrides=overrides, remaps=remaps, recorded=recorded, publish_log=work_dir / "published.jsonl")


def _player_argv(bag: str | Path, plan: _Plan, options: LiveOptions) -> list[str]:
    return [sys.executable, "-m", "retf_ros.bags.player", str(bag), "--topics", *plan.play_topics,
            "--clock", "--rate", str(options.rate), "--max-idle", str(options.max_idle_s),
            "--wait-for-subscribers", str(options.subscriber_timeout_s), "--publish-log", str(plan.publish_log),
            *(("--distro", options.distro) if options.distro else ())]


class _NodeWatch:
    """The node and the recorder while the bag plays: gathers the documents the recorder echoes
    (live printing, liveness) and fails fast when the node dies or logs an error before its
    first anticipation."""

    def __init__(self, node, recorder, on_document: Callable[[dict], None] | None):
        self.node = node
        self.tail = _LineTail(recorder.log_path)
        self.on_document = on_document
        self.echoed: list[dict] = []

    def collect(self) -> None:
        for line in self.tail.lines():
            if line.startswith(f"{ECHO_PREFIX}{OUTPUT_TOPIC} "):
                document = json.loads(line[len(ECHO_PREFIX) + len(OUTPUT_TOPIC) + 1:])
                self.echoed.append(document)
                if self.on_document is not None:
                    self.on_document(document)

    def node_alive(self) -> bool:
        """True, or RetfError with the node's last log lines."""
        node = self.node
        if not node.alive():
            raise RetfError(f"anticipation_node exited with status {node.popen.returncode} before the replay "
                            f"ended; last lines of {node.log_path}:\n{_log_tail(node)}")
        errors = [line for line in node.log().splitlines() if "[ERROR]" in line]
        if errors and not self.echoed:
            raise RetfError(f"anticipation_node reported an error before its first anticipation: {errors[0]} "
                            f"(log: {node.log_path})")
        return True

    def follow(self, player) -> None:
        """Until the player ends; RetfError when it fails."""
        while player.alive():
            self.node_alive()
            self.collect()
            time.sleep(0.05)
        if player.popen.returncode != 0:
            raise RetfError(f"the bag player failed (status {player.popen.returncode}); last lines of "
                            f"{player.log_path}:\n{_log_tail(player)}")

    def drain(self, quiet_s: float) -> None:
        """Until no document arrived for ``quiet_s`` (the node's last outputs)."""
        last_count, quiet_since = len(self.echoed), time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            self.node_alive()
            self.collect()
            if len(self.echoed) != last_count:
                last_count, quiet_since = len(self.echoed), time.monotonic()
            time.sleep(0.05)


def _replay_run(plan: _Plan, work_dir: Path, wall_s: float) -> ReplayRun:
    """The run from the recording, the authoritative record: each document with the recorder's
    receive time, in stamp order, with the end-to-end latencies."""
    recording = BagReader(plan.recorded)
    received = [(m.log_ns, json.loads(recording.deserialize(m).data)) for m in recording.messages([OUTPUT_TOPIC])]
    if not received:
        player_log = (work_dir / "player.log").read_text(errors="replace").strip()
        raise RetfError(f"the node published no anticipation while the bag played (topics "
                        f"{', '.join(plan.play_topics)}); player: {player_log or 'no output'}; "
                        f"see {work_dir / 'anticipation_node.log'}")
    published = _publish_times(plan.publish_log, set(plan.play_topics))
    documents = [document for _, document in received]
    counters = {"frames_published": len(published), "predictions": len(documents),
                **_last_node_counters(plan.recorded)}
    notes = list(plan.stream.notes) + [f"node outputs recorded in {plan.recorded}",
                                       f"DDS domain {plan.domain}, loopback only; process logs in {work_dir}"]
    return ReplayRun("live", sorted(documents, key=document_stamp_ns), len(published), wall_s, _device(work_dir),
                     counters, notes, _end_to_end_ms(received, published, plan.stream.modality_topics))


def _end_to_end_ms(received: list[tuple[int, dict]], published: dict[int, dict[str, int]],
                   topic_of: dict[str, str]) -> list[float]:
    """Per document (receive ns, document): receive time - publication of the newest input the
    node used (the frame's messages of the modalities it had, "ok"); documents whose frame was
    not published (or used nothing) have none."""
    end_to_end = []
    for receive_ns, document in received:
        sent = published.get(document_stamp_ns(document), {})
        used = [sent[topic_of[m]] for m, state in document["modalities"].items()
                if state == "ok" and topic_of.get(m) in sent]
        if used:
            end_to_end.append((receive_ns - max(used)) / 1e6)
    return end_to_end


def _publish_times(path: Path, topics: set[str]) -> dict[int, dict[str, int]]:
    """Source stamp -> {topic: wall time (ns) at which the player published it}."""
    out: dict[int, dict[str, int]] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["topic"] in topics and entry["stamp_ns"] is not None:
            out.setdefault(entry["stamp_ns"], {})[entry["topic"]] = entry["wall_ns"]
    return out


def _last_node_counters(recorded: Path) -> dict[str, int]:
    """Counters from the node's last /diagnostics message (values that are integers)."""
    try:
        reader = BagReader(recorded)
    except RetfError:
        return {}
    last = None
    for message in reader.messages([DIAGNOSTICS_TOPIC]):
        last = message
    if last is None:
        return {}
    counters: dict[str, int] = {}
    for status in reader.deserialize(last).status:
        if NODE_NAME not in status.name:
            continue
        for item in status.values:
            if item.value.lstrip("-").isdigit():
                counters[f"node/{item.key}"] = int(item.value)
    return counters


def _device(work_dir: Path) -> str:
    log = work_dir / "anticipation_node.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    marker = "inference on "
    if marker in text:
        return text[text.index(marker) + len(marker):].split(" ", 1)[0]
    return "unknown"

