"""The node under camera load: model time inside the node against the same call offline, frames
received and CPU per frame against a bare rclpy passthrough, with 1 and 2 cameras of 640x480
frames at 10 and 30 Hz over DDS (camera, node and passthrough each in its own process).

Per configuration, a camera process publishes pre-rendered frames (the 'crossing' sequence of
`grounding_agent.sim`, seed `--seed`) at a fixed rate to the node and to the passthrough at the
same time; the operator (this process) sends one command every `--command-period` seconds to
the cameras in turn, waits for its answer, and then makes the same model call offline, in this
process, on the same frame: the two model times are measured side by side under the same load.
Node CPU per frame includes the model calls; the model's own time is reported apart. Writes
the 'node_load' section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live_harness import (
    CAMERA_PROFILE,
    CameraProcess,
    NodeProcess,
    PassthroughProcess,
    dds_env,
    render_sequence,
    wait_until,
)
from bench.report import machine_line, update_section

NAMESPACE = '/node_load'
CAMERAS = ('front', 'wrist')
CONFIGS = ((1, 10.0), (1, 30.0), (2, 10.0), (2, 30.0))


def topic(camera: str) -> str:
    return f'{NAMESPACE}/{camera}/image'


@dataclass
class Row:
    cameras: int
    rate_hz: float
    published: int = 0
    node_received: list[int] = field(default_factory=list)
    passthrough_received: list[int] = field(default_factory=list)
    node_cpu_s: float = 0.0
    passthrough_cpu_s: float = 0.0
    answer_s: list[float] = field(default_factory=list)
    node_model_ms: list[float] = field(default_factory=list)
    offline_model_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)

    def share(self, received: list[int]) -> float:
        return min(received) / self.published if self.published and received else 0.0

    def node_cpu_per_frame_ms(self) -> float:
        """All of the node's CPU (model included) per frame received."""
        return 1000.0 * self.node_cpu_s / (sum(self.node_received) or 1)

    def passthrough_cpu_per_frame_ms(self) -> float:
        return 1000.0 * self.passthrough_cpu_s / (sum(self.passthrough_received) or 1)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Operator:
    """This process's ROS side: commands out, planner results and node diagnostics in."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        rclpy.init()
        self._string = String
        self.node = rclpy.create_node('node_load_operator')
        self._lock = threading.Condition()
        self.results: dict[str, tuple[float, dict[str, Any]]] = {}
        self.camera_values: dict[str, dict[str, str]] = {}
        self.commands = self.node.create_publisher(
            String,
            f'{NAMESPACE}/grounding_node/command',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
        )
        planner_qos = QoSProfile(
            depth=20,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(String, f'{NAMESPACE}/planner', self._on_result, planner_qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        threading.Thread(target=self._executor.spin, daemon=True).start()

    def _on_result(self, msg: Any) -> None:
        document = json.loads(msg.data)
        with self._lock:
            self.results.setdefault(document.get('request_id', ''), (time.monotonic(), document))
            self._lock.notify_all()

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            for camera in CAMERAS:
                if status.name == f'{NAMESPACE}/grounding_node: camera {camera}':
                    with self._lock:
                        self.camera_values[camera] = {kv.key: kv.value for kv in status.values}

    def received(self, camera: str) -> int:
        with self._lock:
            return int(self.camera_values.get(camera, {}).get('received', 0))

    def ask(self, text: str, camera: str, request_id: str, timeout_s: float) -> Any:
        """Send a command; (seconds to its answer, the answer) or None on no answer."""
        sent = time.monotonic()
        payload = json.dumps({'text': text, 'camera': camera, 'request_id': request_id})
        self.commands.publish(self._string(data=payload))
        with self._lock:
            if not self._lock.wait_for(lambda: request_id in self.results, timeout_s):
                return None
            arrived, document = self.results[request_id]
        return arrived - sent, document

    def close(self) -> None:
        import rclpy

        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()


def offline_model_ms(agent: Any, image: Any, text: str) -> float:
    from grounding_agent.core.types import Frame, Stamp

    frame = Frame(image=image, stamp=Stamp(sec=1), frame_id='camera', camera='front')
    result = agent.handle_command(text, frame, request_id='offline')
    return float(result.latency_ms['model'])


def run_config(
    cameras: int,
    rate_hz: float,
    *,
    frames: Path,
    images: Any,
    text: str,
    node: NodeProcess,
    operator: Operator,
    agent: Any,
    env: dict[str, str],
    args: argparse.Namespace,
) -> Row:
    row = Row(cameras, rate_hz)
    names = CAMERAS[:cameras]
    topics = [topic(c) for c in names]
    count = int(rate_hz * args.seconds)
    passthrough = PassthroughProcess(topics=topics, env=env, qos='best_effort', depth=1)
    camera = CameraProcess(
        frames, topics=topics, rate_hz=rate_hz, env=env, count=count, subscribers=2
    )
    passthrough.start()
    try:
        if not wait_until(passthrough.ready, 300):
            raise RuntimeError(f'passthrough never subscribed:\n{passthrough.log()}')
        camera.start()
        if not wait_until(lambda: 'publishing' in camera.log(), 300):
            raise RuntimeError(f'camera never published:\n{camera.log()}')
        node_before = node.sample().cpu_s
        passthrough_before = passthrough.sample().cpu_s
        received_before = {c: operator.received(c) for c in names}
        index = 0
        while camera.alive():
            started = time.monotonic()
            name = names[index % len(names)]
            answer = operator.ask(
                text, name, f'{cameras}x{rate_hz:g}-{index}', args.command_timeout + 2.0
            )
            if answer is None:
                row.unanswered += 1
            else:
                seconds, document = answer
                status = document.get('status', '?')
                row.statuses[status] = row.statuses.get(status, 0) + 1
                if status == 'error':
                    row.errors.append(str(document.get('reason', ''))[:160])
                row.answer_s.append(seconds)
                if 'model' in document.get('latency_ms', {}):
                    row.node_model_ms.append(float(document['latency_ms']['model']))
                    image = images[index % len(images)]
                    row.offline_model_ms.append(offline_model_ms(agent, image, text))
            index += 1
            time.sleep(max(0.0, args.command_period - (time.monotonic() - started)))
        camera.wait(60)
        # the last frames' counts reach /diagnostics within a period or two
        time.sleep(2.5)
        row.node_cpu_s = node.sample().cpu_s - node_before
        row.passthrough_cpu_s = passthrough.sample().cpu_s - passthrough_before
        row.node_received = [operator.received(c) - received_before[c] for c in names]
    finally:
        camera.stop()
        passthrough.stop()
    report = camera.report()
    row.published = int(report.get('published', 0))
    row.passthrough_received = [
        int(passthrough.report().get('topics', {}).get(t, {}).get('received', 0)) for t in topics
    ]
    return row


def passthrough_only(
    frames: Path, env: dict[str, str], *, cameras: int, rate_hz: float, seconds: float
) -> tuple[int, list[int]]:
    """Frames published and received per topic by a passthrough alone (no node)."""
    topics = [topic(c) for c in CAMERAS[:cameras]]
    passthrough = PassthroughProcess(topics=topics, env=env, qos='best_effort', depth=1)
    camera = CameraProcess(
        frames, topics=topics, rate_hz=rate_hz, env=env, count=int(rate_hz * seconds)
    )
    passthrough.start()
    try:
        wait_until(passthrough.ready, 300)
        camera.start()
        camera.wait(seconds + 120)
        time.sleep(1.0)
    finally:
        camera.stop()
        passthrough.stop()
    published = int(camera.report().get('published', 0))
    topics_report = passthrough.report().get('topics', {})
    return published, [int(topics_report.get(t, {}).get('received', 0)) for t in topics]


def markdown(
    rows: list[Row],
    defaults: tuple[int, list[int]] | None,
    args: argparse.Namespace,
    load: str,
    text: str,
) -> str:
    lines = [
        '## The node under camera load (`bench/bench_node_load.py`)',
        '',
        f'{machine_line()}; load average before the run: {load}. Backend `{args.backend}`; '
        f'640x480 rgb8 frames of the `crossing` sequence (seed {args.seed}), pre-rendered and '
        'published by a camera process (reliable, depth 1) for '
        f'{args.seconds:g} s per row; the node (`image_qos: sensor_data`, best effort, depth 1) '
        'and a bare rclpy passthrough (best effort, depth 1) subscribe at the same time, each in '
        f'its own process, with the Fast DDS profile `config/dds/fastdds_camera.xml`. One '
        f'command ("{text}") every {args.command_period:g} s, answered before the next; after '
        'each answer the same model call is made offline on the same frame, so the two model '
        'times are measured side by side. Node CPU per frame includes its model calls (one per '
        'answered command).',
        '',
        '| cameras x rate | frames sent per camera | passthrough received | node received '
        '| answers (statuses) | answer p50 / p95 s | model in node p50 / p95 ms '
        '| offline p50 / p95 ms | node / offline (p50) '
        '| CPU ms per frame: node (model incl.) / passthrough |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for row in rows:
        statuses = ', '.join(f'{k} {v}' for k, v in sorted(row.statuses.items()))
        if row.unanswered:
            statuses += f', unanswered {row.unanswered}'
        node_p50 = percentile(row.node_model_ms, 0.5)
        offline_p50 = percentile(row.offline_model_ms, 0.5)
        lines.append(
            f'| {row.cameras} x {row.rate_hz:g} Hz | {row.published} '
            f'| {row.share(row.passthrough_received):.1%} | {row.share(row.node_received):.1%} '
            f'| {len(row.answer_s)} ({statuses}) '
            f'| {percentile(row.answer_s, 0.5):.2f} / {percentile(row.answer_s, 0.95):.2f} '
            f'| {node_p50:.0f} / {percentile(row.node_model_ms, 0.95):.0f} '
            f'| {offline_p50:.0f} / {percentile(row.offline_model_ms, 0.95):.0f} '
            f'| {node_p50 / offline_p50:.2f} '
            f'| {row.node_cpu_per_frame_ms():.2f} / {row.passthrough_cpu_per_frame_ms():.2f} |'
        )
    errors = [f'{r.cameras} x {r.rate_hz:g} Hz: {e}' for r in rows for e in r.errors]
    if errors:
        lines += ['', 'Error answers:', *(f'- {e}' for e in errors)]
    if defaults is not None:
        published, received = defaults
        shares = ', '.join(f'{r / published:.1%}' if published else '-' for r in received)
        lines += [
            '',
            f'Reference without the profile (Fast DDS defaults), passthrough alone, 2 x 30 Hz: '
            f'{shares} of {published} frames per camera received.',
        ]
    return '\n'.join(lines) + '\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--backend', default='color_shape')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--command-period', type=float, default=0.5)
    parser.add_argument('--command-timeout', type=float, default=5.0)
    parser.add_argument('--domain-id', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', 0)))
    parser.add_argument('--no-defaults', action='store_true', help='skip the no-profile run')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args()
    load = ', '.join(f'{v:.1f}' for v in os.getloadavg())

    from grounding_agent.backends import create_backend
    from grounding_agent.core.agent import GroundingAgent

    sequence, frames = render_sequence('crossing', args.seed, rate_hz=30.0, frames=60)
    target = next(o for o in sequence.truth[0]['objects'] if o['name'] == sequence.target)
    text = f'find the {target["colour"]} {target["shape"]}'
    env = dds_env(args.domain_id, CAMERA_PROFILE)
    os.environ.update({k: v for k, v in env.items() if k.startswith(('FASTDDS', 'ROS_'))})
    agent = GroundingAgent(create_backend({'name': args.backend}))
    offline_model_ms(agent, sequence.images[0], text)  # warm-up, as the node's first call
    parameters: dict[str, Any] = {
        'backend.name': args.backend,
        'cameras': list(CAMERAS),
        'planner_topic': f'{NAMESPACE}/planner',
        'diagnostics_period_s': 1.0,
        'command_timeout_s': args.command_timeout,
        **{f'camera.{c}.image_topic': topic(c) for c in CAMERAS},
    }
    node = NodeProcess(parameters, env=env, namespace=NAMESPACE)
    operator = Operator()
    rows: list[Row] = []
    node.start()
    try:
        if not wait_until(lambda: operator.commands.get_subscription_count() > 0, 180):
            raise RuntimeError(f'the node never subscribed:\n{node.log()}')
        for cameras, rate_hz in CONFIGS:
            row = run_config(
                cameras, rate_hz, frames=frames, images=sequence.images, text=text, node=node,
                operator=operator, agent=agent, env=env, args=args,
            )  # fmt: skip
            rows.append(row)
            print(markdown(rows, None, args, load, text).splitlines()[-1], flush=True)
    finally:
        node.stop()
        operator.close()
    defaults = None
    if not args.no_defaults:
        defaults = passthrough_only(
            frames, dds_env(args.domain_id, ''), cameras=2, rate_hz=30.0, seconds=args.seconds
        )
    text_md = markdown(rows, defaults, args, load, text)
    print(text_md)
    if not args.no_write:
        update_section('node_load', text_md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
