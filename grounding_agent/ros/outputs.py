"""Grounding results as the standard messages beside the planner JSON.

vision_msgs/Detection2DArray (only where vision_msgs is installed: the module is passed in, so
the conversion is tested with a stand-in here), visualization_msgs/MarkerArray for RViz, and
diagnostic_msgs/DiagnosticArray. Pure functions: message in, message out, no node.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from grounding_agent.core.debug_draw import STATUS_COLOURS
from grounding_agent.core.result import GroundingResult, TargetModel
from grounding_agent.core.types import CameraIntrinsics

__all__ = [
    'DiagnosticEntry',
    'detection_array',
    'diagnostic_array',
    'import_vision_msgs',
    'markers_for_result',
    'result_targets',
]

_DEFAULT_SIZE_M = 0.1
_LEVELS = {
    'ok': DiagnosticStatus.OK,
    'warn': DiagnosticStatus.WARN,
    'error': DiagnosticStatus.ERROR,
    'stale': DiagnosticStatus.STALE,
}


def import_vision_msgs() -> ModuleType | None:
    """`vision_msgs.msg`, or None where the package is not installed."""
    try:
        return importlib.import_module('vision_msgs.msg')
    except ImportError:
        return None


def result_targets(result: GroundingResult) -> list[TargetModel]:
    """The boxes a result points at: the target, else the candidates (ambiguous / answered)."""
    if result.target is not None:
        return [result.target]
    return list(result.candidates)


def detection_array(result: GroundingResult, header: Header, vision_msgs: Any) -> Any:
    """A vision_msgs/Detection2DArray: class_id = phrase, the real score, id = track id."""
    array = vision_msgs.Detection2DArray(header=header)
    for target in result_targets(result):
        detection = vision_msgs.Detection2D(header=header)
        x1, y1, x2, y2 = target.box
        bbox = vision_msgs.BoundingBox2D(size_x=float(x2 - x1), size_y=float(y2 - y1))
        centre_x, centre_y = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        if hasattr(bbox.center, 'position'):  # Humble and later: vision_msgs/Pose2D
            bbox.center.position.x, bbox.center.position.y = centre_x, centre_y
        else:  # Foxy / Galactic: geometry_msgs/Pose2D
            bbox.center.x, bbox.center.y = centre_x, centre_y
        detection.bbox = bbox
        detection.id = target.track_id or ''
        hypothesis = vision_msgs.ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = target.phrase
        hypothesis.hypothesis.score = float(target.score)
        if target.point is not None:
            position = hypothesis.pose.pose.position
            position.x, position.y, position.z = (float(v) for v in target.point)
        detection.results = [hypothesis]
        array.detections.append(detection)
    return array


def _colour(result: GroundingResult, alpha: float) -> ColorRGBA:
    red, green, blue = STATUS_COLOURS.get(result.status, (255, 255, 255))
    return ColorRGBA(r=red / 255.0, g=green / 255.0, b=blue / 255.0, a=alpha)


def markers_for_result(
    result: GroundingResult,
    header: Header,
    *,
    intrinsics: CameraIntrinsics | None = None,
    namespace: str = 'grounding',
) -> MarkerArray:
    """3D cube + label per target with a known point, in the camera frame; DELETEALL first.

    Starting with DELETEALL makes the markers show exactly the latest answer: when the target
    is lost or has no depth, the array holds only the DELETEALL and RViz clears the old cube.
    The cube's size is the box's pixel size at the target's depth (needs intrinsics), else
    10 cm.
    """
    markers = MarkerArray()
    clear = Marker(header=header, ns=namespace, action=Marker.DELETEALL)
    markers.markers.append(clear)
    for index, target in enumerate(result_targets(result)):
        if target.point is None:
            continue
        x, y, z = (float(v) for v in target.point)
        size_x = size_y = _DEFAULT_SIZE_M
        if intrinsics is not None and z > 0:
            x1, y1, x2, y2 = target.box
            size_x = max(0.01, (x2 - x1) * z / intrinsics.fx)
            size_y = max(0.01, (y2 - y1) * z / intrinsics.fy)
        cube = Marker(
            header=header, ns=namespace, id=2 * index, type=Marker.CUBE, action=Marker.ADD
        )
        cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = x, y, z
        cube.pose.orientation.w = 1.0
        cube.scale.x, cube.scale.y = size_x, size_y
        cube.scale.z = min(size_x, size_y)
        cube.color = _colour(result, 0.5)
        label = Marker(
            header=header,
            ns=namespace,
            id=2 * index + 1,
            type=Marker.TEXT_VIEW_FACING,
            action=Marker.ADD,
        )
        label.pose.position.x, label.pose.position.y = x, y - size_y / 2.0 - 0.05
        label.pose.position.z = z
        label.pose.orientation.w = 1.0
        label.scale.z = 0.05
        label.color = _colour(result, 1.0)
        track = f' #{target.track_id}' if target.track_id else ''
        label.text = f'{target.phrase}{track} {target.score:.2f} ({result.status.value})'
        markers.markers.extend([cube, label])
    return markers


@dataclass(frozen=True)
class DiagnosticEntry:
    """One line of /diagnostics: level is ok, warn, error or stale."""

    name: str
    level: str
    message: str
    values: Mapping[str, Any] = field(default_factory=dict)
    hardware_id: str = ''


def diagnostic_array(entries: Sequence[DiagnosticEntry], header: Header) -> DiagnosticArray:
    array = DiagnosticArray(header=header)
    for entry in entries:
        status = DiagnosticStatus(
            level=_LEVELS[entry.level],
            name=entry.name,
            message=entry.message,
            hardware_id=entry.hardware_id,
        )
        status.values = [KeyValue(key=str(k), value=_text(v)) for k, v in entry.values.items()]
        array.status.append(status)
    return array


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)
