"""`grounding-agent eval-tracking`: MOTA, IDF1, HOTA and target coverage on simulated sequences.

With `--live`, the running node instead: bench/bench_live_tracking.py (a source checkout's)
publishes the sequences over DDS to `grounding_node` in its own process and scores every
planner result against the truth of its frame (docs/benchmarks.md, "Live tracking").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

_LIVE_SCRIPT = Path(__file__).resolve().parents[2] / 'bench' / 'bench_live_tracking.py'


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
        '--seeds', default=None, help='comma-separated seeds (default: 0,1,2; --live: 5)'
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
    parser.add_argument('--width', type=int, default=None, help='default 320 (--live: 640)')
    parser.add_argument('--height', type=int, default=None, help='default 240 (--live: 480)')
    parser.add_argument('--out', type=Path, default=None, help='write tracking_results.{json,md}')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument(
        '--live',
        action='store_true',
        help='score the running node over DDS instead (camera, node and a passthrough as '
        'separate processes; needs a source checkout with bench/)',
    )
    parser.add_argument(
        '--rates', default='10,30', help='--live: camera rates in Hz (default: %(default)s)'
    )
    parser.add_argument(
        '--write', action='store_true', help='--live: write the table to docs/benchmarks.md'
    )


def _run_live(args: argparse.Namespace) -> int:
    if not _LIVE_SCRIPT.exists():
        print(
            f'error: --live runs bench/bench_live_tracking.py of a source checkout; '
            f'{_LIVE_SCRIPT} does not exist',
            file=sys.stderr,
        )
        return 2
    argv = [sys.executable, str(_LIVE_SCRIPT), '--backend', args.backend, '--kinds', args.kinds]
    argv += ['--rates', args.rates, '--width', str(args.live_width)]
    argv += ['--height', str(args.live_height)]
    if args.live_seed is not None:
        argv += ['--seed', str(args.live_seed)]
    if not args.write:
        argv.append('--no-write')
    return subprocess.call(argv)


def run(args: argparse.Namespace) -> int:
    from grounding_agent.backends.base import BackendConfig, create_backend
    from grounding_agent.core.errors import GroundingError
    from grounding_agent.core.tracking import TrackerConfig
    from grounding_agent.eval.tracking import evaluate_tracking, write_report

    try:
        kinds = [k for k in args.kinds.split(',') if k]
        seeds = [int(s) for s in (args.seeds or '0,1,2').split(',') if s]
    except ValueError as exc:
        print(f'error: bad --seeds: {exc}', file=sys.stderr)
        return 2
    if args.live:
        # the live run reports on one seed apart from the offline ones unless told otherwise
        args.live_seed = seeds[0] if args.seeds else None
        args.live_width, args.live_height = args.width or 640, args.height or 480
        return _run_live(args)
    args.width, args.height = args.width or 320, args.height or 240
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
