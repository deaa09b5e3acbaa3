"""Where built TensorRT engines are kept, and the key that says when one can be reused.

An engine is only valid for the exact ONNX graph, input shape, precision, TensorRT version and
GPU model it was built for; building one takes minutes on a Jetson, so engines are cached under
a key made of all five. Pure functions: tested without TensorRT or a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grounding_agent.core.errors import ConfigError

__all__ = [
    'PRECISIONS',
    'EngineCacheKey',
    'default_engine_cache_dir',
    'engine_cache_path',
]

PRECISIONS = ('fp32', 'fp16')


@dataclass(frozen=True)
class EngineCacheKey:
    """Everything a TensorRT engine depends on."""

    model_sha256: str
    input_shape: tuple[int, ...]
    precision: str
    tensorrt_version: str
    gpu_name: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        if not re.fullmatch(r'[0-9a-f]{64}', self.model_sha256):
            raise ConfigError(f'model_sha256 must be 64 hex digits, got {self.model_sha256!r}')
        if not self.input_shape or any(int(d) <= 0 for d in self.input_shape):
            raise ConfigError(f'input shape must be static and positive, got {self.input_shape}')
        if not self.tensorrt_version or not self.gpu_name:
            raise ConfigError('the TensorRT version and the GPU name are part of the engine key')

    @classmethod
    def create(
        cls,
        *,
        model_sha256: str,
        input_shape: Sequence[int],
        fp16: bool,
        tensorrt_version: str,
        gpu_name: str,
    ) -> EngineCacheKey:
        return cls(
            model_sha256=model_sha256,
            input_shape=tuple(int(d) for d in input_shape),
            precision='fp16' if fp16 else 'fp32',
            tensorrt_version=tensorrt_version.strip(),
            gpu_name=' '.join(gpu_name.split()),
        )

    def digest(self) -> str:
        """20 hex digits of SHA-256 over the canonical JSON of the key."""
        canonical = json.dumps(
            {
                'model_sha256': self.model_sha256,
                'input_shape': list(self.input_shape),
                'precision': self.precision,
                'tensorrt_version': self.tensorrt_version,
                'gpu_name': self.gpu_name,
            },
            sort_keys=True,
            separators=(',', ':'),
        )
        return hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:20]

    def file_name(self, stem: str = 'model') -> str:
        """A readable, file-system-safe name: stem, shape, precision, versions, digest."""
        shape = 'x'.join(str(d) for d in self.input_shape)
        parts = [stem, shape, self.precision, f'trt{self.tensorrt_version}', self.gpu_name]
        readable = '-'.join(re.sub(r'[^A-Za-z0-9.]+', '_', p).strip('_') for p in parts)
        return f'{readable}-{self.digest()}.engine'


def default_engine_cache_dir() -> Path:
    """$XDG_CACHE_HOME/grounding_agent/engines (default ~/.cache/grounding_agent/engines)."""
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'grounding_agent' / 'engines'


def engine_cache_path(
    cache_dir: str | os.PathLike[str] | None, key: EngineCacheKey, *, stem: str = 'model'
) -> Path:
    """The cached engine file for `key` under `cache_dir` (default: `default_engine_cache_dir`)."""
    directory = Path(cache_dir).expanduser() if cache_dir else default_engine_cache_dir()
    return directory / key.file_name(stem)
