"""Scoring the running node's standing query against the simulator's truth, frame by frame.

The live benchmark (bench/bench_live_tracking.py, `grounding-agent eval-tracking --live`)
publishes pre-rendered frames over DDS and records every planner result with the time it
arrived. Each result names the frame it answers by its stamp; this module matches the two and
counts, for the frames in which the target is visible: how many got a box, how many of those
boxes are on the object (IoU >= 0.5; the latest box for a frame counts, as a planner keeps the
newest), how often the published track id changed, the model's calls and latency, and how long
after the frame's stamp each box arrived (the model's boxes and the predictions apart).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grounding_agent.core.result import GroundingResult, TrackState
from grounding_agent.core.types import Box

__all__ = ['LiveFrame', 'LiveScore', 'ReceivedResult', 'percentile', 'score_live', 'target_box']

StampKey = tuple[int, int]
_BOXED_STATES = (TrackState.TRACKING, TrackState.OCCLUDED)


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One camera frame as it went out: its stamp and where the target truly is in it."""

    stamp: StampKey
    target: Box | None  # None: not visible enough to be expected (see `target_box`)


@dataclass(frozen=True, slots=True)
class ReceivedResult:
    """A planner result and the wall-clock time (seconds, same clock as stamps) it arrived."""

    received_s: float
    result: GroundingResult


def target_box(truth: Mapping[str, Any], target: str, min_visible: float) -> Box | None:
    """The target's visible box in a frame's truth (`Render.to_dict()`), or None when less
    than `min_visible` of it can be seen."""
    for obj in truth.get('objects', []):
        if obj.get('name') == target and obj.get('box') is not None:
            if float(obj.get('visible_fraction', 0.0)) >= min_visible:
                return Box.from_list(obj['box'])
            return None
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear), NaN for no values."""
    if not values:
        return float('nan')
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class LiveScore:
    """What the node published for one sequence at one camera rate."""

    frames: int = 0  # camera frames sent
    visible_frames: int = 0  # ... with the target visible
    box_frames: int = 0  # ... of those, with a published box
    on_object_frames: int = 0  # ... of those, the latest box on the object (IoU >= 0.5)
    id_changes: int = 0
    results: int = 0  # results that answer a sent frame
    model_calls: int = 0
    model_ms: list[float] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)  # by box source
    on_object_by_source: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        return self.box_frames / self.visible_frames if self.visible_frames else float('nan')

    @property
    def on_object(self) -> float:
        return self.on_object_frames / self.box_frames if self.box_frames else float('nan')

    @property
    def id_changes_per_1000(self) -> float:
        return 1000.0 * self.id_changes / self.frames if self.frames else 0.0

    def predicted_latency_ms(self) -> list[float]:
        return [v for src, values in self.latency_ms.items() if src != 'model' for v in values]


def _source(result: GroundingResult) -> str:
    return result.target.source.value if result.target is not None else 'none'


def score_live(
    frames: Sequence[LiveFrame], received: Iterable[ReceivedResult], *, iou: float = 0.5
) -> LiveScore:
    """Match standing-query results to the frames they answer (by stamp) and count."""
    by_stamp: dict[StampKey, list[ReceivedResult]] = {}
    score = LiveScore(frames=len(frames))
    sent = {frame.stamp: frame for frame in frames}
    for item in sorted(received, key=lambda r: r.received_s):
        result = item.result
        if 'model' in result.latency_ms:
            score.model_calls += 1
            score.model_ms.append(float(result.latency_ms['model']))
        if result.stamp is None:
            continue
        key = (result.stamp.sec, result.stamp.nanosec)
        frame = sent.get(key)
        if frame is None:
            continue
        score.results += 1
        by_stamp.setdefault(key, []).append(item)
        if result.target is None or result.track_state not in _BOXED_STATES:
            continue
        source = _source(result)
        stamp_s = key[0] + key[1] * 1e-9
        score.latency_ms.setdefault(source, []).append((item.received_s - stamp_s) * 1000.0)
        if frame.target is not None:
            hits, total = score.on_object_by_source.get(source, (0, 0))
            hit = Box.from_list(result.target.box).iou(frame.target) >= iou
            score.on_object_by_source[source] = (hits + hit, total + 1)
    published_ids: list[str] = []
    for frame in frames:
        boxed = [
            item.result
            for item in by_stamp.get(frame.stamp, [])
            if item.result.target is not None and item.result.track_state in _BOXED_STATES
        ]
        if boxed and boxed[-1].target is not None and boxed[-1].target.track_id is not None:
            published_ids.append(boxed[-1].target.track_id)
        if frame.target is None:
            continue
        score.visible_frames += 1
        if not boxed:
            continue
        score.box_frames += 1
        latest = boxed[-1].target
        assert latest is not None
        score.on_object_frames += Box.from_list(latest.box).iou(frame.target) >= iou
    score.id_changes = sum(1 for a, b in itertools.pairwise(published_ids) if a != b)
    return score
