"""`grounding-agent sim`: run the simulated camera node, or render one scene to files.

`grounding-agent sim --render --seed 3 --out DIR` needs no ROS: it writes `rgb.png`, `depth.npy`,
`annotated.png` and `truth.json` for one seeded PyBullet scene. Without `--render` it runs the
`sim_camera` node (same as `ros2 run grounding_agent sim_camera`); the options become node
parameters and everything after `--ros-args` is handed to rclpy.
"""

from __future__ import annotations

import argparse

__all__ = ['add_arguments', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--render',
        action='store_true',
        help='render one scene to files in --out instead of running the ROS node',
    )
    parser.add_argument('--seed', type=int, default=None, help='scene seed (default 0)')
    parser.add_argument(
        '--time',
        type=float,
        default=0.0,
        help='scene time in seconds for --render (moving objects follow their paths)',
    )
    parser.add_argument('--out', default='sim_output', help='output directory for --render')
    parser.add_argument(
        '--rate-hz', type=float, default=None, help='node: frames per second (default 5)'
    )
    parser.add_argument(
        '--ros-args',
        dest='ros_args',
        nargs=argparse.REMAINDER,
        default=None,
        metavar='ARG',
        help='node: ROS arguments (parameters, remappings, log level), as for ros2 run',
    )


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        from grounding_agent.ros import sim_camera
    except ImportError as exc:
        sys.stderr.write(f'grounding-agent sim: the simulator is not available yet ({exc})\n')
        return 2
    if args.render:
        return sim_camera.render_to_directory(
            args.out, seed=0 if args.seed is None else args.seed, time_s=args.time
        )
    argv = ['sim_camera', '--ros-args']
    if args.seed is not None:
        argv += ['-p', f'seed:={args.seed}']
    if args.rate_hz is not None:
        argv += ['-p', f'rate_hz:={args.rate_hz}']
    if args.ros_args is not None:
        argv += list(args.ros_args)
    return sim_camera.main(argv)
