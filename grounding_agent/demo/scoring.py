"""Score the agent's answers against the simulator's ground truth of the same frame.

A result is matched to the truth published with the image it was computed on (same stamp). The
expected answer is computed here from that truth, never written into the script: the box of the
named object (correct at IoU >= the threshold), the number of visible objects with the given
attributes, whether a relation holds between two objects' centres, or that nothing matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grounding_agent.core.result import GroundingResult, ResultStatus, TrackState
from grounding_agent.core.types import Box, Stamp
from grounding_agent.demo.errors import DemoError
from grounding_agent.demo.script import Expectation

__all__ = ['TrueObject', 'TruthFrame', 'Verdict', 'relation_holds', 'score_result']


@dataclass(frozen=True)
class TrueObject:
    name: str
    shape: str
    colour: str
    size: str
    box: Box | None
    point_camera: tuple[float, float, float]

    def has(self, attributes: Sequence[tuple[str, str]]) -> bool:
        return all(getattr(self, key) == value for key, value in attributes)


@dataclass(frozen=True)
class TruthFrame:
    """The ground truth of one frame, as `sim.frame_truth.truth_document` wrote it."""

    stamp: Stamp
    objects: tuple[TrueObject, ...]
    fx: float
    cx: float

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> TruthFrame:
        objects = tuple(
            TrueObject(
                name=str(o['name']),
                shape=str(o['shape']),
                colour=str(o['colour']),
                size=str(o['size']),
                box=None if o['box'] is None else Box.from_list(o['box']),
                point_camera=(
                    float(o['point_camera'][0]),
                    float(o['point_camera'][1]),
                    float(o['point_camera'][2]),
                ),
            )
            for o in document['objects']
        )
        stamp = document['stamp']
        intrinsics = document['intrinsics']
        return cls(
            stamp=Stamp(sec=int(stamp['sec']), nanosec=int(stamp['nanosec'])),
            objects=objects,
            fx=float(intrinsics['fx']),
            cx=float(intrinsics['cx']),
        )

    def object(self, name: str) -> TrueObject:
        for candidate in self.objects:
            if candidate.name == name:
                return candidate
        raise DemoError(f'no object named {name!r} in the ground truth')

    def visible_matching(self, attributes: Sequence[tuple[str, str]]) -> list[TrueObject]:
        return [o for o in self.objects if o.box is not None and o.has(attributes)]

    def image_x(self, name: str) -> float:
        """Column of the object's centre in the image (the viewer's left / right)."""
        x, _, z = self.object(name).point_camera
        return self.cx + self.fx * x / z


def relation_holds(truth: TruthFrame, subject: str, relation: str, anchor: str) -> bool:
    """Left / right from the image columns of the centres; front / behind from their depth."""
    if relation == 'left_of':
        return truth.image_x(subject) < truth.image_x(anchor)
    if relation == 'right_of':
        return truth.image_x(subject) > truth.image_x(anchor)
    depth_subject = truth.object(subject).point_camera[2]
    depth_anchor = truth.object(anchor).point_camera[2]
    if relation == 'in_front_of':
        return depth_subject < depth_anchor
    if relation == 'behind':
        return depth_subject > depth_anchor
    raise DemoError(f'unknown relation {relation!r}')


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right. `correct` is None when no truth of its frame was at hand."""

    correct: bool | None
    expected: str
    iou: float | None = None

    @property
    def mark(self) -> str:
        return {True: 'yes', False: 'NO', None: '?'}[self.correct]


def _box_text(box: Box) -> str:
    return '[' + ','.join(f'{v:.0f}' for v in box.to_list()) + ']'


def _attribute_text(attributes: Sequence[tuple[str, str]]) -> str:
    return ' '.join(value for _, value in attributes)


def score_result(
    result: GroundingResult, expect: Expectation, truth: TruthFrame | None, *, iou: float
) -> Verdict:
    """Judge `result` against `truth` (the frame it answered on) as `expect` says."""
    if truth is None:
        return Verdict(None, f'{expect.describe()} (no ground truth for the frame)')
    status = result.status
    if expect.kind == 'target':
        true_box = truth.object(expect.target).box
        if true_box is None:
            # Hidden: nothing may be claimed as seen. A tracker coasting on the object's motion
            # says so (`occluded`), which is right; a box claimed as seen (`tracking`) is not.
            coasting = result.track_state is TrackState.OCCLUDED
            return Verdict(
                status is ResultStatus.REJECTED or coasting,
                f'{expect.target} hidden: rejected, or occluded while tracked',
            )
        overlap = result.target.to_box().iou(true_box) if result.target is not None else 0.0
        correct = status is ResultStatus.GROUNDED and overlap >= iou
        return Verdict(correct, f'{expect.target} {_box_text(true_box)}', iou=overlap)
    if expect.kind == 'count':
        count = len(truth.visible_matching(expect.attributes))
        answer = result.answer
        correct = (
            status is ResultStatus.ANSWERED
            and isinstance(answer, int)
            and not isinstance(answer, bool)
            and answer == count
        )
        return Verdict(correct, str(count))
    if expect.kind == 'relation':
        holds = relation_holds(truth, expect.subject, expect.relation, expect.anchor)
        correct = status is ResultStatus.ANSWERED and result.answer is holds
        return Verdict(correct, 'yes' if holds else 'no')
    # absent: right only when rejected and the scene really has no such object.
    present = truth.visible_matching(expect.attributes)
    if present:
        names = ', '.join(o.name for o in present)
        return Verdict(False, f'script wrong: the scene has {names}')
    return Verdict(
        status is ResultStatus.REJECTED, f'rejected (no {_attribute_text(expect.attributes)})'
    )
