"""The demo's outputs: the table printed to stdout and the Markdown report with its images.

One `DemoRow` per scripted command and per standing-query result; the report says what each
column means, how correctness was decided, and the totals.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.debug_draw import draw_result
from grounding_agent.core.result import GroundingResult
from grounding_agent.core.types import Box
from grounding_agent.demo.scoring import Verdict

__all__ = [
    'TABLE_COLUMNS',
    'DemoReport',
    'DemoRow',
    'TrackSummary',
    'annotate',
    'format_row',
    'format_table',
    'slug',
    'write_markdown',
]

TABLE_COLUMNS = ('#', 'command', 'status', 'box', 'track', 'answer', 'ms', 'expected', 'ok')
# Column widths of the text table; long cells are cut with '~'.
_WIDTHS = (3, 44, 9, 20, 5, 6, 9, 30, 3)
_TRUTH_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class DemoRow:
    """One answer: `result` is None when none arrived within the timeout."""

    label: str
    command: str
    result: GroundingResult | None
    verdict: Verdict
    round_trip_ms: float | None = None
    image: str | None = None
    scene_time_s: float | None = None

    @property
    def status(self) -> str:
        return 'timeout' if self.result is None else self.result.status.value

    @property
    def box(self) -> str:
        if self.result is None or self.result.target is None:
            return '-'
        return '[' + ','.join(f'{v:.0f}' for v in self.result.target.box) + ']'

    @property
    def track_id(self) -> str:
        if self.result is None or self.result.target is None:
            return '-'
        return self.result.target.track_id or '-'

    @property
    def answer(self) -> str:
        if self.result is None or self.result.answer is None:
            return '-'
        answer = self.result.answer
        if isinstance(answer, bool):
            return 'yes' if answer else 'no'
        return str(answer)

    @property
    def latency(self) -> str:
        """Agent time / command round trip (ms); the round trip includes waiting for a frame."""
        agent = None if self.result is None else self.result.latency_ms.get('total')
        parts = [
            '-' if agent is None else f'{agent:.0f}',
            '-' if self.round_trip_ms is None else f'{self.round_trip_ms:.0f}',
        ]
        return '/'.join(parts)

    def cells(self) -> tuple[str, ...]:
        return (
            self.label,
            self.command,
            self.status,
            self.box,
            self.track_id,
            self.answer,
            self.latency,
            self.verdict.expected,
            self.verdict.mark,
        )


@dataclass(frozen=True)
class TrackSummary:
    """How the standing query followed its target over the track phase."""

    text: str
    target: str
    duration_s: float
    rows: tuple[DemoRow, ...]

    @property
    def scored(self) -> list[DemoRow]:
        return [r for r in self.rows if r.verdict.correct is not None]

    @property
    def correct(self) -> int:
        return sum(1 for r in self.rows if r.verdict.correct)

    @property
    def mean_iou(self) -> float | None:
        values = [r.verdict.iou for r in self.rows if r.verdict.iou is not None]
        return float(np.mean(values)) if values else None

    @property
    def track_ids(self) -> list[str]:
        ids = [r.result.target.track_id for r in self.rows if r.result and r.result.target]
        return list(dict.fromkeys(i for i in ids if i is not None))

    @property
    def states(self) -> dict[str, int]:
        return dict(
            Counter(
                (r.result.track_state.value if r.result.track_state else r.result.status.value)
                for r in self.rows
                if r.result is not None
            )
        )

    @property
    def frames(self) -> list[DemoRow]:
        """The latest result of each camera frame: a frame gets the tracker's prediction as it
        arrives and, when the model looked at it, the model's box later."""
        latest: dict[tuple[int, int], DemoRow] = {}
        for row in self.rows:
            if row.result is not None and row.result.stamp is not None:
                latest[(row.result.stamp.sec, row.result.stamp.nanosec)] = row
        return list(latest.values())

    @property
    def frames_on_object(self) -> tuple[int, int, int]:
        """(frames with the target visible, of those with a box, of those on the object)."""
        visible = [r for r in self.frames if r.verdict.iou is not None]
        boxed = [r for r in visible if r.result is not None and r.result.target is not None]
        return len(visible), len(boxed), sum(1 for r in boxed if r.verdict.correct)

    def frames_line(self) -> str:
        visible, boxed, on_object = self.frames_on_object
        share = f'{on_object / boxed:.0%}' if boxed else '-'
        return (
            f'{len(self.frames)} camera frames answered; the target visible in {visible}, with a '
            f'box in {boxed}, the box on the object in {on_object} of them ({share})'
        )

    def line(self) -> str:
        scored = len(self.scored)
        share = f'{self.correct}/{scored}' if scored else '0/0'
        iou = '-' if self.mean_iou is None else f'{self.mean_iou:.2f}'
        ids = self.track_ids
        # the count first: a lone id such as '2' must not read as two tracks
        followed = f'{len(ids)} track id' + ('' if len(ids) == 1 else 's')
        if ids:
            followed += f' ({", ".join(ids)})'
        return (
            f'track "{self.text}": {len(self.rows)} results in {self.duration_s:g} s, '
            f'correct (IoU >= threshold) {share}, mean IoU {iou}, {followed}'
        )


@dataclass
class DemoReport:
    backend: str
    script: str
    seed: int
    iou: float
    rows: list[DemoRow] = field(default_factory=list)
    track: TrackSummary | None = None
    startup_s: float = 0.0
    total_s: float = 0.0
    scene_image: str | None = None

    @property
    def correct(self) -> int:
        return sum(1 for r in self.rows if r.verdict.correct)

    @property
    def answered(self) -> int:
        return sum(1 for r in self.rows if r.result is not None)


def slug(text: str, limit: int = 40) -> str:
    return re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')[:limit] or 'command'


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + '~'


def format_row(cells: Sequence[str]) -> str:
    return '  '.join(_cut(c, w).ljust(w) for c, w in zip(cells, _WIDTHS)).rstrip()


def format_table(rows: Sequence[DemoRow]) -> str:
    lines = [format_row(TABLE_COLUMNS), format_row(['-' * w for w in _WIDTHS])]
    lines += [format_row(row.cells()) for row in rows]
    return '\n'.join(lines)


def annotate(
    image: npt.NDArray[np.uint8], result: GroundingResult, true_box: Box | None = None
) -> npt.NDArray[np.uint8]:
    """The result drawn as the node draws it, plus the true box (thin white) when known."""
    canvas = draw_result(image, result)
    if true_box is not None:
        x1, y1, x2, y2 = (round(v) for v in true_box.to_list())
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), _TRUTH_COLOUR, 1)
        cv2.putText(
            canvas,
            'truth',
            (x1, min(canvas.shape[0] - 4, y2 + 12)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            _TRUTH_COLOUR,
            1,
        )
    return canvas


def _markdown_cell(text: str) -> str:
    return text.replace('|', '/')


def _markdown_table(rows: Sequence[DemoRow], *, images: bool) -> list[str]:
    header = [*TABLE_COLUMNS, 'reason'] + (['image'] if images else [])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [*row.cells(), row.result.reason if row.result else 'no answer in time']
        if images:
            cells.append(f'[{Path(row.image).name}]({row.image})' if row.image else '-')
        lines.append('| ' + ' | '.join(_markdown_cell(c) for c in cells) + ' |')
    return lines


def write_markdown(report: DemoReport, out: Path) -> Path:
    """Write out/report.md (images are already in out/images) and return its path."""
    lines = [
        '# grounding_agent demo',
        '',
        f'Backend `{report.backend}`, scene seed {report.seed}, script `{report.script}`. '
        f'Start-up {report.startup_s:.1f} s, whole run {report.total_s:.1f} s.',
        '',
        f'**Commands: {report.correct} of {len(report.rows)} correct** '
        f'({report.answered} answered in time).',
        '',
        'Columns: `status` as the planner receives it; `box` the target box [x1,y1,x2,y2] px; '
        '`track` the track id; `answer` of a question; `ms` agent time / command round trip '
        '(the round trip includes waiting for the next camera frame); `expected` computed from '
        "the simulator's ground truth of the frame the agent answered on; `ok`: yes, NO, or ? "
        'when no truth of that frame was received.',
        '',
        f'Correct means: a located object overlaps the true box of the intended object with IoU '
        f'>= {report.iou:g}; a count equals the number of visible objects with those attributes; '
        'a yes/no relation answer equals the relation between the true object centres (left / '
        'right by image column, front / behind by depth); an absent object is `rejected` and '
        'the scene really holds none. In the images the answer is drawn as the node draws it '
        'and the true box of the intended object in thin white.',
        '',
        *(
            [f'![the scene and its ground truth]({report.scene_image})', '']
            if report.scene_image
            else []
        ),
        '## Commands',
        '',
        *_markdown_table(report.rows, images=True),
        '',
    ]
    track = report.track
    if track is not None:
        lines += [
            '## Standing query while the target moves',
            '',
            f'The node\'s `query` parameter was set to "{track.text}" for {track.duration_s:g} s '
            f'while `{track.target}` moved; every result is scored against the true box of '
            f'`{track.target}` in its own frame.',
            '',
            track.line() + '.',
            '',
            track.frames_line() + '.',
            '',
            'States seen: '
            + (', '.join(f'{k} {v}' for k, v in sorted(track.states.items())) or 'none')
            + '.',
            '',
            *_markdown_table(track.rows, images=True),
            '',
        ]
    path = out / 'report.md'
    path.write_text('\n'.join(lines), encoding='utf-8')
    return path
