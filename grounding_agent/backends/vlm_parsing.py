"""Reading the replies of generative vision-language models: boxes, absence, yes/no answers.

Pure Python + numpy (no torch), so every rule here is tested on fixed strings. Models answer in
free text that is usually, but not always, JSON; this module turns whatever came out into boxes in
camera-image pixels, an explicit "not there", or a `BackendError` carrying the raw reply.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import BackendError
from grounding_agent.core.types import Box, Detection

__all__ = [
    'POINT_BOX_FRACTION',
    'REPLY_EXCERPT_CHARS',
    'CoordinateConvention',
    'ImageGeometry',
    'ReplyBox',
    'VlmReply',
    'YesNo',
    'expression_detection',
    'parse_reply',
    'phrase_detections',
    'reply_excerpt',
    'to_image_box',
    'to_model_coordinates',
    'yes_no_probability',
]

#: How much of a reply an error message quotes; enough to see what the model said.
REPLY_EXCERPT_CHARS = 300
#: A `point_2d` answer becomes a square box this fraction of the shorter image side across each
#: way from the point: big enough for IoU-based matching to notice it, small enough not to cover
#: a neighbour.
POINT_BOX_FRACTION = 0.02


class CoordinateConvention(str, Enum):
    """How a model writes box coordinates."""

    #: Qwen2.5-VL: absolute pixels of the image *as the model saw it* (after smart_resize).
    RESIZED_PIXELS = 'resized_pixels'
    #: Qwen3-VL (and Qwen2-VL): 0..1000 relative to the image width and height.
    RELATIVE_1000 = 'relative_1000'


@dataclass(frozen=True, slots=True)
class ImageGeometry:
    """Sizes needed to map model coordinates to camera pixels.

    `input_width` / `input_height` are the size of the image the model was fed (after resizing);
    only the RESIZED_PIXELS convention needs them.
    """

    width: int
    height: int
    input_width: int = 0
    input_height: int = 0


@dataclass(frozen=True, slots=True)
class ReplyBox:
    """One box (4 values) or point (2 values) as the model wrote it, in its own coordinates.

    `source` says how it was read: 'json' (a bbox field or a 4-number list), 'point'
    (a point_2d field) or 'numbers' (the last four numbers of text that held no usable JSON).
    """

    values: tuple[float, ...]
    label: str = ''
    source: str = 'json'

    @property
    def is_point(self) -> bool:
        return len(self.values) == 2


@dataclass(frozen=True, slots=True)
class VlmReply:
    """A parsed reply: the boxes found (empty = the model said the object is absent)."""

    text: str
    boxes: tuple[ReplyBox, ...]
    notes: tuple[str, ...] = ()

    @property
    def absent(self) -> bool:
        return not self.boxes


class YesNo(NamedTuple):
    """Probabilities of a yes and of a no answer; they sum to 1."""

    yes: float
    no: float


def reply_excerpt(text: str, limit: int = REPLY_EXCERPT_CHARS) -> str:
    """The reply quoted for an error message: one line, at most `limit` characters."""
    flat = ' '.join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + '...'


# Chat-template markers that may survive decoding (<|im_end|>, <|box_start|>, ...).
_SPECIAL_TOKEN = re.compile(r'<\|[A-Za-z0-9_]+\|>')
# A fenced block; the closing fence may be missing when generation hit max_new_tokens.
_FENCE = re.compile(r'```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)(?:```|\Z)', re.DOTALL)
# A number not glued to a word ('bbox_2d', 'x1', 'Qwen2' are not coordinates).
_NUMBER = re.compile(r'(?<![A-Za-z_\d.])-?\d+(?:\.\d+)?')
_TRAILING_COMMA = re.compile(r',\s*([\]}])')
_SINGLE_QUOTED = re.compile(r"'([^'\"\n]*)'")
_BARE_KEY = re.compile(r'([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:')
_PY_LITERAL = {'None': 'null', 'True': 'true', 'False': 'false'}
_PY_LITERAL_RE = re.compile(r'\b(None|True|False)\b')
_ABSENT_TEXT = re.compile(
    r'\b(null|none|nothing|no (matching|such|relevant)|not (found|present|visible|in the image)'
    r"|there (is|are) no|cannot (find|see|locate)|can't (find|see|locate)|could not find"
    r"|unable to (find|locate)|does not (exist|appear)|doesn't (exist|appear))\b",
    re.IGNORECASE,
)
_BOX_KEYS = ('bbox_2d', 'bbox', 'box', 'box_2d', 'bbox2d', 'bounding_box', 'boxes')
_POINT_KEYS = ('point_2d', 'point')
_LABEL_KEYS = ('label', 'name', 'object', 'category')


class _Absent:
    """Marker for a JSON value that explicitly says 'no object' (null, [], {"bbox_2d": null})."""


_ABSENT = _Absent()


def parse_reply(text: str) -> VlmReply:
    """Every box in a model reply, or an empty reply for an explicit "not there".

    Reads, in order: fenced code blocks, then the whole text; in each, every JSON value (repairing
    single quotes, trailing commas, Python literals and bare keys). Without usable JSON, the last
    four numbers of the text are taken as a box; without numbers, words like "none" / "not found"
    mean absent. Anything else raises BackendError quoting the reply.
    """
    if not isinstance(text, str):
        raise BackendError(f'model reply is not text: {type(text).__name__}')
    cleaned = _SPECIAL_TOKEN.sub(' ', text).strip()
    if not cleaned:
        raise BackendError(f'model gave an empty reply: {reply_excerpt(text)!r}')
    segments = [m.group(1) for m in _FENCE.finditer(cleaned) if m.group(1).strip()]
    segments.append(cleaned)
    for segment in segments:
        found = _boxes_in_segment(segment)
        if found is not None:
            boxes, notes = found
            return VlmReply(text=text, boxes=tuple(boxes), notes=tuple(notes))
    numbers = [float(n) for n in _NUMBER.findall(cleaned)]
    if len(numbers) >= 4:
        box = ReplyBox(values=tuple(numbers[-4:]), source='numbers')
        return VlmReply(
            text=text, boxes=(box,), notes=('no JSON box; used the last four numbers',)
        )
    if _ABSENT_TEXT.search(cleaned):
        return VlmReply(text=text, boxes=(), notes=('the reply says the object is absent',))
    raise BackendError(f'cannot read a box from the model reply: {reply_excerpt(text)!r}')


def _boxes_in_segment(segment: str) -> tuple[list[ReplyBox], list[str]] | None:
    """Boxes from every interpretable JSON value in `segment`; None when there is none."""
    boxes: list[ReplyBox] = []
    notes: list[str] = []
    said_absent = False
    for value in _json_values(segment):
        found = _interpret(value, label='')
        if found is None:
            continue
        if isinstance(found, _Absent):
            said_absent = True
        else:
            boxes.extend(found)
    if boxes:
        if said_absent:
            notes.append('the reply holds both a null and a box; kept the box')
        return boxes, notes
    if said_absent:
        return [], notes
    return None


def _json_values(segment: str) -> Iterable[Any]:
    """Each JSON object or array in `segment`, left to right, outermost only."""
    position = 0
    while True:
        starts = [i for i in (segment.find('[', position), segment.find('{', position)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        end = _balanced_end(segment, start)
        if end is None:
            # Unclosed (truncated) value: look for a complete one inside it instead.
            position = start + 1
            continue
        value = _loads_lenient(segment[start:end])
        if value is None:
            position = start + 1
            continue
        yield value
        position = end


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes the one at `start`, skipping quoted strings."""
    depth = 0
    quote = ''
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == '\\':
                index += 2
                continue
            if char == quote:
                quote = ''
        elif char in '"\'':
            quote = char
        elif char in '[{':
            depth += 1
        elif char in ']}':
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return None


def _loads_lenient(candidate: str) -> Any | None:
    """json.loads, then again after the repairs models most often need; None if still invalid."""
    attempts = [candidate]
    repaired = _TRAILING_COMMA.sub(r'\1', candidate)
    repaired = _SINGLE_QUOTED.sub(r'"\1"', repaired)
    repaired = _PY_LITERAL_RE.sub(lambda m: _PY_LITERAL[m.group(1)], repaired)
    repaired = _BARE_KEY.sub(r'\1"\2":', repaired)
    attempts.append(repaired)
    for attempt in attempts:
        try:
            # Candidates start with '[' or '{', so a successful parse is never None.
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


def _interpret(value: Any, *, label: str) -> list[ReplyBox] | _Absent | None:
    """Boxes in a decoded JSON value, _ABSENT for an explicit 'none', None if it holds no box."""
    if value is None:
        return _ABSENT
    if isinstance(value, list):
        if not value:
            return _ABSENT
        coords = _coordinates(value, 4)
        if coords is not None:
            return [ReplyBox(values=coords, label=label)]
        boxes: list[ReplyBox] = []
        absent = False
        for item in value:
            found = _interpret(item, label=label)
            if isinstance(found, _Absent):
                absent = True
            elif found is not None:
                boxes.extend(found)
        if boxes:
            return boxes
        return _ABSENT if absent else None
    if isinstance(value, Mapping):
        return _interpret_mapping(value, label=label)
    return None


def _interpret_mapping(value: Mapping[Any, Any], *, label: str) -> list[ReplyBox] | _Absent | None:
    fields = {str(key).strip().lower(): item for key, item in value.items()}
    label = next(
        (str(fields[key]).strip() for key in _LABEL_KEYS if isinstance(fields.get(key), str)),
        label,
    )
    for key in _BOX_KEYS:
        if key in fields:
            found = _interpret(fields[key], label=label)
            if found is not None:
                return found
    for key in _POINT_KEYS:
        if key in fields:
            if fields[key] is None:
                return _ABSENT
            coords = _coordinates(fields[key], 2)
            if coords is not None:
                return [ReplyBox(values=coords, label=label, source='point')]
    corners = [fields.get(key) for key in ('x1', 'y1', 'x2', 'y2')]
    coords = _coordinates(corners, 4)
    if coords is not None:
        return [ReplyBox(values=coords, label=label)]
    return None


def _coordinates(value: Any, count: int) -> tuple[float, ...] | None:
    """`count` finite numbers (numeric strings allowed), or None."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    numbers: list[float] = []
    for item in value:
        if isinstance(item, bool):
            return None
        if isinstance(item, (int, float)):
            number = float(item)
        elif isinstance(item, str):
            try:
                number = float(item.strip())
            except ValueError:
                return None
        else:
            return None
        if not math.isfinite(number):
            return None
        numbers.append(number)
    return tuple(numbers)


def _scale(convention: CoordinateConvention, geometry: ImageGeometry) -> tuple[float, float]:
    """Factors from model coordinates to camera-image pixels."""
    if convention is CoordinateConvention.RELATIVE_1000:
        return geometry.width / 1000.0, geometry.height / 1000.0
    if geometry.input_width <= 0 or geometry.input_height <= 0:
        raise ValueError('the resized_pixels convention needs the model input size')
    return geometry.width / geometry.input_width, geometry.height / geometry.input_height


def to_image_box(
    reply_box: ReplyBox, *, convention: CoordinateConvention, geometry: ImageGeometry
) -> Box | None:
    """`reply_box` in camera-image pixels: scaled, corners put in order, clipped to the image.

    A point becomes a small square box around it. Returns None when nothing of the box is left
    inside the image (zero width or height after clipping).
    """
    sx, sy = _scale(convention, geometry)
    if reply_box.is_point:
        x, y = reply_box.values[0] * sx, reply_box.values[1] * sy
        half = max(1.0, POINT_BOX_FRACTION * min(geometry.width, geometry.height))
        x1, y1, x2, y2 = x - half, y - half, x + half, y + half
    else:
        a, b, c, d = reply_box.values
        x1, x2 = sorted((a * sx, c * sx))
        y1, y2 = sorted((b * sy, d * sy))
    box = Box(x1, y1, x2, y2).clip(geometry.width, geometry.height)
    if box.width <= 0.0 or box.height <= 0.0:
        return None
    return box


def to_model_coordinates(
    box: Box, *, convention: CoordinateConvention, geometry: ImageGeometry
) -> list[int]:
    """`box` (camera pixels) written the way the model writes boxes, as whole numbers."""
    sx, sy = _scale(convention, geometry)
    return [round(box.x1 / sx), round(box.y1 / sy), round(box.x2 / sx), round(box.y2 / sy)]


def yes_no_probability(
    logits: Sequence[float] | npt.NDArray[np.floating[Any]],
    yes_token_ids: Sequence[int],
    no_token_ids: Sequence[int],
) -> YesNo:
    """P(yes) and P(no) from next-token logits, softmax over the yes and no tokens only.

    Several spellings (' yes', 'Yes', ...) may each be one token; their probabilities add up.
    """
    yes_ids = list(dict.fromkeys(int(i) for i in yes_token_ids))
    no_ids = [i for i in dict.fromkeys(int(i) for i in no_token_ids) if i not in yes_ids]
    if not yes_ids or not no_ids:
        raise BackendError('verification needs at least one yes token and one no token')
    scores = np.asarray(logits, dtype=np.float64).reshape(-1)
    if max(yes_ids + no_ids) >= scores.shape[0] or min(yes_ids + no_ids) < 0:
        raise BackendError(
            f'yes/no token ids {yes_ids + no_ids} are outside the vocabulary ({scores.shape[0]})'
        )
    chosen = scores[yes_ids + no_ids]
    if not np.all(np.isfinite(chosen)):
        raise BackendError('the model produced non-finite logits for the yes/no tokens')
    weights = np.exp(chosen - chosen.max())
    total = float(weights.sum())
    yes = float(weights[: len(yes_ids)].sum()) / total
    return YesNo(yes=yes, no=1.0 - yes)


def expression_detection(
    parsed: VlmReply,
    *,
    description: str,
    score: float,
    convention: CoordinateConvention,
    geometry: ImageGeometry,
) -> tuple[Detection | None, VlmReply]:
    """The one box a grounding reply gives for `description` (None when it says absent), and
    the reply with notes on what was skipped.

    When the model lists several boxes anyway, the first one inside the image is kept. Raises
    BackendError quoting the reply when every box lies outside the image.
    """
    if parsed.absent:
        return None, parsed
    notes = list(parsed.notes)
    if len(parsed.boxes) > 1:
        notes.append(f'{len(parsed.boxes)} boxes for one expression; kept the first')
    for reply_box in parsed.boxes:
        box = to_image_box(reply_box, convention=convention, geometry=geometry)
        if box is None:
            notes.append(f'box {list(reply_box.values)} lies outside the image; skipped')
            continue
        if reply_box.is_point:
            notes.append('the model answered with a point; drew a small box around it')
        detection = Detection(box=box, phrase=description, score=score, label=reply_box.label)
        return detection, VlmReply(parsed.text, parsed.boxes, tuple(notes))
    raise BackendError(
        f'every box the model gave lies outside the image: {reply_excerpt(parsed.text)!r}'
    )


def phrase_detections(
    parsed: VlmReply,
    *,
    phrase: str,
    score: float,
    convention: CoordinateConvention,
    geometry: ImageGeometry,
) -> list[Detection]:
    """Every box of a detection reply for `phrase` that lies (partly) inside the image."""
    found = []
    for reply_box in parsed.boxes:
        box = to_image_box(reply_box, convention=convention, geometry=geometry)
        if box is not None:
            found.append(Detection(box=box, phrase=phrase, score=score, label=reply_box.label))
    return found
