"""Tracker behaviour on synthetic motion: crossings, occlusion, coasting, class-awareness."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.core.tracking import TrackerConfig, TrackSet, cosine_similarity
from grounding_agent.core.types import Box, Detection

RATE_HZ = 30.0


def _box_at(cx: float, cy: float, size: float = 40.0) -> Box:
    return Box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def _colour_feature(hue_bin: int) -> np.ndarray:
    feature = np.full(16, 0.01, dtype=np.float32)
    feature[hue_bin] = 1.0
    return feature


def _detection(phrase: str, box: Box, hue_bin: int, score: float = 0.9) -> Detection:
    return Detection(box=box, phrase=phrase, score=score, embedding=_colour_feature(hue_bin))


def _track_of(tracks, box: Box):
    return max(tracks, key=lambda t: t.box.iou(box))


def test_identity_kept_through_a_crossing_of_same_phrase_objects() -> None:
    tracker = TrackSet(TrackerConfig())
    ids_a: set[str] = set()
    ids_b: set[str] = set()
    for frame in range(0, 120, 5):  # model on every 5th frame
        t = frame / RATE_HZ
        a = _box_at(100 + 4 * frame, 200)  # moving right
        b = _box_at(580 - 4 * frame, 215)  # moving left, crosses a around frame 60
        tracks = tracker.update([_detection('cube', a, 1), _detection('cube', b, 9)], t)
        if frame >= 10:
            ids_a.add(_track_of(tracks, a).track_id)
            ids_b.add(_track_of(tracks, b).track_id)
    assert len(ids_a) == 1
    assert len(ids_b) == 1
    assert ids_a != ids_b


def test_box_on_every_camera_frame_while_the_model_runs_at_a_tenth_of_the_rate() -> None:
    tracker = TrackSet(TrackerConfig())
    missing = 0
    errors = []
    for frame in range(200):
        t = frame / RATE_HZ
        truth = _box_at(100 + 2 * frame, 240)
        if frame % 10 == 0:
            tracks = tracker.update([_detection('ball', truth, 3)], t)
        else:
            tracks = tracker.predict(t)
        if frame < 20:
            continue  # the first two model answers establish the motion
        if not tracks:
            missing += 1
            continue
        errors.append(_track_of(tracks, truth).box.iou(truth))
    assert missing == 0
    assert min(errors) > 0.6  # extrapolated boxes follow the moving object


def test_identity_survives_a_two_second_occlusion() -> None:
    tracker = TrackSet(TrackerConfig(coast_s=3.0))
    first_id = None
    for frame in range(0, 240, 5):
        t = frame / RATE_HZ
        truth = _box_at(100 + 1.5 * frame, 240)
        hidden = 60 <= frame < 120  # 2 s without detections
        detections = [] if hidden else [_detection('cup', truth, 5)]
        tracks = tracker.update(detections, t, phrases=['cup'])
        if frame == 50:
            first_id = _track_of(tracks, truth).track_id
        if frame >= 125:
            assert _track_of(tracks, truth).track_id == first_id


def test_reidentification_gives_a_returning_object_its_old_id() -> None:
    tracker = TrackSet(TrackerConfig(coast_s=0.5, reid_memory_s=30.0, reid_threshold=0.8))
    t = 0.0
    for _ in range(4):
        tracks = tracker.update([_detection('cube', _box_at(100, 100), 2)], t)
        t += 0.2
    old_id = tracks[0].track_id
    for _ in range(15):  # gone for 3 s: ByteTrack drops the track
        assert tracker.update([], t, phrases=['cube']) == [] or t < 1.5
        t += 0.2
    returned = tracker.update([_detection('cube', _box_at(400, 300), 2)], t)
    assert [tr.track_id for tr in returned] == [old_id]


def test_a_different_looking_object_does_not_inherit_an_old_id() -> None:
    tracker = TrackSet(TrackerConfig(coast_s=0.5, reid_threshold=0.8))
    t = 0.0
    for _ in range(4):
        old = tracker.update([_detection('cube', _box_at(100, 100), 2)], t)
        t += 0.2
    for _ in range(15):
        tracker.update([], t, phrases=['cube'])
        t += 0.2
    for _ in range(2):
        new = tracker.update([_detection('cube', _box_at(400, 300), 12)], t)
        t += 0.2
    assert new
    assert new[0].track_id != old[0].track_id


def test_tracks_of_one_phrase_are_never_taken_over_by_another_phrase() -> None:
    tracker = TrackSet(TrackerConfig())
    same_box = _box_at(200, 200)
    ids: dict[str, set[str]] = {'red cube': set(), 'blue ball': set()}
    for step in range(14):
        t = step * 0.1
        red = _detection('red cube', same_box, 1)
        ball_x = max(200.0, 400.0 - 25.0 * step)  # rolls onto the cube's box and stays there
        tracks = tracker.update([red, _detection('blue ball', _box_at(ball_x, 200), 9)], t)
        for track in tracks:
            ids[track.phrase].add(track.track_id)
    assert len(ids['red cube']) == 1
    assert len(ids['blue ball']) == 1
    assert ids['red cube'] != ids['blue ball']


@pytest.mark.parametrize(
    ('a', 'b', 'expected'),
    [
        (np.array([1.0, 0.0]), np.array([1.0, 0.0]), 1.0),
        (np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.0),
        (np.array([0.0, 0.0]), np.array([1.0, 0.0]), 0.0),
        (None, np.array([1.0]), 0.0),
        (np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 0.0),
    ],
)
def test_cosine_similarity(a, b, expected) -> None:
    assert cosine_similarity(a, b) == pytest.approx(expected)


def test_an_object_back_where_its_coasting_track_did_not_expect_keeps_its_id() -> None:
    tracker = TrackSet(TrackerConfig(coast_s=5.0))
    t = 0.0
    for step in range(4):  # moving right, then it leaves the view
        tracks = tracker.update([_detection('cube', _box_at(100 + 20 * step, 100), 2)], t)
        t += 0.2
    old_id = tracks[0].track_id
    for _ in range(5):  # 1 s unseen: still coasting, not dropped
        tracker.update([], t, phrases=['cube'])
        t += 0.2
    # it comes back from the other side, nowhere near the coasting prediction
    back = tracker.update([_detection('cube', _box_at(500, 300), 2)], t)
    assert [tr.track_id for tr in back] == [old_id]
    assert len(tracker.tracker('cube')._tracker.tracklets()) == 1  # the stale tracklet is gone


def test_predicted_boxes_keep_the_size_the_model_saw() -> None:
    # The object grows in the model's answers; between answers its box moves but keeps the
    # size of the latest answer, however long the gap.
    tracker = TrackSet(TrackerConfig(max_predict_s=5.0))
    for step in range(5):
        size = 40.0 + 4 * step
        last = _box_at(100 + 10 * step, 200, size)
        tracker.update([_detection('ball', last, 3)], step * 0.1)
    for ahead in (0.05, 0.5, 2.0):
        (track,) = tracker.predict(0.4 + ahead)
        assert track.box.width == pytest.approx(last.width)
        assert track.box.height == pytest.approx(last.height)
        assert track.box.center[0] > last.center[0]  # still moving right


def test_prediction_stops_at_max_predict_s() -> None:
    tracker = TrackSet(TrackerConfig(max_predict_s=0.5))
    for step in range(5):
        tracker.update([_detection('ball', _box_at(100 + 10 * step, 200), 3)], step * 0.1)
    (at_cap,) = tracker.predict(0.4 + 0.5)
    (beyond,) = tracker.predict(0.4 + 3.0)
    assert beyond.box == at_cap.box
