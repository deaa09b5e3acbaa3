"""Operator command intake: one message in, one request to schedule or one refusal out.

Everything a command message must pass before it may wait for a frame is decided here, without
ROS and without a model: its size (bounded before it is decoded), its encoding (strict UTF-8),
its JSON (nesting bounded before `json.loads`, an object with known keys only), its request id
(at most `MAX_REQUEST_ID_CHARS`), its camera, and what kind of command it is (one-shot, track,
stop). The ROS node calls `take_command` once per message; the worker only schedules.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from grounding_agent.core.control import is_stop_command, stop_result
from grounding_agent.core.errors import CommandError
from grounding_agent.core.result import GroundingResult, error_result
from grounding_agent.core.types import Query, QueryKind

__all__ = [
    'MAX_JSON_DEPTH',
    'MAX_REQUEST_ID_CHARS',
    'CommandKind',
    'CommandLedger',
    'CommandRequest',
    'classify',
    'max_message_bytes',
    'take_command',
]

#: A request id longer than this is refused (its answer carries the first this-many characters).
MAX_REQUEST_ID_CHARS: Final = 256
#: JSON nested deeper than this is refused before it is parsed. A command is one flat object;
#: the margin lets `{"text": ["a"]}` get the precise reason ("text" must be a string).
MAX_JSON_DEPTH: Final = 8
#: Commands echoed in refusals are cut to this many characters.
_ECHO_CHARS: Final = 200
_COMMAND_KEYS: Final = frozenset({'text', 'request_id', 'camera'})

_JSON_SPECIAL = re.compile(r'["\\\[\]{}]')
# A request id read from a message that is refused without a parsed one (too big, too deep,
# not UTF-8, not JSON, not an object), so the sender can still match the answer; bounded, so
# it costs one linear scan.
_REQUEST_ID = re.compile(r'"request_id"\s*:\s*(?:"((?:[^"\\]|\\.){0,256})"|(-?\d{1,20})\b)')


class CommandKind(str, Enum):
    ONE_SHOT = 'one_shot'  # answered once on a frame (find, count, is ... left of ...)
    TRACK = 'track'  # answered once, then kept running as the standing query
    STOP = 'stop'  # ends the standing query; needs no frame and no model


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One accepted operator command: what to ground, on which camera, and when it arrived."""

    text: str
    camera: str
    request_id: str = ''
    received_s: float = 0.0
    kind: CommandKind = CommandKind.ONE_SHOT

    def error(self, reason: str) -> GroundingResult:
        """The `error` result that answers this command."""
        return error_result(
            reason, request_id=self.request_id, command=self.text, camera=self.camera
        )

    def stopped(self, standing_query: str) -> GroundingResult:
        """The answer to a stop command: which standing query it ended ('' = none ran)."""
        return stop_result(
            standing_query, request_id=self.request_id, command=self.text, camera=self.camera
        )


def max_message_bytes(max_chars: int) -> int:
    """The largest `~/command` message decoded at all: room for `max_chars` characters of
    text as escaped JSON plus the other keys; anything bigger is refused unread."""
    return max(64 * 1024, 8 * max_chars + 1024)


def _echo(text: str) -> str:
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + '...'


def _json_depth(message: str, limit: int) -> int:
    """How deep `message` nests arrays and objects, counting only up to `limit` + 1.

    Brackets inside strings do not count. One pass over the characters JSON gives a meaning
    to (no regular expression that could backtrack, no recursion).
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _JSON_SPECIAL.finditer(message):
        position, char = match.start(), match.group()
        if in_string:
            if position == escaped_at:
                continue
            if char == '\\':
                escaped_at = position + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in ']}':
            depth -= 1
    return deepest


def _salvaged_request_id(message: str) -> str:
    match = _REQUEST_ID.search(message)
    if match is None:
        return ''
    if match.group(2) is not None:
        return match.group(2)
    try:
        value = json.loads(f'"{match.group(1)}"')
    except ValueError:
        return ''
    return value if isinstance(value, str) else ''


def classify(text: str, *, parser: Callable[[str], Query] | None = None) -> CommandKind:
    """Stop, track (a standing grounding: 'track the red cube', 'follow ...') or one-shot.

    A command the parser cannot read is one-shot: the agent answers it with the parser's reason.
    """
    if is_stop_command(text):
        return CommandKind.STOP
    if parser is None:
        from grounding_agent.core.parser import parse_command

        parser = parse_command
    try:
        query = parser(text)
    except CommandError:
        return CommandKind.ONE_SHOT
    return CommandKind.TRACK if query.kind is QueryKind.TRACK else CommandKind.ONE_SHOT


def _decode(payload: bytes | memoryview | str, max_chars: int) -> str | GroundingResult:
    max_bytes = max_message_bytes(max_chars)
    if isinstance(payload, str):  # text from a Python caller: measured as its UTF-8 bytes
        size = len(payload) if payload.isascii() else len(payload.encode('utf-8', 'surrogatepass'))
        if size > max_bytes:
            return _too_big(size, max_chars, payload[:4096])
        return payload
    payload = memoryview(payload)
    if payload.nbytes > max_bytes:
        head = str(payload[:4096], 'utf-8', errors='replace')
        return _too_big(payload.nbytes, max_chars, head)
    try:
        return str(payload, 'utf-8')
    except UnicodeDecodeError as exc:
        bad = bytes(payload[exc.start : exc.start + 1]).hex()
        readable = str(payload, 'utf-8', errors='replace')
        return error_result(
            f'command is not valid UTF-8 text (byte 0x{bad} at offset {exc.start})',
            request_id=_salvaged_request_id(readable),
            command=_echo(readable),
        )


def _too_big(size: int, max_chars: int, head: str) -> GroundingResult:
    return error_result(
        f'command message of {size} bytes is refused unread: longer than '
        f'resolver.max_command_chars={max_chars} allows ({max_message_bytes(max_chars)} bytes)',
        request_id=_salvaged_request_id(head),
        command=_echo(head),
    )


def _from_json(message: str, default_camera: str) -> tuple[str, str, str] | GroundingResult:
    """(text, request_id, camera) of a JSON command, or the error result that refuses it."""
    echo = _echo(message)
    depth = _json_depth(message, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        return error_result(
            f'JSON command nests deeper than {MAX_JSON_DEPTH} levels; a command is one object '
            f'{{"text": ..., "request_id": ..., "camera": ...}}',
            request_id=_salvaged_request_id(message),
            command=echo,
        )
    try:
        document: Any = json.loads(message)
    except (ValueError, RecursionError) as exc:  # RecursionError: defence in depth
        return error_result(
            f'command is not valid JSON: {exc}',
            request_id=_salvaged_request_id(message),
            command=echo,
        )
    if not isinstance(document, dict):
        return error_result(
            f'a JSON command must be an object {{"text": ..., "request_id": ..., "camera": ...}},'
            f' not {_json_type(document)}',
            request_id=_salvaged_request_id(message),
            command=echo,
        )
    raw_id = document.get('request_id', '')
    valid_id = isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool)
    request_id = str(raw_id) if valid_id else ''
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        return error_result(
            f'request_id of {len(request_id)} characters is longer than {MAX_REQUEST_ID_CHARS};'
            ' the answer carries its beginning',
            request_id=request_id[:MAX_REQUEST_ID_CHARS],
            command=echo,
        )
    unknown = sorted(set(document) - _COMMAND_KEYS)
    if unknown:
        return error_result(
            f'unknown keys in JSON command: {unknown}; allowed: {sorted(_COMMAND_KEYS)}',
            request_id=request_id,
            command=echo,
        )
    if not valid_id:
        return error_result('request_id must be a string or an integer', command=echo)
    text = document.get('text')
    if not isinstance(text, str):
        return error_result(
            'a JSON command needs "text" (a string)', request_id=request_id, command=echo
        )
    camera = document.get('camera') or default_camera
    if not isinstance(camera, str):
        return error_result('camera must be a string', request_id=request_id, command=_echo(text))
    return text, request_id, camera


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return 'an array'
    if isinstance(value, str):
        return 'a string'
    if value is None:
        return 'null'
    return f'a {type(value).__name__}'


def take_command(
    payload: bytes | memoryview | str,
    *,
    cameras: Sequence[str],
    default_camera: str,
    received_s: float,
    max_chars: int,
    parser: Callable[[str], Query] | None = None,
) -> CommandRequest | GroundingResult:
    """A `~/command` message as a classified request, or the `error` result that answers it.

    `payload` is the message's UTF-8 bytes as they came off the wire (or text). Plain text is
    the command itself; a message starting with `{` or `[` must be a JSON object
    `{"text": ..., "request_id": ..., "camera": ...}` (only `text` required). Never raises on
    any input.
    """
    decoded = _decode(payload, max_chars)
    if isinstance(decoded, GroundingResult):
        return decoded
    text, request_id, camera = decoded, '', default_camera
    if decoded.lstrip().startswith(('{', '[')):
        fields = _from_json(decoded, default_camera)
        if isinstance(fields, GroundingResult):
            return fields
        text, request_id, camera = fields
    if not text.strip():
        return error_result('empty command', request_id=request_id, command=text)
    if len(text) > max_chars:
        return error_result(
            f'command of {len(text)} characters is longer than resolver.max_command_chars='
            f'{max_chars}',
            request_id=request_id,
            command=_echo(text),
        )
    if camera not in cameras:
        return error_result(
            f'unknown camera {_echo(camera)!r}; cameras: {list(cameras)}',
            request_id=request_id,
            command=text,
            camera=_echo(camera),
        )
    request = CommandRequest(
        text=text, camera=camera, request_id=request_id, received_s=received_s
    )
    return replace(request, kind=classify(text, parser=parser))


class CommandLedger:
    """What happened to the commands: received, answered, refused (answered at once: malformed,
    busy, shutting down), lost (announced by the middleware, or an answer that could not be
    published). Thread-safe; every answer is counted once, where it is published."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = 0
        self._answered = 0
        self._refused = 0
        self._lost = 0

    def received(self) -> None:
        with self._lock:
            self._received += 1

    def answered(self, *, refused: bool = False) -> None:
        with self._lock:
            self._answered += 1
            self._refused += int(refused)

    def lost(self, count: int = 1) -> None:
        with self._lock:
            self._lost += count

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                'received': self._received,
                'answered': self._answered,
                'refused': self._refused,
                'lost': self._lost,
            }
