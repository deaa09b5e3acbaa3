"""`grounding-agent demo` (`make demo`): simulated camera + grounding node + scripted commands.

Runs the `sim_camera` node and the grounding node (default backend `color_shape`) on real DDS in
one process, sends the operator commands of the demo script (config/demo.yaml by default), prints
a table of the answers and writes a Markdown report with annotated images to --out.
"""

from __future__ import annotations

import argparse

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--out', default='demo_output', help='report directory (default demo_output)'
    )
    parser.add_argument(
        '--script',
        default=None,
        help='demo script YAML (scene, commands, timing); default: the packaged demo.yaml',
    )
    parser.add_argument(
        '--max-commands',
        type=int,
        default=None,
        help='run only the first N scripted commands (a quick check)',
    )
    parser.add_argument(
        '--track-seconds',
        type=float,
        default=None,
        help='length of the standing-query phase (default: the script; 0 skips it)',
    )
    parser.add_argument(
        '--backend',
        default='color_shape',
        help='grounding backend (default color_shape; others need their model weights)',
    )


def run(args: argparse.Namespace) -> int:
    from grounding_agent.demo.runner import main_from_args

    return main_from_args(args)
