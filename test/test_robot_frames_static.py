"""The Gazebo world's camera frames and the RViz view, checked statically (neither Gazebo nor RViz
can be installed here): the images carry the optical frame, the launch file's static
transforms place it where the world puts the camera, and the view shows the node's topics."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import yaml
from test_gazebo_static import GAZEBO_LAUNCH, SIM_DEMO_LAUNCH, launch_tree, rgbd_sensor, world
from test_launch_static import LAUNCH_FILE, module_constant

from grounding_agent.core.frames import OPTICAL_IN_BODY, RigidTransform

ROOT = Path(__file__).resolve().parents[1]
RVIZ_CONFIG = ROOT / 'rviz' / 'grounding_agent.rviz'
RVIZ_LAUNCH = ROOT / 'launch' / 'rviz.launch.py'


def _pose(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split())


def test_the_world_camera_labels_its_images_with_the_optical_frame() -> None:
    frame = rgbd_sensor().find('gz_frame_id')
    assert frame is not None
    assert frame.text == module_constant(launch_tree(GAZEBO_LAUNCH), 'OPTICAL_FRAME')


def test_the_static_transform_puts_the_camera_where_the_world_does() -> None:
    (model,) = [m for m in world().iter('model') if m.get('name') == 'rgbd_camera']
    pose = model.find('pose')
    assert pose is not None
    assert pose.text is not None
    assert module_constant(launch_tree(GAZEBO_LAUNCH), 'CAMERA_POSE') == pytest.approx(
        _pose(pose.text)
    )


def test_the_optical_frame_is_turned_as_rep_103_says() -> None:
    x, y, z, roll, pitch, yaw = module_constant(launch_tree(GAZEBO_LAUNCH), 'OPTICAL_IN_CAMERA')
    optical = RigidTransform.from_rpy('camera_link', 'optical', (x, y, z), (roll, pitch, yaw))
    for axis in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
        assert optical.apply(axis) == pytest.approx(OPTICAL_IN_BODY.apply(axis), abs=1e-12)


def test_a_point_ahead_of_the_gazebo_camera_lands_in_front_of_it_in_the_world() -> None:
    tree = launch_tree(GAZEBO_LAUNCH)
    x, y, z, roll, pitch, yaw = module_constant(tree, 'CAMERA_POSE')
    camera = RigidTransform.from_rpy('world', 'camera_link', (x, y, z), (roll, pitch, yaw))
    ox, oy, oz, oroll, opitch, oyaw = module_constant(tree, 'OPTICAL_IN_CAMERA')
    optical = RigidTransform.from_rpy(
        'camera_link', 'optical', (ox, oy, oz), (oroll, opitch, oyaw)
    )
    # 1 m along the optical axis: forward (+x) and down (pitched 0.70 rad), as the SDF aims it
    wx, wy, wz = optical.then(camera).apply((0.0, 0.0, 1.0))
    assert (wx, wy, wz) == pytest.approx((x + math.cos(pitch), y, z - math.sin(pitch)))


def test_rviz_view_shows_the_nodes_debug_image_and_markers_by_relative_topics() -> None:
    view = yaml.safe_load(RVIZ_CONFIG.read_text(encoding='utf-8'))
    displays = view['Visualization Manager']['Displays']
    topics = {d['Class']: d['Topic']['Value'] for d in displays if 'Topic' in d}
    assert topics == {
        'rviz_default_plugins/Image': 'grounding_node/debug_image',
        'rviz_default_plugins/MarkerArray': 'grounding_node/markers',
    }
    assert {d['Class'] for d in displays} >= {'rviz_default_plugins/TF'}


def _declared(path: Path) -> dict[str, str]:
    arguments = {}
    for call in ast.walk(launch_tree(path)):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == 'DeclareLaunchArgument'
        ):
            name = call.args[0]
            default = next(k.value for k in call.keywords if k.arg == 'default_value')
            if isinstance(name, ast.Constant):  # not the per-camera arguments made in a loop
                arguments[name.value] = ast.unparse(default)
    return arguments


@pytest.mark.parametrize(
    'launch_file', [LAUNCH_FILE, SIM_DEMO_LAUNCH, GAZEBO_LAUNCH], ids=lambda p: p.name
)
def test_every_launch_file_starts_rviz_on_request_only(launch_file: Path) -> None:
    assert _declared(launch_file)['rviz'] == "'false'"
    text = launch_file.read_text(encoding='utf-8')
    assert "condition=IfCondition(LaunchConfiguration('rviz'))" in text
    assert "'rviz.launch.py'" in text


def test_rviz_launch_runs_rviz2_with_the_shipped_view_in_the_namespace() -> None:
    declared = _declared(RVIZ_LAUNCH)
    assert "'grounding_agent.rviz'" in declared['rviz_config']
    assert declared['namespace'] == "''"
    text = RVIZ_LAUNCH.read_text(encoding='utf-8')
    assert "executable='rviz2'" in text
    assert "namespace=LaunchConfiguration('namespace')" in text


def test_the_view_is_installed_by_setup_py() -> None:
    assert "glob('rviz/*.rviz')" in (ROOT / 'setup.py').read_text(encoding='utf-8')
