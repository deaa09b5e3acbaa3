"""The grounding agent facade: command text + camera frame in, one GroundingResult out.

The ROS node and the command line both go through `GroundingAgent`. It parses the command, asks
the backend for every phrase in one call, turns depth into 3D points, lets the pure `Resolver`
decide, and stamps the result with ids, timings and the backend name. It never raises: whatever
goes wrong becomes an `error` result whose reason names the exception. Failures of the backend
(the model, its libraries) and the package's own errors are expected and reported as such;
anything else is a bug and is also logged with its traceback.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.control import is_stop_command, stop_result
from grounding_agent.core.detector import Detector
from grounding_agent.core.errors import (
    BackendError,
    CommandError,
    GroundingError,
    ImageConversionError,
)
from grounding_agent.core.geometry import with_points
from grounding_agent.core.resolver import Resolver, Verifier
from grounding_agent.core.result import GroundingResult, StampModel, error_result
from grounding_agent.core.types import Box, Detection, Frame, ObjectRef, Query, QueryKind
from grounding_agent.core.vocabulary import GENERIC_NOUNS, GENERIC_PHRASE, PERSON_WORDS

__all__ = ['NO_IMAGE_REASON', 'GroundingAgent', 'Resolution', 'query_phrases']

NO_IMAGE_REASON = 'no image received yet'

_log = logging.getLogger(__name__)
_T = TypeVar('_T')


class Resolution(NamedTuple):
    """A standing query's answer and the usable detections (with 3D points) it was made from,
    which the tracker follows between model answers."""

    result: GroundingResult
    detections: list[Detection]


def query_phrases(query: Query) -> list[str]:
    """Every phrase the backend is asked for: the query's, plus GENERIC_PHRASE for WHAT.

    'me', 'you' and 'us' are not looked for: the resolver places them (ResolverConfig.viewpoint);
    neither is 'anything' ('the person not holding anything').
    """
    phrases = [p for p in query.phrases() if p not in PERSON_WORDS and p not in GENERIC_NOUNS]
    if query.kind is QueryKind.WHAT and GENERIC_PHRASE not in phrases:
        phrases.append(GENERIC_PHRASE)
    return phrases


def _parts(ref: ObjectRef) -> set[str]:
    """The parts named by 'without' anywhere in `ref` ('lid' of 'the cup without a lid')."""
    parts = set(ref.without)
    for constraint in ref.relations:
        for anchor in constraint.anchors:
            parts |= _parts(anchor)
    return parts


def _command_text(command: str | bytes, limit: int) -> str:
    """The command as echoed in the result: decoded leniently and cut to a readable length."""
    text = command.decode('utf-8', errors='replace') if isinstance(command, bytes) else command
    text = str(text)
    return text if len(text) <= limit else text[:limit] + '...'


def _check_image(frame: Frame) -> None:
    image = frame.image
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageConversionError('the frame image must be a uint8 numpy array')
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageConversionError(f'the frame image must be HxWx3 RGB, got shape {image.shape}')


def _usable(
    detections: Sequence[Detection], phrases: Sequence[str], frame: Frame, threshold: float
) -> list[Detection]:
    """The boxes that mean something: an asked-for phrase, a finite score, inside the image."""
    if not isinstance(detections, Sequence):
        raise BackendError(f'detect() returned {type(detections).__name__}, not a list')
    asked = set(phrases)
    kept = []
    for detection in detections:
        if not isinstance(detection, Detection):
            raise BackendError(f'detect() returned a {type(detection).__name__}, not a Detection')
        if detection.phrase not in asked or not math.isfinite(detection.score):
            continue
        box = detection.box.clip(frame.width, frame.height)
        score = min(1.0, max(0.0, detection.score))
        if box.area <= 0.0 or score < threshold:
            continue
        kept.append(detection.with_updates(box=box, score=score))
    return kept


def _query_fields(query: Query) -> dict[str, str]:
    """Command text and kind of a query for an error result, even from a malformed query."""
    kind = getattr(query, 'kind', None)
    return {
        'command': str(getattr(query, 'text', '')),
        'kind': kind.value if isinstance(kind, QueryKind) else QueryKind.LOCATE.value,
    }


def _frame_fields(frame: Frame | None, camera: str) -> dict[str, Any]:
    """Stamp, frame id and camera of a frame for an error result; nothing it cannot read."""
    try:
        if frame is None:
            raise TypeError
        return {
            'stamp': StampModel.from_stamp(frame.stamp),
            'frame_id': str(frame.frame_id),
            'camera': camera or str(frame.camera),
        }
    except Exception:  # a broken frame is reported, not raised
        return {'camera': camera}


class GroundingAgent:
    """Parse + detect + resolve, for one backend and one set of thresholds.

    Not thread-safe by itself: call it from one worker at a time, as the backend requires.
    """

    def __init__(self, backend: Detector, config: ResolverConfig | None = None) -> None:
        self.backend = backend
        self.config = config if config is not None else ResolverConfig()
        self.resolver = Resolver(self.config)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def handle_command(
        self,
        command: str | bytes,
        frame: Frame | None,
        *,
        request_id: str = '',
        camera: str = '',
    ) -> GroundingResult:
        """Parse + detect + resolve. Never raises.

        CommandError, GroundingError and any backend exception become an `error` result with a
        readable reason (exception class + message). The command is parsed first, so a command
        that cannot be parsed is reported as such even without a frame; a valid one with `frame`
        None gets the error 'no image received yet'. `camera` overrides the frame's camera name
        in the result.
        """
        started = time.perf_counter()
        text = _command_text(command, self.config.max_command_chars)
        if is_stop_command(command):
            # The agent answers one command at a time and keeps no standing query; the ROS
            # node, which does, handles 'stop' itself.
            return stop_result('', request_id=request_id, command=text, camera=camera)
        try:
            # Imported here so the standing-query path (resolve_query) needs no parser.
            from grounding_agent.core.parser import parse_command

            query = parse_command(command, max_chars=self.config.max_command_chars)
        except Exception as exc:  # every failure must become a result
            if not isinstance(exc, GroundingError):  # the parser failed on its own bug
                _log.exception('parsing %r failed unexpectedly', text)
            return self._error(
                exc, started, frame, request_id=request_id, command=text, camera=camera
            )
        if frame is None:
            return self._error(
                NO_IMAGE_REASON,
                started,
                None,
                request_id=request_id,
                command=text,
                kind=query.kind.value,
                camera=camera,
            )
        return self._run(query, frame, started, request_id=request_id, camera=camera)

    def resolve_query(
        self, query: Query, frame: Frame, *, request_id: str = ''
    ) -> GroundingResult:
        """Detect + resolve an already-parsed query (the standing-query path). Never raises."""
        return self._run(query, frame, time.perf_counter(), request_id=request_id, camera='')

    def resolve_query_with_detections(
        self, query: Query, frame: Frame, *, request_id: str = ''
    ) -> Resolution:
        """`resolve_query`, plus the usable detections the answer was made from. Never raises."""
        return self._resolve(query, frame, time.perf_counter(), request_id=request_id, camera='')

    def _run(
        self, query: Query, frame: Frame | None, started: float, *, request_id: str, camera: str
    ) -> GroundingResult:
        return self._resolve(query, frame, started, request_id=request_id, camera=camera).result

    @staticmethod
    def _call_backend(what: str, call: Callable[..., _T], *args: Any) -> _T:
        """The backend edge: whatever the model or its libraries raise is a BackendError."""
        try:
            return call(*args)
        except GroundingError:
            raise
        except Exception as exc:
            raise BackendError(f'{what} failed: {type(exc).__name__}: {exc}') from exc

    def _resolve(
        self, query: Query, frame: Frame | None, started: float, *, request_id: str, camera: str
    ) -> Resolution:
        model_seconds = 0.0
        detections: list[Detection] = []
        try:
            if frame is None:
                raise ImageConversionError(NO_IMAGE_REASON)
            _check_image(frame)
            phrases = query_phrases(query)
            if not phrases:
                raise CommandError('the command names nothing to look for')
            unknown = self._unrecognised(query, phrases)
            if unknown:
                return Resolution(
                    self._error(
                        f'the {self.backend_name} backend cannot recognise '
                        f'{", ".join(repr(p) for p in unknown)}: its vocabulary is closed, so '
                        'this says nothing about whether it is there; name an object it knows '
                        'or use an open-vocabulary backend (owlv2, grounding_dino, qwen_vl)',
                        started,
                        frame,
                        request_id=request_id,
                        camera=camera,
                        model_seconds=0.0,
                        unrecognised=unknown,
                        **_query_fields(query),
                    ),
                    [],
                )
            phrases = [p for p in phrases if self._recognises(p)]
            tick = time.perf_counter()
            raw = self._call_backend('detect()', self.backend.detect, frame.image, phrases)
            model_seconds += time.perf_counter() - tick
            detections = with_points(
                _usable(raw, phrases, frame, self.config.detection_threshold), frame
            )
            by_phrase: dict[str, list[Detection]] = {phrase: [] for phrase in phrases}
            for detection in detections:
                by_phrase[detection.phrase].append(detection)

            image = frame.image

            # A backend that reads whole expressions (a VLM) checks the operator's own sentence,
            # not the shortened detector phrase: 'the man jumping over the stairs', not 'man'.
            whole = query.text if self.backend.supports_expression and query.text else ''

            def timed_verify(box: Box, description: str) -> float | None:
                nonlocal model_seconds
                description = whole or description
                tick = time.perf_counter()
                try:
                    return self._call_backend(
                        'verify()', self.backend.verify, image, box, description
                    )
                finally:
                    model_seconds += time.perf_counter() - tick

            verifier: Verifier | None = None
            if self.backend.supports_verify and self.config.verify:
                verifier = timed_verify
            result = self.resolver.resolve(query, by_phrase, frame, verifier=verifier)
        except Exception as exc:  # every failure must become a result
            if not isinstance(exc, GroundingError):  # not a failure we know: a bug somewhere
                _log.exception('grounding %r failed unexpectedly', _query_fields(query)['command'])
            error = self._error(
                exc,
                started,
                frame,
                request_id=request_id,
                camera=camera,
                model_seconds=model_seconds,
                **_query_fields(query),
            )
            return Resolution(error, [])
        result = result.model_copy(
            update={
                'request_id': request_id,
                'camera': camera or result.camera,
                'latency_ms': self._latency(started, model_seconds),
                'backend': self.backend_name,
            }
        )
        return Resolution(result, detections)

    def _recognises(self, phrase: str) -> bool:
        """Whether the backend can recognise `phrase` at all (`Backend.recognises`; a detector
        without that member is taken to have an open vocabulary)."""
        recognises = getattr(self.backend, 'recognises', None)
        return not callable(recognises) or bool(recognises(phrase))

    def _unrecognised(self, query: Query, phrases: Sequence[str]) -> list[str]:
        """Phrases the answer needs that the backend cannot recognise; the parts of 'without'
        are only checked when the backend knows them."""
        optional = _parts(query.target)
        return [p for p in phrases if p not in optional and not self._recognises(p)]

    @staticmethod
    def _latency(started: float, model_seconds: float) -> dict[str, float]:
        total = (time.perf_counter() - started) * 1000.0
        return {'model': round(model_seconds * 1000.0, 3), 'total': round(total, 3)}

    def _error(
        self,
        problem: Exception | str,
        started: float,
        frame: Frame | None,
        *,
        model_seconds: float = 0.0,
        camera: str = '',
        **fields: Any,
    ) -> GroundingResult:
        if isinstance(problem, Exception):
            reason = f'{type(problem).__name__}: {problem}'.rstrip(': ')
        else:
            reason = problem
        fields.update(_frame_fields(frame, camera))
        return error_result(
            reason,
            latency_ms=self._latency(started, model_seconds),
            backend=self.backend_name,
            **fields,
        )
