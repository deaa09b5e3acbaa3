"""Class-aware non-maximum suppression shared by the detector backends.

Open-vocabulary detectors fire several overlapping boxes on one object; suppression keeps the
best box per object and per phrase, so a mug that is also a "cup" keeps one box for each phrase.
Uses OpenCV's batched NMS (same boxes as supervision's NMS, several times faster).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Detection

__all__ = ['class_aware_nms', 'nms_detections']


def class_aware_nms(
    boxes: npt.ArrayLike,
    scores: npt.ArrayLike,
    class_ids: npt.ArrayLike,
    *,
    iou_threshold: float,
    score_threshold: float = 0.0,
    max_detections: int | None = None,
) -> npt.NDArray[np.int64]:
    """Indices of the boxes to keep, best score first.

    `boxes` is (N, 4) x1, y1, x2, y2; `scores` (N,); `class_ids` (N,) integers. Boxes of
    different classes never suppress each other. A box is dropped when it overlaps a better box
    of its class with IoU above `iou_threshold`, or when its score is below `score_threshold`.
    Boxes with non-finite coordinates or scores are dropped.
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f'iou_threshold must be in [0, 1], got {iou_threshold}')
    box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    score_array = np.asarray(scores, dtype=np.float64).reshape(-1)
    class_array = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if not box_array.shape[0] == score_array.shape[0] == class_array.shape[0]:
        raise ValueError(
            f'boxes, scores and class_ids differ in length: '
            f'{box_array.shape[0]}, {score_array.shape[0]}, {class_array.shape[0]}'
        )
    valid = np.isfinite(box_array).all(axis=1) & np.isfinite(score_array)
    valid &= score_array >= score_threshold
    candidates = np.flatnonzero(valid)
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = box_array[candidates]
    # OpenCV wants x, y, width, height; swapped corners become empty boxes instead of negative.
    xywh = np.stack(
        [
            chosen[:, 0],
            chosen[:, 1],
            np.maximum(chosen[:, 2] - chosen[:, 0], 0.0),
            np.maximum(chosen[:, 3] - chosen[:, 1], 0.0),
        ],
        axis=1,
    )
    # OpenCV's stubs type these as sequences; arrays are accepted and avoid a conversion.
    kept = cv2.dnn.NMSBoxesBatched(
        xywh.astype(np.float32),  # type: ignore[arg-type]
        score_array[candidates].astype(np.float32),  # type: ignore[arg-type]
        class_array[candidates].astype(np.int32),  # type: ignore[arg-type]
        float(-np.inf) if score_threshold <= 0 else float(score_threshold),
        float(iou_threshold),
    )
    indices = candidates[np.asarray(kept, dtype=np.int64).reshape(-1)]
    # OpenCV returns per-class order; the callers want the best boxes first across classes.
    order = np.argsort(-score_array[indices], kind='stable')
    indices = indices[order]
    if max_detections is not None:
        indices = indices[:max_detections]
    return indices.astype(np.int64)


def nms_detections(
    detections: Sequence[Detection],
    *,
    iou_threshold: float,
    max_detections: int | None = None,
) -> list[Detection]:
    """Suppress overlapping detections of the same phrase; best score first."""
    if not detections:
        return []
    phrase_ids: dict[str, int] = {}
    class_ids = [phrase_ids.setdefault(d.phrase, len(phrase_ids)) for d in detections]
    keep = class_aware_nms(
        [d.box.to_list() for d in detections],
        [d.score for d in detections],
        class_ids,
        iou_threshold=iou_threshold,
        max_detections=max_detections,
    )
    return [detections[int(i)] for i in keep]
