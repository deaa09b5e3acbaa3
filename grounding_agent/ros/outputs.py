"""Grounding results as ROS messages beside the planner JSON.

grounding_agent_interfaces/GroundingResult (the typed form of the JSON), vision_msgs/
Detection2DArray, visualization_msgs/MarkerArray for RViz, and diagnostic_msgs/DiagnosticArray.
Pure functions: message in, message out, no node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped
from std_msgs.msg import ColorRGBA, Header
from vision_msgs.msg import (
    BoundingBox2D,
    Detection2D,
    Detection2DArray,
    ObjectHypothesisWithPose,
)
from visualization_msgs.msg import Marker, MarkerArray

from grounding_agent.core.debug_draw import STATUS_COLOURS
from grounding_agent.core.frames import RigidTransform
from grounding_agent.core.result import GroundingResult, TargetModel
from grounding_agent.core.types import CameraIntrinsics
from grounding_agent_interfaces.msg import GroundingResult as GroundingResultMsg
from grounding_agent_interfaces.msg import RelationEvidence as RelationEvidenceMsg
from grounding_agent_interfaces.msg import Target as TargetMsg

__all__ = [
    'DiagnosticEntry',
    'PointTransform',
    'detection_array',
    'diagnostic_array',
    'header_of_result',
    'markers_for_result',
    'result_message',
    'result_targets',
]

#: Maps a point of the camera frame to the target frame, or None when it cannot.
PointTransform = Callable[[Sequence[float]], 'tuple[float, float, float] | None']

_DEFAULT_SIZE_M = 0.1
_LEVELS = {
    'ok': DiagnosticStatus.OK,
    'warn': DiagnosticStatus.WARN,
    'error': DiagnosticStatus.ERROR,
    'stale': DiagnosticStatus.STALE,
}


def result_targets(result: GroundingResult) -> list[TargetModel]:
    """The boxes a result points at: the target, else the candidates (ambiguous / answered)."""
    if result.target is not None:
        return [result.target]
    return list(result.candidates)


def detection_array(result: GroundingResult, header: Header) -> Detection2DArray:
    """A vision_msgs/Detection2DArray: class_id = phrase, the real score, id = track id."""
    array = Detection2DArray(header=header)
    for target in result_targets(result):
        detection = Detection2D(header=header)
        x1, y1, x2, y2 = target.box
        bbox = BoundingBox2D(size_x=float(x2 - x1), size_y=float(y2 - y1))
        bbox.center.position.x, bbox.center.position.y = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        detection.bbox = bbox
        detection.id = target.track_id or ''
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = target.phrase
        hypothesis.hypothesis.score = float(target.score)
        if target.point is not None:
            position = hypothesis.pose.pose.position
            position.x, position.y, position.z = (float(v) for v in target.point)
        detection.results = [hypothesis]
        array.detections.append(detection)
    return array


def header_of_result(result: GroundingResult) -> Header:
    """The stamp and optical frame of the image a result is about (zero stamp when none)."""
    header = Header(frame_id=result.frame_id)
    if result.stamp is not None:
        header.stamp.sec, header.stamp.nanosec = result.stamp.sec, result.stamp.nanosec
    return header


def _target_message(
    target: TargetModel, header: Header, to_target_frame: PointTransform | None, frame: str
) -> TargetMsg:
    message = TargetMsg(
        phrase=target.phrase,
        box=[float(v) for v in target.box],
        score=float(target.score),
        track_id=target.track_id or '',
        source=target.source.value,
        since_seen_s=float(target.since_seen_s),
    )
    if target.point is None:
        return message
    message.has_point = True
    message.point.x, message.point.y, message.point.z = (float(v) for v in target.point)
    moved = to_target_frame(target.point) if to_target_frame is not None else None
    if moved is not None:
        stamped = PointStamped(header=Header(stamp=header.stamp, frame_id=frame))
        stamped.point.x, stamped.point.y, stamped.point.z = moved
        message.point_in_target_frame = stamped
    return message


def _answer_fields(answer: bool | int | str | None) -> dict[str, Any]:
    if answer is None:
        return {'answer_type': ''}
    if isinstance(answer, bool):  # before int: a bool is an int in Python
        return {'answer_type': GroundingResultMsg.ANSWER_BOOL, 'answer_bool': answer}
    if isinstance(answer, int):
        return {'answer_type': GroundingResultMsg.ANSWER_INT, 'answer_int': answer}
    return {'answer_type': GroundingResultMsg.ANSWER_TEXT, 'answer_text': str(answer)}


def result_message(
    result: GroundingResult,
    *,
    target_frame: str = '',
    to_target_frame: PointTransform | None = None,
) -> GroundingResultMsg:
    """The typed GroundingResult carrying what the planner JSON carries.

    `to_target_frame` maps 3D points from the camera's optical frame into `target_frame`
    (a tf2 lookup at the image's stamp in the node); a point it cannot map keeps only its
    camera-frame value.
    """
    header = header_of_result(result)

    def target(model: TargetModel) -> TargetMsg:
        return _target_message(model, header, to_target_frame, target_frame)

    message = GroundingResultMsg(
        header=header,
        schema=result.schema_,
        request_id=result.request_id,
        command=result.command,
        kind=result.kind,
        status=result.status.value,
        reason=result.reason,
        camera=result.camera,
        track_state=result.track_state.value if result.track_state is not None else '',
        candidates=[target(c) for c in result.candidates],
        target_frame=target_frame,
        backend=result.backend,
        model_latency_ms=float(result.latency_ms.get('model', 0.0)),
        total_latency_ms=float(result.latency_ms.get('total', 0.0)),
        **_answer_fields(result.answer),
    )
    if result.target is not None:
        message.has_target = True
        message.target = target(result.target)
    for evidence in result.relations:
        relation = RelationEvidenceMsg(
            relation=evidence.relation,
            subject=evidence.subject,
            object=evidence.object,
            score=float(evidence.score),
        )
        if evidence.object_box is not None:
            relation.has_object_box = True
            relation.object_box = [float(v) for v in evidence.object_box]
        if evidence.object_box_2 is not None:
            relation.has_object_box_2 = True
            relation.object_box_2 = [float(v) for v in evidence.object_box_2]
        message.relations.append(relation)
    return message


def _colour(result: GroundingResult, alpha: float) -> ColorRGBA:
    red, green, blue = STATUS_COLOURS.get(result.status, (255, 255, 255))
    return ColorRGBA(r=red / 255.0, g=green / 255.0, b=blue / 255.0, a=alpha)


def markers_for_result(
    result: GroundingResult,
    header: Header,
    *,
    intrinsics: CameraIntrinsics | None = None,
    namespace: str = 'grounding',
    transform: RigidTransform | None = None,
) -> MarkerArray:
    """3D cube + label per target with a known point, in the camera frame; DELETEALL first.

    Starting with DELETEALL makes the markers show exactly the latest answer: when the target
    is lost or has no depth, the array holds only the DELETEALL and RViz clears the old cube.
    The cube's size is the box's pixel size at the target's depth (needs intrinsics), else
    10 cm. With a `transform` (camera frame -> robot frame) the markers are placed in its
    target frame, turned with the camera.
    """
    if transform is not None:
        header = Header(stamp=header.stamp, frame_id=transform.target_frame)
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
        _place(cube, (x, y, z), transform)
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
        _place(label, (x, y - size_y / 2.0 - 0.05, z), transform)  # above, in the image
        label.scale.z = 0.05
        label.color = _colour(result, 1.0)
        track = f' #{target.track_id}' if target.track_id else ''
        label.text = f'{target.phrase}{track} {target.score:.2f} ({result.status.value})'
        markers.markers.extend([cube, label])
    return markers


def _place(
    marker: Marker, point: tuple[float, float, float], transform: RigidTransform | None
) -> None:
    """Pose of a marker at a camera-frame point, in the transform's frame when there is one."""
    rotation = (0.0, 0.0, 0.0, 1.0)
    if transform is not None:
        point, rotation = transform.apply(point), transform.rotation
    position, orientation = marker.pose.position, marker.pose.orientation
    position.x, position.y, position.z = point
    orientation.x, orientation.y, orientation.z, orientation.w = rotation


@dataclass(frozen=True)
class DiagnosticEntry:
    """One line of /diagnostics: level is ok, warn, error or stale."""

    name: str
    level: str
    message: str
    values: Mapping[str, Any] = field(default_factory=dict)
    hardware_id: str = ''


def diagnostic_array(
    entries: Sequence[DiagnosticEntry], header: Header, *, hardware_id: str = ''
) -> DiagnosticArray:
    """One DiagnosticStatus per entry; `hardware_id` for the entries that name none."""
    array = DiagnosticArray(header=header)
    for entry in entries:
        status = DiagnosticStatus(
            level=_LEVELS[entry.level],
            name=entry.name,
            message=entry.message,
            hardware_id=entry.hardware_id or hardware_id,
        )
        status.values = [KeyValue(key=str(k), value=_text(v)) for k, v in entry.values.items()]
        array.status.append(status)
    return array


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)
