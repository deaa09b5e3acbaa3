"""The inference worker without ROS: which frame answers a command, timeouts, the standing query.

`step()` is driven by hand with a manual clock, so every case is deterministic.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from grounding_agent.core.agent import Resolution
from grounding_agent.core.errors import CommandError
from grounding_agent.core.result import GroundingResult, ResultStatus, TargetModel
from grounding_agent.core.types import Frame, ObjectRef, Query, QueryKind, Stamp
from grounding_agent.ros.worker import (
    STANDING_REQUEST_ID,
    CameraFeed,
    CapturedImage,
    CommandRequest,
    InferenceWorker,
    WorkerSettings,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedAgent:
    """Test double for GroundingAgent: grounds every command on a fixed box, records frames.

    `failure` makes it raise (a bug or a crashing backend behind the agent's own guard).
    """

    backend_name = 'scripted_agent'

    def __init__(self) -> None:
        self.frames: list[tuple[str, Frame | None]] = []
        self.failure: Exception | None = None
        self.inside = threading.Event()  # set while a call is under way
        self.release: threading.Event | None = None  # when set: calls wait for it

    def _answer(self, text: str, request_id: str, frame: Frame | None) -> GroundingResult:
        self.frames.append((text, frame))
        if self.release is not None:
            self.inside.set()
            assert self.release.wait(30.0)
        if self.failure is not None:
            raise self.failure
        return GroundingResult(
            request_id=request_id,
            command=text,
            status=ResultStatus.GROUNDED,
            reason='found',
            target=TargetModel(phrase=text, box=[1, 2, 3, 4], score=0.8),
        )

    def handle_command(
        self, command: str | bytes, frame: Frame | None, *, request_id: str = '', camera: str = ''
    ) -> GroundingResult:
        return self._answer(str(command), request_id, frame)

    def resolve_query_with_detections(
        self, query: Query, frame: Frame, *, request_id: str = ''
    ) -> Resolution:
        return Resolution(self._answer(query.text, request_id, frame), [])


def simple_parser(text: str) -> Query:
    """Test double for the command parser: every word is a phrase; 'gibberish' is refused."""
    if 'gibberish' in text:
        raise CommandError('no object named')
    return Query(kind=QueryKind.TRACK, text=text, target=ObjectRef(phrase=text.split()[-1]))


class Rig:
    """A worker with two cameras, a manual clock and the results it published."""

    def __init__(self, **settings: Any) -> None:
        self.clock = ManualClock()
        self.wakeup = threading.Event()
        self.agent = ScriptedAgent()
        self.feeds = {
            name: CameraFeed(name, wakeup=self.wakeup, clock=self.clock)
            for name in ('front', 'wrist')
        }
        self.settings = WorkerSettings(**settings)
        self.published: list[tuple[GroundingResult, Frame | None]] = []
        self.worker = InferenceWorker(
            agent=self.agent,
            cameras=self.feeds,
            publish=lambda result, frame: self.published.append((result, frame)),
            settings=lambda: self.settings,
            wakeup=self.wakeup,
            queue_size=3,
            clock=self.clock,
            on_error=lambda message: None,
            parser=simple_parser,
        )

    def frame(self, camera: str = 'front', sec: int = 1) -> CapturedImage:
        captured = CapturedImage(
            np.zeros((4, 4, 3), np.uint8), Stamp(sec=sec), f'{camera}_optical', self.clock.now
        )
        self.feeds[camera].slot.put(captured)
        return captured

    def command(
        self, text: str = 'find the cube', camera: str = 'front', request_id: str = 'r1'
    ) -> None:
        assert self.worker.submit(CommandRequest(text, camera, request_id, self.clock.now)) is None

    def results(self) -> list[GroundingResult]:
        return [result for result, _ in self.published]


def test_fresh_frame_answers_a_command_at_once_with_its_stamp() -> None:
    rig = Rig(command_frame_max_age_s=0.5)
    rig.frame(sec=42)
    rig.clock.now += 0.2
    rig.command(request_id='7')
    assert rig.worker.step() == 0.0
    (result,) = rig.results()
    assert (result.request_id, result.status) == ('7', ResultStatus.GROUNDED)
    assert (result.stamp.sec, result.frame_id, result.camera) == (42, 'front_optical', 'front')
    assert result.backend == 'scripted_agent'
    assert result.latency_ms['since_frame'] == pytest.approx(200.0)


def test_stale_frame_makes_the_command_wait_for_the_next_one() -> None:
    rig = Rig(command_frame_max_age_s=0.5)
    rig.frame(sec=1)
    rig.clock.now += 2.0
    rig.command()
    assert rig.worker.step() > 0
    assert rig.results() == []
    rig.frame(sec=2)
    rig.worker.step()
    assert [r.stamp.sec for r in rig.results()] == [2]


def test_command_without_any_frame_times_out_with_a_reason() -> None:
    rig = Rig(command_timeout_s=5.0)
    rig.command(camera='wrist', request_id='late')
    rig.worker.step()
    rig.clock.now += 5.1
    rig.worker.step()
    (result,) = rig.results()
    assert (result.request_id, result.status) == ('late', ResultStatus.ERROR)
    assert "no image from camera 'wrist' within 5 s" in result.reason
    assert rig.worker.counters()['timed_out'] == 1


def test_refused_image_answers_the_waiting_command_with_why() -> None:
    rig = Rig()
    rig.command()
    rig.feeds['front'].refuse('image: unsupported image encoding yuv422')
    rig.worker.step()
    (result,) = rig.results()
    assert result.status is ResultStatus.ERROR
    assert 'yuv422' in result.reason


def test_a_refusal_before_the_command_does_not_count() -> None:
    rig = Rig()
    rig.feeds['front'].refuse('old problem')
    rig.clock.now += 1.0
    rig.command()
    rig.worker.step()
    assert rig.results() == []


def test_unknown_camera_is_an_error_not_a_hang() -> None:
    rig = Rig()
    rig.worker.submit(CommandRequest('find it', 'roof', 'x', rig.clock.now))
    rig.worker.step()
    assert rig.results()[0].reason.startswith("unknown camera 'roof'")


def test_full_queue_refuses_and_every_accepted_command_is_answered_once() -> None:
    rig = Rig()
    for index in range(3):
        rig.command(request_id=str(index))
    refusal = rig.worker.submit(CommandRequest('one more', 'front', 'x', rig.clock.now))
    assert refusal is not None
    assert refusal.startswith('busy: 3 commands are already waiting')
    rig.frame()
    steps = 1
    while rig.worker.step() == 0.0:  # 0.0: more work ready at once
        steps += 1
    assert steps == 4  # three answers, then a step with nothing to do
    assert sorted(r.request_id for r in rig.results()) == ['0', '1', '2']
    assert rig.worker.counters()['busy'] == 1


def test_agent_exception_becomes_an_error_result_and_is_counted() -> None:
    rig = Rig()
    rig.agent.failure = RuntimeError('CUDA out of memory')
    rig.frame()
    rig.command(request_id='boom')
    rig.worker.step()
    (result,) = rig.results()
    assert (result.request_id, result.status) == ('boom', ResultStatus.ERROR)
    assert 'CUDA out of memory' in result.reason
    counters = rig.worker.counters()
    assert (counters['backend_failures'], counters['errors']) == (1, 1)


def test_standing_query_runs_once_per_new_frame_of_its_camera() -> None:
    rig = Rig(standing_query='track the ball', standing_camera='wrist')
    rig.frame('front')
    assert rig.worker.step() > 0
    rig.frame('wrist', sec=5)
    rig.frame('wrist', sec=6)  # replaces 5 before the model looked: superseded
    assert rig.worker.step() == 0.0
    assert rig.worker.step() > 0  # nothing new
    (result,) = rig.results()
    assert (result.request_id, result.command, result.stamp.sec) == (
        STANDING_REQUEST_ID,
        'track the ball',
        6,
    )
    assert rig.feeds['wrist'].slot.stats.superseded == 1


def test_rate_cap_skips_frames_until_the_next_slot() -> None:
    rig = Rig(standing_query='track the ball', standing_camera='front', max_rate_hz=2.0)
    rig.frame(sec=1)
    rig.worker.step()
    rig.clock.now += 0.1
    rig.frame(sec=2)
    assert rig.worker.step() == pytest.approx(0.4)
    rig.clock.now += 0.4
    rig.worker.step()
    assert [r.stamp.sec for r in rig.results()] == [1, 2]


def test_standing_query_change_applies_and_bad_text_is_reported_once() -> None:
    rig = Rig(standing_query='track gibberish', standing_camera='front')
    rig.frame()
    rig.worker.step()
    rig.frame()
    rig.worker.step()
    (error,) = rig.results()
    assert error.status is ResultStatus.ERROR
    assert 'standing query not understood' in error.reason
    rig.settings = WorkerSettings(standing_query='track the cup', standing_camera='front')
    rig.worker.step()
    assert rig.results()[-1].command == 'track the cup'


def test_stop_answers_the_waiting_commands_and_refuses_new_ones() -> None:
    rig = Rig()
    rig.worker.start()
    rig.command(request_id='a')
    rig.command(request_id='b')
    assert rig.worker.stop('shutting down: test', timeout_s=10.0)
    assert [(r.request_id, r.reason) for r in rig.results()] == [
        ('a', 'shutting down: test'),
        ('b', 'shutting down: test'),
    ]
    assert rig.worker.submit(CommandRequest('late', 'front', 'c', rig.clock.now)) == (
        'shutting down: test'
    )
    assert rig.worker.ledger.counts()['answered'] == 2


def wait_until(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


class BusyModel:
    """A worker thread inside the (scripted) model: `start` puts it there, `finish` lets it out."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        rig.agent.release = threading.Event()

    def start(self, request_id: str = 'slow') -> None:
        self.rig.frame()
        self.rig.command(request_id=request_id)
        self.thread = threading.Thread(target=self.rig.worker.step)
        self.thread.start()
        assert self.rig.agent.inside.wait(10.0)

    def finish(self) -> None:
        assert self.rig.agent.release is not None
        self.rig.agent.release.set()
        self.thread.join(10.0)


def test_the_deadline_holds_while_the_model_works_and_its_late_answer_is_dropped() -> None:
    rig = Rig(command_timeout_s=5.0)
    model = BusyModel(rig)
    model.start()
    rig.clock.now += 3.0
    rig.command(request_id='queued')  # waits behind the model call
    rig.frame()  # ready to be answered, but the model is busy
    rig.clock.now += 2.5
    rig.worker.expire_due()  # the node's timer, while the worker thread is inside the model
    (slow,) = rig.results()
    assert (slow.request_id, slow.status) == ('slow', ResultStatus.ERROR)
    assert 'the model was still working on this command (5.5 s so far)' in slow.reason
    rig.clock.now += 3.0
    rig.worker.expire_due()
    queued = rig.results()[-1]
    assert queued.request_id == 'queued'
    assert 'waiting for the model, which was busy (with command' in queued.reason
    model.finish()
    assert [r.request_id for r in rig.results()] == ['slow', 'queued']  # nothing late
    assert rig.worker.counters()['late_answers_dropped'] == 1


def test_stop_gives_up_on_a_model_that_does_not_return_and_answers_its_command() -> None:
    rig = Rig()
    model = BusyModel(rig)
    model.start()
    assert rig.worker.stop('shutting down: test', timeout_s=0.0) is True  # step() runs outside
    assert [(r.request_id, r.reason) for r in rig.results()] == [('slow', 'shutting down: test')]
    model.finish()
    assert len(rig.results()) == 1


def test_stop_reports_a_thread_still_inside_the_model() -> None:
    rig = Rig()
    rig.agent.release = threading.Event()
    rig.frame()
    rig.worker.start()
    rig.command(request_id='slow')
    assert rig.agent.inside.wait(10.0)
    assert rig.worker.stop('shutting down: test', timeout_s=0.05) is False
    assert rig.worker.is_alive
    rig.agent.release.set()
    assert rig.worker.stop('shutting down: test', timeout_s=10.0) is True
    assert [r.request_id for r in rig.results()] == ['slow']
    rig.agent.release = None
    rig.worker.start()  # a fresh thread answers again
    rig.frame()
    rig.command(request_id='again')
    assert wait_until(lambda: len(rig.results()) == 2)
    assert rig.results()[-1].status is ResultStatus.GROUNDED
    assert rig.worker.stop('shutting down: test', timeout_s=10.0)


def test_a_failing_step_still_answers_the_command_it_held() -> None:
    rig = Rig()
    rig.frame()
    rig.command(request_id='held')
    broken = rig.feeds['front']
    broken.frame = lambda captured, tolerance_s: 1 / 0  # type: ignore[method-assign,assignment]
    rig.worker.step()
    (result,) = rig.results()
    assert (result.request_id, result.status) == ('held', ResultStatus.ERROR)
    assert 'ZeroDivisionError' in result.reason
