"""`retf ablate --jobs N`: the runs train in worker processes and record exactly what the
sequential run records; finished runs are reused; a failing worker is named with its log; and
`python -m retf_ros synth|ablate|eval` works on a machine without the ROS packages (the GPU
machine the ablation is run on has neither rclpy nor rosbags nor mcap)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from test_training_ablation import TINY_CONFIG

from retf_ros.errors import RetfError
from retf_ros.training.ablation import VARIANTS, RunOptions, prepare_shared_frames, run_ablation

TWO_VARIANTS = ["rtf", "skeleton_only"]
# Modules of the ROS side of the project: rclpy and the message packages of its PyPI wheels,
# and the bag libraries.
ROS_MODULES = ("rclpy", "rosbags", "mcap", "std_msgs", "sensor_msgs", "geometry_msgs", "diagnostic_msgs",
               "visualization_msgs", "lifecycle_msgs", "builtin_interfaces", "rosgraph_msgs", "rcl_interfaces",
               "rosidl_runtime_py", "rpyutils", "ament_index_python")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_clip_store):
    """The tiny config and one frame cache for every test of the module."""
    root = tmp_path_factory.mktemp("ablate_jobs")
    config = root / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    return {"root": root, "options": dict(config_path=config, seeds=[1], variants=TWO_VARIANTS, device="cpu",
                                          cache_dir=str(root / "cache"), stream_stride=2)}


def _record(run_dir: Path) -> tuple[str, dict]:
    """What a run records that does not depend on time or place: its weights' sha256 and its
    evaluation without the checkpoint path and the inference latencies."""
    meta = json.loads((run_dir / "best.json").read_text())
    report = json.loads((run_dir / "eval.json").read_text())
    report.pop("checkpoint")
    report["streaming"].pop("latency")
    return meta["weights_sha256"], report


def test_two_jobs_record_what_the_sequential_run_records_and_resume(tiny_clip_store, shared):
    root, options = shared["root"], shared["options"]
    parallel = run_ablation(tiny_clip_store.root, root / "parallel", jobs=2, **options)  # prepares the frames
    sequential = run_ablation(tiny_clip_store.root, root / "sequential", **options)
    assert parallel["rows"] == sequential["rows"]
    assert parallel["checks"] == sequential["checks"]
    for variant in TWO_VARIANTS:
        run = root / "parallel" / variant / "seed_1"
        assert _record(run) == _record(root / "sequential" / variant / "seed_1")
        assert f"retf ablate: {variant} seed 1 -> {run}" in (run / "ablate.log").read_text()
    assert (root / "parallel" / "ablation.md").read_text().count("| rtf |") == 1

    # Resume: the finished run is not touched, the run without its evaluation gets it again.
    kept = root / "parallel" / "skeleton_only" / "seed_1"
    stamps = {name: (kept / name).stat().st_mtime_ns for name in ("best.safetensors", "eval.json", "ablate.log")}
    redone = root / "parallel" / "rtf" / "seed_1"
    before = _record(redone)
    (redone / "eval.json").unlink()
    again = run_ablation(tiny_clip_store.root, root / "parallel", jobs=2, **options)
    assert {name: (kept / name).stat().st_mtime_ns for name in stamps} == stamps
    assert _record(redone) == before
    assert again["rows"] == sequential["rows"]
    assert (redone / "ablate.log").read_text().count("already finished 1 epochs") == 1


def test_the_frames_of_every_clip_every_run_reads_are_prepared_before_the_workers_start(tiny_clip_store, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    options = RunOptions(data=tiny_clip_store.root, out=tmp_path / "out", config_path=config, epochs=None, split=None,
                         device="cpu", threads=None, cache_dir=str(tmp_path / "cache"), command="retf ablate",
                         stream_stride=2)
    variants = [v for v in VARIANTS if v.name in ("skeleton_only", "rgb_only")]
    prepare_shared_frames(options, variants, seed=1, jobs=2)
    clips = [c for part in ("train", "val", "test") for c in tiny_clip_store.clip_ids("default", part)]
    for variant in variants:
        cache = options.trainer(variant, 1).cache
        assert cache.spec.modalities == tuple(variant.overrides["modalities"])
        assert all(cache.is_ready(c) for c in clips)
    assert not (tmp_path / "out").exists()  # nothing was trained


def test_a_failing_worker_is_named_with_its_log_and_the_others_finish(tiny_clip_store, shared):
    out = shared["root"] / "failing"
    broken = out / "rtf" / "seed_1"
    broken.mkdir(parents=True)
    (broken / "last.optim.json").write_text("{not json")  # an interrupted run whose state is damaged
    with pytest.raises(RetfError) as raised:
        run_ablation(tiny_clip_store.root, out, jobs=2, **shared["options"])
    message = str(raised.value)
    assert message.startswith(f"1 of 2 worker(s) failed: rtf seed 1 (exit status 1, log {broken / 'ablate.log'}: "
                              f"error: cannot read optimizer state {broken / 'last.optim'}.*")
    assert "error: cannot read optimizer state" in (broken / "ablate.log").read_text()
    assert (out / "skeleton_only" / "seed_1" / "eval.json").is_file()
    assert not (out / "ablation.md").exists()


def test_jobs_must_be_positive(tiny_clip_store, shared):
    with pytest.raises(RetfError, match="--jobs 0: at least 1 worker process"):
        run_ablation(tiny_clip_store.root, shared["root"] / "zero", jobs=0, **shared["options"])


def test_synth_ablate_and_eval_run_without_the_ros_packages(tmp_path):
    blocker = tmp_path / "no_ros"
    blocker.mkdir()
    # sitecustomize runs at the start of every interpreter, the spawned workers' too.
    (blocker / "sitecustomize.py").write_text(
        f"import sys\nfor name in {ROS_MODULES!r}:\n    sys.modules[name] = None\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path)

    probe = run("-c", "import importlib, sys\n"
                      f"for name in {ROS_MODULES!r}:\n"
                      "    try:\n        importlib.import_module(name)\n    except ImportError:\n        continue\n"
                      "    sys.exit(name + ' imported')")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    store, config = tmp_path / "store", tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    synth = run("-m", "retf_ros", "synth", "--out", store, "--sequences", 7, "--width", 40, "--height", 32,
                "--min-duration", 12, "--max-duration", 14, "--workers", 1)
    assert synth.returncode == 0, synth.stderr[-3000:]
    ablate = run("-m", "retf_ros", "ablate", "--data", store, "--out", tmp_path / "ablation", "--config", config,
                 "--seeds", 1, "--variants", *TWO_VARIANTS, "--device", "cpu", "--jobs", 2, "--cache-dir",
                 tmp_path / "cache")
    assert ablate.returncode == 0, ablate.stderr[-3000:]
    assert "| rtf |" in (tmp_path / "ablation" / "ablation.md").read_text()
    evaluate = run("-m", "retf_ros", "eval", "--checkpoint", tmp_path / "ablation" / "rtf", "--seeds", 1,
                   "--data", store, "--no-streaming", "--device", "cpu", "--json", tmp_path / "eval.json",
                   "--cache-dir", tmp_path / "cache")
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert json.loads((tmp_path / "eval.json").read_text())["moc"]
