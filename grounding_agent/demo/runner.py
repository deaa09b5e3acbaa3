"""Run the demo script over ROS 2 (sim_camera + grounding_node + an operator, `ros.demo_nodes`).

The operator sends each command as JSON with a request id, waits for its answer, scores it
against the ground truth published with the frame the answer was computed on, and saves the
annotated image. Then it sets the node's `query` parameter to the standing query and scores
every result while the target moves.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult
from grounding_agent.core.types import Box
from grounding_agent.demo.errors import DemoError
from grounding_agent.demo.report import (
    DemoReport,
    DemoRow,
    TrackSummary,
    annotate,
    format_row,
    format_table,
    slug,
    write_markdown,
)
from grounding_agent.demo.scoring import TruthFrame, Verdict, score_result
from grounding_agent.demo.script import (
    DemoScript,
    Expectation,
    default_script_path,
    load_script,
)

if TYPE_CHECKING:
    from grounding_agent.ros.demo_nodes import DemoNodes, Operator

__all__ = ['DemoError', 'main_from_args', 'run_demo']

_READY_TIMEOUT_S = 30.0
# How long the truth and image of an answered frame may trail its answer (they are published
# first, but travel on other topics).
_TRUTH_WAIT_S = 2.0
# After the standing query is cleared, results already computed keep arriving for a moment.
_DRAIN_S = 0.7
# Images saved from the track phase: first, middle and last result.
_TRACK_IMAGES = 3


def _write_png(out: Path, name: str, rgb: npt.NDArray[np.uint8]) -> str:
    """Write images/<name>.png under `out`; its path relative to `out` (for report links)."""
    import cv2

    relative = f'images/{name}.png'
    cv2.imwrite(str(out / relative), np.ascontiguousarray(rgb[:, :, ::-1]))
    return relative


def _save_image(
    out: Path,
    name: str,
    image: npt.NDArray[np.uint8] | None,
    result: GroundingResult,
    true_box: Box | None,
) -> str | None:
    if image is None:
        return None
    return _write_png(out, name, annotate(image, result, true_box))


def _save_scene(out: Path, operator: Operator) -> str | None:
    """The scene as the camera sees it, every object's true box and name drawn."""
    from grounding_agent.sim.frame_truth import draw_labelled_boxes

    frame = operator.latest_frame()
    if frame is None:
        return None
    document, image = frame
    truth = TruthFrame.from_document(document)
    canvas = draw_labelled_boxes(
        image, ((o.name, o.colour, o.box) for o in truth.objects if o.box is not None)
    )
    return _write_png(out, 'scene', canvas)


def _frame_of(
    operator: Operator, result: GroundingResult, *, wait_s: float = _TRUTH_WAIT_S
) -> tuple[TruthFrame | None, npt.NDArray[np.uint8] | None]:
    """The ground truth and image of the frame `result` was computed on."""
    document, image = operator.frame_of(result, wait_s=wait_s)
    return (None if document is None else TruthFrame.from_document(document)), image


def _true_box(expect: Expectation, truth: TruthFrame | None) -> Box | None:
    if truth is None or expect.kind != 'target':
        return None
    return truth.object(expect.target).box


def _command_rows(
    script: DemoScript, operator: Operator, out: Path, echo: Callable[[str], None]
) -> list[DemoRow]:
    rows = []
    for index, command in enumerate(script.commands, start=1):
        request_id = f'demo-{index}'
        sent = operator.send(command.text, request_id)
        answered = operator.answer(request_id, script.command_timeout_s)
        if answered is None:
            row = DemoRow(
                label=str(index),
                command=command.text,
                result=None,
                verdict=Verdict(False, command.expect.describe()),
            )
        else:
            received, result = answered
            truth, image = _frame_of(operator, result)
            verdict = score_result(result, command.expect, truth, iou=script.iou)
            name = f'{index:02d}_{slug(command.text)}'
            row = DemoRow(
                label=str(index),
                command=command.text,
                result=result,
                verdict=verdict,
                round_trip_ms=(received - sent) * 1000.0,
                image=_save_image(out, name, image, result, _true_box(command.expect, truth)),
            )
        echo(format_row(row.cells()))
        rows.append(row)
    return rows


def _track_rows(
    script: DemoScript, nodes: DemoNodes, out: Path, echo: Callable[[str], None]
) -> TrackSummary | None:
    track = script.track
    if track is None:
        return None
    operator = nodes.operator
    expect = Expectation(kind='target', target=track.target)
    start_index = operator.result_count()
    if not nodes.set_query(track.text):
        raise DemoError(f'the node refused query {track.text!r}: {nodes.refusal}')
    # The phase lasts `duration_s` from the first standing result: the node may take a few
    # frames to lock on before it publishes.
    if operator.wait_standing(start_index, script.command_timeout_s):
        time.sleep(track.duration_s)
    nodes.set_query('')
    operator.wait_quiet(start_index, _DRAIN_S)
    results = operator.results_since(start_index, STANDING_REQUEST_ID)
    saved = (
        {0, len(results) // 2, len(results) - 1}
        if len(results) >= _TRACK_IMAGES
        else set(range(len(results)))
    )
    rows = []
    for index, result in enumerate(results):
        # The phase is over: whatever truth and images will arrive are in.
        truth, image = _frame_of(operator, result, wait_s=0.0)
        image_path = None
        if index in saved:
            image_path = _save_image(
                out, f'track_{index:03d}', image, result, _true_box(expect, truth)
            )
        rows.append(
            DemoRow(
                label=f'T{index + 1}',
                command=track.text,
                result=result,
                verdict=score_result(result, expect, truth, iou=script.iou),
                image=image_path,
            )
        )
    summary = TrackSummary(track.text, track.target, track.duration_s, tuple(rows))
    echo(summary.line())
    echo(summary.frames_line())
    return summary


def run_demo(
    script: DemoScript,
    *,
    out: Path,
    backend: str = 'color_shape',
    script_name: str = 'demo.yaml',
    echo: Callable[[str], None] = print,
) -> DemoReport:
    """Run `script` and write the report into `out`; raises DemoError when a node cannot start."""
    from grounding_agent.ros.dds_profile import use_camera_profile
    from grounding_agent.ros.demo_nodes import DemoNodeError, DemoNodes

    use_camera_profile()  # before the nodes' first DDS participant (docs/ros_interface.md)
    started = time.monotonic()
    images = out / 'images'
    images.mkdir(parents=True, exist_ok=True)
    # Images of an earlier run would be mistaken for this one's.
    for stale in images.glob('*.png'):
        stale.unlink()
    report = DemoReport(
        backend=backend, script=script_name, seed=script.scene.seed, iou=script.iou
    )
    try:
        with DemoNodes(
            script.scene,
            rate_hz=script.rate_hz,
            backend=backend,
            prerender_s=script.prerender_s,
        ) as nodes:
            operator = nodes.operator
            operator.wait_ready(_READY_TIMEOUT_S)
            report.startup_s = time.monotonic() - started
            echo(
                f'grounding_agent demo: backend {backend}, scene seed {script.scene.seed}, '
                f'{len(script.commands)} commands, ready after {report.startup_s:.1f} s\n'
            )
            report.scene_image = _save_scene(out, operator)
            echo(format_table([]))
            report.rows = _command_rows(script, operator, out, echo)
            report.track = _track_rows(script, nodes, out, echo)
    except DemoNodeError as exc:
        raise DemoError(str(exc)) from exc
    report.total_s = time.monotonic() - started
    path = write_markdown(report, out)
    echo(
        f'\n{report.correct} of {len(report.rows)} commands correct; '
        f'{report.total_s:.1f} s in all; report: {path}'
    )
    return report


def main_from_args(args: argparse.Namespace) -> int:
    """`grounding-agent demo`: 0 when every command was answered, 1 when not, 2 for bad input."""
    try:
        script_path = Path(args.script) if args.script else default_script_path()
        script = load_script(script_path).shortened(
            max_commands=args.max_commands, track_duration_s=args.track_seconds
        )
    except ConfigError as exc:
        sys.stderr.write(f'grounding-agent demo: {exc}\n')
        return 2
    try:
        report = run_demo(
            script,
            out=Path(args.out),
            backend=args.backend,
            script_name=script_path.name,
        )
    except DemoError as exc:
        sys.stderr.write(f'grounding-agent demo: {exc}\n')
        return 1
    track_ok = report.track is None or len(report.track.rows) > 0
    return 0 if report.answered == len(report.rows) and track_ok else 1
