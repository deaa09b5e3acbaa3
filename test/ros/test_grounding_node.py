"""grounding_node on real DDS (loopback): commands in, planner JSON out, and everything around it.

A test peer publishes images and commands; the node runs with the `test_scripted` backend (a
test double, see conftest.py) where the point is the node's plumbing, and with `color_shape` on
a generated image end to end. Every wait is bounded; nothing asserts on timing.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
import pytest

from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.core.types import Box, Stamp

pytest.importorskip('rclpy')

from ros_harness import Peer, RosHarness, ScriptedTestBackend, scene_image, wait_for

pytestmark = pytest.mark.ros

RED_BOX = Box(40, 80, 100, 140)


class ImageFeeder:
    """Sends scene images with increasing stamps until a predicate on the answers holds."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer
        self.frames = 0

    def __call__(self, predicate: Any) -> bool:
        for _ in range(100):
            self.frames += 1
            self.peer.send_image(scene_image(), stamp=Stamp(sec=self.frames))
            if wait_for(predicate, timeout=0.2):
                return True
        return False


def script_red_cube() -> None:
    """Script the test backend to find the target phrase of 'find the red cube' at RED_BOX."""
    from grounding_agent.core.parser import parse_command

    phrase = parse_command('find the red cube').target.phrase
    ScriptedTestBackend.script = {phrase: [(RED_BOX, 0.9)]}


def command(text: str, request_id: str, camera: str = '') -> str:
    import json

    document: dict[str, Any] = {'text': text, 'request_id': request_id}
    if camera:
        document['camera'] = camera
    return json.dumps(document)


def by_id(results: list[GroundingResult]) -> dict[str, GroundingResult]:
    return {result.request_id: result for result in results}


def started(
    ros: RosHarness, cameras: tuple[str, ...] = ('front',), **parameters: Any
) -> tuple[Any, Peer]:
    node = ros.grounding_node(cameras, **parameters)
    peer = ros.peer(cameras)
    for camera in cameras:
        peer.wait_connected(camera)
    # Both ends matched: a best-effort frame sent before the node's reader knows the peer's
    # writer is dropped.
    assert wait_for(
        lambda: all(s.get_publisher_count() > 0 for s in node._subscriptions_active)
    ), 'the node never saw the peer'
    return node, peer


def test_command_gets_box_status_request_id_and_the_image_stamp(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros)
    assert node.lifecycle_state == 'active'
    peer.send_image(scene_image(), stamp=Stamp(sec=1700000000, nanosec=25), frame_id='cam_opt')
    peer.send_command(command('find the red cube', 'r-1'))
    (result,) = peer.wait_results(1)
    assert (result.request_id, result.status) == ('r-1', ResultStatus.GROUNDED)
    assert result.target is not None
    assert result.target.box == RED_BOX.to_list()
    assert (result.stamp.sec, result.stamp.nanosec) == (1700000000, 25)
    assert (result.frame_id, result.camera) == ('cam_opt', 'front')
    assert result.backend == 'test_scripted'
    assert result.target.point is None  # no depth was sent


def test_two_cameras_each_answer_from_their_own_frames(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros, ('front', 'wrist'))
    peer.send_image(scene_image(), camera='front', stamp=Stamp(sec=10))
    peer.send_image(scene_image(), camera='wrist', stamp=Stamp(sec=20))
    peer.send_command(command('find the red cube', 'f', camera='front'))
    peer.send_command(command('find the red cube', 'w', camera='wrist'))
    peer.send_command(command('find the red cube', 'default'))  # query_camera '' -> first
    results = by_id(peer.wait_results(3))
    assert (results['f'].camera, results['f'].stamp.sec) == ('front', 10)
    assert (results['w'].camera, results['w'].stamp.sec) == ('wrist', 20)
    assert results['default'].camera == 'front'


def test_compressed_images_are_decoded(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros)
    peer.send_compressed(scene_image(), stamp=Stamp(sec=33), image_format='png')
    peer.send_command(command('find the red cube', 'png'))
    (result,) = peer.wait_results(1)
    assert (result.status, result.stamp.sec) == (ResultStatus.GROUNDED, 33)


def test_depth_and_camera_info_give_a_3d_point_and_markers(ros: RosHarness) -> None:
    from sensor_msgs.msg import CameraInfo
    from visualization_msgs.msg import Marker, MarkerArray

    from grounding_agent.ros.image_conversion import header_with

    script_red_cube()
    node, peer = started(ros)
    markers = peer.collect(MarkerArray, f'{ros.prefix}/grounding_node/markers')
    stamp = Stamp(sec=50)
    peer.send_depth(np.full((240, 320), 1500, dtype=np.uint16), encoding='16UC1', stamp=stamp)
    peer.info['front'].publish(
        CameraInfo(
            header=header_with(stamp, 'cam'),
            width=320,
            height=240,
            k=[300.0, 0, 160.0, 0, 300.0, 120.0, 0, 0, 1],
        )
    )
    assert wait_for(lambda: node.feeds['front'].sync.buffered() == (1, 1))
    peer.send_image(scene_image(), stamp=stamp, frame_id='cam')
    peer.send_command(command('find the red cube', 'depth'))
    (result,) = peer.wait_results(1)
    assert result.target is not None
    assert result.target.point is not None
    x, _, z = result.target.point
    assert z == pytest.approx(1.5, abs=0.01)
    assert x == pytest.approx((70 - 160) * 1.5 / 300, abs=0.02)
    assert wait_for(lambda: any(m.type == Marker.CUBE for a in markers for m in a.markers))


def test_nan_and_zero_depth_leave_a_2d_answer(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros)
    stamp = Stamp(sec=60)
    depth = np.full((240, 320), np.nan, dtype=np.float32)
    depth[:, :160] = 0.0
    peer.send_depth(depth, encoding='32FC1', stamp=stamp)
    assert wait_for(lambda: node.feeds['front'].sync.buffered()[0] == 1)
    peer.send_image(scene_image(), stamp=stamp)
    peer.send_command(command('find the red cube', 'nan'))
    (result,) = peer.wait_results(1)
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.point is None


def test_lifecycle_round_trip(ros: RosHarness) -> None:
    from lifecycle_msgs.srv import GetState
    from rclpy.lifecycle import TransitionCallbackReturn

    script_red_cube()
    node = ros.grounding_node(autostart=False)
    peer = ros.peer()
    assert node.lifecycle_state == 'unconfigured'
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    peer.wait_connected()
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'first'))
    assert peer.wait_results(1)[0].status is ResultStatus.GROUNDED

    # The lifecycle services answer too (what `ros2 lifecycle get` uses).
    client = peer.node.create_client(GetState, f'{ros.prefix}/grounding_node/get_state')
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(GetState.Request())
    assert wait_for(future.done)
    assert future.result().current_state.label == 'active'

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: peer.images['front'].get_subscription_count() == 0)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert ScriptedTestBackend.closed == 1
    assert node.lifecycle_state == 'unconfigured'

    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    peer.wait_connected()
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'second'))
    assert wait_for(lambda: 'second' in by_id(peer.received()))


def test_a_backend_that_fails_to_load_leaves_the_node_unconfigured(ros: RosHarness) -> None:
    node = ros.grounding_node(**{'backend.name': 'no_such_backend'})
    assert node.lifecycle_state == 'unconfigured'
    assert 'no_such_backend' in node.backend_state


def test_backend_options_reach_the_backend(ros: RosHarness) -> None:
    # color_shape reads its segmentation tuning from the options and refuses unknown keys.
    node = ros.grounding_node(
        **{'backend.name': 'color_shape', 'backend.options': '{"no_such_option": 1}'}
    )
    assert node.lifecycle_state == 'unconfigured'
    assert 'no_such_option' in node.backend_state
    good = ros.grounding_node(
        **{'backend.name': 'color_shape', 'backend.options': '{"max_side": 320}'}
    )
    assert good.lifecycle_state != 'unconfigured', good.backend_state


def test_standing_query_follows_parameter_changes(ros: RosHarness) -> None:
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    script_red_cube()
    node, peer = started(ros)
    client = AsyncParameterClient(peer.node, f'{ros.prefix}/grounding_node')
    assert client.wait_for_services(timeout_sec=10.0)

    def set_query(text: str) -> Any:
        future = client.set_parameters([Parameter('query', value=text)])
        assert wait_for(future.done)
        return future.result().results[0]

    assert set_query('find the red cube').successful
    feed_until = ImageFeeder(peer)

    def standing(text: str) -> list[GroundingResult]:
        return [r for r in peer.received() if r.request_id == 'standing' and r.command == text]

    assert feed_until(lambda: len(standing('find the red cube')) >= 2)
    first = standing('find the red cube')[0]
    assert first.status is ResultStatus.GROUNDED
    assert first.target is not None
    assert first.target.box == RED_BOX.to_list()

    assert set_query('find the blue ball').successful
    assert feed_until(lambda: len(standing('find the blue ball')) >= 1)
    assert standing('find the blue ball')[0].status is ResultStatus.REJECTED

    assert set_query('   ').successful  # blank switches the standing query off
    refused = client.set_parameters([Parameter('resolver.accept_threshold', value=2.0)])
    assert wait_for(refused.done)
    assert not refused.result().results[0].successful
    default = ResolverConfig().accept_threshold
    assert node.get_parameter('resolver.accept_threshold').value == default


def test_an_unparseable_standing_query_is_refused_with_the_reason(ros: RosHarness) -> None:
    from rclpy.parameter import Parameter

    node = ros.grounding_node()
    (outcome,) = node.set_parameters([Parameter('query', value='x' * 5000)])
    assert not outcome.successful
    assert outcome.reason
    assert node.get_parameter('query').value == ''


def test_resolver_thresholds_apply_at_runtime(ros: RosHarness) -> None:
    from rclpy.parameter import Parameter

    script_red_cube()  # scored 0.9 by the test backend
    node, peer = started(ros)
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'before'))
    assert peer.wait_results(1)[0].status is ResultStatus.GROUNDED
    changes = [
        Parameter('resolver.accept_threshold', value=0.95),
        Parameter('diagnostics_period_s', value=0.5),
    ]
    assert all(outcome.successful for outcome in node.set_parameters(changes))
    assert node._diagnostics_timer.timer_period_ns == 500_000_000
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'after'))
    results = by_id(peer.wait_results(2))
    assert results['after'].status is ResultStatus.REJECTED


def test_read_only_parameters_cannot_change_at_runtime(ros: RosHarness) -> None:
    from rclpy.parameter import Parameter

    node = ros.grounding_node()
    (outcome,) = node.set_parameters([Parameter('backend.name', value='owlv2')])
    assert not outcome.successful
    assert node.get_parameter('backend.name').value == 'test_scripted'


def test_every_command_gets_exactly_one_answer_even_when_busy(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros, command_queue_size=2)
    ids = [f'c{index}' for index in range(8)]
    for request_id in ids:
        peer.send_command(command('find the red cube', request_id))
    # Two wait for a frame, the other six are answered 'busy' at once.
    busy = peer.wait_results(6)
    assert all(r.status is ResultStatus.ERROR and r.reason.startswith('busy') for r in busy)
    peer.send_image(scene_image())
    results = peer.wait_results(8)
    assert sorted(r.request_id for r in results) == sorted(ids)
    assert len(peer.received()) == 8


def test_bad_commands_get_error_results_and_the_node_keeps_going(ros: RosHarness) -> None:
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    script_red_cube()
    _, peer = started(ros)
    peer.send_command('{"text": "find the red cube", "request_id": ')
    peer.send_command(command('find the red cube', 'cam', camera='roof'))
    peer.send_command(command('x' * 1_000_000, 'long'))
    # Invalid UTF-8 on the wire: a CDR string built by hand (header, length, bytes, NUL).
    valid = serialize_message(String(data='ab'))
    payload = b'find the \xff\xfe cube'
    peer.commands.publish(valid[:4] + struct.pack('<I', len(payload) + 1) + payload + b'\x00')
    results = peer.wait_results(4)
    reasons = ' | '.join(r.reason for r in results)
    assert all(r.status is ResultStatus.ERROR for r in results)
    assert 'not valid JSON' in reasons
    assert "unknown camera 'roof'" in reasons
    assert 'longer than resolver.max_command_chars' in reasons
    assert 'not valid UTF-8' in reasons
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'after'))
    assert wait_for(lambda: 'after' in by_id(peer.received()))
    assert by_id(peer.received())['after'].status is ResultStatus.GROUNDED


def raw_image(encoding: str, width: int, height: int, step: int, data: bytes) -> Any:
    from sensor_msgs.msg import Image

    msg = Image(encoding=encoding, width=width, height=height, step=step)
    msg.header.stamp.sec = 5
    msg.data = data
    return msg


@pytest.mark.parametrize(
    ('image', 'reason'),
    [
        (lambda: raw_image('yuv422', 4, 4, 8, bytes(32)), 'unsupported image encoding'),
        (lambda: raw_image('rgb8', 4, 4, 12, bytes(40)), 'data holds 40 bytes'),
        (lambda: raw_image('rgb8', 0, 0, 0, b''), 'empty image'),
        # The header claims 100 MB; the message itself is tiny.
        (lambda: raw_image('rgb8', 10_000, 3_334, 30_000, bytes(12)), 'exceeds max_image_bytes'),
    ],
)
def test_bad_images_answer_the_waiting_command_with_why(
    ros: RosHarness, image: Any, reason: str
) -> None:
    script_red_cube()
    node, peer = started(ros)
    peer.send_command(command('find the red cube', 'waiting'))
    assert wait_for(lambda: node.worker_counters()['queued'] == 1)
    peer.images['front'].publish(image())
    (result,) = peer.wait_results(1)
    assert result.status is ResultStatus.ERROR
    assert reason in result.reason
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'recovered'))
    assert wait_for(lambda: 'recovered' in by_id(peer.received()))


def test_a_real_oversized_image_is_refused(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros, max_image_bytes=1_000_000)
    peer.send_command(command('find the red cube', 'big'))
    assert wait_for(lambda: node.worker_counters()['queued'] == 1)
    peer.send_image(np.zeros((600, 600, 3), dtype=np.uint8))  # 1.08 MB of real pixels
    (result,) = peer.wait_results(1)
    assert 'exceeds max_image_bytes=1000000' in result.reason
    assert node.feeds['front'].refused == 1


def test_backend_failure_is_an_error_result_and_a_diagnostics_entry(ros: RosHarness) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    ScriptedTestBackend.failure = RuntimeError('model exploded')
    _, peer = started(ros, diagnostics_period_s=0.2)
    arrays = peer.collect(DiagnosticArray, '/diagnostics')
    peer.send_image(scene_image())
    peer.send_command(command('find the red cube', 'boom'))
    (result,) = peer.wait_results(1)
    assert result.status is ResultStatus.ERROR
    assert 'model exploded' in result.reason

    def backend_errors() -> int:
        for array in reversed(arrays):
            for status in array.status:
                if status.name.startswith(f'{ros.prefix[1:]}') or 'backend' in status.name:
                    values = {kv.key: kv.value for kv in status.values}
                    if 'errors' in values and int(values['errors']) >= 1:
                        return int(values['errors'])
        return 0

    assert wait_for(lambda: backend_errors() >= 1)
    camera_entries = [s for a in arrays for s in a.status if s.name.endswith('camera front')]
    assert camera_entries
    assert int({kv.key: kv.value for kv in camera_entries[-1].values}['received']) >= 1


def test_debug_image_is_drawn_for_a_subscriber(ros: RosHarness) -> None:
    from sensor_msgs.msg import Image

    script_red_cube()
    node, peer = started(ros)
    images = peer.collect(Image, f'{ros.prefix}/grounding_node/debug_image')
    assert wait_for(lambda: node._debug_pub.get_subscription_count() > 0)
    peer.send_image(scene_image(), stamp=Stamp(sec=77))
    peer.send_command(command('find the red cube', 'debug'))
    assert wait_for(lambda: bool(images))
    debug = images[0]
    assert (debug.encoding, debug.width, debug.height, debug.header.stamp.sec) == (
        'rgb8',
        320,
        240,
        77,
    )
    drawn = np.frombuffer(bytes(debug.data), dtype=np.uint8).reshape(240, 320, 3)
    assert not np.array_equal(drawn, scene_image())  # something was drawn on it


def test_end_to_end_with_color_shape_on_a_generated_scene(ros: RosHarness) -> None:
    # Default sensor-data (best effort) image QoS, as on a robot.
    _, peer = started(ros, **{'backend.name': 'color_shape', 'image_qos': 'sensor_data'})
    peer.send_image(scene_image(), stamp=Stamp(sec=1700000000, nanosec=500), frame_id='cam')
    peer.send_command(command('find the cube left of the blue cube', 'left'))
    peer.send_command(command('find the green cube', 'green'))
    peer.send_command(command('is the red cube left of the blue cube?', 'ask'))
    peer.send_command('find the red cube')  # plain text, as in docs/ros_interface.md
    results = by_id(peer.wait_results(4))
    left, green, ask = results['left'], results['green'], results['ask']
    assert left.status is ResultStatus.GROUNDED
    assert left.target is not None
    assert left.target.to_box().iou(RED_BOX) > 0.8
    assert [r.relation for r in left.relations] == ['left_of']
    assert green.status is ResultStatus.REJECTED
    assert 'green' in green.reason
    assert (ask.status, ask.answer) == (ResultStatus.ANSWERED, True)
    assert all(r.backend == 'color_shape' for r in results.values())
    assert all((r.stamp.sec, r.stamp.nanosec) == (1700000000, 500) for r in results.values())
    plain = results['']
    assert plain.status is ResultStatus.GROUNDED
    assert plain.target is not None
    assert plain.target.to_box().iou(RED_BOX) > 0.8
    print('example answers:', plain.to_json(), left.to_json(), sep='\n')


def test_a_track_command_becomes_the_standing_query(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros)
    feed_until = ImageFeeder(peer)

    peer.send_command(command('track the red cube', 'trk'))
    # the command gets its one answer, with its request id ...
    assert feed_until(lambda: any(r.request_id == 'trk' for r in peer.received()))
    (answer,) = [r for r in peer.received() if r.request_id == 'trk']
    assert answer.status is ResultStatus.GROUNDED
    # ... and keeps running as the node's standing query, followed frame after frame
    assert node.get_parameter('query').value == 'track the red cube'

    def standing() -> list[GroundingResult]:
        return [r for r in peer.received() if r.request_id == 'standing']

    assert feed_until(lambda: len(standing()) >= 3)
    assert {r.command for r in standing()} == {'track the red cube'}
    tracked = [r for r in standing() if r.target is not None]
    assert tracked
    assert tracked[-1].target.box == RED_BOX.to_list()
    assert tracked[-1].target.track_id is not None

    # 'stop' ends it: the answer names what was stopped, the query parameter is cleared, and
    # later frames bring no further standing answers.
    peer.send_command(command('Stop tracking, please.', 'stop'))
    assert wait_for(lambda: any(r.request_id == 'stop' for r in peer.received()))
    (stopped,) = [r for r in peer.received() if r.request_id == 'stop']
    assert (stopped.kind, stopped.status) == ('stop', ResultStatus.ANSWERED)
    assert stopped.answer == 'track the red cube'
    assert node.get_parameter('query').value == ''
    before = len(standing())
    for _ in range(10):
        feed_until.frames += 1
        peer.send_image(scene_image(), stamp=Stamp(sec=feed_until.frames))
        time.sleep(0.1)
    assert not wait_for(lambda: len(standing()) > before + 1, timeout=1.0)  # one in flight
    peer.send_command(command('cancel', 'again'))
    assert wait_for(lambda: any(r.request_id == 'again' for r in peer.received()))
    (again,) = [r for r in peer.received() if r.request_id == 'again']
    assert again.status is ResultStatus.ANSWERED
    assert again.answer == ''
    assert 'nothing to stop' in again.reason
