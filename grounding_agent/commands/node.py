"""`grounding-agent node`: run the ROS 2 grounding node from the venv, without `ros2 run`.

Everything after the sub-command is handed to rclpy, so the usual ROS arguments work:
`grounding-agent node --ros-args --params-file config/grounding_agent.yaml -p query:='track the
red cube' -r __ns:=/robot`.
"""

from __future__ import annotations

import argparse


def add_ros_args(
    parser: argparse.ArgumentParser,
    help: str = 'ROS arguments (parameters, remappings, log level), as for ros2 run',
) -> None:
    """`--ros-args ...`: everything after it, for rclpy (`args.ros_args`, None when absent).

    An option rather than a positional: argparse would take `--ros-args` for an unknown option.
    The sub-commands that start a node share it.
    """
    parser.add_argument(
        '--ros-args',
        dest='ros_args',
        nargs=argparse.REMAINDER,
        default=None,
        metavar='ARG',
        help=help,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_ros_args(parser)


def run(args: argparse.Namespace) -> int:
    from grounding_agent.ros.grounding_node import main

    # rclpy reads argv[0] as the program name, like a console script's sys.argv.
    argv = ['grounding_node']
    if args.ros_args is not None:
        argv += ['--ros-args', *args.ros_args]
    return main(argv)
