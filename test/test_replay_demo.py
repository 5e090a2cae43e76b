"""`retf demo --quick` and `retf bag eval --live` end to end: real node, player and recorder
processes over DDS on loopback. The commands run with the `ros_env` environment and give
their ROS children a loopback environment on a domain of their own (random in 60-99), so a
concurrent test session on domain 40 cannot crowd Fast DDS's unicast discovery."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import yaml


def _retf(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "retf_ros", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_quick_demo_replays_to_the_node_prints_live_and_reports_both_runs(replay_checkpoint, ros_env, tmp_path):
    started = time.monotonic()
    result = _retf(["demo", "--quick", "--checkpoint", str(replay_checkpoint), "--cache", str(tmp_path / "cache"),
                    "--report", str(tmp_path / "report")], ros_env, timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    live_lines = [line for line in lines if re.match(r"\[\s*\d+\.\d\d s\] now ", line)]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    live, offline = report["runs"]["live"], report["runs"]["offline"]
    assert len(live_lines) == live["predictions"] > 0
    assert all("erank fused" in line for line in live_lines)
    assert lines[-2] == f"report: {tmp_path / 'report' / 'report.html'}"
    assert any(line.startswith("offline: accuracy now") for line in lines)
    assert any(line.strip().startswith("live: accuracy now") and "end-to-end p50" in line for line in lines)
    # The node saw most frames and the two runs were scored on the same ground truth.
    assert live["predictions"] >= 0.5 * offline["predictions"]
    end_to_end = live["latency_ms"]["end_to_end"]
    assert end_to_end["count"] == live["predictions"] and 0 < end_to_end["min"] <= end_to_end["p50"]
    assert set(report["agreement"]) == {"accuracy_now", "accuracy_1", "accuracy_2", "accuracy_4"}
    assert (tmp_path / "report" / "live" / "live_outputs" / "metadata.yaml").exists()
    assert elapsed < 240, f"the quick demo took {elapsed:.0f} s"
    # A second run reuses the cached sample bag.
    again = _retf(["demo", "--quick", "--checkpoint", str(replay_checkpoint), "--cache", str(tmp_path / "cache"),
                   "--report", str(tmp_path / "report")], ros_env, 60)
    assert again.returncode == 2 and "is not empty; choose another --report" in again.stderr


def test_live_eval_stops_with_a_clear_message_when_the_node_dies(replay_bag, replay_checkpoint, ros_env, tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"sync": {"policy": "whenever"}}}}))
    result = _retf(["bag", "eval", str(replay_bag), "--checkpoint", str(replay_checkpoint), "--live", "--no-offline",
                    "--params-file", str(params), "--report", str(tmp_path / "report")], ros_env, timeout=180)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert message.startswith("retf bag: error: anticipation_node "), message
    assert "sync.policy" in message
