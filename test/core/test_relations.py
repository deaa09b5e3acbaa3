"""Graded spatial relations, ordinals (core/relations.py) and depth to 3D (core/geometry.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from grounding_agent.core.geometry import metric_size, point_from_depth, with_points
from grounding_agent.core.relations import (
    WEAK_DEPTH_CAP,
    rank_ordinal,
    relation_score,
    relation_scores,
    select_ordinal,
    superlative_scores,
    uses_3d,
)
from grounding_agent.core.types import (
    Box,
    CameraIntrinsics,
    Detection,
    Frame,
    Ordinal,
    OrdinalOrder,
    Relation,
)

CAMERA = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)


def thing(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    z: float | None = None,
    phrase: str = 'thing',
) -> Detection:
    """A detection; with `z`, its point is the box centre deprojected at that depth."""
    box = Box(x1, y1, x2, y2)
    point = CAMERA.deproject(*box.center, z) if z is not None else None
    return Detection(box=box, phrase=phrase, score=0.9, point=point)


# A tabletop seen from the robot: a mug left of a laptop, a plate under the mug, a table below all.
MUG = thing(100, 200, 160, 260)
LAPTOP = thing(300, 150, 500, 300)
PLATE = thing(90, 240, 170, 275)
TABLE = thing(0, 150, 640, 480)
BALL_ON_MUG = thing(110, 150, 150, 200)
LAMP_HIGH = thing(110, 10, 150, 60)
FAR_RIGHT = thing(600, 200, 640, 260)


@pytest.mark.parametrize(
    ('relation', 'subject', 'anchor', 'holds'),
    [
        (Relation.LEFT_OF, MUG, LAPTOP, True),
        (Relation.LEFT_OF, LAPTOP, MUG, False),
        (Relation.RIGHT_OF, LAPTOP, MUG, True),
        (Relation.RIGHT_OF, MUG, LAPTOP, False),
        (Relation.ABOVE, LAMP_HIGH, MUG, True),
        (Relation.ABOVE, MUG, LAMP_HIGH, False),
        (Relation.BELOW, MUG, LAMP_HIGH, True),
        (Relation.BELOW, LAMP_HIGH, MUG, False),
        (Relation.ON, MUG, PLATE, True),
        (Relation.ON, BALL_ON_MUG, MUG, True),
        (Relation.ON, MUG, TABLE, True),
        (Relation.ON, LAMP_HIGH, MUG, False),
        (Relation.ON, MUG, LAPTOP, False),
        (Relation.ON, TABLE, MUG, False),
        (Relation.UNDER, PLATE, MUG, True),
        (Relation.UNDER, MUG, LAMP_HIGH, True),
        (Relation.UNDER, MUG, BALL_ON_MUG, True),
        (Relation.UNDER, MUG, PLATE, False),
        (Relation.UNDER, MUG, LAPTOP, False),
        (Relation.NEXT_TO, MUG, thing(165, 200, 225, 260), True),
        (Relation.NEXT_TO, MUG, FAR_RIGHT, False),
        (Relation.NEXT_TO, MUG, TABLE, False),
        (Relation.NEAR, MUG, thing(180, 200, 240, 260), True),
        (Relation.NEAR, MUG, FAR_RIGHT, False),
        (Relation.INSIDE, thing(120, 220, 140, 240), MUG, True),
        (Relation.INSIDE, MUG, LAPTOP, False),
        (Relation.INSIDE, LAPTOP, MUG, False),
    ],
)
def test_relation_2d(
    relation: Relation, subject: Detection, anchor: Detection, holds: bool
) -> None:
    score = relation_score(relation, subject, [anchor])
    assert 0.0 <= score <= 1.0
    assert (score >= 0.5) is holds, f'{relation.value} scored {score:.3f}'


def test_in_front_of_without_depth_is_a_capped_weak_cue() -> None:
    near_cup = thing(300, 320, 360, 380)
    far_cup = thing(300, 200, 360, 260)
    front = relation_score(Relation.IN_FRONT_OF, near_cup, [far_cup])
    assert 0.5 < front <= WEAK_DEPTH_CAP
    assert relation_score(Relation.BEHIND, far_cup, [near_cup]) == pytest.approx(front)
    assert relation_score(Relation.IN_FRONT_OF, far_cup, [near_cup]) < 0.1


def test_real_depth_overrules_the_image_cue() -> None:
    # Lower in the image (the 2D cue says 'in front') but farther away in depth.
    low_but_far = thing(300, 320, 360, 380, z=2.0)
    high_but_near = thing(300, 200, 360, 260, z=0.8)
    assert relation_score(Relation.IN_FRONT_OF, low_but_far, [high_but_near], use_3d=False) > 0.5
    assert relation_score(Relation.IN_FRONT_OF, low_but_far, [high_but_near]) < 0.05
    depth_score = relation_score(Relation.IN_FRONT_OF, high_but_near, [low_but_far])
    assert depth_score > WEAK_DEPTH_CAP


# 3D cases as (x1, y1, x2, y2, depth in metres) for subject and anchor.
LEFT_M, RIGHT_M = (100, 200, 160, 260, 1.0), (300, 200, 360, 260, 1.0)
HIGH_M, LOW_M = (300, 50, 360, 110, 1.0), (300, 200, 360, 260, 1.0)
BOX_M = (320, 180, 400, 260, 1.0)
CUBE_M, BALL_M = (100, 200, 160, 260, 1.0), (110, 150, 150, 200, 1.0)


@pytest.mark.parametrize(
    ('relation', 'subject', 'anchor', 'holds'),
    [
        (Relation.LEFT_OF, LEFT_M, RIGHT_M, True),
        (Relation.RIGHT_OF, LEFT_M, RIGHT_M, False),
        (Relation.ABOVE, HIGH_M, LOW_M, True),
        (Relation.BELOW, HIGH_M, LOW_M, False),
        (Relation.IN_FRONT_OF, (300, 200, 360, 260, 0.7), BOX_M, True),
        (Relation.BEHIND, (300, 200, 360, 260, 0.7), BOX_M, False),
        (Relation.BEHIND, (300, 200, 360, 260, 1.4), BOX_M, True),
        # Touching in the image but half a metre apart in depth: not near, not on, not inside.
        (Relation.NEAR, CUBE_M, (160, 200, 220, 260, 1.02), True),
        (Relation.NEAR, CUBE_M, (160, 200, 220, 260, 1.5), False),
        (Relation.NEXT_TO, CUBE_M, (165, 200, 225, 260, 1.0), True),
        (Relation.ON, BALL_M, CUBE_M, True),
        (Relation.ON, (110, 150, 150, 200, 1.6), CUBE_M, False),
        (Relation.UNDER, CUBE_M, BALL_M, True),
        (Relation.INSIDE, (120, 220, 140, 240, 1.0), CUBE_M, True),
        (Relation.INSIDE, (120, 220, 140, 240, 0.4), CUBE_M, False),
    ],
)
def test_relation_3d(
    relation: Relation,
    subject: tuple[float, float, float, float, float],
    anchor: tuple[float, float, float, float, float],
    holds: bool,
) -> None:
    placed = [thing(*v[:4], z=v[4]) for v in (subject, anchor)]
    assert uses_3d(placed)
    score = relation_score(relation, placed[0], placed[1:], intrinsics=CAMERA)
    assert (score >= 0.5) is holds, f'{relation.value} scored {score:.3f}'


def _scores_along(relation: Relation, subjects: list[Detection], anchor: Detection) -> list[float]:
    return [relation_score(relation, s, [anchor]) for s in subjects]


@pytest.mark.parametrize(
    ('relation', 'subjects', 'anchor'),
    [
        # Moving the subject step by step in the direction that makes the relation truer.
        (
            Relation.LEFT_OF,
            [thing(x, 200, x + 60, 260) for x in (330, 300, 270, 240, 200)],
            LAPTOP,
        ),
        (Relation.RIGHT_OF, [thing(x, 200, x + 60, 260) for x in (400, 430, 460, 500)], LAPTOP),
        (Relation.ABOVE, [thing(100, y, 160, y + 60) for y in (220, 190, 160, 130)], MUG),
        (Relation.BELOW, [thing(100, y, 160, y + 60) for y in (180, 210, 240, 270)], MUG),
        (Relation.NEAR, [thing(x, 200, x + 60, 260) for x in (400, 330, 260, 200)], MUG),
        (Relation.NEXT_TO, [thing(x, 200, x + 60, 260) for x in (400, 330, 260, 200)], MUG),
        (Relation.INSIDE, [thing(x, 210, x + 40, 250) for x in (150, 140, 130, 115)], MUG),
        (Relation.IN_FRONT_OF, [thing(100, y, 160, y + 60) for y in (262, 272, 282)], MUG),
    ],
)
def test_relation_grows_as_the_subject_moves_the_right_way(
    relation: Relation, subjects: list[Detection], anchor: Detection
) -> None:
    scores = _scores_along(relation, subjects, anchor)
    assert all(b > a for a, b in itertools.pairwise(scores)), scores


def test_in_front_of_in_3d_grows_as_the_subject_comes_closer() -> None:
    laptop = thing(300, 150, 500, 300, z=1.2)
    scores = [
        relation_score(Relation.IN_FRONT_OF, thing(350, 220, 410, 280, z=z), [laptop])
        for z in (1.2, 1.1, 1.0, 0.9)
    ]
    assert all(b > a for a, b in itertools.pairwise(scores)), scores


@pytest.mark.parametrize(
    ('subject', 'holds'),
    [
        (thing(200, 200, 260, 260), True),  # halfway between, on the line
        (thing(270, 210, 300, 240), True),  # nearer one end, still between
        (thing(0, 200, 40, 260), False),  # beyond the mug
        (thing(200, 400, 260, 460), False),  # halfway but far off the line
    ],
)
def test_between(subject: Detection, holds: bool) -> None:
    right = thing(360, 200, 420, 260)
    score = relation_score(Relation.BETWEEN, subject, [MUG, right])
    assert (score >= 0.5) is holds, score


def test_between_in_3d_uses_depth() -> None:
    left, right = thing(100, 200, 160, 260, z=1.0), thing(360, 200, 420, 260, z=1.0)
    on_line = thing(200, 200, 260, 260, z=1.0)
    behind_line = thing(200, 200, 260, 260, z=2.5)
    assert relation_score(Relation.BETWEEN, on_line, [left, right]) > 0.9
    assert relation_score(Relation.BETWEEN, behind_line, [left, right]) < 0.1


def test_superlatives_rank_the_candidates_against_each_other() -> None:
    cups = [thing(180, 200, 220, 240), thing(520, 200, 560, 240), thing(40, 200, 80, 240)]
    closest = superlative_scores(Relation.CLOSEST_TO, cups, LAPTOP)
    farthest = superlative_scores(Relation.FARTHEST_FROM, cups, LAPTOP)
    assert max(range(3), key=closest.__getitem__) == 1
    assert max(range(3), key=farthest.__getitem__) == 2
    assert closest[1] > 0.5 > max(closest[0], closest[2])
    assert relation_scores(Relation.CLOSEST_TO, cups, [LAPTOP]) == closest


def test_superlative_tie_is_half_and_a_lone_candidate_is_certain() -> None:
    tied = [thing(240, 200, 280, 240), thing(520, 200, 560, 240)]
    anchor = thing(380, 200, 420, 240)
    assert superlative_scores(Relation.CLOSEST_TO, tied, anchor) == pytest.approx([0.5, 0.5])
    assert relation_score(Relation.FARTHEST_FROM, MUG, [LAPTOP]) == 1.0


def test_superlative_gap_grades_the_score() -> None:
    anchor = thing(300, 200, 340, 240)
    rival = thing(500, 200, 540, 240)
    scores = [
        superlative_scores(Relation.CLOSEST_TO, [thing(x, 200, x + 40, 240), rival], anchor)[0]
        for x in (420, 380, 350)
    ]
    assert all(b > a for a, b in itertools.pairwise(scores)), scores


@pytest.mark.parametrize(
    ('relation', 'anchor_count'),
    [(Relation.LEFT_OF, 0), (Relation.LEFT_OF, 2), (Relation.BETWEEN, 1), (Relation.NEAR, 3)],
)
def test_wrong_number_of_anchors_is_refused(relation: Relation, anchor_count: int) -> None:
    with pytest.raises(ValueError, match='anchor'):
        relation_score(relation, MUG, [LAPTOP] * anchor_count)


def test_forcing_3d_without_points_is_refused() -> None:
    with pytest.raises(ValueError, match='point'):
        relation_score(Relation.LEFT_OF, MUG, [LAPTOP], use_3d=True)


def test_scores_stay_in_range_for_random_and_degenerate_boxes() -> None:
    rng = np.random.default_rng(7)
    boxes = [thing(5, 5, 5, 5), thing(0, 0, 640, 0)]
    for _ in range(40):
        x, y = rng.uniform(0, 600, size=2)
        w, h = rng.uniform(0, 120, size=2)
        boxes.append(thing(x, y, x + w, y + h))
    for relation in Relation:
        for subject, anchor, other in zip(boxes, boxes[1:], boxes[2:]):
            anchors = [anchor, other] if relation is Relation.BETWEEN else [anchor]
            score = relation_score(relation, subject, anchors)
            assert math.isfinite(score), (relation, subject, anchor)
            assert 0.0 <= score <= 1.0, (relation, subject, anchor)


# -- ordinals -----------------------------------------------------------------------------------

ROW = [
    thing(300, 220, 340, 260, z=1.5, phrase='middle'),  # small, far
    thing(40, 300, 120, 380, z=0.6, phrase='left'),  # large, near, low
    thing(520, 100, 580, 160, z=2.5, phrase='right'),  # farthest, highest
]


@pytest.mark.parametrize(
    ('order', 'use_3d', 'expected'),
    [
        (OrdinalOrder.LEFT, None, ['left', 'middle', 'right']),
        (OrdinalOrder.ORDER, None, ['left', 'middle', 'right']),
        (OrdinalOrder.RIGHT, None, ['right', 'middle', 'left']),
        (OrdinalOrder.TOP, None, ['right', 'middle', 'left']),
        (OrdinalOrder.BOTTOM, None, ['left', 'middle', 'right']),
        (OrdinalOrder.NEAREST, True, ['left', 'middle', 'right']),
        (OrdinalOrder.FARTHEST, True, ['right', 'middle', 'left']),
        (OrdinalOrder.NEAREST, False, ['left', 'middle', 'right']),
        (OrdinalOrder.LARGEST, False, ['left', 'right', 'middle']),
        (OrdinalOrder.SMALLEST, False, ['middle', 'right', 'left']),
        # In metres the order turns round: 80 px at 0.6 m is smaller than 40 px at 1.5 m.
        (OrdinalOrder.LARGEST, True, ['right', 'middle', 'left']),
    ],
)
def test_rank_ordinal(order: OrdinalOrder, use_3d: bool | None, expected: list[str]) -> None:
    ranked = rank_ordinal(ROW, order, use_3d=use_3d, intrinsics=CAMERA)
    assert [ROW[i].phrase for i in ranked] == expected


def test_nearest_uses_depth_over_image_height() -> None:
    low_far = thing(100, 400, 140, 440, z=3.0, phrase='low_far')
    high_near = thing(300, 100, 340, 140, z=0.5, phrase='high_near')
    pair = [low_far, high_near]
    assert pair[rank_ordinal(pair, OrdinalOrder.NEAREST)[0]].phrase == 'high_near'
    assert pair[rank_ordinal(pair, OrdinalOrder.NEAREST, use_3d=False)[0]].phrase == 'low_far'


@pytest.mark.parametrize(
    ('index', 'expected'),
    [
        (1, 'left'),
        (2, 'middle'),
        (3, 'right'),
        (-1, 'right'),
        (-2, 'middle'),
        (4, None),
        (-4, None),
    ],
)
def test_select_ordinal(index: int, expected: str | None) -> None:
    chosen = select_ordinal(ROW, Ordinal(index, OrdinalOrder.LEFT))
    assert (ROW[chosen].phrase if chosen is not None else None) == expected


def test_select_ordinal_refuses_index_zero() -> None:
    with pytest.raises(ValueError, match='1-based'):
        select_ordinal(ROW, Ordinal(0, OrdinalOrder.LEFT))


# -- depth -> 3D --------------------------------------------------------------------------------


def test_point_from_depth_takes_the_median_of_valid_central_depth() -> None:
    depth = np.full((480, 640), 2.0, dtype=np.float32)
    depth[200:260, 300:360] = 0.8  # the object
    depth[225:235, 325:335] = np.nan  # a hole in the depth image
    depth[220:224, 320:340] = 0.0  # no return
    point = point_from_depth(Box(300, 200, 360, 260), depth, CAMERA)
    assert point is not None
    assert point[2] == pytest.approx(0.8)
    assert point[0] == pytest.approx((330 - CAMERA.cx) * 0.8 / CAMERA.fx)
    assert point[1] == pytest.approx((230 - CAMERA.cy) * 0.8 / CAMERA.fy)


def test_point_from_depth_with_a_smaller_depth_image() -> None:
    depth = np.full((240, 320), 1.5, dtype=np.float32)
    point = point_from_depth(Box(300, 200, 360, 260), depth, CAMERA, image_size=(640, 480))
    assert point is not None
    assert point[2] == pytest.approx(1.5)


def test_point_from_depth_without_valid_depth_is_none() -> None:
    depth = np.zeros((480, 640), dtype=np.float32)
    depth[:, :320] = np.nan
    assert point_from_depth(Box(300, 200, 360, 260), depth, CAMERA) is None


def test_with_points_fills_points_only_with_depth_and_intrinsics() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    depth = np.full((480, 640), 1.25, dtype=np.float32)
    detections = [thing(100, 200, 160, 260), thing(0, 0, 640, 480)]
    filled = with_points(detections, Frame(image=image, depth=depth, intrinsics=CAMERA))
    assert all(d.point is not None and d.point[2] == pytest.approx(1.25) for d in filled)
    assert with_points(detections, Frame(image=image, depth=depth)) == detections


def test_metric_size_scales_with_depth() -> None:
    near, far = thing(100, 100, 150, 200, z=0.5), thing(100, 100, 150, 200, z=1.0)
    near_size, far_size = metric_size(near, CAMERA), metric_size(far, CAMERA)
    assert near_size is not None
    assert far_size is not None
    assert near_size[0] == pytest.approx(50 * 0.5 / 500)
    assert far_size[1] == pytest.approx(2 * near_size[1])
    assert metric_size(MUG, CAMERA) is None


def test_an_object_partly_hidden_by_another_is_behind_it_in_2d() -> None:
    # A tall can whose base is hidden by a shorter box in front: the bases look level, but the
    # overlapping boxes say the lower one hides the other.
    can = thing(100, 150, 160, 250)
    box_in_front = thing(95, 200, 165, 260)
    assert relation_score(Relation.BEHIND, can, [box_in_front]) >= 0.6
    assert relation_score(Relation.IN_FRONT_OF, box_in_front, [can]) >= 0.6
    assert relation_score(Relation.IN_FRONT_OF, can, [box_in_front]) < 0.1
    # Side by side, not overlapping: no occlusion to read, the weak base-height cue alone.
    beside = thing(300, 200, 370, 260)
    assert relation_score(Relation.BEHIND, can, [beside]) < 0.5
