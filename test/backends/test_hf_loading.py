"""Shared Hugging Face loading: safetensors only, no remote code, one clear ModelLoadError."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from tiny_models import owl_model_dir

from grounding_agent.backends._hf import (
    load_pretrained,
    prepare_image,
    resolve_device,
    resolve_dtype,
    resolve_model_source,
)
from grounding_agent.backends.base import BackendConfig
from grounding_agent.core.errors import ConfigError, ImageConversionError, ModelLoadError
from grounding_agent.core.types import Box


@pytest.fixture(scope='session')
def owlv2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return owl_model_dir('owlv2', tmp_path_factory.getbasetemp() / 'owl_models')


def _config(**values: Any) -> BackendConfig:
    return BackendConfig(**{'name': 'owlv2', **values})


class RecordingLoader:
    """Test double of a transformers class: records the from_pretrained arguments."""

    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    @classmethod
    def from_pretrained(cls, location: str, **options: Any) -> str:
        cls.calls.append((location, options))
        return 'loaded'


def test_local_directory_is_loaded_with_safe_settings(owlv2_dir: Path) -> None:
    RecordingLoader.calls.clear()
    assert load_pretrained(RecordingLoader, _config(model=str(owlv2_dir))) == 'loaded'
    location, options = RecordingLoader.calls[-1]
    assert location == str(owlv2_dir)
    assert options == {
        'trust_remote_code': False,
        'local_files_only': True,
        'use_safetensors': True,
        'dtype': torch.float32,
    }


def test_processor_loading_skips_weight_options(owlv2_dir: Path) -> None:
    RecordingLoader.calls.clear()
    load_pretrained(RecordingLoader, _config(model=str(owlv2_dir)), weights=False)
    assert RecordingLoader.calls[-1][1] == {'trust_remote_code': False, 'local_files_only': True}


@pytest.mark.parametrize(('offline', 'local_files_only'), [(True, True), (False, False)])
def test_hub_id_follows_offline_setting(offline: bool, local_files_only: bool) -> None:
    source = resolve_model_source(_config(model='google/owlv2-base-patch16', offline=offline))
    assert not source.is_local
    assert source.local_files_only is local_files_only


def test_trust_remote_code_is_refused(owlv2_dir: Path) -> None:
    with pytest.raises(ConfigError, match='trust_remote_code'):
        load_pretrained(RecordingLoader, _config(model=str(owlv2_dir)), trust_remote_code=True)


@pytest.mark.parametrize(
    ('model', 'message'),
    [
        ('', 'needs a model'),
        ('/no/such/owl/model', 'does not exist'),
        ('./missing-model-dir', 'does not exist'),
        ('models/owl/v2', 'does not exist'),
    ],
)
def test_unusable_model_names_give_one_clear_error(model: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        resolve_model_source(_config(model=model))


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    weights = tmp_path / 'model.safetensors'
    weights.write_bytes(b'')
    with pytest.raises(ModelLoadError, match='is a file'):
        resolve_model_source(_config(model=str(weights)))


def test_pickle_only_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / 'config.json').write_text('{}', encoding='utf-8')
    (tmp_path / 'pytorch_model.bin').write_bytes(b'not loaded')
    with pytest.raises(ModelLoadError, match=r'only pickle weights \(pytorch_model\.bin\)'):
        load_pretrained(RecordingLoader, _config(model=str(tmp_path)))


def test_missing_hub_model_names_everything_tried() -> None:
    from transformers import Owlv2ForObjectDetection

    with pytest.raises(ModelLoadError) as caught:
        load_pretrained(Owlv2ForObjectDetection, _config(model='nobody/no-such-owl-model'))
    message = str(caught.value)
    for part in (
        'Owlv2ForObjectDetection',
        "Hugging Face id 'nobody/no-such-owl-model'",
        'local_files_only=True',
        'use_safetensors=True',
        'trust_remote_code=False',
        'OSError',
    ):
        assert part in message
    assert caught.value.__cause__ is not None


def test_broken_local_model_is_a_model_load_error(tmp_path: Path) -> None:
    from transformers import Owlv2ForObjectDetection

    (tmp_path / 'config.json').write_text('{"model_type": "owlv2"}', encoding='utf-8')
    (tmp_path / 'model.safetensors').write_bytes(b'garbage, not safetensors')
    with pytest.raises(ModelLoadError, match=r'Owlv2ForObjectDetection from local directory'):
        load_pretrained(Owlv2ForObjectDetection, _config(model=str(tmp_path)))


def test_real_tiny_model_loads(owlv2_dir: Path) -> None:
    from transformers import Owlv2ForObjectDetection

    model = load_pretrained(Owlv2ForObjectDetection, _config(model=str(owlv2_dir)))
    assert isinstance(model, Owlv2ForObjectDetection)
    assert next(model.parameters()).dtype == torch.float32


def test_cpu_device() -> None:
    assert resolve_device(_config(device='cpu')) == torch.device('cpu')


@pytest.mark.parametrize('device', ['cuda', 'cuda:0', 'cuda:3'])
def test_cuda_without_a_gpu_is_a_config_error(
    device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in for a machine without CUDA, so the test means the same everywhere.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='CUDA is not available'):
        resolve_device(_config(device=device))


def test_cuda_index_beyond_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    with pytest.raises(ConfigError, match='only 1 CUDA device'):
        resolve_device(_config(device='cuda:1'))


@pytest.mark.parametrize(
    ('dtype', 'device', 'expected'),
    [
        ('auto', 'cpu', torch.float32),
        ('auto', 'cuda', torch.float16),
        ('float32', 'cuda', torch.float32),
        ('bfloat16', 'cpu', torch.bfloat16),
        ('float16', 'cuda', torch.float16),
        ('float16', 'cpu', ConfigError),
    ],
)
def test_resolve_dtype(dtype: str, device: str, expected: Any) -> None:
    config = _config(dtype=dtype)
    if expected is ConfigError:
        with pytest.raises(ConfigError, match='float16 needs a CUDA device'):
            resolve_dtype(config, torch.device(device))
    else:
        assert resolve_dtype(config, torch.device(device)) == expected


@pytest.mark.parametrize(
    ('shape', 'max_side', 'prepared_shape', 'scale'),
    [
        ((40, 64, 3), 32, (20, 32, 3), (2.0, 2.0)),
        ((40, 64, 3), 960, (40, 64, 3), (1.0, 1.0)),  # never enlarged
        ((64, 40, 3), 32, (32, 20, 3), (2.0, 2.0)),
        ((40, 64), 960, (40, 64, 3), (1.0, 1.0)),  # grey -> RGB
        ((40, 64, 4), 960, (40, 64, 3), (1.0, 1.0)),  # RGBA -> RGB
        ((30, 100, 3), 64, (19, 64, 3), (100 / 64, 30 / 19)),
    ],
)
def test_prepare_image(
    shape: tuple[int, ...],
    max_side: int,
    prepared_shape: tuple[int, ...],
    scale: tuple[float, float],
) -> None:
    prepared = prepare_image(np.full(shape, 200, dtype=np.uint8), max_side)
    assert prepared.image.shape == prepared_shape
    assert prepared.image.flags['C_CONTIGUOUS']
    assert (prepared.scale_x, prepared.scale_y) == pytest.approx(scale)
    assert (prepared.original_height, prepared.original_width) == shape[:2]


def test_prepared_boxes_map_back_to_camera_pixels() -> None:
    prepared = prepare_image(np.zeros((40, 64, 3), dtype=np.uint8), 32)
    assert prepared.to_original(Box(4, 2, 16, 10)) == Box(8, 4, 32, 20)
    # Clipped to the camera image.
    assert prepared.to_original(Box(30, 15, 40, 25)) == Box(60, 30, 64, 40)


@pytest.mark.parametrize(
    ('image', 'message'),
    [
        (np.zeros((40, 64, 3), dtype=np.float32), 'uint8'),
        (np.zeros((40, 64, 2), dtype=np.uint8), 'HxWx3'),
        (np.zeros((0, 64, 3), dtype=np.uint8), 'empty'),
        (np.zeros((2, 40, 64, 3), dtype=np.uint8), 'HxWx3'),
        ([[1, 2, 3]], 'numpy image'),
    ],
)
def test_prepare_image_refuses_bad_input(image: Any, message: str) -> None:
    with pytest.raises(ImageConversionError, match=message):
        prepare_image(image, 960)
