"""`grounding-agent ground`: ground one command on one image file and print the result JSON.

Exit status: 0 for any answer (grounded, answered, rejected, ambiguous), 1 when the agent
reports an `error` (a failing backend), 2 for bad input (image path, configuration, model).
The result JSON is printed in every case, so scripts can always parse stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ['add_arguments', 'load_config_file', 'load_rgb_image', 'run']


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--image', required=True, help='image file (PNG, JPEG, ...)')
    parser.add_argument(
        '--query',
        required=True,
        help="operator command, e.g. 'find the red mug left of the laptop'",
    )
    parser.add_argument(
        '--backend', default=None, help='backend name (default: the config file, else color_shape)'
    )
    parser.add_argument('--model', default=None, help='Hugging Face id or local model directory')
    parser.add_argument('--device', default=None, help="'cpu', 'cuda' or 'cuda:N' (default cpu)")
    parser.add_argument(
        '--config',
        default=None,
        help='YAML with `backend:` and `resolver:` sections, or the node parameter file '
        '(config/grounding_agent.yaml)',
    )
    parser.add_argument('--request-id', default='', help='request id echoed in the result')


def load_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `backend` and `resolver` sections of a YAML file, as plain mappings.

    Accepts a file with those two sections at the top, or a ROS 2 parameter file
    (`<node>: ros__parameters: {backend: ..., resolver: ...}`). Raises ConfigError.
    """
    import yaml

    from grounding_agent.core.errors import ConfigError

    try:
        document = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read config file {path}: {exc}') from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f'config file {path} must hold a mapping')
    # A ROS 2 parameter file nests everything under `<node name>: ros__parameters:`.
    for value in document.values():
        if isinstance(value, dict) and isinstance(value.get('ros__parameters'), dict):
            document = value['ros__parameters']
            break
    sections = []
    for name in ('backend', 'resolver'):
        section = document.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f'`{name}` in {path} must be a mapping')
        sections.append(dict(section))
    return sections[0], sections[1]


def load_rgb_image(path: str | Path) -> Any:
    """HxWx3 uint8 RGB array of an image file; raises ImageConversionError."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from grounding_agent.core.errors import ImageConversionError

    try:
        with Image.open(path) as image:
            return np.ascontiguousarray(np.asarray(image.convert('RGB'), dtype=np.uint8))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageConversionError(f'cannot read image {path}: {exc}') from exc


def _print(result: Any) -> None:
    sys.stdout.write(result.model_dump_json(by_alias=True, indent=2) + '\n')


def run(args: argparse.Namespace) -> int:
    from grounding_agent.backends import BackendConfig, create_backend
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.result import ResultStatus, error_result
    from grounding_agent.core.types import Frame

    try:
        backend_values: dict[str, Any] = {}
        resolver_values: dict[str, Any] = {}
        if args.config:
            backend_values, resolver_values = load_config_file(args.config)
        for key, value in (('name', args.backend), ('model', args.model), ('device', args.device)):
            if value is not None:
                backend_values[key] = value
        backend_values.setdefault('name', 'color_shape')
        resolver_config = ResolverConfig.from_mapping(resolver_values)
        image = load_rgb_image(args.image)
        backend = create_backend(BackendConfig.from_mapping(backend_values))
    except Exception as exc:  # bad input of any kind is a printed error result, not a crash
        _print(
            error_result(
                f'{type(exc).__name__}: {exc}', request_id=args.request_id, command=args.query
            )
        )
        return 2
    try:
        agent = GroundingAgent(backend, resolver_config)
        result = agent.handle_command(args.query, Frame(image=image), request_id=args.request_id)
    finally:
        backend.close()
    _print(result)
    return 1 if result.status is ResultStatus.ERROR else 0
