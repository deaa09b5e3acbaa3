"""Results as the typed result, vision_msgs detections, RViz markers and diagnostics (messages
only, no DDS)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip('visualization_msgs.msg')

from diagnostic_msgs.msg import DiagnosticStatus
from visualization_msgs.msg import Marker

from grounding_agent.core.frames import RigidTransform
from grounding_agent.core.result import (
    BoxSource,
    GroundingResult,
    RelationEvidence,
    ResultStatus,
    StampModel,
    TargetModel,
)
from grounding_agent.core.types import CameraIntrinsics, Stamp
from grounding_agent.ros.image_conversion import header_with
from grounding_agent.ros.outputs import (
    DiagnosticEntry,
    detection_array,
    diagnostic_array,
    markers_for_result,
    result_message,
)

HEADER = header_with(Stamp(sec=3, nanosec=5), 'camera_optical')


def grounded(point: list[float] | None) -> GroundingResult:
    return GroundingResult(
        status=ResultStatus.GROUNDED,
        reason='red cube (0.90)',
        target=TargetModel(
            phrase='red cube', box=[100, 50, 140, 90], score=0.9, track_id='7', point=point
        ),
    )


def test_detection_array_carries_phrase_score_track_and_box_centre() -> None:
    array = detection_array(grounded([0.1, 0.2, 1.5]), HEADER)
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
    array = detection_array(result, HEADER)
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


def test_result_message_carries_what_the_json_carries() -> None:
    result = GroundingResult(
        request_id='42',
        command='find the red cube left of the blue cube',
        status=ResultStatus.GROUNDED,
        reason='red cube is left of blue cube',
        stamp=StampModel(sec=7, nanosec=9),
        frame_id='camera_optical',
        camera='front',
        target=TargetModel(
            phrase='red cube',
            box=[100, 50, 140, 90],
            score=0.9,
            track_id='7',
            point=[0.1, 0.2, 1.5],
            source=BoxSource.MOTION,
            since_seen_s=0.25,
        ),
        relations=[
            RelationEvidence(
                relation='left_of',
                subject='red cube',
                object='blue cube',
                score=0.8,
                object_box=[200, 50, 240, 90],
            )
        ],
        latency_ms={'model': 12.0, 'total': 15.5},
        backend='color_shape',
    )
    message = result_message(result)
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (7, 9)
    assert message.header.frame_id == 'camera_optical'
    assert (message.request_id, message.status, message.camera) == ('42', 'grounded', 'front')
    assert message.schema == result.schema_
    assert message.has_target
    target = message.target
    assert (target.phrase, target.track_id, target.source) == ('red cube', '7', 'motion')
    assert list(target.box) == [100.0, 50.0, 140.0, 90.0]
    assert (target.score, target.since_seen_s) == (0.9, 0.25)
    assert target.has_point
    assert (target.point.x, target.point.y, target.point.z) == (0.1, 0.2, 1.5)
    assert target.point_in_target_frame.header.frame_id == ''  # no target frame asked for
    (relation,) = message.relations
    assert (relation.relation, relation.object, relation.has_object_box) == (
        'left_of',
        'blue cube',
        True,
    )
    assert not relation.has_object_box_2
    assert (message.model_latency_ms, message.total_latency_ms) == (12.0, 15.5)


def test_result_message_carries_the_point_in_the_target_frame_too() -> None:
    result = grounded([0.1, 0.2, 1.5])

    def shift(point: list[float]) -> tuple[float, float, float]:
        return (point[0] + 1.0, point[1], point[2])

    message = result_message(result, target_frame='base_link', to_target_frame=shift)
    assert message.target_frame == 'base_link'
    moved = message.target.point_in_target_frame
    assert moved.header.frame_id == 'base_link'
    assert (moved.point.x, moved.point.y, moved.point.z) == (1.1, 0.2, 1.5)
    assert (message.target.point.x, message.target.point.z) == (0.1, 1.5)  # camera frame kept


def test_result_message_without_a_transform_leaves_the_target_frame_point_empty() -> None:
    message = result_message(grounded([0.1, 0.2, 1.5]), target_frame='map', to_target_frame=None)
    assert message.target.point_in_target_frame.header.frame_id == ''


@pytest.mark.parametrize(
    ('answer', 'fields'),
    [
        (None, ('', False, 0, '')),
        (True, ('bool', True, 0, '')),
        (3, ('int', False, 3, '')),
        ('the red one', ('text', False, 0, 'the red one')),
    ],
)
def test_result_message_answer_is_typed(
    answer: bool | int | str | None, fields: tuple[str, bool, int, str]
) -> None:
    result = GroundingResult(status=ResultStatus.ANSWERED, reason='counted', answer=answer)
    message = result_message(result)
    assert (
        message.answer_type,
        message.answer_bool,
        message.answer_int,
        message.answer_text,
    ) == fields
    assert not message.has_target


def test_markers_in_a_target_frame_are_moved_and_turned_with_the_camera() -> None:
    camera_in_base = RigidTransform.from_rpy(
        'base_link', 'camera_optical', (0.2, 0.0, 1.0), (-math.pi / 2, 0.0, -math.pi / 2)
    )
    markers = markers_for_result(grounded([0.1, 0.2, 2.0]), HEADER, transform=camera_in_base)
    clear, cube, _ = markers.markers
    assert clear.header.frame_id == cube.header.frame_id == 'base_link'
    assert (cube.header.stamp.sec, cube.header.stamp.nanosec) == (3, 5)  # the image's stamp
    # 2 m ahead of the camera, 0.1 m right, 0.2 m down, seen from base_link
    position = (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z)
    assert position == pytest.approx((2.2, -0.1, 0.8))
    orientation = cube.pose.orientation
    assert (orientation.x, orientation.y, orientation.z, orientation.w) == pytest.approx(
        camera_in_base.rotation
    )


def test_a_tf2_transform_message_becomes_the_rigid_transform_it_describes() -> None:
    from geometry_msgs.msg import TransformStamped

    from grounding_agent.ros.frames import rigid_transform_from_msg

    stamped = TransformStamped()
    stamped.header.frame_id, stamped.child_frame_id = 'map', 'camera_optical'
    stamped.transform.translation.x, stamped.transform.translation.z = 1.0, 0.5
    stamped.transform.rotation.z, stamped.transform.rotation.w = math.sin(0.5), math.cos(0.5)
    transform = rigid_transform_from_msg(stamped)
    assert (transform.target_frame, transform.source_frame) == ('map', 'camera_optical')
    # a 1 rad turn about z, then the offset
    assert transform.apply((1.0, 0.0, 0.0)) == pytest.approx(
        (1.0 + math.cos(1.0), math.sin(1.0), 0.5)
    )
