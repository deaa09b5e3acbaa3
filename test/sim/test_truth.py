"""The ground-truth checker on hand-made scenes: relations, ordinals, doubt and absence."""

from __future__ import annotations

import pytest

from grounding_agent.core.parser import parse_command
from grounding_agent.core.types import Box, Relation
from grounding_agent.sim.truth import TruthMatch, relation_truth, resolve_ref
from grounding_agent.sim.world import ObjectTruth


def _truth(
    name: str,
    u: float,
    z: float,
    *,
    shape: str = 'cube',
    colour: str = 'red',
    size: str = 'large',
    width: float = 40.0,
    visible: float = 1.0,
) -> ObjectTruth:
    """An object centred at image column u, depth z metres; boxes 40 px wide by default."""
    box = Box(u - width / 2, 200.0, u + width / 2, 240.0)
    pixels = int(box.area * visible)
    return ObjectTruth(
        name=name, shape=shape, colour=colour, size=size,
        box=box if pixels else None, visible_fraction=visible, pixel_count=pixels,
        point_camera=(0.0, 0.0, z), position_world=(0.0, 0.0, 0.0), full_box=box,
        silhouette_area=box.area,
    )  # fmt: skip


# A row of three red cubes left to right, a blue sphere behind the middle one, a green cone in
# front on the right, and a small red cube at the far right.
SCENE = (
    _truth('cube_left', 100, 0.70),
    _truth('cube_mid', 200, 0.70),
    _truth('cube_right', 300, 0.70),
    _truth('ball', 200, 0.85, shape='sphere', colour='blue'),
    _truth('cone', 300, 0.55, shape='cone', colour='green'),
    _truth('small_cube', 420, 0.70, size='small', width=20.0),
)


@pytest.mark.parametrize(
    ('relation', 'subject', 'anchor', 'expected'),
    [
        (Relation.LEFT_OF, 'cube_left', 'cube_mid', True),
        (Relation.RIGHT_OF, 'cube_left', 'cube_mid', False),
        (Relation.LEFT_OF, 'cube_mid', 'ball', None),  # same column: neither clearly
        (Relation.LEFT_OF, 'cube_right', 'ball', False),
        (Relation.BEHIND, 'ball', 'cube_mid', True),
        (Relation.IN_FRONT_OF, 'cone', 'cube_right', True),
        (Relation.IN_FRONT_OF, 'cone', 'cube_left', None),  # nearer, but far off to the side
        (Relation.IN_FRONT_OF, 'cube_mid', 'ball', True),
        (Relation.NEXT_TO, 'cube_mid', 'ball', None),  # not judged by the checker
        (Relation.LEFT_OF, 'cube_mid', 'cube_mid', False),
    ],
)
def test_relation_truth(relation: Relation, subject: str, anchor: str, expected: object) -> None:
    by_name = {o.name: o for o in SCENE}
    assert relation_truth(relation, by_name[subject], by_name[anchor]) is expected


def test_side_by_side_within_half_a_width_is_undecided() -> None:
    a, b = _truth('a', 100, 0.7), _truth('b', 115, 0.7)
    assert relation_truth(Relation.LEFT_OF, a, b) is None


@pytest.mark.parametrize(
    ('description', 'certain', 'uncertain'),
    [
        ('the blue ball', ('ball',), ()),
        ('the cube that is red', ('cube_left', 'cube_mid', 'cube_right', 'small_cube'), ()),
        ('the small red cube', ('small_cube',), ()),
        ('the big block', ('cube_left', 'cube_mid', 'cube_right'), ()),
        ('the second cube from the left', ('cube_mid',), ()),
        ('the 2nd large box counting from the right', ('cube_mid',), ()),
        ('the third cube from the left', ('cube_right',), ()),
        ('the leftmost cube', ('cube_left',), ()),
        ('the rightmost large cube', ('cube_right',), ()),
        ('the smallest cube', ('small_cube',), ()),
        # Nearer than the ball but off to the side: not clearly 'in front of' it, nor not.
        (
            'the cube in front of the blue ball',
            ('cube_mid',),
            ('cube_left', 'cube_right', 'small_cube'),
        ),
        ('the red cube left of the blue ball', ('cube_left',), ('cube_mid',)),
        ('the red cube right of the ball', ('cube_right', 'small_cube'), ('cube_mid',)),
        ('the cone to the right of the ball that is behind the cube', ('cone',), ()),
        ('the nearest thing', ('cone',), ()),
        ('the green ball', (), ()),
        ('the small blue ball', (), ()),
        ('the cone left of the ball', (), ()),
        ('the laptop', (), ()),
    ],
)
def test_parsed_descriptions_resolve_on_ground_truth(
    description: str, certain: tuple[str, ...], uncertain: tuple[str, ...]
) -> None:
    match = resolve_ref(parse_command(description).target, SCENE)
    assert match == TruthMatch(certain, uncertain)


def test_a_sliver_of_an_object_makes_a_description_doubtful() -> None:
    scene = (*SCENE, _truth('sliver', 500, 0.7, shape='sphere', colour='blue', visible=0.1))
    match = resolve_ref(parse_command('the blue ball').target, scene)
    assert match.unique is None
    assert match.certain == ('ball',)
    assert match.uncertain == ('sliver',)
    assert not match.empty


def test_an_ordinal_between_neighbours_too_close_to_tell_is_doubtful() -> None:
    scene = (_truth('a', 100, 0.7), _truth('b', 110, 0.7), _truth('c', 300, 0.7))
    assert resolve_ref(parse_command('the leftmost cube').target, scene).unique is None
    assert resolve_ref(parse_command('the rightmost cube').target, scene).unique == 'c'


def test_hidden_objects_are_named_by_their_visible_share() -> None:
    scene = (_truth('open', 100, 0.7), _truth('hidden', 300, 0.7, visible=0.5))
    match = resolve_ref(parse_command('the partly hidden red cube').target, scene)
    assert match.unique == 'hidden'
