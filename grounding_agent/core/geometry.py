"""3D from an aligned depth image: the camera-frame point and metric size of a detected box.

The resolver compares objects in metres when it can: a cup 'in front of' a laptop is a depth
question, and 'the largest box' should not prefer the one nearest the camera. Points are in the
camera optical frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from grounding_agent.core.types import Box, CameraIntrinsics, Detection, Frame

__all__ = [
    'CENTRAL_FRACTION',
    'NOMINAL_FOCAL_PX',
    'metric_size',
    'point_from_depth',
    'scaled_intrinsics',
    'usable_intrinsics',
    'with_points',
]

# Depth is read from the central half of the box (per side): box corners usually show the
# table or the wall behind the object, the centre shows the object.
CENTRAL_FRACTION = 0.5

# Focal length assumed when a detection carries a point but the frame has no intrinsics: about
# what 640x480 RGB-D cameras have (~56 degrees horizontal field of view). Used only to turn
# pixel sizes into metres for normalising 3D distances, never to place a point.
NOMINAL_FOCAL_PX = 600.0


def usable_intrinsics(intrinsics: CameraIntrinsics | None) -> bool:
    """Whether `intrinsics` can place points: finite values and positive focal lengths."""
    if intrinsics is None:
        return False
    values = (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy)
    return all(math.isfinite(v) for v in values) and intrinsics.fx > 0 and intrinsics.fy > 0


def scaled_intrinsics(intrinsics: CameraIntrinsics, width: int, height: int) -> CameraIntrinsics:
    """`intrinsics` for an image of `width` x `height` (CameraInfo may have another size)."""
    if intrinsics.width in (0, width) and intrinsics.height in (0, height):
        return intrinsics
    sx = width / intrinsics.width if intrinsics.width > 0 else 1.0
    sy = height / intrinsics.height if intrinsics.height > 0 else 1.0
    return CameraIntrinsics(
        fx=intrinsics.fx * sx,
        fy=intrinsics.fy * sy,
        cx=intrinsics.cx * sx,
        cy=intrinsics.cy * sy,
        width=width,
        height=height,
    )


def point_from_depth(
    box: Box,
    depth: np.ndarray,
    intrinsics: CameraIntrinsics,
    *,
    image_size: tuple[int, int] | None = None,
    central_fraction: float = CENTRAL_FRACTION,
) -> tuple[float, float, float] | None:
    """Camera-frame point of the box centre at the median valid depth of its central region.

    `image_size` is (width, height) of the colour image the box is in; the depth image may have
    another resolution and is sampled at the corresponding pixels. Depth values that are NaN,
    infinite or <= 0 are unknown and ignored; None when nothing in the region is valid.
    """
    if depth.ndim != 2 or depth.size == 0:
        return None
    depth_h, depth_w = depth.shape
    image_w, image_h = image_size if image_size is not None else (depth_w, depth_h)
    sx, sy = depth_w / image_w, depth_h / image_h
    cx, cy = box.center
    half_w = max(box.width * central_fraction / 2.0, 0.5)
    half_h = max(box.height * central_fraction / 2.0, 0.5)
    x1 = int(np.clip(np.floor((cx - half_w) * sx), 0, depth_w - 1))
    x2 = int(np.clip(np.ceil((cx + half_w) * sx), x1 + 1, depth_w))
    y1 = int(np.clip(np.floor((cy - half_h) * sy), 0, depth_h - 1))
    y2 = int(np.clip(np.ceil((cy + half_h) * sy), y1 + 1, depth_h))
    region = np.asarray(depth[y1:y2, x1:x2], dtype=np.float64)
    valid = region[np.isfinite(region) & (region > 0.0)]
    if valid.size == 0:
        return None
    z = float(np.median(valid))
    camera = scaled_intrinsics(intrinsics, image_w, image_h)
    return camera.deproject(cx, cy, z)


def with_points(detections: Sequence[Detection], frame: Frame) -> list[Detection]:
    """`detections` with `point` filled from the frame's depth (unchanged without depth)."""
    if frame.depth is None or frame.intrinsics is None or not usable_intrinsics(frame.intrinsics):
        # Without a usable camera model depth cannot be placed; relations fall back to 2D.
        return list(detections)
    size = (frame.width, frame.height)
    filled = []
    for detection in detections:
        point = point_from_depth(detection.box, frame.depth, frame.intrinsics, image_size=size)
        filled.append(detection if point is None else detection.with_updates(point=point))
    return filled


def metric_size(
    detection: Detection, intrinsics: CameraIntrinsics | None = None
) -> tuple[float, float] | None:
    """(width, height) in metres of the box at the detection's depth; None without a point.

    Without (usable) intrinsics the focal length is assumed to be NOMINAL_FOCAL_PX.
    """
    if detection.point is None:
        return None
    z = abs(detection.point[2])
    known = intrinsics is not None and usable_intrinsics(intrinsics)
    fx = intrinsics.fx if intrinsics is not None and known else NOMINAL_FOCAL_PX
    fy = intrinsics.fy if intrinsics is not None and known else NOMINAL_FOCAL_PX
    # A one-pixel floor keeps degenerate (zero-width) boxes from producing zero sizes.
    return (max(detection.box.width, 1.0) * z / fx, max(detection.box.height, 1.0) * z / fy)
