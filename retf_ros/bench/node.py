"""Node benchmark (`make bench` section "node"): the real anticipation_node fed by the synthetic
camera over loopback DDS, measured from a probe process.

1. End-to-end latency (publish time of the anticipation minus the source stamp of its newest
   frame, as the node reports it, and its age as the probe receives it) at 15 Hz at the
   checkpoint's native size, and at 15 and 30 Hz VGA, against the target p95 <= one camera
   frame period + one inference.
2. The highest input rate it keeps up with: the camera rate is raised step by step; a rate is
   kept up with when the node receives >= 95 % of the frames the camera sent and publishes
   >= 90 % of the windows the model's time grid calls for.
3. Overload: a 60 Hz VGA camera for a couple of minutes: the age of every published
   anticipation (receive time - source stamp) per interval, how many marked a modality not
   ok, the node's intake as its inputs diagnostic reports it (received / lost / taken Hz per
   modality, level and message), and the node's RSS.
All with the shipped demo checkpoint at its native input size (a random model of the default
architecture when no demo checkpoint exists). With --gpu the latency part runs on CUDA in
fp32 / fp16 / bf16 (needs rclpy on the GPU machine). Durations: RETF_BENCH_NODE_STEP_S
(default 10) per rate step, RETF_BENCH_NODE_OVERLOAD_S (default 120). RETF_BENCH_NODE_PARTS
(default "latency,rates,overload") runs only the named parts on the CPU.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from retf_ros.bench import machine_description
from retf_ros.bench.runtime import _checkpoint
from retf_ros.harness.loopback import loopback_environment
from retf_ros.harness.processes import publisher_argv, rss_bytes, start, start_session, wait_for
from retf_ros.runtime.anticipation import document_stamp_ns

RATE_STEPS = (15, 30, 60, 90, 120)
LATENCY_RATES = (15, 30)  # VGA camera rates of the end-to-end age figures
VGA = (640, 480)


def _percentiles(values) -> str:
    if not len(values):
        return "n/a"
    a = np.asarray(values, dtype=np.float64)
    return f"p50 {np.percentile(a, 50):.1f} / p95 {np.percentile(a, 95):.1f} / max {a.max():.1f} ms"


class _Bench:
    def __init__(self, workdir: Path, checkpoint: Path, threads: int):
        self.workdir, self.checkpoint, self.threads = workdir, checkpoint, threads
        # A domain of its own (tests use 40+worker) and a namespace of its own.
        self.env = loopback_environment(random.randint(60, 99), workdir / "ros_log")
        self.namespace = f"/retf_bench_{os.getpid()}"

    def session(self, name: str, camera: tuple[str, ...], overrides: dict | None = None):
        log_dir = self.workdir / name
        log_dir.mkdir()
        params = {"torch_threads": self.threads, "diagnostics.rate_hz": 2.0, **(overrides or {})}

        session = start_session(self.env, log_dir, namespace=self.namespace, checkpoint=self.checkpoint,
                                overrides=params, camera_options=camera)

        def ready():
            session.check_running()
            failed = [d["inference"]["message"] for d in session.diagnostics() if d["inference"]["level"] == 2]
            if failed:
                raise RuntimeError(failed[-1])
            return len(session.anticipations()) >= 3

        try:
            wait_for(ready, 180, "the first anticipations")
        except (RuntimeError, TimeoutError):
            session.stop()
            raise
        return session

    def restart_camera(self, session, camera: tuple[str, ...]) -> None:
        session.camera.stop()
        session.stamps_path.unlink(missing_ok=True)
        args = (*camera, "--stamps-file", str(session.stamps_path), "--ros-args", "-r", f"__ns:={session.namespace}")
        session.camera = start("camera", publisher_argv(*args), self.env, session.log_dir)


def _window(session, start_ns: int) -> list[dict]:
    return [e for e in session.anticipations() if e["received_ns"] >= start_ns and "doc" in e]


def _latency(bench: _Bench, size: tuple[int, int], seconds: float, device: str = "cpu", precision: str = "fp32",
             rate: int = 15):
    """End-to-end age of the anticipations at a camera rate, against the target of issue 20:
    p95 at most one camera frame period plus one inference (the node's median inference)."""
    camera = ("--rate", str(rate), "--width", str(size[0]), "--height", str(size[1]))
    session = bench.session(f"latency_{size[0]}x{size[1]}_{rate}hz_{device}_{precision}", camera,
                            {"device": device, "precision": precision})
    try:
        start = time.time_ns()
        time.sleep(seconds)
        events = _window(session, start)
        node_ms = [e["doc"]["latency"]["end_to_end_ms"] for e in events]
        probe_ms = [(e["received_ns"] - document_stamp_ns(e["doc"])) / 1e6 for e in events]
        inference = [e["doc"]["latency"]["inference_ms"] for e in events]
        device_used = session.diagnostics()[-1]["inference"]["values"]["device"]
    finally:
        session.stop()
    verdict = ""
    if probe_ms:
        target = 1000.0 / rate + float(np.percentile(inference, 50))
        p95 = float(np.percentile(probe_ms, 95))
        verdict = (f"; target p95 <= frame period + inference = {target:.1f} ms: "
                   f"{'met' if p95 <= target else 'missed'} ({p95:.1f} ms)")
    print(f"[node] {size[0]}x{size[1]} at {rate} Hz on {device_used} {precision}, {len(events)} anticipations in "
          f"{seconds:.0f} s: end-to-end (node) {_percentiles(node_ms)}; at the subscriber {_percentiles(probe_ms)}; "
          f"inference {_percentiles(inference)}{verdict}")


def _keeps_up(bench: _Bench, size: tuple[int, int], step_s: float) -> None:
    first = ("--rate", str(RATE_STEPS[0]), "--width", str(size[0]), "--height", str(size[1]))
    session = bench.session("rates", first)
    best = None
    try:
        for rate in RATE_STEPS:
            camera = ("--rate", str(rate), "--width", str(size[0]), "--height", str(size[1]))
            if rate != RATE_STEPS[0]:
                bench.restart_camera(session, camera)
            # The new camera process is up and discovered once a second's worth of frames went out.
            wait_for(lambda: len(session.published_stamps()) >= rate, 60, f"the {rate} Hz camera")
            time.sleep(1.0)
            before = session.wait_for_diagnostics(lambda d: True, 5, "diagnostics")
            sent_before = len(session.published_stamps())
            start_ns = time.time_ns()
            time.sleep(step_s)
            after = session.wait_for_diagnostics(lambda d: True, 5, "diagnostics")
            elapsed_s = (time.time_ns() - start_ns) / 1e9
            sent = len(session.published_stamps()) - sent_before
            events = _window(session, start_ns)
            fps = events[-1]["doc"]["window"]["fps"] if events else 0.0
            received = int(after["inputs"]["values"]["rgb.frames"]) - int(before["inputs"]["values"]["rgb.frames"])
            skipped = (int(after["inference"]["values"]["skipped_windows"])
                       - int(before["inference"]["values"]["skipped_windows"]))
            ages = [(e["received_ns"] - document_stamp_ns(e["doc"])) / 1e6 for e in events]
            sent_hz, received_hz = sent / elapsed_s, received / elapsed_s
            ok = received >= 0.95 * sent and len(events) >= 0.9 * fps * elapsed_s
            if ok:
                best = f"{rate} Hz (the camera sent {sent_hz:.1f} Hz)"
            print(f"[node] camera {rate} Hz (sent {sent_hz:.1f} Hz): node received {received_hz:.1f} Hz, "
                  f"{len(events) / elapsed_s:.1f} anticipations/s (model grid {fps:.0f} fps), skipped windows "
                  f"{skipped}, age {_percentiles(ages)} -> {'keeps up' if ok else 'falls behind'}")
            if not ok:
                break
    finally:
        session.stop()
    print(f"[node] highest camera rate kept up with at {size[0]}x{size[1]}: "
          f"{best or 'none'} (steps {', '.join(map(str, RATE_STEPS))} Hz)")


def _intake(diag: dict) -> str:
    """The node's own account of its intake: per modality received / lost / taken Hz, then the
    inputs status (level and message)."""
    values = diag["inputs"]["values"]
    rates = "; ".join(f"{m} received {values[f'{m}.received_hz']} lost {values[f'{m}.lost_hz']} "
                      f"taken {values[f'{m}.taken_hz']} Hz" for m in ("rgb", "depth", "skeleton")
                      if f"{m}.received_hz" in values)
    level = {0: "OK", 1: "WARN", 2: "ERROR"}.get(diag["inputs"]["level"], "?")
    return f"{rates}; inputs {level}: {diag['inputs']['message']}"


def _overload(bench: _Bench, seconds: float, interval_s: float = 15.0) -> None:
    camera = ("--rate", "60", "--width", str(VGA[0]), "--height", str(VGA[1]))
    session = bench.session("overload", camera)
    rows = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start_ns = time.time_ns()
            time.sleep(interval_s)
            events = _window(session, start_ns)
            ages = [(e["received_ns"] - document_stamp_ns(e["doc"])) / 1e6 for e in events]
            degraded = sum(1 for e in events if set(e["doc"]["modalities"].values()) != {"ok"})
            rss = rss_bytes(session.node.pid) / 2**20
            rows.append((ages, rss))
            print(f"[node] overload 60 Hz VGA, t={len(rows) * interval_s:.0f} s: {len(events)} anticipations "
                  f"({degraded} with a modality not ok), age {_percentiles(ages)}, node RSS {rss:.0f} MiB; "
                  f"{_intake(session.diagnostics()[-1])}", flush=True)
        values = session.diagnostics()[-1]
    finally:
        session.stop()
    drops = {k: v for k, v in values["synchronisation"]["values"].items() if k.startswith("drops.")}
    first_rss, last_rss = rows[0][1], rows[-1][1]
    worst = max((max(a) for a, _ in rows if a), default=float("nan"))
    print(f"[node] overload summary over {seconds:.0f} s: worst age {worst:.0f} ms, RSS {first_rss:.0f} -> "
          f"{last_rss:.0f} MiB ({last_rss - first_rss:+.0f} MiB), skipped windows "
          f"{values['inference']['values']['skipped_windows']}, sync drops {drops}")


def run(args) -> None:
    try:
        import rclpy  # noqa: F401
    except ImportError:
        print("[node] skipped: rclpy is not installed here (the node benchmark needs the ROS 2 wheels)")
        return
    threads = getattr(args, "threads", 2)
    step_s = float(os.environ.get("RETF_BENCH_NODE_STEP_S", 10))
    overload_s = float(os.environ.get("RETF_BENCH_NODE_OVERLOAD_S", 120))
    with tempfile.TemporaryDirectory(prefix="retf_bench_node_") as tmp:
        workdir = Path(tmp)
        loaded, description = _checkpoint(args, workdir)
        height, width = loaded.metadata.get("image_size") or loaded.model.config.image_size
        native = (int(width), int(height))
        bench = _Bench(workdir, loaded.path, threads)
        print(f"[node] machine: {machine_description()}; node torch threads {threads}")
        print(f"[node] {description}, native input {native[0]}x{native[1]}, "
              f"modalities {'+'.join(loaded.model.config.modalities)}")
        if getattr(args, "gpu", False):
            for precision in ("fp32", "fp16", "bf16"):
                try:
                    _latency(bench, native, 10.0, device="cuda", precision=precision)
                    _latency(bench, VGA, 10.0, device="cuda", precision=precision, rate=30)
                except (RuntimeError, TimeoutError) as exc:
                    print(f"[node] cuda {precision}: node did not run: {exc}")
            return
        del loaded
        torch.set_num_threads(threads)
        parts = os.environ.get("RETF_BENCH_NODE_PARTS", "latency,rates,overload").split(",")
        if "latency" in parts:
            _latency(bench, native, 20.0)
            for rate in LATENCY_RATES:
                _latency(bench, VGA, 20.0, rate=rate)
        if "rates" in parts:
            _keeps_up(bench, native, step_s)
        if "overload" in parts:
            _overload(bench, overload_s)
