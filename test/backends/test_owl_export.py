"""ONNX export of the OWL image encoder: graph contract, sidecar, and parity with torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from grounding_agent.backends.base import create_backend
from grounding_agent.backends.owl import OwlBackend
from grounding_agent.backends.owl_export import compare_with_torch, export_owl_image_encoder
from grounding_agent.backends.owl_graph import (
    IMAGE_INPUT_NAME,
    SIDECAR_FORMAT,
    EncoderSpec,
    owl_output_names,
    owl_output_shapes,
    read_sidecar,
    resolve_hf_model,
)
from grounding_agent.core.errors import ConfigError, ModelLoadError
from grounding_agent.runtime.model_files import sidecar_path

HEIGHT, WIDTH = 40, 64
PHRASES = ['red cube', 'blue mug']


@pytest.fixture
def camera_image() -> np.ndarray:
    return np.random.default_rng(11).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ('family', 'expected'),
    [
        (
            'owlv2',
            {
                'class_embeds': (1, 3600, 512),
                'logit_shift': (1, 3600),
                'logit_scale': (1, 3600),
                'pred_boxes': (1, 3600, 4),
                'objectness_logits': (1, 3600),
            },
        ),
        (
            'owlvit',
            {
                'class_embeds': (1, 576, 512),
                'logit_shift': (1, 576),
                'logit_scale': (1, 576),
                'pred_boxes': (1, 576, 4),
            },
        ),
    ],
)
def test_output_shapes_of_the_real_architectures(
    family: str, expected: dict[str, tuple[int, ...]]
) -> None:
    # OWLv2-B/16 at 960 px (60x60 patches), OWL-ViT-B/32 at 768 px (24x24); text width 512.
    image_size, patch = (960, 16) if family == 'owlv2' else (768, 32)
    shapes = owl_output_shapes(
        family, image_size=image_size, patch_size=patch, class_embed_dim=512
    )
    assert shapes == expected
    assert tuple(shapes) == owl_output_names(family)


def test_output_shapes_refuse_a_size_off_the_patch_grid() -> None:
    with pytest.raises(ConfigError, match='not a multiple'):
        owl_output_shapes('owlv2', image_size=100, patch_size=16, class_embed_dim=512)


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_graph_names_shapes_and_opset(
    family: str, exported: dict[str, tuple[Path, EncoderSpec]]
) -> None:
    path, spec = exported[family]
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    opset = {entry.domain: entry.version for entry in graph.opset_import}['']
    assert opset >= 18

    def dims(value: onnx.ValueInfoProto) -> tuple[int, ...]:
        return tuple(d.dim_value for d in value.type.tensor_type.shape.dim)

    assert [(i.name, dims(i)) for i in graph.graph.input] == [(IMAGE_INPUT_NAME, (1, 3, 32, 32))]
    assert {o.name: dims(o) for o in graph.graph.output} == spec.output_shapes()
    assert [o.name for o in graph.graph.output] == list(owl_output_names(family))


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_sidecar_names_the_hugging_face_directory(
    family: str,
    exported: dict[str, tuple[Path, EncoderSpec]],
    model_dirs: dict[str, Path],
) -> None:
    path, spec = exported[family]
    assert sidecar_path(path) == path.with_name(f'{family}.onnx.json')
    stored = read_sidecar(path)
    assert stored == spec
    assert stored is not None
    assert stored.family == family
    assert stored.input_shape == (1, 3, 32, 32)
    assert len(stored.onnx_sha256) == 64
    assert Path(resolve_hf_model(path, stored.hf_model)) == model_dirs[family].resolve()


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_onnx_runtime_matches_torch(
    family: str, exported: dict[str, tuple[Path, EncoderSpec]]
) -> None:
    differences = compare_with_torch(exported[family][0])
    assert set(differences) == set(owl_output_names(family))
    assert max(differences.values()) < 1e-3


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_backend_on_onnx_matches_backend_on_torch(
    family: str,
    exported: dict[str, tuple[Path, EncoderSpec]],
    model_dirs: dict[str, Path],
    camera_image: np.ndarray,
) -> None:
    on_torch = create_backend({'name': family, 'model': str(model_dirs[family])})
    on_onnx = create_backend(
        {'name': family, 'model': str(exported[family][0]), 'options': {'intra_op_threads': 1}}
    )
    assert isinstance(on_torch, OwlBackend)
    assert isinstance(on_onnx, OwlBackend)
    assert (on_torch.runtime, on_onnx.runtime) == ('torch', 'onnxruntime')
    expected = on_torch.predict(camera_image, PHRASES)
    actual = on_onnx.predict(camera_image, PHRASES)
    np.testing.assert_allclose(actual.logits, expected.logits, atol=1e-3)
    np.testing.assert_allclose(actual.boxes_cxcywh, expected.boxes_cxcywh, atol=1e-3)
    torch_boxes = [d.box.to_list() for d in on_torch.detect(camera_image, PHRASES)]
    onnx_boxes = [d.box.to_list() for d in on_onnx.detect(camera_image, PHRASES)]
    assert len(onnx_boxes) == len(torch_boxes)
    np.testing.assert_allclose(onnx_boxes, torch_boxes, atol=0.05)


def test_exported_file_moves_with_an_explicit_hf_model(
    exported: dict[str, tuple[Path, EncoderSpec]],
    model_dirs: dict[str, Path],
    tmp_path: Path,
    camera_image: np.ndarray,
) -> None:
    copy = tmp_path / 'elsewhere.onnx'
    shutil.copyfile(exported['owlv2'][0], copy)  # no sidecar beside the copy
    backend = create_backend(
        {'name': 'owlv2', 'model': str(copy), 'options': {'hf_model': str(model_dirs['owlv2'])}}
    )
    assert backend.detect(camera_image, PHRASES) is not None


def test_family_mismatch_is_refused(exported: dict[str, tuple[Path, EncoderSpec]]) -> None:
    with pytest.raises(ConfigError, match='exported from an owlv2 model'):
        create_backend({'name': 'owlvit', 'model': str(exported['owlv2'][0])})


def test_export_at_another_input_size(
    model_dirs: dict[str, Path], tmp_path: Path, camera_image: np.ndarray
) -> None:
    path = tmp_path / 'owlv2-48.onnx'
    spec = export_owl_image_encoder(
        family='owlv2', hf_model=str(model_dirs['owlv2']), onnx_path=path, image_size=48
    )
    assert spec.output_shapes()['pred_boxes'] == (1, 36, 4)
    assert max(compare_with_torch(path).values()) < 1e-3
    backend = create_backend({'name': 'owlv2', 'model': str(path), 'box_threshold': 0.0})
    assert isinstance(backend, OwlBackend)
    assert backend.image_size == 48
    for detection in backend.detect(camera_image, PHRASES):
        assert detection.box.x2 <= WIDTH
        assert detection.box.y2 <= HEIGHT
    with pytest.raises(ConfigError, match='exported for 48 px'):
        create_backend({'name': 'owlv2', 'model': str(path), 'options': {'image_size': 32}})


@pytest.mark.parametrize(
    ('settings', 'error', 'message'),
    [
        ({'opset': 17}, ConfigError, 'opset >= 18'),
        ({'family': 'yolo'}, ConfigError, 'unknown OWL family'),
        ({'hf_model': '/no/such/owl'}, ModelLoadError, 'does not exist'),
        ({'image_size': 30}, ConfigError, 'not a multiple'),
    ],
)
def test_export_refuses_bad_requests(
    settings: dict[str, object],
    error: type[Exception],
    message: str,
    model_dirs: dict[str, Path],
    tmp_path: Path,
) -> None:
    values: dict[str, object] = {
        'family': 'owlv2',
        'hf_model': str(model_dirs['owlv2']),
        'onnx_path': tmp_path / 'x.onnx',
        **settings,
    }
    with pytest.raises(error, match=message):
        export_owl_image_encoder(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'format': 'something/else'}, 'not an OWL image encoder description'),
        ({'format': SIDECAR_FORMAT, 'family': 'owlv2'}, 'incomplete'),
    ],
)
def test_broken_sidecar_is_a_config_error(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EncoderSpec.from_json(values)


def test_unreadable_sidecar_is_a_config_error(tmp_path: Path) -> None:
    model = tmp_path / 'owl.onnx'
    sidecar_path(model).write_text('{not json', encoding='utf-8')
    with pytest.raises(ConfigError, match='cannot read'):
        read_sidecar(model)
    assert read_sidecar(tmp_path / 'other.onnx') is None
