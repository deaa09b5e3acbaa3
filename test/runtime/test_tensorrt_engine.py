"""TensorRT: everything up to the engine build is tested here; running an engine needs a GPU.

No GPU and no TensorRT exist on the test machines, so `trtexec` is played by a small script
(FakeTrtexec) that records its command line and writes a placeholder engine file; the real
build and run are in the `gpu` tests at the bottom, which skip without CUDA + tensorrt.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_trtexec import call_log, install_fake_trtexec

from grounding_agent.backends.owl_graph import (
    EncoderSpec,
    owl_output_names,
    read_sidecar,
    write_engine_sidecar,
)
from grounding_agent.core.errors import BackendError, ConfigError, ModelLoadError
from grounding_agent.runtime import tensorrt_engine
from grounding_agent.runtime.tensorrt_engine import (
    TensorRTImageEncoder,
    TensorRTUnavailableError,
    build_engine,
    build_engine_cached,
    parse_trtexec_version,
    torch_dtype_name,
    trtexec_command,
)

HAS_TENSORRT_GPU = torch.cuda.is_available() and importlib.util.find_spec('tensorrt') is not None
needs_tensorrt_gpu = pytest.mark.skipif(
    not HAS_TENSORRT_GPU, reason='needs an NVIDIA GPU with CUDA and the tensorrt Python package'
)


def test_trtexec_command_line() -> None:
    assert trtexec_command('m/owl.onnx', 'm/owl.engine', fp16=True, workspace_mb=2048) == [
        'trtexec',
        '--onnx=m/owl.onnx',
        '--saveEngine=m/owl.engine',
        '--memPoolSize=workspace:2048',
        '--skipInference',
        '--fp16',
    ]


def test_trtexec_command_line_with_shapes_and_path() -> None:
    command = trtexec_command(
        Path('owl.onnx'),
        Path('owl.engine'),
        fp16=False,
        trtexec='/usr/src/tensorrt/bin/trtexec',
        input_name='pixel_values',
        input_shape=(1, 3, 960, 960),
    )
    assert command[0] == '/usr/src/tensorrt/bin/trtexec'
    assert '--fp16' not in command
    assert command[-1] == '--shapes=pixel_values:1x3x960x960'
    assert '--memPoolSize=workspace:4096' in command


def test_trtexec_command_refuses_no_workspace() -> None:
    with pytest.raises(ConfigError, match='workspace_mb'):
        trtexec_command('a.onnx', 'a.engine', fp16=False, workspace_mb=0)


@pytest.mark.parametrize(
    ('banner', 'version'),
    [
        ('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help', '10.3.0'),
        ('&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # trtexec', '8.6.1'),
        ('&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec', '8.5.2'),
        ('usage: something else', None),
    ],
)
def test_parse_trtexec_version(banner: str, version: str | None) -> None:
    assert parse_trtexec_version(banner) == version


@pytest.mark.parametrize(
    ('trt_dtype', 'name'),
    [
        ('DataType.FLOAT', 'float32'),
        ('DataType.HALF', 'float16'),
        ('DataType.INT32', 'int32'),
        ('DataType.BOOL', 'bool'),
        ('BF16', 'bfloat16'),
    ],
)
def test_torch_dtype_name(trt_dtype: str, name: str) -> None:
    assert torch_dtype_name(trt_dtype) == name


def test_unknown_tensorrt_dtype() -> None:
    with pytest.raises(BackendError, match='unsupported TensorRT tensor type'):
        torch_dtype_name('DataType.FP8')


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the tensorrt package nor trtexec (as on these machines; forced for GPU hosts)."""
    monkeypatch.setattr(tensorrt_engine, '_import_tensorrt', lambda: None)
    monkeypatch.setattr(tensorrt_engine, 'trtexec_path', lambda: None)


@pytest.mark.usefixtures('no_tensorrt')
def test_build_without_tensorrt_says_what_to_install(
    exported: dict[str, tuple[Path, EncoderSpec]], tmp_path: Path
) -> None:
    with pytest.raises(TensorRTUnavailableError, match='TensorRT is not available') as caught:
        build_engine(exported['owlv2'][0], tmp_path / 'owl.engine', fp16=True)
    assert 'trtexec' in str(caught.value)
    assert 'onnxruntime' in str(caught.value)
    with pytest.raises(TensorRTUnavailableError):
        build_engine_cached(exported['owlv2'][0], input_shape=(1, 3, 32, 32), fp16=True)


def test_build_from_a_missing_onnx_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match='does not exist'):
        build_engine(tmp_path / 'none.onnx', tmp_path / 'none.engine', fp16=False)


@pytest.fixture
def fake_trtexec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Put a FakeTrtexec first on PATH; returns (its path, its call log)."""
    return install_fake_trtexec(tmp_path, monkeypatch, fail=False)


def test_build_with_trtexec_runs_the_command_line(
    fake_trtexec: tuple[Path, Path],
    exported: dict[str, tuple[Path, EncoderSpec]],
    tmp_path: Path,
) -> None:
    script, log = fake_trtexec
    onnx_path = exported['owlv2'][0]
    engine = build_engine(onnx_path, tmp_path / 'out' / 'owl.engine', fp16=True, workspace_mb=512)
    assert engine.read_bytes() == b'placeholder engine'
    expected = trtexec_command(onnx_path, engine, fp16=True, workspace_mb=512, trtexec=str(script))
    assert call_log(log) == [expected]
    assert tensorrt_engine.tensorrt_version() == '10.3.0'


def test_failing_trtexec_reports_its_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exported: dict[str, tuple[Path, EncoderSpec]],
) -> None:
    install_fake_trtexec(tmp_path, monkeypatch, fail=True)
    with pytest.raises(BackendError, match=r'trtexec failed \(exit 1\)') as caught:
        build_engine(exported['owlv2'][0], tmp_path / 'owl.engine', fp16=False)
    assert 'network has no layers' in str(caught.value)


def test_engine_cache_builds_once(
    fake_trtexec: tuple[Path, Path],
    exported: dict[str, tuple[Path, EncoderSpec]],
    tmp_path: Path,
) -> None:
    _, log = fake_trtexec
    onnx_path, spec = exported['owlv2']
    cache = tmp_path / 'cache'
    first, hit_first = build_engine_cached(
        onnx_path, input_shape=spec.input_shape, fp16=True, cache_dir=cache
    )
    second, hit_second = build_engine_cached(
        onnx_path, input_shape=spec.input_shape, fp16=True, cache_dir=cache
    )
    assert (hit_first, hit_second) == (False, True)
    assert first == second
    assert first.parent == cache
    assert 'fp16-trt10.3.0-Orin_fake' in first.name
    assert len(call_log(log)) == 1
    assert not list(cache.glob('*.partial'))
    fp32, hit = build_engine_cached(
        onnx_path, input_shape=spec.input_shape, fp16=False, cache_dir=cache
    )
    assert not hit
    assert fp32 != first


def test_engine_sidecar_points_at_the_hugging_face_directory(
    exported: dict[str, tuple[Path, EncoderSpec]], model_dirs: dict[str, Path], tmp_path: Path
) -> None:
    onnx_path, spec = exported['owlv2']
    engine = tmp_path / 'deploy' / 'owl.engine'
    engine.parent.mkdir()
    engine.write_bytes(b'placeholder engine')
    write_engine_sidecar(onnx_path, engine, precision='fp16', gpu_name='Orin (fake)')
    stored = read_sidecar(engine)
    assert stored is not None
    assert (stored.family, stored.image_size, stored.onnx_sha256) == (
        'owlv2',
        spec.image_size,
        spec.onnx_sha256,
    )
    assert stored.extra == {'precision': 'fp16', 'gpu_name': 'Orin (fake)'}
    assert (engine.parent / stored.hf_model).resolve() == model_dirs['owlv2'].resolve()


def test_engine_runtime_needs_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = tmp_path / 'owl.engine'
    engine.write_bytes(b'placeholder engine')
    with pytest.raises(ConfigError, match='runs on a CUDA device'):
        TensorRTImageEncoder(engine, device='cpu', output_names=owl_output_names('owlv2'))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='CUDA is not available'):
        TensorRTImageEncoder(engine, device='cuda', output_names=owl_output_names('owlv2'))
    with pytest.raises(ModelLoadError, match='does not exist'):
        TensorRTImageEncoder(
            tmp_path / 'none.engine', device='cuda', output_names=owl_output_names('owlv2')
        )


@pytest.mark.gpu
@needs_tensorrt_gpu
@pytest.mark.parametrize(('fp16', 'tolerance'), [(False, 1e-3), (True, 5e-2)])
def test_engine_matches_onnx_runtime_on_a_gpu(
    fp16: bool,
    tolerance: float,
    exported: dict[str, tuple[Path, EncoderSpec]],
    tmp_path: Path,
) -> None:
    from grounding_agent.backends.base import create_backend

    onnx_path, _ = exported['owlv2']
    engine = build_engine(onnx_path, tmp_path / 'owl.engine', fp16=fp16)
    write_engine_sidecar(onnx_path, engine)
    image = np.random.default_rng(2).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    on_gpu = create_backend({'name': 'owlv2', 'model': str(engine), 'device': 'cuda'})
    on_cpu = create_backend({'name': 'owlv2', 'model': str(onnx_path)})
    expected = on_cpu.predict(image, ['red cube'])  # type: ignore[attr-defined]
    actual = on_gpu.predict(image, ['red cube'])  # type: ignore[attr-defined]
    np.testing.assert_allclose(actual.logits, expected.logits, atol=tolerance)
    np.testing.assert_allclose(actual.boxes_cxcywh, expected.boxes_cxcywh, atol=tolerance)
