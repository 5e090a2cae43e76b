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
