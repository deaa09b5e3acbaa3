"""The owlv2 / owlvit backends: post-processing on fixed tensors, and tiny random models run
end to end through the same from_pretrained calls the product uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_models import owl_model_dir

from grounding_agent.backends.base import BackendConfig, available_backends, create_backend
from grounding_agent.backends.owl import (
    OwlBackend,
    cxcywh_to_pixels,
    decode_detections,
    query_logits,
    sigmoid,
)
from grounding_agent.core.errors import (
    BackendError,
    ConfigError,
    GroundingError,
    ImageConversionError,
    ModelLoadError,
)
from grounding_agent.core.types import Box, Frame

# Non-square on purpose: OWLv2 pads to a square, so a width/height mix-up shows at once.
HEIGHT, WIDTH = 40, 64
PHRASES = ['red cube', 'blue mug']


@pytest.fixture(scope='session')
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / 'owl_models'
    return {family: owl_model_dir(family, base) for family in ('owlv2', 'owlvit')}


@pytest.fixture(scope='session')
def make_backend(model_dirs: dict[str, Path]) -> Callable[..., OwlBackend]:
    def make(family: str = 'owlv2', **settings: Any) -> OwlBackend:
        values = {'name': family, 'model': str(model_dirs[family]), **settings}
        backend = create_backend(values)
        assert isinstance(backend, OwlBackend)
        return backend

    return make


@pytest.fixture(scope='session')
def owlv2(make_backend: Callable[..., OwlBackend]) -> OwlBackend:
    return make_backend('owlv2', box_threshold=0.0)


@pytest.fixture
def camera_image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)


# --- pure post-processing on fixed tensors -------------------------------------------------


@pytest.mark.parametrize(
    ('pads_to_square', 'normalised', 'expected'),
    [
        # OWLv2 saw a 64x64 square (image at the top-left): both axes are fractions of 64.
        (True, [0.375, 0.3125, 0.5, 0.5], [8.0, 4.0, 40.0, 36.0]),
        # OWL-ViT saw the image stretched: x is a fraction of 64, y of 40.
        (False, [0.375, 0.5, 0.5, 0.8], [8.0, 4.0, 40.0, 36.0]),
        # A box reaching into OWLv2's padding (below y = 40) is cut at the image edge.
        (True, [0.5, 0.5, 0.25, 0.5], [24.0, 16.0, 40.0, 40.0]),
        # Entirely in the padding: zero height once clipped.
        (True, [0.5, 0.9, 0.25, 0.1], [24.0, 40.0, 40.0, 40.0]),
    ],
)
def test_cxcywh_to_pixels_on_a_non_square_image(
    pads_to_square: bool, normalised: list[float], expected: list[float]
) -> None:
    pixels = cxcywh_to_pixels(
        np.array([normalised]), width=WIDTH, height=HEIGHT, pads_to_square=pads_to_square
    )
    assert pixels[0].tolist() == pytest.approx(expected)


def test_sigmoid_is_stable_for_large_logits() -> None:
    with np.errstate(all='raise'):
        values = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert values.tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_query_logits_match_the_class_head(owlv2: OwlBackend, model_dirs: dict[str, Path]) -> None:
    from transformers import Owlv2ForObjectDetection

    model = Owlv2ForObjectDetection.from_pretrained(model_dirs['owlv2']).eval()
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(1, 16, 32, generator=generator)
    queries = torch.randn(1, 3, 32, generator=generator)
    with torch.inference_mode():
        expected, _ = model.class_predictor(features, queries, None)
        head = model.class_head
        embeds = head.dense0(features)[0]
        embeds = embeds / (torch.linalg.norm(embeds, dim=-1, keepdim=True) + 1e-6)
        shift = head.logit_shift(features)[0, :, 0]
        scale = head.elu(head.logit_scale(features))[0, :, 0] + 1
    normalised = queries[0] / (torch.linalg.norm(queries[0], dim=-1, keepdim=True) + 1e-6)
    logits = query_logits(embeds.numpy(), shift.numpy(), scale.numpy(), normalised.numpy())
    np.testing.assert_allclose(logits, expected[0].numpy(), atol=1e-5)


def _logit(probability: float) -> float:
    return float(np.log(probability / (1 - probability)))


def _decode(logits: np.ndarray, boxes: np.ndarray, **options: Any) -> list[Any]:
    settings: dict[str, Any] = {
        'class_embeds': np.eye(len(boxes), 4, dtype=np.float32) * 3.0,
        'phrases': ['mug', 'laptop'],
        'width': WIDTH,
        'height': HEIGHT,
        'pads_to_square': True,
        'box_threshold': 0.1,
        'nms_iou': 0.5,
        'max_detections': 50,
        **options,
    }
    return decode_detections(logits=logits, boxes_cxcywh=boxes, **settings)


# Three patches on a 64x40 image (OWLv2: fractions of 64): two overlapping mug boxes and a
# laptop box elsewhere.
BOXES = np.array(
    [
        [0.25, 0.25, 0.25, 0.25],  # 8..24 x 8..24
        [0.26, 0.26, 0.25, 0.25],  # almost the same box
        [0.75, 0.3, 0.3, 0.2],  # 38.4..57.6 x 12.8..25.6
    ],
    dtype=np.float32,
)


def test_decode_keeps_scores_above_threshold_and_suppresses_per_phrase() -> None:
    logits = np.array(
        [
            [_logit(0.8), _logit(0.05)],
            [_logit(0.6), _logit(0.3)],
            [_logit(0.02), _logit(0.9)],
        ],
        dtype=np.float32,
    )
    detections = _decode(logits, BOXES)
    summary = [(d.phrase, round(d.score, 3), d.box.to_list()) for d in detections]
    assert summary == [
        ('laptop', 0.9, pytest.approx([38.4, 12.8, 57.6, 25.6])),
        ('mug', 0.8, pytest.approx([8.0, 8.0, 24.0, 24.0])),
        # Patch 1 is suppressed as a mug but stays as a (weak) laptop: NMS is per phrase.
        ('laptop', 0.3, pytest.approx([8.64, 8.64, 24.64, 24.64])),
    ]


@pytest.mark.parametrize(
    ('threshold', 'count'), [(0.0, 6), (0.01, 3), (0.5, 3), (0.7, 2), (0.85, 1), (0.95, 0)]
)
def test_decode_box_threshold(threshold: float, count: int) -> None:
    logits = np.array(
        [[_logit(0.8), -20.0], [_logit(0.6), -20.0], [-20.0, _logit(0.9)]], dtype=np.float32
    )
    detections = _decode(logits, BOXES, box_threshold=threshold, nms_iou=1.0)
    assert len(detections) == count


def test_decode_embeddings_are_unit_length_and_belong_to_their_box() -> None:
    logits = np.full((3, 2), -20.0, dtype=np.float32)
    logits[2, 1] = 5.0
    (laptop,) = _decode(logits, BOXES)
    assert laptop.embedding is not None
    assert laptop.embedding.tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0])


def test_decode_drops_boxes_in_the_padding() -> None:
    boxes = np.array([[0.5, 0.9, 0.25, 0.1]], dtype=np.float32)  # below the 40 px image
    logits = np.array([[5.0, 5.0]], dtype=np.float32)
    assert _decode(logits, boxes, class_embeds=None) == []


def test_decode_max_detections() -> None:
    logits = np.full((3, 2), 5.0, dtype=np.float32)
    assert len(_decode(logits, BOXES, max_detections=2, nms_iou=1.0)) == 2


def test_decode_refuses_logits_of_the_wrong_width() -> None:
    with pytest.raises(BackendError, match='do not match 2 phrases'):
        _decode(np.zeros((3, 3), dtype=np.float32), BOXES)


# --- tiny random models end to end ---------------------------------------------------------


def test_both_names_are_registered() -> None:
    assert {'owlv2', 'owlvit'} <= set(available_backends())


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_cached_text_path_equals_the_full_forward(
    family: str,
    make_backend: Callable[..., OwlBackend],
    model_dirs: dict[str, Path],
    camera_image: np.ndarray,
) -> None:
    backend = make_backend(family)
    model = backend.family.model_class().from_pretrained(model_dirs[family]).eval()
    processor = backend.family.processor_class().from_pretrained(model_dirs[family])
    inputs = processor(text=[PHRASES], images=camera_image, return_tensors='pt')
    with torch.inference_mode():
        full = model(**inputs)
    prediction = backend.predict(camera_image, PHRASES)
    np.testing.assert_allclose(prediction.logits, full.logits[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(prediction.boxes_cxcywh, full.pred_boxes[0].numpy(), atol=1e-5)
    if family == 'owlv2':
        assert prediction.objectness is not None
        np.testing.assert_allclose(
            prediction.objectness, full.objectness_logits[0].numpy(), atol=1e-5
        )
    else:
        assert prediction.objectness is None


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_detections_match_the_library_post_processing(
    family: str,
    make_backend: Callable[..., OwlBackend],
    model_dirs: dict[str, Path],
    camera_image: np.ndarray,
) -> None:
    # transformers' own post-processing (max over phrases per box, then rescale to the camera
    # image) must give the same boxes and scores as ours when NMS keeps everything.
    backend = make_backend(family, box_threshold=0.0, nms_iou=1.0, max_detections=1000)
    prediction = backend.predict(camera_image, ['red cube'])
    processor = backend.family.processor_class().from_pretrained(model_dirs[family])

    class Outputs:
        logits = torch.from_numpy(prediction.logits[None])
        pred_boxes = torch.from_numpy(prediction.boxes_cxcywh[None])

    (expected,) = processor.image_processor.post_process_object_detection(
        Outputs, threshold=0.0, target_sizes=[(HEIGHT, WIDTH)]
    )
    expected_boxes = expected['boxes'].numpy().copy()
    expected_boxes[:, [0, 2]] = expected_boxes[:, [0, 2]].clip(0, WIDTH)
    expected_boxes[:, [1, 3]] = expected_boxes[:, [1, 3]].clip(0, HEIGHT)
    visible = (expected_boxes[:, 2] - expected_boxes[:, 0] >= 1) & (
        expected_boxes[:, 3] - expected_boxes[:, 1] >= 1
    )
    reference = np.array(
        sorted(
            (float(s), *b.tolist())
            for s, b in zip(expected['scores'].numpy()[visible], expected_boxes[visible])
        )
    )
    ours = np.array(
        sorted((d.score, *d.box.to_list()) for d in backend.detect(camera_image, ['red cube']))
    )
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-3)


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_detect_on_a_non_square_camera_image(
    family: str, make_backend: Callable[..., OwlBackend], camera_image: np.ndarray
) -> None:
    backend = make_backend(family, box_threshold=0.0)
    detections = backend.detect(camera_image, PHRASES)
    assert detections
    assert {d.phrase for d in detections} <= set(PHRASES)
    assert [d.score for d in detections] == sorted((d.score for d in detections), reverse=True)
    for detection in detections:
        assert 0.0 <= detection.box.x1 < detection.box.x2 <= WIDTH
        assert 0.0 <= detection.box.y1 < detection.box.y2 <= HEIGHT
        assert 0.0 <= detection.score <= 1.0
        assert detection.embedding is not None
        assert detection.embedding.shape == (32,)
        assert float(np.linalg.norm(detection.embedding)) == pytest.approx(1.0, abs=1e-5)


def test_max_image_side_shrinks_the_model_input_and_maps_boxes_back(
    make_backend: Callable[..., OwlBackend], camera_image: np.ndarray
) -> None:
    backend = make_backend(box_threshold=0.0, max_image_side=32)
    prediction = backend.predict(camera_image, PHRASES)
    assert (prediction.image.width, prediction.image.height) == (32, 20)
    big = make_backend(box_threshold=0.0, max_image_side=32, nms_iou=1.0, max_detections=1000)
    boxes = np.array([d.box.to_list() for d in big.detect(camera_image, PHRASES)])
    assert boxes[:, [0, 2]].max() <= WIDTH
    assert boxes[:, [1, 3]].max() <= HEIGHT
    # Mapped back to camera pixels: the boxes reach beyond the 32x20 model image.
    assert boxes[:, 2].max() > 32


def test_text_embeddings_are_cached_per_phrase_set(
    make_backend: Callable[..., OwlBackend], camera_image: np.ndarray
) -> None:
    backend = make_backend(options={'text_cache_size': 2})
    encoder = backend.text_encoder
    backend.detect(camera_image, PHRASES)
    backend.detect(camera_image, PHRASES)
    backend.detect(camera_image, ['  red   cube', 'blue mug', 'red cube'])  # same set, normalised
    assert (encoder.misses, encoder.hits) == (1, 2)
    backend.detect(camera_image, ['laptop'])
    backend.detect(camera_image, ['tray'])
    assert len(encoder) == 2  # LRU: the oldest set was evicted
    backend.detect(camera_image, PHRASES)
    assert encoder.misses == 4


def test_standing_query_gives_the_same_answer_every_frame(
    owlv2: OwlBackend, camera_image: np.ndarray
) -> None:
    first = owlv2.detect(camera_image, PHRASES)
    second = owlv2.detect(camera_image, PHRASES)
    assert [(d.phrase, d.box, d.score) for d in first] == [
        (d.phrase, d.box, d.score) for d in second
    ]


def test_no_phrases_means_no_detections(owlv2: OwlBackend, camera_image: np.ndarray) -> None:
    assert owlv2.detect(camera_image, []) == []
    assert owlv2.detect(camera_image, ['', '   ']) == []


@pytest.mark.parametrize(
    ('image', 'phrases', 'error'),
    [
        (np.zeros((HEIGHT, WIDTH, 3), dtype=np.float64), PHRASES, ImageConversionError),
        (np.zeros((HEIGHT, WIDTH), dtype=np.uint16), PHRASES, ImageConversionError),
        (np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8), 'red cube', BackendError),
        (np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8), ['red cube', 7], BackendError),
    ],
)
def test_bad_input_raises_a_grounding_error(
    owlv2: OwlBackend, image: np.ndarray, phrases: Any, error: type[GroundingError]
) -> None:
    with pytest.raises(error):
        owlv2.detect(image, phrases)


def test_verify_is_not_offered(owlv2: OwlBackend, camera_image: np.ndarray) -> None:
    assert owlv2.supports_verify is False
    assert owlv2.verify(camera_image, Box(0, 0, 10, 10), 'red cube') is None


@pytest.mark.parametrize(
    ('settings', 'error', 'message'),
    [
        ({'model': ''}, ModelLoadError, 'needs a model'),
        ({'model': '/no/such/owl'}, ModelLoadError, 'does not exist'),
        ({'model': '/no/such/owl.onnx'}, ModelLoadError, 'ONNX model .* does not exist'),
        ({'model': '/no/such/owl.engine'}, ModelLoadError, 'TensorRT engine .* does not exist'),
        ({'options': {'hf_modle': 'x'}}, ConfigError, 'unknown OWL backend option'),
        ({'options': {'image_size': 30}}, ConfigError, 'multiple of the patch size'),
        ({'options': {'text_cache_size': 0}}, ConfigError, 'text_cache_size'),
        ({'options': {'image_size': 'big'}}, ConfigError, 'image_size must be an integer'),
        ({'options': {'intra_op_threads': 1.5}}, ConfigError, 'must be an integer'),
        ({'dtype': 'float16'}, ConfigError, 'float16 needs a CUDA device'),
    ],
)
def test_bad_configuration_is_one_clear_error(
    model_dirs: dict[str, Path], settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    values = {'name': 'owlv2', 'model': str(model_dirs['owlv2']), **settings}
    with pytest.raises(error, match=message):
        create_backend(values)


def test_cuda_requested_without_a_gpu(
    model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ConfigError, match='CUDA is not available'):
        create_backend({'name': 'owlv2', 'model': str(model_dirs['owlv2']), 'device': 'cuda'})


def test_onnx_file_without_sidecar_needs_hf_model(tmp_path: Path) -> None:
    lonely = tmp_path / 'owl.onnx'
    lonely.write_bytes(b'')
    with pytest.raises(ConfigError, match=r'options\.hf_model'):
        create_backend({'name': 'owlv2', 'model': str(lonely)})


def test_interpolated_input_size(
    make_backend: Callable[..., OwlBackend], camera_image: np.ndarray
) -> None:
    backend = make_backend(box_threshold=0.0, options={'image_size': 48})
    prediction = backend.predict(camera_image, PHRASES)
    assert prediction.logits.shape == (36, 2)  # 6x6 patches of 8 px
    for detection in backend.detect(camera_image, PHRASES):
        assert detection.box.x2 <= WIDTH
        assert detection.box.y2 <= HEIGHT


@pytest.mark.parametrize('family', ['owlv2', 'owlvit'])
def test_agent_end_to_end(family: str, make_backend: Callable[..., OwlBackend]) -> None:
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.result import GroundingResult, ResultStatus

    agent = GroundingAgent(make_backend(family), ResolverConfig())
    image = np.random.default_rng(5).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for command in ('find the red cube', 'how many mugs are there?', 'is there a laptop?'):
        result = agent.handle_command(command, Frame(image=image))
        # Random weights: any status is possible, but never an error and never a box outside.
        parsed = GroundingResult.from_json(result.to_json())
        assert parsed.status is not ResultStatus.ERROR, parsed.reason
        assert parsed.backend == family
        boxes = [t.box for t in parsed.candidates]
        if parsed.target is not None:
            boxes.append(parsed.target.box)
        for x1, y1, x2, y2 in boxes:
            assert 0 <= x1 <= x2 <= WIDTH
            assert 0 <= y1 <= y2 <= HEIGHT


def test_ground_command_runs_on_the_tiny_model(
    model_dirs: dict[str, Path],
    camera_image: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `grounding-agent ground` exactly as a user types it (its own parser and run()).
    import argparse

    import cv2

    from grounding_agent.commands import ground
    from grounding_agent.core.result import GroundingResult

    image_path = tmp_path / 'camera.png'
    cv2.imwrite(str(image_path), camera_image[:, :, ::-1])
    parser = argparse.ArgumentParser(prog='grounding-agent ground')
    ground.add_arguments(parser)
    args = parser.parse_args(
        [
            '--backend',
            'owlv2',
            '--model',
            str(model_dirs['owlv2']),
            '--image',
            str(image_path),
            '--query',
            'find the red cube',
        ]
    )
    code = ground.run(args)
    result = GroundingResult.from_json(capsys.readouterr().out)
    assert code == 0, result.reason
    assert result.backend == 'owlv2'
    assert result.status.value != 'error', result.reason


def test_backend_config_round_trip_keeps_the_owl_options(model_dirs: dict[str, Path]) -> None:
    config = BackendConfig.from_mapping(
        {'name': 'owlvit', 'model': str(model_dirs['owlvit']), 'options': {'image_size': 32}}
    )
    backend = create_backend(config)
    assert isinstance(backend, OwlBackend)
    assert (backend.name, backend.image_size, backend.runtime) == ('owlvit', 32, 'torch')
