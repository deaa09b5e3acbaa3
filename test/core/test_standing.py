"""Standing groundings: states, locking, coasting, rejection and re-detection scheduling."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    ResultStatus,
    TargetModel,
    TrackState,
)
from grounding_agent.core.standing import StandingGrounding, scene_change, thumbnail
from grounding_agent.core.tracking import TrackerConfig
from grounding_agent.core.types import Box, Detection, ObjectRef, Query, QueryKind

PHRASE = 'red cube'
QUERY = Query(
    kind=QueryKind.TRACK,
    text='track the red cube',
    target=ObjectRef(phrase=PHRASE, noun='cube', colour='red', shape='cube'),
    action='track',
)


def _box(cx: float) -> Box:
    return Box(cx - 20, 100, cx + 20, 140)


def _detection(box: Box) -> Detection:
    feature = np.zeros(8, dtype=np.float32)
    feature[1] = 1.0
    return Detection(box=box, phrase=PHRASE, score=0.9, embedding=feature)


def _grounded(box: Box) -> GroundingResult:
    return GroundingResult(
        kind='track',
        status=ResultStatus.GROUNDED,
        reason='red cube (0.90)',
        target=TargetModel(phrase=PHRASE, box=box.to_list(), score=0.9),
    )


def _rejected() -> GroundingResult:
    return GroundingResult(kind='track', status=ResultStatus.REJECTED, reason='no red cube')


def test_states_follow_the_object_through_occlusion_and_loss() -> None:
    standing = StandingGrounding(QUERY, config=TrackerConfig(coast_s=1.0, lost_after_s=1.0))
    assert standing.state is TrackState.SEARCHING
    seen = []
    for step in range(4):
        t = step * 0.2
        box = _box(100 + 10 * step)
        update = standing.on_model_result(_grounded(box), [_detection(box)], t)
        seen.append(update.result.track_state)
    assert seen[-1] is TrackState.TRACKING
    assert update.result.target is not None
    track_id = update.result.target.track_id
    assert track_id is not None
    hidden = standing.on_model_result(_rejected(), [], 1.0)
    assert hidden.result.track_state is TrackState.OCCLUDED
    assert hidden.state_changed
    assert hidden.result.target is not None  # coasting: still a predicted box
    assert hidden.result.target.track_id == track_id
    gone = standing.on_model_result(_rejected(), [], 2.5)
    assert gone.result.track_state is TrackState.LOST
    assert gone.result.target is None


def test_a_returning_object_gets_its_old_identity_back() -> None:
    standing = StandingGrounding(QUERY, config=TrackerConfig(coast_s=0.5, lost_after_s=0.5))
    for step in range(3):
        box = _box(100)
        update = standing.on_model_result(_grounded(box), [_detection(box)], step * 0.2)
    old_id = update.result.target.track_id
    for step in range(3, 20):
        standing.on_model_result(_rejected(), [], step * 0.2)
    assert standing.state is TrackState.LOST
    box = _box(300)
    back = standing.on_model_result(_grounded(box), [_detection(box)], 4.0)
    assert back.result.track_state is TrackState.TRACKING
    assert back.result.target.track_id == old_id


def test_never_seen_object_is_rejected_with_the_resolver_reason() -> None:
    standing = StandingGrounding(QUERY, config=TrackerConfig(rejections_to_reject=2))
    first = standing.on_model_result(_rejected(), [], 0.0)
    assert first.result.track_state is TrackState.SEARCHING
    second = standing.on_model_result(_rejected(), [], 0.5)
    assert second.result.track_state is TrackState.REJECTED
    assert second.state_changed
    assert second.result.status is ResultStatus.REJECTED
    assert 'no red cube' in second.result.reason


def test_camera_frames_between_model_answers_get_predicted_boxes() -> None:
    standing = StandingGrounding(QUERY)
    for step in range(3):
        box = _box(100 + 30 * step)
        standing.on_model_result(_grounded(box), [_detection(box)], step * 0.5)
    between = standing.on_camera_frame(1.25)
    assert between.result.track_state is TrackState.TRACKING
    assert between.result.target is not None
    assert between.result.target.box[0] > 140  # moved on with the object's velocity
    assert not between.state_changed


def test_backend_error_does_not_change_the_track() -> None:
    standing = StandingGrounding(QUERY)
    box = _box(100)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.0)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.2)
    error = GroundingResult(kind='track', status=ResultStatus.ERROR, reason='backend failed')
    update = standing.on_model_result(error, [], 0.4)
    assert update.result.status is ResultStatus.ERROR
    assert standing.state is TrackState.TRACKING


@pytest.mark.parametrize(
    ('elapsed_s', 'image_changed', 'expected'),
    [
        (0.05, False, False),  # fresh answer, confident track, same scene
        (1.5, False, True),  # past the maximum interval
        (0.05, True, True),  # the scene changed a lot
    ],
)
def test_redetection_schedule(elapsed_s: float, image_changed: bool, expected: bool) -> None:
    config = TrackerConfig(redetect_max_interval_s=1.0, confidence_half_life_s=5.0)
    standing = StandingGrounding(QUERY, config=config)
    image = np.full((48, 64, 3), 90, dtype=np.uint8)
    assert standing.needs_model(0.0, image)
    box = _box(100)
    standing.on_model_result(_grounded(box), [_detection(box)], -0.1, image)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.0, image)
    later = np.full_like(image, 250) if image_changed else image
    assert standing.needs_model(elapsed_s, later) is expected


def test_decayed_confidence_triggers_redetection() -> None:
    config = TrackerConfig(redetect_max_interval_s=10.0, confidence_half_life_s=0.1)
    standing = StandingGrounding(QUERY, config=config)
    box = _box(100)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.0)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.1)
    assert standing.confidence(0.1) == pytest.approx(0.9)
    assert standing.needs_model(0.5)


def test_scene_change_of_identical_and_inverted_images() -> None:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    assert scene_change(thumbnail(image), thumbnail(image)) == 0.0
    assert scene_change(thumbnail(image), thumbnail(255 - image)) == pytest.approx(1.0)
    assert scene_change(None, thumbnail(image)) == 1.0


def test_a_newly_locked_object_is_looked_at_again_at_once() -> None:
    config = TrackerConfig(redetect_max_interval_s=10.0, confidence_half_life_s=100.0)
    standing = StandingGrounding(QUERY, config=config)
    box = _box(100)
    standing.on_model_result(_grounded(box), [_detection(box)], 0.0)
    assert standing.state is TrackState.TRACKING
    assert standing.needs_model(0.05)  # one sighting: no velocity yet
    moved = _box(104)
    standing.on_model_result(_grounded(moved), [_detection(moved)], 0.1)
    assert not standing.needs_model(0.15)  # two sightings, confident, fresh


def test_a_target_grounded_on_a_weak_detection_is_still_tracked() -> None:
    # The resolver accepted a box the detector scored only 0.2 (below ByteTrack's first stage).
    standing = StandingGrounding(QUERY)
    box = _box(100)
    weak = Detection(box=box, phrase=PHRASE, score=0.2)
    grounded = GroundingResult(
        kind='track',
        status=ResultStatus.GROUNDED,
        reason='red cube (0.20)',
        target=TargetModel(phrase=PHRASE, box=box.to_list(), score=0.2),
    )
    update = standing.on_model_result(grounded, [weak], 0.0)
    assert update.result.track_state is TrackState.TRACKING
    assert update.result.target is not None
    assert update.result.target.track_id is not None


def _locked_and_moving(config: TrackerConfig) -> tuple[StandingGrounding, Box]:
    """A standing grounding that saw the cube moving right by 10 px per 0.1 s."""
    standing = StandingGrounding(QUERY, config=config)
    for step in range(4):
        box = _box(100 + 10 * step)
        standing.on_model_result(_grounded(box), [_detection(box)], step * 0.1)
    return standing, box


def test_each_box_says_whether_the_model_saw_it() -> None:
    standing, last = _locked_and_moving(TrackerConfig(follow_image=False))
    seen = standing.on_model_result(_grounded(last), [_detection(last)], 0.4)
    predicted = standing.on_camera_frame(0.5).result
    assert seen.result.target is not None
    assert seen.result.target.source is BoxSource.MODEL
    assert seen.result.target.since_seen_s == 0.0
    assert 'seen by the model' in seen.result.reason
    assert predicted.target is not None
    assert predicted.target.source is BoxSource.MOTION
    assert predicted.target.since_seen_s == pytest.approx(0.1)
    assert 'seen by the model' not in predicted.reason
    assert predicted.target.score < seen.result.target.score


def test_no_box_is_predicted_beyond_max_predict_s() -> None:
    standing, _last = _locked_and_moving(TrackerConfig(max_predict_s=0.5, lost_after_s=3.0))
    within = standing.on_camera_frame(0.3 + 0.4).result
    beyond = standing.on_camera_frame(0.3 + 0.6).result
    assert within.target is not None
    assert beyond.target is None
    assert beyond.status is ResultStatus.REJECTED
    assert beyond.track_state is TrackState.OCCLUDED
    assert 'not seen by the model' in beyond.reason


def test_the_model_is_trusted_over_the_prediction() -> None:
    standing, last = _locked_and_moving(TrackerConfig(follow_image=False))
    # the cube stopped and went back: the model's box is published as it is, and the next
    # predictions start from it
    back = _box(last.center[0] - 25)
    update = standing.on_model_result(_grounded(back), [_detection(back)], 0.4)
    assert update.result.target is not None
    assert Box.from_list(update.result.target.box) == back
    after = standing.on_camera_frame(0.4 + 1 / 30).result
    assert after.target is not None
    assert Box.from_list(after.target.box).iou(back) > 0.8


def _table_with_cube(cx: float) -> np.ndarray:
    """A textured table with a shaded red square of 40 px centred at (cx, 120)."""
    rng = np.random.default_rng(int(cx))
    image = rng.integers(90, 140, size=(240, 320, 3), dtype=np.uint8)
    x1 = round(cx) - 20
    ramp = np.linspace(150, 255, 40).astype(np.uint8)
    image[100:140, x1 : x1 + 40, 0] = ramp[None, :]
    image[100:140, x1 : x1 + 40, 1:] = 30
    return image


def test_camera_images_keep_the_box_on_an_object_that_turned() -> None:
    config = TrackerConfig(max_predict_s=2.0)
    standing = StandingGrounding(QUERY, config=config)
    for step in range(4):  # moving right at 100 px/s
        box = _box(100 + 10 * step)
        standing.on_model_result(
            _grounded(box), [_detection(box)], step * 0.1, _table_with_cube(100 + 10 * step)
        )
    # then it turns back at the same speed; the motion model alone would carry on right
    sources = []
    for frame in range(1, 16):
        t = 0.3 + frame / 30
        cx = 130 - 100 * frame / 30
        update = standing.on_camera_frame(t, _table_with_cube(cx)).result
        assert update.target is not None
        sources.append(update.target.source)
        assert Box.from_list(update.target.box).iou(_box(cx)) > 0.6, frame
    assert set(sources) == {BoxSource.IMAGE}
    blind = StandingGrounding(QUERY, config=config)
    for step in range(4):
        box = _box(100 + 10 * step)
        blind.on_model_result(_grounded(box), [_detection(box)], step * 0.1)
    drifted = blind.on_camera_frame(0.3 + 15 / 30).result.target
    assert drifted is not None
    assert Box.from_list(drifted.box).iou(_box(130 - 50)) == 0.0


def test_a_late_model_answer_does_not_throw_following_back_to_its_frame() -> None:
    standing = StandingGrounding(QUERY, config=TrackerConfig(max_predict_s=2.0))
    for step in range(4):  # moving right at 100 px/s
        cx = 100 + 10 * step
        standing.on_model_result(
            _grounded(_box(cx)), [_detection(_box(cx))], step * 0.1, _table_with_cube(cx)
        )
    t0 = 0.3
    for frame in range(1, 11):
        cx = 130 + 100 * frame / 30
        standing.on_camera_frame(t0 + frame / 30, _table_with_cube(cx))
    # the model's answer about frame 5 arrives only now, after frame 10 was published
    cx5 = 130 + 100 * 5 / 30
    standing.on_model_result(
        _grounded(_box(cx5)), [_detection(_box(cx5))], t0 + 5 / 30, _table_with_cube(cx5)
    )
    cx11 = 130 + 100 * 11 / 30
    update = standing.on_camera_frame(t0 + 11 / 30, _table_with_cube(cx11)).result
    assert update.target is not None
    assert update.target.source is BoxSource.IMAGE
    assert Box.from_list(update.target.box).iou(_box(cx11)) > 0.7
    assert update.target.since_seen_s == pytest.approx(6 / 30, abs=1e-3)


def test_image_matches_keep_a_box_after_max_predict_s_motion_alone_does_not() -> None:
    config = TrackerConfig(max_predict_s=0.2)
    standing, _last = _locked_and_moving(config)
    standing.on_model_result(_grounded(_box(130)), [_detection(_box(130))], 0.3,
                             _table_with_cube(130))  # fmt: skip
    followed = standing.on_camera_frame(0.3 + 0.5, _table_with_cube(130)).result
    assert followed.target is not None
    assert followed.target.source is BoxSource.IMAGE
    blind = standing.on_camera_frame(0.3 + 0.8).result  # no image: motion alone, 0.3 s on
    assert blind.target is None
