"""The latest-frame slot (newest wins, superseded frames counted, freshness by an injected
clock) and the stream monitor that tells frames received from frames sent."""

from __future__ import annotations

import math
import threading

import pytest

from grounding_agent.core.frame_slot import FrameSlot, SlotStats, StreamMonitor, StreamRates


class ManualClock:
    """A clock the test moves by hand, so freshness is tested without waiting."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_newest_frame_wins_and_replaced_ones_count_as_superseded() -> None:
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take() == 3
    assert slot.take() is None
    assert slot.put(4) is False
    assert slot.stats == SlotStats(received=4, superseded=2, taken=1)


def test_latest_is_kept_after_take_while_fresh() -> None:
    clock = ManualClock()
    slot: FrameSlot[str] = FrameSlot(clock=clock)
    assert slot.latest(max_age_s=1.0) is None
    assert slot.age_s() is None
    slot.put('frame')
    assert slot.take() == 'frame'
    clock.now += 0.5
    assert slot.latest(max_age_s=1.0) == 'frame'
    assert slot.age_s() == 0.5
    clock.now += 1.0
    assert slot.latest(max_age_s=1.0) is None


def test_put_sets_the_shared_wakeup_event() -> None:
    wakeup = threading.Event()
    front: FrameSlot[int] = FrameSlot(wakeup=wakeup)
    wrist: FrameSlot[int] = FrameSlot(wakeup=wakeup)
    wrist.put(7)
    assert wakeup.is_set()
    assert not front.has_pending()
    assert wrist.has_pending()


def test_clear_forgets_frames_but_keeps_counters() -> None:
    slot: FrameSlot[int] = FrameSlot()
    slot.put(1)
    slot.put(2)
    slot.clear()
    assert slot.take() is None
    assert slot.latest(max_age_s=1e9) is None
    assert slot.stats.received == 2


def test_concurrent_writers_lose_nothing_from_the_counters() -> None:
    slot: FrameSlot[int] = FrameSlot()
    taken: list[int] = []

    def camera(offset: int) -> None:
        for index in range(2000):
            slot.put(offset + index)

    def model() -> None:
        for _ in range(3000):
            item = slot.take()
            if item is not None:
                taken.append(item)

    threads = [threading.Thread(target=camera, args=(k * 10_000,)) for k in range(3)]
    threads.append(threading.Thread(target=model))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    leftover = slot.take()
    stats = slot.stats
    assert stats.received == 6000
    assert stats.taken == len(taken) + (leftover is not None)
    # Every frame was either taken by the model or superseded by a newer one: none vanished.
    assert stats.received == stats.taken + stats.superseded


def test_a_frame_the_model_looked_at_counts_as_used_not_superseded() -> None:
    slot: FrameSlot[str] = FrameSlot()
    slot.put('a')
    slot.note_used('a')  # a command was answered on it without taking it
    slot.note_used('a')  # looked at twice, counted once
    slot.put('b')
    slot.put('c')  # b was never looked at
    assert slot.stats == SlotStats(received=3, superseded=1, taken=0, used=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(monitor: StreamMonitor, clock: Clock, stamps: list[float]) -> None:
    for stamp in stamps:
        clock.now = stamp
        monitor.on_frame(stamp)


def test_the_publisher_rate_is_judged_from_the_stamps_of_frames_that_arrive() -> None:
    clock = Clock()
    monitor = StreamMonitor(window_s=5.0, clock=clock)
    # a 30 Hz camera of which every third frame arrives (pairs back to back, then a gap)
    stamps = [k / 30 for k in range(150) if k % 3 != 2]
    feed(monitor, clock, stamps)
    rates = monitor.rates()
    assert rates.sent_hz == pytest.approx(30.0)
    assert rates.received_hz == pytest.approx(20.0, abs=0.5)
    assert rates.shortfall() == ''  # two thirds arrive: not far below


def test_far_fewer_frames_than_the_camera_sends_is_a_shortfall() -> None:
    clock = Clock()
    monitor = StreamMonitor(window_s=5.0, clock=clock)
    stamps = [k / 30 for k in range(150) if k % 10 in (0, 1)]  # a fifth arrives
    feed(monitor, clock, stamps)
    shortfall = monitor.rates().shortfall()
    assert 'receiving 6.0 Hz of the 30.0 Hz' in shortfall


def test_frames_the_middleware_lost_count_against_those_delivered() -> None:
    clock = Clock()
    monitor = StreamMonitor(window_s=5.0, clock=clock)
    feed(monitor, clock, [0.0, 2.0, 4.0])  # too few spacings to judge the rate
    monitor.on_lost(40)
    rates = monitor.rates()
    assert math.isnan(rates.sent_hz)
    assert (rates.received, rates.lost, monitor.lost_total) == (3, 40, 40)
    assert rates.shortfall() == 'the middleware lost 40 frames and delivered 3'


@pytest.mark.parametrize(
    ('rates', 'short'),
    [
        (StreamRates(received=150, received_hz=30.0, sent_hz=30.0, lost=0), False),
        (StreamRates(received=40, received_hz=8.0, sent_hz=30.0, lost=0), True),
        (StreamRates(received=0, received_hz=0.0, sent_hz=math.nan, lost=0), False),
        (StreamRates(received=10, received_hz=2.0, sent_hz=math.nan, lost=5), False),
        (StreamRates(received=10, received_hz=2.0, sent_hz=math.nan, lost=11), True),
    ],
)
def test_shortfall_table(rates: StreamRates, short: bool) -> None:
    assert bool(rates.shortfall()) is short


def test_old_arrivals_leave_the_window() -> None:
    clock = Clock()
    monitor = StreamMonitor(window_s=5.0, clock=clock)
    feed(monitor, clock, [k / 10 for k in range(50)])
    clock.now = 100.0
    monitor.on_lost(1)
    clock.now = 200.0
    rates = monitor.rates()
    assert (rates.received, rates.lost, monitor.lost_total) == (0, 0, 1)
