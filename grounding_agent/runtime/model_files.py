"""Files of exported models, whatever the model: paths, digests and JSON sidecars.

An exported model file (`x.onnx`, `x.engine`) may carry a JSON sidecar beside it
(`x.onnx.json`) that says what the file holds; its content belongs to the model family that
wrote it (`backends/owl_graph.py` for OWL).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grounding_agent.core.errors import ConfigError, ModelLoadError

__all__ = [
    'file_sha256',
    'read_sidecar_json',
    'require_file',
    'sidecar_path',
    'write_sidecar_json',
]


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """`model.onnx` -> `model.onnx.json` (the same for `.engine`)."""
    path = Path(model_path)
    return path.with_name(path.name + '.json')


def write_sidecar_json(model_path: str | os.PathLike[str], values: Mapping[str, Any]) -> Path:
    """Write `values` as the sidecar of `model_path`; returns the sidecar's path."""
    path = sidecar_path(model_path)
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + '\n', encoding='utf-8')
    return path


def read_sidecar_json(model_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sidecar of an exported model as a JSON object, or None when there is none."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise ConfigError(f'cannot read {path}: {exc}') from exc
    if not isinstance(values, dict):
        raise ConfigError(f'{path} does not hold a JSON object')
    return values


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file and of its external-data file when it has one."""
    digest = hashlib.sha256()
    model = Path(path)
    for part in (model, model.with_name(model.name + '.data')):
        if not part.is_file():
            continue
        with part.open('rb') as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b''):
                digest.update(chunk)
    return digest.hexdigest()


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a Path, or ModelLoadError saying the `what` file is missing."""
    result = Path(path).expanduser()
    if not result.is_file():
        raise ModelLoadError(f'{what} {str(path)!r} does not exist')
    return result
