"""Tracking evaluation on simulated sequences: MOTA, IDF1, HOTA, identity switches, coverage.

Each sequence is rendered frame by frame at `camera_hz`; the model (a backend through the
agent) runs on every `model_every`-th frame, and the tracker carries the objects in between,
exactly as the node does. Two things are scored:

- multi-object tracking of every object on the table (the backend's generic phrase 'object'),
  with `trackers.eval` (CLEAR MOTA and ID switches, IDF1, HOTA: TrackEval's definitions); an
  object is in the ground truth of a frame when at least `min_visible` of it is visible;
- a standing grounding ("track the red cube") of the sequence's moving target: the share of
  frames in which the target is visible that carry a published box, and how many of those boxes
  overlap the target (IoU >= 0.5), plus how often its published track id changed.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grounding_agent.backends.base import Backend
from grounding_agent.core.agent import GroundingAgent
from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.result import TrackState
from grounding_agent.core.standing import StandingGrounding
from grounding_agent.core.tracking import TrackerConfig, TrackSet
from grounding_agent.core.types import Box, ObjectRef, Query, QueryKind, Stamp
from grounding_agent.core.vocabulary import GENERIC_PHRASE
from grounding_agent.eval.errors import EvalError
from grounding_agent.sim.sequences import SEQUENCE_KINDS

__all__ = [
    'SEQUENCE_KINDS',
    'SequenceScore',
    'TrackingReport',
    'evaluate_sequence',
    'evaluate_tracking',
    'score_mot',
    'write_report',
]


@dataclass
class SequenceScore:
    """Scores of one sequence (or of all of them, when `name` is 'all')."""

    name: str
    frames: int
    mota: float
    idf1: float
    hota: float
    id_switches: int
    gt_boxes: int
    target_visible_frames: int
    target_box_frames: int
    target_correct_frames: int
    target_id_changes: int
    model_calls: int
    # raw counts for aggregation over sequences
    counts: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def coverage(self) -> float:
        """Share of frames with the target visible that carry a published box."""
        return (
            self.target_box_frames / self.target_visible_frames
            if self.target_visible_frames
            else 1.0
        )

    @property
    def target_accuracy(self) -> float:
        """Share of frames with the target visible whose published box overlaps it."""
        return (
            self.target_correct_frames / self.target_visible_frames
            if self.target_visible_frames
            else 1.0
        )

    @property
    def id_switches_per_1000(self) -> float:
        return 1000.0 * self.id_switches / self.frames if self.frames else 0.0


@dataclass
class TrackingReport:
    sequences: list[SequenceScore]
    total: SequenceScore
    settings: dict[str, Any]

    def to_json(self) -> str:
        def row(score: SequenceScore) -> dict[str, Any]:
            values = {k: v for k, v in asdict(score).items() if k != 'counts'}
            values.update(
                coverage=score.coverage,
                target_accuracy=score.target_accuracy,
                id_switches_per_1000=score.id_switches_per_1000,
            )
            return values

        return json.dumps(
            {
                'settings': self.settings,
                'total': row(self.total),
                'sequences': [row(s) for s in self.sequences],
            },
            indent=2,
        )

    def markdown(self) -> str:
        lines = [
            '| sequence | frames | MOTA | IDF1 | HOTA | ID switches | per 1000 frames '
            '| target box coverage | target box correct | target id changes | model calls |',
            '|---|---|---|---|---|---|---|---|---|---|---|',
        ]
        for score in [*self.sequences, self.total]:
            name = f'**{score.name}**' if score is self.total else score.name
            lines.append(
                f'| {name} | {score.frames} | {score.mota:.3f} | {score.idf1:.3f} | '
                f'{score.hota:.3f} | {score.id_switches} | {score.id_switches_per_1000:.2f} | '
                f'{score.coverage:.1%} | {score.target_accuracy:.1%} | '
                f'{score.target_id_changes} | {score.model_calls} |'
            )
        return '\n'.join(lines) + '\n'


def _iou_matrix(gt: Sequence[Box], predicted: Sequence[Box]) -> np.ndarray:
    matrix = np.zeros((len(gt), len(predicted)), dtype=np.float64)
    for i, g in enumerate(gt):
        for j, p in enumerate(predicted):
            matrix[i, j] = g.iou(p)
    return matrix


def score_mot(
    gt_frames: Sequence[Sequence[tuple[int, Box]]],
    track_frames: Sequence[Sequence[tuple[int, Box]]],
) -> dict[str, Any]:
    """CLEAR, Identity and HOTA metrics of per-frame (id, box) lists, with `trackers.eval`."""
    from trackers.eval import (
        compute_clear_metrics,
        compute_hota_metrics,
        compute_identity_metrics,
    )

    gt_ids = [np.array([i for i, _ in frame], dtype=int) for frame in gt_frames]
    tr_ids = [np.array([i for i, _ in frame], dtype=int) for frame in track_frames]
    sims = [
        _iou_matrix([b for _, b in g], [b for _, b in t])
        for g, t in zip(gt_frames, track_frames, strict=True)
    ]
    clear = compute_clear_metrics(gt_ids, tr_ids, sims, threshold=0.5)
    identity = compute_identity_metrics(gt_ids, tr_ids, sims, threshold=0.5)
    hota = compute_hota_metrics(gt_ids, tr_ids, sims)
    return {'clear': clear, 'identity': identity, 'hota': hota}


def _target_query(colour: str, shape: str) -> Query:
    phrase = f'{colour} {shape}'
    return Query(
        kind=QueryKind.TRACK,
        text=f'track the {phrase}',
        target=ObjectRef(phrase=phrase, noun=shape, colour=colour, shape=shape),
        action='track',
    )


def _stamp(t: float) -> Stamp:
    return Stamp.from_seconds(t)


def evaluate_sequence(
    name: str,
    spec: Any,
    backend: Backend,
    *,
    camera_hz: float = 30.0,
    model_every: int = 5,
    min_visible: float = 0.25,
    tracker_config: TrackerConfig | None = None,
    resolver_config: ResolverConfig | None = None,
    on_frame: Callable[[], None] | None = None,
) -> SequenceScore:
    """Render `spec` (a tracking SceneSpec with `duration_s` and a moving `target`) and score."""
    from grounding_agent.sim.world import SimWorld

    config = tracker_config or TrackerConfig()
    agent = GroundingAgent(backend, resolver_config)
    target = _tracking_target(spec)
    standing = StandingGrounding(_target_query(target.colour, target.shape), config=config)
    all_objects = TrackSet(config)
    object_ids = {obj.name: index for index, obj in enumerate(spec.objects)}
    gt_frames: list[list[tuple[int, Box]]] = []
    track_frames: list[list[tuple[int, Box]]] = []
    visible = boxed = correct = model_calls = 0
    published_ids: list[str] = []
    n_frames = max(1, math.floor(spec.duration_s * camera_hz))
    with SimWorld(spec) as world:
        for index in range(n_frames):
            t = index / camera_hz
            world.set_time(t)
            render = world.render()
            frame = render.to_frame(stamp=_stamp(t))
            truths = {o.name: o for o in render.objects}
            gt_frames.append(
                [
                    (object_ids[o.name], o.box)
                    for o in render.objects
                    if o.box is not None and o.visible_fraction >= min_visible
                ]
            )
            if index % model_every == 0:
                model_calls += 1
                detections = [
                    d
                    for d in backend.detect(frame.image, [GENERIC_PHRASE])
                    if d.phrase == GENERIC_PHRASE
                ]
                tracks = all_objects.update(detections, t, phrases=[GENERIC_PHRASE])
                result, target_detections = agent.resolve_query_with_detections(
                    standing.query, frame
                )
                update = standing.on_model_result(result, target_detections, t, frame.image)
            else:
                tracks = all_objects.predict(t)
                update = standing.on_camera_frame(t, frame.image)
            track_frames.append([(int(tr.track_id), tr.box) for tr in tracks if tr.observed])
            truth = truths.get(target.name)
            if (
                truth is not None
                and truth.box is not None
                and truth.visible_fraction >= min_visible
            ):
                visible += 1
                published = update.result.target
                if published is not None and update.result.track_state in (
                    TrackState.TRACKING,
                    TrackState.OCCLUDED,
                ):
                    boxed += 1
                    correct += Box.from_list(published.box).iou(truth.box) >= 0.5
                    if published.track_id is not None:
                        published_ids.append(published.track_id)
            if on_frame is not None:
                on_frame()
    metrics = score_mot(gt_frames, track_frames)
    id_changes = sum(1 for a, b in itertools.pairwise(published_ids) if a != b)
    return _score(
        name,
        n_frames,
        metrics,
        sum(len(g) for g in gt_frames),
        visible,
        boxed,
        correct,
        id_changes,
        model_calls,
        gt_frames,
        track_frames,
    )


def _score(
    name: str,
    frames: int,
    metrics: dict[str, Any],
    gt_boxes: int,
    visible: int,
    boxed: int,
    correct: int,
    id_changes: int,
    model_calls: int,
    gt_frames: list[list[tuple[int, Box]]],
    track_frames: list[list[tuple[int, Box]]],
) -> SequenceScore:
    clear, identity, hota = metrics['clear'], metrics['identity'], metrics['hota']
    return SequenceScore(
        name=name,
        frames=frames,
        mota=float(clear['MOTA']),
        idf1=float(identity['IDF1']),
        hota=float(hota['HOTA']),
        id_switches=int(clear['IDSW']),
        gt_boxes=gt_boxes,
        target_visible_frames=visible,
        target_box_frames=boxed,
        target_correct_frames=correct,
        target_id_changes=id_changes,
        model_calls=model_calls,
        counts={'gt_frames': gt_frames, 'track_frames': track_frames},
    )


def _tracking_target(spec: Any) -> Any:
    """The object a sequence is about: `spec.target` when it names one, else the first mover
    whose colour and shape are unique in the scene."""
    name = getattr(spec, 'target', None)
    if name:
        return spec.object(name)
    for obj in spec.objects:
        if obj.path is None:
            continue
        twins = [o for o in spec.objects if (o.colour, o.shape) == (obj.colour, obj.shape)]
        if len(twins) == 1:
            return obj
    raise EvalError('the sequence has no moving object with a unique colour and shape')


def evaluate_tracking(
    backend: Backend,
    *,
    kinds: Sequence[str] = SEQUENCE_KINDS,
    seeds: Sequence[int] = (0, 1, 2),
    camera_hz: float = 30.0,
    model_every: int = 5,
    min_visible: float = 0.25,
    resolution: tuple[int, int] = (320, 240),
    tracker_config: TrackerConfig | None = None,
    progress: bool = True,
    preset: str = 'fixed',
) -> TrackingReport:
    """Every (kind, seed) sequence, and all of them pooled (MOT metrics over the pooled frames
    are computed per sequence and aggregated the way TrackEval does: by summing counts).
    `preset` is the sequences' look (`grounding_agent.sim.look.PRESETS`)."""
    from grounding_agent.sim.sequences import make_tracking_sequence

    specs = [
        (
            f'{kind}-{seed}',
            make_tracking_sequence(
                kind, seed, width=resolution[0], height=resolution[1], preset=preset
            ),
        )
        for kind in kinds
        for seed in seeds
    ]
    total_frames = sum(max(1, math.floor(s.duration_s * camera_hz)) for _, s in specs)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total_frames, unit='frame', desc='tracking eval')
    scores = [
        evaluate_sequence(
            name,
            spec,
            backend,
            camera_hz=camera_hz,
            model_every=model_every,
            min_visible=min_visible,
            tracker_config=tracker_config,
            on_frame=(bar.update if bar is not None else None),
        )
        for name, spec in specs
    ]
    if bar is not None:
        bar.close()
    settings = {
        'backend': backend.name,
        'camera_hz': camera_hz,
        'model_every': model_every,
        'min_visible': min_visible,
        'resolution': list(resolution),
        'kinds': list(kinds),
        'seeds': list(seeds),
        'image_follow': (tracker_config or TrackerConfig()).follow_image,
    }
    return TrackingReport(scores, _pooled(scores), settings)


def _pooled(scores: Sequence[SequenceScore]) -> SequenceScore:
    """All sequences as one: MOT metrics over the concatenated frames with ids kept apart."""
    gt_frames: list[list[tuple[int, Box]]] = []
    track_frames: list[list[tuple[int, Box]]] = []
    for offset, score in enumerate(scores):
        base = (offset + 1) * 1_000_000  # identities of different sequences never meet
        gt_frames += [[(base + i, b) for i, b in f] for f in score.counts['gt_frames']]
        track_frames += [[(base + i, b) for i, b in f] for f in score.counts['track_frames']]
    metrics = score_mot(gt_frames, track_frames)
    return _score(
        'all',
        sum(s.frames for s in scores),
        metrics,
        sum(s.gt_boxes for s in scores),
        sum(s.target_visible_frames for s in scores),
        sum(s.target_box_frames for s in scores),
        sum(s.target_correct_frames for s in scores),
        sum(s.target_id_changes for s in scores),
        sum(s.model_calls for s in scores),
        gt_frames,
        track_frames,
    )


def write_report(report: TrackingReport, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'tracking_results.json').write_text(report.to_json() + '\n', encoding='utf-8')
    (out_dir / 'tracking_results.md').write_text(report.markdown(), encoding='utf-8')
