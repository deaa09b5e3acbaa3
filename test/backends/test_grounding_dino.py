"""The grounding_dino backend on a tiny random model saved and loaded like a real checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models_vlm import build_tiny_grounding_dino

from grounding_agent.backends.base import BackendConfig, create_backend
from grounding_agent.backends.grounding_dino import (
    DEFAULT_MODEL,
    GroundingDinoBackend,
    format_phrase,
    phrase_for_label,
)
from grounding_agent.core.errors import BackendError, GroundingError, ModelLoadError

# Non-square on purpose: a width/height mix-up in the rescaling shows at once.
HEIGHT, WIDTH = 48, 80


@pytest.fixture(scope='session')
def gdino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_grounding_dino(tmp_path_factory.mktemp('tiny_gdino'))


@pytest.fixture(scope='session')
def make_backend(gdino_dir: Path) -> Callable[..., GroundingDinoBackend]:
    def make(**settings: Any) -> GroundingDinoBackend:
        values = {'name': 'grounding_dino', 'model': str(gdino_dir), **settings}
        backend = create_backend(values)
        assert isinstance(backend, GroundingDinoBackend)
        return backend

    return make


@pytest.fixture(scope='session')
def backend(make_backend: Callable[..., GroundingDinoBackend]) -> GroundingDinoBackend:
    return make_backend(box_threshold=0.0, text_threshold=0.0)


@pytest.fixture
def camera_image() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ('phrase', 'expected'),
    [
        ('Red Mug', 'red mug'),
        ('  the   blue\nbottle ', 'the blue bottle'),
        ('a cat. a dog.', 'a cat a dog'),
        ('...', ''),
    ],
)
def test_format_phrase(phrase: str, expected: str) -> None:
    assert format_phrase(phrase) == expected


@pytest.mark.parametrize(
    ('label', 'phrases', 'token_scores', 'expected'),
    [
        ('red mug', ['red mug', 'laptop'], None, 0),
        ('laptop', ['red mug', 'laptop'], None, 1),
        ('mug', ['red mug', 'laptop'], None, 0),  # part of a phrase
        ('red', ['red mug', 'blue mug'], None, 0),
        ('mug', ['red mug', 'blue mug'], [0.2, 0.7], 1),  # shared word: token score decides
        ('red mug. blue mug. [SEP]', ['red mug', 'blue mug'], [0.9, 0.3], 0),
        ('a red mug. laptop. [SEP]', ['red mug', 'laptop'], [0.4, 0.8], 1),
        ('mug', ['mug', 'red mug'], [0.1, 0.9], 0),  # whole phrase beats half a phrase
        ('Red Mug', ['red mug'], None, 0),
        ('dog', ['red mug', 'laptop'], None, None),
        ('', ['red mug'], None, None),
        ('[SEP]', ['red mug'], None, None),
        ('. .', ['red mug'], None, None),
    ],
)
def test_label_maps_back_to_requested_phrase(
    label: str, phrases: list[str], token_scores: list[float] | None, expected: int | None
) -> None:
    assert phrase_for_label(label, phrases, token_scores) == expected


@pytest.mark.slow
def test_backend_is_registered_and_loads_through_from_pretrained(
    backend: GroundingDinoBackend,
) -> None:
    assert backend.name == 'grounding_dino'
    assert not backend.supports_verify
    assert not backend.supports_expression


@pytest.mark.slow
def test_detect_end_to_end_gives_valid_boxes_in_camera_pixels(
    backend: GroundingDinoBackend, camera_image: np.ndarray
) -> None:
    phrases = ['red cube', 'Blue Mug', 'laptop']
    detections = backend.detect(camera_image, phrases)
    # Thresholds 0: every query survives post-processing, so the mapping path is exercised.
    assert detections
    assert len(detections) <= backend.config.max_detections
    for detection in detections:
        assert detection.phrase in phrases
        assert 0.0 <= detection.score <= 1.0
        box = detection.box
        assert 0.0 <= box.x1 < box.x2 <= WIDTH
        assert 0.0 <= box.y1 < box.y2 <= HEIGHT


@pytest.mark.slow
def test_detect_is_deterministic(backend: GroundingDinoBackend, camera_image: np.ndarray) -> None:
    first = backend.detect(camera_image, ['red cube', 'laptop'])
    second = backend.detect(camera_image, ['red cube', 'laptop'])
    assert [(d.phrase, d.box, d.score) for d in first] == [
        (d.phrase, d.box, d.score) for d in second
    ]


def _fixed_outputs(logits_rows: dict[int, dict[int, float]], boxes: list[list[float]]) -> Any:
    """Model outputs with chosen token logits per query (others -10) and cxcywh boxes."""
    import torch
    from transformers.models.grounding_dino.modeling_grounding_dino import (
        GroundingDinoObjectDetectionOutput,
    )

    logits = torch.full((1, len(boxes), 32), -10.0)
    for query, tokens in logits_rows.items():
        for position, value in tokens.items():
            logits[0, query, position] = value
    return GroundingDinoObjectDetectionOutput(
        logits=logits, pred_boxes=torch.tensor([boxes], dtype=torch.float32)
    )


@pytest.mark.slow
def test_post_processing_known_answer(make_backend: Callable[..., GroundingDinoBackend]) -> None:
    backend = make_backend(box_threshold=0.3, text_threshold=0.25)
    (chunk,) = backend._prompt_chunks(('red mug', 'laptop'))
    assert chunk.text == 'red mug . laptop .'
    # [CLS] red mug . laptop . [SEP]
    assert chunk.token_positions == ((1, 2), (4,))
    outputs = _fixed_outputs(
        {0: {2: 5.0}, 1: {4: 2.0}, 2: {1: -3.0}},
        [[0.5, 0.5, 0.5, 0.5], [0.25, 0.75, 0.1, 0.2], [0.5, 0.5, 1.0, 1.0]],
    )
    detections = backend.read_outputs(outputs, chunk, image_height=HEIGHT, image_width=WIDTH)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert [(d.phrase, d.label) for d in detections] == [('red mug', 'mug'), ('laptop', 'laptop')]
    assert detections[0].box.to_list() == pytest.approx([20.0, 12.0, 60.0, 36.0])
    assert detections[1].box.to_list() == pytest.approx([16.0, 31.2, 24.0, 40.8])
    assert detections[0].score == pytest.approx(sigmoid(5.0), abs=1e-6)
    assert detections[1].score == pytest.approx(sigmoid(2.0), abs=1e-6)


class _FixedModel:
    """Stands in for the network only: returns fixed outputs and records the image it saw."""

    def __init__(self, outputs: Any) -> None:
        self.outputs = outputs
        self.pixel_shapes: list[tuple[int, ...]] = []

    def __call__(self, **inputs: Any) -> Any:
        self.pixel_shapes.append(tuple(inputs['pixel_values'].shape))
        return self.outputs


@pytest.mark.slow
def test_large_image_is_shrunk_and_boxes_come_back_in_camera_pixels(
    make_backend: Callable[..., GroundingDinoBackend],
) -> None:
    backend = make_backend(box_threshold=0.3, text_threshold=0.25, max_image_side=40)
    stand_in = _FixedModel(_fixed_outputs({0: {1: 4.0}}, [[0.5, 0.25, 0.5, 0.5]]))
    backend._model = stand_in
    image = np.zeros((120, 200, 3), dtype=np.uint8)
    (detection,) = backend.detect(image, ['red cube'])
    assert max(stand_in.pixel_shapes[0][2:]) <= 40
    assert detection.phrase == 'red cube'
    assert detection.box.to_list() == pytest.approx([50.0, 0.0, 150.0, 60.0])


@pytest.mark.slow
def test_phrases_beyond_text_length_are_split_into_chunks(
    backend: GroundingDinoBackend, camera_image: np.ndarray
) -> None:
    words = ['red', 'green', 'blue', 'yellow', 'small', 'large']
    phrases = [f'{colour} {noun}' for colour in words for noun in ('cube', 'mug')]
    chunks = backend._prompt_chunks(tuple(phrases))
    assert len(chunks) >= 2
    assert sorted(p for chunk in chunks for p in chunk.phrases) == sorted(phrases)
    for chunk in chunks:
        assert chunk.encoding['input_ids'].shape[1] <= 32
        assert all(len(positions) == 2 for positions in chunk.token_positions)
    assert backend._prompt_chunks(tuple(phrases)) is chunks  # cached per phrase set
    for detection in backend.detect(camera_image, phrases):
        assert detection.phrase in phrases


@pytest.mark.slow
def test_phrases_differing_only_in_case_each_get_their_boxes(
    backend: GroundingDinoBackend, camera_image: np.ndarray
) -> None:
    detections = backend.detect(camera_image, ['Red cube', 'red cube'])
    phrases = {d.phrase for d in detections}
    assert phrases == {'Red cube', 'red cube'}


@pytest.mark.slow
@pytest.mark.parametrize(
    ('image', 'phrases', 'error'),
    [
        (np.zeros((HEIGHT, WIDTH, 3), dtype=np.float32), ['cube'], GroundingError),
        (np.zeros((HEIGHT, WIDTH), dtype=np.uint8), [42], BackendError),
        ('not an image', ['cube'], GroundingError),
        (np.zeros((0, WIDTH, 3), dtype=np.uint8), ['cube'], GroundingError),
    ],
)
def test_bad_input_raises_typed_errors(
    backend: GroundingDinoBackend, image: Any, phrases: list[Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        backend.detect(image, phrases)


@pytest.mark.slow
def test_no_phrases_means_no_detections(
    backend: GroundingDinoBackend, camera_image: np.ndarray
) -> None:
    assert backend.detect(camera_image, ['', '  ', '.']) == []


def test_missing_model_directory_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match='does not exist'):
        create_backend(BackendConfig(name='grounding_dino', model=str(tmp_path / 'nowhere')))


def test_empty_model_means_the_default_model() -> None:
    # Offline and (normally) not in the cache: the error names the default id it tried.
    try:
        loaded = create_backend(BackendConfig(name='grounding_dino', offline=True))
    except ModelLoadError as error:
        message = str(error)
    else:
        message = loaded.config.model
    assert DEFAULT_MODEL in message


ALLOWED_STATUSES = {'grounded', 'rejected', 'ambiguous', 'answered'}


@pytest.mark.slow
@pytest.mark.parametrize(
    'command', ['find the red cube', 'find the red mug left of the laptop', 'how many cubes?']
)
def test_agent_end_to_end_gives_a_valid_result(
    backend: GroundingDinoBackend, camera_image: np.ndarray, command: str
) -> None:
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.result import GroundingResult
    from grounding_agent.core.types import Frame

    result = GroundingAgent(backend, ResolverConfig()).handle_command(
        command, Frame(image=camera_image), request_id='7'
    )
    assert GroundingResult.from_json(result.to_json()) == result
    assert result.status.value in ALLOWED_STATUSES, result.reason
    assert (result.request_id, result.backend) == ('7', 'grounding_dino')
    targets = [result.target] if result.target is not None else []
    for target in targets + list(result.candidates):
        x1, y1, x2, y2 = target.box
        assert 0.0 <= x1 <= x2 <= WIDTH
        assert 0.0 <= y1 <= y2 <= HEIGHT
