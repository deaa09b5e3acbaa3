"""ONNX Runtime session wrapper: provider choice and the errors a robot operator sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grounding_agent.backends.owl_graph import EncoderSpec, owl_output_names
from grounding_agent.core.errors import BackendError, ConfigError, ModelLoadError
from grounding_agent.runtime.onnx_runtime import OnnxImageEncoder, select_providers

CPU, CUDA, TRT = 'CPUExecutionProvider', 'CUDAExecutionProvider', 'TensorrtExecutionProvider'


@pytest.mark.parametrize(
    ('available', 'device', 'options', 'expected'),
    [
        ([CPU], 'cpu', {}, [CPU]),
        ([TRT, CUDA, CPU], 'cpu', {}, [CPU]),
        ([CUDA, CPU], 'cuda', {}, [(CUDA, {'device_id': 0}), CPU]),
        ([CUDA, CPU], 'cuda:1', {}, [(CUDA, {'device_id': 1}), CPU]),
        (
            [TRT, CUDA, CPU],
            'cuda',
            {'fp16': True, 'engine_cache_dir': 'engines'},
            [
                (
                    TRT,
                    {
                        'device_id': 0,
                        'trt_fp16_enable': True,
                        'trt_engine_cache_enable': True,
                        'trt_engine_cache_path': 'engines',
                    },
                ),
                (CUDA, {'device_id': 0}),
                CPU,
            ],
        ),
        ([TRT, CPU], 'cuda', {}, [(TRT, {'device_id': 0, 'trt_fp16_enable': False}), CPU]),
    ],
)
def test_select_providers(
    available: list[str], device: str, options: dict[str, Any], expected: list[Any]
) -> None:
    assert select_providers(available, device=device, **options) == expected


@pytest.mark.parametrize(
    ('available', 'device', 'message'),
    [
        (['AzureExecutionProvider', CPU], 'cuda', 'no GPU provider'),
        ([CUDA], 'cuda', 'no CPU provider'),
    ],
)
def test_select_providers_refuses(available: list[str], device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_providers(available, device=device)


def test_providers_here_are_cpu_only(exported: dict[str, tuple[Path, EncoderSpec]]) -> None:
    session = OnnxImageEncoder(exported['owlv2'][0], output_names=owl_output_names('owlv2'))
    assert session.providers == [CPU]
    assert session.input_shape == (1, 3, 32, 32)
    outputs = session.run(np.zeros((1, 3, 32, 32), dtype=np.float32))
    assert {k: v.shape for k, v in outputs.items()} == exported['owlv2'][1].output_shapes()
    session.close()
    with pytest.raises(BackendError, match='closed'):
        session.run(np.zeros((1, 3, 32, 32), dtype=np.float32))


def test_wrong_input_shape_is_a_backend_error(
    exported: dict[str, tuple[Path, EncoderSpec]],
) -> None:
    session = OnnxImageEncoder(exported['owlv2'][0], output_names=owl_output_names('owlv2'))
    with pytest.raises(BackendError, match='do not fit the graph input'):
        session.run(np.zeros((1, 3, 48, 48), dtype=np.float32))


def test_graph_without_the_expected_outputs(exported: dict[str, tuple[Path, EncoderSpec]]) -> None:
    # An OWL-ViT graph has no objectness output.
    with pytest.raises(ModelLoadError, match=r"lacks outputs \['objectness_logits'\]"):
        OnnxImageEncoder(exported['owlvit'][0], output_names=owl_output_names('owlv2'))


@pytest.mark.parametrize(
    ('content', 'error', 'message'),
    [
        (None, ModelLoadError, 'does not exist'),
        (b'not an onnx graph', ModelLoadError, 'onnxruntime could not load'),
    ],
)
def test_unloadable_file(
    content: bytes | None, error: type[Exception], message: str, tmp_path: Path
) -> None:
    path = tmp_path / 'broken.onnx'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        OnnxImageEncoder(path, output_names=owl_output_names('owlv2'))


@pytest.mark.parametrize(
    ('options', 'message'),
    [({'intra_op_threads': -1}, 'intra_op_threads'), ({'optimization': 'max'}, 'optimization')],
)
def test_bad_session_options(
    options: dict[str, Any], message: str, exported: dict[str, tuple[Path, EncoderSpec]]
) -> None:
    with pytest.raises(ConfigError, match=message):
        OnnxImageEncoder(exported['owlv2'][0], output_names=owl_output_names('owlv2'), **options)
