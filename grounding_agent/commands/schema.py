"""`grounding-agent schema`: print the JSON Schema of the planner result message."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--check',
        action='store_true',
        help='exit 1 when the shipped schema file differs from the models',
    )


def run(args: argparse.Namespace) -> int:
    from grounding_agent.core.result import result_json_schema_text, shipped_schema_path

    text = result_json_schema_text()
    if args.check:
        shipped = shipped_schema_path().read_text(encoding='utf-8')
        if shipped != text:
            print(f'{shipped_schema_path()} is out of date', file=sys.stderr)
            return 1
    sys.stdout.write(text)
    return 0
