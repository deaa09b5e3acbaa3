"""Every parameter of `grounding_node` in one table: name, default, description, range, mutability.

The node declares exactly these (plus `camera.<name>.*` for each entry of `cameras`), the YAML
file in config/ holds the same defaults, docs/ros_interface.md lists them (a test keeps all
three in step), and the launch file may only set names from here. The table itself needs no
ROS: `descriptor()` imports rcl_interfaces only when the node asks for a ParameterDescriptor.

Run `python -m grounding_agent.ros.params` to print the Markdown table of the docs.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grounding_agent.backends.base import BackendConfig
from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.errors import ConfigError
from grounding_agent.core.image_codec import DEFAULT_MAX_IMAGE_BYTES
from grounding_agent.core.tracking import TrackerConfig

__all__ = [
    'CAMERA_TOPIC_KINDS',
    'DEFAULT_CAMERAS',
    'IMAGE_QOS_CHOICES',
    'PARAMETERS',
    'NodeSettings',
    'ParamSpec',
    'all_parameters',
    'backend_config_from_values',
    'camera_parameters',
    'defaults',
    'parameters_markdown',
    'settings_from_values',
]

ParamValue = bool | int | float | str | list[str]

DEFAULT_CAMERAS: tuple[str, ...] = ('front',)
IMAGE_QOS_CHOICES: tuple[str, ...] = ('sensor_data', 'reliable')
#: camera.<name>.<kind>_topic; an empty topic is not subscribed.
CAMERA_TOPIC_KINDS: tuple[str, ...] = ('image', 'compressed', 'depth', 'camera_info')
_CAMERA_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]{0,62}$')


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter. `read_only` ones need a restart of the node to change."""

    name: str
    default: ParamValue
    description: str
    read_only: bool = False
    min_value: float | None = None
    max_value: float | None = None

    @property
    def type_name(self) -> str:
        return {bool: 'bool', int: 'int', float: 'double', str: 'string', list: 'string[]'}[
            type(self.default)
        ]

    def descriptor(self) -> Any:
        """The rcl_interfaces ParameterDescriptor (ranges checked by rclpy itself on set)."""
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only
        )
        if self.min_value is not None and self.max_value is not None:
            if isinstance(self.default, float):
                descriptor.floating_point_range = [
                    FloatingPointRange(
                        from_value=float(self.min_value), to_value=float(self.max_value), step=0.0
                    )
                ]
            elif isinstance(self.default, int) and not isinstance(self.default, bool):
                descriptor.integer_range = [
                    IntegerRange(
                        from_value=int(self.min_value), to_value=int(self.max_value), step=1
                    )
                ]
        return descriptor


def _field_range(model: Any, name: str) -> tuple[float | None, float | None]:
    """The ge/le bounds pydantic keeps for `model.name`, so the table cannot drift from it."""
    low: float | None = None
    high: float | None = None
    for item in model.model_fields[name].metadata:
        low = getattr(item, 'ge', low)
        high = getattr(item, 'le', high)
    return low, high


_BACKEND_DESCRIPTIONS: dict[str, str] = {
    'name': 'model backend: color_shape (weight-free, simulation), owlv2, owlvit, '
    'grounding_dino, qwen_vl',
    'model': 'Hugging Face id or local directory (.onnx / .engine for the OWL runtimes); '
    "'' = the backend's default",
    'device': "'cpu', 'cuda' or 'cuda:N'",
    'dtype': 'auto, float32, float16 or bfloat16',
    'box_threshold': "backend's own detection cut-off",
    'text_threshold': 'Grounding DINO token threshold',
    'nms_iou': 'IoU above which overlapping boxes of one phrase are merged',
    'max_image_side': 'images are scaled down to this longest side before the model',
    'max_detections': 'most boxes the backend returns per image',
    'offline': 'never download weights (local files or the cache only)',
    'engine_cache_dir': "where TensorRT engines are cached; '' = next to the model",
    'options': 'backend-specific options as a JSON object, e.g. \'{"max_new_tokens": 64}\' '
    '(qwen_vl), \'{"image_size": 768}\' (owlv2); see docs/backends.md',
}


def _backend_parameters() -> tuple[ParamSpec, ...]:
    defaults = BackendConfig()
    specs = []
    for name, description in _BACKEND_DESCRIPTIONS.items():
        low, high = _field_range(BackendConfig, name)
        default = getattr(defaults, name)
        specs.append(
            ParamSpec(
                f'backend.{name}',
                json.dumps(default) if isinstance(default, dict) else default,
                description + ' (restart to change)',
                read_only=True,
                min_value=low,
                max_value=high,
            )
        )
    return tuple(specs)


# For config fields that carry no description of their own.
_RESOLVER_DESCRIPTIONS: dict[str, str] = {
    'verify_threshold': 'min probability from a verifying backend to keep the winner',
    'max_command_chars': 'longer commands are answered with an error',
}
_TRACKING_DESCRIPTIONS: dict[str, str] = {
    'coast_s': 'a track with no detection coasts on its motion model this long',
    'lost_after_s': 'a standing grounding unseen this long is lost',
    'reid_memory_s': 'how long a dropped track can be re-identified by appearance',
    'redetect_below_confidence': "ask the model again when the track's confidence is lower",
}


def _config_parameters(
    prefix: str, model: Any, descriptions: Mapping[str, str]
) -> tuple[ParamSpec, ...]:
    """`<prefix>.<field>` for every field of a pydantic config model, changeable at runtime;
    defaults, ranges and descriptions come from the model so the table cannot drift from it."""
    defaults = model()
    specs = []
    for name, field in model.model_fields.items():
        low, high = _field_range(model, name)
        specs.append(
            ParamSpec(
                f'{prefix}.{name}',
                getattr(defaults, name),
                field.description or descriptions.get(name, name.replace('_', ' ')),
                min_value=low,
                max_value=high,
            )
        )
    return tuple(specs)


_NODE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        'autostart',
        True,
        'configure and activate at start-up (for a plain ros2 run)',
        read_only=True,
    ),
    ParamSpec(
        'cameras',
        list(DEFAULT_CAMERAS),
        'camera names; each gets camera.<name>.image_topic, compressed_topic, depth_topic '
        'and camera_info_topic (restart to change)',
        read_only=True,
    ),
    ParamSpec(
        'planner_topic',
        'planner/grounding',
        'where result JSON goes (std_msgs/String, reliable, transient local)',
        read_only=True,
    ),
    ParamSpec(
        'tracking_topic',
        'planner/tracking',
        "where the standing grounding's result for every processed frame goes "
        '(std_msgs/String JSON, reliable, volatile)',
        read_only=True,
    ),
    ParamSpec(
        'target_frame',
        '',
        'robot frame (e.g. base_link, map) 3D points and markers are also given in, looked up '
        "with tf2 at the image's stamp; '' = the camera's optical frame only",
        read_only=True,
    ),
    ParamSpec(
        'planner_qos_depth',
        5,
        'results kept for late-joining planners',
        read_only=True,
        min_value=1,
        max_value=10,
    ),
    ParamSpec(
        'image_qos',
        'sensor_data',
        'camera subscription QoS: sensor_data (best effort) or reliable',
        read_only=True,
    ),
    ParamSpec('query', '', "standing query (a tracked grounding) on query_camera; '' = none"),
    ParamSpec(
        'query_camera',
        '',
        "camera of the standing query and of commands naming none; '' = the first of cameras",
    ),
    ParamSpec(
        'max_rate_hz',
        0.0,
        'cap on standing-query inferences per second; 0 = as fast as the model',
        min_value=0.0,
        max_value=1000.0,
    ),
    ParamSpec(
        'depth_sync_tolerance_s',
        0.05,
        'max stamp difference between a colour frame and its depth / camera_info',
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec(
        'max_image_bytes',
        DEFAULT_MAX_IMAGE_BYTES,
        'bigger images are refused before decoding, with a throttled warning',
        min_value=1024,
        max_value=2**31 - 1,
    ),
    ParamSpec(
        'command_queue_size',
        16,
        "commands waiting for a frame; more are answered 'error: busy'",
        read_only=True,
        min_value=1,
        max_value=1000,
    ),
    ParamSpec(
        'command_timeout_s',
        5.0,
        'a command not answered this long after it arrived gets an error saying why',
        min_value=0.1,
        max_value=600.0,
    ),
    ParamSpec(
        'command_frame_max_age_s',
        0.5,
        'a frame at most this old answers a command at once instead of the next one',
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec('debug_image.enabled', True, 'draw results on ~/debug_image while subscribed'),
    ParamSpec('markers.enabled', True, 'publish ~/markers (3D boxes when depth is known)'),
    ParamSpec(
        'diagnostics_period_s', 1.0, 'period of /diagnostics', min_value=0.1, max_value=60.0
    ),
)

#: Every parameter except the per-camera ones (see `camera_parameters`).
PARAMETERS: tuple[ParamSpec, ...] = (
    _NODE_PARAMETERS
    + _backend_parameters()
    + _config_parameters('resolver', ResolverConfig, _RESOLVER_DESCRIPTIONS)
    + _config_parameters('tracking', TrackerConfig, _TRACKING_DESCRIPTIONS)
)


def camera_parameters(camera: str) -> tuple[ParamSpec, ...]:
    """The topics of one camera. Only `front`'s defaults point somewhere; others start empty."""
    if not _CAMERA_NAME.match(camera):
        raise ConfigError(
            f'camera name {camera!r} must start with a letter and hold only letters, digits '
            'and underscores'
        )
    front = camera == 'front'
    topics = {
        'image': 'camera/image_raw' if front else '',
        'compressed': '',
        'depth': 'camera/depth/image_raw' if front else '',
        'camera_info': 'camera/camera_info' if front else '',
    }
    what = {
        'image': 'sensor_msgs/Image colour topic (rgb8, bgr8, rgba8, bgra8, mono8)',
        'compressed': 'sensor_msgs/CompressedImage topic (jpeg, png)',
        'depth': 'depth topic aligned to the colour image (16UC1 mm or 32FC1 m)',
        'camera_info': 'sensor_msgs/CameraInfo of the colour image',
    }
    return tuple(
        ParamSpec(
            f'camera.{camera}.{kind}_topic',
            topics[kind],
            f"{what[kind]}; '' = not subscribed (restart to change)",
            read_only=True,
        )
        for kind in CAMERA_TOPIC_KINDS
    )


def all_parameters(cameras: Sequence[str] = DEFAULT_CAMERAS) -> tuple[ParamSpec, ...]:
    """What the node declares when `cameras` has this value."""
    specs = list(PARAMETERS)
    for camera in cameras:
        specs.extend(camera_parameters(camera))
    return tuple(specs)


def defaults(cameras: Sequence[str] = DEFAULT_CAMERAS) -> dict[str, ParamValue]:
    return {spec.name: spec.default for spec in all_parameters(cameras)}


@dataclass(frozen=True)
class NodeSettings:
    """The values the node acts on, validated together; swapped as one object on a change."""

    cameras: tuple[str, ...]
    query: str
    query_camera: str
    max_rate_hz: float
    depth_sync_tolerance_s: float
    max_image_bytes: int
    command_queue_size: int
    command_timeout_s: float
    command_frame_max_age_s: float
    debug_image: bool
    markers: bool
    diagnostics_period_s: float
    image_qos: str
    planner_topic: str
    tracking_topic: str
    target_frame: str
    planner_qos_depth: int
    resolver: ResolverConfig
    tracking: TrackerConfig


def settings_from_values(values: Mapping[str, Any]) -> NodeSettings:
    """Validate a full set of parameter values; raises ConfigError naming what is wrong."""
    cameras = tuple(str(c) for c in values['cameras'])
    if not cameras:
        raise ConfigError('cameras must name at least one camera')
    if len(set(cameras)) != len(cameras):
        raise ConfigError(f'cameras has duplicates: {list(cameras)}')
    for camera in cameras:
        camera_parameters(camera)  # validates the name
    query_camera = str(values['query_camera'])
    if query_camera and query_camera not in cameras:
        raise ConfigError(f'query_camera {query_camera!r} is not one of cameras {list(cameras)}')
    image_qos = str(values['image_qos'])
    if image_qos not in IMAGE_QOS_CHOICES:
        raise ConfigError(f'image_qos must be one of {list(IMAGE_QOS_CHOICES)}, got {image_qos!r}')
    planner_topic = str(values['planner_topic'])
    tracking_topic = str(values['tracking_topic'])
    for name, topic in (('planner_topic', planner_topic), ('tracking_topic', tracking_topic)):
        if not topic:
            raise ConfigError(f'{name} must not be empty')
    resolver = ResolverConfig.from_mapping(
        {
            name[len('resolver.') :]: value
            for name, value in values.items()
            if name.startswith('resolver.')
        }
    )
    try:
        tracking = TrackerConfig.model_validate(
            {
                name[len('tracking.') :]: value
                for name, value in values.items()
                if name.startswith('tracking.')
            }
        )
    except ValueError as exc:
        raise ConfigError(f'invalid tracking configuration: {exc}') from exc
    return NodeSettings(
        cameras=cameras,
        query=str(values['query']).strip(),
        query_camera=query_camera or cameras[0],
        max_rate_hz=float(values['max_rate_hz']),
        depth_sync_tolerance_s=float(values['depth_sync_tolerance_s']),
        max_image_bytes=int(values['max_image_bytes']),
        command_queue_size=int(values['command_queue_size']),
        command_timeout_s=float(values['command_timeout_s']),
        command_frame_max_age_s=float(values['command_frame_max_age_s']),
        debug_image=bool(values['debug_image.enabled']),
        markers=bool(values['markers.enabled']),
        diagnostics_period_s=float(values['diagnostics_period_s']),
        image_qos=image_qos,
        planner_topic=planner_topic,
        tracking_topic=tracking_topic,
        target_frame=str(values['target_frame']).strip(),
        planner_qos_depth=int(values['planner_qos_depth']),
        resolver=resolver,
        tracking=tracking,
    )


def backend_config_from_values(values: Mapping[str, Any]) -> BackendConfig:
    """The BackendConfig the backend.* parameters describe; raises ConfigError.

    `backend.options` is a JSON object in a string ('' reads as no options).
    """
    fields = {
        name[len('backend.') :]: value
        for name, value in values.items()
        if name.startswith('backend.')
    }
    if isinstance(fields.get('options'), str):
        text = fields['options'].strip() or '{}'
        try:
            options = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f'backend.options is not valid JSON ({exc}): {text!r}') from exc
        if not isinstance(options, dict):
            raise ConfigError(f'backend.options must be a JSON object, got {text!r}')
        fields['options'] = options
    return BackendConfig.from_mapping(fields)


def _format_default(value: ParamValue) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return f"`'{value}'`"
    if isinstance(value, list):
        return '`[' + ', '.join(f"'{v}'" for v in value) + ']`'
    return f'`{value}`'


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f'{value:g}'


def parameters_markdown(specs: Iterable[ParamSpec] | None = None) -> str:
    """The parameters table of docs/ros_interface.md."""
    rows = [
        '| parameter | type | default | range | runtime | description |',
        '|---|---|---|---|---|---|',
    ]
    for spec in all_parameters() if specs is None else specs:
        limits = (
            f'{_format_number(spec.min_value)} .. {_format_number(spec.max_value)}'
            if spec.min_value is not None and spec.max_value is not None
            else ''
        )
        rows.append(
            f'| `{spec.name}` | {spec.type_name} | {_format_default(spec.default)} | {limits} | '
            f'{"no" if spec.read_only else "yes"} | {spec.description.replace("|", "/")} |'
        )
    return '\n'.join(rows) + '\n'


if __name__ == '__main__':
    sys.stdout.write(parameters_markdown())
