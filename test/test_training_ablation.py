"""`retf ablate` on a tiny clip store: every requested variant is trained and evaluated, the
table and JSON are written, finished runs are reused, the table can be rebuilt from recorded
evaluations alone, and the RTF checks are computed from the measured numbers."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import TINY_TRAIN_YAML

from retf_ros.errors import RetfError
from retf_ros.training.ablation import VARIANT_NAMES, render_markdown, requirement_checks, run_ablation
from retf_ros.evaluation.prior_moc import prior_report

TINY_CONFIG = TINY_TRAIN_YAML + "epochs: 1\nsamples_per_clip: 4\n"


def test_ablation_trains_evaluates_and_writes_the_table(tiny_clip_store, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    out = tmp_path / "ablation"
    result = run_ablation(tiny_clip_store.root, out, config_path=config, seeds=[1], variants=["rtf", "skeleton_only"],
                          device="cpu", cache_dir=str(tmp_path / "cache"), stream_stride=2)
    assert [row["variant"] for row in result["rows"]] == ["rtf", "skeleton_only", "prior"]
    for row in result["rows"][:2]:
        assert 0.0 <= row["moc_mean"] <= 100.0 and row["seeds"] == 1
        assert set(row["streaming_accuracy"]) == {"1", "2", "4"}
    # The last row is the model-free prior of the store, scored like the models.
    prior = result["rows"][2]
    assert prior["moc"] == prior_report(tiny_clip_store, "default", "test", 5.0)["moc"]
    assert prior["streaming_accuracy"] is None and prior["moc_mean_std"] == 0.0
    beats = result["checks"]["Every variant beats the model-free prior on MoC"]
    assert beats["holds"] == all(row["moc_mean"] > prior["moc_mean"] for row in result["rows"][:2])
    skeleton_meta = json.loads((out / "skeleton_only" / "seed_1" / "best.json").read_text())
    assert skeleton_meta["modalities"] == ["skeleton"]
    rtf_meta = json.loads((out / "rtf" / "seed_1" / "best.json").read_text())
    assert rtf_meta["model_config"]["fusion"] == "rtf" and rtf_meta["model_config"]["exchange_ratio"] == 0.3
    written = json.loads((out / "ablation.json").read_text())
    assert written["seeds"] == [1] and len(written["rows"]) == 3
    markdown = (out / "ablation.md").read_text()
    assert "| rtf |" in markdown and "| skeleton_only |" in markdown and "| prior |" in markdown
    check = written["checks"]["RTF beats every other fusion and single modality on MoC"]
    rtf, skeleton = (row["moc_mean"] for row in result["rows"][:2])
    assert check["holds"] == (rtf > skeleton)
    # A second call reuses the finished runs and their evaluations.
    eval_file = out / "rtf" / "seed_1" / "eval.json"
    stamp = eval_file.stat().st_mtime_ns
    again = run_ablation(tiny_clip_store.root, out, config_path=config, seeds=[1], variants=["rtf"],
                         device="cpu", cache_dir=str(tmp_path / "cache"), stream_stride=2)
    assert eval_file.stat().st_mtime_ns == stamp
    assert again["rows"][0]["moc_mean"] == pytest.approx(rtf)


def test_requirement_checks_state_failures_with_numbers():
    rows = [{"variant": "rtf", "moc_mean": 40.0, "fused_erank": 9.0, "streaming_mean": 50.0},
            {"variant": "concat", "moc_mean": 41.5, "fused_erank": 7.0, "streaming_mean": 45.0},
            {"variant": "no_exchange", "moc_mean": 30.0, "fused_erank": 9.5, "streaming_mean": 49.0},
            {"variant": "rtf_rho0.1", "moc_mean": 50.0, "fused_erank": 9.0, "streaming_mean": 60.0}]
    checks = requirement_checks(rows)
    moc = checks["RTF beats every other fusion and single modality on MoC"]
    assert moc["holds"] is False and "concat 41.50" in moc["detail"] and "rho" not in moc["detail"]
    stream = checks["RTF beats every other fusion and single modality on streaming accuracy (mean of 1/2/4 s)"]
    assert stream == {"holds": True, "detail": "RTF 50.00; all others below"}
    erank = checks["RTF raises the fused effective rank (vs no exchange)"]
    assert erank["holds"] is False and erank["detail"] == "RTF 9.00 vs no_exchange 9.50"
    assert "The benchmark needs fusion: every fusion beats every single modality on MoC" not in checks
    with_singles = rows + [{"variant": "skeleton_only", "moc_mean": 35.0, "fused_erank": 3.0, "streaming_mean": 40.0},
                           {"variant": "rgb_only", "moc_mean": 20.0, "fused_erank": 2.0, "streaming_mean": 30.0}]
    needs_fusion = requirement_checks(with_singles)["The benchmark needs fusion: every fusion beats every single modality on MoC"]
    assert needs_fusion == {"holds": False, "detail": "lowest fusion no_exchange 30.00, best single modality skeleton_only 35.00"}
    with_singles[-2]["moc_mean"] = 29.0
    assert requirement_checks(with_singles)["The benchmark needs fusion: every fusion beats every single modality on MoC"]["holds"]
    rows_md = [{**r, "moc": {}, "moc_alpha": {"0.2": 1.0, "0.3": 2.0}, "moc_mean_std": 0.0,
                "streaming_accuracy": None} for r in rows]
    text = render_markdown(rows_md, checks, "## t")
    assert "- RTF beats every other fusion and single modality on MoC: NO" in text
    assert "branches" not in text  # no row was scored on annotated branches
    rows_md[0]["branches"] = {"colour": 80.0, "gesture": 50.0, "tray": 61.3}
    lines = render_markdown(rows_md, checks, "## t").splitlines()
    assert lines[2].endswith("| fused erank | branches colour / gesture / tray |")
    assert lines[4].endswith("| 9.00 | 80.0 / 50.0 / 61.3 |") and lines[5].endswith("| n/a / n/a / n/a |")



def test_the_table_shows_each_seeds_moc_when_several_seeds_ran():
    row = {"variant": "rtf", "moc_alpha": {"0.2": 54.0, "0.3": 48.0}, "moc_mean": 51.0, "moc_mean_std": 0.5,
           "moc_mean_per_seed": [50.5, 51.5], "streaming_accuracy": None, "fused_erank": 4.5}
    lines = render_markdown([row], {}, "## t", seeds=[1, 10]).splitlines()
    assert lines[2] == ("| variant | MoC a=0.2 | MoC a=0.3 | MoC mean (std over seeds) | MoC per seed 1 / 10 "
                        "| stream acc 1 s / 2 s / 4 s | fused erank |")
    assert lines[3] == "|---|---|---|---|---|---|---|"
    assert lines[4] == "| rtf | 54.00 | 48.00 | 51.00 (0.50) | 50.50 / 51.50 | n/a | 4.50 |"
    assert "MoC per seed" not in render_markdown([row], {}, "## t", seeds=[1])

@pytest.mark.parametrize("exchanged, plain, where", [("rtf_bn", "no_exchange_bn", "Behind the BatchNorm"),
                                                      ("sum_exchange", "sum", "In front of the sum")])
def test_the_exchange_against_its_twin_is_checked_when_both_variants_ran(exchanged, plain, where):
    name = f"{where} the exchange helps: {exchanged} above {plain} on MoC and fused erank"
    rows = [{"variant": "rtf", "moc_mean": 40.0, "fused_erank": 4.0},
            {"variant": exchanged, "moc_mean": 49.7, "fused_erank": 5.2}]
    assert name not in requirement_checks(rows)
    rows.append({"variant": plain, "moc_mean": 49.0, "fused_erank": 5.3})
    assert requirement_checks(rows)[name] == {"holds": False,
                                              "detail": "MoC 49.70 vs 49.00, fused erank 5.20 vs 5.30"}
    rows[-1]["fused_erank"] = 5.0
    assert requirement_checks(rows)[name]["holds"]


def test_variant_names_cover_the_required_comparisons():
    assert set(VARIANT_NAMES) == {"rtf", "no_exchange", "concat", "sum", "sum_exchange", "bn_gamma", "rtf_bn",
                                  "no_exchange_bn", "rgb_only", "depth_only", "skeleton_only", "rtf_rho0.1",
                                  "rtf_rho0.2"}


def test_table_only_rebuilds_the_table_from_recorded_evaluations_without_weights(tiny_clip_store, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    trained = tmp_path / "trained"
    options = dict(config_path=config, seeds=[1], variants=["skeleton_only"], device="cpu",
                   cache_dir=str(tmp_path / "cache"), stream_stride=2)
    measured = run_ablation(tiny_clip_store.root, trained, **options)
    records = tmp_path / "records"
    run_dir = records / "skeleton_only" / "seed_1"
    run_dir.mkdir(parents=True)
    for name in ("best.json", "eval.json"):
        shutil.copy(trained / "skeleton_only" / "seed_1" / name, run_dir / name)
    rebuilt = run_ablation(tiny_clip_store.root, records, table_only=True, **options)
    assert rebuilt["rows"] == measured["rows"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.json", "eval.json"]  # nothing was trained
    with pytest.raises(RetfError, match=r"no recorded evaluation .* for rtf seed 1, rtf seed 2, skeleton_only seed 2 "):
        run_ablation(tiny_clip_store.root, records, table_only=True, **{**options, "seeds": [1, 2],
                                                                         "variants": ["skeleton_only", "rtf"]})
    meta = json.loads((run_dir / "best.json").read_text())
    meta["training"]["data_fingerprint"] = "0" * 64
    (run_dir / "best.json").write_text(json.dumps(meta))
    with pytest.raises(RetfError, match="trained on another clip store"):
        run_ablation(tiny_clip_store.root, records, table_only=True, **options)
