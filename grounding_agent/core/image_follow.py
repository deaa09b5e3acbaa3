"""Following an object through camera images between model answers, by matching its last view.

The model sees the object a few times a second; the camera sends 10-30 images in between. A
template of the object as the model last saw it (its box in that frame) is searched for near
the predicted box in each new image (OpenCV's normalised correlation, at a reduced scale so a
search costs about 0.1 ms). A good match places the box; a poor one (the object is
hidden, turned or gone) leaves the motion prediction, which is what the planner then gets. The
template is never updated from a match, so a match cannot drift from what the model saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Box

__all__ = ['ImageMatch', 'ObjectView']

# The template's longer side after scaling: 16 px keeps a search near 0.1 ms for any box size
# while a 1 px step is 1/16 of the box (IoU 0.88 at worst), below what the planner can tell.
_TEMPLATE_SIDE_PX = 16
_MIN_SIDE_PX = 4
# Templates flatter than this (grey levels' standard deviation) match anything equally well.
_MIN_TEXTURE = 2.0


@dataclass(frozen=True, slots=True)
class ImageMatch:
    box: Box
    score: float  # normalised correlation, -1..1


class ObjectView:
    """The object as the model last saw it, searchable in later images of the same camera."""

    def __init__(self, image: npt.NDArray[np.uint8], box: Box) -> None:
        height, width = image.shape[:2]
        clipped = box.clip(width, height)
        x1, y1 = round(clipped.x1), round(clipped.y1)
        x2, y2 = round(clipped.x2), round(clipped.y2)
        self.image_shape = image.shape
        self.size = (float(x2 - x1), float(y2 - y1))
        self.scale = _TEMPLATE_SIDE_PX / max(1, x2 - x1, y2 - y1)
        self.template: npt.NDArray[np.uint8] | None = None
        if min(x2 - x1, y2 - y1) < _MIN_SIDE_PX:
            return
        crop = image[y1:y2, x1:x2]
        template = _scaled(crop, self.scale)
        if template.size == 0 or float(template.std()) < _MIN_TEXTURE:
            return
        self.template = template

    @property
    def usable(self) -> bool:
        return self.template is not None

    def locate(
        self, image: npt.NDArray[np.uint8], around: Box, *, margin: float = 0.5
    ) -> ImageMatch | None:
        """The best match within `margin` box sizes of `around` (None: nothing to search)."""
        template = self.template
        if template is None or image.shape != self.image_shape:
            return None
        height, width = image.shape[:2]
        box_w, box_h = self.size
        reach = margin * max(box_w, box_h)
        cx, cy = around.center
        wx1 = int(max(0.0, cx - box_w / 2 - reach))
        wy1 = int(max(0.0, cy - box_h / 2 - reach))
        wx2 = int(min(float(width), cx + box_w / 2 + reach))
        wy2 = int(min(float(height), cy + box_h / 2 + reach))
        if wx2 - wx1 < box_w or wy2 - wy1 < box_h:
            return None  # the predicted box has left the image
        window = _scaled(image[wy1:wy2, wx1:wx2], self.scale)
        if window.shape[0] < template.shape[0] or window.shape[1] < template.shape[1]:
            return None
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _low, best, _low_at, (px, py) = cv2.minMaxLoc(scores)
        if not np.isfinite(best):
            return None
        step_x = (wx2 - wx1) / window.shape[1]
        step_y = (wy2 - wy1) / window.shape[0]
        x1, y1 = wx1 + px * step_x, wy1 + py * step_y
        return ImageMatch(Box(x1, y1, x1 + box_w, y1 + box_h), float(best))


def _scaled(image: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # bilinear: a fifth of INTER_AREA's cost at these sizes; template and window alike
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return np.asarray(scaled, dtype=np.uint8)
