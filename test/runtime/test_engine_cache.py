"""TensorRT engine cache keys: every input of an engine changes the key; names are file-safe."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from grounding_agent.core.errors import ConfigError
from grounding_agent.runtime.engine_cache import (
    EngineCacheKey,
    default_engine_cache_dir,
    engine_cache_path,
)

SHA = 'ab' * 32
KEY = EngineCacheKey.create(
    model_sha256=SHA,
    input_shape=(1, 3, 960, 960),
    fp16=True,
    tensorrt_version='10.3.0',
    gpu_name='Orin (nvgpu)',
)


def test_key_is_deterministic_and_readable() -> None:
    again = EngineCacheKey.create(
        model_sha256=SHA,
        input_shape=[1, 3, 960, 960],
        fp16=True,
        tensorrt_version=' 10.3.0 ',
        gpu_name='Orin  (nvgpu)',
    )
    assert again == KEY
    assert again.digest() == KEY.digest()
    assert len(KEY.digest()) == 20
    assert (
        KEY.file_name('owlv2')
        == f'owlv2-1x3x960x960-fp16-trt10.3.0-Orin_nvgpu-{KEY.digest()}.engine'
    )


@pytest.mark.parametrize(
    'change',
    [
        {'model_sha256': 'cd' * 32},
        {'input_shape': (1, 3, 768, 768)},
        {'precision': 'fp32'},
        {'tensorrt_version': '8.6.1'},
        {'gpu_name': 'NVIDIA GeForce RTX 4090'},
    ],
)
def test_every_part_changes_the_key(change: dict[str, Any]) -> None:
    other = replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert other.file_name() != KEY.file_name()


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'precision': 'int8'}, 'precision'),
        ({'model_sha256': 'xyz'}, '64 hex digits'),
        ({'input_shape': (1, 3, -1, 960)}, 'static'),
        ({'input_shape': ()}, 'static'),
        ({'tensorrt_version': ''}, 'TensorRT version'),
        ({'gpu_name': ''}, 'GPU name'),
    ],
)
def test_invalid_keys_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        replace(KEY, **change)


def test_cache_path_under_a_given_directory(tmp_path: Path) -> None:
    path = engine_cache_path(tmp_path, KEY, stem='owlv2')
    assert path.parent == tmp_path
    assert path.name == KEY.file_name('owlv2')


def test_default_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert default_engine_cache_dir() == tmp_path / 'grounding_agent' / 'engines'
    assert engine_cache_path(None, KEY).parent == tmp_path / 'grounding_agent' / 'engines'
    monkeypatch.delenv('XDG_CACHE_HOME')
    assert default_engine_cache_dir() == Path.home() / '.cache' / 'grounding_agent' / 'engines'
