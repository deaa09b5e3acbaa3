"""Graded spatial relations and ordinal ranking between detections, in the image or in 3D.

Every relation is a score in 0..1 that changes smoothly with the geometry, so the resolver can
multiply it with detector and attribute scores and say how far a relation was from holding.
Relations are from the viewer's perspective: 'left' is image left, 'front' is closer to the camera.

Two spaces, one set of formulas. In 2D each object is its box in pixels. In 3D (both objects have
`Detection.point`, e.g. from `geometry.with_points`) each object is its camera-frame point with a
metric width and height (box size at the object's depth) and an assumed depth extent equal to its
width; x right, y down, z forward. Offsets are normalised by the objects' own sizes, so the same
parameters serve a cup next to a plate and a car next to a house.

Parameters (module constants, documented where defined) shape the curves; the resolver's
acceptance thresholds live in `ResolverConfig`, not here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grounding_agent.core.geometry import metric_size
from grounding_agent.core.types import CameraIntrinsics, Detection, Ordinal, OrdinalOrder, Relation

__all__ = [
    'DIRECTION_MIDPOINT',
    'DIRECTION_STEEPNESS',
    'SUPERLATIVE_RELATIONS',
    'WEAK_DEPTH_CAP',
    'rank_ordinal',
    'relation_score',
    'relation_scores',
    'select_ordinal',
    'superlative_scores',
    'uses_3d',
]

# Directional relations (left/right/above/below/front/behind): the centre offset along the axis,
# divided by the mean extent of the two objects. 1.0 = the two just touch edge to edge, 0 = same
# centre. The score is logistic(STEEPNESS * (offset - MIDPOINT)): 0.5 at half overlap, 0.98 when
# touching, 0.02 at the same centre.
DIRECTION_MIDPOINT = 0.5
DIRECTION_STEEPNESS = 8.0

# Without depth, 'in front of' falls back to 'lower in the image' (true on a tabletop seen from
# above, false for a shelf). A weak cue: its score is capped so it never beats real depth.
WEAK_DEPTH_CAP = 0.75
# Boxes overlapping by at least this share of the smaller one are read as one hiding the other:
# the one whose base is lower in the image is in front (still capped at WEAK_DEPTH_CAP).
OCCLUSION_MIN_OVERLAP = 0.1
# ... and its 2D cue is at least this (0.6 after the cap, above the default relation threshold).
OCCLUSION_CUE = 0.8

# 'In front of' / 'behind' also want the two to be side by side from the viewer: the horizontal
# gap (in mean widths) is penalised by exp(-(gap / LATERAL_SCALE)^2): 0.64 at one width apart.
LATERAL_SCALE = 1.5

# Near / next to: the edge-to-edge gap divided by the mean object size (sqrt of area).
# NEAR: logistic(PROXIMITY_STEEPNESS * (NEAR_MIDPOINT - gap)): 0.5 at one object size apart.
# NEXT_TO is stricter (0.5 at NEXT_TO_MIDPOINT) and penalises one object containing the other
# (a cup on a plate is 'on' it, not 'next to' it) by up to CONTAINMENT_PENALTY.
PROXIMITY_STEEPNESS = 6.0
NEAR_MIDPOINT = 1.0
NEXT_TO_MIDPOINT = 0.75
CONTAINMENT_PENALTY = 0.8

# Overlap-based relations (on, under, inside): logistic(OVERLAP_STEEPNESS * (fraction - midpoint)).
OVERLAP_STEEPNESS = 10.0
SUPPORT_MIDPOINT = 0.5  # ON: fraction of the subject's width resting over the anchor
ALIGN_MIDPOINT = 0.3  # UNDER: horizontal overlap relative to the narrower object
INSIDE_MIDPOINT = 0.6  # INSIDE: fraction of the subject's area within the anchor
# ON: a subject whose bottom edge floats above the anchor's top by `gap` subject heights scores
# exp(-(gap / FLOAT_SCALE)^2); one whose bottom is below the anchor's bottom edge by `drop`
# anchor heights scores logistic(-SINK_STEEPNESS * drop).
FLOAT_SCALE = 0.3
SINK_STEEPNESS = 15.0
# 3D contact (ON, INSIDE): depth difference in mean depth extents; logistic(8 * (1 - diff)).
CONTACT_STEEPNESS = 8.0

# BETWEEN: the subject's centre projected on the segment joining the anchors' centres at
# t in 0..1 scores logistic(12 t) * logistic(12 (1 - t)); its distance from the line, relative to
# max(subject size, LINE_SCALE * segment length), scores exp(-d^2).
BETWEEN_STEEPNESS = 12.0
LINE_SCALE = 0.25

# CLOSEST_TO / FARTHEST_FROM: relative distance margin to the best competitor,
# m = (d_other - d) / (d_other + d) in -1..1, scored logistic(SUPERLATIVE_STEEPNESS * m):
# a tie gives 0.5, twice as close as the next one gives 0.97.
SUPERLATIVE_STEEPNESS = 10.0

SUPERLATIVE_RELATIONS = frozenset({Relation.CLOSEST_TO, Relation.FARTHEST_FROM})


def _logistic(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, t))))


@dataclass(frozen=True, slots=True)
class _Extent:
    """One object in the space a relation is judged in (pixels, or metres in 3D)."""

    cx: float
    cy: float
    w: float
    h: float
    z: float | None = None  # 3D only: depth of the centre
    d: float | None = None  # 3D only: depth extent

    @property
    def x1(self) -> float:
        return self.cx - self.w / 2.0

    @property
    def x2(self) -> float:
        return self.cx + self.w / 2.0

    @property
    def y1(self) -> float:
        return self.cy - self.h / 2.0

    @property
    def y2(self) -> float:
        return self.cy + self.h / 2.0

    @property
    def size(self) -> float:
        return math.sqrt(self.w * self.h)


def _extent(detection: Detection, three_d: bool, intrinsics: CameraIntrinsics | None) -> _Extent:
    if three_d:
        size = metric_size(detection, intrinsics)
        if detection.point is None or size is None:
            raise ValueError(f'3D relations need Detection.point ({detection.phrase!r} has none)')
        x, y, z = detection.point
        return _Extent(x, y, size[0], size[1], z, size[0])
    box = detection.box
    cx, cy = box.center
    # A one-pixel floor: degenerate boxes still have a direction and never divide by zero.
    return _Extent(cx, cy, max(box.width, 1.0), max(box.height, 1.0))


def uses_3d(detections: Sequence[Detection], use_3d: bool | None = None) -> bool:
    """Whether relations between `detections` are judged in 3D (None = when all have points)."""
    known = all(d.point is not None for d in detections)
    if use_3d is None:
        return known
    if use_3d and not known:
        raise ValueError('use_3d=True needs Detection.point for every object')
    return use_3d


def _interval_overlap(a1: float, a2: float, b1: float, b2: float) -> float:
    return max(0.0, min(a2, b2) - max(a1, b1))


def _interval_gap(a1: float, a2: float, b1: float, b2: float) -> float:
    return max(0.0, max(a1, b1) - min(a2, b2))


def _directional(offset: float, extent_sum: float) -> float:
    normalised = offset / max(extent_sum / 2.0, 1e-9)
    return _logistic(DIRECTION_STEEPNESS * (normalised - DIRECTION_MIDPOINT))


def _left_of(s: _Extent, a: _Extent) -> float:
    return _directional(a.cx - s.cx, s.w + a.w)


def _above(s: _Extent, a: _Extent) -> float:
    # y points down in the image and in the camera frame: above = smaller y.
    return _directional(a.cy - s.cy, s.h + a.h)


def _lateral(s: _Extent, a: _Extent) -> float:
    gap = _interval_gap(s.x1, s.x2, a.x1, a.x2) / ((s.w + a.w) / 2.0)
    return math.exp(-((gap / LATERAL_SCALE) ** 2))


def _in_front_of(s: _Extent, a: _Extent) -> float:
    if s.z is not None and a.z is not None and s.d is not None and a.d is not None:
        return _directional(a.z - s.z, s.d + a.d) * _lateral(s, a)
    # Weak 2D cue: on a surface seen from above, the nearer object's base is lower in the image.
    cue = _directional(s.y2 - a.y2, s.h + a.h)
    if s.y2 > a.y2 and _overlap_of_smaller(s, a) >= OCCLUSION_MIN_OVERLAP:
        # Overlapping boxes: the lower one hides part of the other, so it is the nearer one,
        # however close the two bases look (the hidden object's box ends where it is cut off).
        cue = max(cue, OCCLUSION_CUE)
    return WEAK_DEPTH_CAP * cue * _lateral(s, a)


def _overlap_of_smaller(s: _Extent, a: _Extent) -> float:
    """Intersection of the two boxes as a share of the smaller one's area."""
    inter = _interval_overlap(s.x1, s.x2, a.x1, a.x2) * _interval_overlap(s.y1, s.y2, a.y1, a.y2)
    smaller = min(s.w * s.h, a.w * a.h)
    return inter / smaller if smaller > 0 else 0.0


def _depth_contact(s: _Extent, a: _Extent) -> float:
    """1 when the two are at touching depth (always 1 in 2D, where depth is unknown)."""
    if s.z is None or a.z is None or s.d is None or a.d is None:
        return 1.0
    difference = abs(s.z - a.z) / max((s.d + a.d) / 2.0, 1e-9)
    return _logistic(CONTACT_STEEPNESS * (1.0 - difference))


def _on(s: _Extent, a: _Extent) -> float:
    support = _interval_overlap(s.x1, s.x2, a.x1, a.x2) / s.w
    resting = _logistic(OVERLAP_STEEPNESS * (support - SUPPORT_MIDPOINT))
    # Seen from above, a supporting surface's box contains the base of what stands on it; seen
    # from the side, the base touches its top edge. Both keep the base between those limits.
    floating = (a.y1 - s.y2) / s.h
    if floating > 0.0:
        contact = math.exp(-((floating / FLOAT_SCALE) ** 2))
    else:
        drop = (s.y2 - a.y2) / a.h
        contact = _logistic(-SINK_STEEPNESS * drop)
    return resting * contact * _depth_contact(s, a)


def _under(s: _Extent, a: _Extent) -> float:
    narrower = min(s.w, a.w)
    aligned = _logistic(
        OVERLAP_STEEPNESS * (_interval_overlap(s.x1, s.x2, a.x1, a.x2) / narrower - ALIGN_MIDPOINT)
    )
    return max(_on(a, s), _above(a, s) * aligned)


def _contained_fraction(s: _Extent, a: _Extent) -> float:
    inside = _interval_overlap(s.x1, s.x2, a.x1, a.x2) * _interval_overlap(s.y1, s.y2, a.y1, a.y2)
    return inside / (s.w * s.h)


def _inside(s: _Extent, a: _Extent) -> float:
    fraction = _contained_fraction(s, a)
    return _logistic(OVERLAP_STEEPNESS * (fraction - INSIDE_MIDPOINT)) * _depth_contact(s, a)


def _gap(s: _Extent, a: _Extent) -> float:
    """Edge-to-edge distance in mean object sizes (3D boxes when depth is known)."""
    gx = _interval_gap(s.x1, s.x2, a.x1, a.x2)
    gy = _interval_gap(s.y1, s.y2, a.y1, a.y2)
    gz = 0.0
    if s.z is not None and a.z is not None and s.d is not None and a.d is not None:
        gz = _interval_gap(s.z - s.d / 2, s.z + s.d / 2, a.z - a.d / 2, a.z + a.d / 2)
    return math.sqrt(gx * gx + gy * gy + gz * gz) / max((s.size + a.size) / 2.0, 1e-9)


def _near(s: _Extent, a: _Extent) -> float:
    return _logistic(PROXIMITY_STEEPNESS * (NEAR_MIDPOINT - _gap(s, a)))


def _next_to(s: _Extent, a: _Extent) -> float:
    containment = max(_contained_fraction(s, a), _contained_fraction(a, s))
    proximity = _logistic(PROXIMITY_STEEPNESS * (NEXT_TO_MIDPOINT - _gap(s, a)))
    return proximity * (1.0 - CONTAINMENT_PENALTY * containment)


def _centre(e: _Extent) -> tuple[float, ...]:
    return (e.cx, e.cy) if e.z is None else (e.cx, e.cy, e.z)


def _between(s: _Extent, a: _Extent, b: _Extent) -> float:
    p, pa, pb = _centre(s), _centre(a), _centre(b)
    segment = [vb - va for va, vb in zip(pa, pb)]
    length_sq = sum(v * v for v in segment)
    if length_sq <= 1e-12:
        return 0.0
    t = sum((vp - va) * v for vp, va, v in zip(p, pa, segment)) / length_sq
    foot = [va + t * v for va, v in zip(pa, segment)]
    off_line = math.dist(p, foot)
    scale = max(s.size, LINE_SCALE * math.sqrt(length_sq))
    along = _logistic(BETWEEN_STEEPNESS * t) * _logistic(BETWEEN_STEEPNESS * (1.0 - t))
    return along * math.exp(-((off_line / scale) ** 2))


_PAIRWISE: dict[Relation, Callable[[_Extent, _Extent], float]] = {
    Relation.LEFT_OF: _left_of,
    Relation.RIGHT_OF: lambda s, a: _left_of(a, s),
    Relation.ABOVE: _above,
    Relation.BELOW: lambda s, a: _above(a, s),
    Relation.ON: _on,
    Relation.UNDER: _under,
    Relation.IN_FRONT_OF: _in_front_of,
    Relation.BEHIND: lambda s, a: _in_front_of(a, s),
    Relation.NEXT_TO: _next_to,
    Relation.NEAR: _near,
    Relation.INSIDE: _inside,
}


def _check_anchors(relation: Relation, anchors: Sequence[Detection]) -> None:
    expected = 2 if relation is Relation.BETWEEN else 1
    if len(anchors) != expected:
        raise ValueError(f'{relation.value} takes {expected} anchor(s), got {len(anchors)}')


def relation_score(
    relation: Relation,
    subject: Detection,
    anchors: Sequence[Detection],
    *,
    use_3d: bool | None = None,
    intrinsics: CameraIntrinsics | None = None,
) -> float:
    """How well `relation` holds between `subject` and its anchor(s), 0..1.

    BETWEEN takes two anchors, every other relation one. `use_3d` None judges in 3D when every
    object has a point; `intrinsics` turn box sizes into metres (a nominal focal length without).
    CLOSEST_TO / FARTHEST_FROM compare candidates with each other (`superlative_scores`); a lone
    subject is trivially the closest and the farthest, so it scores 1.
    """
    return relation_scores(relation, [subject], anchors, use_3d=use_3d, intrinsics=intrinsics)[0]


def relation_scores(
    relation: Relation,
    subjects: Sequence[Detection],
    anchors: Sequence[Detection],
    *,
    use_3d: bool | None = None,
    intrinsics: CameraIntrinsics | None = None,
) -> list[float]:
    """`relation_score` for each of `subjects`; superlatives compare the subjects as one set."""
    _check_anchors(relation, anchors)
    if relation in SUPERLATIVE_RELATIONS:
        return superlative_scores(
            relation, subjects, anchors[0], use_3d=use_3d, intrinsics=intrinsics
        )
    scores = []
    for subject in subjects:
        three_d = uses_3d([subject, *anchors], use_3d)
        s = _extent(subject, three_d, intrinsics)
        placed = [_extent(anchor, three_d, intrinsics) for anchor in anchors]
        if relation is Relation.BETWEEN:
            scores.append(_between(s, placed[0], placed[1]))
        else:
            scores.append(_PAIRWISE[relation](s, placed[0]))
    return scores


def superlative_scores(
    relation: Relation,
    subjects: Sequence[Detection],
    anchor: Detection,
    *,
    use_3d: bool | None = None,
    intrinsics: CameraIntrinsics | None = None,
) -> list[float]:
    """CLOSEST_TO / FARTHEST_FROM as graded scores over a set of candidates.

    Distances are between centres (3D points when every object has one). Each candidate scores
    by its relative margin over the best of the others (see SUPERLATIVE_STEEPNESS): the clear
    winner near 1, a tie 0.5, the others low. A single candidate scores 1.
    """
    if relation not in SUPERLATIVE_RELATIONS:
        raise ValueError(f'{relation.value} is not a superlative relation')
    three_d = uses_3d([*subjects, anchor], use_3d)
    a = _centre(_extent(anchor, three_d, intrinsics))
    distances = [math.dist(_centre(_extent(s, three_d, intrinsics)), a) for s in subjects]
    if len(distances) == 1:
        return [1.0]
    closest = relation is Relation.CLOSEST_TO
    scores = []
    for index, distance in enumerate(distances):
        others = distances[:index] + distances[index + 1 :]
        rival = min(others) if closest else max(others)
        total = rival + distance
        if total <= 1e-12:
            scores.append(0.5)
            continue
        margin = (rival - distance) / total if closest else (distance - rival) / total
        scores.append(_logistic(SUPERLATIVE_STEEPNESS * margin))
    return scores


def _ordinal_key(
    order: OrdinalOrder, three_d: bool, intrinsics: CameraIntrinsics | None
) -> Callable[[Detection], tuple[float, float]]:
    def key(detection: Detection) -> tuple[float, float]:
        box = detection.box
        cx, cy = box.center
        if order in (OrdinalOrder.LEFT, OrdinalOrder.ORDER):
            return (cx, cy)
        if order is OrdinalOrder.RIGHT:
            return (-cx, cy)
        if order is OrdinalOrder.TOP:
            return (cy, cx)
        if order is OrdinalOrder.BOTTOM:
            return (-cy, cx)
        if order in (OrdinalOrder.NEAREST, OrdinalOrder.FARTHEST):
            # Without depth: the lower an object's base in the image, the nearer (tabletop cue).
            near = detection.point[2] if three_d and detection.point else -box.y2
            return (near, cx) if order is OrdinalOrder.NEAREST else (-near, cx)
        size = metric_size(detection, intrinsics) if three_d else None
        area = size[0] * size[1] if size is not None else box.area
        return (-area, cx) if order is OrdinalOrder.LARGEST else (area, cx)

    return key


def rank_ordinal(
    candidates: Sequence[Detection],
    order: OrdinalOrder,
    *,
    use_3d: bool | None = None,
    intrinsics: CameraIntrinsics | None = None,
) -> list[int]:
    """Indices of `candidates` in `order`, the first being 'the first' in that order.

    LEFT/RIGHT/TOP/BOTTOM and ORDER (left to right) use image positions (the viewer's view).
    NEAREST/FARTHEST use depth when every candidate has a point, else the base's image height.
    LARGEST/SMALLEST use metric size in 3D, else box area. Ties break left to right.
    """
    key = _ordinal_key(order, uses_3d(candidates, use_3d), intrinsics)
    return sorted(range(len(candidates)), key=lambda i: key(candidates[i]))


def select_ordinal(
    candidates: Sequence[Detection],
    ordinal: Ordinal,
    *,
    use_3d: bool | None = None,
    intrinsics: CameraIntrinsics | None = None,
) -> int | None:
    """Index of the `ordinal.index`-th candidate (1-based, -1 = last); None when too few."""
    if ordinal.index == 0:
        raise ValueError('ordinal index is 1-based (or negative from the end), got 0')
    ranked = rank_ordinal(candidates, ordinal.order, use_3d=use_3d, intrinsics=intrinsics)
    position = ordinal.index - 1 if ordinal.index > 0 else len(ranked) + ordinal.index
    return ranked[position] if 0 <= position < len(ranked) else None
