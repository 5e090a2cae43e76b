"""`retf train` / `retf eval` end to end on a tiny clip store: the loss goes down, runs resume
exactly, checkpoints carry their provenance, evaluation writes the documented JSON, pickles are
refused, a skeleton-only protocol checkpoint evaluates, and a 2-process torchrun (gloo) works."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRAIN_YAML

from retf_ros.checkpoint import load_checkpoint
from retf_ros.training.config import load_config
from retf_ros.training.trainer import Trainer

TINY_CONFIG = TINY_TRAIN_YAML + "epochs: 4\nsamples_per_clip: 8\nbatch_size: 8\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("training_run")
    (root / "tiny.yaml").write_text(TINY_CONFIG)
    return root


def _train(store, workdir: Path, out: Path, stop_after=None, **overrides) -> Path:
    config = load_config(workdir / "tiny.yaml", {"cache_dir": str(workdir / "cache"), "device": "cpu", **overrides})
    return Trainer(config, store.root, out, command="pytest").run(stop_after_epoch=stop_after)


@pytest.fixture(scope="module")
def trained_run(tiny_clip_store, workdir) -> Path:
    out = workdir / "run"
    _train(tiny_clip_store, workdir, out)
    return out


def _cli(*args, timeout=180):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "retf_ros", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_training_lowers_the_loss(trained_run):
    log = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < 0.85 * log[0]["train_loss"]
    assert log[-1]["val_total"] < log[0]["val_total"]


def test_checkpoint_records_task_provenance_and_metrics(trained_run, tiny_clip_store):
    from retf_ros.data.clipstore import data_fingerprint

    loaded = load_checkpoint(trained_run)  # the run directory means its best checkpoint
    meta = loaded.metadata
    assert loaded.path.name == "best.safetensors"
    assert meta["task"] == "stream" and meta["fps"] == 5.0 and meta["window"] == 8 and meta["horizon_s"] == 2.0
    assert meta["classes"] == tiny_clip_store.classes
    assert meta["modalities"] == ["rgb", "depth", "skeleton"]
    assert meta["training"]["command"] == "pytest"
    assert meta["training"]["data_fingerprint"] == data_fingerprint(tiny_clip_store)
    assert meta["training"]["config"]["epochs"] == 4
    assert meta["training"]["recipe"]["fps"] == 5.0 and meta["training"]["recipe"]["fps_source"] == "configured"
    assert loaded.model.config.num_queries == 4 and loaded.model.config.dim == 32
    # The erank distribution of full windows on the validation clips, for the node's health thresholds.
    distribution = meta["erank_distribution"]
    assert distribution["part"] == "val" and distribution["window"] == 8 and distribution["windows"] > 0
    assert set(distribution["before"]) == {"rgb", "depth", "skeleton"}
    for summary in (*distribution["before"].values(), distribution["fused"]):
        assert 1.0 - 1e-6 <= summary["min"] <= summary["p1"] <= summary["p5"] <= summary["p50"] <= summary["max"] <= 8.0
    assert set(distribution["mutual_gain"]) == {"rgb+depth", "rgb+skeleton", "depth+skeleton"}
    # The fault statistics of each modality's last tokens: spread in [0, 1] over every window that
    # has it, the centred erank over the moving half of them (spread at least its median).
    for m in ("rgb", "depth", "skeleton"):
        spread, centred = distribution["spread"][m], distribution["recent_centred"][m]
        assert 0.0 <= spread["min"] <= spread["p50"] <= spread["max"] <= 1.0
        assert spread["windows"] // 2 <= centred["windows"] <= spread["windows"]  # ties at the median count
        assert 1.0 - 1e-6 <= centred["min"] <= centred["max"] <= distribution["recent_frames"] - 1 + 1e-6


def test_the_best_checkpoint_is_the_epoch_with_the_best_validation_moc_and_its_anticipation(trained_run):
    from retf_ros.training.anticipation import MODES

    log = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    scores = [entry["val_moc"] for entry in log]
    best = scores.index(max(scores))  # the first epoch reaching the best score
    meta = load_checkpoint(trained_run).metadata
    assert meta["training"]["config"]["select_by"] == "val_moc"
    assert meta["metrics"]["epoch"] == best + 1
    assert [entry.get("best", False) for entry in log][best] is True
    # The score is the best anticipation mode's validation MoC; that mode goes to eval.
    modes = log[best]["val_moc_modes"]
    assert set(modes) == set(MODES) and max(modes.values()) == pytest.approx(scores[best])
    assert meta["anticipation"]["mode"] == log[best]["anticipation_mode"]
    assert modes[meta["anticipation"]["mode"]] == max(modes.values())
    assert meta["anticipation"]["prior"]["num_classes"] == len(meta["classes"])


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(trained_run, tiny_clip_store, workdir):
    out = workdir / "resumed"
    _train(tiny_clip_store, workdir, out, stop_after=2)
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    _train(tiny_clip_store, workdir, out)  # resumes at epoch 3
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2, 3, 4]
    resumed = load_file(str(out / "last.safetensors"))
    straight = load_file(str(trained_run / "last.safetensors"))
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6)


def test_resuming_with_a_different_config_is_refused(trained_run, tiny_clip_store, workdir):
    from retf_ros.errors import RetfError

    with pytest.raises(RetfError, match=r"different config \(lr: 0.001 -> 0.5\)"):
        _train(tiny_clip_store, workdir, trained_run, lr=0.5)


def test_eval_cli_writes_moc_erank_and_streaming_json(trained_run, tiny_clip_store, workdir):
    from retf_ros.evaluation.protocol import evaluate_moc, task_spec_from_metadata
    from retf_ros.training.prepared import PrepareSpec, PreparedCache
    from retf_ros.evaluation.eval_report import anticipation_of

    recorded = workdir / "recorded"
    shutil.copytree(trained_run, recorded)
    out = workdir / "eval.json"
    result = _cli("eval", "--checkpoint", recorded, "--data", tiny_clip_store.root, "--device", "cpu",
                  "--cache-dir", workdir / "cache", "--json", out, "--record")
    assert result.returncode == 0, result.stderr
    assert "MoC (%)" in result.stdout
    report = json.loads(out.read_text())
    assert set(report["moc"]) == {"0.2", "0.3"}
    assert all(set(row) == {"0.1", "0.2", "0.3", "0.5"} for row in report["moc"].values())
    # The CLI's table is the API's MoC on the same checkpoint and test clips.
    loaded = load_checkpoint(trained_run)
    cache = PreparedCache(tiny_clip_store, workdir / "cache",
                          PrepareSpec.for_model(loaded.model.config, 5.0, tiny_clip_store.skeleton_layout))
    prior, mode = anticipation_of(loaded.metadata)
    direct = evaluate_moc(loaded.model, task_spec_from_metadata(loaded.metadata), cache,
                          tiny_clip_store.clip_ids("default", "test"), torch.device("cpu"),
                          prior=prior, mode=mode).moc.table()
    for alpha, row in direct.items():
        for horizon, value in row.items():
            assert 0.0 <= value <= 100.0
            assert report["moc"][alpha][horizon] == pytest.approx(value)
    erank = report["effective_rank"]
    assert set(erank["before"]) == {"rgb", "depth", "skeleton"}
    assert erank["fused"] >= 1.0
    assert set(erank["mutual_gain"]) == {"rgb+depth", "rgb+skeleton", "depth+skeleton"}
    assert set(erank["inactive_channels"]) == {"rgb", "depth", "skeleton"}
    assert all(0.0 <= n <= loaded.model.config.dim for n in erank["inactive_channels"].values())
    # LayerNorm-ed tokens (the default ending): no dead channel, signed tokens around 0 with sd ~1.
    assert erank["inactive_channels"] == {"rgb": 0.0, "depth": 0.0, "skeleton": 0.0}
    assert set(erank["token_statistics"]) == {"rgb", "depth", "skeleton"}
    for stats in erank["token_statistics"].values():
        assert abs(stats["token_mean"]) < 0.2 and 0.0 <= stats["token_mean_sd"] < 0.2
        assert 0.7 < stats["token_sd"] < 1.3
    assert "tokens entering the exchange: per-token mean" in result.stdout
    accuracy = report["streaming"]["accuracy"]
    assert 0.0 <= accuracy["1"] <= 100.0 and 0.0 <= accuracy["2"] <= 100.0
    assert accuracy["4"] is None  # beyond the 2 s horizon: not scored
    assert report["data"]["clips"] == 1 and len(report["runs"]) == 1
    assert report["branches"] is None  # only synthetic stores annotate their branches
    # The model-free prior, fitted on the training clips, scored on the same test clips.
    assert "Prior MoC (%)" in result.stdout and "model - prior" in result.stdout
    assert {a: set(row) for a, row in report["prior"]["moc"].items()} == {a: set(row) for a, row in report["moc"].items()}
    assert all(0.0 <= v <= 100.0 for row in report["prior"]["moc"].values() for v in row.values())
    assert report["prior"]["train_clips"] == len(tiny_clip_store.clip_ids("default", "train"))
    assert report["runs"][0]["anticipation_mode"] == mode
    # --record: the figures land in the checkpoint's metadata, the weights stay byte-identical.
    before = json.loads((trained_run / "best.json").read_text())
    after = load_checkpoint(recorded)
    assert after.sha256 == before["weights_sha256"]
    test_metrics = after.metadata["metrics"]["test"]
    assert test_metrics["moc"] == report["moc"]
    assert test_metrics["streaming"]["accuracy"] == accuracy
    assert test_metrics["command"].startswith("retf eval --checkpoint")
    assert after.metadata["metrics"]["val_total"] == before["metrics"]["val_total"]


def test_eval_with_seeds_averages_runs(trained_run, tiny_clip_store, workdir):
    from retf_ros.evaluation.eval_report import evaluate_runs, resolve_runs

    parent = workdir / "seeds"
    for seed in (1, 2):
        shutil.copytree(trained_run, parent / f"seed_{seed}", dirs_exist_ok=True)
    report = evaluate_runs(resolve_runs([str(parent)], [1, 2]), tiny_clip_store.root, device="cpu",
                           cache_dir=workdir / "cache", streaming=False)
    assert len(report["runs"]) == 2
    assert report["moc"] == report["runs"][0]["moc"]
    assert all(v == 0.0 for row in report["moc_std"].values() for v in row.values())


def test_eval_refuses_a_pickled_checkpoint(trained_run, tiny_clip_store, workdir):
    evil = workdir / "evil"
    evil.mkdir()
    torch.save({"weights": torch.zeros(2)}, evil / "best.safetensors")
    shutil.copy(trained_run / "best.json", evil / "best.json")
    result = _cli("eval", "--checkpoint", evil, "--data", tiny_clip_store.root, "--device", "cpu",
                  "--cache-dir", workdir / "cache")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pickle" in lines[0] and "best.safetensors" in lines[0]


def test_skeleton_only_protocol_checkpoint_trains_and_evaluates(tiny_clip_store, workdir):
    from retf_ros.evaluation.eval_report import evaluate_runs

    out = workdir / "protocol"
    _train(tiny_clip_store, workdir, out, task="protocol", modalities=["skeleton"], epochs=1)
    meta = load_checkpoint(out).metadata
    assert meta["task"] == "protocol" and meta["horizon_s"] is None and meta["modalities"] == ["skeleton"]
    report = evaluate_runs([out], tiny_clip_store.root, device="cpu", cache_dir=workdir / "cache")
    assert report["streaming"] is None
    assert set(report["effective_rank"]["before"]) == {"skeleton"}
    values = [v for row in report["moc"].values() for v in row.values()]
    assert len(values) == 8 and all(0.0 <= v <= 100.0 for v in values)


def test_standardised_depth_run_stores_the_training_depth_statistics_in_its_checkpoint(tiny_clip_store, workdir):
    from retf_ros.training.prepared import DEPTH_STD_FLOOR

    out = workdir / "standardised"
    _train(tiny_clip_store, workdir, out, epochs=2, **{"model.depth_standardise": True})
    loaded = load_checkpoint(out / "last")
    assert loaded.model.config.depth_standardise
    # The tiny store's depth is a flat 1.5 m: mean 1.5 / DEPTH_SCALE_M, std at the floor, and
    # two epochs of training left them as they were set.
    torch.testing.assert_close(loaded.model.depth_standardiser.mean, torch.full((1, 8, 10), 0.3), atol=1e-3, rtol=0)
    torch.testing.assert_close(loaded.model.depth_standardiser.std, torch.full((1, 8, 10), DEPTH_STD_FLOOR))


def test_torchrun_two_processes_on_cpu(tiny_clip_store, workdir):
    out = workdir / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "retf_ros",
         "train", "--data", str(tiny_clip_store.root), "--out", str(out), "--config", str(workdir / "tiny.yaml"),
         "--device", "cpu", "--epochs", "2", "--cache-dir", str(workdir / "cache")],
        capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((out / "last.json").read_text())
    assert meta["training"]["world_size"] == 2 and meta["training"]["epochs_done"] == 2
    assert len((out / "log.jsonl").read_text().splitlines()) == 2  # rank 0 alone writes
    weights = load_file(str(out / "last.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def _epoch_batches(store, workdir: Path, num_workers: int, epoch: int) -> list:
    config = load_config(workdir / "tiny.yaml", {"cache_dir": str(workdir / "cache"), "device": "cpu",
                                                 "num_workers": num_workers})
    trainer = Trainer(config, store.root, workdir / f"loader_{num_workers}", command="pytest")
    trainer._prepare_cache()
    train_set, _ = trainer._datasets()
    loader = trainer._loader(train_set, train=True)
    batches = []
    for e in range(epoch + 1):   # the epochs before too, as the training loop runs them
        loader.dataset.set_epoch(e)
        loader.sampler.set_epoch(e)
        batches = [torch.cat([batch["mask"], batch["frame_labels"]], dim=1) for batch in loader]
    return batches


def test_loader_workers_draw_each_epochs_windows_like_the_main_process(tiny_clip_store, workdir):
    """Worker processes see the epoch: epoch 2's windows equal those drawn without workers and
    differ from epoch 0's."""
    inline = _epoch_batches(tiny_clip_store, workdir, num_workers=0, epoch=2)
    workers = _epoch_batches(tiny_clip_store, workdir, num_workers=1, epoch=2)
    assert len(inline) == len(workers)
    assert all(torch.equal(a, b) for a, b in zip(inline, workers))
    first = _epoch_batches(tiny_clip_store, workdir, num_workers=0, epoch=0)
    assert not all(torch.equal(a, b) for a, b in zip(inline, first))
