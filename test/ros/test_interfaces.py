"""The interface packages `make install` builds: pinned vision_msgs, grounding_agent_interfaces."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VISION_MSGS = ROOT / 'third_party' / 'vision_msgs'
sys.path.insert(0, str(ROOT / 'tools'))

import build_ros_interfaces  # noqa: E402


def test_every_vendored_vision_msgs_definition_is_pinned_by_its_sha256() -> None:
    pinned = {}
    for line in (VISION_MSGS / 'SHA256SUMS').read_text().splitlines():
        digest, name = line.split('  ', 1)
        pinned[name] = digest
    on_disk = {p.relative_to(VISION_MSGS).as_posix() for p in VISION_MSGS.glob('msg/*.msg')}
    assert set(pinned) == on_disk
    for name, digest in pinned.items():
        assert hashlib.sha256((VISION_MSGS / name).read_bytes()).hexdigest() == digest, name


def test_vendored_vision_msgs_is_never_built_by_colcon() -> None:
    # a ROS install provides vision_msgs through rosdep; colcon must not shadow it with ours
    assert (VISION_MSGS / 'COLCON_IGNORE').is_file()


def test_source_digest_changes_with_a_file_and_not_otherwise(tmp_path: Path) -> None:
    (tmp_path / 'msg').mkdir()
    (tmp_path / 'msg' / 'A.msg').write_text('float64 x\n')
    first = build_ros_interfaces.source_digest(tmp_path)
    assert build_ros_interfaces.source_digest(tmp_path) == first
    (tmp_path / 'msg' / 'A.msg').write_text('float64 y\n')
    assert build_ros_interfaces.source_digest(tmp_path) != first


def test_a_package_installed_outside_the_prefix_is_not_rebuilt(tmp_path: Path) -> None:
    # pytest is importable from the venv, not from an empty prefix: "provided elsewhere"
    assert build_ros_interfaces.installed_elsewhere('pytest', tmp_path) is not None
    assert build_ros_interfaces.installed_elsewhere('no_such_package_here', tmp_path) is None
    pytest_home = Path(importlib.util.find_spec('pytest').origin).parents[1]  # type: ignore[arg-type]
    assert build_ros_interfaces.installed_elsewhere('pytest', pytest_home) is None


@pytest.mark.parametrize(
    ('module', 'type_name', 'fields'),
    [
        (
            'vision_msgs.msg',
            'Detection2DArray',
            {'header': 'std_msgs/Header', 'detections': 'sequence<vision_msgs/Detection2D>'},
        ),
        (
            'vision_msgs.msg',
            'Detection2D',
            {
                'header': 'std_msgs/Header',
                'results': 'sequence<vision_msgs/ObjectHypothesisWithPose>',
                'bbox': 'vision_msgs/BoundingBox2D',
                'id': 'string',
            },
        ),
        (
            'vision_msgs.msg',
            'BoundingBox2D',
            {'center': 'vision_msgs/Pose2D', 'size_x': 'double', 'size_y': 'double'},
        ),
        (
            'vision_msgs.msg',
            'ObjectHypothesisWithPose',
            {
                'hypothesis': 'vision_msgs/ObjectHypothesis',
                'pose': 'geometry_msgs/PoseWithCovariance',
            },
        ),
    ],
)
def test_built_vision_msgs_has_the_release_layout(
    module: str, type_name: str, fields: dict[str, str]
) -> None:
    # built by `make install`: a missing package is a failure, not a skip
    msgs = importlib.import_module(module)
    assert getattr(msgs, type_name).get_fields_and_field_types() == fields


def test_grounding_result_survives_serialisation() -> None:
    pytest.importorskip('rclpy')
    from rclpy.serialization import deserialize_message, serialize_message

    interfaces = importlib.import_module('grounding_agent_interfaces.msg')
    result = interfaces.GroundingResult(status=interfaces.GroundingResult.STATUS_GROUNDED)
    result.has_target = True
    result.target.phrase = 'red mug'
    result.target.box = [1.0, 2.0, 3.0, 4.0]
    result.target.source = interfaces.Target.SOURCE_MOTION
    result.candidates = [interfaces.Target(phrase='cup')]
    back = deserialize_message(serialize_message(result), interfaces.GroundingResult)
    assert back.status == 'grounded'
    assert (back.target.phrase, list(back.target.box)) == ('red mug', [1.0, 2.0, 3.0, 4.0])
    assert back.target.source == 'motion'
    assert [c.phrase for c in back.candidates] == ['cup']
