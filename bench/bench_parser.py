"""Command parser cost (target: under 1 ms for a typical command on this CPU).

Times `parse_command` on operator commands of growing length, from 'find the red cube' to a
long benchmark-style description, plus the one-off cost of building the LALR parser on first
use. Medians of many repetitions. Writes the 'parser' section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine_line, update_section
from grounding_agent.core import parser as command_parser

COMMANDS: tuple[str, ...] = (
    'find the red cube',
    'pick up the small red mug left of the laptop',
    'is the cup between the box and the blue ball?',
    'how many red cubes are on the table?',
    'Hey robot, could you track the person in the red shirt next to the door, please?',
    'The woman wearing a white shirt and holding a black umbrella, standing to the left of '
    'the red car parked on the left side of the street.',
)


def _median_us(text: str, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        command_parser.parse_command(text)
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def run(repeats: int = 2000) -> tuple[float, list[tuple[str, int, float]]]:
    """(first-use build ms, [(command, tokens, median us)])."""
    command_parser._command_parser.cache_clear()
    command_parser._phrase_table.cache_clear()
    start = time.perf_counter()
    command_parser.parse_command('find the cube')
    build_ms = (time.perf_counter() - start) * 1e3
    rows = [
        (text, len(command_parser.tokenize_command(text)), _median_us(text, repeats))
        for text in COMMANDS
    ]
    return build_ms, rows


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument('--repeats', type=int, default=2000)
    cli.add_argument('--no-write', action='store_true')
    args = cli.parse_args()
    build_ms, rows = run(args.repeats)
    lines = [
        '## Command parser (`bench/bench_parser.py`)',
        '',
        f'{machine_line()}. `parse_command` median of {args.repeats} calls per command; the '
        'first call also builds the LALR parser and the phrase table once per process.',
        '',
        '| command | tokens | median us |',
        '|---|---|---|',
        *(f'| {text} | {tokens} | {us:.0f} |' for text, tokens, us in rows),
        '',
        f'First call (builds the grammar and the phrase table): {build_ms:.1f} ms.',
    ]
    markdown = '\n'.join(lines) + '\n'
    print(markdown)
    if not args.no_write:
        update_section('parser', markdown)
    return 0


if __name__ == '__main__':
    sys.exit(main())
