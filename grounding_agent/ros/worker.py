"""The node's inference thread: commands and the standing query against the cameras' newest frames.

Image callbacks only put frames into per-camera `FrameSlot`s; this worker, in a thread of its
own, takes them at the model's pace, so the ROS executor never waits for a model. Nothing here
imports rclpy: the node hands in a `publish` callable and a settings provider, and tests drive
`step()` directly with a manual clock. Commands arrive already checked and classified by
`core.intake`; the worker only schedules them.

Commands are answered on the newest frame of their camera when it is at most
`command_frame_max_age_s` old (or arrived after the command); otherwise on the next frame to
arrive. `command_timeout_s` bounds the time from a command's arrival to its answer whatever the
model is doing: `expire_due()` (called by the node's timer as well as by the worker) answers an
overdue command with an `error` that says whether no frame came or the model was busy, also
while the model is still working on it; the model's late answer is then dropped. Every
accepted command gets exactly one result, including when the worker stops.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from grounding_agent.core.agent import Resolution
from grounding_agent.core.errors import CommandError
from grounding_agent.core.frame_slot import FrameSlot
from grounding_agent.core.intake import CommandLedger, CommandRequest
from grounding_agent.core.result import (
    STANDING_REQUEST_ID,
    GroundingResult,
    ResultStatus,
    StampModel,
    TrackState,
    error_result,
)
from grounding_agent.core.stamp_matching import CameraSync
from grounding_agent.core.standing import StandingGrounding
from grounding_agent.core.tracking import TrackerConfig
from grounding_agent.core.types import Frame, Query, Stamp

__all__ = [
    'STANDING_REQUEST_ID',
    'AgentLike',
    'CameraFeed',
    'CapturedImage',
    'CommandRequest',
    'InferenceWorker',
    'StandingQuery',
    'WorkerSettings',
]

_log = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.5
_COMMAND_POLL_S = 0.1


class AgentLike(Protocol):
    """Everything the worker uses of `grounding_agent.core.agent.GroundingAgent`."""

    @property
    def backend_name(self) -> str: ...

    def handle_command(
        self, command: str | bytes, frame: Frame | None, *, request_id: str = '', camera: str = ''
    ) -> GroundingResult: ...

    def resolve_query_with_detections(
        self, query: Query, frame: Frame, *, request_id: str = ''
    ) -> Resolution: ...


@dataclass(frozen=True, slots=True)
class CapturedImage:
    """A converted colour image as it sits in a camera slot, with its arrival time."""

    image: npt.NDArray[np.uint8]
    stamp: Stamp
    frame_id: str
    received_s: float


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The runtime-changeable values the worker reads on every step."""

    standing_query: str = ''
    standing_camera: str = ''
    max_rate_hz: float = 0.0
    command_timeout_s: float = 5.0
    command_frame_max_age_s: float = 0.5
    depth_sync_tolerance_s: float = 0.05
    tracking: TrackerConfig = field(default_factory=TrackerConfig)


class CameraFeed:
    """One camera as the worker sees it: the newest colour image, depth and intrinsics buffers."""

    def __init__(
        self, name: str, *, wakeup: threading.Event, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.slot: FrameSlot[CapturedImage] = FrameSlot(wakeup=wakeup, clock=clock)
        self.sync = CameraSync()
        self._wakeup = wakeup
        self._clock = clock
        self._lock = threading.Lock()
        self._refusal: tuple[float, str] | None = None
        self._refused = 0

    def refuse(self, reason: str) -> None:
        """Record that an image of this camera could not be used (commands waiting learn why)."""
        with self._lock:
            self._refusal = (self._clock(), reason)
            self._refused += 1
        self._wakeup.set()

    def refusal_since(self, since_s: float) -> str | None:
        """The reason the last image was refused, if that happened at or after `since_s`."""
        with self._lock:
            if self._refusal is None or self._refusal[0] < since_s:
                return None
            return self._refusal[1]

    @property
    def refused(self) -> int:
        with self._lock:
            return self._refused

    def frame(self, captured: CapturedImage, *, tolerance_s: float) -> Frame:
        self.slot.note_used(captured)
        return self.sync.assemble(
            captured.image,
            stamp=captured.stamp,
            frame_id=captured.frame_id,
            camera=self.name,
            tolerance_s=tolerance_s,
        )


class StandingQuery:
    """The `query` parameter: a standing grounding followed by the tracker.

    This is the one place the standing-query behaviour lives. The model is asked about a frame
    only when `needs_model` says so (no answer yet, confidence decayed, the scene changed, or
    the maximum interval passed); every camera frame in between gets the tracker's box from
    `on_camera_image`, so the planner hears about the locked object at camera rate. The worker
    thread and the executor both call in, hence the lock.
    """

    def __init__(
        self, text: str, query: Query, *, camera: str, tracking: TrackerConfig | None = None
    ) -> None:
        self.text = text
        self.query = query
        self.camera = camera
        self.grounding = StandingGrounding(
            query, config=tracking, request_id=STANDING_REQUEST_ID, camera=camera
        )
        self._lock = threading.Lock()

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        camera: str,
        parser: Callable[[str], Query] | None = None,
        tracking: TrackerConfig | None = None,
    ) -> StandingQuery:
        """Parse `text` (with the command parser by default); raises CommandError."""
        if parser is None:
            from grounding_agent.core.parser import parse_command

            parser = parse_command
        return cls(text, parser(text), camera=camera, tracking=tracking)

    def needs_model(self, frame: CapturedImage) -> bool:
        with self._lock:
            return self.grounding.needs_model(frame.stamp.to_seconds(), frame.image)

    def on_frame(self, agent: AgentLike, frame: Frame) -> GroundingResult:
        """Ask the model about `frame`; the result to publish.

        While the object is tracked, the camera callback has already published the tracker's
        prediction for this frame; this is the box the model's answer corrected it to, with the
        same stamp, so the planner's latest box for the frame is the best one.
        """
        # CPU time of this thread in the call (model and resolver): what the model costs the
        # node, apart from its wall time, which other threads' work stretches
        cpu_start = time.thread_time()
        result, detections = agent.resolve_query_with_detections(
            self.query, frame, request_id=STANDING_REQUEST_ID
        )
        model_cpu_ms = (time.thread_time() - cpu_start) * 1000.0
        with self._lock:
            update = self.grounding.on_model_result(
                result, detections, frame.stamp.to_seconds(), frame.image
            )
        published = update.result.model_copy(
            update={
                'latency_ms': {**result.latency_ms, 'model_cpu': round(model_cpu_ms, 3)},
                'stamp': result.stamp,
                'frame_id': result.frame_id,
            }
        )
        return published

    def on_camera_image(
        self, stamp: Stamp, image: npt.NDArray[np.uint8] | None = None
    ) -> GroundingResult | None:
        """The tracker's box for a camera frame at `stamp`, while an object is locked (placed
        by matching the object's last view in `image` when given)."""
        with self._lock:
            if self.grounding.state not in (TrackState.TRACKING, TrackState.OCCLUDED):
                return None
            # the frame on which the object becomes lost is published too: it says so once
            return self.grounding.on_camera_frame(stamp.to_seconds(), image).result


@dataclass
class _Counters:
    commands: int = 0
    answered: int = 0
    busy: int = 0
    timed_out: int = 0
    late_answers_dropped: int = 0
    standing: int = 0
    errors: int = 0
    backend_failures: int = 0
    last_latency_ms: float = 0.0
    last_error: str = ''


class InferenceWorker:
    """Runs the model on commands and the standing query, one inference at a time.

    A command is owned by exactly one place at a time: the queue, or the model (`_in_flight`).
    Whoever takes it from there, under the lock, answers it: the worker after the model, the
    deadline (`expire_due`) or `stop`; so every command is answered once.
    """

    def __init__(
        self,
        *,
        agent: AgentLike,
        cameras: Mapping[str, CameraFeed],
        publish: Callable[[GroundingResult, Frame | None], bool | None],
        settings: Callable[[], WorkerSettings],
        wakeup: threading.Event,
        queue_size: int = 16,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
        parser: Callable[[str], Query] | None = None,
        ledger: CommandLedger | None = None,
    ) -> None:
        self._agent = agent
        self._parser = parser
        self._cameras = dict(cameras)
        self._publish = publish
        self._settings = settings
        self._wakeup = wakeup
        self._queue_size = queue_size
        self._clock = clock
        self._on_error = on_error or _log.error
        self._ledger = ledger if ledger is not None else CommandLedger()
        self._lock = threading.Lock()
        self._commands: deque[CommandRequest] = deque()
        self._in_flight: CommandRequest | None = None
        self._model_busy_with = ''  # what the model is working on, for timeout reasons
        self._model_since = 0.0
        self._closed = ''  # why commands are no longer accepted ('' = they are)
        self._standing: StandingQuery | None = None
        self._standing_key: tuple[str, str, TrackerConfig] | None = None
        self._next_standing_s = -math.inf
        self._counters = _Counters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------

    @property
    def agent(self) -> AgentLike:
        return self._agent

    @property
    def ledger(self) -> CommandLedger:
        return self._ledger

    def set_agent(self, agent: AgentLike) -> None:
        """Use `agent` from the next inference on (a reference swap: atomic)."""
        self._agent = agent

    def start(self) -> None:
        """Start the inference thread; no-op while one runs (also one that a `stop` gave up
        on: it ends when the model returns, and then `start` makes a new one)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            self._closed = ''
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='grounding-inference', daemon=True)
        self._thread.start()

    @property
    def is_alive(self) -> bool:
        """Whether the inference thread still runs (after `stop`: still inside the model)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self, reason: str, *, timeout_s: float = 30.0) -> bool:
        """Refuse new commands, answer the waiting ones with `reason`, and stop the thread.

        The inference under way gets `timeout_s` to finish (its command is answered normally);
        after that its command is answered with `reason` too and the model's answer, should it
        come, is dropped. Returns False when the thread is still inside the model: the caller
        must not free the model under it.
        """
        with self._lock:
            self._closed = reason
            waiting = list(self._commands)
            self._commands.clear()
        self._stop.set()
        self._wakeup.set()
        for request in waiting:
            self._emit(request.error(reason), None, None, command=True)
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        abandoned = self._take_in_flight()
        if abandoned is not None:
            self._emit(abandoned.error(reason), None, None, command=True)
        if thread is not None and thread.is_alive():
            return False
        self._thread = None
        return True

    def submit(self, request: CommandRequest) -> str | None:
        """Queue a command; None when queued, else why not (the caller answers with it)."""
        with self._lock:
            self._counters.commands += 1
            if self._closed:
                return self._closed
            if len(self._commands) >= self._queue_size:
                self._counters.busy += 1
                return (
                    f'busy: {self._queue_size} commands are already waiting '
                    '(command_queue_size); try again'
                )
            self._commands.append(request)
        self._wakeup.set()
        return None

    def counters(self) -> dict[str, Any]:
        with self._lock:
            values = dict(vars(self._counters))
            values['queued'] = len(self._commands)
            values['in_flight'] = int(self._in_flight is not None)
        return values

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            # Cleared before the step, so a frame or command arriving during it re-arms the wait.
            self._wakeup.clear()
            try:
                delay = self.step()
            except Exception:  # the thread must outlive any bug in one step
                self._note_error(f'inference step failed:\n{traceback.format_exc()}')
                orphan = self._take_in_flight()
                if orphan is not None:
                    self._emit(orphan.error('internal error (see the log)'), None, None, True)
                delay = _COMMAND_POLL_S
            if delay > 0 and not self._stop.is_set():
                self._wakeup.wait(delay)

    def step(self) -> float:
        """Do at most one inference; return how long nothing more can be done (0 = call again)."""
        settings = self._settings()
        now = self._clock()
        self.expire_due()
        request, captured = self._next_ready_command(settings, now)
        if request is not None:
            if isinstance(captured, CapturedImage):
                self._answer_command(request, captured, settings)
            else:
                reason = (
                    f'unknown camera {request.camera!r}; cameras: {sorted(self._cameras)}'
                    if captured is None
                    else f'the image from camera {request.camera!r} was refused: {captured}'
                )
                self._emit(request.error(reason), None, None, command=True)
            return 0.0
        standing_wait = self._step_standing(settings, now)
        if standing_wait == 0.0:
            return 0.0
        with self._lock:
            waiting = bool(self._commands)
        return min(standing_wait, _COMMAND_POLL_S if waiting else _IDLE_WAIT_S)

    # -- commands -----------------------------------------------------------------------------

    def expire_due(self) -> None:
        """Answer every command older than `command_timeout_s` with an `error` saying why.

        Safe from any thread: the node's timer calls it so that a deadline holds while the
        worker thread is inside the model.
        """
        settings = self._settings()
        timeout_s = settings.command_timeout_s
        now = self._clock()
        expired: list[tuple[CommandRequest, str]] = []
        with self._lock:
            ahead = 0
            for request in list(self._commands):
                if now - request.received_s <= timeout_s:
                    ahead += 1
                    continue
                self._commands.remove(request)
                reason = self._queued_timeout_reason(request, settings, ahead)
                expired.append((request, reason))
            running = self._in_flight
            if running is not None and now - running.received_s > timeout_s:
                self._in_flight = None
                expired.append(
                    (
                        running,
                        f'timed out after {timeout_s:g} s (command_timeout_s): the model was '
                        f'still working on this command ({now - self._model_since:.1f} s so '
                        'far); its answer will be dropped',
                    )
                )
            self._counters.timed_out += len(expired)
        for request, reason in expired:
            self._emit(request.error(reason), None, None, command=True)

    def _queued_timeout_reason(
        self, request: CommandRequest, settings: WorkerSettings, ahead: int
    ) -> str:
        """Why a waiting command ran out of time (called under the lock): no frame it could be
        answered on arrived, or one did and the model was busy."""
        timeout_s = settings.command_timeout_s
        feed = self._cameras.get(request.camera)
        latest = feed.slot.latest(max_age_s=math.inf) if feed is not None else None
        oldest_usable_s = request.received_s - settings.command_frame_max_age_s
        if latest is None or latest.received_s < oldest_usable_s:
            return (
                f'no image from camera {request.camera!r} within {timeout_s:g} s; '
                'is the camera publishing?'
            )
        busy = []
        if self._model_busy_with:
            busy.append(self._model_busy_with)
        if ahead:
            busy.append(f'{ahead} earlier command{"s" if ahead > 1 else ""} waiting')
        return (
            f'timed out after {timeout_s:g} s (command_timeout_s) waiting for the model, which '
            f'was busy ({"; ".join(busy) or "with earlier work"}); frames from camera '
            f'{request.camera!r} were arriving'
        )

    def _take_in_flight(self) -> CommandRequest | None:
        with self._lock:
            request, self._in_flight = self._in_flight, None
        return request

    def _next_ready_command(
        self, settings: WorkerSettings, now: float
    ) -> tuple[CommandRequest | None, CapturedImage | str | None]:
        with self._lock:
            for request in self._commands:
                feed = self._cameras.get(request.camera)
                if feed is None:
                    self._commands.remove(request)
                    return request, None
                captured = feed.slot.latest(max_age_s=math.inf)
                if captured is not None and (
                    captured.received_s >= request.received_s
                    or now - captured.received_s <= settings.command_frame_max_age_s
                ):
                    self._commands.remove(request)
                    self._in_flight = request
                    return request, captured
                refusal = feed.refusal_since(request.received_s)
                if refusal is not None:
                    # The next image of this camera was unusable: say why now rather than time out.
                    self._commands.remove(request)
                    return request, refusal
        return None, None

    def _answer_command(
        self, request: CommandRequest, captured: CapturedImage, settings: WorkerSettings
    ) -> None:
        frame: Frame | None = None
        with self._lock:
            self._model_busy_with = f'with command {request.request_id or request.text[:40]!r}'
            self._model_since = self._clock()
        try:
            feed = self._cameras[request.camera]
            frame = feed.frame(captured, tolerance_s=settings.depth_sync_tolerance_s)
            result = self._agent.handle_command(
                request.text, frame, request_id=request.request_id, camera=request.camera
            )
        except Exception as exc:  # the agent promises not to raise: this is a bug, keep its trace
            result = self._failure(exc, request.text, request.request_id, request.camera)
        finally:
            with self._lock:
                self._model_busy_with = ''
        with self._lock:
            mine = self._in_flight is request
            if mine:
                self._in_flight = None
            else:  # answered meanwhile (deadline or shutdown): this answer comes too late
                self._counters.late_answers_dropped += 1
        if mine:
            self._emit(result, frame, captured, command=True)

    # -- the standing query -------------------------------------------------------------------

    @staticmethod
    def _key(settings: WorkerSettings) -> tuple[str, str, TrackerConfig]:
        return (settings.standing_query, settings.standing_camera, settings.tracking)

    def _current_standing(self) -> StandingQuery | None:
        """The standing query, if it is still what the settings ask for (the `query` parameter
        can be cleared or changed from the executor at any time; the worker adopts the new
        value on its next step, but nothing of the old query may be published meanwhile)."""
        wanted = self._key(self._settings())
        with self._lock:
            return self._standing if self._standing_key == wanted else None

    def _standing_for(self, settings: WorkerSettings) -> StandingQuery | None:
        key = self._key(settings)
        if key == self._standing_key:
            return self._standing
        with self._lock:
            self._standing_key = key
            self._standing = None
        self._next_standing_s = -math.inf
        if not settings.standing_query:
            return None
        try:
            standing = StandingQuery.parse(
                settings.standing_query,
                camera=settings.standing_camera,
                parser=self._parser,
                tracking=settings.tracking,
            )
            with self._lock:
                self._standing = standing
        except CommandError as exc:
            # Reported once per value: the parameter callback refuses such values, so this is a
            # bad value from the start-up file.
            self._emit(
                error_result(
                    f'standing query not understood: {exc}',
                    request_id=STANDING_REQUEST_ID,
                    command=settings.standing_query,
                    camera=settings.standing_camera,
                ),
                None,
                None,
            )
        return self._standing

    def _step_standing(self, settings: WorkerSettings, now: float) -> float:
        standing = self._standing_for(settings)
        if standing is None:
            return _IDLE_WAIT_S
        feed = self._cameras.get(standing.camera)
        if feed is None:
            return _IDLE_WAIT_S
        if now < self._next_standing_s:
            return self._next_standing_s - now
        if not feed.slot.has_pending():
            return _IDLE_WAIT_S
        peeked = feed.slot.latest(max_age_s=math.inf)
        if peeked is not None and not standing.needs_model(peeked):
            # The tracker carries the object between answers; look again at the next frame.
            return _IDLE_WAIT_S
        captured = feed.slot.take()
        if captured is None:
            return _IDLE_WAIT_S
        if settings.max_rate_hz > 0:
            self._next_standing_s = now + 1.0 / settings.max_rate_hz
        frame = feed.frame(captured, tolerance_s=settings.depth_sync_tolerance_s)
        with self._lock:
            self._model_busy_with = f'with the standing query {standing.text[:60]!r}'
            self._model_since = self._clock()
        try:
            result = standing.on_frame(self._agent, frame)
        except Exception as exc:
            result = self._failure(exc, standing.text, STANDING_REQUEST_ID, standing.camera)
        finally:
            with self._lock:
                self._model_busy_with = ''
        with self._lock:
            self._counters.standing += 1
        if self._current_standing() is standing:
            # an answer for a query that was stopped or replaced while the model ran is dropped
            self._emit(result, frame, captured)
        return 0.0

    def on_camera_image(self, camera: str, captured: CapturedImage) -> GroundingResult | None:
        """Called for every image of `camera` (executor thread): the standing grounding's
        tracked box for it, or None. Costs a prediction and a small image match, never a
        model call."""
        standing = self._current_standing()
        if standing is None or standing.camera != camera:
            return None
        result = standing.on_camera_image(captured.stamp, captured.image)
        if result is None:
            return None
        return result.model_copy(
            update={
                'stamp': StampModel.from_stamp(captured.stamp),
                'frame_id': captured.frame_id,
                'backend': result.backend or self._backend_name(),
            }
        )

    # -- results ------------------------------------------------------------------------------

    def _failure(
        self, exc: Exception, command: str, request_id: str, camera: str
    ) -> GroundingResult:
        """The error answer for an exception that escaped the agent (which never raises by
        contract): a bug, logged with its traceback."""
        with self._lock:
            self._counters.backend_failures += 1
        self._on_error(
            f'grounding {command[:80]!r} raised {type(exc).__name__}:\n{traceback.format_exc()}'
        )
        return error_result(
            f'backend failed: {type(exc).__name__}: {exc}',
            request_id=request_id,
            command=command,
            camera=camera,
            backend=self._backend_name(),
        )

    def _backend_name(self) -> str:
        try:
            return str(self._agent.backend_name)
        except Exception:
            return ''

    def _emit(
        self,
        result: GroundingResult,
        frame: Frame | None,
        captured: CapturedImage | None,
        command: bool = False,
    ) -> None:
        """Fill what the agent left empty (stamp, frame, camera, latency) and publish.

        `command`: this is a command's one answer (counted in the ledger), not a standing result.
        """
        published: bool | None = False
        try:
            update: dict[str, Any] = {}
            if frame is not None:
                if result.stamp is None:
                    update['stamp'] = StampModel.from_stamp(frame.stamp)
                if not result.frame_id:
                    update['frame_id'] = frame.frame_id
                if not result.camera:
                    update['camera'] = frame.camera
            if not result.backend:
                update['backend'] = self._backend_name()
            if captured is not None:
                since_frame = (self._clock() - captured.received_s) * 1000.0
                update['latency_ms'] = {**result.latency_ms, 'since_frame': round(since_frame, 3)}
                with self._lock:
                    self._counters.last_latency_ms = since_frame
            if update:
                result = result.model_copy(update=update)
            if result.status is ResultStatus.ERROR:
                self._note_error(result.reason, log=False)
            published = self._publish(result, frame)
        except Exception:
            self._note_error(f'publishing a result failed:\n{traceback.format_exc()}')
        if not command:
            return
        if published is False:
            self._ledger.lost()
        else:
            self._ledger.answered()
            with self._lock:
                self._counters.answered += 1

    def _note_error(self, message: str, *, log: bool = True) -> None:
        with self._lock:
            self._counters.errors += 1
            self._counters.last_error = message[:500]
        if log:
            self._on_error(message)
