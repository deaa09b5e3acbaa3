"""The planner-facing result message: a versioned JSON document defined by pydantic models.

One command gets exactly one `GroundingResult`; a standing query gets one per processed frame.
The JSON Schema of `GroundingResult` is shipped as `grounding_agent/schema/result.schema.json`
and printed by `grounding-agent schema`.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from grounding_agent.core.types import Box, Detection, Stamp

__all__ = [
    'SCHEMA_ID',
    'STANDING_REQUEST_ID',
    'BoxSource',
    'GroundingResult',
    'RelationEvidence',
    'ResultStatus',
    'StampModel',
    'TargetModel',
    'TrackState',
    'error_result',
    'result_json_schema',
]

SCHEMA_ID: Final = 'grounding_agent/result/2'
#: request_id of the results of the standing query (commands echo their own, or '').
STANDING_REQUEST_ID: Final = 'standing'

BoxList = Annotated[
    list[float], Field(min_length=4, max_length=4, description='[x1, y1, x2, y2] px')
]
PointList = Annotated[
    list[float], Field(min_length=3, max_length=3, description='[x, y, z] metres, camera frame')
]


class ResultStatus(str, Enum):
    GROUNDED = 'grounded'  # one target found
    ANSWERED = 'answered'  # a question answered: `answer` holds the value
    REJECTED = 'rejected'  # nothing matches; `reason` names the part that failed
    AMBIGUOUS = 'ambiguous'  # two or more candidates too close to call; all in `candidates`
    ERROR = 'error'  # bad input or a failing backend; `reason` says what to fix


class TrackState(str, Enum):
    SEARCHING = 'searching'
    TRACKING = 'tracking'
    OCCLUDED = 'occluded'
    LOST = 'lost'
    REJECTED = 'rejected'


class BoxSource(str, Enum):
    """Where a box comes from. Anything but `model` is a prediction between model answers."""

    MODEL = 'model'  # the model saw the object in this very frame
    IMAGE = 'image'  # predicted, then placed by matching the model's last view in this image
    MOTION = 'motion'  # predicted from the object's motion alone


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra='forbid')


class StampModel(_Frozen):
    sec: int = 0
    nanosec: Annotated[int, Field(ge=0, lt=1_000_000_000)] = 0

    @classmethod
    def from_stamp(cls, stamp: Stamp) -> StampModel:
        return cls(sec=stamp.sec, nanosec=stamp.nanosec)


class TargetModel(_Frozen):
    """One object the answer points at."""

    phrase: str
    box: BoxList
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    track_id: str | None = None
    point: PointList | None = None
    source: BoxSource = Field(
        default=BoxSource.MODEL,
        description='model: seen by the model in this frame; image / motion: predicted',
    )
    since_seen_s: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0, description='seconds since the model last saw the object (0 for model)'
    )

    @classmethod
    def from_detection(
        cls,
        detection: Detection,
        score: float | None = None,
        *,
        source: BoxSource = BoxSource.MODEL,
        since_seen_s: float = 0.0,
    ) -> TargetModel:
        value = detection.score if score is None else score
        return cls(
            phrase=detection.phrase,
            box=detection.box.to_list(),
            score=min(1.0, max(0.0, float(value))),
            track_id=detection.track_id,
            point=list(detection.point) if detection.point is not None else None,
            source=source,
            since_seen_s=round(max(0.0, since_seen_s), 4),
        )

    def to_box(self) -> Box:
        return Box.from_list(self.box)


class RelationEvidence(_Frozen):
    """How well one relation between the target and an anchor holds (graded, 0..1)."""

    relation: str
    subject: str
    object: str
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    object_box: BoxList | None = None
    object_box_2: BoxList | None = Field(
        default=None, description='second anchor box, for "between"'
    )


class GroundingResult(_Frozen):
    """The message on the planner topic (std_msgs/String carrying this JSON)."""

    schema_: Literal['grounding_agent/result/2'] = Field(default=SCHEMA_ID, alias='schema')
    request_id: str = ''
    command: str = ''
    kind: str = Field(default='locate', description='query kind: locate, track, count, ...')
    status: ResultStatus
    reason: Annotated[str, Field(min_length=1, description='why, in words a person can read')]
    stamp: StampModel | None = None
    frame_id: str = ''
    camera: str = ''
    target: TargetModel | None = None
    destination: TargetModel | None = Field(
        default=None,
        description="where the action puts the target ('put the block in the drawer': the "
        'drawer), grounded like the target; null when the command names no destination',
    )
    relations: list[RelationEvidence] = Field(default_factory=list)
    unrecognised: list[str] = Field(
        default_factory=list,
        description='error only: the phrases the backend cannot recognise at all (a closed '
        "vocabulary: color_shape knows shapes, not 'laptop'); not the same as absent",
    )
    answer: bool | int | str | None = None
    candidates: list[TargetModel] = Field(
        default_factory=list,
        description='ambiguous: the contenders; answered: the evidence (counted / matching boxes)',
    )
    track_state: TrackState | None = None
    latency_ms: dict[str, float] = Field(default_factory=dict)
    backend: str = ''

    model_config = ConfigDict(frozen=True, extra='forbid', populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> GroundingResult:
        return cls.model_validate_json(text)


def error_result(
    reason: str, *, request_id: str = '', command: str = '', kind: str = 'locate', **fields: Any
) -> GroundingResult:
    """An `error` result; `reason` should say what the sender can fix."""
    return GroundingResult(
        request_id=request_id,
        command=command,
        kind=kind,
        status=ResultStatus.ERROR,
        reason=reason or 'unknown error',
        **fields,
    )


def result_json_schema() -> dict[str, Any]:
    schema = GroundingResult.model_json_schema(by_alias=True)
    schema['$id'] = SCHEMA_ID
    return schema


def result_json_schema_text() -> str:
    return json.dumps(result_json_schema(), indent=2, sort_keys=True) + '\n'


def shipped_schema_path() -> Path:
    """The JSON Schema file shipped in the package (regenerate: grounding-agent schema)."""
    return Path(__file__).resolve().parent.parent / 'schema' / 'result.schema.json'
