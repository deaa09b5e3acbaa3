"""Standing groundings: a `track` command or the `query` parameter, followed frame after frame.

A standing grounding locks on to the object the resolver grounded and follows it with the
tracker, so the planner gets a box on every camera frame while the model answers at its own
pace. States (`TrackState`): `searching` until the first model answer, `tracking` while the model
keeps seeing the locked object, `occluded` while it coasts on its motion model, `lost` after
`lost_after_s` without a sighting, `rejected` when the model says the object is not there.
Every change of state is reported (`state_changed`) so the node can publish it.

Each box says where it comes from (`TargetModel.source`): the model's own box for the frame the
model saw, else a prediction: the last sighting moved by the motion model, placed by matching
the model's last view of the object in the camera image when that match is good (`image`), by
the motion alone when not (`motion`). No box is predicted further than `max_predict_s` after the
last sighting: the object is then reported as not seen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.image_follow import ObjectView
from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    ResultStatus,
    TargetModel,
    TrackState,
)
from grounding_agent.core.tracking import Track, TrackerConfig, TrackSet, shifted
from grounding_agent.core.types import Box, Detection, Query

__all__ = ['StandingGrounding', 'StandingUpdate', 'scene_change']

_LOCK_MIN_IOU = 0.3
# A model box this far (IoU) from the image match of the same frame means following went wrong.
_AGREEMENT_IOU = 0.3
# Image matches kept (a few seconds at 30 Hz): enough to find the frame a late answer is about.
_FOLLOW_HISTORY = 90
# Velocity from image matches this far apart (nearer ones are dominated by the match's step).
_VELOCITY_SPAN_S = 0.2
# Search half a box size around the prediction, one more per 0.5 s since the last look, up to 2.
_SEARCH_GROWTH_PER_S = 2.0
_MAX_SEARCH_MARGIN = 2.0


@dataclass(frozen=True)
class StandingUpdate:
    """What a standing grounding says about one frame."""

    result: GroundingResult
    state_changed: bool


def scene_change(previous: npt.NDArray[np.uint8] | None, current: npt.NDArray[np.uint8]) -> float:
    """Mean absolute change (0..1) between two small grey thumbnails of the same shape."""
    if previous is None or previous.shape != current.shape:
        return 1.0
    diff = np.abs(previous.astype(np.int16) - current.astype(np.int16))
    return float(diff.mean()) / 255.0


def thumbnail(image: npt.NDArray[np.uint8], size: int = 32) -> npt.NDArray[np.uint8]:
    """A size x size grey thumbnail of the image sampled about once per thumbnail pixel (it is
    computed for every camera frame: 0.03 ms for 640x480, where averaging every pixel takes
    0.3 ms; a change of the whole scene shows either way)."""
    step = max(1, min(image.shape[0], image.shape[1]) // size)
    small = cv2.resize(image[::step, ::step], (size, size), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    thumb: npt.NDArray[np.uint8] = np.ascontiguousarray(small, dtype=np.uint8)
    return thumb


def _promote_target(
    detections: list[Detection], result: GroundingResult, confidence: float
) -> list[Detection]:
    """The detection the resolver grounded, scored at least `confidence` for the tracker.

    ByteTrack starts tracks only from detections above its first-stage threshold; a target the
    resolver accepted on a weak detector score (a look-alike the backend half recognises) must
    still be trackable, or the standing grounding could never lock on to it.
    """
    if result.target is None or result.status not in (
        ResultStatus.GROUNDED,
        ResultStatus.ANSWERED,
    ):
        return detections
    box = result.target.to_box()
    best = max(detections, key=lambda d: d.box.iou(box), default=None)
    if best is None or best.box.iou(box) < _LOCK_MIN_IOU or best.score >= confidence:
        return detections
    return [d.with_updates(score=confidence) if d is best else d for d in detections]


class StandingGrounding:
    """One standing query, its tracker, its locked target and its state."""

    def __init__(
        self,
        query: Query,
        *,
        config: TrackerConfig | None = None,
        request_id: str = '',
        camera: str = '',
    ) -> None:
        self.query = query
        self.config = config or TrackerConfig()
        self.request_id = request_id
        self.camera = camera
        self.state = TrackState.SEARCHING
        self.target_id: str | None = None
        self._tracks = TrackSet(self.config)
        self._last_model_s: float | None = None
        self._last_seen_s: float | None = None
        self._sightings = 0  # model answers that saw the locked object
        self._rejections = 0
        self._template: GroundingResult | None = None
        self._last_thumbnail: npt.NDArray[np.uint8] | None = None
        # The locked object as the model last saw it, and where an image match last put it.
        self._view: ObjectView | None = None
        self._followed: deque[tuple[float, Box]] = deque(maxlen=_FOLLOW_HISTORY)
        self._last_observed_s: float | None = None  # the model's or an image match's

    @property
    def phrase(self) -> str:
        return self.query.target.phrase

    # -- scheduling ---------------------------------------------------------------------------

    def needs_model(self, now_s: float, image: npt.NDArray[np.uint8] | None = None) -> bool:
        """Whether the model should be asked about the frame at `now_s`.

        Asked when there is no answer yet, when the locked object has been seen only once (the
        tracker has no velocity for it yet), when the last answer is older than
        `redetect_max_interval_s`, when the locked track's confidence has decayed below
        `redetect_below_confidence`, or when the image changed by more than
        `scene_change_threshold`; never more often than `redetect_min_interval_s`.
        """
        if self._last_model_s is None:
            return True
        since = now_s - self._last_model_s
        if since < self.config.redetect_min_interval_s:
            return False
        if self.target_id is not None and self._sightings < 2:
            return True  # one sighting gives the tracker no velocity yet: look again at once
        if since >= self.config.redetect_max_interval_s:
            return True
        if self.confidence(now_s) < self.config.redetect_below_confidence:
            return True
        if image is not None and self._last_thumbnail is not None:
            change = scene_change(self._last_thumbnail, thumbnail(image))
            if change > self.config.scene_change_threshold:
                return True
        return False

    def confidence(self, now_s: float) -> float:
        """Confidence in the locked target: its score, halving every `confidence_half_life_s`."""
        if self.target_id is None or self._last_seen_s is None:
            return 0.0
        track = self._locked_track(self._tracks.predict(now_s))
        score = track.score if track is not None else 0.0
        age = max(0.0, now_s - self._last_seen_s)
        return float(score * 0.5 ** (age / self.config.confidence_half_life_s))

    # -- inputs -------------------------------------------------------------------------------

    def on_model_result(
        self,
        result: GroundingResult,
        detections: Sequence[Detection],
        now_s: float,
        image: npt.NDArray[np.uint8] | None = None,
    ) -> StandingUpdate:
        """Feed the resolver's answer and the detections it was made from (frame at `now_s`)."""
        self._last_model_s = now_s
        if image is not None:
            self._last_thumbnail = thumbnail(image)
        if result.status is ResultStatus.ERROR:
            # a failing model says nothing about the object: keep coasting, report the error
            update = self.on_camera_frame(now_s)
            return StandingUpdate(
                result.model_copy(update={'track_state': self.state}), update.state_changed
            )
        self._template = result
        own = _promote_target(
            [d for d in detections if d.phrase == self.phrase],
            result,
            self.config.high_confidence,
        )
        tracks = self._tracks.update(own, now_s, phrases=[self.phrase])
        if (
            result.status in (ResultStatus.GROUNDED, ResultStatus.ANSWERED)
            and result.target is not None
        ):
            self._rejections = 0
            # Re-lock only when the locked track is gone: while it is merely hidden, a grounded
            # look-alike must not steal its identity.
            if self._locked_track(tracks) is None:
                self._lock(result.target, tracks)
        elif result.status is ResultStatus.REJECTED:
            locked = self._locked_track(tracks)
            if locked is None or not locked.observed:
                self._rejections += 1
        locked = self._locked_track(tracks)
        if locked is not None and locked.observed:
            self._last_seen_s = now_s
            self._sightings += 1
            self._rebase_following(locked.box, now_s)
            if image is not None and self.config.follow_image:
                self._view = ObjectView(image, locked.box)
        return self._report(now_s, tracks, BoxSource.MODEL)

    def on_camera_frame(
        self, now_s: float, image: npt.NDArray[np.uint8] | None = None
    ) -> StandingUpdate:
        """A camera frame without a model answer: the predicted box for `now_s`, placed by
        matching the object's last view in `image` when given and the match is good."""
        tracks = self._tracks.predict(now_s)
        locked = self._locked_track(tracks)
        if locked is None or self._last_seen_s is None or now_s <= self._last_seen_s:
            return self._report(now_s, tracks, BoxSource.MOTION)
        box, source = self._follow(locked, now_s, image)
        tracks = [replace(t, box=box) if t is locked else t for t in tracks]
        return self._report(now_s, tracks, source)

    # -- internals ----------------------------------------------------------------------------

    def _rebase_following(self, seen: Box, seen_s: float) -> None:
        """The model saw the object in the frame at `seen_s`, which answers late: the camera
        images since may already have been matched further on. If the match in that same frame
        agrees with the model's box, following carries on from the newest match, moved by the
        model's correction and at the model's size; otherwise it starts again from the model's
        box (the model is trusted over the image)."""
        self._last_observed_s = max(seen_s, self._last_observed_s or seen_s)
        at_seen = next((box for t, box in self._followed if t == seen_s), None)
        newest = self._followed[-1] if self._followed else None
        self._followed.clear()
        if (
            at_seen is None
            or newest is None
            or newest[0] <= seen_s
            or at_seen.iou(seen) < _AGREEMENT_IOU
        ):
            self._last_observed_s = seen_s
            return
        (sx, sy), (ax, ay), (nx, ny) = seen.center, at_seen.center, newest[1].center
        cx, cy = nx + sx - ax, ny + sy - ay
        half_w, half_h = seen.width / 2.0, seen.height / 2.0
        self._followed.append((newest[0], Box(cx - half_w, cy - half_h, cx + half_w, cy + half_h)))

    def _image_velocity(self) -> tuple[float, float] | None:
        """Pixels per second between image matches at least `_VELOCITY_SPAN_S` apart."""
        if len(self._followed) < 2:
            return None
        t1, newest = self._followed[-1]
        for t0, older in reversed(self._followed):
            if t1 - t0 >= _VELOCITY_SPAN_S:
                if t1 - t0 > 4 * _VELOCITY_SPAN_S:
                    return None
                (x0, y0), (x1, y1) = older.center, newest.center
                return (x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0)
        return None

    def _follow(
        self, locked: Track, now_s: float, image: npt.NDArray[np.uint8] | None
    ) -> tuple[Box, BoxSource]:
        """The locked object's box between model answers, and where it comes from."""
        predicted = locked.box  # the tracker's: the model's last box moved by its motion
        ahead = now_s - (self._last_seen_s or now_s)
        if self._followed:
            # carry on from the last image match rather than from the older sighting
            matched_s, matched = self._followed[-1]
            ahead = now_s - matched_s
            velocity = self._image_velocity() or self._tracks.tracker(self.phrase).velocity(
                locked.track_id
            )
            vx, vy = velocity or (0.0, 0.0)
            predicted = shifted(matched, vx * ahead, vy * ahead)
        view = self._view
        if image is None or view is None or not self.config.follow_image:
            return predicted, BoxSource.MOTION
        # the longer since the last look, the wider the search (in box sizes)
        margin = min(_MAX_SEARCH_MARGIN, 0.5 + _SEARCH_GROWTH_PER_S * max(0.0, ahead))
        match = view.locate(image, predicted, margin=margin)
        if match is None or match.score < self.config.follow_min_match:
            return predicted, BoxSource.MOTION
        self._followed.append((now_s, match.box))
        self._last_observed_s = now_s
        return match.box, BoxSource.IMAGE

    def _lock(self, target: TargetModel, tracks: Sequence[Track]) -> None:
        box = target.to_box()
        best, best_iou = None, _LOCK_MIN_IOU
        for track in tracks:
            if track.phrase == self.phrase and track.observed:
                iou = track.box.iou(box)
                if iou >= best_iou:
                    best, best_iou = track, iou
        if best is not None and best.track_id != self.target_id:
            self.target_id = best.track_id
            self._sightings = 0

    def _locked_track(self, tracks: Sequence[Track]) -> Track | None:
        if self.target_id is None:
            return None
        return next((t for t in tracks if t.track_id == self.target_id), None)

    def _next_state(self, now_s: float, locked: Track | None, boxed: bool) -> TrackState:
        if self.target_id is None or self._last_seen_s is None:
            if self._rejections >= self.config.rejections_to_reject:
                return TrackState.REJECTED
            return TrackState.SEARCHING
        if locked is not None and locked.observed and boxed:
            return TrackState.TRACKING
        if locked is not None and now_s - self._last_seen_s <= self.config.lost_after_s:
            return TrackState.OCCLUDED
        return TrackState.LOST

    def _boxed(self, now_s: float, locked: Track | None, source: BoxSource) -> bool:
        """Whether a box may be published: the model's or an image match's always, a motion
        prediction up to `max_predict_s` after the last look (the model's or the image's)."""
        if locked is None:
            return False
        if source is not BoxSource.MOTION:
            return True
        last = self._last_observed_s if self._last_observed_s is not None else self._last_seen_s
        return last is not None and now_s - last <= self.config.max_predict_s

    def _report(self, now_s: float, tracks: Sequence[Track], source: BoxSource) -> StandingUpdate:
        locked = self._locked_track(tracks)
        if source is BoxSource.MODEL and not (
            locked is not None and locked.observed and now_s == self._last_seen_s
        ):
            source = BoxSource.MOTION
        boxed = self._boxed(now_s, locked, source)
        state = self._next_state(now_s, locked, boxed)
        changed = state is not self.state
        self.state = state
        return StandingUpdate(self._result(state, locked, boxed, now_s, source), changed)

    def _result(
        self,
        state: TrackState,
        locked: Track | None,
        boxed: bool,
        now_s: float,
        source: BoxSource,
    ) -> GroundingResult:
        template = self._template
        base: dict[str, Any] = {
            'request_id': self.request_id,
            'command': self.query.text,
            'kind': self.query.kind.value,
            'camera': self.camera,
            'track_state': state,
        }
        if template is not None:
            base.update(backend=template.backend, relations=template.relations)
        since = now_s - self._last_seen_s if self._last_seen_s is not None else 0.0
        if state in (TrackState.TRACKING, TrackState.OCCLUDED) and locked is not None:
            name = f'{self.phrase} (track {locked.track_id})'
            if not boxed:
                return GroundingResult(
                    status=ResultStatus.REJECTED,
                    reason=f'{name} not seen by the model for {since:.2f} s nor found in the '
                    'images since; no box is predicted beyond '
                    f'max_predict_s={self.config.max_predict_s:g} s',
                    **base,
                )
            # A prediction is scored with the confidence in it: the model's score of the last
            # sighting, halving every `confidence_half_life_s` since.
            score = locked.score * 0.5 ** (max(0.0, since) / self.config.confidence_half_life_s)
            return GroundingResult(
                status=ResultStatus.GROUNDED,
                reason=f'{name} {_provenance(state, source, since)}',
                target=TargetModel.from_detection(
                    locked.to_detection(), score, source=source, since_seen_s=since
                ),
                **base,
            )
        if state is TrackState.SEARCHING:
            reason = f'searching for {self.phrase}'
        elif state is TrackState.LOST:
            reason = f'lost {self.phrase} (track {self.target_id}); searching again'
        else:
            reason = (
                template.reason
                if template is not None and template.status is ResultStatus.REJECTED
                else f'no {self.phrase} in view'
            )
        return GroundingResult(status=ResultStatus.REJECTED, reason=reason, **base)


def _provenance(state: TrackState, source: BoxSource, since_s: float) -> str:
    """How a published box was made, in words ("seen by the model" only when it was)."""
    if source is BoxSource.MODEL:
        return 'seen by the model in this frame'
    how = 'matched in this image' if source is BoxSource.IMAGE else 'predicted from its motion'
    if state is TrackState.OCCLUDED:
        return (
            f"not seen in the model's latest answer; {how}, "
            f'{since_s:.2f} s after its last sighting'
        )
    return f'{how}, {since_s:.2f} s after the model last saw it'
