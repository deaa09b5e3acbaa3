"""`grounding-agent parse --batch`: one JSON document per input line, never a crash."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from grounding_agent.commands import parse
from grounding_agent.core.result import GroundingResult, ResultStatus


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    cli = argparse.ArgumentParser()
    parse.add_arguments(cli)
    status = parse.run(cli.parse_args(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_every_line_gets_one_document_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        b'find the red mug',
        b'',  # an empty line is an empty command
        b'find the',  # the grammar stops early
        b'x' * 600,  # longer than the parser accepts
        b'find the red \xff mug',  # not UTF-8
        b'pick up the blue block from the table\r',  # Windows line end
    ]
    batch = tmp_path / 'commands.txt'
    batch.write_bytes(b'\n'.join(lines) + b'\n')

    status, out, _err = _run(['--batch', str(batch)], capsys)

    documents = _documents(out)
    assert status == 2  # at least one line was answered with an error
    assert len(documents) == len(lines)
    assert documents[0]['target']['noun'] == 'mug'
    for index in (1, 2, 3):
        result = GroundingResult.model_validate(documents[index])
        assert result.status == ResultStatus.ERROR
        assert result.reason
    assert documents[4]['text'] == 'find the red \ufffd mug'
    assert documents[5]['text'] == 'pick up the blue block from the table'


def test_a_line_reads_as_parse_text_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = ['find the red mug left of the laptop', 'how many cups are on the table?']
    batch = tmp_path / 'commands.txt'
    batch.write_text('\n'.join(commands) + '\n', encoding='utf-8')

    status, out, _err = _run(['--batch', str(batch)], capsys)

    assert status == 0
    singles = []
    for command in commands:
        single_status, single_out, _ = _run(command.split(), capsys)
        assert single_status == 0
        singles.append(json.loads(single_out))
    assert _documents(out) == singles
    assert all('\n' not in line for line in out.splitlines())


def test_dash_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr('sys.stdin', io.StringIO('find the cup\nfind the box\n'))

    status, out, _err = _run(['--batch', '-'], capsys)

    assert status == 0
    assert [d['target']['noun'] for d in _documents(out)] == ['cup', 'box']


def test_a_parser_that_raises_on_one_line_does_not_end_the_batch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from grounding_agent.core import parser as core_parser

    real = core_parser.parse_command

    def raising_on_boom(text: str, **kwargs: Any) -> Any:  # stands in for a parser bug
        if 'boom' in text:
            raise RuntimeError('injected fault')
        return real(text, **kwargs)

    monkeypatch.setattr(core_parser, 'parse_command', raising_on_boom)
    monkeypatch.setattr('sys.stdin', io.StringIO('find the boom\nfind the cup\n'))

    status, out, _err = _run(['--batch', '-'], capsys)

    first, second = _documents(out)
    assert status == 2
    assert first['status'] == 'error'
    assert first['reason'].startswith(parse.INTERNAL_ERROR_PREFIX)
    assert 'RuntimeError: injected fault' in first['reason']
    assert second['target']['noun'] == 'cup'


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['--batch', 'commands.txt', 'find', 'the', 'cup'], 'not both'),
        ([], 'give the command TEXT'),
        (['--batch', 'does-not-exist.txt'], 'cannot read does-not-exist.txt'),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)

    status, out, err = _run(argv, capsys)

    assert (status, out) == (2, '')
    assert message in err
