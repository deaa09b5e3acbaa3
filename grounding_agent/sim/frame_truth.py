"""The ground truth of a simulated frame as JSON, and drawn on the image.

`sim_camera` publishes `truth_document` on `/sim/ground_truth` (std_msgs/String) beside every
image, `grounding-agent sim --render` writes it to truth.json, and the demo scores the agent's
answers against it. ROS-free, so all three share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Box, Stamp
from grounding_agent.sim.scene import COLOUR_RGBA
from grounding_agent.sim.world import Render

__all__ = ['TRUTH_SCHEMA', 'draw_labelled_boxes', 'draw_truth', 'truth_document', 'truth_json']

TRUTH_SCHEMA = 'grounding_agent/sim_truth/1'


def truth_document(
    render: Render, *, stamp: Stamp, frame_id: str, seed: int, frame: int = 0
) -> dict[str, Any]:
    """What the camera saw of every object in `render`, keyed to the image by `stamp`.

    Boxes are pixels [x1, y1, x2, y2] of the visible part (None when hidden), `point_camera`
    the object's centre in the optical frame (metres), `stamp_s` the scene time of the render.
    """
    return {
        'schema': TRUTH_SCHEMA,
        'stamp': {'sec': stamp.sec, 'nanosec': stamp.nanosec},
        'frame_id': frame_id,
        'seed': seed,
        'frame': frame,
        **render.to_dict(),
    }


def truth_json(render: Render, *, stamp: Stamp, frame_id: str, seed: int, frame: int = 0) -> str:
    return json.dumps(
        truth_document(render, stamp=stamp, frame_id=frame_id, seed=seed, frame=frame),
        separators=(',', ':'),
    )


def _label_colour(colour: str) -> tuple[int, int, int]:
    # Outline in the object's own paint, except where it would vanish against the object.
    r, g, b, _ = COLOUR_RGBA.get(colour, (1.0, 1.0, 1.0, 1.0))
    return (int(r * 255), int(g * 255), int(b * 255)) if colour != 'white' else (40, 40, 40)


def draw_labelled_boxes(
    image: npt.NDArray[np.uint8], boxes: Iterable[tuple[str, str, Box]]
) -> npt.NDArray[np.uint8]:
    """A copy of `image` with (label, colour name, box) drawn: outline in the object's paint."""
    canvas = np.array(image, dtype=np.uint8, order='C', copy=True)
    for label, colour_name, box in boxes:
        x1, y1, x2, y2 = (round(v) for v in box.to_list())
        colour = _label_colour(colour_name)
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), 3)
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, 1)
        origin = (x1, max(12, y1 - 4))
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 3)
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return canvas


def draw_truth(render: Render) -> npt.NDArray[np.uint8]:
    """A copy of the render's RGB image with each visible object's true box, name and visible
    fraction."""
    return draw_labelled_boxes(
        render.rgb,
        (
            (f'{truth.name} {truth.visible_fraction:.0%}', truth.colour, truth.box)
            for truth in render.objects
            if truth.box is not None
        ),
    )
