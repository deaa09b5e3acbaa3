"""Class-aware multi-object tracking of detections, built on `trackers.ByteTrackTracker`.

The model answers a few times a second (or once every few seconds on a CPU) while the camera
runs at 15-30 Hz. ByteTrack is therefore updated only with model results, stamped with the time
of the frame the model saw, so its Kalman step covers the real gap. For the camera frames in
between, a box is predicted from the model's own box of the last sighting (the model is trusted
over the filter's blend of it with the prediction): its centre moves by the filter's velocity,
its size stays that of the model's box, and it moves for at most `max_predict_s`. ByteTrack is
not class-aware, so there is one tracker per phrase: a track of one phrase can never be taken
over by another phrase's object.

Our own metadata (phrase, score, appearance embedding, our stable id) rides along per track in a
map keyed by ByteTrack's tracklets (core/bytetrack_adapter.py), since `tracked_objects` carries
none.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from grounding_agent.core.bytetrack_adapter import ByteTrack, Tracklet
from grounding_agent.core.types import Attributes, Box, Detection

__all__ = [
    'PhraseTracker',
    'Track',
    'TrackSet',
    'TrackerConfig',
    'cosine_similarity',
    'preload_tracker',
    'shifted',
]


# A sighting this far (IoU) from its prediction means the motion model was wrong.
_AGREEMENT_IOU = 0.3


class TrackerConfig(BaseModel):
    """Settings of the tracker and of standing groundings.

    `coast_s` is how long a track survives without a matching detection, coasting on its motion
    model (state `occluded`); raising it rides out longer occlusions but lets a stale box linger
    on the planner topic. After `lost_after_s` without a detection a standing grounding is
    `lost`; re-identification can still give a returning object its old id for `reid_memory_s`.
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    coast_s: float = Field(default=3.0, gt=0.0, le=60.0)
    lost_after_s: float = Field(default=3.0, gt=0.0, le=60.0)
    reid_memory_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    reid_threshold: float = Field(
        default=0.85,
        ge=0.0,
        le=1.0,
        description='min cosine similarity of appearance to re-identify',
    )
    min_iou: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description='min IoU between prediction and detection to associate',
    )
    activation_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description='min score of a detection to start a track'
    )
    high_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="ByteTrack's first-stage score threshold"
    )
    reference_rate_hz: float = Field(
        default=30.0, gt=0.0, le=1000.0, description='frame rate ByteTrack tunes its filter for'
    )
    redetect_max_interval_s: float = Field(
        default=1.0, gt=0.0, le=3600.0, description='ask the model at least this often'
    )
    redetect_min_interval_s: float = Field(
        default=0.0, ge=0.0, le=3600.0, description='never ask the model more often'
    )
    confidence_half_life_s: float = Field(
        default=0.5, gt=0.0, le=3600.0, description='track confidence halves without detections'
    )
    redetect_below_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    scene_change_threshold: float = Field(
        default=0.15, ge=0.0, le=1.0, description='mean image change that forces re-detection'
    )
    rejections_to_reject: int = Field(
        default=1, ge=1, le=100, description='model rejections in a row before `rejected`'
    )
    max_predict_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description='predict a box at most this long after the model last saw the object',
    )
    follow_image: bool = Field(
        default=True,
        description='between model answers, place the predicted box by matching the '
        "model's last view of the object in each camera image",
    )
    follow_min_match: float = Field(
        default=0.7,
        ge=-1.0,
        le=1.0,
        description='min normalised correlation of an image match to move the box there',
    )


@dataclass
class Track:
    """One tracked object of one phrase, as the planner sees it."""

    track_id: str
    phrase: str
    box: Box
    score: float
    last_seen_s: float
    embedding: npt.NDArray[np.float32] | None = None
    attributes: Attributes = field(default_factory=dict)
    point: tuple[float, float, float] | None = None
    observed: bool = True  # matched to a detection in the latest model result
    # The motion model's prediction agreed with the latest sighting; when it did not (the object
    # turned, stopped or was hit), the sighting stands still until the next one agrees.
    steady: bool = True

    def to_detection(self) -> Detection:
        return Detection(
            box=self.box,
            phrase=self.phrase,
            score=self.score,
            attributes=self.attributes,
            embedding=self.embedding,
            point=self.point,
            track_id=self.track_id,
        )


def preload_tracker() -> None:
    """Import the tracking library now (about 1 s: supervision, scipy) rather than inside the
    first model answer of a standing query."""
    import trackers  # noqa: F401


def cosine_similarity(a: npt.NDArray[Any] | None, b: npt.NDArray[Any] | None) -> float:
    """Cosine similarity of two appearance features; 0 when either is missing or empty."""
    if a is None or b is None or a.size == 0 or a.shape != b.shape:
        return 0.0
    na = float(np.linalg.norm(a))
    nb = float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb))


class PhraseTracker:
    """ByteTrack for the detections of one phrase, with our metadata and re-identification."""

    def __init__(
        self, phrase: str, config: TrackerConfig, id_source: itertools.count[int]
    ) -> None:
        self.phrase = phrase
        self.config = config
        self._ids = id_source
        self._tracker = ByteTrack(
            lost_track_buffer=max(1, round(config.coast_s * 30.0)),
            frame_rate=config.reference_rate_hz,
            activation_threshold=config.activation_threshold,
            min_iou=config.min_iou,
            high_confidence=config.high_confidence,
        )
        # ByteTrack's tracklet objects -> our stable id (keyed by id(), the object kept to guard
        # against id reuse). Keying by tracklet rather than ByteTrack's id gives a new object its
        # identity on its first sighting; ByteTrack only numbers a track on its second.
        self._stable_of: dict[int, tuple[Tracklet, str]] = {}
        self._tracks: dict[str, Track] = {}
        # our id -> (appearance, time last seen) of tracks ByteTrack has dropped
        self._retired: dict[str, tuple[npt.NDArray[np.float32] | None, float]] = {}
        self._last_update_s: float | None = None

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks.values())

    def update(self, detections: Sequence[Detection], timestamp_s: float) -> list[Track]:
        """Feed one model result (the detections of this phrase in the frame at `timestamp_s`)."""
        if self._last_update_s is not None and timestamp_s <= self._last_update_s:
            return self.predict(timestamp_s)
        self._last_update_s = timestamp_s
        kept = self._tracker.update(
            [d.box for d in detections], [d.score for d in detections], timestamp_s
        )
        expected = {t.track_id: t.box for t in self.predict(timestamp_s)}
        seen: set[str] = set()
        for index, tracklet in kept:
            detection = detections[index]
            stable = self._stable_id(tracklet) if tracklet is not None else None
            if stable is None:
                stable, coasting = self._reidentify(detection, exclude=seen)
                if coasting is not None:
                    # Appearance re-associates a track ByteTrack's IoU step missed (it moved
                    # further than its box between answers): feed the detection to that
                    # track's own filter, so its motion estimate carries on, and drop the
                    # tracklet ByteTrack has just started for it.
                    self._tracker.feed(coasting, detection.box)
                    if tracklet is not None:
                        self._tracker.drop(tracklet)
                    tracklet = coasting
                if stable is None and tracklet is None:
                    continue  # a weak detection ByteTrack did not start a track for
                stable = stable or self._new_id()
                if tracklet is not None:
                    self._stable_of[id(tracklet)] = (tracklet, stable)
                self._retired.pop(stable, None)
            seen.add(stable)
            track = self._observed(stable, detection, timestamp_s)
            prediction = expected.get(stable)
            track.steady = prediction is None or prediction.iou(detection.box) >= _AGREEMENT_IOU
            self._tracks[stable] = track
        self._expire(timestamp_s, seen)
        return self.predict(timestamp_s)

    def predict(self, timestamp_s: float) -> list[Track]:
        """Boxes of every live track at `timestamp_s`, predicted from the last sighting.

        The model's box of the last sighting moves by the filter's centre velocity, at the
        size the model saw (a size velocity would grow or shrink the box with every frame of a
        long gap), for at most `max_predict_s`; it stays where the model saw it when the
        model's answer disagreed with the prediction (the velocity is then in doubt).
        """
        by_stable = {stable: tracklet for tracklet, stable in self._stable_of.values()}
        out: list[Track] = []
        for track in self._tracks.values():
            tracklet = by_stable.get(track.track_id)
            motion = ByteTrack.motion(tracklet) if tracklet is not None else None
            ahead = min(max(0.0, timestamp_s - track.last_seen_s), self.config.max_predict_s)
            if motion is None or ahead == 0.0 or not track.steady:
                out.append(replace(track))
                continue
            frames = ahead * self.config.reference_rate_hz
            vx, vy = motion.centre_velocity
            out.append(replace(track, box=shifted(track.box, vx * frames, vy * frames)))
        return out

    def velocity(self, track_id: str) -> tuple[float, float] | None:
        """The filter's centre velocity of a track, in pixels per second (0 while the motion
        model is in doubt)."""
        track = self._tracks.get(track_id)
        if track is not None and not track.steady:
            return 0.0, 0.0
        tracklet = next((t for t, stable in self._stable_of.values() if stable == track_id), None)
        motion = ByteTrack.motion(tracklet) if tracklet is not None else None
        if motion is None:
            return None
        rate = self.config.reference_rate_hz
        return motion.centre_velocity[0] * rate, motion.centre_velocity[1] * rate

    def _stable_id(self, tracklet: Any) -> str | None:
        entry = self._stable_of.get(id(tracklet))
        return entry[1] if entry is not None and entry[0] is tracklet else None

    def _observed(self, stable: str, detection: Detection, timestamp_s: float) -> Track:
        previous = self._tracks.get(stable)
        embedding = detection.embedding
        if (
            previous is not None
            and previous.embedding is not None
            and embedding is not None
            and previous.embedding.shape == embedding.shape
        ):
            # slow appearance update so one bad frame does not overwrite the identity
            embedding = (0.8 * previous.embedding + 0.2 * embedding).astype(np.float32)
        return Track(
            stable,
            self.phrase,
            detection.box,
            detection.score,
            timestamp_s,
            embedding,
            dict(detection.attributes),
            detection.point,
            True,
        )

    def _reidentify(
        self, detection: Detection, *, exclude: set[str]
    ) -> tuple[str | None, Tracklet | None]:
        """The identity a newly seen object most likely had, and that identity's tracklet when
        it is still coasting (None for a dropped track).

        Candidates are dropped tracks and tracks still coasting unseen (an object that came
        back somewhere its motion model did not expect, or moved further than its own box
        between two answers), whose appearance matches by at least `reid_threshold`.
        """
        candidates = {stable: embedding for stable, (embedding, _seen) in self._retired.items()}
        candidates.update(
            (stable, track.embedding)
            for stable, track in self._tracks.items()
            if stable not in exclude
        )
        best, best_sim = None, self.config.reid_threshold
        for stable, embedding in candidates.items():
            if stable in exclude:
                continue
            sim = cosine_similarity(detection.embedding, embedding)
            if sim >= best_sim:
                best, best_sim = stable, sim
        if best is None or best not in self._tracks:
            return best, None
        coasting = next(
            (tracklet for tracklet, stable in self._stable_of.values() if stable == best), None
        )
        return best, coasting

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _expire(self, now_s: float, seen: set[str]) -> None:
        live = {id(t) for t in self._tracker.tracklets()}
        self._stable_of = {k: v for k, v in self._stable_of.items() if k in live}
        alive = {stable for _tracklet, stable in self._stable_of.values()}
        for stable in list(self._tracks):
            track = self._tracks[stable]
            if stable not in seen:
                track.observed = False
            if stable not in alive and stable not in seen:
                self._retired[stable] = (track.embedding, track.last_seen_s)
                del self._tracks[stable]
        memory = self.config.reid_memory_s
        for stable in [s for s, (_e, seen_s) in self._retired.items() if now_s - seen_s > memory]:
            del self._retired[stable]


def shifted(box: Box, dx: float, dy: float) -> Box:
    """`box` moved by (dx, dy) pixels, same size."""
    return Box(box.x1 + dx, box.y1 + dy, box.x2 + dx, box.y2 + dy)


class TrackSet:
    """Class-aware tracking: one `PhraseTracker` per phrase, ids unique across phrases."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._ids = itertools.count(1)
        self._by_phrase: dict[str, PhraseTracker] = {}

    def tracker(self, phrase: str) -> PhraseTracker:
        if phrase not in self._by_phrase:
            self._by_phrase[phrase] = PhraseTracker(phrase, self.config, self._ids)
        return self._by_phrase[phrase]

    def update(
        self, detections: Sequence[Detection], timestamp_s: float, phrases: Sequence[str] = ()
    ) -> list[Track]:
        """Feed a model result; `phrases` lists phrases asked for but not found (coast them)."""
        grouped: dict[str, list[Detection]] = {p: [] for p in phrases}
        for detection in detections:
            grouped.setdefault(detection.phrase, []).append(detection)
        out: list[Track] = []
        for phrase, group in grouped.items():
            out.extend(self.tracker(phrase).update(group, timestamp_s))
        for phrase, tracker in self._by_phrase.items():
            if phrase not in grouped:
                out.extend(tracker.predict(timestamp_s))
        return out

    def predict(self, timestamp_s: float) -> list[Track]:
        out: list[Track] = []
        for tracker in self._by_phrase.values():
            out.extend(tracker.predict(timestamp_s))
        return out

    def reset(self) -> None:
        self._by_phrase.clear()
