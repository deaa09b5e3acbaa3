"""A latest-frame slot: cameras write at their rate, the model reads at its own pace.

An image callback puts each converted frame into its camera's slot and returns at once; the
inference thread takes whatever is newest when it is ready. A frame replaced before anyone took
it is dropped and counted, so memory stays at one frame per camera whatever the camera rate, and
the drop count tells the operator how far the model lags behind the camera.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ['FrameSlot', 'SlotStats']

ItemT = TypeVar('ItemT')


@dataclass(frozen=True, slots=True)
class SlotStats:
    """Counters since the slot was created or cleared."""

    received: int = 0
    dropped: int = 0
    taken: int = 0


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
        self._latest: ItemT | None = None
        self._latest_time = 0.0
        self._received = 0
        self._dropped = 0
        self._taken = 0

    def put(self, item: ItemT) -> bool:
        """Store `item` as the newest; True when it replaced one nobody took (a drop)."""
        with self._lock:
            dropped = self._pending is not None
            self._pending = item
            self._latest = item
            self._latest_time = self._clock()
            self._received += 1
            self._dropped += dropped
        if self._wakeup is not None:
            self._wakeup.set()
        return dropped

    def take(self) -> ItemT | None:
        """The newest item not taken yet (removing it), or None."""
        with self._lock:
            item, self._pending = self._pending, None
            self._taken += item is not None
            return item

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
            return SlotStats(received=self._received, dropped=self._dropped, taken=self._taken)

    def clear(self) -> None:
        """Forget the frames (counters stay: they describe the whole run)."""
        with self._lock:
            self._pending = None
            self._latest = None
            self._latest_time = 0.0
