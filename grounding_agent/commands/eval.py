"""`grounding-agent eval`: score a backend on a GroundingME-format benchmark (or RefCOCO).

Writes `OUT/results.json` (metrics and every prediction), `OUT/results.md` and `OUT/accuracy.png`
and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ['add_arguments', 'run']


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as a device name
    return key.strip(), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--dataset',
        required=True,
        help='benchmark directory (annotations.jsonl, *.parquet or RefCOCO refs '
        'pickle + instances.json) or one annotation file',
    )
    parser.add_argument(
        '--backend', default='color_shape', help='backend name (default %(default)s)'
    )
    parser.add_argument('--model', default='', help='model id or local directory of the backend')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    parser.add_argument(
        '--limit', type=int, default=None, help='evaluate only the first N samples'
    )
    parser.add_argument(
        '--prompt-mode',
        choices=('agent', 'groundingme'),
        default='agent',
        help='agent: the full grounding agent; groundingme: the whole description '
        "to a generative backend with GroundingME's prompt, null = rejection",
    )
    parser.add_argument('--out', required=True, help='output directory for the report files')
    parser.add_argument(
        '--format',
        dest='dataset_format',
        default='auto',
        choices=('auto', 'groundingme', 'groundingme-parquet', 'refcoco'),
        help='annotation format (default: detected from the files)',
    )
    parser.add_argument('--split', default='val', help='RefCOCO split (val, testA, testB, test)')
    parser.add_argument(
        '--images', default=None, help='RefCOCO image directory (default DATASET/images)'
    )
    parser.add_argument(
        '--resolver',
        action='append',
        type=_key_value,
        default=[],
        metavar='KEY=VALUE',
        help='resolver threshold override (repeatable)',
    )
    parser.add_argument(
        '--backend-option',
        action='append',
        type=_key_value,
        default=[],
        metavar='KEY=VALUE',
        help='backend option (repeatable)',
    )
    parser.add_argument(
        '--predictions',
        default=None,
        help='score this saved predictions file (JSONL/JSON with id, status, '
        'pred_bbox) instead of running a backend',
    )
    parser.add_argument('--quiet', action='store_true', help='no progress bar')


def run(args: argparse.Namespace) -> int:
    from grounding_agent.backends.base import BackendConfig
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.errors import GroundingError
    from grounding_agent.eval.evaluator import run_evaluation
    from grounding_agent.eval.report import metrics_markdown

    try:
        backend_config = BackendConfig.from_mapping(
            {
                'name': args.backend,
                'model': args.model,
                'device': args.device,
                'options': dict(args.backend_option),
            }
        )
        resolver_config = ResolverConfig.from_mapping(dict(args.resolver))
        metrics = run_evaluation(
            args.dataset,
            out_dir=args.out,
            backend_config=backend_config,
            resolver_config=resolver_config,
            prompt_mode=args.prompt_mode,
            dataset_format=args.dataset_format,
            split=args.split,
            images_dir=args.images,
            limit=args.limit,
            predictions_file=args.predictions,
            progress=not args.quiet,
        )
    except GroundingError as exc:
        print(f'grounding-agent eval: {exc}', file=sys.stderr)
        return 2
    sys.stdout.write(metrics_markdown(metrics))
    print(f'report written to {args.out}', file=sys.stderr)
    return 0
