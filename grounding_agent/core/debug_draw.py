"""Draw a grounding result onto its camera image, for the debug image topic and reports.

The target gets a thick box in the colour of the status when the model saw it in this frame,
and a thin box labelled with how it was predicted and how long ago the model saw it otherwise;
contenders and counted objects get thin boxes, relation anchors a box of their own; a banner at
the top says the status and the reason the way the planner receives them.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.result import BoxSource, GroundingResult, ResultStatus

__all__ = ['ANCHOR_COLOUR', 'STATUS_COLOURS', 'draw_result']

# RGB, chosen to stay distinguishable for the common colour-vision deficiencies.
STATUS_COLOURS: dict[ResultStatus, tuple[int, int, int]] = {
    ResultStatus.GROUNDED: (0, 200, 83),
    ResultStatus.ANSWERED: (41, 121, 255),
    ResultStatus.AMBIGUOUS: (255, 171, 0),
    ResultStatus.REJECTED: (213, 0, 0),
    ResultStatus.ERROR: (170, 0, 255),
}
ANCHOR_COLOUR = (0, 184, 212)
_BANNER_CHARS = 110


def draw_result(image: npt.NDArray[np.uint8], result: GroundingResult) -> npt.NDArray[np.uint8]:
    """A copy of `image` (HxWx3 uint8 RGB) with `result` drawn on it."""
    canvas = np.array(image, dtype=np.uint8, order='C', copy=True)
    if canvas.ndim != 3 or canvas.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 RGB image, got shape {canvas.shape}')
    colour = STATUS_COLOURS.get(result.status, (255, 255, 255))
    scale = max(0.4, min(canvas.shape[0], canvas.shape[1]) / 900.0)
    thickness = max(1, round(scale * 2))

    for relation in result.relations:
        for anchor_box in (relation.object_box, relation.object_box_2):
            if anchor_box is not None:
                _box(canvas, anchor_box, ANCHOR_COLOUR, thickness, relation.object, scale)
    for candidate in result.candidates:
        label = f'{candidate.phrase} {candidate.score:.2f}'
        _box(canvas, candidate.box, colour, thickness, label, scale)
    if result.target is not None:
        target = result.target
        label = f'{target.phrase} {target.score:.2f}'
        if target.track_id is not None:
            label += f' #{target.track_id}'
        if target.point is not None:
            label += f' z={target.point[2]:.2f}m'
        if target.source is BoxSource.MODEL:
            _box(canvas, target.box, colour, thickness * 2, label + ' model', scale)
        else:
            # a prediction: thin, and says from what and how old the model's sighting is
            label += f' {target.source.value} +{target.since_seen_s:.2f}s'
            _box(canvas, target.box, colour, thickness, label, scale)

    banner = f'{result.status.value}: {result.reason}'
    if result.answer is not None:
        banner = f'{result.status.value} ({result.answer}): {result.reason}'
    if result.track_state is not None:
        banner = f'[{result.track_state.value}] {banner}'
    banner = banner.encode('ascii', 'replace').decode('ascii')[:_BANNER_CHARS]
    (_, text_height), baseline = cv2.getTextSize(banner, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(canvas, (0, 0), (canvas.shape[1], text_height + baseline + 8), (0, 0, 0), -1)
    cv2.putText(
        canvas,
        banner,
        (4, text_height + 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        colour,
        1,
        cv2.LINE_AA,
    )
    return canvas


def _box(
    canvas: npt.NDArray[np.uint8],
    box: list[float],
    colour: tuple[int, int, int],
    thickness: int,
    label: str,
    scale: float,
) -> None:
    height, width = canvas.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
    cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
    text = label.encode('ascii', 'replace').decode('ascii')
    cv2.putText(
        canvas,
        text,
        (x1 + 2, max(12, y1 - 4)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale * 0.8,
        colour,
        1,
        cv2.LINE_AA,
    )
