"""`sim_camera`: a simulated RGB-D camera over a PyBullet tabletop, with exact ground truth.

Renders a seeded scene (or a scene file, or a `SceneSpec` handed in by the caller) at `rate_hz`
and publishes, all with one stamp per frame:

- `<topic_prefix>/image_raw` (sensor_msgs/Image rgb8),
- `<topic_prefix>/depth/image_raw` (sensor_msgs/Image 32FC1, metres along the optical axis,
  aligned pixel for pixel with the colour image),
- `<topic_prefix>/camera_info` (sensor_msgs/CameraInfo, pinhole K and P, no distortion),
- `ground_truth_topic` (std_msgs/String: `grounding_agent.sim.frame_truth.truth_document` JSON).

Objects with a path move with the scene time (the node clock since start-up while `motion` is
on). With `publish_clock` the node is the simulation's clock: it publishes /clock, one tick of
1 / rate_hz per frame, and stamps its frames with it (start other nodes with use_sim_time).
With `prerender_s` the frames of that much scene time are rendered at start-up and replayed in
a loop, one per tick, for rates the renderer cannot keep up with (a 640x480 render takes
0.15-0.3 s here); they are cached in the temporary directory, so the next start-up with the same
scene only reads them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.types import CameraIntrinsics, Stamp
from grounding_agent.ros.image_conversion import header_with, image_msg_from_array
from grounding_agent.ros.params import ParamSpec
from grounding_agent.ros.spin import spin_node
from grounding_agent.sim.frame_truth import truth_json
from grounding_agent.sim.scene import SceneSpec, generate_scene
from grounding_agent.sim.world import ObjectTruth, Render, SimWorld

try:
    from rclpy.clock_type import ClockType
except ImportError:  # Humble: ClockType is only in rclpy.clock
    from rclpy.clock import ClockType  # type: ignore[attr-defined,no-redef]

__all__ = [
    'SIM_CAMERA_PARAMETERS',
    'SimCameraNode',
    'camera_info_msg',
    'camera_topics',
    'main',
    'parameter_defaults',
]

SIM_CAMERA_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        'seed',
        0,
        'scene seed (generate_scene) when scene_file is empty',
        read_only=True,
        min_value=0,
        max_value=2**31 - 1,
    ),
    ParamSpec(
        'scene_file',
        '',
        "YAML scene (see grounding_agent/sim/scene_file.py); '' = the seeded random scene",
        read_only=True,
    ),
    ParamSpec('rate_hz', 5.0, 'frames rendered per second', min_value=0.1, max_value=60.0),
    ParamSpec('width', 640, 'image width, pixels', read_only=True, min_value=16, max_value=4096),
    ParamSpec('height', 480, 'image height, pixels', read_only=True, min_value=16, max_value=4096),
    ParamSpec('frame_id', 'sim_camera_optical_frame', 'frame of all messages', read_only=True),
    ParamSpec(
        'topic_prefix',
        'sim/camera',
        'image_raw, depth/image_raw and camera_info are published under it',
        read_only=True,
    ),
    ParamSpec(
        'ground_truth_topic',
        'sim/ground_truth',
        'ground truth JSON per frame (std_msgs/String)',
        read_only=True,
    ),
    ParamSpec('motion', True, 'objects with a path move; false freezes the scene time'),
    ParamSpec(
        'prerender_s',
        0.0,
        'render this many seconds of scene time at start-up (one frame per 1 / rate_hz) and '
        'replay them in a loop, for when the renderer cannot keep up with rate_hz and the '
        "scene's motion repeats with that period; 0 = render every frame as it is due",
        read_only=True,
        min_value=0.0,
        max_value=120.0,
    ),
    ParamSpec(
        'publish_clock',
        False,
        'publish /clock (1 / rate_hz per frame) and stamp frames with it',
        read_only=True,
    ),
)

_WARN_THROTTLE_S = 5.0
_NO_SEGMENTATION = np.full((0, 0), -1, dtype=np.int32)
# Frames rendered ahead are kept here between runs, keyed by the scene, rate and count.
_FRAME_CACHE = Path(tempfile.gettempdir()) / 'grounding_agent_frames'
# Nothing at ROS time zero: many nodes read a zero stamp as 'no time yet'.
_FIRST_CLOCK_S = 1.0


def parameter_defaults() -> dict[str, Any]:
    return {spec.name: spec.default for spec in SIM_CAMERA_PARAMETERS}


def camera_topics(prefix: str) -> dict[str, str]:
    """The image, depth and camera_info topics published under `prefix`."""
    base = prefix.rstrip('/')
    return {
        'image': f'{base}/image_raw',
        'depth': f'{base}/depth/image_raw',
        'camera_info': f'{base}/camera_info',
    }


def camera_info_msg(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    """CameraInfo of an ideal pinhole camera (no distortion, rectified = raw)."""
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    return CameraInfo(
        header=header,
        width=intrinsics.width,
        height=intrinsics.height,
        distortion_model='plumb_bob',
        d=[0.0] * 5,
        k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


def _scene(values: Mapping[str, Any], scene: SceneSpec | None) -> SceneSpec:
    """The SceneSpec to render: the caller's, the scene file's or the seed's."""
    if scene is None:
        if values['scene_file']:
            from grounding_agent.sim.scene_file import load_scene_file

            scene = load_scene_file(str(values['scene_file']))
        else:
            scene = generate_scene(int(values['seed']))
    return scene.with_resolution(int(values['width']), int(values['height']))


class SimCameraNode(Node):
    """Renders the scene in a timer and publishes colour, depth, camera info and truth.

    `scene` replaces the seed and the scene file, for callers that build their own scene
    in-process (the demo, tests).
    """

    def __init__(
        self, node_name: str = 'sim_camera', *, scene: SceneSpec | None = None, **kwargs: Any
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.declare_parameters(
            '', [(spec.name, spec.default, spec.descriptor()) for spec in SIM_CAMERA_PARAMETERS]
        )
        values = {spec.name: self.get_parameter(spec.name).value for spec in SIM_CAMERA_PARAMETERS}
        if not str(values['topic_prefix']).strip('/'):
            raise ConfigError('topic_prefix must name a topic namespace, e.g. /sim/camera')
        self._spec = _scene(values, scene)
        self._world: SimWorld | None = SimWorld(self._spec)
        self._frame_id = str(values['frame_id'])
        self._rate_hz = float(values['rate_hz'])
        self._motion = bool(values['motion'])
        self._publish_clock = bool(values['publish_clock'])
        # The world is used only under this lock: the timer renders, destroy_node closes it.
        self._world_lock = threading.Lock()
        self._frames = 0
        self._scene_time_s = 0.0
        self._last_time: Time | None = None
        self._replayed = 0
        self._prerendered = self._prerender(float(values['prerender_s']))

        # Reliable, keep last 2: both reliable and best-effort (sensor_data) readers connect,
        # and a slow reader gets the newest frame rather than a queue.
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE
        )
        overridable = QoSOverridingOptions.with_default_policies()
        topics = camera_topics(str(values['topic_prefix']))
        self._image_pub = self.create_publisher(
            Image, topics['image'], image_qos, qos_overriding_options=overridable
        )
        self._depth_pub = self.create_publisher(
            Image, topics['depth'], image_qos, qos_overriding_options=overridable
        )
        self._info_pub = self.create_publisher(
            CameraInfo, topics['camera_info'], image_qos, qos_overriding_options=overridable
        )
        self._truth_pub = self.create_publisher(String, str(values['ground_truth_topic']), 10)
        self._clock_pub = (
            self.create_publisher(ClockMsg, '/clock', 10) if self._publish_clock else None
        )
        # Rendering has its own group so parameter services stay responsive during a render.
        # The timer runs on the steady clock: with use_sim_time and this node publishing /clock,
        # a ROS-time timer would wait for a clock that only this timer advances.
        self._render_group = MutuallyExclusiveCallbackGroup()
        self._timer = self.create_timer(
            1.0 / self._rate_hz,
            self._on_timer,
            callback_group=self._render_group,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f'rendering scene seed {self._spec.seed} ({len(self._spec.objects)} objects) at '
            f'{self._rate_hz:g} Hz on {topics["image"]}'
        )

    @property
    def scene(self) -> SceneSpec:
        """The SceneSpec being rendered."""
        return self._spec

    def _on_set_parameters(self, changes: list[Parameter[Any]]) -> SetParametersResult:
        for change in changes:
            if change.name == 'rate_hz':
                rate = float(change.value)
                self._rate_hz = rate
                self._timer.timer_period_ns = int(1e9 / rate)
            elif change.name == 'motion':
                self._motion = bool(change.value)
        return SetParametersResult(successful=True)

    def _advance(self) -> Stamp | None:
        """Move the scene time on by one frame; the frame's stamp, or None (no clock yet)."""
        if self._publish_clock:
            if self._motion:
                self._scene_time_s += 1.0 / self._rate_hz
            return Stamp.from_seconds(_FIRST_CLOCK_S + self._frames / self._rate_hz)
        now = self.get_clock().now()
        if now.nanoseconds == 0:
            self.get_logger().warning(
                'use_sim_time is set but no /clock has arrived; not rendering',
                throttle_duration_sec=_WARN_THROTTLE_S,
            )
            return None
        last, self._last_time = self._last_time, now
        # A clock that jumps back (a replayed simulation) restarts the step, never the scene.
        if self._motion and last is not None and now > last:
            self._scene_time_s += (now - last).nanoseconds * 1e-9
        sec, nanosec = now.seconds_nanoseconds()
        return Stamp(sec=sec, nanosec=nanosec)

    def _prerender(self, seconds: float) -> list[Render]:
        """The frames of the first `seconds` of scene time at `rate_hz` (none for 0), from the
        frame cache when this scene was rendered so before."""
        count = round(seconds * self._rate_hz)
        if count <= 0 or self._world is None:
            return []
        key = hashlib.sha1(f'{self._spec!r}|{self._rate_hz!r}|{count}'.encode()).hexdigest()
        path = _FRAME_CACHE / f'prerender-{key[:16]}.npz'
        cached = self._load_frames(path)
        if cached is not None:
            self.get_logger().info(f'replaying {len(cached)} frames rendered before ({path})')
            return cached
        self.get_logger().info(f'rendering {count} frames ahead ({seconds:g} s of scene time)')
        frames = []
        for index in range(count):
            self._world.set_time(index / self._rate_hz)
            # the segmentation is not published: do not keep it
            frames.append(replace(self._world.render(), segmentation=_NO_SEGMENTATION))
        self._save_frames(path, frames)
        return frames

    def _save_frames(self, path: Path, frames: Sequence[Render]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.stem + '.part.npz')
            np.savez(
                partial,
                rgb=np.stack([f.rgb for f in frames]),
                depth=np.stack([f.depth for f in frames]),
                truth=json.dumps([f.to_dict() for f in frames]),
            )
            partial.replace(path)
        except OSError as exc:  # a cache that cannot be written only costs the next start-up
            self.get_logger().warning(f'frames not cached: {exc}')

    def _load_frames(self, path: Path) -> list[Render] | None:
        try:
            with np.load(path) as data:
                rgb, depth = data['rgb'], data['depth']
                truth = json.loads(str(data['truth']))
        except (OSError, KeyError, ValueError):
            return None
        frames = []
        for index, document in enumerate(truth):
            k = document['intrinsics']
            intrinsics = CameraIntrinsics(
                k['fx'], k['fy'], k['cx'], k['cy'], document['width'], document['height']
            )
            objects = tuple(ObjectTruth.from_dict(o) for o in document['objects'])
            frames.append(
                Render(rgb[index], depth[index], _NO_SEGMENTATION, intrinsics, objects,
                       float(document['stamp_s']), self._spec.camera)
            )  # fmt: skip
        return frames

    def _on_timer(self) -> None:
        stamp = self._advance()
        if stamp is None:
            return
        with self._world_lock:
            if self._world is None:
                return
            if self._prerendered:
                # one rendered frame per tick, looping; with motion off the frame holds
                render = self._prerendered[self._replayed % len(self._prerendered)]
                self._replayed += int(self._motion)
            else:
                scene_time = self._scene_time_s
                if self._spec.duration_s > 0.0:
                    scene_time %= self._spec.duration_s  # a finite sequence replays
                self._world.set_time(scene_time)
                render = self._world.render()
        header = header_with(stamp, self._frame_id)
        if self._clock_pub is not None:
            self._clock_pub.publish(ClockMsg(clock=header.stamp))
        # Truth, depth and intrinsics go out before the colour image so that a reader that acts
        # on the image already holds everything else of the same stamp.
        self._truth_pub.publish(
            String(
                data=truth_json(
                    render,
                    stamp=stamp,
                    frame_id=self._frame_id,
                    seed=self._spec.seed,
                    frame=self._frames,
                )
            )
        )
        self._depth_pub.publish(
            image_msg_from_array(render.depth, encoding='32FC1', header=header)
        )
        self._info_pub.publish(camera_info_msg(render.intrinsics, header))
        self._image_pub.publish(image_msg_from_array(render.rgb, encoding='rgb8', header=header))
        self._frames += 1

    def destroy_node(self) -> None:
        self.destroy_timer(self._timer)
        with self._world_lock:
            world, self._world = self._world, None
        if world is not None:
            world.close()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run grounding_agent sim_camera` and `grounding-agent sim`."""
    # Two threads: the render timer (its own group) and parameter services.
    return spin_node(
        'sim_camera: invalid parameters',
        SimCameraNode,
        args,
        threads=2,
        config_errors=(ConfigError, ParameterException),
    )


if __name__ == '__main__':
    raise SystemExit(main())
