"""The demo's ROS 2 side: sim_camera + grounding_node + an operator node, in one process.

All three nodes share one MultiThreadedExecutor spinning in a background thread; they talk over
real DDS like separate processes would (commands on `grounding_node/command`, answers on the
planner topic, images and ground truth from sim_camera). The operator sends commands as JSON
with a request id, hears the answers and keeps the recent frames and their ground-truth
documents (`sim.frame_truth`), keyed by stamp. What the demo does with them (scoring, the
report) lives in `demo/`, which drives this module.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from grounding_agent.core.errors import GroundingError
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult
from grounding_agent.ros.grounding_node import GroundingNode
from grounding_agent.ros.image_conversion import rgb_from_image_msg
from grounding_agent.ros.sim_camera import SimCameraNode, camera_topics
from grounding_agent.sim.scene import SceneSpec

__all__ = ['NAMESPACE', 'DemoNodeError', 'DemoNodes', 'Operator', 'StampKey']

NAMESPACE = '/grounding_demo'
_KEEP_FRAMES = 60
_KEEP_TRUTH = 600

StampKey = tuple[int, int]


class DemoNodeError(GroundingError):
    """A demo node could not start, refused a parameter, or no frames arrived."""


def _stamp_key(document: Mapping[str, Any]) -> StampKey:
    stamp = document['stamp']
    return int(stamp['sec']), int(stamp['nanosec'])


class Operator:
    """The operator's node: sends commands, hears answers, keeps recent frames and truth."""

    def __init__(self, context: Context, topics: Mapping[str, str]) -> None:
        self.node = Node('demo_operator', context=context, namespace=NAMESPACE)
        self._condition = threading.Condition()
        self._results: list[tuple[float, GroundingResult]] = []
        self._images: OrderedDict[StampKey, npt.NDArray[np.uint8]] = OrderedDict()
        self._truth: OrderedDict[StampKey, dict[str, Any]] = OrderedDict()
        self._commands = self.node.create_publisher(String, topics['command'], 10)
        planner_qos = QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(String, topics['planner'], self._on_result, planner_qos)
        # the standing query's per-frame results (volatile) into the same list
        self.node.create_subscription(String, topics['tracking'], self._on_result, 100)
        self.node.create_subscription(String, topics['truth'], self._on_truth, 50)
        # Reliable (sim_camera publishes reliably): an answered frame's image must not be lost.
        image_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Image, topics['image'], self._on_image, image_qos)

    # -- callbacks (executor threads) --------------------------------------------------------

    def _on_result(self, msg: String) -> None:
        result = GroundingResult.from_json(msg.data)
        with self._condition:
            self._results.append((time.monotonic(), result))
            self._condition.notify_all()

    def _on_truth(self, msg: String) -> None:
        document = json.loads(msg.data)
        with self._condition:
            self._truth[_stamp_key(document)] = document
            while len(self._truth) > _KEEP_TRUTH:
                self._truth.popitem(last=False)
            self._condition.notify_all()

    def _on_image(self, msg: Image) -> None:
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
            raise DemoNodeError(
                f'nothing to work with after {timeout:g} s: command subscribers '
                f'{self._commands.get_subscription_count()}, frames {len(self._images)}, '
                f'truth {len(self._truth)}'
            )

    def send(self, text: str, request_id: str) -> float:
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

    def latest_frame(self) -> tuple[dict[str, Any], npt.NDArray[np.uint8]] | None:
        """The newest frame whose truth document and image both arrived."""
        with self._condition:
            for key in reversed(self._images):
                if key in self._truth:
                    return self._truth[key], self._images[key]
        return None

    def result_count(self) -> int:
        with self._condition:
            return len(self._results)

    def frame_of(
        self, result: GroundingResult, *, wait_s: float
    ) -> tuple[dict[str, Any] | None, npt.NDArray[np.uint8] | None]:
        """The truth document and image published with the frame `result` was computed on."""
        if result.stamp is None:
            return None, None
        key = (result.stamp.sec, result.stamp.nanosec)
        self._wait(lambda: key in self._truth and key in self._images, wait_s)
        with self._condition:
            return self._truth.get(key), self._images.get(key)


class DemoNodes:
    """sim_camera rendering `scene`, grounding_node with `backend`, and an `Operator`.

    A context manager: entering starts the nodes and the executor thread (DemoNodeError when the
    grounding node does not become active), leaving stops and destroys them.
    """

    def __init__(
        self, scene: SceneSpec, *, rate_hz: float, backend: str, prerender_s: float = 0.0
    ) -> None:
        self.scene = scene
        self.rate_hz = rate_hz
        self.prerender_s = prerender_s
        self.backend = backend
        camera = camera_topics(f'{NAMESPACE}/sim/camera')
        self.topics = {
            **camera,
            'truth': f'{NAMESPACE}/sim/ground_truth',
            'planner': f'{NAMESPACE}/planner',
            'tracking': f'{NAMESPACE}/tracking',
            'command': f'{NAMESPACE}/grounding_node/command',
        }
        self._context = Context()
        self._executor: MultiThreadedExecutor | None = None
        self._spinner: threading.Thread | None = None
        self._nodes: list[Node] = []
        self._grounding: GroundingNode | None = None
        self._operator: Operator | None = None
        #: Why the node refused the last `set_query` ('' when it accepted it).
        self.refusal = ''
        self._closed = False

    @property
    def operator(self) -> Operator:
        if self._operator is None:
            raise DemoNodeError('the demo nodes are not running')
        return self._operator

    def __enter__(self) -> DemoNodes:
        rclpy.init(args=['grounding_demo'], context=self._context)
        executor = MultiThreadedExecutor(num_threads=4, context=self._context)
        self._executor = executor
        try:
            self._start_nodes(executor)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start_nodes(self, executor: MultiThreadedExecutor) -> None:
        topics = self.topics
        self._nodes.append(
            SimCameraNode(
                scene=self.scene,
                context=self._context,
                namespace=NAMESPACE,
                parameter_overrides=[
                    Parameter('rate_hz', value=self.rate_hz),
                    Parameter('prerender_s', value=self.prerender_s),
                    Parameter('topic_prefix', value=f'{NAMESPACE}/sim/camera'),
                    Parameter('ground_truth_topic', value=topics['truth']),
                ],
            )
        )
        node_parameters = {
            'backend.name': self.backend,
            'planner_topic': topics['planner'],
            'tracking_topic': topics['tracking'],
            'cameras': ['front'],
            'camera.front.image_topic': topics['image'],
            'camera.front.depth_topic': topics['depth'],
            'camera.front.camera_info_topic': topics['camera_info'],
        }
        grounding = GroundingNode(
            context=self._context,
            namespace=NAMESPACE,
            parameter_overrides=[Parameter(k, value=v) for k, v in node_parameters.items()],
        )
        self._nodes.append(grounding)
        self._grounding = grounding
        if grounding.lifecycle_state != 'active':
            raise DemoNodeError(f'grounding_node did not start: {grounding.backend_state}')
        self._operator = Operator(self._context, topics)
        self._nodes.append(self._operator.node)
        for node in self._nodes:
            executor.add_node(node)
        self._spinner = threading.Thread(target=self._spin, args=(executor,), daemon=True)
        self._spinner.start()

    def set_query(self, text: str) -> bool:
        """Set the grounding node's standing `query` ('' clears it); False if it refused."""
        if self._grounding is None:
            raise DemoNodeError('the demo nodes are not running')
        outcome = self._grounding.set_parameters([Parameter('query', value=text)])[0]
        self.refusal = '' if outcome.successful else outcome.reason
        return bool(outcome.successful)

    def _spin(self, executor: MultiThreadedExecutor) -> None:
        try:
            executor.spin()
        except Exception:
            # rclpy's executor can trip over its own guard condition being destroyed while
            # `shutdown` runs from another thread; after close() that is not an error.
            if not self._closed:
                raise

    def close(self) -> None:
        """Stop the executor, destroy the nodes, shut the context down (once)."""
        if self._closed:
            return
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=10.0)
        if self._spinner is not None and self._spinner.is_alive():
            self._spinner.join(10.0)
        for node in reversed(self._nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self._context)
