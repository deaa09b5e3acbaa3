"""Class-aware NMS: fixed cases with known answers, and agreement with a plain greedy NMS."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.backends.nms import class_aware_nms, nms_detections
from grounding_agent.core.types import Box, Detection

MUG = [10.0, 10.0, 50.0, 50.0]
MUG_SHIFTED = [12.0, 12.0, 52.0, 52.0]  # IoU with MUG = 0.82
LAPTOP = [100.0, 20.0, 200.0, 90.0]


@pytest.mark.parametrize(
    ('boxes', 'scores', 'classes', 'options', 'expected'),
    [
        # The weaker of two overlapping boxes of one phrase goes.
        ([MUG, MUG_SHIFTED], [0.6, 0.9], [0, 0], {}, [1]),
        # Different phrases never suppress each other, even on the same pixels.
        ([MUG, MUG_SHIFTED], [0.6, 0.9], [0, 1], {}, [1, 0]),
        # Disjoint boxes all stay, best first across classes.
        ([MUG, LAPTOP], [0.3, 0.8], [0, 0], {}, [1, 0]),
        # Overlap below the IoU threshold keeps both.
        ([MUG, MUG_SHIFTED], [0.6, 0.9], [0, 0], {'iou_threshold': 0.9}, [1, 0]),
        # Score threshold drops weak boxes before suppression.
        ([MUG, LAPTOP], [0.05, 0.8], [0, 0], {'score_threshold': 0.1}, [1]),
        # max_detections keeps the best ones.
        ([MUG, LAPTOP, MUG_SHIFTED], [0.5, 0.8, 0.7], [0, 1, 2], {'max_detections': 2}, [1, 2]),
        # Non-finite boxes or scores are dropped, not passed to OpenCV.
        ([MUG, [np.nan, 0.0, 1.0, 1.0]], [0.5, 0.9], [0, 1], {}, [0]),
        ([MUG, LAPTOP], [np.inf, 0.4], [0, 1], {}, [1]),
        # Nothing in, nothing out.
        (np.zeros((0, 4)), [], [], {}, []),
    ],
)
def test_class_aware_nms(
    boxes: object, scores: object, classes: object, options: dict[str, float], expected: list[int]
) -> None:
    settings = {'iou_threshold': 0.5, **options}
    kept = class_aware_nms(boxes, scores, classes, **settings)  # type: ignore[arg-type]
    assert kept.tolist() == expected


@pytest.mark.parametrize(
    ('boxes', 'scores', 'classes', 'iou'),
    [
        ([MUG], [0.5, 0.6], [0], 0.5),
        ([MUG], [0.5], [0], 1.5),
        ([MUG], [0.5], [0], -0.1),
    ],
)
def test_class_aware_nms_refuses_bad_arguments(
    boxes: list[list[float]], scores: list[float], classes: list[int], iou: float
) -> None:
    with pytest.raises(ValueError):
        class_aware_nms(boxes, scores, classes, iou_threshold=iou)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> set[int]:
    """Reference: the textbook greedy NMS for one class."""
    order = list(np.argsort(-scores, kind='stable'))
    kept: list[int] = []
    for index in order:
        candidate = Box.from_list(boxes[index])
        if all(candidate.iou(Box.from_list(boxes[k])) <= iou_threshold for k in kept):
            kept.append(int(index))
    return set(kept)


@pytest.mark.parametrize('seed', range(5))
def test_class_aware_nms_matches_greedy_reference_per_class(seed: int) -> None:
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 200, (60, 2))
    sizes = rng.uniform(5, 60, (60, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = rng.uniform(0, 1, 60)
    classes = rng.integers(0, 3, 60)
    kept = set(class_aware_nms(boxes, scores, classes, iou_threshold=0.4).tolist())
    expected: set[int] = set()
    for label in range(3):
        members = np.flatnonzero(classes == label)
        local = _greedy_nms(boxes[members], scores[members], 0.4)
        expected |= {int(members[i]) for i in local}
    assert kept == expected


def test_nms_detections_groups_by_phrase() -> None:
    detections = [
        Detection(Box.from_list(MUG), 'mug', 0.6),
        Detection(Box.from_list(MUG_SHIFTED), 'mug', 0.9),
        Detection(Box.from_list(MUG_SHIFTED), 'cup', 0.7),
    ]
    kept = nms_detections(detections, iou_threshold=0.5)
    assert [(d.phrase, d.score) for d in kept] == [('mug', 0.9), ('cup', 0.7)]
    assert nms_detections([], iou_threshold=0.5) == []
