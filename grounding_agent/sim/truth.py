"""Which objects of a rendered scene a referring expression denotes, from ground truth alone.

The benchmark generator uses this to prove that every positive description names exactly one
object and every rejection none; tests use it on parsed text. The input is the parser's own
`ObjectRef` (colour, size, shape noun, relations, ordinal), so a description can be checked as
built or as the parser reads it.

Semantics (the viewer's perspective, as in GroundingME and `core/relations.py`):
- Candidates are the objects with any visible pixel. One is *certain* when at least
  `CERTAIN_VISIBLE_FRACTION` of it and `CERTAIN_PIXELS` pixels are visible; a sliver of an
  object is *uncertain*: a reader might or might not count it.
- Colour, size ('small' / 'large') and shape are the objects' categories; nouns that are not
  shape words ('thing', 'object', none) match any shape; other nouns ('laptop') match nothing.
- left of / right of: image x of the projected centres, offset divided by the mean silhouette
  width; true from `SIDE_TRUE`, false up to `SIDE_FALSE`, undecided in between.
- in front of / behind: camera depth (z) of the centres, offset divided by the mean object width
  (metres); true from `DEPTH_TRUE` with the two no more than `DEPTH_LATERAL` mean widths apart
  sideways in the image, false up to `DEPTH_FALSE`.
- Ordinals and superlatives rank the candidates left-right (image x), near-far (depth) or by
  silhouette area; the pick must be separated from its neighbours in the ranking by
  `RANK_GAP` (x and depth, in mean widths) or `AREA_RATIO` (area).
- 'hidden' / 'occluded' / 'covered': visible_fraction at most `HIDDEN_TRUE`, false from
  `HIDDEN_FALSE`. Other relations and modifiers are undecided: such a description is never
  counted as valid.
A relation holds when it is true for some anchor the anchor description certainly denotes; it
fails when it is false for every anchor it might denote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grounding_agent.core.types import ObjectRef, OrdinalOrder, Relation
from grounding_agent.core.vocabulary import (
    ANY_OBJECT_NOUNS,
    COLOUR_SYNONYMS,
    SHAPE_NOUNS,
    SIZE_SYNONYMS,
)
from grounding_agent.sim.errors import SimError
from grounding_agent.sim.scene import SIZE_M
from grounding_agent.sim.world import ObjectTruth

__all__ = [
    'AREA_RATIO',
    'CERTAIN_PIXELS',
    'CERTAIN_VISIBLE_FRACTION',
    'DEPTH_FALSE',
    'DEPTH_LATERAL',
    'DEPTH_TRUE',
    'HIDDEN_FALSE',
    'HIDDEN_TRUE',
    'RANK_GAP',
    'SIDE_FALSE',
    'SIDE_TRUE',
    'TruthMatch',
    'is_certain',
    'relation_truth',
    'resolve_ref',
]

CERTAIN_VISIBLE_FRACTION = 0.3
CERTAIN_PIXELS = 30
SIDE_TRUE = 0.6
SIDE_FALSE = -0.3
DEPTH_TRUE = 0.8
DEPTH_FALSE = -0.3
DEPTH_LATERAL = 2.0
RANK_GAP = 0.5
AREA_RATIO = 1.4
HIDDEN_TRUE = 0.85
HIDDEN_FALSE = 0.95

_HIDDEN_WORDS = frozenset({'hidden', 'occluded', 'covered', 'obscured', 'blocked'})
_NEUTRAL_WORDS = frozenset({'partly', 'partially', 'half', 'somewhat'})

# A three-valued truth: True, False, or None (a reader could go either way).
Truth = bool | None


@dataclass(frozen=True)
class TruthMatch:
    """The objects a description certainly denotes, and those it might denote."""

    certain: tuple[str, ...]
    uncertain: tuple[str, ...]

    @property
    def unique(self) -> str | None:
        """The one object denoted without doubt, or None."""
        if len(self.certain) == 1 and not self.uncertain:
            return self.certain[0]
        return None

    @property
    def empty(self) -> bool:
        """True when nothing is denoted, without doubt."""
        return not self.certain and not self.uncertain


def is_certain(truth: ObjectTruth) -> bool:
    return (
        truth.visible_fraction >= CERTAIN_VISIBLE_FRACTION and truth.pixel_count >= CERTAIN_PIXELS
    )


def _width_px(truth: ObjectTruth) -> float:
    return max(truth.full_box.width, 1.0)


def _centre_u(truth: ObjectTruth) -> float:
    return (truth.full_box.x1 + truth.full_box.x2) / 2.0


def _width_m(truth: ObjectTruth) -> float:
    return SIZE_M[truth.size]


def _graded(value: float, true_from: float, false_to: float) -> Truth:
    if value >= true_from:
        return True
    if value <= false_to:
        return False
    return None


def relation_truth(relation: Relation, subject: ObjectTruth, anchor: ObjectTruth) -> Truth:
    """Whether `subject` stands in `relation` to `anchor` (None: undecided / unsupported)."""
    if subject.name == anchor.name:
        return False
    mean_px = (_width_px(subject) + _width_px(anchor)) / 2.0
    mean_m = (_width_m(subject) + _width_m(anchor)) / 2.0
    if relation in (Relation.LEFT_OF, Relation.RIGHT_OF):
        offset = (_centre_u(anchor) - _centre_u(subject)) / mean_px
        if relation is Relation.RIGHT_OF:
            offset = -offset
        return _graded(offset, SIDE_TRUE, SIDE_FALSE)
    if relation in (Relation.IN_FRONT_OF, Relation.BEHIND):
        offset = (anchor.point_camera[2] - subject.point_camera[2]) / mean_m
        if relation is Relation.BEHIND:
            offset = -offset
        verdict = _graded(offset, DEPTH_TRUE, DEPTH_FALSE)
        lateral = abs(_centre_u(anchor) - _centre_u(subject)) / mean_px
        if verdict is True and lateral > DEPTH_LATERAL:
            return None  # far apart sideways: 'in front of' is a stretch, not a fact
        return verdict
    return None


def _noun_truth(noun: str | None, truth: ObjectTruth) -> bool:
    if noun is None or noun in ANY_OBJECT_NOUNS:
        return True
    return SHAPE_NOUNS.get(noun) == truth.shape


def _modifier_truth(word: str, truth: ObjectTruth) -> Truth:
    if word in _NEUTRAL_WORDS:
        return True
    if word in _HIDDEN_WORDS:
        # An object cut by the image border is not 'hidden' behind anything.
        return _graded(-truth.visible_fraction, -HIDDEN_TRUE, -HIDDEN_FALSE)
    return None


def _and(values: Sequence[Truth]) -> Truth:
    if any(v is False for v in values):
        return False
    if all(v is True for v in values):
        return True
    return None


def _own_truth(ref: ObjectRef, truth: ObjectTruth) -> Truth:
    """Noun, colour, size and modifiers of `ref` against one object."""
    colour = COLOUR_SYNONYMS.get(ref.colour, ref.colour) if ref.colour else None
    size = SIZE_SYNONYMS.get(ref.size, ref.size) if ref.size else None
    values: list[Truth] = [
        _noun_truth(ref.noun, truth),
        colour is None or colour == truth.colour,
        size is None or size == truth.size,
    ]
    values += [_modifier_truth(word, truth) for word in ref.modifiers]
    return _and(values)


def _relations_truth(
    ref: ObjectRef, subject: ObjectTruth, objects: Sequence[ObjectTruth]
) -> Truth:
    verdicts: list[Truth] = []
    for constraint in ref.relations:
        if len(constraint.anchors) != 1:
            verdicts.append(None)
            continue
        anchors = resolve_ref(constraint.anchors[0], objects)
        by_name = {o.name: o for o in objects}
        certain = [
            relation_truth(constraint.relation, subject, by_name[n]) for n in anchors.certain
        ]
        maybe = [
            relation_truth(constraint.relation, subject, by_name[n]) for n in anchors.uncertain
        ]
        if any(v is True for v in certain):
            verdicts.append(True)
        elif all(v is False for v in certain + maybe):
            verdicts.append(False)
        else:
            verdicts.append(None)
    return _and(verdicts)


def _rank_key(order: OrdinalOrder, truth: ObjectTruth) -> float:
    if order is OrdinalOrder.LEFT:
        return _centre_u(truth)
    if order is OrdinalOrder.RIGHT:
        return -_centre_u(truth)
    if order is OrdinalOrder.NEAREST:
        return truth.point_camera[2]
    if order is OrdinalOrder.FARTHEST:
        return -truth.point_camera[2]
    if order is OrdinalOrder.LARGEST:
        return -truth.silhouette_area
    if order is OrdinalOrder.SMALLEST:
        return truth.silhouette_area
    raise SimError(f'no ranking by {order.value!r}')


def _separated(order: OrdinalOrder, a: ObjectTruth, b: ObjectTruth) -> bool:
    """Whether a reader can tell a and b apart in this ordering."""
    if order in (OrdinalOrder.LEFT, OrdinalOrder.RIGHT):
        gap = abs(_centre_u(a) - _centre_u(b)) / ((_width_px(a) + _width_px(b)) / 2.0)
        return gap >= RANK_GAP
    if order in (OrdinalOrder.NEAREST, OrdinalOrder.FARTHEST):
        gap = abs(a.point_camera[2] - b.point_camera[2]) / ((_width_m(a) + _width_m(b)) / 2.0)
        return gap >= RANK_GAP
    big, small = sorted((a.silhouette_area, b.silhouette_area), reverse=True)
    return small <= 0 or big / small >= AREA_RATIO


_RANKABLE = frozenset({
    OrdinalOrder.LEFT, OrdinalOrder.RIGHT, OrdinalOrder.NEAREST, OrdinalOrder.FARTHEST,
    OrdinalOrder.LARGEST, OrdinalOrder.SMALLEST,
})  # fmt: skip


def resolve_ref(ref: ObjectRef, objects: Sequence[ObjectTruth]) -> TruthMatch:
    """The visible objects `ref` denotes: certain ones and ones a reader might count."""
    visible = [o for o in objects if o.box is not None]
    certain: list[ObjectTruth] = []
    uncertain: list[ObjectTruth] = []
    for truth in visible:
        verdict = _and([_own_truth(ref, truth), _relations_truth(ref, truth, objects)])
        if verdict is False:
            continue
        if verdict is True and is_certain(truth):
            certain.append(truth)
        else:
            uncertain.append(truth)
    ordinal = ref.ordinal
    if ordinal is None:
        return TruthMatch(tuple(o.name for o in certain), tuple(o.name for o in uncertain))
    # An ordinal picks one of the candidates; with doubtful candidates, or an order we cannot
    # rank, or neighbours too close to tell apart, the pick itself is doubtful.
    pool = certain + uncertain
    if ordinal.order not in _RANKABLE or not pool:
        return TruthMatch((), tuple(o.name for o in pool))
    ranked = sorted(pool, key=lambda o: _rank_key(ordinal.order, o))
    index = ordinal.index - 1 if ordinal.index > 0 else len(ranked) + ordinal.index
    if not 0 <= index < len(ranked):
        # 'the third cube' with two cubes denotes nothing (only if the count is certain).
        return TruthMatch((), tuple(o.name for o in uncertain))
    pick = ranked[index]
    neighbours = [ranked[i] for i in (index - 1, index + 1) if 0 <= i < len(ranked)]
    clear = all(_separated(ordinal.order, pick, n) for n in neighbours)
    if clear and not uncertain:
        return TruthMatch((pick.name,), ())
    return TruthMatch((), (pick.name,))
