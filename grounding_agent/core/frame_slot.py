"""A latest-frame slot: cameras write at their rate, the model reads at its own pace.

An image callback puts each converted frame into its camera's slot and returns at once; the
inference thread takes whatever is newest when it is ready. A frame replaced before the model
looked at it is superseded and counted, so memory stays at one frame per camera whatever the
camera rate. `StreamMonitor` tells how many frames a camera sent from how many arrived.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ['FrameSlot', 'SlotStats', 'StreamMonitor', 'StreamRates']

ItemT = TypeVar('ItemT')


@dataclass(frozen=True, slots=True)
class SlotStats:
    """Counters since the slot was created.

    `received`: frames put; `used`: frames the model looked at (`note_used`); `taken`: frames
    removed with `take`; `superseded`: frames replaced by a newer one before the model looked
    at them (normal while the model is idle or slower than the camera).
    """

    received: int = 0
    superseded: int = 0
    taken: int = 0
    used: int = 0


class FrameSlot(Generic[ItemT]):
    """Holds the newest item not yet taken, and remembers the newest item ever put.

    Thread-safe. `wakeup` (optional) is set on every put so one consumer thread can wait for
    any of several slots.
    """

    def __init__(
        self,
        *,
        wakeup: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._wakeup = wakeup
        self._clock = clock
        self._pending: ItemT | None = None
        self._pending_used = False
        self._latest: ItemT | None = None
        self._latest_time = 0.0
        self._received = 0
        self._superseded = 0
        self._taken = 0
        self._used = 0
        self._last_used: ItemT | None = None

    def put(self, item: ItemT) -> bool:
        """Store `item` as the newest; True when it superseded one the model never looked at."""
        with self._lock:
            superseded = self._pending is not None and not self._pending_used
            self._pending = item
            self._pending_used = False
            self._latest = item
            self._latest_time = self._clock()
            self._received += 1
            self._superseded += superseded
        if self._wakeup is not None:
            self._wakeup.set()
        return superseded

    def take(self) -> ItemT | None:
        """The newest item not taken yet (removing it), or None."""
        with self._lock:
            item, self._pending = self._pending, None
            self._pending_used = False
            self._taken += item is not None
            return item

    def note_used(self, item: ItemT) -> None:
        """Count `item` as looked at by the model (once, however often it is looked at)."""
        with self._lock:
            if item is self._last_used:
                return
            self._last_used = item
            self._used += 1
            if item is self._pending:
                self._pending_used = True

    def has_pending(self) -> bool:
        with self._lock:
            return self._pending is not None

    def latest(self, *, max_age_s: float) -> ItemT | None:
        """The newest item put, taken or not, if it arrived within `max_age_s`; else None."""
        with self._lock:
            if self._latest is None or self._clock() - self._latest_time > max_age_s:
                return None
            return self._latest

    def age_s(self) -> float | None:
        """Seconds since the last put, or None before the first one."""
        with self._lock:
            return None if self._latest is None else self._clock() - self._latest_time

    @property
    def stats(self) -> SlotStats:
        with self._lock:
            return SlotStats(
                received=self._received,
                superseded=self._superseded,
                taken=self._taken,
                used=self._used,
            )

    def clear(self) -> None:
        """Forget the frames (counters stay: they describe the whole run)."""
        with self._lock:
            self._pending = None
            self._pending_used = False
            self._latest = None
            self._last_used = None
            self._latest_time = 0.0


@dataclass(frozen=True, slots=True)
class StreamRates:
    """A camera stream over the monitor's window.

    `received` frames arrived (`received_hz` per second); `lost` frames were reported lost by
    the middleware; `sent_hz` is the publisher's rate judged from the spacing of the stamps that
    arrived (NaN until enough frames arrived). It comes from frames that arrive back to back, so
    it holds while at least a tenth of them do; heavier losses show in `lost` (best effort).
    """

    received: int
    received_hz: float
    sent_hz: float
    lost: int

    def shortfall(self, *, min_share: float = 0.5) -> str:
        """Why far fewer frames arrive than the camera sends ('' = they do not): under
        `min_share` of the publisher's rate, or fewer delivered than lost."""
        if self.sent_hz == self.sent_hz and self.received_hz < min_share * self.sent_hz:
            return (
                f'receiving {self.received_hz:.1f} Hz of the {self.sent_hz:.1f} Hz the camera '
                'sends (judged from the stamps)'
            )
        if self.lost and self.received < self.lost * min_share / (1.0 - min_share):
            return f'the middleware lost {self.lost} frames and delivered {self.received}'
        return ''


class StreamMonitor:
    """Arrival times and header stamps of one camera's frames, and the middleware's lost counts.

    Thread-safe; `clock` is injectable for tests. `rates()` looks at the last `window_s`.
    """

    #: Stamp spacings kept for the publisher-rate estimate.
    _SPACINGS = 120
    #: The spacing percentile taken as the publisher's period (robust to a few lost frames and to
    #: jitter, as long as this share of the frames arrives back to back).
    _PERCENTILE = 0.1

    def __init__(self, *, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._window_s = window_s
        self._arrivals: deque[float] = deque()
        self._lost: deque[tuple[float, int]] = deque()
        self._spacings: deque[float] = deque(maxlen=self._SPACINGS)
        self._last_stamp: float | None = None
        self.lost_total = 0

    def on_frame(self, stamp_s: float) -> None:
        """A frame with header stamp `stamp_s` (seconds) arrived."""
        with self._lock:
            now = self._clock()
            self._arrivals.append(now)
            if self._last_stamp is not None and stamp_s > self._last_stamp:
                self._spacings.append(stamp_s - self._last_stamp)
            if self._last_stamp is None or stamp_s > self._last_stamp:
                self._last_stamp = stamp_s
            self._trim(now)

    def on_lost(self, count: int) -> None:
        """The middleware reported `count` frames lost before they reached the node."""
        if count <= 0:
            return
        with self._lock:
            self._lost.append((self._clock(), count))
            self.lost_total += count

    def _trim(self, now: float) -> None:
        while self._arrivals and now - self._arrivals[0] > self._window_s:
            self._arrivals.popleft()
        while self._lost and now - self._lost[0][0] > self._window_s:
            self._lost.popleft()

    def rates(self) -> StreamRates:
        with self._lock:
            now = self._clock()
            self._trim(now)
            received_hz = len(self._arrivals) / self._window_s
            spacings = sorted(self._spacings)
            sent_hz = float('nan')
            if len(spacings) >= 5:
                period = spacings[int(self._PERCENTILE * (len(spacings) - 1))]
                sent_hz = 1.0 / period if period > 0 else float('nan')
            return StreamRates(
                received=len(self._arrivals),
                received_hz=received_hz,
                sent_hz=sent_hz,
                lost=sum(n for _, n in self._lost),
            )
