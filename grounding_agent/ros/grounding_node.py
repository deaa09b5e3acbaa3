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

import struct
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from grounding_agent.core.debug_draw import draw_result
from grounding_agent.core.errors import CommandError, ConfigError, GroundingError
from grounding_agent.core.frame_slot import StreamMonitor
from grounding_agent.core.frames import RigidTransform
from grounding_agent.core.intake import (
    CommandKind,
    CommandLedger,
    CommandRequest,
    classify,
    take_command,
)
from grounding_agent.core.reader import reader_available
from grounding_agent.core.result import STANDING_REQUEST_ID, GroundingResult, error_result
from grounding_agent.core.tracking import preload_tracker
from grounding_agent.core.types import Frame
from grounding_agent.ros.frames import TransformLookup
from grounding_agent.ros.image_conversion import (
    StampedImage,
    depth_from_cdr,
    header_with,
    image_msg_from_array,
    intrinsics_from_camera_info,
    rgb_from_compressed_cdr,
    rgb_from_image_cdr,
    stamp_from_msg,
)
from grounding_agent.ros.outputs import (
    DiagnosticEntry,
    detection_array,
    diagnostic_array,
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
from grounding_agent.ros.typed_interfaces import TypedInterfaces
from grounding_agent.ros.worker import (
    CameraFeed,
    CapturedImage,
    InferenceWorker,
    StandingQuery,
    WorkerSettings,
)

__all__ = ['GroundingNode', 'main']

_WARN_THROTTLE_S = 5.0
#: How long a lifecycle transition waits for the inference under way before it fails.
_STOP_TIMEOUT_S = 30.0
#: How long a signal (SIGINT/SIGTERM) waits for it before the process ends without it.
_SIGNAL_STOP_TIMEOUT_S = 3.0
#: Period of the check that answers commands whose `command_timeout_s` has passed.
_DEADLINE_PERIOD_S = 0.1
_SHUTTING_DOWN = 'shutting down'
#: A camera silent for this long while the node is active is reported as a warning.
_STALE_CAMERA_S = 5.0


class GroundingNode(LifecycleNode):
    """The grounding agent on ROS 2 (see the module docstring and docs/ros_interface.md)."""

    def __init__(self, node_name: str = 'grounding_node', **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        try:
            self._declare(PARAMETERS)
            cameras = [str(c) for c in self.get_parameter('cameras').value]
            # Per-camera topics are declared from the `cameras` list given at start-up.
            for camera in dict.fromkeys(cameras):
                self._declare(camera_parameters(camera))
            self._settings: NodeSettings = settings_from_values(self._parameter_values())
        except Exception:
            # Bad start-up parameters: free the half-built node here, so shutting rclpy down
            # does not call our destroy_node on attributes that were never made.
            super().destroy_node()
            raise
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
        self._ledger = CommandLedger()
        self._closing = ''  # why commands are refused at once ('' = they are not)
        self._destroyed = False

        self._backend: Any = None
        self._worker: InferenceWorker | None = None
        self._backend_state = 'not loaded'
        self._reader_loaded = False
        self._lifecycle = 'unconfigured'
        self._publish_lock = threading.Lock()
        self._planner_pub: Any = None
        self._tracking_pub: Any = None
        self._detections_pub: Any = None
        self._debug_pub: Any = None
        self._markers_pub: Any = None
        self._subscriptions_active: list[Any] = []
        self._streams = {name: StreamMonitor() for name in self._feeds}
        self._last_depth_refused: dict[str, str] = {}

        # /diagnostics is a plain publisher, alive in every lifecycle state, so a model that
        # failed to load is visible without the node being active.
        self._diagnostics_pub = self.create_publisher(
            DiagnosticArray,
            '/diagnostics',
            10,
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        self._diagnostics_timer = self.create_timer(
            self._settings.diagnostics_period_s,
            self._publish_diagnostics,
            callback_group=self._diagnostics_group,
        )
        # Deadlines hold while the worker thread is inside the model: checked from here.
        self._deadline_timer = self.create_timer(
            _DEADLINE_PERIOD_S, self._expire_commands, callback_group=self._command_group
        )
        # ~/ground and ~/track: typed requests that go through the same command path.
        self._typed = TypedInterfaces(self, submit_command=self._on_command)
        self._frames = self._transform_lookup(self._settings.target_frame)

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
            # Likewise the command reader (its language pipeline takes seconds to load): the
            # first command is classified in the executor, which must not stall on it.
            classify('find the red cube')
            # That sentence is read by the grammar alone; the reader's spaCy pipeline (2-9 s to
            # load) is loaded here too, not by the first sentence the grammar cannot read.
            self._reader_loaded = reader_available()
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
            on_error=self._log_error,
            ledger=self._ledger,
        )
        self.get_logger().info(
            f'configured: backend {agent.backend_name}, cameras {list(self._feeds)}, '
            f'planner topic {self._settings.planner_topic}, command reader '
            + ('spaCy + grammar' if self._reader_loaded else 'grammar only (spaCy not installed)')
        )
        return self._entered('inactive', super().on_configure(state))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._worker is not None and self._worker.is_alive:
            self.get_logger().error(
                'cannot activate: the model is still busy with the inference under way at the '
                'last deactivation; try again when it has finished'
            )
            return TransitionCallbackReturn.FAILURE
        self._closing = ''
        self._subscribe()
        if self._worker is not None:
            self._worker.start()
        self.get_logger().info('active: listening to the cameras and ~/command')
        return self._entered('active', super().on_activate(state))

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        # Still subscribed while the worker stops: a command arriving meanwhile is answered
        # 'shutting down' rather than left unread in the middleware when the reader goes.
        self._stop_worker(
            f'{_SHUTTING_DOWN}: the node was deactivated', timeout_s=self._stop_timeout_s
        )
        self._unsubscribe()
        return self._entered('inactive', super().on_deactivate(state))

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._release():
            return TransitionCallbackReturn.FAILURE
        return self._entered('unconfigured', super().on_cleanup(state))

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._finish('finalized', super().on_shutdown(state), 'the node is shutting down')

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._finish('unconfigured', super().on_error(state), 'the node hit an error')

    def _finish(
        self, label: str, outcome: TransitionCallbackReturn, why: str
    ) -> TransitionCallbackReturn:
        """Shutdown or error: answer every accepted command, then free the model if it is safe."""
        stopped = self._stop_worker(f'{_SHUTTING_DOWN}: {why}', timeout_s=self._stop_timeout_s)
        self._unsubscribe()
        if not (stopped and self._release()):
            return TransitionCallbackReturn.FAILURE
        return self._entered(label, outcome)

    _stop_timeout_s = _STOP_TIMEOUT_S

    def shut_down(self, *, timeout_s: float = _SIGNAL_STOP_TIMEOUT_S) -> None:
        """The orderly end on SIGINT/SIGTERM, while the executor still spins: every accepted
        command is answered 'shutting down' before the publishers go; the model gets
        `timeout_s` to finish the inference under way, and is closed only if it did."""
        self._stop_timeout_s = timeout_s
        try:
            if self._lifecycle != 'finalized':
                self.trigger_shutdown()
        except Exception:  # a failed transition must not stop the process from ending
            self.get_logger().error(f'shutdown transition failed:\n{traceback.format_exc()}')
        finally:
            self._stop_timeout_s = _STOP_TIMEOUT_S

    @property
    def feeds(self) -> Mapping[str, CameraFeed]:
        """Each camera's frame slot and depth / intrinsics buffers (for diagnostics and tests)."""
        return MappingProxyType(self._feeds)

    @property
    def backend_state(self) -> str:
        """'not loaded', 'loading <name>', '<name> loaded' or 'failed to load: <reason>'."""
        return self._backend_state

    def command_counts(self) -> dict[str, int]:
        """Commands received, answered, refused (answered at once) and lost, since start-up."""
        return self._ledger.counts()

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
        if self._destroyed:  # a launch file and a test harness may both destroy it
            return
        self._destroyed = True
        # A shutdown before this one already gave the model its time: do not wait again.
        wait_s = 0.0 if self._closing else 5.0
        stopped = self._stop_worker(f'{_SHUTTING_DOWN}: the node was destroyed', timeout_s=wait_s)
        self._unsubscribe()
        if stopped:
            self._close_backend()
        else:
            self.get_logger().warning(
                'the model is still running: the backend is not closed under it'
            )
        self._destroy_publishers()
        self._typed.destroy()
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
        # The standing grounding's result for every processed frame: volatile, so a planner
        # joining late is replayed the command answers above, not stale tracking boxes.
        self._tracking_pub = self.create_lifecycle_publisher(
            String,
            settings.tracking_topic,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
            qos_overriding_options=overridable,
        )
        self._detections_pub = self.create_lifecycle_publisher(
            Detection2DArray, '~/detections', 10, qos_overriding_options=overridable
        )
        # Reliable (depth 2) so both RViz's default reliable subscription and best-effort
        # viewers can connect.
        self._debug_pub = self.create_lifecycle_publisher(
            Image, '~/debug_image', 2, qos_overriding_options=overridable
        )
        self._markers_pub = self.create_lifecycle_publisher(
            MarkerArray, '~/markers', 10, qos_overriding_options=overridable
        )

    def _destroy_publishers(self) -> None:
        with self._publish_lock:  # never under a result being published
            for name in (
                '_planner_pub',
                '_tracking_pub',
                '_detections_pub',
                '_debug_pub',
                '_markers_pub',
            ):
                publisher = getattr(self, name)
                if publisher is not None:
                    self.destroy_lifecycle_publisher(publisher)
                    setattr(self, name, None)

    def _subscribe(self) -> None:
        settings = self._settings
        # Depth 1: only the newest frame matters (the slot keeps one anyway), and a deeper
        # reader history only queues stale frames for the callback to convert and discard.
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=(
                ReliabilityPolicy.BEST_EFFORT
                if settings.image_qos == 'sensor_data'
                else ReliabilityPolicy.RELIABLE
            ),
        )
        for camera in self._feeds:
            topics = {
                kind: str(self.get_parameter(f'camera.{camera}.{kind}_topic').value)
                for kind in ('image', 'compressed', 'depth', 'camera_info')
            }
            # Colour and depth are raw: read from their serialized bytes (image_conversion).
            handlers: list[tuple[str, type, Callable[[Any], None], bool]] = [
                ('image', Image, self._colour_handler(camera, 'image', rgb_from_image_cdr), True),
                (
                    'compressed',
                    CompressedImage,
                    self._colour_handler(camera, 'compressed image', rgb_from_compressed_cdr),
                    True,
                ),
                ('depth', Image, self._depth_handler(camera), True),
                ('camera_info', CameraInfo, self._camera_info_handler(camera), False),
            ]
            for kind, msg_type, handler, raw in handlers:
                if topics[kind]:
                    self._subscriptions_active.append(
                        self._camera_subscription(
                            camera, kind, msg_type, topics[kind], handler, image_qos, raw=raw
                        )
                    )
        self._subscriptions_active.append(self._command_subscription())

    def _camera_subscription(
        self,
        camera: str,
        kind: str,
        msg_type: type,
        topic: str,
        handler: Callable[[Any], None],
        qos: QoSProfile,
        *,
        raw: bool,
    ) -> Any:
        """One camera input; colour frames the middleware lost are counted for /diagnostics."""
        options: dict[str, Any] = {
            'callback_group': self._camera_groups[camera],
            'qos_overriding_options': QoSOverridingOptions.with_default_policies(),
            'raw': raw,
        }
        if kind in ('image', 'compressed'):
            stream = self._streams[camera]
            options['event_callbacks'] = SubscriptionEventCallbacks(
                message_lost=lambda info: stream.on_lost(
                    int(getattr(info, 'total_count_change', 0))
                )
            )
        try:
            return self.create_subscription(msg_type, topic, handler, qos, **options)
        except Exception as exc:  # an RMW without the message-lost event: count nothing
            if 'event_callbacks' not in options:
                raise
            self.get_logger().warning(f'{topic} without message-lost events: {exc}')
            del options['event_callbacks']
            return self.create_subscription(msg_type, topic, handler, qos, **options)

    def _command_subscription(self) -> Any:
        """`~/command`: reliable and keep-all, so a burst reaches the callback (and gets its
        'busy' answer) instead of being overwritten unanswered in the reader's history. Raw:
        the callback sees the wire bytes, so their size is checked before anything is decoded
        and invalid UTF-8 is told apart from a real U+FFFD."""
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_ALL, depth=1, reliability=ReliabilityPolicy.RELIABLE
        )

        def subscribe(**options: Any) -> Any:
            return self.create_subscription(
                String,
                '~/command',
                self._on_command,
                qos,
                callback_group=self._command_group,
                raw=True,
                **options,
            )

        try:
            return subscribe(
                event_callbacks=SubscriptionEventCallbacks(message_lost=self._on_commands_lost),
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )
        except UnsupportedEventTypeError as exc:  # an RMW without the event: count nothing
            # (the QoS override parameters were declared by the first attempt already)
            self.get_logger().warning(f'~/command without message-lost events: {exc}')
            return subscribe()

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        for feed in self._feeds.values():
            feed.slot.clear()
            feed.sync.clear()

    def _stop_worker(self, reason: str, *, timeout_s: float = _STOP_TIMEOUT_S) -> bool:
        """Refuse new commands and answer the accepted ones with `reason` (publishers still up).
        False when the inference thread is still inside the model after `timeout_s`."""
        self._closing = reason
        self._typed.stop_tracking('shutdown', reason)
        stopped = True
        if self._worker is not None:
            stopped = self._worker.stop(reason, timeout_s=timeout_s)
            if not stopped:
                self.get_logger().error(
                    f'the model is still running after {timeout_s:g} s; its command was '
                    'answered and the backend is kept until it returns'
                )
        return stopped

    def _release(self) -> bool:
        """Destroy the publishers and free the model; False (nothing freed) while the model
        still runs in the worker thread."""
        if self._worker is not None and self._worker.is_alive:
            self.get_logger().error('the model is still running: refusing to free it under it')
            return False
        self._worker = None
        self._destroy_publishers()
        self._close_backend()
        return True

    def _close_backend(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception as exc:  # freeing a model must not stop the node from cleaning up
                self.get_logger().warning(f'backend close failed: {exc!r}')
            else:
                self.get_logger().info('backend closed')
            self._backend_state = 'not loaded'

    # -- inputs -------------------------------------------------------------------------------

    def _refuse(self, camera: str, what: str, exc: Exception) -> None:
        self._feeds[camera].refuse(f'{what}: {exc}')
        self.get_logger().warning(
            f'camera {camera}: {what} refused: {exc}', throttle_duration_sec=_WARN_THROTTLE_S
        )

    def _colour_handler(
        self, camera: str, what: str, convert: Callable[..., StampedImage]
    ) -> Callable[[bytes], None]:
        """A callback that converts a serialized colour message and drops it into the camera's
        slot. An oversized or malformed one is refused from its header, and its bytes are freed
        when the callback returns."""
        feed = self._feeds[camera]
        stream = self._streams[camera]

        def on_colour(serialized: bytes) -> None:
            try:
                converted = convert(serialized, max_bytes=self._settings.max_image_bytes)
            except GroundingError as exc:
                stream.on_frame(float('nan'))
                self._refuse(camera, what, exc)
                return
            except Exception as exc:  # a bug in conversion must not end the node
                stream.on_frame(float('nan'))
                self._refuse(camera, what, GroundingError(f'{type(exc).__name__}: {exc}'))
                return
            del serialized
            rgb = converted.image
            stream.on_frame(converted.stamp.to_seconds())
            captured = _captured(converted)
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

    def _depth_handler(self, camera: str) -> Callable[[bytes], None]:
        feed = self._feeds[camera]

        def on_depth(serialized: bytes) -> None:
            try:
                depth = depth_from_cdr(serialized, max_bytes=self._settings.max_image_bytes)
            except Exception as exc:  # refused, or a bug in conversion: never ends the node
                # Depth is optional: the frame is still grounded in 2D, so only warn.
                self._last_depth_refused[camera] = str(exc)
                self.get_logger().warning(
                    f'camera {camera}: depth image refused: {exc}',
                    throttle_duration_sec=_WARN_THROTTLE_S,
                )
                return
            feed.sync.add_depth(depth.stamp, depth.image)

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

    def _on_command(self, serialized: bytes) -> None:
        """One `~/command` message: exactly one answer now, or a place in the worker's queue."""
        self._ledger.received()
        request: CommandRequest | None = None
        try:
            settings = self._settings
            max_chars = settings.resolver.max_command_chars
            outcome = take_command(
                _string_payload(serialized),
                cameras=list(self._feeds),
                default_camera=settings.query_camera,
                received_s=time.monotonic(),
                max_chars=max_chars,
            )
            if isinstance(outcome, GroundingResult):
                self._warn_refused(outcome)
                self._answer_now(outcome, refused=True)
                return
            request = outcome
            self._schedule(request)
        except CommandError as exc:  # not a std_msgs/String on the wire
            self._answer_now(error_result(f'unreadable command message: {exc}'), refused=True)
        except Exception as exc:  # a bug must neither end the node nor lose the answer
            self.get_logger().error(f'command handling failed:\n{traceback.format_exc()}')
            reason = f'internal error while taking the command: {type(exc).__name__}: {exc}'
            self._answer_now(
                request.error(reason) if request is not None else error_result(reason),
                refused=True,
            )

    def _schedule(self, request: CommandRequest) -> None:
        worker = self._worker
        if self._closing or worker is None:
            reason = self._closing or 'the node is not active'
            self._answer_now(request.error(reason), refused=True)
            return
        if request.kind is CommandKind.STOP:
            self._stop_standing_query(request)
            return
        if request.kind is CommandKind.TRACK:
            # A track command is a standing grounding: it becomes the node's `query` (visible
            # with `ros2 param get`), followed frame after frame; the command itself still gets
            # its one answer from the worker.
            outcome = self.set_parameters_atomically(
                [
                    Parameter('query', value=request.text),
                    Parameter('query_camera', value=request.camera),
                ]
            )
            if not outcome.successful:
                self.get_logger().warning(f'track command not kept running: {outcome.reason}')
        refusal = worker.submit(request)
        if refusal is not None:
            self._answer_now(request.error(refusal), refused=True)

    def _log_error(self, message: str) -> None:
        self.get_logger().error(message)

    def _warn_refused(self, result: GroundingResult) -> None:
        self.get_logger().warning(
            f'command refused: {result.reason[:200]}', throttle_duration_sec=_WARN_THROTTLE_S
        )

    def _on_commands_lost(self, info: Any) -> None:
        """The middleware reports commands it dropped before the node could read them."""
        lost = int(getattr(info, 'total_count_change', 0))
        if lost > 0:
            self._ledger.lost(lost)
            self.get_logger().error(
                f'{lost} commands were lost by the middleware before they could be answered',
                throttle_duration_sec=_WARN_THROTTLE_S,
            )

    def _expire_commands(self) -> None:
        worker = self._worker
        if worker is None:
            return
        try:
            worker.expire_due()
        except Exception:  # a timer callback must not end the node either
            self.get_logger().error(
                f'command deadline check failed:\n{traceback.format_exc()}',
                throttle_duration_sec=_WARN_THROTTLE_S,
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

    def _answer_now(self, result: GroundingResult, *, refused: bool = False) -> None:
        """A command's one answer when it needs no frame (bad command, busy, shutting down,
        stop), counted in the ledger."""
        worker = self._worker
        if worker is not None and self._backend is not None and not result.backend:
            result = result.model_copy(update={'backend': worker.agent.backend_name})
        if self._publish_result(result, None):
            self._ledger.answered(refused=refused)
        else:
            self._ledger.lost()

    def _publish_result(self, result: GroundingResult, frame: Frame | None) -> bool:
        """Publish one result on every output (called from the worker and the executor);
        False when it could not be published on its topic. Command answers go to the planner
        topic, the standing grounding's per-frame results to the tracking topic."""
        settings = self._settings
        with self._publish_lock:
            transform = self._transform_for(frame)
            # the Ground call or Track goal waiting for it, even when nothing can be published
            self._typed.on_result(result, transform)
            standing = result.request_id == STANDING_REQUEST_ID
            planner = self._tracking_pub if standing else self._planner_pub
            if planner is None:
                self.get_logger().warning(
                    f'result dropped, node not configured: {result.status.value} {result.reason}',
                    throttle_duration_sec=_WARN_THROTTLE_S,
                )
                return False
            try:
                planner.publish(String(data=result.to_json()))
            except Exception as exc:  # e.g. the context went away under a late answer
                self.get_logger().error(
                    f'result not published: {exc}', throttle_duration_sec=_WARN_THROTTLE_S
                )
                return False
            self.get_logger().debug(f'result: {result.to_json()}')
            if frame is None:
                return True
            header = header_with(frame.stamp, frame.frame_id)
            if self._detections_pub is not None:
                self._detections_pub.publish(detection_array(result, header))
            if settings.markers and self._markers_pub is not None:
                self._markers_pub.publish(
                    markers_for_result(
                        result, header, intrinsics=frame.intrinsics, transform=transform
                    )
                )
            debug = self._debug_pub
            if settings.debug_image and debug is not None and debug.get_subscription_count() > 0:
                debug.publish(
                    image_msg_from_array(draw_result(frame.image, result), header=header)
                )
        return True

    def _transform_lookup(self, target_frame: str) -> TransformLookup | None:
        if not target_frame:
            return None
        try:
            return TransformLookup(self, target_frame)
        except ImportError:
            self.get_logger().warning(
                f'target_frame {target_frame!r} is set but tf2_ros is not installed: points '
                "and markers stay in the camera's frame"
            )
            return None

    def _transform_for(self, frame: Frame | None) -> RigidTransform | None:
        """Camera frame -> target_frame at the image's stamp, when tf2 knows it."""
        lookup = self._frames
        if lookup is None or frame is None or not frame.frame_id:
            return None
        transform = lookup.lookup(frame.frame_id, frame.stamp)
        if transform is None:
            self.get_logger().warning(
                f'no transform {frame.frame_id} -> {lookup.target_frame} at the image stamp: '
                "points stay in the camera's frame",
                throttle_duration_sec=_WARN_THROTTLE_S,
            )
        return transform

    def _commands_entry(self, name: str, counters: Mapping[str, Any]) -> DiagnosticEntry:
        """received = answered + waiting (queued or with the model); lost: dropped by the
        middleware before the node read them, or answers that could not be published."""
        ledger = self._ledger.counts()
        waiting = int(counters.get('queued', 0)) + int(counters.get('in_flight', 0))
        level, message = 'ok', f'{ledger["answered"]} of {ledger["received"]} answered'
        if ledger['lost']:
            level, message = 'warn', f'{ledger["lost"]} commands lost; {message}'
        return DiagnosticEntry(
            name=f'{name}: commands',
            level=level,
            message=message,
            values={
                **ledger,
                'waiting': waiting,
                'queue_size': self._settings.command_queue_size,
                'timed_out': counters.get('timed_out', 0),
            },
        )

    def _camera_entry(
        self, name: str, camera: str, feed: CameraFeed, state: str
    ) -> DiagnosticEntry:
        """received = frames that arrived (refused ones included); used = frames the model
        looked at; superseded = frames replaced by a newer one before the model looked (normal
        while it is idle or slower than the camera); lost = frames the middleware reported lost.
        WARN when no frame arrives, or far fewer than the camera sends."""
        stats = feed.slot.stats
        rates = self._streams[camera].rates()
        sync = feed.sync.stats
        age = feed.slot.age_s()
        level, message = 'ok', f'{rates.received_hz:.1f} Hz'
        shortfall = rates.shortfall()
        if state == 'active' and (age is None or age > _STALE_CAMERA_S):
            level = 'warn'
            message = 'no image received' if age is None else f'no image for {age:.0f} s'
        elif shortfall:
            level, message = 'warn', f'{shortfall}; check the DDS profile and the camera QoS'
        return DiagnosticEntry(
            name=f'{name}: camera {camera}',
            level=level,
            message=message,
            values={
                'rate_hz': rates.received_hz,
                'sent_rate_hz': -1.0 if rates.sent_hz != rates.sent_hz else rates.sent_hz,
                'received': stats.received + feed.refused,
                'used': stats.used,
                'superseded': stats.superseded,
                'refused': feed.refused,
                'lost': self._streams[camera].lost_total,
                'depth_matched': sync.depth_matched,
                'intrinsics_matched': sync.intrinsics_matched,
                'last_depth_refusal': self._last_depth_refused.get(camera, ''),
                'last_image_age_s': -1.0 if age is None else age,
            },
        )

    def _publish_diagnostics(self) -> None:
        # Fully qualified, so the entries of two namespaced nodes never collide.
        name = self.get_fully_qualified_name()
        state = self._lifecycle
        entries = []
        counters = self.worker_counters()
        if self._backend is not None:
            # A served model can fail at run time: its backend reports 'degraded' itself.
            health = getattr(self._backend, 'health', None)
            level, message = (health() if callable(health) else None) or (
                'ok',
                self._backend_state,
            )
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
        entries.append(self._commands_entry(name, counters))
        for camera, feed in self._feeds.items():
            entries.append(self._camera_entry(name, camera, feed, state))
        self._diagnostics_pub.publish(
            diagnostic_array(
                entries, Header(stamp=self.get_clock().now().to_msg()), hardware_id=name
            )
        )


def _string_payload(serialized: bytes) -> memoryview:
    """The UTF-8 bytes of a serialized std_msgs/String (CDR: a 4-byte encapsulation header, a
    uint32 length that counts the closing NUL, the bytes, the NUL), undecoded and uncopied.
    rclpy's own conversion would replace invalid UTF-8 with U+FFFD, which a real U+FFFD could
    not be told apart from. Raises CommandError when the bytes are not such a message."""
    if len(serialized) < 8 or serialized[0] != 0:
        raise CommandError(f'{len(serialized)} bytes that are not a serialized std_msgs/String')
    (length,) = struct.unpack_from('<I' if serialized[1] & 1 else '>I', serialized, 4)
    if length > len(serialized) - 8:
        raise CommandError(f'string of {length} bytes in a message of {len(serialized)}')
    if length and serialized[8 + length - 1] == 0:
        length -= 1
    return memoryview(serialized)[8 : 8 + length]


def _captured(converted: StampedImage) -> CapturedImage:
    return CapturedImage(
        image=converted.image,
        stamp=converted.stamp,
        frame_id=converted.frame_id,
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
        shut_down=GroundingNode.shut_down,
    )


if __name__ == '__main__':
    raise SystemExit(main())
