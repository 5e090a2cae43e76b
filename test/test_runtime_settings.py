"""One settings path: anticipation_node and offline bag evaluation turn the same parameters into
the same runtime settings (retf_ros.runtime.settings), the table's defaults are the runtime's,
and the node reports rclpy's lifecycle state."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from retf_ros.errors import RetfError
from retf_ros.param_file import node_parameters
from retf_ros.runtime.health import ErankThresholds, thresholds_for
from retf_ros.runtime.parameters import HISTORIES, RELIABILITIES, SPECS
from retf_ros.runtime.settings import runtime_settings, stamp_policy, sync_config
from retf_ros.runtime.stamps import StampPolicy
from retf_ros.runtime.sync import SyncConfig

REPO = Path(__file__).resolve().parents[1]
NS = 1_000_000_000

# Every setting away from its default; values the tiny checkpoint (window 16, 15 fps, horizon
# 4 s, kinect_v2_25) accepts.
CHANGED = {"window": {"frames": 12, "fps": 15.0, "stride": 2, "horizon_s": 4.0},
           "sync": {"slop_s": 0.05, "max_age_s": 0.7, "queue_size": 7, "reference": "depth",
                    "policy": "require_all", "wait_s": 0.35, "time_jump_s": 2.0},
           "stamps": {"max_ahead_s": 0.8, "max_behind_s": 1.5, "jump_frames": 12},
           "skeleton": {"type": "marker_array", "layout": "kinect_v1_20", "max_age_s": 0.3, "body_id": 2},
           "erank": {"fused_warn": 3.0, "fused_error": 0.0, "mutual_gain_warn": 0.2, "warn_percentile": 2.0,
                     "error_percentile": 1.0, "high_percentile": 99.0, "min_frames": 6}}


def _params_file(path: Path, checkpoint: Path | None = None) -> Path:
    """config/anticipation.yaml with the CHANGED values (and ``checkpoint``)."""
    document = yaml.safe_load((REPO / "config" / "anticipation.yaml").read_text())
    parameters = document["/**"]["ros__parameters"]
    for group, values in CHANGED.items():
        parameters[group].update(values)
    if checkpoint is not None:
        parameters["checkpoint"] = str(checkpoint)
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_parameter_file_sets_every_runtime_setting_it_names(tmp_path):
    settings = runtime_settings(node_parameters(_params_file(tmp_path / "params.yaml")), {})
    assert settings.sync == SyncConfig(reference="depth", slop_s=0.05, max_age_s=0.7, skeleton_max_age_s=0.3,
                                       queue_size=7, policy="require_all", time_jump_s=2.0, wait_s=0.35)
    assert (settings.window, settings.stride, settings.horizon_s, settings.fps) == (12, 2, 4.0, 15.0)
    assert settings.erank_thresholds == ErankThresholds(fused_warn=3.0, fused_error=None, mutual_gain_warn=0.2,
                                                        mutual_gain_error=None, min_frames=6)
    assert (settings.skeleton_type, settings.skeleton_layout, settings.skeleton_body_id) == (
        "marker_array", "kinect_v1_20", 2)
    assert stamp_policy(node_parameters(tmp_path / "params.yaml"), settings.sync) == StampPolicy(
        max_ahead_s=0.8, max_behind_s=1.5, jump_frames=12, clock_jump_s=2.0, active_s=0.7)


def test_missing_parameters_take_the_tables_defaults_which_are_the_runtime_defaults():
    settings = runtime_settings({}, {})
    assert settings.sync == SyncConfig()
    assert settings.erank_thresholds == thresholds_for({}) == ErankThresholds()
    assert (settings.window, settings.stride, settings.horizon_s, settings.fps) == (None, None, None, None)
    assert (settings.skeleton_type, settings.skeleton_layout, settings.skeleton_body_id) == ("pose_array", None, -1)
    assert stamp_policy({}, settings.sync) == StampPolicy()


def test_the_shipped_parameter_file_gives_the_default_settings():
    shipped = runtime_settings(node_parameters(REPO / "config" / "anticipation.yaml"), {})
    assert shipped == runtime_settings({}, {})


def test_an_integer_written_for_a_double_parameter_gives_the_same_settings():
    assert runtime_settings({"sync.wait_s": 1, "erank.warn_percentile": 2}, {}) == runtime_settings(
        {"sync.wait_s": 1.0, "erank.warn_percentile": 2.0}, {})
    assert isinstance(sync_config({"sync.wait_s": 1}).wait_s, float)


def test_parameters_outside_the_table_are_ignored_and_refused_values_name_the_parameters():
    assert runtime_settings({"lifting.patch_radius": 3, "other_node.rate": 5}, {}) == runtime_settings({}, {})
    with pytest.raises(RetfError, match="node parameters: slop_s must be > 0"):
        sync_config({"sync.slop_s": 0.0})


def test_ros_qos_maps_exactly_the_tables_qos_choices():
    from retf_ros.ros import qos

    assert tuple(qos.RELIABILITIES) == RELIABILITIES and tuple(qos.HISTORIES) == HISTORIES
    assert SPECS["qos.rgb.reliability"].choices == RELIABILITIES


# The node process: its settings from the parameters it declared from the file, and rclpy's
# lifecycle state through each transition (as /diagnostics reports it).
NODE_SCRIPT = """
import dataclasses, json, sys
import rclpy
from retf_ros.ros.lifecycle import SUCCESS
from retf_ros.ros.node import AnticipationNode

rclpy.init(args=["--ros-args", "--params-file", sys.argv[1]])
node = AnticipationNode()
states = [(node.lifecycle_state(), node.health().lifecycle_state)]
assert node.trigger_configure() == SUCCESS, node._error
states.append((node.lifecycle_state(), node.health().lifecycle_state))
settings = dataclasses.asdict(node.runtime_settings())
for transition in (node.trigger_activate, node.trigger_deactivate, node.trigger_cleanup, node.trigger_shutdown):
    assert transition() == SUCCESS, node._error
    states.append((node.lifecycle_state(), node.health().lifecycle_state))
print(json.dumps({"settings": settings, "states": states}))
node.destroy_node()
rclpy.try_shutdown()
"""


def test_node_and_offline_replay_see_the_same_settings_from_the_same_parameter_file(tmp_path, tiny_checkpoint,
                                                                                     ros_env):
    from retf_ros.checkpoint import load_checkpoint

    params_file = _params_file(tmp_path / "params.yaml", checkpoint=tiny_checkpoint)
    # cwd: `python -c` imports this checkout's retf_ros.
    result = subprocess.run([sys.executable, "-c", NODE_SCRIPT, str(params_file)], env=ros_env, cwd=REPO,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    node = json.loads(result.stdout.strip().splitlines()[-1])
    # What retf bag eval's offline run computes (retf_ros.replay.evaluate / offline).
    offline = runtime_settings(node_parameters(params_file), load_checkpoint(tiny_checkpoint).metadata)
    assert node["settings"] == json.loads(json.dumps(asdict(offline)))
    assert node["settings"]["sync"]["wait_s"] == offline.sync.wait_s == 0.35
    assert [tuple(s) for s in node["states"]] == [(s, s) for s in ("unconfigured", "inactive", "active", "inactive",
                                                                 "unconfigured", "finalized")]


def _stop_depth(source: Path, target: Path, seconds: float, depth_until_s: float) -> int:
    """Copy the first ``seconds`` of ``source`` without depth after ``depth_until_s``; returns the
    number of depth frames kept."""
    from retf_ros.bags.bagio import BagReader, BagWriter

    reader = BagReader(source)
    start = reader.summary.start_ns
    kept = 0
    with BagWriter(target) as writer:
        for message in reader.messages():
            since = message.log_ns - start
            if since >= seconds * NS or (message.topic == "depth/image_raw" and since >= depth_until_s * NS):
                continue
            kept += message.topic == "depth/image_raw"
            writer.write_raw(message.topic, message.msgtype, message.log_ns, message.raw)
    return kept


def test_offline_replay_honours_sync_wait_s_from_the_parameters(replay_bag, replay_checkpoint, tmp_path):
    """Depth stops half way: with wait_s 0 every RGB frame goes out at once (depth missing);
    waiting 5 s for a partner that never comes holds back every frame after the stop (the
    bag ends sooner)."""
    from retf_ros.bags.bagio import BagReader
    from retf_ros.replay.offline import OfflineOptions, run_offline

    bag = tmp_path / "depth_stops"
    depth_frames = _stop_depth(replay_bag, bag, seconds=3.0, depth_until_s=1.5)
    rgb_frames = BagReader(bag).summary.topics["rgb/image_raw"].count
    assert 0 < depth_frames < rgb_frames

    def frame_sets(wait_s: float) -> int:
        run = run_offline(bag, replay_checkpoint, OfflineOptions(params={"sync.wait_s": wait_s}), progress=False)
        return run.counters["frame_sets"]

    assert frame_sets(0.0) == rgb_frames
    assert frame_sets(5.0) == depth_frames
