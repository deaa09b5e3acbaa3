"""Run the demo script over ROS 2: sim_camera + grounding_node + an operator, in one process.

All three nodes share one MultiThreadedExecutor spinning in a background thread; they talk over
real DDS like separate processes would (commands on `grounding_node/command`, answers on the
planner topic, images and ground truth from sim_camera). The operator sends each command as
JSON with a request id, waits for its answer, scores it against the ground truth published with
the frame the answer was computed on, and saves the annotated image. Then it sets the node's
`query` parameter to the standing query and scores every result while the target moves.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult
from grounding_agent.core.types import Box
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

__all__ = ['DemoError', 'main_from_args', 'run_demo']

NAMESPACE = '/grounding_demo'
_READY_TIMEOUT_S = 30.0
# How long the truth and image of an answered frame may trail its answer (they are published
# first, but travel on other topics).
_TRUTH_WAIT_S = 2.0
# After the standing query is cleared, results already computed keep arriving for a moment.
_DRAIN_S = 0.7
_KEEP_FRAMES = 60
_KEEP_TRUTH = 600
# Images saved from the track phase: first, middle and last result.
_TRACK_IMAGES = 3

StampKey = tuple[int, int]


class DemoError(Exception):
    """The demo could not run (a node failed to start, no camera frames)."""


class Operator:
    """The operator's node: sends commands, hears answers, keeps recent frames and truth."""

    def __init__(self, context: Any, topics: dict[str, str]) -> None:
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        self.node = Node('demo_operator', context=context, namespace=NAMESPACE)
        self._condition = threading.Condition()
        self._results: list[tuple[float, GroundingResult]] = []
        self._images: OrderedDict[StampKey, npt.NDArray[np.uint8]] = OrderedDict()
        self._truth: OrderedDict[StampKey, TruthFrame] = OrderedDict()
        self._commands = self.node.create_publisher(String, topics['command'], 10)
        planner_qos = QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(String, topics['planner'], self._on_result, planner_qos)
        self.node.create_subscription(String, topics['truth'], self._on_truth, 50)
        # Reliable (sim_camera publishes reliably): an answered frame's image must not be lost.
        image_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, topics['image'], self._on_image, image_qos)

    # -- callbacks (executor threads) --------------------------------------------------------

    def _on_result(self, msg: Any) -> None:
        result = GroundingResult.from_json(msg.data)
        with self._condition:
            self._results.append((time.monotonic(), result))
            self._condition.notify_all()

    def _on_truth(self, msg: Any) -> None:
        truth = TruthFrame.from_document(json.loads(msg.data))
        with self._condition:
            self._truth[(truth.stamp.sec, truth.stamp.nanosec)] = truth
            while len(self._truth) > _KEEP_TRUTH:
                self._truth.popitem(last=False)
            self._condition.notify_all()

    def _on_image(self, msg: Any) -> None:
        from grounding_agent.ros.image_conversion import rgb_from_image_msg

        rgb = rgb_from_image_msg(msg)
        with self._condition:
            self._images[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = rgb
            while len(self._images) > _KEEP_FRAMES:
                self._images.popitem(last=False)
            self._condition.notify_all()

    # -- waiting (caller's thread) -----------------------------------------------------------

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    def wait_ready(self, timeout: float) -> None:
        """Until the node listens for commands and frames and truth are flowing."""
        ok = self._wait(
            lambda: (
                self._commands.get_subscription_count() > 0
                and len(self._truth) >= 2
                and len(self._images) >= 2
            ),
            timeout,
        )
        if not ok:
            raise DemoError(
                f'nothing to work with after {timeout:g} s: command subscribers '
                f'{self._commands.get_subscription_count()}, frames {len(self._images)}, '
                f'truth {len(self._truth)}'
            )

    def send(self, text: str, request_id: str) -> float:
        from std_msgs.msg import String

        sent = time.monotonic()
        self._commands.publish(String(data=json.dumps({'text': text, 'request_id': request_id})))
        return sent

    def answer(self, request_id: str, timeout: float) -> tuple[float, GroundingResult] | None:
        def find() -> tuple[float, GroundingResult] | None:
            return next((r for r in self._results if r[1].request_id == request_id), None)

        self._wait(lambda: find() is not None, timeout)
        with self._condition:
            return find()

    def results_since(self, index: int, request_id: str) -> list[GroundingResult]:
        with self._condition:
            return [r for _, r in self._results[index:] if r.request_id == request_id]

    def wait_standing(self, index: int, timeout: float) -> bool:
        """Until a standing-query result arrives after result number `index`."""
        return self._wait(lambda: bool(self.results_since(index, STANDING_REQUEST_ID)), timeout)

    def wait_quiet(self, index: int, quiet_s: float) -> None:
        """Until no standing result has arrived for `quiet_s` (results still on the way), for
        at most ten such periods."""
        count = -1
        for _ in range(10):
            latest = len(self.results_since(index, STANDING_REQUEST_ID))
            if latest == count:
                return
            count = latest
            time.sleep(quiet_s)

    def latest_frame(self) -> tuple[TruthFrame, npt.NDArray[np.uint8]] | None:
        """The newest frame whose truth and image both arrived."""
        with self._condition:
            for key in reversed(self._images):
                if key in self._truth:
                    return self._truth[key], self._images[key]
        return None

    def result_count(self) -> int:
        with self._condition:
            return len(self._results)

    def frame_of(
        self, result: GroundingResult, *, wait_s: float = _TRUTH_WAIT_S
    ) -> tuple[TruthFrame | None, npt.NDArray[np.uint8] | None]:
        """The truth and image published with the frame `result` was computed on."""
        if result.stamp is None:
            return None, None
        key = (result.stamp.sec, result.stamp.nanosec)
        self._wait(lambda: key in self._truth and key in self._images, wait_s)
        with self._condition:
            return self._truth.get(key), self._images.get(key)


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
    from grounding_agent.demo.truth import draw_labelled_boxes

    frame = operator.latest_frame()
    if frame is None:
        return None
    truth, image = frame
    canvas = draw_labelled_boxes(
        image, ((o.name, o.colour, o.box) for o in truth.objects if o.box is not None)
    )
    return _write_png(out, 'scene', canvas)


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
            truth, image = operator.frame_of(result)
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
    script: DemoScript, node: Any, operator: Operator, out: Path, echo: Callable[[str], None]
) -> TrackSummary | None:
    from rclpy.parameter import Parameter

    track = script.track
    if track is None:
        return None
    expect = Expectation(kind='target', target=track.target)
    start_index = operator.result_count()
    outcome = node.set_parameters([Parameter('query', value=track.text)])[0]
    if not outcome.successful:
        raise DemoError(f'the node refused query {track.text!r}: {outcome.reason}')
    # The phase lasts `duration_s` from the first standing result: the node may take a few
    # frames to lock on before it publishes.
    if operator.wait_standing(start_index, script.command_timeout_s):
        time.sleep(track.duration_s)
    node.set_parameters([Parameter('query', value='')])
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
        truth, image = operator.frame_of(result, wait_s=0.0)
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
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from grounding_agent.ros.grounding_node import GroundingNode
    from grounding_agent.ros.sim_camera import SimCameraNode, camera_topics

    started = time.monotonic()
    images = out / 'images'
    images.mkdir(parents=True, exist_ok=True)
    # Images of an earlier run would be mistaken for this one's.
    for stale in images.glob('*.png'):
        stale.unlink()
    camera = camera_topics(f'{NAMESPACE}/sim/camera')
    topics = {
        **camera,
        'truth': f'{NAMESPACE}/sim/ground_truth',
        'planner': f'{NAMESPACE}/planner',
        'command': f'{NAMESPACE}/grounding_node/command',
    }
    report = DemoReport(
        backend=backend, script=script_name, seed=script.scene.seed, iou=script.iou
    )
    context = Context()
    rclpy.init(args=['grounding_demo'], context=context)
    nodes: list[Any] = []
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    try:
        nodes.append(
            SimCameraNode(
                scene=script.scene,
                context=context,
                namespace=NAMESPACE,
                parameter_overrides=[
                    Parameter('rate_hz', value=script.rate_hz),
                    Parameter('topic_prefix', value=f'{NAMESPACE}/sim/camera'),
                    Parameter('ground_truth_topic', value=topics['truth']),
                ],
            )
        )
        node_parameters = {
            'backend.name': backend,
            'planner_topic': topics['planner'],
            'cameras': ['front'],
            'camera.front.image_topic': camera['image'],
            'camera.front.depth_topic': camera['depth'],
            'camera.front.camera_info_topic': camera['camera_info'],
        }
        grounding = GroundingNode(
            context=context,
            namespace=NAMESPACE,
            parameter_overrides=[Parameter(k, value=v) for k, v in node_parameters.items()],
        )
        nodes.append(grounding)
        if grounding.lifecycle_state != 'active':
            raise DemoError(f'grounding_node did not start: {grounding.backend_state}')
        operator = Operator(context, topics)
        nodes.append(operator.node)
        for node in nodes:
            executor.add_node(node)
        spinner.start()
        operator.wait_ready(_READY_TIMEOUT_S)
        report.startup_s = time.monotonic() - started
        echo(
            f'grounding_agent demo: backend {backend}, scene seed {script.scene.seed}, '
            f'{len(script.commands)} commands, ready after {report.startup_s:.1f} s\n'
        )
        report.scene_image = _save_scene(out, operator)
        echo(format_table([]))
        report.rows = _command_rows(script, operator, out, echo)
        report.track = _track_rows(script, grounding, operator, out, echo)
    finally:
        executor.shutdown(timeout_sec=10.0)
        if spinner.is_alive():
            spinner.join(10.0)
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
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
