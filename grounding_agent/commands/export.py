"""`grounding-agent export`: OWL image encoder -> ONNX (checked against torch) -> TensorRT engine.

    grounding-agent export --backend owlv2 --model DIR --onnx OUT.onnx [--image-size N]
    grounding-agent export --backend owlv2 --model DIR --onnx OUT.onnx --engine OUT.engine --fp16
    grounding-agent export --backend owlv2 --model OUT.onnx --engine OUT.engine   # engine only

Prints a JSON summary. Each written file gets a sidecar JSON naming the Hugging Face directory
its processor and text encoder come from, so `model: OUT.onnx` / `model: OUT.engine` just works.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ['add_arguments', 'run']

# The only families whose image encoder can be exported today.
_EXPORTABLE = ('owlv2', 'owlvit')
# ONNX Runtime and torch agree far more closely than this on a correct export; a bigger gap
# means a broken graph, not rounding.
_PARITY_TOLERANCE = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--backend', choices=_EXPORTABLE, default='owlv2', help='model family (default: owlv2)'
    )
    parser.add_argument(
        '--model',
        required=True,
        help='Hugging Face id or directory; or an .onnx file to build an engine from',
    )
    parser.add_argument('--onnx', type=Path, help='write the image encoder to this .onnx file')
    parser.add_argument(
        '--image-size',
        type=int,
        default=None,
        help="input side in pixels (default: the model's own, 960 for OWLv2-B/16)",
    )
    parser.add_argument('--opset', type=int, default=18, help='ONNX opset (>= 18; default 18)')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='skip the ONNX Runtime vs torch comparison after export',
    )
    parser.add_argument('--engine', type=Path, help='also build a TensorRT engine at this path')
    parser.add_argument('--fp16', action='store_true', help='build the engine in FP16')
    parser.add_argument(
        '--workspace-mb',
        type=int,
        default=4096,
        help='TensorRT builder workspace in MiB (default 4096)',
    )
    parser.add_argument(
        '--engine-cache-dir',
        default=None,
        help='reuse / store engines here, keyed by model hash, shape, precision, '
        'TensorRT version and GPU (default: build directly at --engine)',
    )
    parser.add_argument(
        '--device', default='cuda', help='CUDA device the engine is built for (default: cuda)'
    )
    parser.add_argument(
        '--online',
        action='store_true',
        help='allow downloading a Hugging Face id (default: local files only)',
    )


def run(args: argparse.Namespace) -> int:
    from grounding_agent.core.errors import GroundingError

    try:
        summary = _export(args)
    except GroundingError as exc:
        print(f'export failed: {exc}', file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if summary.get('ok', True) else 1


def _export(args: argparse.Namespace) -> dict[str, Any]:
    from grounding_agent.backends.owl_export import compare_with_torch, export_owl_image_encoder
    from grounding_agent.backends.owl_graph import read_sidecar
    from grounding_agent.core.errors import ConfigError
    from grounding_agent.runtime.model_files import require_file

    summary: dict[str, Any] = {'backend': args.backend, 'ok': True}
    if args.model.endswith('.onnx'):
        onnx_path = require_file(args.model, 'ONNX model')
        if args.onnx is not None:
            raise ConfigError('--model is already an .onnx file; drop --onnx')
    else:
        if args.onnx is None:
            raise ConfigError('--onnx OUT.onnx is required to export a model')
        if args.onnx.suffix != '.onnx':
            raise ConfigError(f'--onnx must end with .onnx, got {str(args.onnx)!r}')
        spec = export_owl_image_encoder(
            family=args.backend,
            hf_model=args.model,
            onnx_path=args.onnx,
            image_size=args.image_size,
            opset=args.opset,
            offline=not args.online,
        )
        onnx_path = args.onnx
        summary.update(onnx=str(onnx_path), spec=spec.to_json())
        if not args.no_verify:
            differences = compare_with_torch(onnx_path, offline=not args.online)
            worst = max(differences.values())
            summary['max_abs_difference_vs_torch'] = differences
            summary['ok'] = worst <= _PARITY_TOLERANCE
            if not summary['ok']:
                print(
                    f'warning: ONNX Runtime differs from torch by {worst:.2e} '
                    f'(> {_PARITY_TOLERANCE:.0e})',
                    file=sys.stderr,
                )
    if args.engine is not None:
        spec_for_engine = read_sidecar(onnx_path)
        if spec_for_engine is not None and spec_for_engine.family != args.backend:
            raise ConfigError(
                f'{onnx_path} holds an {spec_for_engine.family} encoder, not {args.backend}'
            )
        summary['engine'] = _build_engine(args, Path(onnx_path), spec_for_engine)
    return summary


def _build_engine(args: argparse.Namespace, onnx_path: Path, spec: Any) -> dict[str, Any]:
    from grounding_agent.backends.owl_graph import write_engine_sidecar
    from grounding_agent.core.errors import ConfigError
    from grounding_agent.runtime.tensorrt_engine import (
        build_engine,
        build_engine_cached,
        gpu_name,
        tensorrt_version,
    )

    engine_path: Path = args.engine
    if engine_path.suffix != '.engine':
        raise ConfigError(f'--engine must end with .engine, got {str(engine_path)!r}')
    cached = False
    if args.engine_cache_dir:
        if spec is None:
            raise ConfigError(f'{onnx_path} has no sidecar JSON: its input shape is unknown')
        cached_path, cached = build_engine_cached(
            onnx_path,
            input_shape=spec.input_shape,
            fp16=args.fp16,
            cache_dir=args.engine_cache_dir,
            device=args.device,
            workspace_mb=args.workspace_mb,
        )
        engine_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached_path, engine_path)
    else:
        build_engine(onnx_path, engine_path, fp16=args.fp16, workspace_mb=args.workspace_mb)
    facts = {
        'precision': 'fp16' if args.fp16 else 'fp32',
        'tensorrt_version': tensorrt_version() or 'unknown',
        'gpu_name': gpu_name(args.device),
    }
    write_engine_sidecar(onnx_path, engine_path, **facts)
    return {'path': str(engine_path), 'from_cache': cached, **facts}
