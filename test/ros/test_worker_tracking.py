"""The worker's standing query with the tracker: model at its schedule, a box on every frame."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from grounding_agent.core.agent import Resolution
from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    ResultStatus,
    TargetModel,
    TrackState,
)
from grounding_agent.core.tracking import TrackerConfig
from grounding_agent.core.types import Box, Detection, Frame, ObjectRef, Query, QueryKind, Stamp
from grounding_agent.ros.worker import (
    STANDING_REQUEST_ID,
    CameraFeed,
    CapturedImage,
    InferenceWorker,
    WorkerSettings,
)

PHRASE = 'red cube'


class MovingObjectAgent:
    """Test double for GroundingAgent: a red cube moving right 30 px per second of frame time,
    visible until `gone_after_s`. Counts model calls."""

    backend_name = 'moving_object_agent'

    def __init__(self, gone_after_s: float = 1e9) -> None:
        self.calls: list[float] = []
        self.gone_after_s = gone_after_s

    def box_at(self, t: float) -> Box:
        x = 100.0 + 30.0 * t
        return Box(x, 100.0, x + 40.0, 140.0)

    def resolve_query_with_detections(
        self, query: Query, frame: Frame, *, request_id: str = ''
    ) -> Resolution:
        t = frame.stamp.to_seconds()
        self.calls.append(t)
        if t > self.gone_after_s:
            return Resolution(
                GroundingResult(kind='track', status=ResultStatus.REJECTED, reason='no red cube'),
                [],
            )
        box = self.box_at(t)
        detection = Detection(box=box, phrase=PHRASE, score=0.9)
        result = GroundingResult(
            kind='track',
            command=query.text,
            status=ResultStatus.GROUNDED,
            reason='red cube (0.90)',
            target=TargetModel.from_detection(detection),
        )
        return Resolution(result, [detection])

    def handle_command(self, command, frame, *, request_id='', camera=''):  # type: ignore[no-untyped-def]
        raise AssertionError('no commands in these tests')


def _parser(text: str) -> Query:
    return Query(kind=QueryKind.TRACK, text=text, target=ObjectRef(phrase=PHRASE, noun='cube'))


class TrackingRig:
    def __init__(self, agent: MovingObjectAgent, tracking: TrackerConfig) -> None:
        self.now = 0.0
        wakeup = threading.Event()
        self.agent = agent
        self.feed = CameraFeed('front', wakeup=wakeup, clock=lambda: self.now)
        self.settings = WorkerSettings(
            standing_query='track the red cube', standing_camera='front', tracking=tracking
        )
        self.published: list[GroundingResult] = []
        self.worker = InferenceWorker(
            agent=agent,
            cameras={'front': self.feed},
            publish=lambda result, frame: self.published.append(result),
            settings=lambda: self.settings,
            wakeup=wakeup,
            clock=lambda: self.now,
            parser=_parser,
        )

    def camera_frame(self, t: float) -> GroundingResult | None:
        """What the node does for one image: slot, tracker box; then one worker step."""
        self.now = t
        seconds = int(t)
        stamp = Stamp(seconds, round((t - seconds) * 1e9))
        captured = CapturedImage(np.zeros((8, 8, 3), np.uint8), stamp, 'front_optical', t)
        self.feed.slot.put(captured)
        tracked = self.worker.on_camera_image('front', captured)
        self.worker.step()
        return tracked


def test_a_box_on_every_frame_while_the_model_runs_on_a_schedule() -> None:
    agent = MovingObjectAgent()
    rig = TrackingRig(agent, TrackerConfig(redetect_max_interval_s=0.5, confidence_half_life_s=5))
    tracked = [rig.camera_frame(i / 10.0) for i in range(30)]  # 3 s at 10 Hz
    # the model was asked on the first two frames (a new track needs a velocity), then every
    # 0.5 s of frame time, not on every frame
    assert agent.calls == pytest.approx([0.0, 0.1, 0.6, 1.1, 1.6, 2.1, 2.6])
    # from the first answer on, every camera frame carries the tracker's box for that frame
    boxes = [t for t in tracked[1:] if t is not None]
    assert len(boxes) == 29
    assert {b.track_state for b in boxes} == {TrackState.TRACKING}
    assert len({b.target.track_id for b in boxes}) == 1
    for i, result in enumerate(tracked[1:], start=1):
        assert result.stamp.sec * 10 + result.stamp.nanosec // 100_000_000 == i
        # frame 1's box is published before the model looks at frame 1 (still no velocity);
        # from the second answer on the filter knows how the object moves
        iou = Box.from_list(result.target.box).iou(agent.box_at(i / 10.0))
        assert iou > (0.9 if i >= 2 else 0.8)
    # every model answer is published too, for the frame it looked at: the camera frame's
    # prediction corrected to the model's box (same stamp, later)
    assert len(rig.published) == len(agent.calls)
    assert {r.track_state for r in rig.published} == {TrackState.TRACKING}
    assert {r.request_id for r in rig.published} == {STANDING_REQUEST_ID}
    for answer, t in zip(rig.published, agent.calls):
        assert answer.stamp.sec * 10 + answer.stamp.nanosec // 100_000_000 == round(t * 10)
        assert Box.from_list(answer.target.box).iou(agent.box_at(t)) > 0.99
        # the model's own box, and its CPU time apart from the camera frames' work
        assert answer.target.source is BoxSource.MODEL
        assert answer.latency_ms['model_cpu'] >= 0.0
    assert {b.target.source for b in boxes} == {BoxSource.MOTION}  # 8x8 black images: no match
    assert all('seen by the model' not in b.reason for b in boxes)


def test_a_vanished_object_is_occluded_then_lost() -> None:
    agent = MovingObjectAgent(gone_after_s=1.0)
    rig = TrackingRig(
        agent, TrackerConfig(redetect_max_interval_s=0.2, coast_s=1.0, lost_after_s=1.0)
    )
    for i in range(40):
        rig.camera_frame(i / 10.0)
    states = [r.track_state for r in rig.published]
    assert states[0] is TrackState.TRACKING
    assert TrackState.OCCLUDED in states
    assert states[-1] is TrackState.LOST
    assert states.index(TrackState.OCCLUDED) < states.index(TrackState.LOST)
    lost = rig.published[-1]
    assert lost.status is ResultStatus.REJECTED
    assert lost.target is None


def test_an_ended_standing_query_publishes_nothing_more() -> None:
    """Clearing `query` (a 'stop' command) ends the tracker's boxes at once, before the worker
    thread next looks at its settings, and a model answer under way when it ended is dropped."""
    agent = MovingObjectAgent()
    rig = TrackingRig(agent, TrackerConfig(redetect_max_interval_s=0.5))
    for i in range(5):
        rig.camera_frame(i / 10.0)
    assert rig.camera_frame(0.5) is not None  # locked: a box per camera frame
    rig.settings = replace(rig.settings, standing_query='')
    captured = CapturedImage(np.zeros((8, 8, 3), np.uint8), Stamp(0, 600_000_000), 'front', 0.6)
    rig.feed.slot.put(captured)
    # the executor's camera callback runs before the worker steps: no tracker box any more
    assert rig.worker.on_camera_image('front', captured) is None

    # a model answer that was under way when the query ended is not published either
    rig.settings = replace(rig.settings, standing_query='track the red cube')
    rig.camera_frame(1.0)  # a fresh standing query: the model is asked on this frame
    published = len(rig.published)
    ask = agent.resolve_query_with_detections

    def ask_then_stop(query, frame, *, request_id=''):  # type: ignore[no-untyped-def]
        rig.settings = replace(rig.settings, standing_query='')
        return ask(query, frame, request_id=request_id)

    agent.resolve_query_with_detections = ask_then_stop  # type: ignore[method-assign]
    calls = len(agent.calls)
    rig.camera_frame(1.5)
    assert len(agent.calls) == calls + 1  # the model did look at the frame ...
    assert len(rig.published) == published  # ... and its answer was dropped


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('track the red cube', True),
        ('follow the person in the red shirt', True),
        ('keep track of the blue ball', True),
        ('find the red cube', False),
        ('how many cubes are there?', False),
        ('', False),  # not a command at all: answered as an error, never kept running
    ],
)
def test_which_commands_become_standing_groundings(text: str, expected: bool) -> None:
    from grounding_agent.core.intake import CommandKind, classify

    assert (classify(text) is CommandKind.TRACK) is expected
