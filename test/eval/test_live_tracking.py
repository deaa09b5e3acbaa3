"""Scoring live planner results against the truth of the frames they answer."""

from __future__ import annotations

import math

import pytest

from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    ResultStatus,
    StampModel,
    TargetModel,
    TrackState,
)
from grounding_agent.core.types import Box
from grounding_agent.eval.live_tracking import (
    LiveFrame,
    ReceivedResult,
    percentile,
    score_live,
    target_box,
)

TRUTH = Box(100, 100, 140, 140)


def _frame(index: int, visible: bool = True) -> LiveFrame:
    return LiveFrame((1000 + index, 0), TRUTH if visible else None)


def _boxed(
    index: int,
    box: Box,
    *,
    source: BoxSource = BoxSource.MOTION,
    track_id: str = '1',
    model_ms: float | None = None,
    delay_s: float = 0.01,
) -> ReceivedResult:
    result = GroundingResult(
        request_id='standing',
        status=ResultStatus.GROUNDED,
        reason='r',
        stamp=StampModel(sec=1000 + index),
        target=TargetModel(
            phrase='cube', box=box.to_list(), score=0.9, track_id=track_id, source=source
        ),
        track_state=TrackState.TRACKING,
        latency_ms={} if model_ms is None else {'model': model_ms},
    )
    return ReceivedResult(1000 + index + delay_s, result)


def test_frames_boxes_and_the_object_are_counted_on_visible_frames_only() -> None:
    frames = [_frame(0), _frame(1), _frame(2), _frame(3, visible=False)]
    received = [
        _boxed(0, TRUTH),
        _boxed(1, Box(300, 300, 340, 340)),  # off the object
        _boxed(3, TRUTH),  # the object is not visible: not counted as visible
    ]
    score = score_live(frames, received)
    assert (score.frames, score.visible_frames, score.box_frames) == (4, 3, 2)
    assert score.on_object_frames == 1
    assert score.coverage == pytest.approx(2 / 3)
    assert score.on_object == pytest.approx(1 / 2)


def test_the_latest_box_for_a_frame_counts() -> None:
    frames = [_frame(0)]
    received = [
        _boxed(0, Box(300, 300, 340, 340), delay_s=0.01),
        _boxed(0, TRUTH, source=BoxSource.MODEL, model_ms=30.0, delay_s=0.05),
    ]
    score = score_live(frames, received)
    assert score.on_object_frames == 1
    assert score.model_calls == 1
    assert score.model_ms == [30.0]
    assert score.on_object_by_source == {'motion': (0, 1), 'model': (1, 1)}
    assert score.latency_ms['motion'] == [pytest.approx(10.0)]
    assert score.latency_ms['model'] == [pytest.approx(50.0)]
    assert score.predicted_latency_ms() == [pytest.approx(10.0)]


def test_identity_changes_and_results_for_unknown_stamps() -> None:
    frames = [_frame(i) for i in range(4)]
    received = [
        _boxed(0, TRUTH, track_id='1'),
        _boxed(1, TRUTH, track_id='2'),
        _boxed(2, TRUTH, track_id='2'),
        _boxed(3, TRUTH, track_id='1'),
        _boxed(9, TRUTH, track_id='7'),  # a frame that was never sent
    ]
    score = score_live(frames, received)
    assert score.id_changes == 2
    assert score.results == 4


def test_a_rejected_result_is_no_box() -> None:
    rejected = GroundingResult(
        request_id='standing',
        status=ResultStatus.REJECTED,
        reason='not seen',
        stamp=StampModel(sec=1000),
        track_state=TrackState.OCCLUDED,
    )
    score = score_live([_frame(0)], [ReceivedResult(1000.02, rejected)])
    assert score.box_frames == 0
    assert math.isnan(score.on_object)


def test_target_box_needs_enough_of_the_object_visible() -> None:
    truth = {'objects': [{'name': 'cube', 'box': [1, 2, 3, 4], 'visible_fraction': 0.2}]}
    assert target_box(truth, 'cube', 0.25) is None
    assert target_box(truth, 'cube', 0.1) == Box(1, 2, 3, 4)
    assert target_box(truth, 'ball', 0.1) is None


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 95))
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
