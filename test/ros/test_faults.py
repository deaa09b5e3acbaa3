"""Fault tests: grounding_node as a separate process over real DDS, fed what breaks nodes.

A command nested 10,000 levels deep, a burst of 1,000 commands, and SIGTERM while commands
wait: the process survives (or ends with 0, no traceback) and every request id is answered
exactly once. The node runs the weight-free `color_shape` backend, as `ros2 run` would. The
last tests, in this process, hold the model mid-call (`test_blocking`, a test double of a
backend) to show that a shutdown answers its command and never frees the model under it.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest

pytest.importorskip('rclpy')

import numpy as np
import numpy.typing as npt
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import Peer, RosHarness, scene_image, wait_for
from std_msgs.msg import String

from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.core.types import Detection

pytestmark = pytest.mark.ros

#: Reliable and keep-all on both ends: what a client that must not lose commands or answers uses.
KEEP_ALL = QoSProfile(
    history=HistoryPolicy.KEEP_ALL,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


class NodeProcess:
    """`python -m grounding_agent.ros.grounding_node` in the harness's namespace."""

    def __init__(self, ros: RosHarness, **parameters: Any) -> None:
        self.prefix = ros.prefix
        values = {
            'planner_topic': f'{self.prefix}/planner',
            'camera.front.image_topic': f'{self.prefix}/front/image',
            'image_qos': 'reliable',
            # keep every answer for the test's reader, also during a burst
            f'qos_overrides.{self.prefix}/planner.publisher.history': 'keep_all',
            **parameters,
        }
        argv = [sys.executable, '-m', 'grounding_agent.ros.grounding_node', '--ros-args']
        argv += ['-r', f'__ns:={self.prefix}']
        for name, value in values.items():
            argv += ['-p', f'{name}:={value}']
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        self.stderr = ''

    def wait_connected(self, peer: Peer) -> None:
        # Model-free start-up still imports rclpy, numpy and OpenCV: allow for a busy machine.
        assert wait_for(
            lambda: (
                self.process.poll() is not None
                or (
                    peer.images['front'].get_subscription_count() > 0
                    and peer.commands.get_subscription_count() > 0
                )
            ),
            timeout=90.0,
        ), 'the node process never subscribed'
        assert self.process.poll() is None, f'the node ended: {self.process.communicate()[1]}'

    def alive(self) -> bool:
        return self.process.poll() is None

    def end(self, signal_number: int = signal.SIGINT, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
        try:
            _, self.stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, self.stderr = self.process.communicate()
            raise
        return self.process.returncode


@pytest.fixture
def node_process(ros: RosHarness) -> Iterator[Any]:
    started: list[NodeProcess] = []

    def start(**parameters: Any) -> NodeProcess:
        process = NodeProcess(ros, **parameters)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.process.kill()
            process.process.communicate()


def keep_all_peer(ros: RosHarness) -> Peer:
    """A peer whose command writer and planner reader lose nothing."""
    peer = ros.peer()
    peer.node.destroy_publisher(peer.commands)
    peer.commands = peer.node.create_publisher(
        String, f'{ros.prefix}/grounding_node/command', KEEP_ALL
    )
    for subscription in list(peer.node.subscriptions):  # the peer's keep-last planner reader
        peer.node.destroy_subscription(subscription)
    peer.node.create_subscription(String, f'{ros.prefix}/planner', peer._on_result, KEEP_ALL)
    return peer


def answers_by_id(results: list[GroundingResult]) -> dict[str, list[GroundingResult]]:
    grouped: dict[str, list[GroundingResult]] = collections.defaultdict(list)
    for result in results:
        grouped[result.request_id].append(result)
    return grouped


def command(text: str, request_id: str) -> str:
    return json.dumps({'text': text, 'request_id': request_id})


@pytest.mark.slow
def test_a_deeply_nested_command_is_answered_and_the_node_lives_on(
    ros: RosHarness, node_process: Any
) -> None:
    node = node_process(command_timeout_s=60.0)  # a loaded machine must not time it out
    peer = ros.peer()
    node.wait_connected(peer)
    peer.send_command('{"a":' * 10_000 + '1' + '}' * 10_000)
    peer.send_command('[' * 30_000 + ']' * 30_000)
    peer.send_command('{"request_id": "deep", "text": ' + '[' * 5_000 + ']' * 5_000 + '}')
    results = peer.wait_results(3, timeout=60.0)
    assert all(r.status is ResultStatus.ERROR for r in results)
    assert [r.request_id for r in results].count('deep') == 1
    assert sum('nests deeper than' in r.reason for r in results) == 3
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'after'))
    assert wait_for(lambda: 'after' in answers_by_id(peer.received()), timeout=120.0)
    assert answers_by_id(peer.received())['after'][0].status is ResultStatus.GROUNDED
    assert node.alive()
    assert node.end() == 0, node.stderr
    assert 'Traceback' not in node.stderr, node.stderr


@pytest.mark.slow
def test_every_command_of_a_burst_of_1000_is_answered_exactly_once(
    ros: RosHarness, node_process: Any
) -> None:
    # A long deadline and frame age: here only 'grounded' or 'busy' may answer.
    node = node_process(command_timeout_s=120.0, command_frame_max_age_s=60.0)
    peer = keep_all_peer(ros)
    node.wait_connected(peer)
    peer.send_image(scene_image())
    ids = [f'b{index}' for index in range(1000)]
    for request_id in ids:
        peer.send_command(command('find the red cube', request_id))
    assert wait_for(lambda: len(peer.received()) >= len(ids), timeout=180.0), (
        f'{len(peer.received())} of {len(ids)} answered'
    )
    assert wait_for(lambda: False, timeout=1.0) is False  # give a duplicate the time to show
    answers = answers_by_id(peer.received())
    assert sorted(answers) == sorted(ids)
    assert all(len(group) == 1 for group in answers.values())
    statuses = collections.Counter(
        'busy' if r.reason.startswith('busy') else r.status.value for r in peer.received()
    )
    assert set(statuses) <= {'grounded', 'busy'}, statuses
    assert statuses['grounded'] >= 1
    assert node.end() == 0, node.stderr
    assert 'Traceback' not in node.stderr, node.stderr


@pytest.mark.slow
@pytest.mark.parametrize('signal_number', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_answers_every_waiting_command_and_exits_0(
    ros: RosHarness, node_process: Any, signal_number: int
) -> None:
    # No image ever arrives: the commands wait, then the signal comes.
    node = node_process(command_timeout_s=120.0)
    peer = keep_all_peer(ros)
    node.wait_connected(peer)
    ids = [f'q{index}' for index in range(16)]
    for request_id in ids:
        peer.send_command(command('find the red cube', request_id))
    # discovery done and the commands read: a stop command is answered after them
    peer.send_command(command('stop', 'probe'))
    assert wait_for(lambda: 'probe' in answers_by_id(peer.received()), timeout=60.0)
    assert node.end(signal_number) == 0, node.stderr
    assert 'Traceback' not in node.stderr, node.stderr
    assert wait_for(lambda: len(peer.received()) >= len(ids) + 1, timeout=20.0)
    answers = answers_by_id(peer.received())
    assert sorted(answers) == sorted([*ids, 'probe'])
    for request_id in ids:
        (answer,) = answers[request_id]
        assert answer.status is ResultStatus.ERROR
        assert answer.reason.startswith('shutting down'), answer.reason
    assert node.stderr.count('backend closed') == 1, node.stderr


@register_backend('test_blocking')
class BlockingTestBackend(Backend):
    """Test double of a model that is slow to return: `detect` waits until `release` is set."""

    name = 'test_blocking'
    inside: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()
    closed: ClassVar[int] = 0

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        type(self).inside.set()
        assert type(self).release.wait(60.0)
        return []

    def close(self) -> None:
        type(self).closed += 1


@pytest.fixture
def blocking_model() -> Iterator[type[BlockingTestBackend]]:
    BlockingTestBackend.inside = threading.Event()
    BlockingTestBackend.release = threading.Event()
    BlockingTestBackend.closed = 0
    yield BlockingTestBackend
    BlockingTestBackend.release.set()


def model_holding_a_command(
    ros: RosHarness, blocking_model: type[BlockingTestBackend], *, also_queued: bool = False
) -> tuple[Any, Peer]:
    """A node whose model is inside detect() for command 'held' (and 'queued' waits), with
    lifecycle transitions that wait only 0.2 s for it."""
    node = ros.grounding_node(**{'backend.name': 'test_blocking', 'command_timeout_s': 120.0})
    peer = ros.peer()
    peer.wait_connected()
    peer.send_image(scene_image())
    ids = ['held', 'queued'] if also_queued else ['held']
    for request_id in ids:
        peer.send_command(command('find the red cube', request_id))
    assert blocking_model.inside.wait(20.0)
    assert wait_for(lambda: node.command_counts()['received'] == len(ids))
    node._stop_timeout_s = 0.2  # the model stays inside detect() far longer
    return node, peer


def test_a_shutdown_under_a_busy_model_answers_its_command_but_frees_nothing(
    ros: RosHarness, blocking_model: type[BlockingTestBackend]
) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    node, peer = model_holding_a_command(ros, blocking_model, also_queued=True)
    assert node.trigger_shutdown() != TransitionCallbackReturn.SUCCESS
    assert node.lifecycle_state != 'finalized'
    assert blocking_model.closed == 0  # not freed under the thread that runs it
    answers = answers_by_id(peer.wait_results(2))
    assert sorted(answers) == ['held', 'queued']
    assert all(a.reason.startswith('shutting down') for [a] in answers.values())
    blocking_model.release.set()  # the model returns: its late answer is dropped
    assert wait_for(lambda: not node._worker.is_alive)
    assert len(peer.received()) == 2
    node.destroy_node()  # now it is safe: closed once
    assert blocking_model.closed == 1


def test_cleanup_fails_while_the_model_runs_and_succeeds_after(
    ros: RosHarness, blocking_model: type[BlockingTestBackend]
) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn

    node, peer = model_holding_a_command(ros, blocking_model)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    ((answer,),) = answers_by_id(peer.wait_results(1)).values()
    assert answer.reason.startswith('shutting down: the node was deactivated')
    assert node.trigger_activate() != TransitionCallbackReturn.SUCCESS  # model still busy
    assert node.trigger_cleanup() != TransitionCallbackReturn.SUCCESS
    assert blocking_model.closed == 0
    blocking_model.release.set()
    assert wait_for(lambda: not node._worker.is_alive)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert blocking_model.closed == 1
    assert len(peer.received()) == 1


def test_diagnostics_count_received_answered_refused_and_lost(ros: RosHarness) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    node = ros.grounding_node(diagnostics_period_s=0.2, command_queue_size=1)
    peer = ros.peer()
    arrays = peer.collect(DiagnosticArray, '/diagnostics')
    peer.wait_connected()
    peer.send_command('{"text": ')  # refused: not JSON
    peer.send_command(command('find the red cube', 'waits'))  # waits for a frame
    peer.send_command(command('find the red cube', 'busy'))  # refused: the queue is full
    peer.wait_results(2)

    def commands_entry() -> dict[str, str]:
        for array in reversed(list(arrays)):
            for status in array.status:
                if status.name == f'{node.get_fully_qualified_name()}: commands':
                    return {kv.key: kv.value for kv in status.values}
        return {}

    expected = {'received': '3', 'answered': '2', 'refused': '2', 'lost': '0', 'waiting': '1'}
    assert wait_for(lambda: expected.items() <= commands_entry().items()), commands_entry()
    peer.send_image(scene_image())
    assert wait_for(lambda: commands_entry().get('answered') == '3'), commands_entry()


def test_a_real_replacement_character_is_text_and_invalid_utf8_is_refused(
    ros: RosHarness,
) -> None:
    import struct

    from rclpy.serialization import serialize_message

    ros.grounding_node()
    peer = ros.peer()
    peer.wait_connected()
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube \ufffd', 'replacement'))
    # invalid UTF-8 on the wire: a CDR string built by hand (header, length, bytes, NUL)
    header = serialize_message(String(data='ab'))[:4]
    payload = b'{"request_id": "bytes", "text": "find the \xff cube"}'
    peer.commands.publish(header + struct.pack('<I', len(payload) + 1) + payload + b'\x00')
    answers = answers_by_id(peer.wait_results(2))
    assert 'not valid UTF-8' not in answers['replacement'][0].reason
    assert answers['replacement'][0].command == 'find the red cube \ufffd'
    (refused,) = answers['bytes']
    assert refused.reason.startswith('command is not valid UTF-8 text (byte 0xff at offset 42)')
