"""`grounding-agent sim`: run the simulated camera node, or render one scene to files.

`grounding-agent sim --render --seed 3 --out DIR` needs no ROS: it writes `rgb.png`,
`depth.npy` (float32 metres), `annotated.png` (true boxes and names) and `truth.json` for one
PyBullet scene. Without `--render` it runs the `sim_camera` node (same as
`ros2 run grounding_agent sim_camera`); the options become node parameters and everything after
`--ros-args` is handed to rclpy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grounding_agent.commands.node import add_ros_args

__all__ = ['add_arguments', 'render_to_directory', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--render',
        action='store_true',
        help='render one scene to files in --out instead of running the ROS node',
    )
    parser.add_argument('--seed', type=int, default=None, help='scene seed (default 0)')
    parser.add_argument(
        '--scene-file',
        default=None,
        help='YAML scene instead of a seeded random one (e.g. config/demo.yaml)',
    )
    parser.add_argument(
        '--time',
        type=float,
        default=0.0,
        help='--render: scene time in seconds (objects with a path move along it)',
    )
    parser.add_argument(
        '--out', default='sim_output', help='--render: output directory (default sim_output)'
    )
    parser.add_argument(
        '--rate-hz', type=float, default=None, help='node: frames per second (default 5)'
    )
    add_ros_args(
        parser, help='node: ROS arguments (parameters, remappings, log level), as for ros2 run'
    )


def render_to_directory(
    out: str | Path,
    *,
    seed: int = 0,
    scene_file: str | Path | None = None,
    time_s: float = 0.0,
) -> dict[str, Path]:
    """Render one scene at `time_s` and write its files into `out`; returns them by name.

    Raises ConfigError for an unreadable scene file, ValueError for a bad time.
    """
    import json

    import cv2
    import numpy as np

    from grounding_agent.core.types import Stamp
    from grounding_agent.sim.frame_truth import draw_truth, truth_document
    from grounding_agent.sim.scene import generate_scene
    from grounding_agent.sim.scene_file import load_scene_file
    from grounding_agent.sim.world import render_scene

    spec = load_scene_file(scene_file) if scene_file else generate_scene(seed)
    render = render_scene(spec, t=time_s)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        'rgb': directory / 'rgb.png',
        'depth': directory / 'depth.npy',
        'annotated': directory / 'annotated.png',
        'truth': directory / 'truth.json',
    }
    cv2.imwrite(str(files['rgb']), np.ascontiguousarray(render.rgb[:, :, ::-1]))
    np.save(files['depth'], render.depth)
    cv2.imwrite(str(files['annotated']), np.ascontiguousarray(draw_truth(render)[:, :, ::-1]))
    document = truth_document(
        render,
        stamp=Stamp.from_seconds(render.stamp_s),
        frame_id='sim_camera_optical_frame',
        seed=spec.seed,
    )
    document['scene'] = spec.to_dict()
    files['truth'].write_text(json.dumps(document, indent=2) + '\n', encoding='utf-8')
    return files


def run(args: argparse.Namespace) -> int:
    if args.render:
        from grounding_agent.core.errors import ConfigError

        try:
            files = render_to_directory(
                args.out,
                seed=0 if args.seed is None else args.seed,
                scene_file=args.scene_file,
                time_s=args.time,
            )
        except (ConfigError, ValueError, OSError) as exc:
            sys.stderr.write(f'grounding-agent sim: {exc}\n')
            return 2
        for path in files.values():
            sys.stdout.write(f'{path}\n')
        return 0

    from grounding_agent.ros.sim_camera import main

    # rclpy reads argv[0] as the program name, like a console script's sys.argv.
    argv = ['sim_camera', '--ros-args']
    if args.seed is not None:
        argv += ['-p', f'seed:={args.seed}']
    if args.scene_file is not None:
        argv += ['-p', f'scene_file:={args.scene_file}']
    if args.rate_hz is not None:
        argv += ['-p', f'rate_hz:={args.rate_hz}']
    if args.ros_args is not None:
        argv += list(args.ros_args)
    return main(argv)
