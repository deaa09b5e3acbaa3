"""The qwen_vl backend on tiny random Qwen2.5-VL and Qwen3-VL models saved like real checkpoints.

Random weights generate random text, so the generation path is tested for what it must never do
(crash, or return a box outside the image). Coordinate handling is tested with known replies
given to the real preprocessing in place of the network's text.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models_vlm import build_tiny_qwen2_5_vl, build_tiny_qwen3_vl

from grounding_agent.backends.base import BackendConfig, create_backend
from grounding_agent.backends.qwen_vl import (
    DEFAULT_MODEL,
    QwenVlBackend,
    _mean_token_probability,
    model_family,
)
from grounding_agent.backends.vlm_parsing import (
    CoordinateConvention,
    reply_excerpt,
    yes_no_probability,
)
from grounding_agent.core.errors import BackendError, ConfigError, GroundingError, ModelLoadError
from grounding_agent.core.types import Box, Detection

HEIGHT, WIDTH = 48, 80
BUILDERS = {'qwen2_5_vl': build_tiny_qwen2_5_vl, 'qwen3_vl': build_tiny_qwen3_vl}
DESCRIPTIONS = ['the red cube', 'the blue mug left of the laptop', 'a person in a green shirt']


@pytest.fixture(scope='session')
def qwen_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        model_type: build(tmp_path_factory.mktemp(f'tiny_{model_type}'))
        for model_type, build in BUILDERS.items()
    }


def _load(directory: Path, **settings: Any) -> QwenVlBackend:
    options = {'max_new_tokens': 8, **settings.pop('options', {})}
    backend = create_backend(
        {'name': 'qwen_vl', 'model': str(directory), 'options': options, **settings}
    )
    assert isinstance(backend, QwenVlBackend)
    return backend


@pytest.fixture(scope='session')
def backends(qwen_dirs: dict[str, Path]) -> dict[str, QwenVlBackend]:
    return {model_type: _load(directory) for model_type, directory in qwen_dirs.items()}


@pytest.fixture(params=sorted(BUILDERS))
def backend(request: pytest.FixtureRequest, backends: dict[str, QwenVlBackend]) -> QwenVlBackend:
    return backends[request.param]


@pytest.fixture
def camera_image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def _reply_with(monkeypatch: pytest.MonkeyPatch, backend: QwenVlBackend, reply: str) -> None:
    """Stand in for the network's text only; preprocessing and parsing stay real."""
    monkeypatch.setattr(backend, '_generate', lambda prepared, prompt: (reply, 0.9))


@pytest.mark.parametrize(
    ('model_type', 'convention'),
    [
        ('qwen2_5_vl', CoordinateConvention.RESIZED_PIXELS),
        ('qwen3_vl', CoordinateConvention.RELATIVE_1000),
        ('qwen3_vl_moe', CoordinateConvention.RELATIVE_1000),
    ],
)
def test_model_family_picks_the_coordinate_convention(
    model_type: str, convention: CoordinateConvention
) -> None:
    assert model_family(model_type).convention is convention


@pytest.mark.parametrize('model_type', ['llava', '', 'grounding-dino'])
def test_unsupported_model_type_is_a_model_load_error(model_type: str) -> None:
    with pytest.raises(ModelLoadError, match='supported: qwen2_5_vl, qwen3_vl'):
        model_family(model_type)


@pytest.mark.slow  # imports torch
def test_mean_token_probability_known_answer() -> None:
    import torch

    steps = [torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[0.0, 0.0]])]
    assert _mean_token_probability(steps, torch.tensor([1, 0])) == pytest.approx(0.625)
    assert _mean_token_probability([], torch.tensor([], dtype=torch.long)) == 0.0


@pytest.mark.slow
def test_both_families_load_through_from_pretrained(backends: dict[str, QwenVlBackend]) -> None:
    for model_type, backend in backends.items():
        assert backend.family.model_type == model_type
        assert backend.supports_expression
        assert backend.supports_verify


def _outcome(call: Callable[[], Any]) -> tuple[Any, BackendError | None]:
    """What a backend call returned, or the BackendError it raised."""
    try:
        return call(), None
    except BackendError as error:
        return None, error


def _assert_inside(detection: Detection) -> None:
    box = detection.box
    assert 0.0 <= box.x1 < box.x2 <= WIDTH
    assert 0.0 <= box.y1 < box.y2 <= HEIGHT
    assert 0.0 <= detection.score <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize('description', DESCRIPTIONS)
def test_random_generation_gives_a_box_none_or_a_quoting_error(
    backend: QwenVlBackend, camera_image: np.ndarray, description: str
) -> None:
    detection, error = _outcome(lambda: backend.ground_expression(camera_image, description))
    if error is not None:
        assert repr(reply_excerpt(backend.last_reply_text)) in str(error)
    elif detection is not None:
        assert detection.phrase == description
        _assert_inside(detection)


@pytest.mark.slow
def test_random_detection_gives_boxes_or_a_quoting_error(
    backend: QwenVlBackend, camera_image: np.ndarray
) -> None:
    phrases = ['red cube', 'laptop']
    detections, error = _outcome(lambda: backend.detect(camera_image, phrases))
    if error is not None:
        assert repr(reply_excerpt(backend.last_reply_text)) in str(error)
    for detection in detections or []:
        assert detection.phrase in phrases
        _assert_inside(detection)


@pytest.mark.slow
def test_verify_probability_is_a_probability(
    backend: QwenVlBackend, camera_image: np.ndarray
) -> None:
    box = Box(10, 8, 50, 40)
    answer = backend.verify_probabilities(camera_image, box, 'the red cube')
    assert 0.0 <= answer.yes <= 1.0
    assert answer.yes + answer.no == pytest.approx(1.0)
    assert backend.verify(camera_image, box, 'the red cube') == pytest.approx(answer.yes)


@pytest.mark.slow
def test_verify_reads_the_logits_of_the_first_generated_token(
    backend: QwenVlBackend, camera_image: np.ndarray
) -> None:
    import torch

    prepared = backend._prepare(camera_image)
    prompt = 'Is there a red cube? Answer yes or no.'
    logits = backend._next_token_logits(prepared, prompt)
    inputs = backend._inputs(prepared, prompt)
    with torch.inference_mode():
        generated = backend._model.generate(**inputs, max_new_tokens=1, do_sample=False)
    assert int(generated[0, -1]) == int(np.argmax(logits))
    answer = yes_no_probability(logits, backend._yes_ids, backend._no_ids)
    assert answer.yes + answer.no == pytest.approx(1.0)


# Known replies, in each model's convention, for a 80x48 camera image. Qwen2.5-VL sees it
# smart-resized to 84x56 (multiples of 28); Qwen3-VL answers in 0..1000.
KNOWN_REPLIES = [
    ('qwen2_5_vl', '```json\n{"bbox_2d": [21, 14, 63, 42]}\n```', [20.0, 12.0, 60.0, 36.0]),
    ('qwen3_vl', '```json\n{"bbox_2d": [250, 250, 750, 750]}\n```', [20.0, 12.0, 60.0, 36.0]),
    (
        'qwen3_vl',
        '[{"bbox_2d": [0, 0, 500, 500], "label": "cube"}, {"bbox_2d": [500, 500, 900, 900]}]',
        [0.0, 0.0, 40.0, 24.0],
    ),
    ('qwen2_5_vl', '{"bbox_2d": [63, 42, 21, 14]}', [20.0, 12.0, 60.0, 36.0]),
    ('qwen3_vl', '{"point_2d": [500, 500]}', [39.0, 23.0, 41.0, 25.0]),  # at least 1 px each way
    ('qwen2_5_vl', 'The cube is at 21, 14, 63, 42.', [20.0, 12.0, 60.0, 36.0]),
    ('qwen3_vl', '{"bbox_2d": null}', None),
    ('qwen2_5_vl', 'There is no such object.', None),
]


@pytest.mark.slow
@pytest.mark.parametrize(('model_type', 'reply', 'expected'), KNOWN_REPLIES)
def test_known_reply_maps_to_camera_pixels(
    monkeypatch: pytest.MonkeyPatch,
    backends: dict[str, QwenVlBackend],
    camera_image: np.ndarray,
    model_type: str,
    reply: str,
    expected: list[float] | None,
) -> None:
    backend = backends[model_type]
    _reply_with(monkeypatch, backend, reply)
    detection = backend.ground_expression(camera_image, 'the red cube')
    if expected is None:
        assert detection is None
        return
    assert detection is not None
    assert detection.box.to_list() == pytest.approx(expected, abs=1e-6)
    assert detection.score == pytest.approx(0.9)


@pytest.mark.slow
def test_several_boxes_for_one_expression_are_noted(
    monkeypatch: pytest.MonkeyPatch, backends: dict[str, QwenVlBackend], camera_image: np.ndarray
) -> None:
    backend = backends['qwen3_vl']
    _reply_with(monkeypatch, backend, '[{"bbox_2d": [0, 0, 5, 5]}, {"bbox_2d": [1, 1, 9, 9]}]')
    backend.ground_expression(camera_image, 'the cube')
    assert backend.last_reply is not None
    assert '2 boxes for one expression; kept the first' in backend.last_reply.notes


@pytest.mark.slow
@pytest.mark.parametrize(
    'reply',
    ['no idea what you mean', '{"bbox_2d": [1100, 1100, 1200, 1200]}', ''],
)
def test_unusable_reply_is_a_backend_error_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
    backends: dict[str, QwenVlBackend],
    camera_image: np.ndarray,
    reply: str,
) -> None:
    _reply_with(monkeypatch, backends['qwen3_vl'], reply)
    with pytest.raises(BackendError) as caught:
        backends['qwen3_vl'].ground_expression(camera_image, 'the cube')
    assert repr(reply_excerpt(reply)) in str(caught.value)


@pytest.mark.slow
def test_detect_keeps_every_instance_of_each_phrase(
    monkeypatch: pytest.MonkeyPatch, backends: dict[str, QwenVlBackend], camera_image: np.ndarray
) -> None:
    backend = backends['qwen3_vl']
    reply = (
        '```json\n[{"bbox_2d": [0, 0, 250, 250], "label": "cube"},\n'
        ' {"bbox_2d": [500, 500, 750, 750], "label": "cube"}]\n```'
    )
    _reply_with(monkeypatch, backend, reply)
    detections = backend.detect(camera_image, ['Red cube', 'laptop'])
    boxes = sorted((d.phrase, tuple(d.box.to_list())) for d in detections)
    assert boxes == [
        ('Red cube', (0.0, 0.0, 20.0, 12.0)),
        ('Red cube', (40.0, 24.0, 60.0, 36.0)),
        ('laptop', (0.0, 0.0, 20.0, 12.0)),
        ('laptop', (40.0, 24.0, 60.0, 36.0)),
    ]


@pytest.mark.slow
def test_large_image_is_shrunk_and_boxes_scale_back(qwen_dirs: dict[str, Path]) -> None:
    backend = _load(qwen_dirs['qwen2_5_vl'], max_image_side=40)
    prepared = backend._prepare(np.zeros((96, 160, 3), dtype=np.uint8))
    # 160x96 -> 40x24 before the processor; smart_resize (factor 28) -> 28x28.
    geometry = prepared.geometry
    assert (geometry.width, geometry.height) == (160, 96)
    assert (geometry.input_width, geometry.input_height) == (28, 28)
    assert prepared.image_tokens == 1


@pytest.mark.slow
def test_max_pixels_option_limits_the_model_input(qwen_dirs: dict[str, Path]) -> None:
    backend = _load(qwen_dirs['qwen2_5_vl'], options={'max_pixels': 28 * 28})
    prepared = backend._prepare(np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8))
    assert (prepared.geometry.input_width, prepared.geometry.input_height) == (28, 28)


@pytest.mark.slow
@pytest.mark.parametrize(
    ('call', 'error'),
    [
        (lambda b, img: b.ground_expression(img, '   '), BackendError),
        (lambda b, img: b.ground_expression(img.astype(np.float32), 'cube'), GroundingError),
        (lambda b, img: b.ground_expression(img[:, :, :2], 'cube'), GroundingError),
        (lambda b, img: b.verify(img, Box(500, 500, 600, 600), 'cube'), BackendError),
        (lambda b, img: b.verify(img, Box(1, 1, 5, 5), ''), BackendError),
        (lambda b, img: b.detect(img, [None]), BackendError),
    ],
)
def test_bad_input_raises_typed_errors(
    backends: dict[str, QwenVlBackend],
    camera_image: np.ndarray,
    call: Callable[[QwenVlBackend, np.ndarray], Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        call(backends['qwen3_vl'], camera_image)


@pytest.mark.slow
def test_no_phrases_means_no_generation(
    backends: dict[str, QwenVlBackend], camera_image: np.ndarray
) -> None:
    assert backends['qwen3_vl'].detect(camera_image, ['', ' ']) == []


@pytest.mark.slow
@pytest.mark.parametrize('value', [0, -3, 'many', True])
def test_bad_max_new_tokens_is_a_config_error(qwen_dirs: dict[str, Path], value: Any) -> None:
    with pytest.raises(ConfigError, match='max_new_tokens'):
        _load(qwen_dirs['qwen3_vl'], options={'max_new_tokens': value})


@pytest.mark.slow
def test_tokenizer_that_does_not_match_the_weights_is_refused(
    qwen_dirs: dict[str, Path], tmp_path: Path
) -> None:
    copy = Path(shutil.copytree(qwen_dirs['qwen3_vl'], tmp_path / 'mismatched'))
    config_file = copy / 'config.json'
    saved = json.loads(config_file.read_text(encoding='utf-8'))
    saved['image_token_id'] = 3
    config_file.write_text(json.dumps(saved), encoding='utf-8')
    with pytest.raises(ModelLoadError, match='do not match'):
        _load(copy)


def test_missing_model_directory_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match='does not exist'):
        create_backend(BackendConfig(name='qwen_vl', model=str(tmp_path / 'nowhere')))


def test_empty_model_means_the_default_model() -> None:
    # Offline and (normally) not in the cache: the error names the default id it tried.
    try:
        loaded = create_backend(BackendConfig(name='qwen_vl', offline=True))
    except ModelLoadError as error:
        message = str(error)
    else:
        message = loaded.config.model
    assert DEFAULT_MODEL in message


@pytest.mark.slow
@pytest.mark.parametrize('command', ['find the red cube', 'is there a blue mug?'])
def test_agent_with_random_generation_never_raises(
    backend: QwenVlBackend, camera_image: np.ndarray, command: str
) -> None:
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.result import GroundingResult
    from grounding_agent.core.types import Frame

    result = GroundingAgent(backend, ResolverConfig()).handle_command(
        command, Frame(image=camera_image)
    )
    assert GroundingResult.from_json(result.to_json()) == result
    assert result.status.value in {'grounded', 'rejected', 'ambiguous', 'answered', 'error'}
    if result.status.value == 'error':
        # An unreadable reply: the reason quotes what the model said.
        assert repr(reply_excerpt(backend.last_reply_text)) in result.reason
    if result.target is not None:
        x1, y1, x2, y2 = result.target.box
        assert 0.0 <= x1 <= x2 <= WIDTH
        assert 0.0 <= y1 <= y2 <= HEIGHT


@pytest.mark.slow
@pytest.mark.parametrize(('verify_threshold', 'status'), [(0.0, 'grounded'), (1.0, 'rejected')])
def test_agent_confirms_or_rejects_the_winner_with_the_real_verify(
    monkeypatch: pytest.MonkeyPatch,
    backend: QwenVlBackend,
    camera_image: np.ndarray,
    verify_threshold: float,
    status: str,
) -> None:
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.types import Frame

    # Detection gets a known reply; verification runs the real (random) model, whose P(yes)
    # lies strictly between 0 and 1, so the threshold alone decides.
    reply = {
        'qwen2_5_vl': '[{"bbox_2d": [21, 14, 63, 42], "label": "red cube"}]',
        'qwen3_vl': '[{"bbox_2d": [250, 250, 750, 750], "label": "red cube"}]',
    }[backend.family.model_type]
    _reply_with(monkeypatch, backend, reply)
    config = ResolverConfig(verify_threshold=verify_threshold)
    result = GroundingAgent(backend, config).handle_command(
        'find the red cube', Frame(image=camera_image)
    )
    assert result.status.value == status, result.reason
    if status == 'grounded':
        assert result.target is not None
        assert result.target.box == pytest.approx([20.0, 12.0, 60.0, 36.0])
    else:
        assert 'verif' in result.reason
