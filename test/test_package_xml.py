"""package.xml is rosdep-clean: every key resolves for Jazzy and Kilted, every ROS package the code
imports is declared, and optional parts (simulation, voice, Gazebo, RViz) are not required."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPEND_TAGS = ('depend', 'buildtool_depend', 'build_depend', 'exec_depend', 'test_depend')
# ROS packages of the Jazzy and Kilted distributions, and the rosdep keys of rosdep/python.yaml
# (ros/rosdistro) that resolve on Ubuntu 24.04; checked by hand on 2026-12-04. A new key goes
# here only after the same check.
ROS_PACKAGES = {
    'action_msgs',
    'ament_cmake',
    'ament_index_python',
    'ament_python',
    'builtin_interfaces',
    'diagnostic_msgs',
    'geometry_msgs',
    'grounding_agent_interfaces',
    'launch',
    'launch_ros',
    'lifecycle_msgs',
    'rcl_interfaces',
    'rclpy',
    'rosgraph_msgs',
    'rosidl_default_generators',
    'rosidl_default_runtime',
    'sensor_msgs',
    'std_msgs',
    'tf2_ros_py',
    'vision_msgs',
    'visualization_msgs',
}
PYTHON_KEYS = {
    'python3-lark-parser',
    'python3-matplotlib',
    'python3-numpy',
    'python3-onnxruntime-pip',
    'python3-opencv',
    'python3-pil',
    'python3-pytest',
    'python3-scipy',
    'python3-tqdm',
    'python3-transformers-pip',
    'python3-yaml',
}
# Python modules that come from a ROS package of another name.
ROS_PACKAGE_OF_MODULE = {'tf2_ros': 'tf2_ros_py'}
ROS_MODULE_SUFFIXES = ('_msgs', '_interfaces')
ROS_MODULES = {'rclpy', 'ament_index_python', 'launch', 'launch_ros', 'tf2_ros'}


def keys(path: Path) -> set[str]:
    root = ElementTree.parse(path).getroot()
    return {element.text or '' for tag in DEPEND_TAGS for element in root.iter(tag)}


@pytest.mark.parametrize(
    'manifest',
    [ROOT / 'package.xml', ROOT / 'grounding_agent_interfaces' / 'package.xml'],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_key_resolves_for_jazzy_and_kilted(manifest: Path) -> None:
    assert keys(manifest) - ROS_PACKAGES - PYTHON_KEYS == set()


def _imported_ros_packages(paths: list[Path]) -> set[str]:
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split('.')[0]
                if top in ROS_MODULES or top.endswith(ROS_MODULE_SUFFIXES):
                    found.add(ROS_PACKAGE_OF_MODULE.get(top, top))
    return found


def test_every_ros_package_the_node_and_launch_files_import_is_declared() -> None:
    sources = [*(ROOT / 'grounding_agent').rglob('*.py'), *(ROOT / 'launch').glob('*.py')]
    assert _imported_ros_packages(sources) - keys(ROOT / 'package.xml') == set()


def test_optional_parts_are_not_required_of_a_robot_install() -> None:
    declared = keys(ROOT / 'package.xml')
    for optional in ('ros_gz_bridge', 'ros_gz_sim', 'rviz2', 'espeak-ng'):
        assert optional not in declared
    assert not {key for key in declared if 'pybullet' in key or 'sounddevice' in key}
    # keys that do not exist or resolve to a version the code cannot use
    assert not declared & {'rclpy_lifecycle', 'python3-lark', 'python3-pydantic'}


def test_the_licence_file_is_the_licence_package_xml_names() -> None:
    licence = ElementTree.parse(ROOT / 'package.xml').getroot().findtext('license')
    assert licence == 'Apache-2.0'
    assert 'Apache License' in (ROOT / 'LICENSE').read_text(encoding='utf-8')[:200]
    interfaces = ROOT / 'grounding_agent_interfaces' / 'package.xml'
    assert ElementTree.parse(interfaces).getroot().findtext('license') == licence
