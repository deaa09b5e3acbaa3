"""Fault tests under camera load: grounding_node, a 30 Hz 640x480 camera and the operator each in
their own process (or this one) over real DDS, with the package's Fast DDS camera profile.

- Commands sent while the camera streams are all answered, none with a false "no image"
  error, none timed out (the node answers a command it cannot serve in `command_timeout_s`
  with an error, so "no error" is "answered within the timeout").
- A 100 MB frame is refused from its declared size, the node's peak resident memory grows by no
  more than the middleware's copies of the frame, and the node goes on answering.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip('rclpy')

from ros_harness import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.live_harness import (
    CAMERA_PROFILE,
    CameraProcess,
    NodeProcess,
    RenderedSequence,
    dds_env,
    render_sequence,
)

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PREFIX = '/camera_load'
IMAGE_TOPIC = f'{PREFIX}/front/image'


class Operator:
    """This test's own rclpy context with the camera profile: commands out, answers and the
    node's camera diagnostics in."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(CAMERA_PROFILE))
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('camera_load_operator', context=self.context)
        self._string = String
        self._lock = threading.Lock()
        self.answers: list[dict[str, Any]] = []
        self.camera: dict[str, str] = {}
        keep_all = QoSProfile(
            history=HistoryPolicy.KEEP_ALL,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        self.commands = self.node.create_publisher(
            String, f'{PREFIX}/grounding_node/command', keep_all
        )
        self.node.create_subscription(String, f'{PREFIX}/planner', self._on_answer, keep_all)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_answer(self, msg: Any) -> None:
        with self._lock:
            self.answers.append(json.loads(msg.data))

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name == f'{PREFIX}/grounding_node: camera front':
                with self._lock:
                    self.camera = {kv.key: kv.value for kv in status.values}

    def camera_value(self, key: str) -> int:
        with self._lock:
            return int(float(self.camera.get(key, '0')))

    def answered(self, request_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.answers if a.get('request_id') == request_id]

    def ask(self, text: str, request_id: str) -> None:
        payload = json.dumps({'text': text, 'request_id': request_id})
        self.commands.publish(self._string(data=payload))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def operator() -> Iterator[Operator]:
    operator = Operator()
    yield operator
    operator.close()


def domain_env(profile: Path | str = CAMERA_PROFILE) -> dict[str, str]:
    return dds_env(int(os.environ.get('ROS_DOMAIN_ID', '0')), profile)


def start_node(env: dict[str, str] | None = None, **parameters: Any) -> NodeProcess:
    node = NodeProcess(
        {
            'planner_topic': f'{PREFIX}/planner',
            'camera.front.image_topic': IMAGE_TOPIC,
            'diagnostics_period_s': 0.5,
            **parameters,
        },
        env=env or domain_env(),
        namespace=PREFIX,
    )
    node.start()
    return node


def still_frames() -> Path:
    _, path = render_sequence('still', 3, rate_hz=30.0, frames=1)
    return path


def target_of(path: Path) -> str:
    sequence = RenderedSequence.load(path)
    obj = next(o for o in sequence.truth[0]['objects'] if o['box'] is not None)
    return f'find the {obj["colour"]} {obj["shape"]}'


def test_commands_under_a_30_hz_camera_are_answered_without_false_camera_errors(
    operator: Operator,
) -> None:
    frames = still_frames()
    node = start_node()
    camera = CameraProcess(
        frames, topics=[IMAGE_TOPIC], rate_hz=30.0, env=domain_env(), count=30 * 600
    )
    try:
        assert wait_for(lambda: operator.commands.get_subscription_count() > 0, 180.0), node.log()
        camera.start()
        # frames are reaching the node (its own count, on /diagnostics)
        assert wait_for(lambda: operator.camera_value('received') >= 30, 180.0), camera.log()
        text = target_of(frames)
        ids = [f'load-{index}' for index in range(20)]
        for request_id in ids:
            operator.ask(text, request_id)
            assert wait_for(lambda rid=request_id: bool(operator.answered(rid)), 60.0), request_id
        assert node.alive(), node.log()
        answers = [operator.answered(rid) for rid in ids]
        assert all(len(group) == 1 for group in answers)
        errors = [g[0]['reason'] for g in answers if g[0]['status'] == 'error']
        assert errors == []
        # frames the model looked at are counted (two quick commands may share a frame, and the
        # count reaches /diagnostics within a period)
        assert wait_for(lambda: operator.camera_value('used') >= len(ids) // 4, 30.0)
        assert operator.camera_value('used') <= operator.camera_value('received')
        assert operator.camera_value('refused') == 0
    finally:
        camera.stop()
        assert node.stop() == 0, node.log()


def test_a_100_mb_frame_is_refused_and_memory_stays_bounded(
    operator: Operator, tmp_path: Path
) -> None:
    frames = still_frames()
    # 5800 x 5800 rgb8 = 100.9 MB, a real image (every byte there), not a lying header
    huge = np.zeros((1, 5800, 5800, 3), dtype=np.uint8)
    huge_path = tmp_path / 'huge.npz'
    RenderedSequence(
        kind='still', seed=0, rate_hz=1.0, images=huge, truth=[{'intrinsics': {
            'fx': 500.0, 'fy': 500.0, 'cx': 2900.0, 'cy': 2900.0}}],
    ).save(huge_path)  # fmt: skip
    del huge
    # Fast DDS defaults and a reliable reader: the huge frame reaches the node's callback (the
    # camera profile's 16 MB shared-memory segment does not carry it at all).
    env = domain_env('')
    node = start_node(env, image_qos='reliable')
    camera = CameraProcess(frames, topics=[IMAGE_TOPIC], rate_hz=30.0, env=env, count=30 * 600)
    big = CameraProcess(huge_path, topics=[IMAGE_TOPIC], rate_hz=1.0, env=env, count=1)
    try:
        assert wait_for(lambda: operator.commands.get_subscription_count() > 0, 180.0), node.log()
        camera.start()
        text = target_of(frames)
        assert wait_for(lambda: operator.camera_value('received') >= 30, 180.0), camera.log()
        for index in range(5):  # the model has run: steady state
            operator.ask(text, f'warm-{index}')
            assert wait_for(lambda i=index: bool(operator.answered(f'warm-{i}')), 60.0)
        steady = max(node.sample().rss_bytes for _ in range(3))
        # alone on the topic: a newer small frame would supersede it in the depth-1 reader
        camera.stop()
        big.start()
        assert wait_for(lambda: operator.camera_value('refused') >= 1, 180.0), big.log()
        big.wait(120.0)
        again = CameraProcess(frames, topics=[IMAGE_TOPIC], rate_hz=30.0, env=env, count=30 * 60)
        again.start()
        assert wait_for(lambda: 'publishing' in again.log(), 180.0)
        operator.ask(text, 'after')
        assert wait_for(lambda: bool(operator.answered('after')), 60.0)
        (after,) = operator.answered('after')
        assert after['status'] != 'error', after['reason']
        peak = node.sample().peak_rss_bytes
        # The middleware reassembles the frame and hands the callback a copy before the declared
        # size can be read (measured here: peak 562 MB over a steady 258 MB, 2.2x); nothing of
        # the node's own adds to that: no deserialized message, no converted pixels.
        frame_bytes = 5800 * 5800 * 3
        assert peak - steady <= 3.5 * frame_bytes, (peak, steady)
        assert node.alive()
        again.stop()
    finally:
        big.stop()
        camera.stop()
        assert node.stop() == 0, node.log()
