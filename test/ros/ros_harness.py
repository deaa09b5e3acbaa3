"""Helpers of the ROS tests: real DDS on loopback, a background executor, test peers.

`ros` gives a harness whose MultiThreadedExecutor spins in a background thread; nodes created
through it (the grounding node and `Peer`s that publish images and commands and collect the
planner JSON) are destroyed after the test. Waits are bounded (`wait_for`): the tests assert
outcomes, never how long something took.

`ScriptedTestBackend` (registered as 'test_scripted') is a test double for a model backend: it
returns boxes from `ScriptedTestBackend.script`, or raises `ScriptedTestBackend.failure`, so
tests about the node's plumbing do not depend on what a real model sees.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.core.result import GroundingResult
from grounding_agent.core.types import Box, Detection, Stamp
from grounding_agent.ros.image_conversion import (
    compressed_msg_from_rgb,
    header_with,
    image_msg_from_array,
)

__all__ = ['Peer', 'RosHarness', 'ScriptedTestBackend', 'interrupt', 'scene_image', 'wait_for']

WAIT_S = 20.0
DEFAULT_STAMP = Stamp(sec=100)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def node_process_argv(prefix: str, *parameters: str) -> list[str]:
    """`python -m grounding_agent.ros.grounding_node` in namespace `prefix`, its planner and front
    camera under it (reliable image QoS), plus `parameters` ('name:=value' each)."""
    argv = [
        sys.executable,
        '-m',
        'grounding_agent.ros.grounding_node',
        '--ros-args',
        '-r',
        f'__ns:={prefix}',
    ]
    for parameter in (
        f'planner_topic:={prefix}/planner',
        f'camera.front.image_topic:={prefix}/front/image',
        'image_qos:=reliable',
        *parameters,
    ):
        argv += ['-p', parameter]
    return argv


def interrupt(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """Ctrl-C a node process and wait for it to end (killed after `timeout`); its stderr."""
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


@register_backend('test_scripted')
class ScriptedTestBackend(Backend):
    """Test double: boxes from the class-level `script` (phrase -> [(box, score)])."""

    name = 'test_scripted'
    script: ClassVar[dict[str, list[tuple[Box, float]]]] = {}
    failure: ClassVar[Exception | None] = None
    closed: ClassVar[int] = 0
    calls: ClassVar[int] = 0

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        type(self).calls += 1
        if type(self).failure is not None:
            raise type(self).failure
        return [
            Detection(box=box, phrase=phrase, score=score)
            for phrase in phrases
            for box, score in type(self).script.get(phrase, [])
        ]

    def close(self) -> None:
        type(self).closed += 1

    @classmethod
    def reset(cls) -> None:
        cls.script = {}
        cls.failure = None
        cls.closed = 0
        cls.calls = 0


def scene_image(width: int = 320, height: int = 240) -> npt.NDArray[np.uint8]:
    """A plain grey table seen from above: a red cube (left) and a blue cube (right)."""
    import cv2

    image = np.full((height, width, 3), 200, dtype=np.uint8)
    cv2.rectangle(image, (40, 80), (100, 140), (220, 30, 30), -1)
    cv2.rectangle(image, (200, 80), (260, 140), (30, 60, 220), -1)
    return image


PLANNER_QOS = QoSProfile(
    depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class Peer:
    """A test node: camera publishers, a command publisher, and the planner results it heard."""

    def __init__(self, harness: RosHarness, prefix: str, cameras: Sequence[str]) -> None:
        self.node = Node(f'peer_{next(harness.ids)}', context=harness.context)
        self.prefix = prefix
        self.results: list[GroundingResult] = []
        self._lock = threading.Lock()
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.images = {
            c: self.node.create_publisher(Image, f'{prefix}/{c}/image', reliable) for c in cameras
        }
        self.compressed = {
            c: self.node.create_publisher(CompressedImage, f'{prefix}/{c}/compressed', reliable)
            for c in cameras
        }
        self.depth = {
            c: self.node.create_publisher(Image, f'{prefix}/{c}/depth', reliable) for c in cameras
        }
        self.info = {
            c: self.node.create_publisher(CameraInfo, f'{prefix}/{c}/info', reliable)
            for c in cameras
        }
        self.commands = self.node.create_publisher(String, f'{prefix}/grounding_node/command', 10)
        self.node.create_subscription(String, f'{prefix}/planner', self._on_result, PLANNER_QOS)
        # the standing grounding's per-frame results (volatile), heard into the same list
        self.node.create_subscription(String, f'{prefix}/tracking', self._on_result, 50)
        harness.executor.add_node(self.node)

    def _on_result(self, msg: String) -> None:
        with self._lock:
            self.results.append(GroundingResult.from_json(msg.data))

    def received(self) -> list[GroundingResult]:
        with self._lock:
            return list(self.results)

    def wait_results(self, count: int, timeout: float = WAIT_S) -> list[GroundingResult]:
        assert wait_for(lambda: len(self.received()) >= count, timeout), (
            f'expected {count} results, got {self.received()}'
        )
        return self.received()

    def wait_connected(self, camera: str = 'front') -> None:
        """Block until the node subscribed to our camera and command topics (DDS discovery)."""
        assert wait_for(
            lambda: (
                self.images[camera].get_subscription_count() > 0
                and self.commands.get_subscription_count() > 0
            )
        ), 'node never subscribed'

    def send_image(
        self,
        image: npt.NDArray[np.uint8],
        *,
        camera: str = 'front',
        stamp: Stamp | None = None,
        encoding: str = 'rgb8',
        frame_id: str = 'camera_optical',
    ) -> None:
        header = header_with(stamp or DEFAULT_STAMP, frame_id)
        msg = image_msg_from_array(image, encoding=encoding, header=header)
        self.images[camera].publish(msg)

    def send_compressed(
        self,
        image: npt.NDArray[np.uint8],
        *,
        camera: str = 'front',
        stamp: Stamp | None = None,
        image_format: str = 'png',
    ) -> None:
        msg = compressed_msg_from_rgb(
            image,
            image_format=image_format,
            header=header_with(stamp or DEFAULT_STAMP, 'camera_optical'),
        )
        self.compressed[camera].publish(msg)

    def send_depth(
        self, depth: npt.NDArray[Any], *, encoding: str, stamp: Stamp, camera: str = 'front'
    ) -> None:
        header = header_with(stamp, 'camera_optical')
        self.depth[camera].publish(image_msg_from_array(depth, encoding=encoding, header=header))

    def collect(self, msg_type: Any, topic: str) -> list[Any]:
        """Every message that arrives on `topic` from now on (appended as they come)."""
        received: list[Any] = []
        self.node.create_subscription(msg_type, topic, received.append, 10)
        return received

    def send_command(self, text: str) -> None:
        self.commands.publish(String(data=text))


class RosHarness:
    """One rclpy context and executor for a test; creates and tears down nodes."""

    def __init__(self, context: Context, name: str) -> None:
        self.context = context
        self.ids = itertools.count()
        self.prefix = f'/{name}'
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.nodes: list[Any] = []
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def camera_parameters(self, cameras: Sequence[str]) -> dict[str, Any]:
        values: dict[str, Any] = {'cameras': list(cameras)}
        for camera in cameras:
            values[f'camera.{camera}.image_topic'] = f'{self.prefix}/{camera}/image'
            values[f'camera.{camera}.compressed_topic'] = f'{self.prefix}/{camera}/compressed'
            values[f'camera.{camera}.depth_topic'] = f'{self.prefix}/{camera}/depth'
            values[f'camera.{camera}.camera_info_topic'] = f'{self.prefix}/{camera}/info'
        return values

    def grounding_node(self, cameras: Sequence[str] = ('front',), **parameters: Any) -> Any:
        """A GroundingNode in this test's namespace, reading this test's camera topics."""
        from grounding_agent.ros.grounding_node import GroundingNode

        values = {
            'backend.name': 'test_scripted',
            'planner_topic': f'{self.prefix}/planner',
            'tracking_topic': f'{self.prefix}/tracking',
            'image_qos': 'reliable',
            **self.camera_parameters(cameras),
            **parameters,
        }
        node = GroundingNode(
            context=self.context,
            namespace=self.prefix,
            parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
        )
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def peer(self, cameras: Sequence[str] = ('front',)) -> Peer:
        peer = Peer(self, self.prefix, cameras)
        self.nodes.append(peer.node)
        return peer

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=10.0)
        self._thread.join(10.0)
        for node in self.nodes:
            node.destroy_node()
