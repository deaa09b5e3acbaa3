"""`grounding-agent make-benchmark --out DIR`: generate the simulated GroundingME-format benchmark.

Writes DIR/images/*.png, DIR/annotations.jsonl, DIR/scenes.jsonl and DIR/meta.json (see
`grounding_agent.eval.benchmark`), with a progress bar, and prints the counts per category.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ['add_arguments', 'run']


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text}')
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text}')
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--out', required=True, type=Path, help='output directory')
    parser.add_argument(
        '--samples', type=_positive, default=1000, help='number of samples (default %(default)s)'
    )
    parser.add_argument(
        '--seed', type=_non_negative, default=0, help='benchmark seed (default %(default)s)'
    )
    parser.add_argument(
        '--workers',
        type=_positive,
        default=max(1, min(4, os.cpu_count() or 1)),
        help='rendering processes (default: CPU cores, at most 4; %(default)s here)',
    )
    parser.add_argument('--width', type=_positive, default=640, help='image width (pixels)')
    parser.add_argument('--height', type=_positive, default=480, help='image height (pixels)')
    parser.add_argument(
        '--preset',
        choices=('fixed', 'randomised'),
        default='fixed',
        help="the scenes' look: 'fixed' or 'randomised' lighting, camera, table, floor, paints "
        'and sizes (docs/simulation.md; calibrate on seeds 100-199, report on 200-299)',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from grounding_agent.eval.benchmark import BenchmarkError, generate_benchmark

    out: Path = args.out
    if out.exists() and (out / 'annotations.jsonl').exists():
        print(f'{out} already holds a benchmark; choose another --out', file=sys.stderr)
        return 2
    with tqdm(total=args.samples, unit='sample', desc='benchmark', disable=args.quiet) as bar:
        try:
            annotations = generate_benchmark(
                out,
                n_samples=args.samples,
                seed=args.seed,
                workers=args.workers,
                width=args.width,
                height=args.height,
                progress=bar.update,
                preset=args.preset,
            )
        except BenchmarkError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    meta = json.loads((annotations.parent / 'meta.json').read_text())
    print(f'wrote {meta["n_samples"]} samples on {meta["images"]} images to {annotations}')
    for l1, l2s in meta['counts'].items():
        parts = ', '.join(f'{l2} {n}' for l2, n in l2s.items())
        print(f'  {l1}: {sum(l2s.values())} ({parts})')
    return 0
