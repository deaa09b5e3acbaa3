"""`grounding-agent parse TEXT...`: print the structured query of an operator command as JSON.

A command that cannot be understood prints the `error` result the planner would receive and
exits with status 2, so scripts can tell the two apart.

`grounding-agent parse --batch FILE` reads one command per line (`-` reads standard input) and
prints one JSON document per line, in order: the document `parse TEXT` prints for that line, or
its `error` result. No line stops the batch: a line the parser fails on, even with an internal
error, gets an `error` result and the next line is read. The exit status is 0 when every line
was understood and 2 when at least one was answered with an `error` result.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

__all__ = ['INTERNAL_ERROR_PREFIX', 'add_arguments', 'iter_batch', 'parse_line', 'run']

# The reason of the `error` result of a line the parser raised an unexpected exception on.
INTERNAL_ERROR_PREFIX = 'internal error while parsing'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        'text', nargs='*', help="the command, e.g. 'find the red mug left of the laptop'"
    )
    parser.add_argument(
        '--batch',
        metavar='FILE',
        help="read one command per line from FILE ('-' for standard input) and print one "
        'JSON document per line',
    )
    parser.add_argument(
        '--tokens', action='store_true', help='also print the tokens the grammar saw'
    )
    parser.add_argument(
        '--max-chars',
        type=int,
        default=None,
        help='longest command accepted (default: the parser limit, 500 characters)',
    )


def parse_line(
    text: str, *, max_chars: int | None = None, tokens: bool = False
) -> tuple[bool, dict[str, Any]]:
    """(understood, document) for one command: the parsed query, or the `error` result.

    Never raises for any text: an unexpected exception of the parser becomes an `error` result
    whose reason starts with INTERNAL_ERROR_PREFIX.
    """
    from grounding_agent.core.errors import CommandError
    from grounding_agent.core.parser import (
        MAX_COMMAND_CHARS,
        parse_command,
        query_to_dict,
        tokenize_command,
    )
    from grounding_agent.core.result import error_result

    limit = MAX_COMMAND_CHARS if max_chars is None else max_chars
    try:
        document = query_to_dict(parse_command(text, max_chars=limit))
        if tokens:
            seen = tokenize_command(text, max_chars=limit)
            document['tokens'] = [f'{token.kind}({token.text})' for token in seen]
        return True, document
    except CommandError as exc:
        reason = str(exc)
    except Exception as exc:
        reason = f'{INTERNAL_ERROR_PREFIX}: {type(exc).__name__}: {exc}'
    # The planner would see this result for the same command.
    result = error_result(reason, command=text[:limit])
    return False, json.loads(result.model_dump_json(by_alias=True))


def iter_batch(
    lines: Iterable[str], *, max_chars: int | None = None, tokens: bool = False
) -> Iterator[tuple[bool, dict[str, Any]]]:
    """`parse_line` for every line, in order (a trailing line break is not part of it)."""
    for line in lines:
        yield parse_line(line.rstrip('\r\n'), max_chars=max_chars, tokens=tokens)


def run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.text:
            sys.stderr.write('parse: give either TEXT or --batch FILE, not both\n')
            return 2
        return _run_batch(args)
    if not args.text:
        sys.stderr.write('parse: give the command TEXT, or --batch FILE\n')
        return 2
    understood, document = parse_line(
        ' '.join(args.text), max_chars=args.max_chars, tokens=args.tokens
    )
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + '\n')
    return 0 if understood else 2


def _run_batch(args: argparse.Namespace) -> int:
    try:
        stream = _open_input(args.batch)
    except OSError as exc:
        sys.stderr.write(f'parse: cannot read {args.batch}: {exc.strerror or exc}\n')
        return 2
    all_understood = True
    with stream as lines:
        for understood, document in iter_batch(
            lines, max_chars=args.max_chars, tokens=args.tokens
        ):
            all_understood = all_understood and understood
            sys.stdout.write(json.dumps(document, ensure_ascii=False) + '\n')
            sys.stdout.flush()  # one answer per line as soon as it is known (pipes)
    return 0 if all_understood else 2


def _open_input(name: str) -> AbstractContextManager[IO[str]]:
    """The batch input as text; bytes that are not UTF-8 are replaced, not fatal.

    Standard input is left open when the batch ends.
    """
    if name != '-':
        return open(name, encoding='utf-8', errors='replace')
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        stdin.reconfigure(encoding='utf-8', errors='replace')
    return nullcontext(stdin)
