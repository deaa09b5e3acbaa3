"""Depth and intrinsics joined to colour frames by stamp, within a tolerance, bounded."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.core.stamp_matching import CameraSync, StampedBuffer
from grounding_agent.core.types import CameraIntrinsics, Stamp

IMAGE = np.zeros((4, 6, 3), dtype=np.uint8)
INTRINSICS = CameraIntrinsics(fx=5.0, fy=5.0, cx=3.0, cy=2.0, width=6, height=4)


@pytest.mark.parametrize(
    ('query_s', 'tolerance_s', 'expected'),
    [
        (10.0, 0.0, 'a'),
        (10.02, 0.05, 'a'),
        (10.06, 0.05, 'b'),  # nearer to 10.1 than to 10.0
        (10.3, 0.05, None),
        (9.9, 0.05, None),
        (10.2, 0.1, 'b'),
    ],
)
def test_nearest_stamp_within_tolerance(
    query_s: float, tolerance_s: float, expected: str | None
) -> None:
    buffer: StampedBuffer[str] = StampedBuffer(capacity=4)
    buffer.add(Stamp.from_seconds(10.0), 'a')
    buffer.add(Stamp.from_seconds(10.1), 'b')
    assert buffer.match(Stamp.from_seconds(query_s), tolerance_s=tolerance_s) == expected


def test_buffer_is_bounded_and_forgets_the_oldest() -> None:
    buffer: StampedBuffer[int] = StampedBuffer(capacity=3)
    for second in range(10):
        buffer.add(Stamp(sec=second), second)
    assert len(buffer) == 3
    assert buffer.match(Stamp(sec=0), tolerance_s=0.5) is None
    assert buffer.match(Stamp(sec=8), tolerance_s=0.5) == 8
    assert buffer.latest() == 9


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StampedBuffer(capacity=0)


def test_frame_gets_depth_and_intrinsics_of_its_stamp() -> None:
    sync = CameraSync()
    near = np.full((4, 6), 1.5, dtype=np.float32)
    sync.add_depth(Stamp(sec=5), np.full((4, 6), 9.0, dtype=np.float32))
    sync.add_depth(Stamp(sec=6), near)
    sync.add_intrinsics(Stamp(sec=6), INTRINSICS)
    frame = sync.assemble(
        IMAGE,
        stamp=Stamp(sec=6, nanosec=10_000_000),
        frame_id='cam',
        camera='front',
        tolerance_s=0.05,
    )
    assert frame.depth is near
    assert frame.intrinsics == INTRINSICS
    assert (frame.stamp, frame.frame_id, frame.camera) == (
        Stamp(sec=6, nanosec=10_000_000),
        'cam',
        'front',
    )
    assert sync.stats.depth_matched == 1


def test_stale_depth_is_not_attached_but_latest_intrinsics_are() -> None:
    sync = CameraSync()
    sync.add_depth(Stamp(sec=1), np.ones((4, 6), dtype=np.float32))
    sync.add_intrinsics(Stamp(sec=1), INTRINSICS)
    frame = sync.assemble(IMAGE, stamp=Stamp(sec=3), tolerance_s=0.05)
    assert frame.depth is None
    assert frame.intrinsics == INTRINSICS


def test_depth_and_intrinsics_of_another_resolution_are_not_attached() -> None:
    sync = CameraSync()
    sync.add_depth(Stamp(sec=1), np.ones((8, 12), dtype=np.float32))
    sync.add_intrinsics(Stamp(sec=1), CameraIntrinsics(1.0, 1.0, 6.0, 4.0, 12, 8))
    frame = sync.assemble(IMAGE, stamp=Stamp(sec=1), tolerance_s=0.05)
    assert frame.depth is None
    assert frame.intrinsics is None
    assert sync.stats.depth_size_mismatch == 1


def test_without_any_depth_the_frame_is_plain_2d() -> None:
    frame = CameraSync().assemble(IMAGE, stamp=Stamp(sec=1))
    assert frame.depth is None
    assert frame.intrinsics is None
    assert frame.image is IMAGE
