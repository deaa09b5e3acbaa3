"""Command intake: every message becomes one classified request or one refusal, never a crash."""

from __future__ import annotations

import json

import pytest

from grounding_agent.core.intake import (
    MAX_JSON_DEPTH,
    MAX_REQUEST_ID_CHARS,
    CommandKind,
    CommandLedger,
    CommandRequest,
    max_message_bytes,
    take_command,
)
from grounding_agent.core.result import GroundingResult, ResultStatus

CAMERAS = ['front', 'wrist']
DEEP_OBJECT = '{"a":' * 10_000 + '1' + '}' * 10_000
DEEP_ARRAY = '[' * 100_000 + ']' * 100_000


def take(message: bytes | str, max_chars: int = 500) -> CommandRequest | GroundingResult:
    return take_command(
        message, cameras=CAMERAS, default_camera='front', received_s=1.0, max_chars=max_chars
    )


@pytest.mark.parametrize(
    ('message', 'expected'),
    [
        ('find the red cube', ('find the red cube', '', 'front')),
        (
            '{"text": "find the cup", "request_id": "42", "camera": "wrist"}',
            ('find the cup', '42', 'wrist'),
        ),
        ('{"text": "find the cup", "request_id": 7}', ('find the cup', '7', 'front')),
        # a real U+FFFD, sent as valid UTF-8, is text like any other
        ('find the \ufffd cube'.encode(), ('find the \ufffd cube', '', 'front')),
        ('  {"text": "find [it] {now}"}', ('find [it] {now}', '', 'front')),
        (
            '{"text": "find it", "camera": "roof", "request_id": "9"}',
            "error 9: unknown camera 'roof'",
        ),
        ('{"text": "find', 'error : command is not valid JSON'),
        ('{"request_id": "3"}', 'error 3: a JSON command needs "text"'),
        ('{"text": "x", "id": "3"}', "error : unknown keys in JSON command: ['id']"),
        ('{"text": "x", "request_id": [1]}', 'error : request_id must be a string'),
        ('{"text": "x", "request_id": true}', 'error : request_id must be a string'),
        ('["find the red cube"]', 'error : a JSON command must be an object'),
        ('[1, 2', 'error : command is not valid JSON'),
        ('{"request_id": "s1", "text": ', 'error s1: command is not valid JSON'),
        ('[{"text": "find it", "request_id": 5}]', 'error 5: a JSON command must be an object'),
        ('{"text": ["a"]}', 'error : a JSON command needs "text"'),
        (b'find the \xff\xfe cube', 'error : command is not valid UTF-8 text (byte 0xff at'),
        ('   ', 'error : empty command'),
        ('x' * 600, 'error : command of 600 characters is longer than resolver.max_command'),
        ('x' * 1_000_000, 'error : command message of 1000000 bytes is refused unread'),
        (DEEP_OBJECT, f'error : JSON command nests deeper than {MAX_JSON_DEPTH} levels'),
        (DEEP_ARRAY, 'error : command message of 200000 bytes is refused unread'),
        # escaped quotes that never close a string: one pass, no backtracking
        ('{"' + '\\"' * 30_000, 'error : command is not valid JSON: Unterminated string'),
        ('{"a": "\\\\", "b": ' + '[' * 9 + ']' * 9 + '}', 'error : JSON command nests deeper'),
        ('{"text": "find \\"[[[[[[[[[[ cube\\""}', ('find "[[[[[[[[[[ cube"', '', 'front')),
        (
            '{"request_id": "deep", "text": ' + '[' * 50 + ']' * 50 + '}',
            f'error deep: JSON command nests deeper than {MAX_JSON_DEPTH}',
        ),
        (
            '{"request_id": "big", "text": "' + 'x' * 200_000 + '"}',
            'error big: command message of 200033 bytes is refused unread',
        ),
    ],
)
def test_command_messages(message: bytes | str, expected: tuple[str, str, str] | str) -> None:
    request = take(message)
    if isinstance(expected, str):
        assert isinstance(request, GroundingResult)
        assert request.status is ResultStatus.ERROR
        assert f'error {request.request_id}: {request.reason}'.startswith(expected)
        assert len(request.command) <= 203
    else:
        assert isinstance(request, CommandRequest)
        assert (request.text, request.request_id, request.camera) == expected


def test_a_deep_json_text_within_the_size_limit_is_refused_before_parsing() -> None:
    deep = '[' * 20_000 + ']' * 20_000  # 40 kB, below the size limit: json.loads would recurse
    assert len(deep) < max_message_bytes(500)
    result = take(deep)
    assert isinstance(result, GroundingResult)
    assert 'nests deeper than' in result.reason


def test_long_request_ids_are_refused_with_their_beginning() -> None:
    long_id = 'r' * 100_000
    result = take(json.dumps({'text': 'find the cube', 'request_id': long_id}), max_chars=20_000)
    assert isinstance(result, GroundingResult)
    assert result.request_id == long_id[:MAX_REQUEST_ID_CHARS]
    assert result.reason.startswith('request_id of 100000 characters is longer than 256')
    ok = take(json.dumps({'text': 'find the cube', 'request_id': 'r' * MAX_REQUEST_ID_CHARS}))
    assert isinstance(ok, CommandRequest)


@pytest.mark.parametrize(
    ('text', 'kind'),
    [
        ('find the red cube', CommandKind.ONE_SHOT),
        ('how many cubes are there?', CommandKind.ONE_SHOT),
        ('track the red cube', CommandKind.TRACK),
        ('follow the person in the red shirt', CommandKind.TRACK),
        ('stop', CommandKind.STOP),
        ('robot, never mind', CommandKind.STOP),
        ('qwxz blorp', CommandKind.ONE_SHOT),  # unreadable: the agent answers with why
    ],
)
def test_commands_are_classified(text: str, kind: CommandKind) -> None:
    request = take(text)
    assert isinstance(request, CommandRequest)
    assert request.kind is kind


def test_the_ledger_counts_each_answer_once() -> None:
    ledger = CommandLedger()
    for _ in range(3):
        ledger.received()
    ledger.answered()
    ledger.answered(refused=True)
    ledger.lost()
    assert ledger.counts() == {'received': 3, 'answered': 2, 'refused': 1, 'lost': 1}
