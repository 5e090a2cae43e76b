"""The node's /diagnostics content from a health snapshot (no processes)."""
from __future__ import annotations

import pytest

pytest.importorskip("diagnostic_msgs")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from retf_ros.ros.diagnostics import LatencyWindow, ModalityHealth, NodeHealth, diagnostic_statuses  # noqa: E402
from retf_ros.runtime.health import ErankReport  # noqa: E402


def _by_part(health: NodeHealth) -> dict[str, DiagnosticStatus]:
    return {s.name.split(": ", 1)[1]: s for s in diagnostic_statuses(health)}


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _active(**kwargs) -> NodeHealth:
    modalities = {m: ModalityHealth("ok", 30.0, 0.01) for m in ("rgb", "depth", "skeleton")}
    return NodeHealth(node_name="/robot/anticipation_node", lifecycle_state="active", device="cpu",
                      modalities=modalities, **kwargs)


def test_latency_window_percentiles_over_the_last_values():
    window = LatencyWindow(size=100)
    assert window.summary() is None
    for value in range(1000):
        window.add(value)
    assert window.summary() == {"p50": pytest.approx(949.5), "p95": pytest.approx(994.05), "max": 999.0}


def test_healthy_node_is_ok_on_every_part_and_names_itself():
    parts = _by_part(_active())
    assert set(parts) == {"inputs", "synchronisation", "inference", "effective rank"}
    assert all(s.level == DiagnosticStatus.OK for s in parts.values())
    assert all(s.name.startswith("/robot/anticipation_node: ") and s.hardware_id == "cpu" for s in parts.values())
    assert _values(parts["inputs"])["rgb.rate_hz"] == "30"


def test_missing_and_never_received_modalities_warn():
    health = _active()
    health.modalities["depth"] = ModalityHealth("missing", 0.0, 3.2)
    health.modalities["skeleton"] = ModalityHealth("waiting", 0.0, None)
    inputs = _by_part(health)["inputs"]
    assert inputs.level == DiagnosticStatus.WARN
    assert "depth missing" in inputs.message and "skeleton: nothing received yet" in inputs.message
    assert _values(inputs)["skeleton.stamp_age_s"] == "n/a"


def test_new_drops_warn_but_superseded_frames_do_not():
    quiet = _by_part(_active(drops={"rgb/superseded": 40}, new_drops={"rgb/superseded": 12}))["synchronisation"]
    assert quiet.level == DiagnosticStatus.OK
    noisy = _by_part(_active(drops={"depth/encoding": 3}, new_drops={"depth/encoding": 3},
                             last_drop="depth/encoding"))["synchronisation"]
    assert noisy.level == DiagnosticStatus.WARN and "depth/encoding x3" in noisy.message
    assert _values(noisy)["drops.depth/encoding"] == "3"


def test_configure_error_is_an_error_with_the_reason():
    health = NodeHealth(node_name="/anticipation_node", lifecycle_state="unconfigured",
                        error="configure failed: x.safetensors is a pickle")
    inference = _by_part(health)["inference"]
    assert inference.level == DiagnosticStatus.ERROR and "pickle" in inference.message
    assert _by_part(health)["inputs"].level == DiagnosticStatus.OK  # not subscribed: nothing to complain about


def test_inference_reports_latency_percentiles_and_skipped_windows():
    health = _active(inference_ms={"p50": 12.0, "p95": 30.0, "max": 41.5}, windows_run=90, skipped_windows=3)
    values = _values(_by_part(health)["inference"])
    assert values["inference_ms.p95"] == "30" and values["inference_ms.max"] == "41.5"
    assert values["skipped_windows"] == "3" and values["end_to_end_ms.p50"] == "n/a"


@pytest.mark.parametrize("status, level", [("ok", DiagnosticStatus.OK), ("warn", DiagnosticStatus.WARN),
                                           ("error", DiagnosticStatus.ERROR)])
def test_erank_status_maps_to_level(status, level):
    report = ErankReport(before={"rgb": 3.0, "depth": 2.0}, after={"rgb": 3.5, "depth": 2.5}, fused=1.2,
                         mutual_gain={"rgb+depth": 0.5}, status=status,
                         messages=[] if status == "ok" else ["feature collapse: fused erank 1.200 < threshold"])
    erank = _by_part(_active(erank=report))["effective rank"]
    assert erank.level == level
    assert _values(erank)["after.depth"] == "2.5" and _values(erank)["convention"] == "uncentred"
    assert ("collapse" in erank.message) == (status != "ok")


def test_throttled_count_goes_out_with_the_messages_it_counts_not_with_the_next_one():
    from retf_ros.ros.throttled_log import ThrottledLog

    now = [0.0]
    lines: list[str] = []
    log = ThrottledLog(lines.append, period_s=5.0, clock=lambda: now[0])
    log.warning("rgb/encoding", "dropped rgb message: unsupported encoding 'yuv422'")
    for _ in range(24):
        now[0] += 0.1
        log.warning("rgb/encoding", "dropped rgb message: unsupported encoding 'yuv422'")
    assert len(lines) == 1
    now[0] = 6.0
    log.warning("rgb/encoding", "dropped rgb message: unsupported encoding ''")
    assert lines[1:] == [
        "24 more 'rgb/encoding' lines held back since the last report, the last: "
        "dropped rgb message: unsupported encoding 'yuv422'",
        "dropped rgb message: unsupported encoding ''"]   # no count on the '' line: it counted 'yuv422' drops


def test_throttled_count_is_flushed_once_the_period_is_over_even_without_a_new_message():
    from retf_ros.ros.throttled_log import ThrottledLog

    now = [0.0]
    lines: list[str] = []
    log = ThrottledLog(lines.append, period_s=5.0, clock=lambda: now[0])
    log.warning("depth/size_mismatch", "dropped depth message: size 1")
    log.warning("depth/size_mismatch", "dropped depth message: size 2")
    log.flush()
    assert len(lines) == 1   # the period is not over
    now[0] = 5.0
    log.flush()
    log.flush()
    assert lines[1:] == ["1 more 'depth/size_mismatch' line held back since the last report, the last: "
                                "dropped depth message: size 2"]


def test_inputs_warn_when_the_node_receives_or_takes_markedly_fewer_frames_than_arrive():
    health = _active(age_bound_s=0.5)
    health.modalities["rgb"] = ModalityHealth("ok", 4.6, 0.05, received_hz=4.6, taken_hz=4.6, lost_hz=55.4,
                                              reference=True)
    health.modalities["depth"] = ModalityHealth("ok", 10.2, 0.05, received_hz=10.2, taken_hz=4.0, lost_hz=49.8)
    inputs = _by_part(health)["inputs"]
    assert inputs.level == DiagnosticStatus.WARN
    assert "rgb: node receives 4.6 of 60.0 Hz sent (55.4 Hz lost in its queues)" in inputs.message
    assert "depth: node receives 10.2 of 60.0 Hz sent" in inputs.message
    assert "depth: node takes" not in inputs.message   # taken vs usable is judged on the reference only
    assert _values(inputs)["rgb.lost_hz"] == "55.4" and _values(inputs)["rgb.received_hz"] == "4.6"
    slow_worker = _active(age_bound_s=0.5)
    slow_worker.modalities["rgb"] = ModalityHealth("ok", 30.0, 0.05, received_hz=30.0, taken_hz=9.0, lost_hz=0.0,
                                                   reference=True)
    message = _by_part(slow_worker)["inputs"].message
    assert message == "rgb: node takes 9.0 of 30.0 Hz usable frames"


def test_inputs_warn_on_implausible_stamps_and_on_frames_older_than_the_bound():
    health = _active(age_bound_s=0.5)
    health.modalities["rgb"] = ModalityHealth("ok", 15.0, 0.02, received_hz=30.0, taken_hz=15.0, lost_hz=0.0,
                                              bad_stamps=15, reference=True)
    health.modalities["depth"] = ModalityHealth("ok", 15.0, 0.02, received_hz=15.0, taken_hz=15.0, lost_hz=0.0,
                                                max_age_s=0.62)
    inputs = _by_part(health)["inputs"]
    assert inputs.level == DiagnosticStatus.WARN and "all inputs ok" not in inputs.message
    assert "rgb: 15 frames with implausible stamps dropped" in inputs.message
    assert "depth: frames up to 0.620 s old on arrival (bound 0.5 s)" in inputs.message


def test_stamp_gate_resets_are_reported_by_reason():
    values = _values(_by_part(_active(resets=2, reset_reasons={"clock_back": 1, "stream_jump": 1}))["synchronisation"])
    assert values["buffer_resets"] == "2" and values["resets.clock_back"] == "1" and values["resets.stream_jump"] == "1"
