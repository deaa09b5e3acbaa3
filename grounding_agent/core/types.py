"""Core value types of the grounding agent: boxes, frames, detections and parsed queries.

Everything here is immutable and free of ROS and of model libraries, so it can cross threads
and be tested as plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    'AttributeKind',
    'Attributes',
    'Box',
    'CameraIntrinsics',
    'Detection',
    'Frame',
    'ObjectRef',
    'Ordinal',
    'OrdinalOrder',
    'Query',
    'QueryKind',
    'Relation',
    'RelationConstraint',
    'Stamp',
]


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in image pixels, (x1, y1) top-left, (x2, y2) bottom-right, x2 >= x1."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'box coordinates must be finite, got {values}')
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f'box corners are swapped: {values}')

    @classmethod
    def from_list(cls, values: Any) -> Box:
        x1, y1, x2, y2 = (float(v) for v in values)
        return cls(x1, y1, x2, y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def intersection_over_self(self, other: Box) -> float:
        """Fraction of this box's area that lies inside `other` (1.0 = fully inside)."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        return (ix * iy) / self.area if self.area > 0 else 0.0

    def clip(self, width: float, height: float) -> Box:
        return Box(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )

    def scaled(self, sx: float, sy: float) -> Box:
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def to_list(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]


@dataclass(frozen=True, slots=True)
class Stamp:
    """Time of a frame, as in builtin_interfaces/Time."""

    sec: int = 0
    nanosec: int = 0

    @classmethod
    def from_seconds(cls, seconds: float) -> Stamp:
        sec = math.floor(seconds)
        return cls(int(sec), round((seconds - sec) * 1e9) % 1_000_000_000)

    def to_seconds(self) -> float:
        return self.sec + self.nanosec * 1e-9

    def to_nanoseconds(self) -> int:
        return self.sec * 1_000_000_000 + self.nanosec


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """Pinhole intrinsics (from sensor_msgs/CameraInfo K) of the colour image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def deproject(self, u: float, v: float, depth_m: float) -> tuple[float, float, float]:
        """Pixel + depth -> 3D point in the camera optical frame (x right, y down, z forward)."""
        return ((u - self.cx) * depth_m / self.fx, (v - self.cy) * depth_m / self.fy, depth_m)


@dataclass(frozen=True, eq=False)
class Frame:
    """One colour image, optionally with an aligned depth image (metres) and intrinsics.

    `image` is HxWx3 uint8 RGB. `depth` is HxW float32 metres aligned to `image`; NaN or 0 means
    unknown.
    """

    image: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32] | None = None
    intrinsics: CameraIntrinsics | None = None
    stamp: Stamp = field(default_factory=Stamp)
    frame_id: str = ''
    camera: str = ''

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class AttributeKind(str, Enum):
    """The kinds of attribute a backend may judge by itself for each box."""

    COLOUR = 'colour'  # basic colour names ('red')
    SHAPE = 'shape'  # coarse shape classes ('cube', 'cylinder')
    SIZE = 'size'  # apparent size ('small', 'large')


#: What a backend judged of one box: per kind of attribute, each word it judged -> 0..1 agreement.
Attributes = Mapping[AttributeKind, Mapping[str, float]]


@dataclass(frozen=True, eq=False)
class Detection:
    """One scored box for one phrase, as a backend reports it.

    `attributes` holds, per kind of attribute the backend can judge itself, the agreement of each
    word of that kind, e.g. {COLOUR: {'red': 0.92, 'blue': 0.01}, SHAPE: {'cube': 0.8}}; a kind
    that is missing was not judged, and backends that condition on the whole phrase leave it
    empty. `embedding` is an appearance feature for re-identification. `point` is
    the 3D centre in the camera frame (metres) when depth is known.
    """

    box: Box
    phrase: str
    score: float
    attributes: Attributes = field(default_factory=dict)
    embedding: npt.NDArray[np.float32] | None = None
    point: tuple[float, float, float] | None = None
    track_id: str | None = None
    label: str = ''

    def with_updates(self, **changes: Any) -> Detection:
        return replace(self, **changes)


class Relation(str, Enum):
    """Spatial relations, from the viewer's perspective ('front' = closer to the camera)."""

    LEFT_OF = 'left_of'
    RIGHT_OF = 'right_of'
    ABOVE = 'above'
    ON = 'on'  # also "on top of"
    BELOW = 'below'
    UNDER = 'under'
    IN_FRONT_OF = 'in_front_of'
    BEHIND = 'behind'
    NEXT_TO = 'next_to'
    NEAR = 'near'
    BETWEEN = 'between'  # two anchors
    CLOSEST_TO = 'closest_to'
    FARTHEST_FROM = 'farthest_from'
    INSIDE = 'inside'


class OrdinalOrder(str, Enum):
    """The order in which candidates are counted for 'the second from the left', 'the largest'."""

    LEFT = 'left'  # from the left: leftmost first
    RIGHT = 'right'
    TOP = 'top'
    BOTTOM = 'bottom'
    NEAREST = 'nearest'  # nearest the camera first
    FARTHEST = 'farthest'
    LARGEST = 'largest'
    SMALLEST = 'smallest'
    ORDER = 'order'  # bare 'the second cup': reading order, left to right


@dataclass(frozen=True, slots=True)
class Ordinal:
    """Pick the `index`-th candidate (1-based; -1 = last) in `order`."""

    index: int
    order: OrdinalOrder


@dataclass(frozen=True)
class ObjectRef:
    """A noun phrase referring to objects: 'the second small red mug left of the laptop'.

    `noun` is the head noun as written ('mug'), or None for 'the one' / 'something' / 'what'.
    `phrase` is the text handed to the detector: the noun with every adjective the parser kept,
    including words it does not know ('chipped red mug'). `colour`, `size` and `shape` are the
    attributes the resolver can check itself; `modifiers` the other adjectives, kept for the
    model. `colours` are the colour words as said ('maroon', 'white' and 'pink'), `colour` the
    one backend colour they map to (None when they name several). `without` lists the parts the
    object must not have ('the cup without a lid': 'lid').
    """

    phrase: str
    noun: str | None = None
    colour: str | None = None
    size: str | None = None
    shape: str | None = None
    modifiers: tuple[str, ...] = ()
    relations: tuple[RelationConstraint, ...] = ()
    ordinal: Ordinal | None = None
    plural: bool = False
    colours: tuple[str, ...] = ()
    without: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelationConstraint:
    """`relation` must hold between the referring object (subject) and the anchor(s).

    BETWEEN has two anchors; every other relation has one. CLOSEST_TO / FARTHEST_FROM are
    superlative: among the candidates, the one closest to / farthest from the anchor. A
    `negated` constraint must not hold.
    """

    relation: Relation
    anchors: tuple[ObjectRef, ...]
    negated: bool = False  # 'the cup that is not on the tray'


class QueryKind(str, Enum):
    LOCATE = 'locate'  # find / locate / where is / point to / pick up / go to / look at
    TRACK = 'track'  # a standing grounding followed across frames
    COUNT = 'count'  # how many X are there?
    EXISTS = 'exists'  # is there an X?
    VERIFY_RELATION = 'verify_relation'  # is the X left of the Y?
    WHAT = 'what'  # what is left of the X?
    WHICH = 'which'  # which X is closer / larger / leftmost?


@dataclass(frozen=True)
class Query:
    """A parsed operator command.

    `action` is the normalised verb ('find', 'track', 'pick_up', 'go_to', 'look_at', 'point_to',
    'grab', 'locate', 'where'); questions have action 'ask'. For VERIFY_RELATION,
    `question_relation` is the relation asked about (the target's own `relations` still filter
    the subject). For WHAT, `target.noun` is None and its relations describe what is asked for.
    `destination` is where an action puts the target ('put the block in the drawer': inside the
    drawer); `direction` where it moves it ('push the block to the left': 'left').
    """

    kind: QueryKind
    text: str
    target: ObjectRef
    action: str = 'find'
    question_relation: RelationConstraint | None = None
    destination: RelationConstraint | None = None
    direction: str | None = None

    def phrases(self) -> list[str]:
        """Every distinct detector phrase this query needs (target first, then anchors)."""
        seen: dict[str, None] = {}

        def visit(ref: ObjectRef) -> None:
            if ref.noun is not None or ref.phrase:
                seen.setdefault(ref.phrase, None)
            for part in ref.without:  # found to rule out 'the cup without a lid'
                seen.setdefault(part, None)
            for constraint in ref.relations:
                for anchor in constraint.anchors:
                    visit(anchor)

        visit(self.target)
        for extra in (self.question_relation, self.destination):
            if extra is not None:
                for anchor in extra.anchors:
                    visit(anchor)
        return [p for p in seen if p]
