"""The stamp plausibility gate as plain logic: far-off stamps are dropped with their reason and
never reset anything; a sustained jump of the whole stream, or the clock going back, does."""
from __future__ import annotations

import pytest

from retf_ros.runtime.stamps import StampDecision, StampGate, StampPolicy

NS = 1_000_000_000
DAY_NS = 86_400 * NS
T0 = 1_800_000_000 * NS  # an epoch-like node clock
PERIOD_NS = NS // 15
MODALITIES = ("rgb", "depth", "skeleton")


def _gate(**kwargs) -> StampGate:
    return StampGate(StampPolicy(**{"max_ahead_s": 0.5, "max_behind_s": 1.0, "jump_frames": 10, **kwargs}))


def _frame_set(gate, stamp_ns: int, now_ns: int, received: float) -> list[StampDecision]:
    return [gate.check(m, stamp_ns, now_ns, received) for m in MODALITIES]


@pytest.mark.parametrize("bad_stamp, reason", [
    (lambda now: now + DAY_NS, "stamp_in_future"),
    (lambda now: 0, "stamp_too_old"),
    (lambda now: now - 5 * NS, "stamp_too_old"),
])
def test_the_issue_reproduction_drops_every_bad_set_and_never_resets(bad_stamp, reason):
    """15 Hz; after each good set, one extra set stamped a day ahead, 0, or 5 s ago."""
    gate = _gate()
    for i in range(60):
        now = T0 + i * PERIOD_NS
        good = _frame_set(gate, now - 20_000_000, now + 1_000_000, i / 15)
        assert all(d.drop is None and d.reset is None for d in good)
        bad = _frame_set(gate, bad_stamp(now), now + 2_000_000, i / 15 + 0.002)
        assert [d.drop for d in bad] == [reason] * 3 and all(d.reset is None for d in bad)
    assert sum(gate.resets.values()) == 0 and gate.offset_ns == 0


def test_small_offsets_within_the_tolerances_are_accepted():
    gate = _gate()
    assert gate.check("rgb", T0 + 400_000_000, T0, 0.0) == StampDecision(offset_s=0.4)
    assert gate.check("rgb", T0 - 900_000_000, T0, 0.0).drop is None
    assert gate.check("rgb", T0 + 600_000_000, T0, 0.0).drop == "stamp_in_future"
    assert gate.check("rgb", T0 - 1_100_000_000, T0, 0.0).drop == "stamp_too_old"


def test_a_sustained_jump_of_the_whole_stream_resets_once_and_is_followed():
    """A bag played without /clock: every input 3 days behind the node's clock."""
    gate = _gate(jump_frames=6)
    offset = -3 * DAY_NS
    decisions = []
    for i in range(4):
        now = T0 + i * PERIOD_NS
        decisions += _frame_set(gate, now + offset, now, i / 15)
    assert [d.drop for d in decisions[:5]] == ["stamp_too_old"] * 5
    assert decisions[5] == StampDecision(reset="stream_jump", offset_s=offset / NS)
    assert all(d == StampDecision(offset_s=offset / NS) for d in decisions[6:])
    assert gate.resets == {"stream_jump": 1} and gate.offset_ns == offset
    # the node's own clock is now the outlier: a frame stamped with it is "in the future"
    assert gate.check("rgb", T0 + NS, T0 + NS, 0.5).drop == "stamp_in_future"


def test_one_input_with_a_wrong_clock_never_moves_the_stream():
    gate = _gate(jump_frames=3)
    for i in range(30):
        now = T0 + i * PERIOD_NS
        assert gate.check("rgb", now, now, i / 15).drop is None
        assert gate.check("depth", now, now, i / 15).drop is None
        for _ in range(4):  # a fast tracker whose clock is a day ahead
            assert gate.check("skeleton", now + DAY_NS, now, i / 15).drop == "stamp_in_future"
    assert not gate.resets


def test_a_run_must_include_every_active_input():
    gate = _gate(jump_frames=3, active_s=0.5)
    gate.check("rgb", T0, T0, 0.0)
    for k in range(5):  # depth alone jumps, rgb still active (seen 0.1 s ago): no reset
        assert gate.check("depth", T0 - DAY_NS, T0, 0.1).drop == "stamp_too_old"
    # rgb stopped long ago: depth is the whole stream now
    assert gate.check("depth", T0 - DAY_NS, T0, 1.0).reset == "stream_jump"


def test_the_clock_going_back_resets_and_restores_the_zero_offset():
    """A looped bag replayed with /clock: clock and stamps start over together."""
    gate = _gate(clock_jump_s=1.0)
    end = T0 + 30 * NS
    assert gate.check("rgb", end, end, 0.0).drop is None
    restarted = gate.check("rgb", T0, T0, 0.1)
    assert restarted == StampDecision(reset="clock_back", offset_s=0.0)
    assert gate.check("rgb", T0 + PERIOD_NS, T0 + PERIOD_NS, 0.2) == StampDecision(offset_s=0.0)
    assert gate.resets == {"clock_back": 1}
    # a small step back of the clock (jitter of a sim clock) is not a restart
    assert gate.check("rgb", T0, T0 + PERIOD_NS - 1000, 0.3).reset is None


def test_a_frame_of_the_old_loop_after_the_clock_went_back_is_dropped_not_used():
    gate = _gate()
    end = T0 + 30 * NS
    gate.check("rgb", end, end, 0.0)
    late = gate.check("depth", end + PERIOD_NS, T0, 0.1)  # in flight when the loop restarted
    assert late.reset == "clock_back" and late.drop == "stamp_in_future"


def test_before_the_clock_starts_every_frame_is_accepted():
    gate = _gate()
    assert gate.check("rgb", T0, 0, 0.0) == StampDecision()
    assert not gate.resets


def test_arrival_ages_are_reported_over_the_window():
    gate = _gate()
    gate.check("rgb", T0 - 300_000_000, T0, 0.0)
    gate.check("rgb", T0 - 100_000_000, T0, 1.0)
    gate.check("rgb", T0 - 5 * NS, T0, 1.5)  # dropped: not an age of a usable frame
    assert gate.max_age_s("rgb", now=1.5) == pytest.approx(0.3)
    assert gate.max_age_s("rgb", now=2.5) == pytest.approx(0.1)
    assert gate.max_age_s("depth", now=2.5) is None


@pytest.mark.parametrize("kwargs, field", [(dict(max_ahead_s=0.0), "max_ahead_s"), (dict(jump_frames=1), "jump_frames"),
                                           (dict(max_behind_s=-1.0), "max_behind_s")])
def test_invalid_policy_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        StampPolicy(**kwargs)
