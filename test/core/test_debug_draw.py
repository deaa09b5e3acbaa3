"""The debug drawing marks the target in the status colour and leaves the input untouched."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.core.debug_draw import ANCHOR_COLOUR, STATUS_COLOURS, draw_result
from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    RelationEvidence,
    ResultStatus,
    TargetModel,
)


def result(status: ResultStatus) -> GroundingResult:
    return GroundingResult(
        status=status,
        reason='red cube (0.90) is left of blue ball (0.80)',
        target=TargetModel(phrase='red cube', box=[20, 30, 60, 70], score=0.9, point=[0, 0, 1]),
        relations=[
            RelationEvidence(
                relation='left_of',
                subject='red cube',
                object='blue ball',
                score=0.9,
                object_box=[100, 30, 140, 70],
            )
        ],
    )


@pytest.mark.parametrize('status', [ResultStatus.GROUNDED, ResultStatus.AMBIGUOUS])
def test_target_box_in_status_colour_and_anchor_box_drawn(status: ResultStatus) -> None:
    image = np.full((120, 160, 3), 128, dtype=np.uint8)
    drawn = draw_result(image, result(status))
    assert np.all(image == 128)  # the input frame is never drawn on
    # Left edge of the target box, below the label and the banner.
    assert tuple(drawn[55, 20]) == STATUS_COLOURS[status]
    assert tuple(drawn[55, 100]) == ANCHOR_COLOUR
    assert tuple(drawn[100, 80]) == (128, 128, 128)


def test_boxes_outside_the_image_are_clipped_not_fatal() -> None:
    outside = GroundingResult(
        status=ResultStatus.GROUNDED,
        reason='edge',
        target=TargetModel(phrase='cube', box=[-50, -50, 500, 500], score=0.5),
    )
    drawn = draw_result(np.zeros((40, 50, 3), dtype=np.uint8), outside)
    assert drawn.shape == (40, 50, 3)


def test_non_rgb_input_is_refused() -> None:
    with pytest.raises(ValueError, match='HxWx3'):
        draw_result(np.zeros((4, 4), dtype=np.uint8), result(ResultStatus.ERROR))


def test_a_predicted_box_is_drawn_thinner_than_one_the_model_saw() -> None:
    def drawn_width(source: BoxSource) -> int:
        target = TargetModel(
            phrase='cube', box=[40, 60, 100, 110], score=0.9, source=source, since_seen_s=0.2
        )
        image = np.full((120, 160, 3), 128, dtype=np.uint8)
        drawn = draw_result(image, GroundingResult(status=ResultStatus.GROUNDED, reason='r',
                                                   target=target))  # fmt: skip
        colour = STATUS_COLOURS[ResultStatus.GROUNDED]
        # pixels of the box's colour along a row through its left edge
        return sum(tuple(drawn[90, x]) == colour for x in range(30, 60))

    assert drawn_width(BoxSource.MOTION) < drawn_width(BoxSource.MODEL)
    assert drawn_width(BoxSource.IMAGE) == drawn_width(BoxSource.MOTION)
