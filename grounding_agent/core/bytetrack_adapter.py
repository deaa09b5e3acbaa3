"""The one place that reaches into the `trackers` library's ByteTrack beyond its public API.

`ByteTrackTracker.update()` returns boxes and ids, which is not enough to follow an object
between model answers. Three private parts are used, and only here: the list of live tracklets
(`ByteTrackTracker.tracks`, to key our identities by tracklet and to drop one), a tracklet's
Kalman state (`state_estimator.kf.state` read through `_POS_IDX` / `_VEL_IDX`, for the velocity
between answers) and `tracklet.update()` (to give a re-identified detection to the tracklet it
belongs to). `TESTED_TRACKERS_VERSION` is the release they were checked against;
test/core/test_bytetrack_adapter.py fails when the installed or pinned release differs, and
`check_internals()` says what no longer holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from grounding_agent.core.types import Box

__all__ = ['TESTED_TRACKERS_VERSION', 'ByteTrack', 'Motion', 'Tracklet', 'check_internals']

TESTED_TRACKERS_VERSION = '2.6.1'

_log = logging.getLogger(__name__)
_version_checked = False

#: A ByteTrack tracklet, opaque outside this module.
Tracklet = Any


@dataclass(frozen=True, slots=True)
class Motion:
    """A tracklet's filtered box and its velocity, in pixels per reference frame."""

    box: Box
    centre_velocity: tuple[float, float]


def installed_trackers_version() -> str:
    return metadata.version('trackers')


def _warn_on_other_version() -> None:
    global _version_checked
    if _version_checked:
        return
    _version_checked = True
    installed = installed_trackers_version()
    if installed != TESTED_TRACKERS_VERSION:
        _log.warning(
            'trackers %s is installed; grounding_agent uses ByteTrack internals checked '
            'against %s only (see grounding_agent/core/bytetrack_adapter.py)',
            installed,
            TESTED_TRACKERS_VERSION,
        )


class ByteTrack:
    """`trackers.ByteTrackTracker` with the few internals the tracker needs, behind methods."""

    def __init__(
        self,
        *,
        lost_track_buffer: int,
        frame_rate: float,
        activation_threshold: float,
        min_iou: float,
        high_confidence: float,
    ) -> None:
        from trackers import ByteTrackTracker

        _warn_on_other_version()
        self._tracker = ByteTrackTracker(
            lost_track_buffer=lost_track_buffer,
            frame_rate=frame_rate,
            track_activation_threshold=activation_threshold,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_confidence,
        )

    def update(
        self, boxes: Sequence[Box], scores: Sequence[float], timestamp_s: float
    ) -> list[tuple[int, Tracklet | None]]:
        """One ByteTrack step; for each detection it kept, (detection index, its tracklet).

        The tracklet is None for a detection ByteTrack kept without a tracklet of its own
        (it does not happen with this release, but the public API allows it).
        """
        tracked = self._tracker.update(_sv_detections(boxes, scores), timestamp=timestamp_s)
        tracklets = self._tracker.tracks
        confirmed = {t.tracker_id: t for t in tracklets if t.tracker_id >= 0}
        # ByteTrack numbers a tracklet only on its second detection: a new one has id -1 and
        # is found by its filter state, which is the detection's box.
        spawned = [t for t in tracklets if t.tracker_id < 0 and t.time_since_update == 0]
        ids = [int(i) for i in tracked.tracker_id] if tracked.tracker_id is not None else []
        out: list[tuple[int, Tracklet | None]] = []
        for index, bytetrack_id in zip(tracked.data.get('index', []), ids):
            if bytetrack_id >= 0:
                out.append((int(index), confirmed.get(bytetrack_id)))
            else:
                out.append((int(index), _spawned_from(spawned, boxes[int(index)])))
        return out

    def tracklets(self) -> list[Tracklet]:
        """The tracklets ByteTrack keeps (confirmed, new and coasting)."""
        return list(self._tracker.tracks)

    def drop(self, tracklet: Tracklet) -> None:
        """Forget one tracklet (one ByteTrack started for a detection we gave to another)."""
        self._tracker.tracks = [t for t in self._tracker.tracks if t is not tracklet]

    @staticmethod
    def feed(tracklet: Tracklet, box: Box) -> None:
        """Correct `tracklet`'s filter with a detection ByteTrack's association missed."""
        tracklet.update(np.asarray(box.to_list(), dtype=np.float64))

    @staticmethod
    def motion(tracklet: Tracklet) -> Motion | None:
        """The tracklet's filtered box and centre velocity (None when the state is unusable)."""
        estimator = tracklet.state_estimator
        state = np.asarray(estimator.kf.state, dtype=np.float64).ravel()
        pos = state[estimator._POS_IDX]
        vel = state[estimator._VEL_IDX]
        if pos.shape != (4,) or vel.shape != (4,) or not np.all(np.isfinite(state)):
            return None
        x1, y1, x2, y2 = pos.tolist()
        box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        velocity = (float(vel[0] + vel[2]) / 2.0, float(vel[1] + vel[3]) / 2.0)
        return Motion(box, velocity)


def _sv_detections(boxes: Sequence[Box], scores: Sequence[float]) -> Any:
    import supervision as sv

    if not boxes:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([b.to_list() for b in boxes], dtype=np.float32),
        confidence=np.array(scores, dtype=np.float32),
        data={'index': np.arange(len(boxes))},
    )


def _spawned_from(spawned: Sequence[Tracklet], box: Box) -> Tracklet | None:
    target = np.array(box.to_list())
    for tracklet in spawned:
        if np.allclose(np.asarray(tracklet.get_state_bbox(), dtype=np.float64), target, atol=1e-3):
            return tracklet
    return None


def check_internals() -> list[str]:
    """What no longer holds of the internals this module relies on ([] = all of it holds)."""
    problems: list[str] = []
    installed = installed_trackers_version()
    if installed != TESTED_TRACKERS_VERSION:
        problems.append(f'trackers {installed} installed, {TESTED_TRACKERS_VERSION} tested')
    tracker = ByteTrack(
        lost_track_buffer=30, frame_rate=30.0, activation_threshold=0.3, min_iou=0.1,
        high_confidence=0.5,
    )  # fmt: skip
    first = Box(100.0, 100.0, 140.0, 140.0)
    kept = tracker.update([first], [0.9], 0.0)
    if len(kept) != 1 or kept[0][1] is None:
        problems.append('a new detection is not found among ByteTrackTracker.tracks')
        return problems
    tracklet = kept[0][1]
    for name in ('state_estimator', 'tracker_id', 'time_since_update', 'update'):
        if not hasattr(tracklet, name):
            problems.append(f'tracklets have no `{name}`')
    estimator = getattr(tracklet, 'state_estimator', None)
    for name in ('kf', '_POS_IDX', '_VEL_IDX'):
        if not hasattr(estimator, name):
            problems.append(f'state estimators have no `{name}`')
    if problems:
        return problems
    motion = ByteTrack.motion(tracklet)
    if motion is None or motion.box.iou(first) < 0.999:
        problems.append('kf.state[_POS_IDX] is not the [x1, y1, x2, y2] box')
    second = Box(110.0, 100.0, 150.0, 140.0)
    kept = tracker.update([second], [0.9], 1.0 / 30.0)
    motion = ByteTrack.motion(kept[0][1]) if kept and kept[0][1] is not None else None
    if motion is None or motion.centre_velocity[0] <= 0.0:
        problems.append('kf.state[_VEL_IDX] is not the box velocity per frame')
    tracker.drop(tracklet)
    if tracklet in tracker.tracklets():
        problems.append('assigning ByteTrackTracker.tracks does not drop a tracklet')
    return problems
