"""Erank health thresholds per checkpoint: derived from the validation distribution recorded in
its metadata (WARN / ERROR below chosen percentiles of the erank of each modality's last tokens
before the exchange, WARN above the high one; the fused erank and mutual gains likewise),
explicit values override, a checkpoint without a distribution keeps the fixed defaults, and
every message names what it is about."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from retf_ros.errors import RetfError
from retf_ros.runtime.health import (DISTRIBUTION_KEY, DISTRIBUTION_PERCENTILES, FROZEN_SPREAD, ErankReport,
                                     ErankThresholds, FaultLimits, Limits, judged, percentile_key, recent_spread,
                                     thresholds_for, window_erank_report)


def summary(lowest: float, step: float) -> dict:
    """A recorded percentile summary whose p-th percentile is lowest + step * index."""
    return {"windows": 500, "min": lowest - step,
            **{percentile_key(p): lowest + step * i for i, p in enumerate(DISTRIBUTION_PERCENTILES)}}


DISTRIBUTION = {
    "convention": "uncentred", "window": 16, "windows": 500, "clips": 3, "recent_frames": 4,
    "recent": {"rgb": summary(1.1, 0.1), "depth": summary(1.01, 0.01)},
    "before": {"rgb": summary(2.1, 0.1), "depth": summary(1.01, 0.01)},
    "after": {"rgb": summary(1.5, 0.1), "depth": summary(1.3, 0.1)},
    "fused": summary(1.6, 0.2),
    "mutual_gain": {"rgb+depth": summary(0.0, 0.05)},
}
METADATA = {DISTRIBUTION_KEY: DISTRIBUTION}


def test_percentile_keys_name_the_recorded_percentiles():
    assert [percentile_key(p) for p in (0.5, 1.0, 5.0, 99.5)] == ["p0.5", "p1", "p5", "p99.5"]


def test_thresholds_come_from_the_checkpoints_percentiles():
    t = thresholds_for(METADATA, warn_percentile=5.0, error_percentile=1.0, high_percentile=99.5)
    # index of p5 is 3, of p1 is 1, of p99.5 is 12
    assert t.modality_limits["rgb"] == Limits(warn_below=pytest.approx(1.4), error_below=pytest.approx(1.2),
                                              warn_above=pytest.approx(2.3))
    assert t.modality_limits["depth"].warn_below == pytest.approx(1.04)
    assert t.fused_warn == pytest.approx(2.2) and t.fused_error == pytest.approx(1.8)
    assert t.mutual_gain_warn == pytest.approx(0.15) and t.mutual_gain_error == pytest.approx(0.05)
    assert "500 windows" in t.source and "warn < p5" in t.source
    assert t.recent_frames == 4 and t.full_window == 16


def test_a_pair_percentile_of_zero_switches_that_mutual_gain_check_off():
    t = thresholds_for(METADATA, warn_percentile=0.5, error_percentile=0.5, high_percentile=None)
    assert t.mutual_gain_warn is None and t.mutual_gain_error is None  # p0.5 of the gain is 0
    assert t.modality_limits["rgb"].warn_above is None


def test_explicit_values_override_and_zero_disables():
    t = thresholds_for(METADATA, {"erank.fused_warn": 3.0, "erank.fused_error": 0.0, "erank.mutual_gain_warn": -1.0})
    assert t.fused_warn == 3.0 and t.fused_error is None
    assert t.mutual_gain_warn == pytest.approx(0.05)  # -1 = auto: p1 (the default warn percentile) of the pair


def test_a_checkpoint_without_a_distribution_keeps_the_fixed_defaults():
    t = thresholds_for({"classes": ["a"]}, {"erank.fused_warn": -1.0}, min_frames=6)
    assert t == ErankThresholds(min_frames=6)
    assert (t.fused_warn, t.fused_error, t.mutual_gain_warn, t.mutual_gain_error) == (2.5, 1.5, 0.05, None)
    assert t.modality_limits == {} and t.source == "built-in defaults"


def test_a_percentile_that_was_not_recorded_is_refused():
    with pytest.raises(RetfError, match=r"has no p3 \(recorded: p0.5, p1, p2, p5"):
        thresholds_for(METADATA, warn_percentile=3.0)


def test_limits_judge_the_erank_of_a_modalitys_last_tokens_and_name_it():
    report = ErankReport(before={"rgb": 3.0, "depth": 1.1}, after={"rgb": 3.0, "depth": 2.0}, fused=3.0,
                         mutual_gain={"rgb+depth": 0.5}, recent={"rgb": 1.0, "depth": 1.5})
    limits = ErankThresholds(modality_limits={"rgb": Limits(1.4, 1.2, 2.3), "depth": Limits(1.04, 1.02, 1.13)})
    verdict = judged(report, limits)
    assert verdict.status == "error"
    assert verdict.messages == ["rgb input: erank of its last 5 tokens 1.000 < error threshold 1.2",
                                "depth input: erank of its last 5 tokens 1.500 > warn threshold 1.13"]
    assert verdict.culprits == ["rgb", "depth"]
    assert report.status == "ok" and report.messages == []  # judged() leaves the original alone
    healthy = judged(ErankReport(before={}, after={}, fused=3.0, mutual_gain={}, recent={"rgb": 1.5, "depth": 1.1}),
                     limits)
    assert healthy.status == "ok" and healthy.culprits == []


def test_a_short_window_is_judged_on_its_modalities_but_not_on_the_fused_erank():
    thresholds = ErankThresholds(fused_warn=2.5, modality_limits={"rgb": Limits(1.4)}, full_window=16)
    start_up = ErankReport(before={}, after={}, fused=1.2, mutual_gain={}, recent={"rgb": 1.0}, window_frames=6)
    assert judged(start_up, thresholds).culprits == ["rgb"]
    full = ErankReport(before={}, after={}, fused=1.2, mutual_gain={}, recent={"rgb": 1.5}, window_frames=16)
    assert judged(full, thresholds).culprits == ["fused"]


def test_a_modality_frozen_for_its_last_tokens_falls_below_its_limit():
    t = 16
    torch.manual_seed(0)
    lively = torch.randn(t, 8) + 2.0
    frozen = lively.clone()
    frozen[-6:] = lively[-6]  # the camera froze 6 frames ago: the window still holds 10 live tokens
    everywhere = torch.ones(t, dtype=torch.bool)
    thresholds = ErankThresholds(fused_warn=None, fused_error=None, mutual_gain_warn=None, recent_frames=5,
                                 modality_limits={"rgb": Limits(1.2, 1.05), "depth": Limits(1.2, 1.05)})
    report = window_erank_report({"rgb": frozen, "depth": lively}, {"rgb": lively, "depth": lively}, lively,
                                 {"rgb": everywhere, "depth": everywhere}, everywhere, thresholds)
    assert report.before["rgb"] > 1.2  # over the whole window it looks alive
    assert report.recent["rgb"] == pytest.approx(1.0, abs=1e-4) and report.recent["depth"] > 1.2
    assert report.status == "error" and report.culprits == ["rgb"]
    gap = {"rgb": torch.arange(t) != t - 2, "depth": everywhere}  # rgb missed a recent frame: not judged
    report = window_erank_report({"rgb": frozen, "depth": lively}, {"rgb": lively, "depth": lively}, lively,
                                 gap, everywhere, thresholds)
    assert report.recent["rgb"] is None and report.status == "ok"


def test_an_error_limit_above_the_warn_limit_is_refused():
    with pytest.raises(RetfError, match="erank limits of rgb: error_below=2.0 must not exceed warn_below=1.0"):
        ErankThresholds(modality_limits={"rgb": Limits(warn_below=1.0, error_below=2.0)})


def test_the_spread_of_tokens_is_their_rms_distance_from_their_mean_relative_to_their_rms_norm():
    # mean (2, 0); every token 1 away from it; squared norms 1, 9, 5, 5 -> RMS norm sqrt(5)
    tokens = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    assert recent_spread(tokens) == pytest.approx(1 / 5 ** 0.5)
    assert recent_spread(torch.tensor([[1.0, 0.0], [3.0, 0.0]])) == pytest.approx(1 / 5 ** 0.5)
    assert recent_spread(torch.tensor([[0.3, -2.0, 5.0]] * 5)) == 0.0   # a frozen input: identical tokens
    assert recent_spread(torch.zeros(5, 3)) == 0.0


def test_a_window_reports_the_spread_and_centred_erank_of_each_modalitys_last_tokens():
    t = 8
    cross = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    rgb = torch.cat([torch.randn(t - 4, 2), cross])   # last 4: centred rows (-1,0) (1,0) (0,1) (0,-1)
    depth = torch.tensor([[2.0, 1.0]]).repeat(t, 1)
    everywhere = torch.ones(t, dtype=torch.bool)
    thresholds = ErankThresholds(fused_warn=None, fused_error=None, mutual_gain_warn=None, recent_frames=4)
    report = window_erank_report({"rgb": rgb, "depth": depth}, {"rgb": rgb, "depth": depth}, rgb,
                                 {"rgb": everywhere, "depth": everywhere}, everywhere, thresholds)
    assert report.spread["rgb"] == pytest.approx(1 / 5 ** 0.5)
    assert report.centred["rgb"] == pytest.approx(2.0, abs=1e-5)  # two equal singular values, sqrt(2)
    assert report.spread["depth"] == 0.0 and report.centred["depth"] == pytest.approx(1.0)
    assert report.status == "ok"  # no fault limits set
    gap = {"rgb": torch.arange(t) != t - 1, "depth": everywhere}
    report = window_erank_report({"rgb": rgb, "depth": depth}, {"rgb": rgb, "depth": depth}, rgb, gap, everywhere,
                                 thresholds)
    assert report.spread["rgb"] is None and report.centred["rgb"] is None


def test_fault_limits_name_a_frozen_input_and_a_noise_like_one_but_not_a_still_scene():
    limits = ErankThresholds(fault_limits={m: FaultLimits(FROZEN_SPREAD, moving_spread=0.004, centred_above=3.94)
                                           for m in ("rgb", "depth", "skeleton")})
    report = ErankReport(before={}, after={}, fused=None, mutual_gain={},
                         spread={"rgb": 0.0, "depth": 0.0043, "skeleton": 0.0004},
                         centred={"rgb": 1.0, "depth": 3.97, "skeleton": 3.99})
    verdict = judged(report, limits)
    assert verdict.status == "error" and verdict.culprits == ["rgb", "depth"]
    assert verdict.messages == [
        "rgb input: frozen, its last 5 tokens do not move (spread 0.00e+00 < 1e-05)",
        "depth input: noise-like, centred erank of its last 5 tokens 3.970 > warn threshold 3.94 (spread 0.0043)"]
    # the skeleton's tokens move in every direction, but by a still scene's sensor noise only: not judged
    moving_along_few_directions = replace(report, spread={"depth": 0.009}, centred={"depth": 2.5})
    assert judged(moving_along_few_directions, limits).status == "ok"


FAULT_DISTRIBUTION = {**DISTRIBUTION, "spread": {"rgb": summary(0.001, 0.01), "depth": summary(0.0001, 0.001)},
                      "recent_centred": {"rgb": summary(1.5, 0.2), "depth": summary(2.0, 0.15)}}


def test_recorded_fault_statistics_replace_the_low_side_of_the_recent_erank():
    t = thresholds_for({DISTRIBUTION_KEY: FAULT_DISTRIBUTION}, warn_percentile=1.0, error_percentile=0.5,
                       high_percentile=99.5)
    # p50 has index 6, p99.5 index 12
    assert t.fault_limits["rgb"] == FaultLimits(FROZEN_SPREAD, moving_spread=pytest.approx(0.061),
                                                centred_above=pytest.approx(3.9))
    assert t.fault_limits["depth"].centred_above == pytest.approx(3.8)
    assert t.modality_limits["rgb"] == Limits(warn_below=None, error_below=None, warn_above=pytest.approx(2.3))
    assert t.fused_warn == pytest.approx(1.8)  # the fused erank keeps its percentiles


def test_a_distribution_without_the_fault_statistics_keeps_the_low_side_of_the_recent_erank():
    t = thresholds_for(METADATA, warn_percentile=1.0, error_percentile=0.5, high_percentile=99.5)
    assert t.fault_limits == {}
    assert t.modality_limits["rgb"] == Limits(warn_below=pytest.approx(1.2), error_below=pytest.approx(1.1),
                                              warn_above=pytest.approx(2.3))
