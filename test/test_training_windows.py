"""Window sampling, target construction and the MoC metric, checked by hand on tiny examples."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retf_ros.evaluation import moc
from retf_ros.training import windows


def test_resample_indices_takes_newest_frame_at_or_before_each_tick():
    # 30 fps source with one dropped frame (stamp 0.1 missing), resampled to 15 fps.
    stamps = np.array([0.0, 1 / 30, 2 / 30, 4 / 30, 5 / 30, 6 / 30])
    idx = windows.resample_indices(stamps, fps=15.0)
    # ticks 0, 1/15, 2/15, 3/15 -> frames 0, 2, 3 (4/30 = 2/15), 5 (6/30 = 3/15)
    np.testing.assert_array_equal(idx, [0, 2, 3, 5])


def test_resample_indices_repeats_last_frame_over_a_gap():
    stamps = np.array([0.0, 0.1, 0.5])
    np.testing.assert_array_equal(windows.resample_indices(stamps, fps=10.0), [0, 1, 1, 1, 1, 2])


def test_segments_is_the_run_length_transcript():
    assert windows.segments(np.array([3, 3, 1, 1, 1, 3])) == [(3, 2), (1, 3), (3, 1)]
    assert windows.segments(np.array([], dtype=int)) == []


def test_future_targets_fill_queries_then_one_none_then_ignore():
    t = windows.future_targets(np.array([2, 2, 2, 0, 1, 1, 1, 1]), num_queries=5, none_class=4)
    np.testing.assert_array_equal(t.classes, [2, 0, 1, 4, -1])
    np.testing.assert_allclose(t.durations, [3 / 8, 1 / 8, 4 / 8, 0, 0])
    np.testing.assert_array_equal(t.valid, [True, True, True, False, False])


def test_future_targets_truncate_long_transcripts_without_none():
    t = windows.future_targets(np.array([0, 1, 0, 1]), num_queries=3, none_class=2)
    np.testing.assert_array_equal(t.classes, [0, 1, 0])
    np.testing.assert_allclose(t.durations, [0.25, 0.25, 0.25])
    assert t.valid.all()


def test_stream_window_puts_padding_after_the_frames_near_the_clip_start():
    np.testing.assert_array_equal(windows.stream_window(2, 5), [0, 1, 2, -1, -1])
    np.testing.assert_array_equal(windows.stream_window(7, 3), [5, 6, 7])


def test_stream_end_range_keeps_the_whole_horizon_inside_the_clip():
    assert windows.stream_end_range(10, 4) == (0, 5)
    assert windows.stream_end_range(4, 4) is None


def test_protocol_window_subsamples_and_left_aligns():
    np.testing.assert_array_equal(windows.protocol_window(3, 5), [0, 1, 2, -1, -1])
    np.testing.assert_array_equal(windows.protocol_window(9, 5), [0, 2, 4, 6, 8])


def test_observed_and_future_lengths_round_the_ratio():
    assert windows.observed_length(50, 0.3) == 15
    assert windows.observed_length(3, 0.2) == 1
    assert windows.future_length(50, 0.5) == 25


def test_gather_labels_maps_padding_to_ignore():
    np.testing.assert_array_equal(windows.gather_labels(np.array([7, 8, 9]), np.array([-1, 0, 2])), [-1, 7, 9])


def test_expand_transcript_rounds_cumulatively_and_last_segment_fills():
    out = windows.expand_transcript([(1, 0.5), (2, 0.25), (3, 0.25)], 10, fill=9)
    # cumulative 0.5 -> 5, 0.75 -> 8 (7.5 rounds to even 8), rest -> 3
    np.testing.assert_array_equal(out, [1, 1, 1, 1, 1, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(windows.expand_transcript([], 3, fill=9), [9, 9, 9])
    # unnormalised fractions are renormalised
    np.testing.assert_array_equal(windows.expand_transcript([(0, 1.0), (1, 1.0)], 4, fill=9), [0, 0, 1, 1])


def test_moc_accumulates_per_class_over_the_set_then_averages_over_present_classes():
    acc = moc.MoCAccumulator(num_classes=4, alphas=(0.2,), horizons=(0.1, 0.5))
    # video 1: truth 0 0 0 1, predicted 0 0 1 1 -> class0 2/3, class1 1/1
    acc.update(0.2, 0.1, np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]))
    # video 2: truth 1 1 2 2, predicted 4 (NONE) 1 2 0 -> class1 1/2, class2 1/2
    acc.update(0.2, 0.1, np.array([4, 1, 2, 0]), np.array([1, 1, 2, 2]))
    # totals: class0 2/3, class1 2/3, class2 1/2, class3 absent
    expected = 100 * (2 / 3 + 2 / 3 + 1 / 2) / 3
    table = acc.table()
    assert table["0.2"]["0.1"] == pytest.approx(expected)
    assert math.isnan(table["0.2"]["0.5"])
    per_class = acc.per_class()[0, 0]
    np.testing.assert_allclose(per_class[:3], [200 / 3, 200 / 3, 50])
    assert math.isnan(per_class[3])


def test_moc_skips_ignored_truth_frames():
    acc = moc.MoCAccumulator(num_classes=2, alphas=(0.3,), horizons=(0.2,))
    acc.update(0.3, 0.2, np.array([0, 1, 1]), np.array([0, -1, 0]))
    assert acc.table()["0.3"]["0.2"] == pytest.approx(50.0)
    assert acc.total.sum() == 2


def test_moc_table_text_has_one_row_per_alpha():
    text = moc.format_table({"0.2": {"0.1": 12.5, "0.5": 3.0}, "0.3": {"0.1": 50.0, "0.5": 1.25}})
    rows = text.splitlines()
    assert rows[2].split() == ["0.2", "12.50", "3.00"]
    assert rows[3].split() == ["0.3", "50.00", "1.25"]

