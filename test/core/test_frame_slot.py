"""The latest-frame slot: newest wins, drops counted, freshness by an injected clock."""

from __future__ import annotations

import threading

from grounding_agent.core.frame_slot import FrameSlot, SlotStats


class ManualClock:
    """A clock the test moves by hand, so freshness is tested without waiting."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_newest_frame_wins_and_replaced_ones_count_as_drops() -> None:
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.take() == 3
    assert slot.take() is None
    assert slot.put(4) is False
    assert slot.stats == SlotStats(received=4, dropped=2, taken=1)


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
    # Every frame was either taken by the model or dropped by a newer one: none vanished.
    assert stats.received == stats.taken + stats.dropped
