"""sim_camera over real DDS: colour, depth, camera info and ground truth of one frame agree.

The node runs in-process on the harness's MultiThreadedExecutor; a peer node subscribes to its
four topics and waits (bounded) until it holds all four for one stamp.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('pybullet')

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from ros_harness import wait_for
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from grounding_agent.ros.image_conversion import (
    depth_from_image_msg,
    intrinsics_from_camera_info,
    rgb_from_image_msg,
)
from grounding_agent.ros.sim_camera import SimCameraNode, camera_topics
from grounding_agent.sim.scene import SceneSpec, SimObject, look_at_pose

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WIDTH, HEIGHT = 320, 240


def two_cube_scene() -> SceneSpec:
    return SceneSpec(
        seed=5,
        objects=(
            SimObject('red_cube', 'cube', 'red', 'large', (-0.08, 0.0, 0.035)),
            SimObject('blue_ball', 'sphere', 'blue', 'large', (0.08, 0.02, 0.035)),
        ),
        camera=look_at_pose(distance=0.6, elevation_deg=50.0, width=WIDTH, height=HEIGHT),
    )


class Listener:
    """Keeps every message of the four sim_camera topics, by stamp."""

    def __init__(self, ros: Any, prefix: str, truth_topic: str) -> None:
        self.node = Node('sim_listener', context=ros.context, namespace=ros.prefix)
        ros.nodes.append(self.node)
        self._lock = threading.Lock()
        self.by_stamp: dict[tuple[int, int], dict[str, Any]] = {}
        topics = camera_topics(prefix)
        # Best effort, as grounding_node subscribes by default: the publisher must serve it.
        for kind, msg_type in (('image', Image), ('depth', Image), ('camera_info', CameraInfo)):
            self.node.create_subscription(
                msg_type, topics[kind], self._keep(kind), qos_profile_sensor_data
            )
        self.node.create_subscription(String, truth_topic, self._keep_truth, 10)
        ros.executor.add_node(self.node)

    def _store(self, stamp: tuple[int, int], kind: str, value: Any) -> None:
        with self._lock:
            self.by_stamp.setdefault(stamp, {})[kind] = value

    def _keep(self, kind: str) -> Any:
        def keep(msg: Any) -> None:
            self._store((msg.header.stamp.sec, msg.header.stamp.nanosec), kind, msg)

        return keep

    def _keep_truth(self, msg: String) -> None:
        document = json.loads(msg.data)
        stamp = (document['stamp']['sec'], document['stamp']['nanosec'])
        self._store(stamp, 'truth', document)

    def complete_frames(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(v) for v in self.by_stamp.values() if len(v) == 4]


def start_camera(
    ros: Any, scene: SceneSpec | None = None, **parameters: Any
) -> tuple[SimCameraNode, Listener]:
    prefix = f'{ros.prefix}/sim/camera'
    truth_topic = f'{ros.prefix}/sim/ground_truth'
    values = {
        'topic_prefix': prefix,
        'ground_truth_topic': truth_topic,
        'rate_hz': 4.0,
        'width': WIDTH,
        'height': HEIGHT,
        **parameters,
    }
    listener = Listener(ros, prefix, truth_topic)
    node = SimCameraNode(
        scene=scene or two_cube_scene(),
        context=ros.context,
        namespace=ros.prefix,
        parameter_overrides=[Parameter(name, value=value) for name, value in values.items()],
    )
    ros.nodes.append(node)
    ros.executor.add_node(node)
    return node, listener


def test_one_stamp_carries_image_depth_camera_info_and_truth(ros: Any) -> None:
    node, listener = start_camera(ros)
    assert wait_for(lambda: len(listener.complete_frames()) >= 1), 'no complete frame arrived'
    frame = listener.complete_frames()[0]
    image, depth, info, truth = (
        frame['image'],
        frame['depth'],
        frame['camera_info'],
        frame['truth'],
    )

    assert (image.width, image.height, image.encoding, image.step) == (
        WIDTH,
        HEIGHT,
        'rgb8',
        WIDTH * 3,
    )
    assert (depth.width, depth.height, depth.encoding, depth.step) == (
        WIDTH,
        HEIGHT,
        '32FC1',
        WIDTH * 4,
    )
    for msg in (image, depth, info):
        assert msg.header.frame_id == 'sim_camera_optical_frame'
    assert truth['frame_id'] == 'sim_camera_optical_frame'
    assert (truth['width'], truth['height']) == (WIDTH, HEIGHT)

    intrinsics = intrinsics_from_camera_info(info)
    assert intrinsics is not None
    expected = node.scene.camera.intrinsics
    assert (intrinsics.fx, intrinsics.cx, intrinsics.cy) == pytest.approx(
        (expected.fx, expected.cx, expected.cy)
    )
    assert rgb_from_image_msg(image).shape == (HEIGHT, WIDTH, 3)

    depth_m = depth_from_image_msg(depth)
    names = {o['name'] for o in truth['objects'] if o['box'] is not None}
    assert names == {'red_cube', 'blue_ball'}
    for obj in truth['objects']:
        x1, y1, x2, y2 = obj['box']
        centre = depth_m[int((y1 + y2) / 2), int((x1 + x2) / 2)]
        # The surface seen at the box centre is in front of the object's centre by at most its
        # half diagonal (a 7 cm cube: 6.1 cm), and never behind it.
        z = obj['point_camera'][2]
        assert z - 0.062 <= centre <= z + 1e-3, (obj['name'], centre, z)


def test_the_rendered_image_shows_the_truth_boxes(ros: Any) -> None:
    _, listener = start_camera(ros)
    assert wait_for(lambda: len(listener.complete_frames()) >= 1)
    frame = listener.complete_frames()[0]
    rgb = rgb_from_image_msg(frame['image']).astype(int)
    for obj in frame['truth']['objects']:
        x1, y1, x2, y2 = (int(v) for v in obj['box'])
        patch = rgb[y1:y2, x1:x2].reshape(-1, 3)
        # Red dominates inside the red cube's box, blue inside the blue ball's.
        channel = {'red': 0, 'blue': 2}[obj['colour']]
        assert np.median(patch[:, channel]) > np.median(np.delete(patch, channel, axis=1))


def test_published_clock_stamps_frames_one_period_apart(ros: Any) -> None:
    _, listener = start_camera(ros, publish_clock=True, rate_hz=5.0)
    assert wait_for(lambda: len(listener.complete_frames()) >= 2)
    frames = listener.complete_frames()
    for frame in frames:
        stamp = frame['truth']['stamp']
        # Frame n of the simulation is stamped 1 s + n / rate_hz (never zero), on every topic.
        assert stamp['sec'] + stamp['nanosec'] * 1e-9 == pytest.approx(
            1.0 + frame['truth']['frame'] * 0.2, abs=1e-6
        )
        assert frame['image'].header.stamp.sec == stamp['sec']
    assert len({f['truth']['frame'] for f in frames}) >= 2


def test_frozen_motion_keeps_the_scene_time(ros: Any) -> None:
    _, listener = start_camera(ros, motion=False, rate_hz=8.0)
    assert wait_for(lambda: len(listener.complete_frames()) >= 2)
    assert {f['truth']['stamp_s'] for f in listener.complete_frames()} == {0.0}


def test_prerendered_frames_replay_in_a_loop_with_their_own_truth(
    ros: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grounding_agent.ros import sim_camera
    from grounding_agent.sim.paths import LinearPath

    monkeypatch.setattr(sim_camera, '_FRAME_CACHE', tmp_path)

    moving = SceneSpec(
        seed=5,
        objects=(
            SimObject('red_cube', 'cube', 'red', 'large', (-0.08, 0.0, 0.035),
                      path=LinearPath((-0.08, 0.0, 0.035), (0.2, 0.0, 0.0))),
        ),
        camera=look_at_pose(distance=0.6, elevation_deg=50.0, width=WIDTH, height=HEIGHT),
    )  # fmt: skip
    node, listener = start_camera(ros, moving, rate_hz=10.0, prerender_s=0.3)
    assert wait_for(lambda: len(listener.complete_frames()) >= 7), 'too few frames arrived'
    by_number = {f['truth']['frame']: f for f in listener.complete_frames()}
    # three frames rendered ahead (0, 0.1, 0.2 s of scene time), replayed in order
    assert len({tuple(f['truth']['objects'][0]['box']) for f in by_number.values()}) == 3
    again = [(n, n + 3) for n in by_number if n + 3 in by_number]
    assert again
    for first, second in again:
        a, b = by_number[first], by_number[second]
        assert a['truth']['objects'] == b['truth']['objects']
        assert a['image'].data == b['image'].data
    # the next start-up with the same scene reads the frames back instead of rendering them
    assert len(list(tmp_path.glob('prerender-*.npz'))) == 1
    again_node, _ = start_camera(ros, moving, rate_hz=10.0, prerender_s=0.3)
    rendered, read = node._prerendered, again_node._prerendered
    assert [r.to_dict() for r in read] == [r.to_dict() for r in rendered]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(read, rendered, strict=True))


def test_the_parameter_table_of_the_docs_is_the_nodes() -> None:
    from pathlib import Path

    from grounding_agent.ros.params import parameters_markdown
    from grounding_agent.ros.sim_camera import SIM_CAMERA_PARAMETERS

    docs = Path(__file__).resolve().parents[2] / 'docs' / 'simulation.md'
    assert parameters_markdown(SIM_CAMERA_PARAMETERS) in docs.read_text(encoding='utf-8')


def test_render_command_writes_the_frame_and_its_truth(tmp_path: Any) -> None:
    import argparse

    import cv2

    from grounding_agent.commands import sim

    parser = argparse.ArgumentParser()
    sim.add_arguments(parser)
    out = tmp_path / 'frame'
    assert sim.run(parser.parse_args(['--render', '--seed', '3', '--out', str(out)])) == 0
    truth = json.loads((out / 'truth.json').read_text())
    rgb = cv2.imread(str(out / 'rgb.png'))
    depth = np.load(out / 'depth.npy')
    assert rgb.shape == (truth['height'], truth['width'], 3)
    assert depth.shape == (truth['height'], truth['width'])
    assert depth.dtype == np.float32
    assert truth['seed'] == truth['scene']['seed'] == 3
    assert len(truth['objects']) == len(truth['scene']['objects'])
    annotated = cv2.imread(str(out / 'annotated.png'))
    assert annotated.shape == rgb.shape
    assert np.any(annotated != rgb)  # the boxes are drawn
    bad = parser.parse_args(['--render', '--scene-file', str(tmp_path / 'none.yaml')])
    assert sim.run(bad) == 2
