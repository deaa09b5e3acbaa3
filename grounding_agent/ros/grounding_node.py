"""`grounding_node`: cameras and operator commands in; planner JSON, detections, debug image,
markers and diagnostics out.

A managed (lifecycle) node: configure loads the model, activate subscribes to the cameras and
`~/command`, deactivate unsubscribes, cleanup frees the model. With `autostart` (the default) it
configures and activates itself, so a plain `ros2 run grounding_agent grounding_node` works.

Threading: image callbacks only convert a message and drop the frame into its camera's slot;
the model runs in the `InferenceWorker` thread at its own pace. The executor therefore never
waits for a model: parameters, commands and the other cameras stay responsive at any camera
rate, and memory stays at one frame per camera.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from grounding_agent.core.control import is_stop_command
from grounding_agent.core.debug_draw import draw_result
from grounding_agent.core.errors import CommandError, ConfigError, GroundingError
from grounding_agent.core.result import GroundingResult
from grounding_agent.core.tracking import preload_tracker
from grounding_agent.core.types import Frame
from grounding_agent.ros.image_conversion import (
    depth_from_image_msg,
    header_with,
    image_msg_from_array,
    intrinsics_from_camera_info,
    rgb_from_compressed_msg,
    rgb_from_image_msg,
    stamp_from_msg,
)
from grounding_agent.ros.outputs import (
    DiagnosticEntry,
    detection_array,
    diagnostic_array,
    import_vision_msgs,
    markers_for_result,
)
from grounding_agent.ros.params import (
    PARAMETERS,
    NodeSettings,
    ParamSpec,
    backend_config_from_values,
    camera_parameters,
    settings_from_values,
)
from grounding_agent.ros.spin import spin_node
from grounding_agent.ros.worker import (
    CameraFeed,
    CapturedImage,
    CommandRequest,
    InferenceWorker,
    StandingQuery,
    WorkerSettings,
    command_request,
    is_track_command,
)

__all__ = ['GroundingNode', 'main']

_WARN_THROTTLE_S = 5.0
#: A camera silent for this long while the node is active is reported as a warning.
_STALE_CAMERA_S = 5.0


class GroundingNode(LifecycleNode):
    """The grounding agent on ROS 2 (see the module docstring and docs/ros_interface.md)."""

    def __init__(self, node_name: str = 'grounding_node', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._declare(PARAMETERS)
        cameras = [str(c) for c in self.get_parameter('cameras').value]
        # Per-camera topics are declared from the `cameras` list given at start-up.
        for camera in dict.fromkeys(cameras):
            self._declare(camera_parameters(camera))
        self._settings: NodeSettings = settings_from_values(self._parameter_values())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._wakeup = threading.Event()
        self._feeds = {
            name: CameraFeed(name, wakeup=self._wakeup) for name in self._settings.cameras
        }
        # What may run in parallel: each camera's callbacks (one group per camera, so one camera
        # cannot starve another), commands and lifecycle/parameter services (default group), and
        # diagnostics (own group). Inference is in the worker thread, outside the executor.
        self._camera_groups = {
            name: MutuallyExclusiveCallbackGroup() for name in self._settings.cameras
        }
        self._command_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics_group = MutuallyExclusiveCallbackGroup()

        self._vision_msgs = import_vision_msgs()
        if self._vision_msgs is None:
            self.get_logger().info(
                'vision_msgs is not installed: ~/detections is not published '
                '(the planner topic carries the same boxes)'
            )
        self._backend: Any = None
        self._worker: InferenceWorker | None = None
        self._backend_state = 'not loaded'
        self._lifecycle = 'unconfigured'
        self._publish_lock = threading.Lock()
        self._planner_pub: Any = None
        self._detections_pub: Any = None
        self._debug_pub: Any = None
        self._markers_pub: Any = None
        self._subscriptions_active: list[Any] = []
        self._last_received = {name: (0, time.monotonic()) for name in self._feeds}
        self._last_depth_refused: dict[str, str] = {}

        # /diagnostics is a plain publisher, alive in every lifecycle state, so a model that
        # failed to load is visible without the node being active.
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_timer = self.create_timer(
            self._settings.diagnostics_period_s,
            self._publish_diagnostics,
            callback_group=self._diagnostics_group,
        )

        if (
            self.get_parameter('autostart').value
            and self.trigger_configure() == TransitionCallbackReturn.SUCCESS
        ):
            self.trigger_activate()

    # -- parameters ---------------------------------------------------------------------------

    def _declare(self, specs: Sequence[ParamSpec]) -> None:
        self.declare_parameters(
            '', [(spec.name, spec.default, spec.descriptor()) for spec in specs]
        )

    def _parameter_values(self) -> dict[str, Any]:
        names = [spec.name for spec in PARAMETERS]
        return {name: self.get_parameter(name).value for name in names}

    def _on_set_parameters(self, changes: list[Parameter[Any]]) -> SetParametersResult:
        """Validate a change as a whole and apply it atomically, or refuse it with the reason."""
        values = self._parameter_values()
        values.update({p.name: p.value for p in changes if p.name in values})
        try:
            settings = settings_from_values(values)
            if settings.query and (settings.query, settings.query_camera) != (
                self._settings.query,
                self._settings.query_camera,
            ):
                StandingQuery.parse(settings.query, camera=settings.query_camera)
        except (ConfigError, CommandError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        except Exception as exc:  # a bug in validation must refuse the change, not kill the node
            return SetParametersResult(
                successful=False, reason=f'could not validate: {type(exc).__name__}: {exc}'
            )
        if settings.resolver != self._settings.resolver and self._backend is not None:
            self._worker_agent(settings)
        if settings.diagnostics_period_s != self._settings.diagnostics_period_s:
            self._diagnostics_timer.timer_period_ns = int(settings.diagnostics_period_s * 1e9)
        self._settings = settings
        return SetParametersResult(successful=True)

    def _worker_settings(self) -> WorkerSettings:
        settings = self._settings
        return WorkerSettings(
            standing_query=settings.query,
            standing_camera=settings.query_camera,
            max_rate_hz=settings.max_rate_hz,
            command_timeout_s=settings.command_timeout_s,
            command_frame_max_age_s=settings.command_frame_max_age_s,
            depth_sync_tolerance_s=settings.depth_sync_tolerance_s,
            tracking=settings.tracking,
        )

    def _worker_agent(self, settings: NodeSettings) -> Any:
        from grounding_agent.core.agent import GroundingAgent

        agent = GroundingAgent(self._backend, settings.resolver)
        if self._worker is not None:
            self._worker.set_agent(agent)
        return agent

    # -- lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from grounding_agent.backends.base import create_backend

        values = {
            name: self.get_parameter(name).value
            for name in (spec.name for spec in PARAMETERS if spec.name.startswith('backend.'))
        }
        try:
            config = backend_config_from_values(values)
            self._backend_state = f'loading {config.name}'
            self._backend = create_backend(config)
            agent = self._worker_agent(self._settings)
            # Loaded now, with the model, so a standing query's first answer does not stall on
            # importing the tracker (about 1 s) while camera frames queue up behind it.
            preload_tracker()
        except Exception as exc:  # any failure to load a model leaves the node unconfigured
            self._backend_state = f'failed to load: {exc}'
            self.get_logger().error(f'configure failed, backend not loaded: {exc}')
            self._close_backend()
            return TransitionCallbackReturn.FAILURE
        self._backend_state = f'{agent.backend_name} loaded'
        self._create_publishers()
        self._worker = InferenceWorker(
            agent=agent,
            cameras=self._feeds,
            publish=self._publish_result,
            settings=self._worker_settings,
            wakeup=self._wakeup,
            queue_size=self._settings.command_queue_size,
            on_error=lambda message: self.get_logger().error(message),
        )
        self.get_logger().info(
            f'configured: backend {agent.backend_name}, cameras {list(self._feeds)}, '
            f'planner topic {self._settings.planner_topic}'
        )
        return self._entered('inactive', super().on_configure(state))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._subscribe()
        if self._worker is not None:
            self._worker.start()
        self.get_logger().info('active: listening to the cameras and ~/command')
        return self._entered('active', super().on_activate(state))

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker('the node was deactivated before a frame arrived')
        return self._entered('inactive', super().on_deactivate(state))

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return self._entered('unconfigured', super().on_cleanup(state))

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker('the node is shutting down')
        self._release()
        return self._entered('finalized', super().on_shutdown(state))

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_worker('the node hit an error')
        self._release()
        return self._entered('unconfigured', super().on_error(state))

    @property
    def feeds(self) -> Mapping[str, CameraFeed]:
        """Each camera's frame slot and depth / intrinsics buffers (for diagnostics and tests)."""
        return MappingProxyType(self._feeds)

    @property
    def backend_state(self) -> str:
        """'not loaded', 'loading <name>', '<name> loaded' or 'failed to load: <reason>'."""
        return self._backend_state

    def worker_counters(self) -> dict[str, Any]:
        """Commands, answers, busy, timeouts, errors, queued commands ({} before configure)."""
        worker = self._worker
        return worker.counters() if worker is not None else {}

    @property
    def lifecycle_state(self) -> str:
        """unconfigured, inactive, active or finalized."""
        return self._lifecycle

    def _entered(self, label: str, outcome: TransitionCallbackReturn) -> TransitionCallbackReturn:
        if outcome == TransitionCallbackReturn.SUCCESS:
            self._lifecycle = label
        return outcome

    def destroy_node(self) -> None:
        self._unsubscribe()
        self._stop_worker('the node was destroyed')
        self._close_backend()
        super().destroy_node()

    def _create_publishers(self) -> None:
        settings = self._settings
        # Reliable + transient local: a planner that starts late still gets the last answers.
        planner_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=settings.planner_qos_depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        overridable = QoSOverridingOptions.with_default_policies()
        self._planner_pub = self.create_lifecycle_publisher(
            String, settings.planner_topic, planner_qos, qos_overriding_options=overridable
        )
        if self._vision_msgs is not None:
            self._detections_pub = self.create_lifecycle_publisher(
                self._vision_msgs.Detection2DArray,
                '~/detections',
                10,
                qos_overriding_options=overridable,
            )
        # Reliable (depth 2) so both RViz's default reliable subscription and best-effort
        # viewers can connect.
        self._debug_pub = self.create_lifecycle_publisher(Image, '~/debug_image', 2)
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, '~/markers', 10)

    def _destroy_publishers(self) -> None:
        for name in ('_planner_pub', '_detections_pub', '_debug_pub', '_markers_pub'):
            publisher = getattr(self, name)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
                setattr(self, name, None)

    def _subscribe(self) -> None:
        settings = self._settings
        image_qos = qos_profile_sensor_data if settings.image_qos == 'sensor_data' else 10
        for camera in self._feeds:
            topics = {
                kind: str(self.get_parameter(f'camera.{camera}.{kind}_topic').value)
                for kind in ('image', 'compressed', 'depth', 'camera_info')
            }
            group = self._camera_groups[camera]
            handlers: list[tuple[str, type, Callable[[Any], None]]] = [
                ('image', Image, self._colour_handler(camera, 'image', rgb_from_image_msg)),
                (
                    'compressed',
                    CompressedImage,
                    self._colour_handler(camera, 'compressed image', rgb_from_compressed_msg),
                ),
                ('depth', Image, self._depth_handler(camera)),
                ('camera_info', CameraInfo, self._camera_info_handler(camera)),
            ]
            for kind, msg_type, handler in handlers:
                if topics[kind]:
                    self._subscriptions_active.append(
                        self.create_subscription(
                            msg_type,
                            topics[kind],
                            handler,
                            image_qos,
                            callback_group=group,
                            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
                        )
                    )
        # Deep enough that a burst of commands reaches the callback (and gets a 'busy' answer)
        # instead of being overwritten in the DDS reader's history unanswered.
        self._subscriptions_active.append(
            self.create_subscription(
                String, '~/command', self._on_command, 100, callback_group=self._command_group
            )
        )

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []

    def _stop_worker(self, reason: str) -> None:
        if self._worker is None:
            return
        for request in self._worker.stop():
            self._answer_now(request.error(reason))
        for feed in self._feeds.values():
            feed.slot.clear()
            feed.sync.clear()

    def _release(self) -> None:
        self._worker = None
        self._destroy_publishers()
        self._close_backend()

    def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception as exc:  # freeing a model must not stop the node from cleaning up
                self.get_logger().warning(f'backend close failed: {exc!r}')
            self._backend_state = 'not loaded'

    # -- inputs -------------------------------------------------------------------------------

    def _refuse(self, camera: str, what: str, exc: Exception) -> None:
        self._feeds[camera].refuse(f'{what}: {exc}')
        self.get_logger().warning(
            f'camera {camera}: {what} refused: {exc}', throttle_duration_sec=_WARN_THROTTLE_S
        )

    def _colour_handler(
        self, camera: str, what: str, convert: Callable[..., Any]
    ) -> Callable[[Any], None]:
        """A callback that converts a colour message and drops it into the camera's slot."""
        feed = self._feeds[camera]

        def on_colour(msg: Any) -> None:
            try:
                rgb = convert(msg, max_bytes=self._settings.max_image_bytes)
            except GroundingError as exc:
                self._refuse(camera, what, exc)
                return
            captured = _captured(rgb, msg.header)
            feed.slot.put(captured)
            worker = self._worker
            tracked = worker.on_camera_image(camera, captured) if worker is not None else None
            if tracked is not None:
                # the standing grounding's box for this very frame, from the tracker
                frame = Frame(
                    image=rgb, stamp=captured.stamp, frame_id=captured.frame_id, camera=camera
                )
                self._publish_result(tracked, frame)

        return on_colour

    def _depth_handler(self, camera: str) -> Callable[[Image], None]:
        feed = self._feeds[camera]

        def on_depth(msg: Image) -> None:
            try:
                depth = depth_from_image_msg(msg, max_bytes=self._settings.max_image_bytes)
            except GroundingError as exc:
                # Depth is optional: the frame is still grounded in 2D, so only warn.
                self._last_depth_refused[camera] = str(exc)
                self.get_logger().warning(
                    f'camera {camera}: depth image refused: {exc}',
                    throttle_duration_sec=_WARN_THROTTLE_S,
                )
                return
            feed.sync.add_depth(stamp_from_msg(msg.header.stamp), depth)

        return on_depth

    def _camera_info_handler(self, camera: str) -> Callable[[CameraInfo], None]:
        feed = self._feeds[camera]

        def on_camera_info(msg: CameraInfo) -> None:
            intrinsics = intrinsics_from_camera_info(msg)
            if intrinsics is None:
                self.get_logger().warning(
                    f'camera {camera}: camera_info without a calibration (K) ignored',
                    throttle_duration_sec=_WARN_THROTTLE_S,
                )
                return
            feed.sync.add_intrinsics(stamp_from_msg(msg.header.stamp), intrinsics)

        return on_camera_info

    def _on_command(self, msg: String) -> None:
        settings = self._settings
        request = command_request(
            msg.data,
            cameras=list(self._feeds),
            default_camera=settings.query_camera,
            received_s=time.monotonic(),
            max_chars=settings.resolver.max_command_chars,
        )
        if isinstance(request, GroundingResult):
            self._answer_now(request)
            return
        if is_stop_command(request.text):
            self._stop_standing_query(request)
            return
        worker = self._worker
        if worker is not None and is_track_command(request.text):
            # A track command is a standing grounding: it becomes the node's `query` (visible
            # with `ros2 param get`), followed frame after frame; the command itself still gets
            # its one answer below.
            outcome = self.set_parameters_atomically(
                [
                    Parameter('query', value=request.text),
                    Parameter('query_camera', value=request.camera),
                ]
            )
            if not outcome.successful:
                self.get_logger().warning(f'track command not kept running: {outcome.reason}')
        if worker is None:
            self._answer_now(request.error('the node is not active'))
        elif not worker.submit(request):
            self._answer_now(
                request.error(
                    f'busy: {settings.command_queue_size} commands are already waiting; try again',
                )
            )

    def _stop_standing_query(self, request: CommandRequest) -> None:
        """'stop' / 'cancel': clear the `query` parameter (the standing grounding) and say so."""
        running = self._settings.query
        if running:
            outcome = self.set_parameters_atomically([Parameter('query', value='')])
            if not outcome.successful:
                self._answer_now(request.error(f'could not stop: {outcome.reason}'))
                return
        self._answer_now(request.stopped(running))

    # -- outputs ------------------------------------------------------------------------------

    def _answer_now(self, result: GroundingResult) -> None:
        """An answer that needs no frame (bad command, busy, shutting down)."""
        if self._worker is not None and self._backend is not None and not result.backend:
            result = result.model_copy(update={'backend': self._worker.agent.backend_name})
        self._publish_result(result, None)

    def _publish_result(self, result: GroundingResult, frame: Frame | None) -> None:
        """Publish one result on every output (called from the worker and the executor)."""
        settings = self._settings
        with self._publish_lock:
            planner = self._planner_pub
            if planner is None:
                self.get_logger().warning(
                    f'result dropped, node not configured: {result.status.value} {result.reason}'
                )
                return
            planner.publish(String(data=result.to_json()))
            self.get_logger().debug(f'result: {result.to_json()}')
            if frame is None:
                return
            header = header_with(frame.stamp, frame.frame_id)
            if self._detections_pub is not None and self._vision_msgs is not None:
                self._detections_pub.publish(detection_array(result, header, self._vision_msgs))
            if settings.markers and self._markers_pub is not None:
                self._markers_pub.publish(
                    markers_for_result(result, header, intrinsics=frame.intrinsics)
                )
            debug = self._debug_pub
            if settings.debug_image and debug is not None and debug.get_subscription_count() > 0:
                debug.publish(
                    image_msg_from_array(draw_result(frame.image, result), header=header)
                )

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        name = self.get_name()
        state = self._lifecycle
        entries = []
        counters = self.worker_counters()
        if self._backend is not None:
            level, message = 'ok', self._backend_state
        elif self._backend_state.startswith('failed'):
            level, message = 'error', self._backend_state
        else:
            level, message = 'warn', f'{self._backend_state} (lifecycle state {state})'
        entries.append(
            DiagnosticEntry(
                name=f'{name}: backend',
                level=level,
                message=message,
                values={'lifecycle_state': state, **counters},
            )
        )
        for camera, feed in self._feeds.items():
            stats = feed.slot.stats
            previous_count, previous_time = self._last_received[camera]
            rate = (stats.received - previous_count) / max(1e-6, now - previous_time)
            self._last_received[camera] = (stats.received, now)
            sync = feed.sync.stats
            age = feed.slot.age_s()
            level, message = 'ok', f'{rate:.1f} Hz'
            if state == 'active' and (age is None or age > _STALE_CAMERA_S):
                level, message = (
                    'warn',
                    'no image received' if age is None else (f'no image for {age:.0f} s'),
                )
            entries.append(
                DiagnosticEntry(
                    name=f'{name}: camera {camera}',
                    level=level,
                    message=message,
                    values={
                        'rate_hz': rate,
                        'received': stats.received,
                        'processed': stats.taken,
                        'dropped': stats.dropped,
                        'refused': feed.refused,
                        'depth_matched': sync.depth_matched,
                        'intrinsics_matched': sync.intrinsics_matched,
                        'last_depth_refusal': self._last_depth_refused.get(camera, ''),
                        'last_image_age_s': -1.0 if age is None else age,
                    },
                )
            )
        self._diagnostics_pub.publish(
            diagnostic_array(entries, Header(stamp=self.get_clock().now().to_msg()))
        )


def _captured(rgb: Any, header: Header) -> CapturedImage:
    return CapturedImage(
        image=rgb,
        stamp=stamp_from_msg(header.stamp),
        frame_id=header.frame_id,
        received_s=time.monotonic(),
    )


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run grounding_agent grounding_node` and `grounding-agent node`."""
    # Four threads: cameras, commands, parameter/lifecycle services and diagnostics can all be
    # served while another callback runs; inference has its own thread.
    return spin_node(
        'grounding_node: invalid parameters',
        GroundingNode,
        args,
        threads=4,
        config_errors=(ConfigError, ParameterException),
    )


if __name__ == '__main__':
    raise SystemExit(main())
