"""`grounding-agent`: the command line of the package.

Each sub-command lives in `grounding_agent/commands/<name>.py` with `add_arguments(parser)` and
`run(args) -> int`. Those modules keep heavy imports (torch, rclpy, pybullet) inside `run` so that
`grounding-agent parse ...` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ['COMMANDS', 'build_parser', 'main']

# name -> (module under grounding_agent.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    'parse': ('parse', 'parse an operator command and print the structured query as JSON'),
    'ground': ('ground', 'ground one command on one image file and print the result JSON'),
    'schema': ('schema', 'print the JSON Schema of the planner result message'),
    'node': (
        'node',
        'run the ROS 2 grounding node (same as `ros2 run grounding_agent grounding_node`)',
    ),
    'sim': ('sim', 'run the simulated camera node, or render a scene to files'),
    'demo': (
        'demo',
        'simulated camera + grounding node + scripted operator commands, with a report',
    ),
    'eval': ('eval', 'evaluate a backend on a GroundingME-format benchmark'),
    'make-benchmark': ('make_benchmark', 'generate the simulated GroundingME-format benchmark'),
    'eval-tracking': (
        'eval_tracking',
        'evaluate tracking on simulated sequences (MOTA, IDF1, HOTA)',
    ),
    'export': ('export', 'export a model image encoder to ONNX and build a TensorRT engine'),
    'voice': ('voice', 'recognise spoken commands (microphone, WAV file or audio topic)'),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='grounding-agent',
        description='Resolve operator commands into boxes, relation answers or rejections.',
    )
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(f'grounding_agent.commands.{module_name}')
        except ImportError as exc:
            # One broken optional dependency must not take every other command down with it.
            command_parser = sub.add_parser(name, help=f'{help_text} [unavailable: {exc}]')
            command_parser.add_argument('ignored', nargs=argparse.REMAINDER)
            command_parser.set_defaults(_run=_unavailable(name, exc))
            continue
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(_args: argparse.Namespace) -> int:
        print(f'grounding-agent {name} is unavailable: {exc}', file=sys.stderr)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == '__main__':
    sys.exit(main())
