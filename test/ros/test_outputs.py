"""Results as vision_msgs detections, RViz markers and diagnostics (messages only, no DDS)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip('visualization_msgs.msg')

from diagnostic_msgs.msg import DiagnosticStatus
from visualization_msgs.msg import Marker

from grounding_agent.core.result import GroundingResult, ResultStatus, TargetModel
from grounding_agent.core.types import CameraIntrinsics, Stamp
from grounding_agent.ros.image_conversion import header_with
from grounding_agent.ros.outputs import (
    DiagnosticEntry,
    detection_array,
    diagnostic_array,
    markers_for_result,
)

HEADER = header_with(Stamp(sec=3, nanosec=5), 'camera_optical')


class _Msg(SimpleNamespace):
    """Builds attributes on first access, like a ROS message with nested defaults."""

    def __getattr__(self, name: str) -> _Msg:
        value = _Msg()
        setattr(self, name, value)
        return value


def fake_vision_msgs() -> SimpleNamespace:
    """Stand-in for the vision_msgs.msg module (Humble layout), which cannot be installed here."""

    def detection_array(**fields: object) -> _Msg:
        return _Msg(detections=[], **fields)

    def bounding_box(**fields: object) -> _Msg:
        return _Msg(center=_Msg(position=_Msg(x=0.0, y=0.0), theta=0.0), **fields)

    return SimpleNamespace(
        Detection2DArray=detection_array,
        Detection2D=lambda **fields: _Msg(results=[], id='', **fields),
        BoundingBox2D=bounding_box,
        ObjectHypothesisWithPose=_Msg,
    )


def grounded(point: list[float] | None) -> GroundingResult:
    return GroundingResult(
        status=ResultStatus.GROUNDED,
        reason='red cube (0.90)',
        target=TargetModel(
            phrase='red cube', box=[100, 50, 140, 90], score=0.9, track_id='7', point=point
        ),
    )


def test_detection_array_carries_phrase_score_track_and_box_centre() -> None:
    array = detection_array(grounded([0.1, 0.2, 1.5]), HEADER, fake_vision_msgs())
    assert array.header is HEADER
    (detection,) = array.detections
    assert detection.id == '7'
    assert (detection.bbox.center.position.x, detection.bbox.center.position.y) == (120.0, 70.0)
    assert (detection.bbox.size_x, detection.bbox.size_y) == (40.0, 40.0)
    (hypothesis,) = detection.results
    assert (hypothesis.hypothesis.class_id, hypothesis.hypothesis.score) == ('red cube', 0.9)
    assert hypothesis.pose.pose.position.z == 1.5


def test_ambiguous_result_lists_every_candidate() -> None:
    result = GroundingResult(
        status=ResultStatus.AMBIGUOUS,
        reason='two cups',
        candidates=[
            TargetModel(phrase='cup', box=[0, 0, 10, 10], score=0.5),
            TargetModel(phrase='cup', box=[20, 0, 30, 10], score=0.49),
        ],
    )
    array = detection_array(result, HEADER, fake_vision_msgs())
    assert [d.results[0].hypothesis.score for d in array.detections] == [0.5, 0.49]


def test_markers_with_depth_are_a_cube_and_a_label_sized_from_intrinsics() -> None:
    intrinsics = CameraIntrinsics(fx=400.0, fy=400.0, cx=320.0, cy=240.0, width=640, height=480)
    markers = markers_for_result(grounded([0.1, 0.2, 2.0]), HEADER, intrinsics=intrinsics)
    clear, cube, label = markers.markers
    assert clear.action == Marker.DELETEALL
    assert (cube.type, cube.header.frame_id) == (Marker.CUBE, 'camera_optical')
    assert (cube.pose.position.x, cube.pose.position.z) == (0.1, 2.0)
    assert cube.scale.x == pytest.approx(40 * 2.0 / 400.0)
    assert label.type == Marker.TEXT_VIEW_FACING
    assert 'red cube #7' in label.text


def test_markers_without_depth_only_clear_the_old_ones() -> None:
    markers = markers_for_result(grounded(None), HEADER)
    assert [m.action for m in markers.markers] == [Marker.DELETEALL]


def test_diagnostics_levels_and_values() -> None:
    array = diagnostic_array(
        [
            DiagnosticEntry('node: backend', 'error', 'failed to load', {'errors': 2}),
            DiagnosticEntry('node: camera front', 'ok', '30.0 Hz', {'rate_hz': 29.96}),
        ],
        HEADER,
    )
    backend, camera = array.status
    assert backend.level == DiagnosticStatus.ERROR
    assert [(v.key, v.value) for v in backend.values] == [('errors', '2')]
    assert camera.level == DiagnosticStatus.OK
    assert camera.values[0].value == '29.960'
