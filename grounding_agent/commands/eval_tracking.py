"""`grounding-agent eval-tracking`: MOTA, IDF1, HOTA and target coverage on simulated sequences."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--backend', default='color_shape', help='backend name (default: %(default)s)'
    )
    parser.add_argument('--model', default='', help='model id or directory for model backends')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--kinds',
        default='crossing,occlusion,exit_reentry,mixed',
        help='comma-separated sequence kinds (default: %(default)s)',
    )
    parser.add_argument(
        '--seeds', default='0,1,2', help='comma-separated seeds (default: %(default)s)'
    )
    parser.add_argument(
        '--camera-hz', type=float, default=30.0, help='rendered frame rate (default: 30)'
    )
    parser.add_argument(
        '--model-every', type=int, default=5, help='run the model on every N-th frame (default: 5)'
    )
    parser.add_argument(
        '--no-image-follow',
        action='store_true',
        help='between model answers, predict from the motion alone (no image match)',
    )
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--out', type=Path, default=None, help='write tracking_results.{json,md}')
    parser.add_argument('--no-progress', action='store_true')


def run(args: argparse.Namespace) -> int:
    from grounding_agent.backends.base import BackendConfig, create_backend
    from grounding_agent.core.errors import GroundingError
    from grounding_agent.core.tracking import TrackerConfig
    from grounding_agent.eval.tracking import evaluate_tracking, write_report

    try:
        kinds = [k for k in args.kinds.split(',') if k]
        seeds = [int(s) for s in args.seeds.split(',') if s]
    except ValueError as exc:
        print(f'error: bad --seeds: {exc}', file=sys.stderr)
        return 2
    if args.model_every < 1 or args.camera_hz <= 0:
        print('error: --model-every must be >= 1 and --camera-hz > 0', file=sys.stderr)
        return 2
    try:
        backend = create_backend(
            BackendConfig(name=args.backend, model=args.model, device=args.device)
        )
        report = evaluate_tracking(
            backend,
            kinds=kinds,
            seeds=seeds,
            camera_hz=args.camera_hz,
            model_every=args.model_every,
            resolution=(args.width, args.height),
            tracker_config=TrackerConfig(follow_image=not args.no_image_follow),
            progress=not args.no_progress,
        )
    except (GroundingError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(report.markdown())
    if args.out is not None:
        write_report(report, args.out)
        print(f'wrote {args.out / "tracking_results.json"} and tracking_results.md')
    return 0
