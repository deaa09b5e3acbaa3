"""grounding_node's typed outputs on real DDS: ~/detections, the Ground service, the Track action,
and the standing grounding's results apart from the command answers.

The clients are separate nodes talking to the grounding node over DDS on loopback; the node
runs the `test_scripted` backend double (see ros_harness.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.core.types import Stamp

pytest.importorskip('rclpy')

from rclpy.action import ActionClient
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_harness import RosHarness, scene_image, wait_for
from std_msgs.msg import String
from test_grounding_node import RED_BOX, ImageFeeder, command, script_red_cube, started
from vision_msgs.msg import Detection2DArray

from grounding_agent_interfaces.action import Track
from grounding_agent_interfaces.srv import Ground

pytestmark = pytest.mark.ros


def test_detections_carry_track_id_phrase_and_real_score(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros, query='find the red cube')
    detections: list[Detection2DArray] = peer.collect(
        Detection2DArray, f'{ros.prefix}/grounding_node/detections'
    )
    feed_until = ImageFeeder(peer)
    assert feed_until(lambda: any(d.detections and d.detections[0].id for d in detections))
    array = next(d for d in detections if d.detections and d.detections[0].id)
    (detection,) = array.detections
    assert array.header.frame_id == 'camera_optical'
    (hypothesis,) = detection.results
    assert hypothesis.hypothesis.class_id == 'red cube'
    assert 0.0 < hypothesis.hypothesis.score <= 1.0
    x1, y1, x2, y2 = RED_BOX.to_list()
    assert (detection.bbox.size_x, detection.bbox.size_y) == pytest.approx(
        (x2 - x1, y2 - y1), abs=5
    )
    assert detection.bbox.center.position.x == pytest.approx((x1 + x2) / 2, abs=5)
    standing = [r for r in peer.received() if r.request_id == 'standing' and r.target]
    assert detection.id in {r.target.track_id for r in standing if r.target is not None}


def _ground(ros: RosHarness, peer: Any, text: str, timeout_s: float = 0.0) -> Any:
    client = peer.node.create_client(Ground, f'{ros.prefix}/grounding_node/ground')
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(Ground.Request(command=text, timeout_s=timeout_s))
    feed_until = ImageFeeder(peer)
    assert feed_until(future.done), 'no Ground response'
    return future.result().result


def test_ground_service_answers_with_the_typed_result(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros)
    result = _ground(ros, peer, 'find the red cube')
    assert result.status == 'grounded'
    assert result.has_target
    assert result.target.phrase == 'red cube'
    assert list(result.target.box) == RED_BOX.to_list()
    assert result.target.source == 'model'
    assert result.header.frame_id == 'camera_optical'
    assert result.request_id.startswith('ground/')
    # the same answer went to the planner topic, under the same request id
    assert wait_for(lambda: any(r.request_id == result.request_id for r in peer.received()))


def test_ground_service_says_why_a_command_is_refused(ros: RosHarness) -> None:
    _, peer = started(ros)
    result = _ground(ros, peer, 'find the red cube', timeout_s=0.0)
    assert result.status == 'rejected'  # the scripted backend sees nothing
    client = peer.node.create_client(Ground, f'{ros.prefix}/grounding_node/ground')
    future = client.call_async(Ground.Request(command='find the red cube', camera='nope'))
    assert wait_for(future.done)
    refused = future.result().result
    assert refused.status == 'error'
    assert 'nope' in refused.reason


def test_track_action_feeds_back_every_frame_and_cancel_stops_it(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros)
    client = ActionClient(peer.node, Track, f'{ros.prefix}/grounding_node/track')
    assert client.wait_for_server(timeout_sec=20.0)
    feedback: list[Any] = []
    sent = client.send_goal_async(
        Track.Goal(command='find the red cube'),
        feedback_callback=lambda msg: feedback.append(msg.feedback.result),
    )
    assert wait_for(sent.done)
    handle = sent.result()
    assert handle.accepted
    assert wait_for(lambda: node.get_parameter('query').value == 'find the red cube')

    feed_until = ImageFeeder(peer)
    assert feed_until(lambda: len(feedback) >= 3)
    tracked = [r for r in feedback if r.has_target]
    assert tracked
    assert list(tracked[-1].target.box) == RED_BOX.to_list()
    assert tracked[-1].track_state in ('tracking', 'searching')
    assert {r.request_id for r in feedback} == {'standing'}

    cancelled = handle.cancel_goal_async()
    assert wait_for(cancelled.done)
    outcome = handle.get_result_async()
    assert wait_for(outcome.done)
    result = outcome.result().result
    assert result.outcome == Track.Result.OUTCOME_CANCELED
    assert result.last_result.has_target
    assert node.get_parameter('query').value == ''  # the standing grounding stopped with it


def test_a_track_command_on_the_topic_replaces_a_track_goal(ros: RosHarness) -> None:
    script_red_cube()
    node, peer = started(ros)
    client = ActionClient(peer.node, Track, f'{ros.prefix}/grounding_node/track')
    assert client.wait_for_server(timeout_sec=20.0)
    sent = client.send_goal_async(Track.Goal(command='find the red cube'))
    assert wait_for(sent.done)
    handle = sent.result()
    assert wait_for(lambda: node.get_parameter('query').value == 'find the red cube')
    peer.send_command(command('track the blue cube', 'other'))
    outcome = handle.get_result_async()
    feed_until = ImageFeeder(peer)
    assert feed_until(outcome.done)
    result = outcome.result().result
    assert result.outcome == Track.Result.OUTCOME_REPLACED
    assert 'track the blue cube' in result.reason


def test_standing_results_stay_off_the_latched_planner_topic(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros)
    peer.send_command(command('track the red cube', 'trk'))
    feed_until = ImageFeeder(peer)
    assert feed_until(
        lambda: (
            sum(r.request_id == 'standing' for r in peer.received()) >= 3
            and any(r.request_id == 'trk' for r in peer.received())
        )
    )
    # a planner joining now is replayed the command answers only, not tracking boxes
    late: list[GroundingResult] = []
    latched = QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    peer.node.create_subscription(
        String,
        f'{ros.prefix}/planner',
        lambda msg: late.append(GroundingResult.from_json(msg.data)),
        latched,
    )
    assert wait_for(lambda: bool(late))
    assert {r.request_id for r in late} == {'trk'}
    assert late[0].status is ResultStatus.GROUNDED
    peer.send_image(scene_image(), stamp=Stamp(sec=10_000))
    assert not wait_for(lambda: any(r.request_id == 'standing' for r in late), timeout=1.0)


def test_a_target_frame_without_tf2_leaves_points_in_the_camera_frame(ros: RosHarness) -> None:
    # tf2_ros cannot be installed here: the node says so and answers in the camera frame
    script_red_cube()
    _, peer = started(ros, target_frame='base_link')
    result = _ground(ros, peer, 'find the red cube')
    assert result.status == 'grounded'
    assert result.header.frame_id == 'camera_optical'
    assert result.target_frame == ''
    assert result.target.point_in_target_frame.header.frame_id == ''


def test_a_ground_call_without_an_answer_in_time_gets_an_error_result(ros: RosHarness) -> None:
    script_red_cube()
    _, peer = started(ros, command_timeout_s=30.0)  # the node itself would wait 30 s
    client = peer.node.create_client(Ground, f'{ros.prefix}/grounding_node/ground')
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(Ground.Request(command='find the red cube', timeout_s=0.5))
    assert wait_for(future.done)  # no image is ever sent
    result = future.result().result
    assert result.status == 'error'
    assert 'no answer within 0.5 s' in result.reason
    assert result.request_id.startswith('ground/')
