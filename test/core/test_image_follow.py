"""Finding the model's last view of an object in a later camera image."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grounding_agent.core.image_follow import ObjectView
from grounding_agent.core.types import Box

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def _scene(
    objects: list[tuple[float, float, tuple[int, int, int]]], seed: int = 0
) -> npt.NDArray[np.uint8]:
    """A textured table (noise) with shaded discs of radius 20 at (cx, cy)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 140, size=(240, 320, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:240, 0:320]
    for cx, cy, colour in objects:
        distance = np.hypot(xs - cx, ys - cy)
        inside = distance <= 20
        shade = 1.0 - 0.4 * distance[inside] / 20
        image[inside] = (np.outer(shade, colour)).astype(np.uint8)
    return image


def _disc(cx: float, cy: float) -> Box:
    return Box(cx - 22, cy - 22, cx + 22, cy + 22)


def test_the_object_is_found_where_it_moved() -> None:
    view = ObjectView(_scene([(100, 120, RED)]), _disc(100, 120))
    match = view.locate(_scene([(118, 126, RED)], seed=1), around=_disc(106, 120))
    assert match is not None
    assert match.score > 0.8
    assert match.box.iou(_disc(118, 126)) > 0.8


def test_an_object_of_another_colour_does_not_match_well() -> None:
    view = ObjectView(_scene([(100, 120, RED)]), _disc(100, 120))
    match = view.locate(_scene([(110, 120, BLUE)], seed=1), around=_disc(100, 120))
    assert match is not None
    assert match.score < 0.7


def test_a_hidden_object_does_not_match_well() -> None:
    view = ObjectView(_scene([(100, 120, RED)]), _disc(100, 120))
    match = view.locate(_scene([], seed=1), around=_disc(100, 120))
    assert match is not None
    assert match.score < 0.7


def test_nothing_is_searched_outside_the_image_or_in_another_camera_size() -> None:
    view = ObjectView(_scene([(100, 120, RED)]), _disc(100, 120))
    assert view.locate(_scene([(100, 120, RED)]), around=_disc(600, 120)) is None
    assert view.locate(np.zeros((100, 100, 3), dtype=np.uint8), around=_disc(50, 50)) is None


def test_a_flat_or_tiny_view_is_not_used() -> None:
    flat = np.full((240, 320, 3), 128, dtype=np.uint8)
    assert not ObjectView(flat, _disc(100, 120)).usable
    assert not ObjectView(_scene([(100, 120, RED)]), Box(100, 100, 102, 130)).usable
