"""Match depth images and camera intrinsics to colour frames by time stamp, without ROS.

Depth and CameraInfo arrive on their own topics, a little before or after the colour image they
belong to. Each camera keeps a short buffer of each (bounded, so memory does not grow with the
camera rate) and attaches the nearest one within a tolerance when a colour frame is processed.
This replaces message_filters' ApproximateTime, which is not available here, and unlike it never
holds the colour frame back waiting for depth: a colour frame without matching depth is still
grounded, in 2D.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import CameraIntrinsics, Frame, Stamp

__all__ = ['CameraSync', 'StampedBuffer', 'SyncStats']

ItemT = TypeVar('ItemT')


class StampedBuffer(Generic[ItemT]):
    """The last `capacity` items with their stamps; nearest-stamp lookup. Thread-safe."""

    def __init__(self, *, capacity: int = 30) -> None:
        if capacity < 1:
            raise ValueError(f'capacity must be at least 1, got {capacity}')
        self._items: deque[tuple[int, ItemT]] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, stamp: Stamp, item: ItemT) -> None:
        with self._lock:
            self._items.append((stamp.to_nanoseconds(), item))

    def match(self, stamp: Stamp, *, tolerance_s: float) -> ItemT | None:
        """The item whose stamp is nearest `stamp`, if within `tolerance_s`; else None."""
        target = stamp.to_nanoseconds()
        limit = round(tolerance_s * 1e9)
        best: ItemT | None = None
        best_gap = limit + 1
        with self._lock:
            for item_stamp, item in self._items:
                gap = abs(item_stamp - target)
                if gap < best_gap:
                    best, best_gap = item, gap
        return best

    def latest(self) -> ItemT | None:
        with self._lock:
            return self._items[-1][1] if self._items else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True, slots=True)
class SyncStats:
    """How often colour frames found their depth and intrinsics (for diagnostics)."""

    frames: int = 0
    depth_matched: int = 0
    depth_size_mismatch: int = 0
    intrinsics_matched: int = 0


class CameraSync:
    """Per-camera buffers of depth and intrinsics, joined to colour images into a `Frame`.

    Depth must match by stamp within the tolerance (a stale depth image would put the 3D point
    somewhere the object no longer is). Intrinsics match by stamp too, but fall back to the most
    recent CameraInfo of the same image size: they only change when the camera is reconfigured,
    and many drivers publish CameraInfo at a lower rate than images.
    """

    def __init__(self, *, capacity: int = 30) -> None:
        self._depth: StampedBuffer[npt.NDArray[np.float32]] = StampedBuffer(capacity=capacity)
        self._intrinsics: StampedBuffer[CameraIntrinsics] = StampedBuffer(capacity=capacity)
        self._lock = threading.Lock()
        self._stats = SyncStats()

    def add_depth(self, stamp: Stamp, depth: npt.NDArray[np.float32]) -> None:
        self._depth.add(stamp, depth)

    def add_intrinsics(self, stamp: Stamp, intrinsics: CameraIntrinsics) -> None:
        self._intrinsics.add(stamp, intrinsics)

    @property
    def stats(self) -> SyncStats:
        with self._lock:
            return self._stats

    def buffered(self) -> tuple[int, int]:
        """How many depth images and intrinsics are waiting to be matched."""
        return len(self._depth), len(self._intrinsics)

    def clear(self) -> None:
        self._depth.clear()
        self._intrinsics.clear()

    def assemble(
        self,
        image: npt.NDArray[np.uint8],
        *,
        stamp: Stamp,
        frame_id: str = '',
        camera: str = '',
        tolerance_s: float = 0.05,
    ) -> Frame:
        """A `Frame` of `image` with the depth and intrinsics that belong to it, when known."""
        height, width = image.shape[:2]
        depth = self._depth.match(stamp, tolerance_s=tolerance_s)
        size_mismatch = depth is not None and depth.shape[:2] != (height, width)
        if size_mismatch:
            # Unaligned depth (another resolution) cannot be read at colour pixels.
            depth = None
        intrinsics = self._intrinsics.match(stamp, tolerance_s=tolerance_s)
        if intrinsics is None:
            intrinsics = self._intrinsics.latest()
        if intrinsics is not None and (intrinsics.width, intrinsics.height) not in (
            (width, height),
            (0, 0),
        ):
            intrinsics = None
        with self._lock:
            previous = self._stats
            self._stats = SyncStats(
                frames=previous.frames + 1,
                depth_matched=previous.depth_matched + (depth is not None),
                depth_size_mismatch=previous.depth_size_mismatch + size_mismatch,
                intrinsics_matched=previous.intrinsics_matched + (intrinsics is not None),
            )
        return Frame(
            image=image,
            depth=depth,
            intrinsics=intrinsics,
            stamp=stamp,
            frame_id=frame_id,
            camera=camera,
        )
