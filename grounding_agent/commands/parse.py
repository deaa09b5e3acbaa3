"""`grounding-agent parse TEXT...`: print the structured query of an operator command as JSON.

A command that cannot be understood prints the `error` result the planner would receive and
exits with status 2, so scripts can tell the two apart.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        'text', nargs='+', help="the command, e.g. 'find the red mug left of the laptop'"
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


def run(args: argparse.Namespace) -> int:
    from grounding_agent.core.errors import CommandError
    from grounding_agent.core.parser import (
        MAX_COMMAND_CHARS,
        parse_command,
        query_to_dict,
        tokenize_command,
    )
    from grounding_agent.core.result import error_result

    text = ' '.join(args.text)
    max_chars = MAX_COMMAND_CHARS if args.max_chars is None else args.max_chars
    try:
        query = parse_command(text, max_chars=max_chars)
        document = query_to_dict(query)
        if args.tokens:
            tokens = tokenize_command(text, max_chars=max_chars)
            document['tokens'] = [f'{token.kind}({token.text})' for token in tokens]
    except CommandError as exc:
        # The planner would see this result for the same command.
        result = error_result(str(exc), command=text)
        sys.stdout.write(result.model_dump_json(by_alias=True, indent=2) + '\n')
        return 2
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + '\n')
    return 0
