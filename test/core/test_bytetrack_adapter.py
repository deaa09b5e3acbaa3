"""The trackers library's ByteTrack internals this package relies on still hold.

grounding_agent/core/bytetrack_adapter.py reads private parts of `trackers` (the tracklet list,
the Kalman state and its index arrays). A new release may change them without notice, so a
change of the pinned or installed release fails here first, with what to re-check.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from grounding_agent.core.bytetrack_adapter import (
    TESTED_TRACKERS_VERSION,
    ByteTrack,
    check_internals,
)
from grounding_agent.core.types import Box

_CONSTRAINTS = Path(__file__).resolve().parents[2] / 'config' / 'pip' / 'constraints.txt'
_RECHECK = (
    're-check every use of private trackers internals in '
    'grounding_agent/core/bytetrack_adapter.py, then set TESTED_TRACKERS_VERSION'
)


def test_the_pinned_trackers_release_is_the_tested_one() -> None:
    pins = set(re.findall(r'^trackers==(\S+)', _CONSTRAINTS.read_text(), flags=re.MULTILINE))
    assert pins == {TESTED_TRACKERS_VERSION}, f'trackers pinned at {pins}: {_RECHECK}'


def test_the_installed_trackers_release_is_the_tested_one() -> None:
    installed = metadata.version('trackers')
    assert installed == TESTED_TRACKERS_VERSION, f'trackers {installed} installed: {_RECHECK}'


def test_the_internals_hold() -> None:
    assert check_internals() == []


def test_motion_is_the_box_velocity_of_the_centre_per_reference_frame() -> None:
    tracker = ByteTrack(
        lost_track_buffer=30, frame_rate=30.0, activation_threshold=0.3, min_iou=0.1,
        high_confidence=0.5,
    )  # fmt: skip
    for frame in range(10):
        box = Box(100.0 + 3 * frame, 50.0, 140.0 + 3 * frame, 90.0)
        kept = tracker.update([box], [0.9], frame / 30.0)
    assert len(kept) == 1
    motion = ByteTrack.motion(kept[0][1])
    assert motion is not None
    assert motion.box.iou(box) > 0.95
    vx, vy = motion.centre_velocity
    assert 2.0 < vx < 4.0  # 3 px per frame to the right
    assert abs(vy) < 0.5
