"""Turn a parsed query and the backend's detections into exactly one `GroundingResult`.

Each candidate box scores detector score x attribute agreement x relation score (graded geometry
from `relations`). The resolver grounds the winner only when it clears every threshold in
`ResolverConfig`, reports `ambiguous` when the best ones are too close to call, and otherwise
answers `rejected` naming the part that failed (the object, an attribute, an anchor, a relation,
the ordinal or the verification). It is pure: no model calls except the optional `verifier`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations, product
from typing import Any, TypeVar

from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.errors import CommandError
from grounding_agent.core.geometry import metric_size, scaled_intrinsics, usable_intrinsics
from grounding_agent.core.relations import (
    SUPERLATIVE_RELATIONS,
    rank_ordinal,
    relation_score,
    select_ordinal,
    superlative_scores,
)
from grounding_agent.core.result import (
    GroundingResult,
    RelationEvidence,
    ResultStatus,
    StampModel,
    TargetModel,
)
from grounding_agent.core.types import (
    AttributeKind,
    Attributes,
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
)
from grounding_agent.core.vocabulary import (
    COLOUR_SYNONYMS,
    GENERIC_NOUNS,
    GENERIC_PHRASE,
    PERSON_WORDS,
    SHAPE_NOUNS,
    SIZE_SYNONYMS,
    counted,
)

__all__ = [
    'ANCHOR_CHOICES',
    'LONE_SIZE_SCORE',
    'RELATION_WORDS',
    'SAME_OBJECT_IOU',
    'Resolver',
    'Verifier',
    'describe_ref',
    'from_viewpoint',
]

#: Two boxes overlapping this much (IoU) are one physical object seen under two phrases: an
#: object is never its own anchor, and 'what is left of the laptop?' never answers 'laptop'.
SAME_OBJECT_IOU = 0.7

#: How many of the best anchor candidates a relation may use ("the cup left of the laptop" with
#: two laptops holds if it is left of either); the best-supported anchor is reported.
ANCHOR_CHOICES = 3

#: 'small' / 'large' is relative; with a single candidate there is nothing to compare with, so
#: the backend's own size judgement is used when it reports one, and otherwise the word neither
#: confirms nor refutes it: a neutral-ish agreement above the default attribute threshold that
#: still ranks below a candidate confirmed by comparison.
LONE_SIZE_SCORE = 0.7
#: Size agreement is logistic(SIZE_STEEPNESS * ln(area / geometric mean of the others' areas)):
#: twice the others' area gives 0.94 for 'large', 0.06 for 'small'.
SIZE_STEEPNESS = 4.0

#: A probability from the backend that a box shows a description, or None when it cannot tell.
Verifier = Callable[[Box, str], float | None]

#: How a relation is said in reasons and verification descriptions.
RELATION_WORDS: Mapping[Relation, str] = {
    Relation.LEFT_OF: 'left of',
    Relation.RIGHT_OF: 'right of',
    Relation.ABOVE: 'above',
    Relation.ON: 'on',
    Relation.BELOW: 'below',
    Relation.UNDER: 'under',
    Relation.IN_FRONT_OF: 'in front of',
    Relation.BEHIND: 'behind',
    Relation.NEXT_TO: 'next to',
    Relation.NEAR: 'near',
    Relation.BETWEEN: 'between',
    Relation.CLOSEST_TO: 'closest to',
    Relation.FARTHEST_FROM: 'farthest from',
    Relation.INSIDE: 'inside',
}

_T = TypeVar('_T')
_NTH = ('first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth')
_ORDER_WORDS = {
    OrdinalOrder.LEFT: 'from the left',
    OrdinalOrder.RIGHT: 'from the right',
    OrdinalOrder.TOP: 'from the top',
    OrdinalOrder.BOTTOM: 'from the bottom',
}
_SUPERLATIVE_WORDS = {
    OrdinalOrder.NEAREST: 'nearest',
    OrdinalOrder.FARTHEST: 'farthest',
    OrdinalOrder.LARGEST: 'largest',
    OrdinalOrder.SMALLEST: 'smallest',
}


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def _nth(index: int) -> str:
    if index == -1:
        return 'last'
    if index < -1:
        return f'{_nth(-index)} to last'
    return _NTH[index - 1] if index <= len(_NTH) else f'{index}th'


def _ordinal_words(ordinal: Ordinal) -> str:
    """'third', 'second from the left', 'largest', 'second nearest'."""
    if ordinal.order in _SUPERLATIVE_WORDS:
        word = _SUPERLATIVE_WORDS[ordinal.order]
        return word if ordinal.index == 1 else f'{_nth(ordinal.index)} {word}'
    nth = _nth(ordinal.index)
    return f'{nth} {_ORDER_WORDS[ordinal.order]}' if ordinal.order in _ORDER_WORDS else nth


def _ref_name(ref: ObjectRef) -> str:
    return ref.phrase or ref.noun or GENERIC_PHRASE


def describe_ref(ref: ObjectRef) -> str:
    """The referring expression in words: 'red mug left of the laptop on the desk'.

    Used as the description handed to a verifying backend and in reasons.
    """
    words = [_ref_name(ref)]
    for constraint in ref.relations:
        anchors = ' and '.join(f'the {describe_ref(anchor)}' for anchor in constraint.anchors)
        words.append(f'{RELATION_WORDS[constraint.relation]} {anchors}')
    return ' '.join(words)


def _detection_name(detection: Detection) -> str:
    return detection.label or detection.phrase or GENERIC_PHRASE


@dataclass(frozen=True)
class _RelationCheck:
    """One constraint judged for one candidate, with the anchor(s) that support it best."""

    constraint: RelationConstraint
    score: float
    anchors: tuple[_Candidate, ...] = ()


@dataclass(frozen=True)
class _Candidate:
    """A detection with every part of its score, so a rejection can say which part failed."""

    detection: Detection
    attributes: tuple[tuple[str, float], ...] = ()
    checks: tuple[_RelationCheck, ...] = ()

    @property
    def attribute(self) -> float:
        return math.prod(value for _word, value in self.attributes)

    @property
    def relation(self) -> float:
        return math.prod(check.score for check in self.checks)

    @property
    def score(self) -> float:
        return _clamp(self.detection.score) * self.attribute * self.relation

    @property
    def name(self) -> str:
        return _detection_name(self.detection)

    def is_same_object(self, other: _Candidate) -> bool:
        return (
            self.detection is other.detection
            or self.detection.box.iou(other.detection.box) >= SAME_OBJECT_IOU
        )

    def target(self) -> TargetModel:
        named = self.detection.with_updates(phrase=self.name)
        return TargetModel.from_detection(named, _clamp(self.score))

    def evidence(self) -> list[RelationEvidence]:
        return [_evidence(self, check) for check in self.checks]


def _evidence(subject: _Candidate, check: _RelationCheck) -> RelationEvidence:
    boxes = [anchor.detection.box.to_list() for anchor in check.anchors]
    negated = 'not_' if check.constraint.negated else ''
    return RelationEvidence(
        relation=negated + check.constraint.relation.value,
        subject=subject.name,
        object=' and '.join(anchor.name for anchor in check.anchors) or 'nothing',
        score=_clamp(check.score),
        object_box=boxes[0] if boxes else None,
        object_box_2=boxes[1] if len(boxes) > 1 else None,
    )


def _relation_clause(check: _RelationCheck) -> str:
    relation = check.constraint.relation
    anchors = ' and '.join(f'the {anchor.name}' for anchor in check.anchors) or 'anything'
    negated = 'not ' if check.constraint.negated else ''
    name = ('not_' if negated else '') + relation.value
    return f'{negated}{RELATION_WORDS[relation]} {anchors} ({name} {check.score:.2f})'


@dataclass
class _Resolution:
    """Every candidate of one ObjectRef: what matched, what was selected, and why not."""

    ref: ObjectRef
    found: list[_Candidate] = field(default_factory=list)  # attributes scored, before filtering
    comparable: list[_Candidate] = field(default_factory=list)  # attributes passed
    matches: list[_Candidate] = field(default_factory=list)  # every threshold passed, best first
    selected: list[_Candidate] = field(default_factory=list)  # matches after the ordinal
    failure: str = ''  # why `selected` is empty, in words


class _Scene:
    """The detections of one frame and the memo of resolved references, for one query."""

    def __init__(
        self,
        config: ResolverConfig,
        detections_by_phrase: Mapping[str, Sequence[Detection]],
        intrinsics: CameraIntrinsics | None,
    ) -> None:
        self.config = config
        self.intrinsics = intrinsics
        self.by_phrase = {
            phrase: [d for d in detections if d.score >= config.detection_threshold]
            for phrase, detections in detections_by_phrase.items()
        }
        self._memo: dict[ObjectRef, _Resolution] = {}

    def resolve(self, ref: ObjectRef, pool: Sequence[Detection] | None = None) -> _Resolution:
        if pool is not None:
            return self._resolve(ref, pool)
        if ref not in self._memo:
            self._memo[ref] = self._resolve(ref, self.by_phrase.get(ref.phrase, ()))
        return self._memo[ref]

    def _resolve(self, ref: ObjectRef, pool: Sequence[Detection]) -> _Resolution:
        name = _ref_name(ref)
        result = _Resolution(ref)
        if not pool:
            result.failure = f'no {name} found'
            return result
        result.found = self._score_attributes(ref, pool)
        threshold = self.config.attribute_threshold
        current = [
            c for c in result.found if all(value >= threshold for _w, value in c.attributes)
        ]
        result.comparable = list(current)
        if not current:
            result.failure = self._attribute_failure(ref, result.found)
            return result
        for part in (p for p in ref.without if p not in GENERIC_NOUNS):
            # 'the cup without a lid': no box of the part lies mostly inside the candidate.
            parts = self.by_phrase.get(part, ())
            kept = [c for c in current if not any(_part_of(p, c.detection) for p in parts)]
            if not kept:
                result.failure = f'every {_ref_name(ref)} found has a {part}'
                return result
            current = kept
        # Superlatives compare the candidates that satisfy everything else, so they go last.
        ordered = sorted(ref.relations, key=lambda c: c.relation in SUPERLATIVE_RELATIONS)
        for constraint in ordered:
            anchors = [self.resolve(anchor) for anchor in constraint.anchors]
            missing = self.missing_anchor(constraint, anchors)
            if missing and constraint.negated:
                continue  # 'not on the tray' and no tray in view: nothing excludes it
            if missing:
                result.failure = missing
                return result
            checks = self.check(constraint, current, anchors)
            judged = [replace(c, checks=(*c.checks, k)) for c, k in zip(current, checks)]
            current = [c for c in judged if c.checks[-1].score >= self.config.relation_threshold]
            if not current:
                result.failure = self._relation_failure(judged)
                return result
        # Two boxes on one physical object (a backend without NMS) are one match, not an
        # ambiguity and not two in a count: keep the better-scoring box.
        current = _distinct(current, lambda c: (c.detection.box, c.score))
        result.matches = [c for c in current if c.score >= self.config.accept_threshold]
        if not result.matches:
            result.failure = self._acceptance_failure(current[0])
            return result
        result.selected = self._apply_ordinal(ref, result)
        return result

    # -- attributes ---------------------------------------------------------------------------

    def _score_attributes(self, ref: ObjectRef, pool: Sequence[Detection]) -> list[_Candidate]:
        sizes = self._size_scores(ref, pool)
        shape = SHAPE_NOUNS.get(ref.shape, ref.shape) if ref.shape else None
        if shape is not None and SHAPE_NOUNS.get(ref.noun or '') == shape:
            # The shape is the noun's own ('cube', 'mug'): the detector was asked for exactly
            # that and its score already says how well the box fits; checking it again would
            # count the shape twice.
            shape = None
        candidates = []
        for detection, size in zip(pool, sizes):
            parts: list[tuple[str, float]] = []
            if ref.colour:
                colour = COLOUR_SYNONYMS.get(ref.colour, ref.colour)
                parts.append((colour, _judged(detection.attributes, AttributeKind.COLOUR, colour)))
            if shape is not None:
                parts.append((shape, _judged(detection.attributes, AttributeKind.SHAPE, shape)))
            if size is not None:
                parts.append(size)
            candidates.append(_Candidate(detection, tuple(parts)))
        return candidates

    def _size_scores(
        self, ref: ObjectRef, pool: Sequence[Detection]
    ) -> list[tuple[str, float] | None]:
        word = SIZE_SYNONYMS.get(ref.size or '', '')
        if word not in ('small', 'large'):
            return [None] * len(pool)
        if len(pool) == 1:
            # Nothing to compare with: the backend's own judgement of the object's apparent size
            # when it reports one (color_shape does), else neither confirmed nor refuted.
            lone = pool[0].attributes
            judged = bool(lone.get(AttributeKind.SIZE))
            size = _judged(lone, AttributeKind.SIZE, word) if judged else LONE_SIZE_SCORE
            return [(word, size)]
        # Compare like with like: metric areas when every candidate has depth, else pixel areas.
        metric = [metric_size(d, self.intrinsics) for d in pool]
        if all(m is not None for m in metric):
            areas = [m[0] * m[1] for m in metric if m is not None]
        else:
            areas = [d.box.area for d in pool]
        logs = [math.log(max(area, 1e-12)) for area in areas]
        sign = 1.0 if word == 'large' else -1.0
        scores: list[tuple[str, float] | None] = []
        for index, own in enumerate(logs):
            others = logs[:index] + logs[index + 1 :]
            ratio = own - sum(others) / len(others)
            scores.append((word, 1.0 / (1.0 + math.exp(-sign * SIZE_STEEPNESS * ratio))))
        return scores

    def _attribute_failure(self, ref: ObjectRef, found: Sequence[_Candidate]) -> str:
        closest = max(found, key=lambda c: c.score)
        threshold = self.config.attribute_threshold
        failed = ', '.join(f'{w} {v:.2f}' for w, v in closest.attributes if v < threshold)
        seen = _observed_name(closest.detection, ref)
        return f'no {_ref_name(ref)}; closest: {seen} {closest.detection.score:.2f} ({failed})'

    # -- relations ----------------------------------------------------------------------------

    def missing_anchor(
        self, constraint: RelationConstraint, anchors: Sequence[_Resolution]
    ) -> str:
        expected = 2 if constraint.relation is Relation.BETWEEN else 1
        if not anchors or len(anchors) > expected:
            raise CommandError(
                f'{constraint.relation.value} needs {expected} anchor(s), got {len(anchors)}'
            )
        for anchor in anchors:
            if not anchor.selected:
                return anchor.failure
        lone = len(anchors) == 1 and len(anchors[0].selected) < 2
        if constraint.relation is Relation.BETWEEN and lone:
            return f'only one {_ref_name(anchors[0].ref)}; between needs two'
        return ''

    def check(
        self,
        constraint: RelationConstraint,
        subjects: Sequence[_Candidate],
        anchors: Sequence[_Resolution],
    ) -> list[_RelationCheck]:
        """Judge `constraint` for each subject against the best anchor choices."""
        relation = constraint.relation
        if relation in SUPERLATIVE_RELATIONS:
            return self._check_superlative(constraint, subjects, anchors[0].selected[0])
        choices: list[tuple[_Candidate, ...]]
        if relation is Relation.BETWEEN:
            if len(anchors) == 2:
                pairs: Iterable[tuple[_Candidate, _Candidate]] = product(
                    anchors[0].selected[:ANCHOR_CHOICES], anchors[1].selected[:ANCHOR_CHOICES]
                )
            else:
                pairs = combinations(anchors[0].selected[:ANCHOR_CHOICES], 2)
            choices = [pair for pair in pairs if not pair[0].is_same_object(pair[1])]
        else:
            choices = [(anchor,) for anchor in anchors[0].selected[:ANCHOR_CHOICES]]
        checks = []
        for subject in subjects:
            best = _RelationCheck(constraint, 0.0)
            best_support = -1.0
            if constraint.negated:
                # 'not on the tray': it holds as far as no tray has the subject on it.
                best, best_support = _RelationCheck(constraint, 1.0), 2.0
            for choice in choices:
                if any(subject.is_same_object(anchor) for anchor in choice):
                    continue
                score = relation_score(
                    relation,
                    subject.detection,
                    [anchor.detection for anchor in choice],
                    intrinsics=self.intrinsics,
                )
                if constraint.negated:
                    if 1.0 - score < best.score:
                        best = _RelationCheck(constraint, 1.0 - score, choice)
                    continue
                # Prefer the relation backed by the most confident anchor, report its own score.
                support = score * math.prod(anchor.score for anchor in choice)
                if support > best_support:
                    best, best_support = _RelationCheck(constraint, score, choice), support
            checks.append(best)
        return checks

    def _check_superlative(
        self, constraint: RelationConstraint, subjects: Sequence[_Candidate], anchor: _Candidate
    ) -> list[_RelationCheck]:
        # The superlative is among the candidates that are not the anchor itself.
        rivals = [s for s in subjects if not s.is_same_object(anchor)]
        scores: dict[int, float] = {}
        if rivals:
            values = superlative_scores(
                constraint.relation,
                [s.detection for s in rivals],
                anchor.detection,
                intrinsics=self.intrinsics,
            )
            scores = {id(s): v for s, v in zip(rivals, values)}
        return [
            _RelationCheck(constraint, scores[id(s)], (anchor,))
            if id(s) in scores
            else _RelationCheck(constraint, 0.0)
            for s in subjects
        ]

    def _relation_failure(self, judged: Sequence[_Candidate]) -> str:
        best = max(judged, key=lambda c: c.score)
        check = best.checks[-1]
        if check.constraint.negated:
            held = replace(check, constraint=replace(check.constraint, negated=False))
            return f'every {best.name} found is {_relation_clause(held)}'
        return f'{best.name} found but it is not {_relation_clause(check)}'

    def _acceptance_failure(self, best: _Candidate) -> str:
        parts = [f'detector {best.detection.score:.2f}']
        if best.attributes:
            parts.append(f'attributes {best.attribute:.2f}')
        if best.checks:
            parts.append(f'relations {best.relation:.2f}')
        return (
            f'best {best.name} scores {best.score:.2f} ({" x ".join(parts)}), '
            f'below the acceptance threshold {self.config.accept_threshold:.2f}'
        )

    # -- ordinals -----------------------------------------------------------------------------

    def _apply_ordinal(self, ref: ObjectRef, result: _Resolution) -> list[_Candidate]:
        if ref.ordinal is None:
            return list(result.matches)
        detections = [c.detection for c in result.matches]
        index = select_ordinal(detections, ref.ordinal, intrinsics=self.intrinsics)
        if index is None:
            result.failure = (
                f'only {counted(len(detections), _ref_name(ref))}; '
                f'cannot take the {_ordinal_words(ref.ordinal)}'
            )
            return []
        return [result.matches[index]]


#: A part box this much inside an object box belongs to it ('the cup without a lid').
PART_INSIDE = 0.6


def _part_of(part: Detection, whole: Detection) -> bool:
    return part.box is not whole.box and part.box.intersection_over_self(whole.box) >= PART_INSIDE


# Where the operator ('me', 'us') and the robot ('you') are, as an ordering of the candidates
# in the camera image: the robot is the camera; the operator is at the camera ('camera') or
# faces it across the scene ('across'), which mirrors left and right and near and far.
_PERSON_ORDERS = {
    Relation.LEFT_OF: OrdinalOrder.LEFT,
    Relation.RIGHT_OF: OrdinalOrder.RIGHT,
    Relation.IN_FRONT_OF: OrdinalOrder.NEAREST,
    Relation.NEAR: OrdinalOrder.NEAREST,
    Relation.NEXT_TO: OrdinalOrder.NEAREST,
    Relation.CLOSEST_TO: OrdinalOrder.NEAREST,
    Relation.BEHIND: OrdinalOrder.FARTHEST,
    Relation.FARTHEST_FROM: OrdinalOrder.FARTHEST,
}
# Relations to the operator that are distances, judged in 3D under viewpoint 'pose'.
_NEARNESS = frozenset({Relation.CLOSEST_TO, Relation.FARTHEST_FROM, Relation.NEAR})
_MIRRORED = {
    OrdinalOrder.LEFT: OrdinalOrder.RIGHT,
    OrdinalOrder.RIGHT: OrdinalOrder.LEFT,
    OrdinalOrder.NEAREST: OrdinalOrder.FARTHEST,
    OrdinalOrder.FARTHEST: OrdinalOrder.NEAREST,
}


def from_viewpoint(ref: ObjectRef, viewpoint: str, operator: Detection | None = None) -> ObjectRef:
    """`ref` with its relations to 'me' / 'you' / 'us' turned into orderings of the camera
    image ('the cup left of me' is the leftmost cup when the operator stands at the camera, the
    rightmost when they face it across the scene). Orders relations have no use for people
    ('on me') are dropped; an ordinal said in words wins over one from a relation.

    `viewpoint` 'pose': the operator stands at `operator.point` (camera frame). Nearness to
    them stays a relation to that point (`operator`, judged in 3D); left and right mirror when
    they stand in front of the camera (z > 0), facing it. Without `operator` (no depth) nearness
    mirrors the same way.
    """
    kept: list[RelationConstraint] = []
    ordinal = ref.ordinal
    for constraint in ref.relations:
        person = [a.noun for a in constraint.anchors if a.noun in PERSON_WORDS]
        if not person:
            anchors = tuple(from_viewpoint(a, viewpoint, operator) for a in constraint.anchors)
            kept.append(replace(constraint, anchors=anchors))
            continue
        order = _PERSON_ORDERS.get(constraint.relation)
        if order is None or constraint.negated or ordinal is not None:
            continue
        operator_side = person[0] != 'you'
        pose = operator_side and viewpoint == 'pose' and operator is not None
        if pose and constraint.relation in _NEARNESS:
            kept.append(constraint)  # judged against the operator's point in 3D
            continue
        facing = viewpoint == 'across' or (
            viewpoint == 'pose'
            and operator is not None
            and operator.point is not None
            and operator.point[2] > 0.0
        )
        if operator_side and facing:
            order = _MIRRORED[order]
        ordinal = Ordinal(1, order)
    if ordinal is ref.ordinal and len(kept) == len(ref.relations):
        return replace(ref, relations=tuple(kept)) if kept else ref
    return replace(ref, relations=tuple(kept), ordinal=ordinal)


def _judged(attributes: Attributes, kind: AttributeKind, word: str) -> float:
    """Agreement with an attribute word, from what the backend itself reports.

    No attributes of that kind: the backend was conditioned on the whole phrase or cannot judge
    this kind, so it agrees (1.0). The word reported: its agreement. Other words of the same kind
    reported but not this one: the backend judged that attribute and saw something else (0.0).
    """
    judged = attributes.get(kind)
    if not judged:
        return 1.0
    return _clamp(judged[word]) if word in judged else 0.0


def _observed_name(detection: Detection, ref: ObjectRef) -> str:
    """What the backend saw instead: 'green bottle' for a bottle it judged mostly green."""
    base = detection.label or ref.noun or ref.phrase or GENERIC_PHRASE
    colours = detection.attributes.get(AttributeKind.COLOUR, {})
    if colours and not any(word in colours for word in base.split()):
        return f'{max(colours, key=lambda c: colours[c])} {base}'
    return base


class Resolver:
    """Resolve one parsed `Query` against the detections of one frame (see module docstring)."""

    def __init__(self, config: ResolverConfig | None = None) -> None:
        self.config = config if config is not None else ResolverConfig()

    def resolve(
        self,
        query: Query,
        detections_by_phrase: Mapping[str, Sequence[Detection]],
        frame: Frame,
        *,
        verifier: Verifier | None = None,
    ) -> GroundingResult:
        """The one result for `query`; `detections_by_phrase` maps every query phrase to boxes.

        WHAT questions also read the boxes under GENERIC_PHRASE. `verifier`, when given and
        `config.verify` is on, confirms the winner. Raises CommandError for a query that names
        no object (a parser bug); every other outcome is a result.
        """
        if query.kind is not QueryKind.WHAT and not query.target.phrase:
            raise CommandError('the command names no object to look for')
        intrinsics = (
            scaled_intrinsics(frame.intrinsics, frame.width, frame.height)
            if frame.intrinsics is not None and usable_intrinsics(frame.intrinsics)
            else None
        )
        operator = self._operator(query, detections_by_phrase, intrinsics)
        target = from_viewpoint(query.target, self.config.viewpoint, operator)
        query = replace(query, target=target)
        if operator is not None:
            detections_by_phrase = {
                **detections_by_phrase,
                **{person: [operator] for person in PERSON_WORDS - {'you'}},
            }
        scene = _Scene(self.config, detections_by_phrase, intrinsics)
        context = _Context(query, frame, self.config, verifier if self.config.verify else None)
        handlers = {
            QueryKind.COUNT: _count,
            QueryKind.EXISTS: _exists,
            QueryKind.VERIFY_RELATION: _verify_relation,
            QueryKind.WHAT: _what,
        }
        return handlers.get(query.kind, _locate)(context, scene)

    def _operator(
        self,
        query: Query,
        detections_by_phrase: Mapping[str, Sequence[Detection]],
        intrinsics: CameraIntrinsics | None,
    ) -> Detection | None:
        """The operator as a 3D anchor under viewpoint 'pose', when the candidates have depth."""
        if self.config.viewpoint != 'pose' or intrinsics is None:
            return None
        candidates = detections_by_phrase.get(query.target.phrase, ())
        if not candidates or any(d.point is None for d in candidates):
            return None
        return _operator_detection(self.config.operator_position, intrinsics)


def _operator_detection(
    position: Sequence[float], intrinsics: CameraIntrinsics
) -> Detection | None:
    """The operator as an anchor at `position` (camera frame, metres), boxed where the camera
    would see them; None when they stand in the camera's plane."""
    x, y, z = (float(v) for v in position)
    if abs(z) < 1e-6:
        return None
    u = intrinsics.fx * x / z + intrinsics.cx
    v = intrinsics.fy * y / z + intrinsics.cy
    box = Box(u - 1.0, v - 1.0, u + 1.0, v + 1.0)
    return Detection(box, 'me', 1.0, point=(x, y, z), label='operator')


@dataclass(frozen=True)
class _Context:
    query: Query
    frame: Frame
    config: ResolverConfig
    verifier: Verifier | None

    def result(self, status: ResultStatus, reason: str, **fields: Any) -> GroundingResult:
        return GroundingResult(
            command=self.query.text,
            kind=self.query.kind.value,
            status=status,
            reason=reason,
            stamp=StampModel.from_stamp(self.frame.stamp),
            frame_id=self.frame.frame_id,
            camera=self.frame.camera,
            **fields,
        )

    def verify(self, candidate: _Candidate) -> float | None:
        if self.verifier is None:
            return None
        probability = self.verifier(candidate.detection.box, describe_ref(self.query.target))
        if probability is None or not math.isfinite(probability):
            return None
        return _clamp(probability)

    def ambiguous(self, contenders: Sequence[_Candidate], detail: str) -> GroundingResult:
        """`ambiguous` with every contender, so the planner can ask the operator which one."""
        name = counted(len(contenders), _ref_name(self.query.target))
        return self.result(
            ResultStatus.AMBIGUOUS,
            f'{name} match almost equally {detail}; say which one',
            candidates=[c.target() for c in contenders],
        )

    def contenders(self, matches: Sequence[_Candidate]) -> list[_Candidate]:
        best = matches[0].score
        return [c for c in matches if best - c.score <= self.config.ambiguity_margin]


def _grounded_reason(candidate: _Candidate, extra: str = '') -> str:
    clauses = [_relation_clause(check) for check in candidate.checks]
    relation_text = f' is {" and ".join(clauses)}' if clauses else ''
    return f'{candidate.name} ({candidate.score:.2f}){relation_text}{extra}'


def _position(chosen: _Candidate, resolution: _Resolution) -> str:
    """A short description that tells the chosen one apart: 'the second cup from the left'."""
    name = _ref_name(resolution.ref)
    ref = resolution.ref
    if ref.ordinal is not None:
        return f'the {_ordinal_words(ref.ordinal)} {name}'
    peers = resolution.comparable
    if len(peers) <= 1:
        return f'the only {name}'
    order = rank_ordinal([c.detection for c in peers], OrdinalOrder.LEFT)
    rank = next((r for r, i in enumerate(order) if peers[i].detection is chosen.detection), 0)
    if rank == 0:
        return f'the leftmost {name}'
    if rank == len(peers) - 1:
        return f'the rightmost {name}'
    return f'the {_nth(rank + 1)} {name} from the left'


def _locate(context: _Context, scene: _Scene) -> GroundingResult:
    """LOCATE, TRACK and WHICH: one target, or a rejection / ambiguity saying why not."""
    query = context.query
    resolution = scene.resolve(query.target)
    if not resolution.selected:
        return context.result(ResultStatus.REJECTED, resolution.failure)
    if query.target.plural and query.target.ordinal is None and query.kind is not QueryKind.WHICH:
        best = resolution.selected[0]
        reason = f'{counted(len(resolution.selected), _ref_name(query.target))}; best: '
        return context.result(
            ResultStatus.GROUNDED,
            reason + _grounded_reason(best),
            target=best.target(),
            relations=best.evidence(),
            candidates=[c.target() for c in resolution.selected],
        )
    contenders = context.contenders(resolution.selected)
    probabilities = [context.verify(c) for c in contenders]
    description = describe_ref(query.target)
    confirmed = [
        c
        for c, p in zip(contenders, probabilities)
        if p is None or p >= context.config.verify_threshold
    ]
    if not confirmed:
        shown = ', '.join(f'{p:.2f}' for p in probabilities if p is not None)
        return context.result(
            ResultStatus.REJECTED,
            f'verification failed: the backend gives {shown} that the box shows '
            f"'{description}' (verify_threshold {context.config.verify_threshold:.2f})",
            candidates=[c.target() for c in contenders],
        )
    if len(confirmed) > 1:
        scores = ', '.join(f'{c.score:.2f}' for c in confirmed)
        margin = context.config.ambiguity_margin
        return context.ambiguous(confirmed, f'({scores}, margin {margin:.2f})')
    winner = confirmed[0]
    probability = probabilities[contenders.index(winner)]
    extra = ''
    if query.target.ordinal is not None:
        extra += f', the {_ordinal_words(query.target.ordinal)} of {len(resolution.matches)}'
    if probability is not None:
        extra += f'; verified {probability:.2f}'
    if len(contenders) > 1:
        extra += f' ({len(contenders) - 1} close rival(s) failed verification)'
    reason = _grounded_reason(winner, extra)
    fields: dict[str, Any] = {'target': winner.target(), 'relations': winner.evidence()}
    if query.destination is not None:
        # 'put the block in the drawer': without the drawer there is nothing to do.
        place = scene.resolve(query.destination.anchors[0])
        if not place.selected:
            return context.result(
                ResultStatus.REJECTED,
                f'{place.failure} (the destination); the target: {reason}',
                **fields,
            )
        best_place = place.selected[0]
        fields['destination'] = best_place.target()
        reason += (
            f'; destination: {RELATION_WORDS[query.destination.relation]} the '
            f'{best_place.name} ({best_place.score:.2f})'
        )
    if query.kind is QueryKind.WHICH:
        answer = _position(winner, resolution)
        return context.result(
            ResultStatus.ANSWERED, f'{answer}: {reason}', answer=answer, **fields
        )
    return context.result(ResultStatus.GROUNDED, reason, **fields)


def _count(context: _Context, scene: _Scene) -> GroundingResult:
    """COUNT: how many match every threshold; 0 is an answer, not a rejection."""
    resolution = scene.resolve(context.query.target)
    name = _ref_name(context.query.target)
    matches = resolution.matches
    reason = f'counted {counted(len(matches), name)}'
    if not matches:
        reason += f': {resolution.failure}'
    return context.result(
        ResultStatus.ANSWERED,
        reason,
        answer=len(matches),
        candidates=[c.target() for c in matches],
    )


def _exists(context: _Context, scene: _Scene) -> GroundingResult:
    """EXISTS: yes with the evidence boxes, or no with the reason (which part is missing)."""
    resolution = scene.resolve(context.query.target)
    matches = resolution.matches
    if not matches:
        return context.result(ResultStatus.ANSWERED, f'no: {resolution.failure}', answer=False)
    best = matches[0]
    return context.result(
        ResultStatus.ANSWERED,
        f'yes: {_grounded_reason(best)}',
        answer=True,
        target=best.target(),
        relations=best.evidence(),
        candidates=[c.target() for c in matches],
    )


def _verify_relation(context: _Context, scene: _Scene) -> GroundingResult:
    """VERIFY_RELATION: does the asked relation hold for the subject? Absent parts: rejected."""
    query = context.query
    asked = query.question_relation
    if asked is None:
        raise CommandError('a relation question needs the relation it asks about')
    subject = scene.resolve(query.target)
    if not subject.selected:
        return context.result(ResultStatus.REJECTED, subject.failure)
    anchors = [scene.resolve(anchor) for anchor in asked.anchors]
    missing = scene.missing_anchor(asked, anchors)
    if missing:
        return context.result(ResultStatus.REJECTED, missing)
    # Superlatives are judged among every matching subject, the others one by one.
    pool = subject.matches if asked.relation in SUPERLATIVE_RELATIONS else subject.selected
    checks = dict(zip((id(c) for c in pool), scene.check(asked, pool, anchors)))
    contenders = context.contenders(subject.selected)
    verdicts = {checks[id(c)].score >= context.config.relation_threshold for c in contenders}
    words = f'{RELATION_WORDS[asked.relation]} the {_describe_anchors(asked)}'
    if len(verdicts) > 1:
        return context.ambiguous(contenders, f'and only some are {words}')
    best = contenders[0]
    check = checks[id(best)]
    holds = check.score >= context.config.relation_threshold
    verdict = f'yes: {best.name} is' if holds else f'no: {best.name} is not'
    return context.result(
        ResultStatus.ANSWERED,
        f'{verdict} {_relation_clause(check)}',
        answer=holds,
        target=best.target(),
        relations=[*best.evidence(), _evidence(best, check)],
    )


def _describe_anchors(constraint: RelationConstraint) -> str:
    return ' and the '.join(describe_ref(anchor) for anchor in constraint.anchors)


def _what(context: _Context, scene: _Scene) -> GroundingResult:
    """WHAT: every object (GENERIC_PHRASE boxes) satisfying the target's relations, by name."""
    target = context.query.target
    for constraint in target.relations:
        anchors = [scene.resolve(anchor) for anchor in constraint.anchors]
        missing = scene.missing_anchor(constraint, anchors)
        if missing:
            return context.result(ResultStatus.REJECTED, missing)
    phrases = [p for p in dict.fromkeys((GENERIC_PHRASE, target.phrase)) if p]
    found = [d for phrase in phrases for d in scene.by_phrase.get(phrase, ())]
    pool = _distinct(found, lambda d: (d.box, d.score))
    resolution = scene.resolve(target, pool=pool)
    asked = ' and '.join(
        f'{RELATION_WORDS[c.relation]} the {_describe_anchors(c)}' for c in target.relations
    )
    where = f' {asked}' if asked else ' in view'
    if not resolution.matches:
        return context.result(
            ResultStatus.ANSWERED,
            f'nothing is{where} ({resolution.failure})',
            answer='nothing',
        )
    order = rank_ordinal([c.detection for c in resolution.matches], OrdinalOrder.LEFT)
    ordered = [resolution.matches[i] for i in order]
    answer = ', '.join(c.name for c in ordered)
    return context.result(
        ResultStatus.ANSWERED,
        f'{counted(len(ordered), "object")}{where}: {answer}',
        answer=answer,
        candidates=[c.target() for c in ordered],
    )


def _distinct(items: Sequence[_T], box_and_score: Callable[[_T], tuple[Box, float]]) -> list[_T]:
    """One item per physical object, best score first: of boxes that coincide, the best one."""
    kept: list[_T] = []
    kept_boxes: list[Box] = []
    for item in sorted(items, key=lambda i: box_and_score(i)[1], reverse=True):
        box = box_and_score(item)[0]
        if all(box.iou(other) < SAME_OBJECT_IOU for other in kept_boxes):
            kept.append(item)
            kept_boxes.append(box)
    return kept
