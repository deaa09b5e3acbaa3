"""The resolver's decisions: grounded, rejected (naming the failing part), ambiguous, answered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.errors import CommandError
from grounding_agent.core.resolver import LONE_SIZE_SCORE, Resolver, describe_ref
from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.core.types import (
    AttributeKind,
    Box,
    CameraIntrinsics,
    Detection,
    Frame,
    ObjectRef,
    Ordinal,
    OrdinalOrder,
    Query,
    QueryKind,
    Relation,
    RelationConstraint,
    Stamp,
)
from grounding_agent.core.vocabulary import COLOURS, GENERIC_PHRASE, SIZES

FRAME = Frame(
    image=np.zeros((480, 640, 3), dtype=np.uint8),
    stamp=Stamp(1_700_000_000, 5),
    frame_id='camera_color_optical_frame',
    camera='front',
)
CAMERA = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)


def seen(
    phrase: str,
    box: tuple[float, float, float, float],
    score: float = 0.9,
    *,
    z: float | None = None,
    label: str = '',
    **attributes: float,
) -> Detection:
    b = Box(*box)
    point = CAMERA.deproject(*b.center, z) if z is not None else None
    by_kind: dict[AttributeKind, dict[str, float]] = {}
    for word, value in attributes.items():
        by_kind.setdefault(_kind_of(word), {})[word] = value
    return Detection(b, phrase, score, attributes=by_kind, point=point, label=label)


def _kind_of(word: str) -> AttributeKind:
    if word in COLOURS:
        return AttributeKind.COLOUR
    return AttributeKind.SIZE if word in SIZES else AttributeKind.SHAPE


def ref(phrase: str, *relations: RelationConstraint, **fields: object) -> ObjectRef:
    noun = phrase.split()[-1] if phrase else None
    return ObjectRef(phrase=phrase, noun=noun, relations=relations, **fields)


def rel(relation: Relation, *anchors: ObjectRef) -> RelationConstraint:
    return RelationConstraint(relation, anchors)


def ask(kind: QueryKind, target: ObjectRef, **fields: object) -> Query:
    return Query(kind=kind, text=f'{kind.value} {describe_ref(target)}', target=target, **fields)


def by_phrase(*detections: Detection) -> dict[str, list[Detection]]:
    grouped: dict[str, list[Detection]] = {}
    for detection in detections:
        grouped.setdefault(detection.phrase, []).append(detection)
    return grouped


def resolve(
    query: Query,
    detections: Mapping[str, Sequence[Detection]],
    frame: Frame = FRAME,
    **config: object,
) -> GroundingResult:
    result = Resolver(ResolverConfig(**config)).resolve(query, detections, frame)
    # Whatever the outcome, the message is valid and survives the trip to the planner.
    assert GroundingResult.from_json(result.to_json()) == result
    assert result.reason
    return result


LAPTOP = seen('laptop', (300, 150, 500, 300), 0.88)
MUG_LEFT = seen('red mug', (100, 200, 160, 260), 0.9, red=0.92)
MUG_RIGHT = seen('red mug', (560, 200, 620, 260), 0.9, red=0.91)
CUPS = [seen('cup', (x, 200, x + 50, 250), 0.8) for x in (60, 260, 460)]

LOCATE_CASES = [
    # name, query target, detections, status, text the reason must contain
    (
        'grounded by colour',
        ref('mug', colour='red'),
        by_phrase(
            seen('mug', (100, 200, 160, 260), red=0.9), seen('mug', (400, 200, 460, 260), blue=0.8)
        ),
        ResultStatus.GROUNDED,
        'mug (0.81)',
    ),
    (
        'attribute failed',
        ref('blue bottle', colour='blue'),
        by_phrase(seen('blue bottle', (100, 100, 150, 220), 0.41, green=0.8, blue=0.05)),
        ResultStatus.REJECTED,
        'no blue bottle; closest: green bottle 0.41 (blue 0.05)',
    ),
    (
        'object missing',
        ref('cup'),
        by_phrase(LAPTOP),
        ResultStatus.REJECTED,
        'no cup found',
    ),
    (
        'anchor missing',
        ref('red mug', rel(Relation.LEFT_OF, ref('laptop'))),
        by_phrase(MUG_LEFT),
        ResultStatus.REJECTED,
        'no laptop found',
    ),
    (
        'relation failed',
        ref('red mug', rel(Relation.RIGHT_OF, ref('laptop'))),
        by_phrase(MUG_LEFT, LAPTOP),
        ResultStatus.REJECTED,
        'red mug found but it is not right of the laptop (right_of 0.00)',
    ),
    (
        'relation picks one of two',
        ref('red mug', rel(Relation.LEFT_OF, ref('laptop'))),
        by_phrase(MUG_LEFT, MUG_RIGHT, LAPTOP),
        ResultStatus.GROUNDED,
        'is left of the laptop (left_of 1.00)',
    ),
    (
        'two equal candidates',
        ref('red mug'),
        by_phrase(MUG_LEFT, MUG_RIGHT),
        ResultStatus.AMBIGUOUS,
        '2 red mugs match almost equally',
    ),
    (
        'too weak to accept',
        ref('cup'),
        by_phrase(seen('cup', (10, 10, 50, 50), 0.1)),
        ResultStatus.REJECTED,
        'best cup scores 0.10 (detector 0.10), below the acceptance threshold 0.15',
    ),
    (
        'ordinal beyond the count',
        ref('cup', ordinal=Ordinal(3, OrdinalOrder.ORDER)),
        by_phrase(*CUPS[:2]),
        ResultStatus.REJECTED,
        'only 2 cups; cannot take the third',
    ),
    (
        'ordinal from the right',
        ref('cup', ordinal=Ordinal(2, OrdinalOrder.RIGHT)),
        by_phrase(*CUPS),
        ResultStatus.GROUNDED,
        'cup (0.80)',
    ),
    (
        'between needs two anchors',
        ref('cup', rel(Relation.BETWEEN, ref('laptop'))),
        by_phrase(CUPS[0], LAPTOP),
        ResultStatus.REJECTED,
        'only one laptop; between needs two',
    ),
]


@pytest.mark.parametrize(
    ('target', 'detections', 'status', 'reason'),
    [case[1:] for case in LOCATE_CASES],
    ids=[case[0] for case in LOCATE_CASES],
)
def test_locate_decisions(
    target: ObjectRef,
    detections: dict[str, list[Detection]],
    status: ResultStatus,
    reason: str,
) -> None:
    result = resolve(ask(QueryKind.LOCATE, target), detections)
    assert result.status is status
    assert reason in result.reason


def test_grounded_result_carries_target_evidence_and_frame() -> None:
    target = ref('red mug', rel(Relation.LEFT_OF, ref('laptop')), colour='red')
    query = ask(QueryKind.LOCATE, target)
    result = resolve(query, by_phrase(MUG_LEFT, MUG_RIGHT, LAPTOP))
    assert result.target is not None
    assert result.target.box == MUG_LEFT.box.to_list()
    assert result.target.score == pytest.approx(0.9 * 0.92 * result.relations[0].score)
    assert [(e.relation, e.subject, e.object) for e in result.relations] == [
        ('left_of', 'red mug', 'laptop')
    ]
    assert result.relations[0].object_box == LAPTOP.box.to_list()
    assert (result.kind, result.command) == ('locate', query.text)
    assert result.stamp is not None
    assert (result.stamp.sec, result.stamp.nanosec) == (1_700_000_000, 5)
    assert (result.frame_id, result.camera) == ('camera_color_optical_frame', 'front')


def test_ambiguous_lists_every_close_candidate() -> None:
    far = seen('red mug', (300, 400, 340, 440), 0.5, red=0.9)
    result = resolve(ask(QueryKind.LOCATE, ref('red mug')), by_phrase(MUG_LEFT, MUG_RIGHT, far))
    assert result.status is ResultStatus.AMBIGUOUS
    assert sorted(c.box[0] for c in result.candidates) == [100.0, 560.0]
    assert result.target is None


# Two boxes on one physical object, as a backend without NMS may report.
MUG_TWICE = by_phrase(MUG_LEFT, seen('red mug', (102, 201, 161, 262), 0.89, red=0.92))


def test_two_boxes_on_one_object_are_grounded_not_ambiguous() -> None:
    result = resolve(ask(QueryKind.LOCATE, ref('red mug')), MUG_TWICE)
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box == MUG_LEFT.box.to_list()


def test_two_boxes_on_one_object_count_once() -> None:
    assert resolve(ask(QueryKind.COUNT, ref('red mug')), MUG_TWICE).answer == 1


def test_ambiguity_margin_decides_between_close_candidates() -> None:
    slightly_better = seen('red mug', (560, 200, 620, 260), 0.93, red=0.92)
    detections = by_phrase(MUG_LEFT, slightly_better)
    query = ask(QueryKind.LOCATE, ref('red mug'))
    assert resolve(query, detections).status is ResultStatus.AMBIGUOUS
    sharp = resolve(query, detections, ambiguity_margin=0.01)
    assert sharp.status is ResultStatus.GROUNDED
    assert sharp.target is not None
    assert sharp.target.box[0] == 560.0


def test_ordinal_selects_in_order() -> None:
    query = ask(QueryKind.LOCATE, ref('cup', ordinal=Ordinal(2, OrdinalOrder.LEFT)))
    result = resolve(query, by_phrase(*reversed(CUPS)))
    assert result.target is not None
    assert result.target.box[0] == 260.0


def test_ordinal_counts_only_candidates_that_pass_the_filters() -> None:
    # 'The second red cup from the left': the green one in between does not count.
    cups = [
        seen('red cup', (60, 200, 110, 250), red=0.9),
        seen('red cup', (160, 200, 210, 250), green=0.9),
        seen('red cup', (260, 200, 310, 250), red=0.9),
    ]
    target = ref('red cup', colour='red', ordinal=Ordinal(2, OrdinalOrder.LEFT))
    result = resolve(ask(QueryKind.LOCATE, target), by_phrase(*cups))
    assert result.target is not None
    assert result.target.box[0] == 260.0


@pytest.mark.parametrize(
    ('size', 'expected_x'), [('large', 300.0), ('small', 100.0), ('big', 300.0)]
)
def test_size_is_relative_to_the_other_candidates(size: str, expected_x: float) -> None:
    small, large = seen('box', (100, 200, 140, 240)), seen('box', (300, 180, 380, 260))
    result = resolve(ask(QueryKind.LOCATE, ref('box', size=size)), by_phrase(small, large))
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box[0] == expected_x


def test_size_uses_metric_size_when_depth_is_known() -> None:
    # The near box looks larger in the image but is the smaller one.
    near = seen('box', (100, 200, 180, 280), z=0.5)
    far = seen('box', (300, 200, 360, 260), z=1.5)
    frame = Frame(image=FRAME.image, intrinsics=CAMERA)
    result = resolve(ask(QueryKind.LOCATE, ref('box', size='large')), by_phrase(near, far), frame)
    assert result.target is not None
    assert result.target.box[0] == 300.0


def test_size_with_a_single_candidate_is_neutral() -> None:
    result = resolve(
        ask(QueryKind.LOCATE, ref('box', size='small')), by_phrase(seen('box', (0, 0, 9, 9), 0.8))
    )
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.score == pytest.approx(0.8 * LONE_SIZE_SCORE)


@pytest.mark.parametrize(
    ('size', 'status'),
    [
        ('small', ResultStatus.REJECTED),
        ('large', ResultStatus.GROUNDED),
        ('tiny', ResultStatus.REJECTED),
    ],
)
def test_a_single_candidate_is_judged_by_the_backends_own_size_attribute(
    size: str, status: ResultStatus
) -> None:
    # One can, which the backend judged large: 'the small can' must not point at it.
    can = seen('can', (100, 100, 180, 200), 0.9, small=0.05, large=0.95)
    result = resolve(ask(QueryKind.LOCATE, ref('can', size=size)), by_phrase(can))
    assert result.status is status
    if status is ResultStatus.REJECTED:
        assert 'small' in result.reason


@pytest.mark.parametrize(
    ('judged', 'status'),
    [({AttributeKind.COLOUR: {'red': 0.9, 'blue': 0.1}}, ResultStatus.GROUNDED),
     ({AttributeKind.COLOUR: {'red': 0.9}, AttributeKind.SHAPE: {'cube': 0.9}},
      ResultStatus.REJECTED)],
)  # fmt: skip
def test_a_kind_of_attribute_is_judged_only_when_the_backend_reports_that_kind(
    judged: dict[AttributeKind, dict[str, float]], status: ResultStatus
) -> None:
    # 'the red ball': a backend that judged only colour agrees on the shape; one that judged the
    # shape and saw a cube refutes it.
    thing = Detection(Box(100, 200, 160, 260), 'red object', 0.8, attributes=judged)
    target = ObjectRef('red object', 'object', colour='red', shape='sphere')
    assert resolve(ask(QueryKind.LOCATE, target), by_phrase(thing)).status is status


def test_backend_without_attributes_is_trusted_on_the_whole_phrase() -> None:
    plain = seen('red mug', (100, 200, 160, 260), 0.7)
    result = resolve(ask(QueryKind.LOCATE, ref('red mug', colour='red')), by_phrase(plain))
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.score == pytest.approx(0.7)


def test_shape_adjective_is_checked_against_the_shape_class() -> None:
    # 'the round object': the shape is not the noun, so the backend's shape judgement counts.
    blob = seen('round object', (100, 100, 140, 140), sphere=0.2, cube=0.9)
    target = ObjectRef(phrase='round object', noun='object', shape='ball')
    result = resolve(ask(QueryKind.LOCATE, target), by_phrase(blob))
    assert result.status is ResultStatus.REJECTED
    assert '(sphere 0.20)' in result.reason


def test_shape_of_the_noun_itself_is_not_counted_twice() -> None:
    # The detector was asked for 'cube' and scored the box for it already.
    cube = seen('cube', (100, 100, 140, 140), 0.8, cube=0.8, red=0.9)
    result = resolve(ask(QueryKind.LOCATE, ref('cube', shape='cube')), by_phrase(cube))
    assert result.target is not None
    assert result.target.score == pytest.approx(0.8)


@pytest.mark.parametrize(
    ('phrase', 'count', 'reason'),
    [('cup', 2, 'counted 2 cups'), ('cups', 2, 'counted 2 cups'), ('boxes', 1, 'counted 1 box'),
     ('glass', 3, 'counted 3 glasses'), ('battery', 2, 'counted 2 batteries'),
     ('cubes', 1, 'counted 1 cube'), ('knife', 0, 'counted 0 knives: no knife found'),
     ('buses', 1, 'counted 1 bus'), ('person', 2, 'counted 2 people')],
)  # fmt: skip
def test_count_reason_reads_as_english(phrase: str, count: int, reason: str) -> None:
    found = [seen(phrase, (x, 200, x + 50, 250)) for x in (60, 260, 460)[:count]]
    result = resolve(ask(QueryKind.COUNT, ref(phrase, plural=True)), by_phrase(*found))
    assert result.reason == reason


def test_nested_relations_resolve_the_anchor_first() -> None:
    # 'the cup next to the plate left of the laptop': two plates, only one left of the laptop.
    plate_left, plate_right = (
        seen('plate', (60, 260, 140, 300)),
        seen('plate', (520, 260, 600, 300)),
    )
    cup_left, cup_right = seen('cup', (145, 250, 185, 300)), seen('cup', (475, 250, 515, 300))
    plate = ref('plate', rel(Relation.LEFT_OF, ref('laptop')))
    query = ask(QueryKind.LOCATE, ref('cup', rel(Relation.NEXT_TO, plate)))
    result = resolve(query, by_phrase(plate_left, plate_right, cup_left, cup_right, LAPTOP))
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box[0] == 145.0
    assert result.relations[0].object_box == plate_left.box.to_list()


def test_nested_anchor_failure_is_named() -> None:
    plate = ref('plate', rel(Relation.LEFT_OF, ref('laptop')))
    query = ask(QueryKind.LOCATE, ref('cup', rel(Relation.NEXT_TO, plate)))
    result = resolve(query, by_phrase(seen('plate', (520, 260, 600, 300)), CUPS[0], LAPTOP))
    assert result.status is ResultStatus.REJECTED
    assert result.reason.startswith('plate found but it is not left of the laptop')


@pytest.mark.parametrize(
    ('relation', 'expected_x'), [(Relation.CLOSEST_TO, 260.0), (Relation.FARTHEST_FROM, 60.0)]
)
def test_superlative_relation_selects_among_candidates(
    relation: Relation, expected_x: float
) -> None:
    query = ask(QueryKind.LOCATE, ref('cup', rel(relation, ref('laptop'))))
    result = resolve(query, by_phrase(*CUPS[:2], LAPTOP))
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box[0] == expected_x


def test_object_is_never_its_own_anchor() -> None:
    # 'the cup closest to the cup' with the same boxes for both phrases: never itself.
    query = ask(QueryKind.LOCATE, ref('cup', rel(Relation.NEXT_TO, ref('cup'))))
    pair = by_phrase(
        seen('cup', (100, 200, 150, 250), 0.9), seen('cup', (155, 200, 205, 250), 0.6)
    )
    result = resolve(query, pair)
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.relations[0].object_box != result.target.box


def test_between_two_anchors() -> None:
    cup_mid = seen('cup', (250, 200, 290, 240))
    query = ask(QueryKind.LOCATE, ref('cup', rel(Relation.BETWEEN, ref('plate'), ref('bowl'))))
    detections = by_phrase(
        cup_mid,
        seen('cup', (560, 200, 600, 240)),
        seen('plate', (100, 200, 160, 240)),
        seen('bowl', (400, 200, 460, 240)),
    )
    result = resolve(query, detections)
    assert result.target is not None
    assert result.target.box[0] == 250.0
    assert result.relations[0].object_box_2 is not None


def test_in_front_of_uses_depth_when_known() -> None:
    # In the image the cup below the box looks nearer; in depth the one beside it is nearer.
    scene = [
        seen('cup', (210, 300, 250, 340), z=1.6),
        seen('cup', (340, 250, 380, 290), z=0.6),
        seen('box', (200, 200, 300, 260), z=1.0),
    ]
    query = ask(QueryKind.LOCATE, ref('cup', rel(Relation.IN_FRONT_OF, ref('box'))))
    flat = resolve(query, by_phrase(*(d.with_updates(point=None) for d in scene)))
    deep = resolve(query, by_phrase(*scene), Frame(image=FRAME.image, intrinsics=CAMERA))
    assert flat.target is not None
    assert deep.target is not None
    assert flat.target.box[0] == 210.0
    assert deep.target.box[0] == 340.0
    assert deep.relations[0].score > flat.relations[0].score


def test_detection_threshold_drops_weak_boxes() -> None:
    weak = seen('cup', (10, 10, 50, 50), 0.3)
    result = resolve(ask(QueryKind.LOCATE, ref('cup')), by_phrase(weak), detection_threshold=0.4)
    assert result.status is ResultStatus.REJECTED
    assert result.reason == 'no cup found'


def test_plural_locate_returns_every_match() -> None:
    result = resolve(ask(QueryKind.LOCATE, ref('cup', plural=True)), by_phrase(*CUPS))
    assert result.status is ResultStatus.GROUNDED
    assert len(result.candidates) == 3
    assert result.reason.startswith('3 cups')


def test_track_is_resolved_like_locate() -> None:
    result = resolve(ask(QueryKind.TRACK, ref('red mug', colour='red')), by_phrase(MUG_LEFT))
    assert (result.status, result.kind) == (ResultStatus.GROUNDED, 'track')


def test_query_without_object_is_a_command_error() -> None:
    with pytest.raises(CommandError, match='names no object'):
        Resolver().resolve(Query(QueryKind.LOCATE, 'find', ObjectRef(phrase='')), {}, FRAME)


# -- verification ---------------------------------------------------------------------------------


class RecordingVerifier:
    """Verifier returning a scripted probability per box left edge; records the descriptions."""

    def __init__(self, by_x1: Mapping[float, float | None]) -> None:
        self.by_x1 = by_x1
        self.calls: list[tuple[float, str]] = []

    def __call__(self, box: Box, description: str) -> float | None:
        self.calls.append((box.x1, description))
        return self.by_x1.get(box.x1)


def verified(
    query: Query,
    detections: Mapping[str, Sequence[Detection]],
    verifier: RecordingVerifier,
    **config: object,
) -> GroundingResult:
    return Resolver(ResolverConfig(**config)).resolve(query, detections, FRAME, verifier=verifier)


LEFT_MUG_QUERY = ask(QueryKind.LOCATE, ref('red mug', rel(Relation.LEFT_OF, ref('laptop'))))


def test_failed_verification_rejects_the_winner() -> None:
    verifier = RecordingVerifier({100.0: 0.2})
    result = verified(LEFT_MUG_QUERY, by_phrase(MUG_LEFT, LAPTOP), verifier)
    assert result.status is ResultStatus.REJECTED
    assert result.reason.startswith('verification failed: the backend gives 0.20')
    assert verifier.calls == [(100.0, 'red mug left of the laptop')]


def test_passed_verification_grounds_and_says_so() -> None:
    result = verified(LEFT_MUG_QUERY, by_phrase(MUG_LEFT, LAPTOP), RecordingVerifier({100.0: 0.9}))
    assert result.status is ResultStatus.GROUNDED
    assert 'verified 0.90' in result.reason


def test_verifier_that_cannot_tell_does_not_block() -> None:
    result = verified(LEFT_MUG_QUERY, by_phrase(MUG_LEFT, LAPTOP), RecordingVerifier({}))
    assert result.status is ResultStatus.GROUNDED
    assert 'verified' not in result.reason


def test_verification_off_in_config_skips_the_verifier() -> None:
    verifier = RecordingVerifier({100.0: 0.0})
    result = verified(LEFT_MUG_QUERY, by_phrase(MUG_LEFT, LAPTOP), verifier, verify=False)
    assert result.status is ResultStatus.GROUNDED
    assert verifier.calls == []


def test_verification_settles_an_ambiguity() -> None:
    verifier = RecordingVerifier({100.0: 0.1, 560.0: 0.8})
    result = verified(
        ask(QueryKind.LOCATE, ref('red mug')), by_phrase(MUG_LEFT, MUG_RIGHT), verifier
    )
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box[0] == 560.0
    assert len(verifier.calls) == 2


# -- questions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('detections', 'count'),
    [(by_phrase(*CUPS), 3), (by_phrase(CUPS[0]), 1), (by_phrase(LAPTOP), 0), ({}, 0)],
)
def test_count(detections: dict[str, list[Detection]], count: int) -> None:
    result = resolve(ask(QueryKind.COUNT, ref('cup', plural=True)), detections)
    assert result.status is ResultStatus.ANSWERED
    assert result.answer == count
    assert len(result.candidates) == count


def test_count_with_a_relation_counts_only_those_that_satisfy_it() -> None:
    tray = seen('tray', (40, 230, 330, 270))
    query = ask(QueryKind.COUNT, ref('cup', rel(Relation.ON, ref('tray')), plural=True))
    result = resolve(query, by_phrase(*CUPS, tray))
    assert result.answer == 2
    assert result.reason == 'counted 2 cups'


def test_count_zero_says_why() -> None:
    query = ask(QueryKind.COUNT, ref('cup', rel(Relation.ON, ref('tray')), plural=True))
    result = resolve(query, by_phrase(*CUPS))
    assert (result.status, result.answer) == (ResultStatus.ANSWERED, 0)
    assert result.reason == 'counted 0 cups: no tray found'


@pytest.mark.parametrize(
    ('detections', 'answer', 'reason'),
    [
        (by_phrase(MUG_LEFT, LAPTOP), True, 'yes: red mug'),
        (by_phrase(MUG_RIGHT, LAPTOP), False, 'no: red mug found but it is not left of'),
        (by_phrase(MUG_LEFT), False, 'no: no laptop found'),
    ],
)
def test_exists(detections: dict[str, list[Detection]], answer: bool, reason: str) -> None:
    query = ask(QueryKind.EXISTS, ref('red mug', rel(Relation.LEFT_OF, ref('laptop'))))
    result = resolve(query, detections)
    assert (result.status, result.answer) == (ResultStatus.ANSWERED, answer)
    assert result.reason.startswith(reason)
    assert (result.target is not None) is answer


def relation_question(relation: Relation, subject: str = 'red mug') -> Query:
    asked = rel(relation, ref('laptop'))
    return ask(QueryKind.VERIFY_RELATION, ref(subject), question_relation=asked)


@pytest.mark.parametrize(
    ('relation', 'detections', 'status', 'answer', 'reason'),
    [
        (
            Relation.LEFT_OF,
            by_phrase(MUG_LEFT, LAPTOP),
            ResultStatus.ANSWERED,
            True,
            'yes: red mug is left of',
        ),
        (
            Relation.RIGHT_OF,
            by_phrase(MUG_LEFT, LAPTOP),
            ResultStatus.ANSWERED,
            False,
            'no: red mug is not right of',
        ),
        (Relation.LEFT_OF, by_phrase(LAPTOP), ResultStatus.REJECTED, None, 'no red mug found'),
        (Relation.LEFT_OF, by_phrase(MUG_LEFT), ResultStatus.REJECTED, None, 'no laptop found'),
        (
            Relation.LEFT_OF,
            by_phrase(MUG_LEFT, MUG_RIGHT, LAPTOP),
            ResultStatus.AMBIGUOUS,
            None,
            'only some are left of the laptop',
        ),
    ],
)
def test_verify_relation(
    relation: Relation,
    detections: dict[str, list[Detection]],
    status: ResultStatus,
    answer: bool | None,
    reason: str,
) -> None:
    result = resolve(relation_question(relation), detections)
    assert result.status is status
    assert result.answer == answer
    assert reason in result.reason


def test_verify_relation_reports_evidence() -> None:
    result = resolve(relation_question(Relation.LEFT_OF), by_phrase(MUG_LEFT, LAPTOP))
    assert result.relations[-1].relation == 'left_of'
    assert result.relations[-1].score > 0.9
    assert result.relations[-1].object_box == LAPTOP.box.to_list()


def test_verify_relation_with_two_agreeing_subjects_answers() -> None:
    far_left = seen('red mug', (20, 200, 80, 260), 0.9, red=0.92)
    result = resolve(relation_question(Relation.LEFT_OF), by_phrase(MUG_LEFT, far_left, LAPTOP))
    assert (result.status, result.answer) == (ResultStatus.ANSWERED, True)


def test_verify_relation_without_relation_is_a_command_error() -> None:
    with pytest.raises(CommandError):
        Resolver().resolve(ask(QueryKind.VERIFY_RELATION, ref('cup')), by_phrase(*CUPS), FRAME)


def what_is(relation: Relation) -> Query:
    return ask(QueryKind.WHAT, ObjectRef(phrase='', relations=(rel(relation, ref('laptop')),)))


SCENE_OBJECTS = [
    seen(GENERIC_PHRASE, (100, 200, 160, 260), 0.7, label='red mug'),
    seen(GENERIC_PHRASE, (20, 220, 60, 260), 0.6, label='green ball'),
    seen(GENERIC_PHRASE, (302, 152, 498, 298), 0.8, label='laptop'),  # the anchor itself
    seen(GENERIC_PHRASE, (560, 200, 620, 260), 0.7, label='blue box'),
]


def test_what_lists_the_objects_that_satisfy_the_relation() -> None:
    result = resolve(what_is(Relation.LEFT_OF), by_phrase(*SCENE_OBJECTS, LAPTOP))
    assert result.status is ResultStatus.ANSWERED
    assert result.answer == 'green ball, red mug'
    assert [c.phrase for c in result.candidates] == ['green ball', 'red mug']


def test_what_never_answers_the_anchor_itself() -> None:
    result = resolve(what_is(Relation.NEAR), by_phrase(*SCENE_OBJECTS, LAPTOP))
    assert isinstance(result.answer, str)
    assert 'laptop' not in result.answer


def test_what_with_nothing_there_answers_nothing() -> None:
    result = resolve(what_is(Relation.ABOVE), by_phrase(*SCENE_OBJECTS, LAPTOP))
    assert (result.status, result.answer) == (ResultStatus.ANSWERED, 'nothing')
    assert result.reason.startswith('nothing is above the laptop')


def test_what_without_the_anchor_is_rejected() -> None:
    result = resolve(what_is(Relation.LEFT_OF), by_phrase(*SCENE_OBJECTS))
    assert result.status is ResultStatus.REJECTED
    assert result.reason == 'no laptop found'


@pytest.mark.parametrize(
    ('target', 'answer'),
    [
        (ref('cup', rel(Relation.CLOSEST_TO, ref('laptop'))), 'the rightmost cup'),
        (ref('cup', rel(Relation.FARTHEST_FROM, ref('laptop'))), 'the leftmost cup'),
        (ref('cup', ordinal=Ordinal(1, OrdinalOrder.LARGEST)), 'the largest cup'),
    ],
)
def test_which_answers_with_the_chosen_target(target: ObjectRef, answer: str) -> None:
    cups = [*CUPS[:2], seen('cup', (200, 100, 240, 140), 0.8)]
    result = resolve(ask(QueryKind.WHICH, target), by_phrase(*cups, LAPTOP))
    assert result.status is ResultStatus.ANSWERED
    assert result.answer == answer
    assert result.target is not None


def test_which_between_two_middle_ones_names_the_position() -> None:
    query = ask(QueryKind.WHICH, ref('cup', rel(Relation.CLOSEST_TO, ref('plate'))))
    plate = seen('plate', (250, 300, 320, 340))
    result = resolve(query, by_phrase(*CUPS, seen('cup', (600, 200, 630, 250), 0.8), plate))
    assert result.answer == 'the second cup from the left'


def test_describe_ref_reads_like_the_command() -> None:
    plate = ref('plate', rel(Relation.ON, ref('table')))
    target = ref('red mug', rel(Relation.BETWEEN, ref('laptop'), plate))
    assert describe_ref(target) == 'red mug between the laptop and the plate on the table'


# -- issue 11: negation, parts, the operator's viewpoint, destinations --------------------------


def _parsed(text: str) -> Query:
    from grounding_agent.core.parser import parse_command

    return parse_command(text)


CUP_ON_TRAY = seen('cup', (40, 200, 80, 250))
CUP_ALONE = seen('cup', (500, 200, 540, 250))
TRAY = seen('tray', (0, 180, 200, 280))


def test_a_negated_relation_keeps_the_candidates_it_does_not_hold_for() -> None:
    query = _parsed('the cup that is not on the tray')
    result = Resolver().resolve(query, {'cup': [CUP_ON_TRAY, CUP_ALONE], 'tray': [TRAY]}, FRAME)
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.box == CUP_ALONE.box.to_list()
    assert result.relations[0].relation == 'not_on'


def test_a_negated_relation_rejects_when_every_candidate_holds_it() -> None:
    query = _parsed('the cup that is not on the tray')
    result = Resolver().resolve(query, {'cup': [CUP_ON_TRAY], 'tray': [TRAY]}, FRAME)
    assert result.status is ResultStatus.REJECTED
    assert result.reason.startswith('every cup found is on the tray')


def test_a_negated_relation_to_an_absent_anchor_excludes_nothing() -> None:
    query = _parsed('the cup that is not on the tray')
    result = Resolver().resolve(query, {'cup': [CUP_ALONE], 'tray': []}, FRAME)
    assert result.status is ResultStatus.GROUNDED


def test_without_rules_out_candidates_that_have_the_part() -> None:
    query = _parsed('the cup without a lid')
    lid = seen('lid', (500, 195, 540, 210))
    result = Resolver().resolve(query, {'cup': [CUP_ON_TRAY, CUP_ALONE], 'lid': [lid]}, FRAME)
    assert result.target is not None
    assert result.target.box == CUP_ON_TRAY.box.to_list()
    every = Resolver().resolve(query, {'cup': [CUP_ALONE], 'lid': [lid]}, FRAME)
    assert (every.status, every.reason) == (ResultStatus.REJECTED, 'every cup found has a lid')


@pytest.mark.parametrize(
    ('text', 'viewpoint', 'chosen'),
    [
        ('the cup left of me', 'camera', CUP_ON_TRAY),
        ('the cup left of me', 'across', CUP_ALONE),
        ('the cup closest to me', 'camera', CUP_ON_TRAY),
        ('the cup closest to me', 'across', CUP_ALONE),
        # 'you' is the robot, i.e. the camera, whichever way the operator faces.
        ('the cup closest to you', 'across', CUP_ON_TRAY),
        ('the cup on your left', 'across', CUP_ON_TRAY),
    ],
)
def test_me_and_you_resolve_against_the_operators_viewpoint(
    text: str, viewpoint: str, chosen: Detection
) -> None:
    near = replace_point(CUP_ON_TRAY, 0.6)
    far = replace_point(CUP_ALONE, 1.4)
    config = ResolverConfig(viewpoint=viewpoint)  # type: ignore[arg-type]
    result = Resolver(config).resolve(
        _parsed(text), {'cup': [near, far]}, Frame(FRAME.image, intrinsics=CAMERA)
    )
    assert result.status is ResultStatus.GROUNDED, result.reason
    assert result.target is not None
    assert result.target.box == chosen.box.to_list()


def replace_point(detection: Detection, z: float) -> Detection:
    return detection.with_updates(point=CAMERA.deproject(*detection.box.center, z))


def test_the_destination_is_grounded_or_the_command_rejected() -> None:
    query = _parsed('put the cup on the tray')
    result = Resolver().resolve(query, {'cup': [CUP_ALONE], 'tray': [TRAY]}, FRAME)
    assert result.status is ResultStatus.GROUNDED
    assert result.destination is not None
    assert result.destination.box == TRAY.box.to_list()
    assert result.relations == []  # the tray is where it goes, not which cup
    absent = Resolver().resolve(query, {'cup': [CUP_ALONE], 'tray': []}, FRAME)
    assert absent.status is ResultStatus.REJECTED
    assert absent.reason.startswith('no tray found (the destination)')


@pytest.mark.parametrize(
    ('position', 'chosen'),
    [((-0.5, 0.0, 0.5), CUP_ON_TRAY), ((0.8, 0.0, 1.5), CUP_ALONE)],
)
def test_viewpoint_pose_judges_nearness_to_the_operator_in_3d(
    position: tuple[float, float, float], chosen: Detection
) -> None:
    x, y, z = position
    config = ResolverConfig(viewpoint='pose', operator_x=x, operator_y=y, operator_z=z)
    cups = [replace_point(CUP_ON_TRAY, 0.6), replace_point(CUP_ALONE, 1.4)]
    frame = Frame(FRAME.image, intrinsics=CAMERA)
    result = Resolver(config).resolve(_parsed('the cup closest to me'), {'cup': cups}, frame)
    assert result.status is ResultStatus.GROUNDED, result.reason
    assert result.target is not None
    assert result.target.box == chosen.box.to_list()
    assert 'closest to the operator' in result.reason
