"""Reading generative-VLM replies: fixed replies whose right boxes are known, both conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grounding_agent.backends.prompts import (
    GROUNDING_ME_PROMPT,
    IMAGE_PAD_TOKEN,
    detection_prompt,
    grounding_prompt,
    qwen_chat_prompt,
    verification_prompt,
)
from grounding_agent.backends.vlm_parsing import (
    CoordinateConvention,
    ImageGeometry,
    ReplyBox,
    parse_reply,
    reply_excerpt,
    to_image_box,
    to_model_coordinates,
    yes_no_probability,
)
from grounding_agent.core.errors import BackendError
from grounding_agent.core.types import Box

# A 640x480 camera image. Qwen2.5-VL sees it smart-resized to 644x476 (multiples of 28) and
# answers in those pixels; Qwen3-VL answers in 0..1000 of the width and height.
Q25 = (CoordinateConvention.RESIZED_PIXELS, ImageGeometry(640, 480, 644, 476))
Q3 = (CoordinateConvention.RELATIVE_1000, ImageGeometry(640, 480))
ERROR = 'error'
# Half-size of the box drawn around a point: 2% of the shorter side (480 px).
HALF = 9.6

REPLIES = [
    # (reply, convention, expected boxes in camera pixels, or ERROR)
    (
        '```json\n[{"bbox_2d": [250, 250, 500, 500], "label": "red mug"}]\n```',
        Q3,
        [(160, 120, 320, 240)],
    ),
    (
        '```json\n[{"bbox_2d": [161, 119, 322, 238], "label": "red mug"}]\n```',
        Q25,
        [(160, 120, 320, 240)],
    ),
    ('{"bbox_2d": [500, 500, 750, 750]}', Q3, [(320, 240, 480, 360)]),
    ('{"bbox_2d": [322, 238, 483, 357]}', Q25, [(320, 240, 480, 360)]),
    ('{"bbox_2d": null}', Q25, []),
    ('```json\n{"bbox_2d": null}\n```', Q3, []),
    ('[]', Q3, []),
    ('```json\n[]\n```', Q25, []),
    ('None', Q3, []),
    ('No matching object found.', Q3, []),
    ('There is no blue bottle in the image.', Q25, []),
    (
        '```json\n[{"bbox_2d": [0, 0, 250, 250], "label": "cup"},\n'
        ' {"bbox_2d": [750, 750, 1000, 1000], "label": "cup"}]\n```',
        Q3,
        [(0, 0, 160, 120), (480, 360, 640, 480)],
    ),
    (
        '{"bbox_2d": [[161, 119, 322, 238], [322, 238, 483, 357]]}',
        Q25,
        [(160, 120, 320, 240), (320, 240, 480, 360)],
    ),
    (
        '{"point_2d": [500, 500], "label": "mug"}',
        Q3,
        [(320 - HALF, 240 - HALF, 320 + HALF, 240 + HALF)],
    ),
    (
        '[{"point_2d": [322, 238], "label": "mug"}]',
        Q25,
        [(320 - HALF, 240 - HALF, 320 + HALF, 240 + HALF)],
    ),
    (
        'Sure! The red mug is here: {"bbox_2d": [250, 250, 500, 500]} Hope this helps.',
        Q3,
        [(160, 120, 320, 240)],
    ),
    ('The object is located at (250, 250), (500, 500).', Q3, [(160, 120, 320, 240)]),
    ('The bounding box is 161, 119, 322, 238', Q25, [(160, 120, 320, 240)]),
    ('```json\n[{"bbox_2d": [250, 250, 500, 500],},]\n```', Q3, [(160, 120, 320, 240)]),
    ("[{'bbox_2d': [250, 250, 500, 500], 'label': 'mug'}]", Q3, [(160, 120, 320, 240)]),
    ('{bbox_2d: [250, 250, 500, 500]}', Q3, [(160, 120, 320, 240)]),
    ("{'bbox': None}", Q3, []),
    ('{"bbox_2d": [500, 500, 250, 250]}', Q3, [(160, 120, 320, 240)]),
    ('{"bbox_2d": [-50, 900, 500, 1200]}', Q3, [(0, 432, 320, 480)]),
    ('{"bbox_2d": [600, 400, 700, 500]}', Q25, [(640 * 600 / 644, 480 * 400 / 476, 640, 480)]),
    ('{"bbox_2d": [1100, 1100, 1200, 1200]}', Q3, []),
    (
        '<|box_start|>(250,250),(500,500)<|box_end|><|im_end|>',
        Q3,
        [(160, 120, 320, 240)],
    ),
    (
        '```json\n[{"bbox_2d": [250, 250, 500, 500], "label": "mug"}, {"bbox_2d": [7',
        Q3,
        [(160, 120, 320, 240)],
    ),
    ('{"bbox_2d": ["250", "250", "500", "500"]}', Q3, [(160, 120, 320, 240)]),
    ('[250, 250, 500, 500]', Q3, [(160, 120, 320, 240)]),
    ('{"bbox_2d": [161.0, 119.0, 322.0, 238.0]}', Q25, [(160, 120, 320, 240)]),
    ('{"x1": 250, "y1": 250, "x2": 500, "y2": 500}', Q3, [(160, 120, 320, 240)]),
    ('{"bbox_2d": [250, 250, 500]}', Q3, ERROR),
    ('asdf qwe zxc', Q3, ERROR),
    ('mug mug 12 7', Q25, ERROR),
    ('', Q3, ERROR),
    ('<|im_end|>', Q25, ERROR),
]


@pytest.mark.parametrize(('reply', 'convention', 'expected'), REPLIES)
def test_reply_gives_known_boxes(
    reply: str,
    convention: tuple[CoordinateConvention, ImageGeometry],
    expected: list[tuple[float, float, float, float]] | str,
) -> None:
    if expected == ERROR:
        with pytest.raises(BackendError):
            parse_reply(reply)
        return
    parsed = parse_reply(reply)
    kind, geometry = convention
    boxes = [to_image_box(b, convention=kind, geometry=geometry) for b in parsed.boxes]
    kept = [b.to_list() for b in boxes if b is not None]
    assert len(kept) == len(expected)
    for got, want in zip(kept, expected):
        assert got == pytest.approx(list(want), abs=1e-6)


def test_table_is_large_enough() -> None:
    assert len(REPLIES) >= 25


@pytest.mark.parametrize(
    ('reply', 'source', 'label'),
    [
        ('[{"bbox_2d": [1, 2, 3, 4], "label": "red mug"}]', 'json', 'red mug'),
        ('{"point_2d": [5, 6], "label": "cup"}', 'point', 'cup'),
        ('it is at 1 2 3 4', 'numbers', ''),
    ],
)
def test_reply_box_says_how_it_was_read(reply: str, source: str, label: str) -> None:
    (box,) = parse_reply(reply).boxes
    assert (box.source, box.label) == (source, label)
    assert box.is_point == (source == 'point')


def test_numbers_fallback_is_noted() -> None:
    assert parse_reply('x 1 2 3 4').notes == ('no JSON box; used the last four numbers',)


def test_explicit_null_is_absent_and_not_an_error() -> None:
    reply = parse_reply('{"bbox_2d": null}')
    assert reply.absent
    assert reply.boxes == ()


def test_unreadable_reply_error_quotes_the_raw_text_truncated() -> None:
    raw = 'The weather is lovely today. ' * 40
    with pytest.raises(BackendError) as caught:
        parse_reply(raw)
    message = str(caught.value)
    assert 'The weather is lovely today.' in message
    assert len(message) < 400


def test_reply_excerpt_is_one_line_and_bounded() -> None:
    assert reply_excerpt('a\n b\tc') == 'a b c'
    long = reply_excerpt('x' * 1000, limit=50)
    assert len(long) == 50
    assert long.endswith('...')


def test_non_text_reply_is_a_backend_error() -> None:
    with pytest.raises(BackendError):
        parse_reply(None)  # type: ignore[arg-type]


@pytest.mark.parametrize('convention', [Q25, Q3])
def test_model_coordinates_round_trip(
    convention: tuple[CoordinateConvention, ImageGeometry],
) -> None:
    kind, geometry = convention
    box = Box(160, 120, 320, 240)
    values = to_model_coordinates(box, convention=kind, geometry=geometry)
    back = to_image_box(
        ReplyBox(values=tuple(float(v) for v in values)), convention=kind, geometry=geometry
    )
    assert back is not None
    assert back.iou(box) > 0.98


@pytest.mark.parametrize(
    ('box', 'convention', 'expected'),
    [
        (Box(160, 120, 320, 240), Q3, [250, 250, 500, 500]),
        (Box(160, 120, 320, 240), Q25, [161, 119, 322, 238]),
    ],
)
def test_model_coordinates_known_values(
    box: Box, convention: tuple[CoordinateConvention, ImageGeometry], expected: list[int]
) -> None:
    kind, geometry = convention
    assert to_model_coordinates(box, convention=kind, geometry=geometry) == expected


def test_resized_pixels_needs_the_input_size() -> None:
    with pytest.raises(ValueError):
        to_image_box(
            ReplyBox(values=(1.0, 2.0, 3.0, 4.0)),
            convention=CoordinateConvention.RESIZED_PIXELS,
            geometry=ImageGeometry(640, 480),
        )


@pytest.mark.parametrize(
    ('logits', 'yes_ids', 'no_ids', 'expected_yes'),
    [
        ([0.0, math.log(3.0), 0.0, 0.0], [1], [2], 0.75),
        ([0.0, math.log(2.0), 0.0, 0.0], [1, 3], [2], 0.75),
        ([5.0, 0.0, 0.0, 9.0], [1], [2], 0.5),
        ([0.0, 0.0, math.log(4.0), 0.0], [1], [2, 3], 1.0 / 6.0),
        ([0.0, 1000.0, 0.0], [1], [2], 1.0),
        (np.array([[0.0, -1000.0, 0.0]]), [1], [2], 0.0),
    ],
)
def test_yes_no_probability_known_answers(
    logits: list[float], yes_ids: list[int], no_ids: list[int], expected_yes: float
) -> None:
    answer = yes_no_probability(logits, yes_ids, no_ids)
    assert answer.yes == pytest.approx(expected_yes, abs=1e-9)
    assert answer.yes + answer.no == pytest.approx(1.0)


@pytest.mark.parametrize(
    ('logits', 'yes_ids', 'no_ids'),
    [
        ([0.0, 1.0], [], [1]),
        ([0.0, 1.0], [1], [1]),
        ([0.0, 1.0], [1], [5]),
        ([0.0, float('nan'), 0.0], [1], [2]),
    ],
)
def test_yes_no_probability_refuses_bad_input(
    logits: list[float], yes_ids: list[int], no_ids: list[int]
) -> None:
    with pytest.raises(BackendError):
        yes_no_probability(logits, yes_ids, no_ids)


def test_grounding_me_prompt_is_verbatim() -> None:
    expected = (
        "All spatial relationships are defined from the viewer's perspective, where 'front' "
        "means closer to the viewer and 'back' means farther from the viewer. Please provide the "
        'bounding box coordinate of the object the following statement describes:\n'
        '{description}\nEnsure that all details mentioned about the object are accurate. Provide '
        'at most one bounding box. If a matching object is found, provide its bounding box as a '
        'JSON in the format {"bbox_2d": [x1, y1, x2, y2]}. If no matching object is found, '
        'output {"bbox_2d": null}.'
    )
    assert expected == GROUNDING_ME_PROMPT


def test_grounding_prompt_fills_the_description_on_one_line() -> None:
    prompt = grounding_prompt('the red mug\nleft of the {laptop}')
    assert '\nthe red mug left of the {laptop}\n' in prompt
    assert '{"bbox_2d": null}' in prompt


def test_detection_prompt_quotes_the_phrase_as_json() -> None:
    prompt = detection_prompt('the "big" box')
    assert 'Locate every the \\"big\\" box in the image.' in prompt
    assert '"label": "the \\"big\\" box"' in prompt


def test_verification_prompt_gives_the_box_as_json() -> None:
    prompt = verification_prompt('red mug', [1, 2, 3, 4])
    assert '{"bbox_2d": [1, 2, 3, 4]}' in prompt
    assert '\nred mug\nAnswer yes or no.' in prompt


@pytest.mark.parametrize(
    ('system', 'starts'), [(None, '<|im_start|>user'), ('S', '<|im_start|>sys')]
)
def test_chat_prompt_layout(system: str | None, starts: str) -> None:
    prompt = qwen_chat_prompt('find it', image_tokens=6, system=system)
    assert prompt.startswith(starts)
    assert prompt.count(IMAGE_PAD_TOKEN) == 6
    assert prompt.endswith('find it<|im_end|>\n<|im_start|>assistant\n')


def test_chat_prompt_needs_an_image_token() -> None:
    with pytest.raises(ValueError):
        qwen_chat_prompt('x', image_tokens=0)
