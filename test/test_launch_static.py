"""The launch file, checked without `launch` (not installable here) and run where it is.

Statically, with `ast`: it parses, every executable it starts is a console script of setup.py,
every parameter it sets is one the node declares, its topic remaps match the default camera's
topics, and its default params file is the YAML the package installs.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from grounding_agent.ros.params import all_parameters, camera_parameters

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'grounding_agent.launch.py'
# Declared by every rclpy node itself.
NODE_BUILTIN_PARAMETERS = {'use_sim_time'}


def console_scripts() -> set[str]:
    tree = ast.parse((ROOT / 'setup.py').read_text(encoding='utf-8'))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return {entry.split('=')[0].strip() for entry in ast.literal_eval(value)}
    raise AssertionError('setup.py declares no console_scripts')


def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(encoding='utf-8'), filename=str(LAUNCH_FILE))


def node_calls(tree: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ('Node', 'LifecycleNode')
    ]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def module_constant(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} is not a constant of the launch file')


def test_launch_file_starts_only_console_scripts_of_the_package() -> None:
    calls = node_calls(launch_tree())
    assert calls, 'the launch file starts no node'
    scripts = console_scripts()
    for call in calls:
        executable = keyword(call, 'executable')
        assert isinstance(executable, ast.Constant), 'executable must be a literal'
        assert executable.value in scripts
        package = keyword(call, 'package')
        assert isinstance(package, ast.Constant)
        assert package.value == 'grounding_agent'


def test_every_parameter_the_launch_file_sets_is_declared_by_the_node() -> None:
    declared = {spec.name for spec in all_parameters()} | NODE_BUILTIN_PARAMETERS
    for call in node_calls(launch_tree()):
        parameters = keyword(call, 'parameters')
        assert isinstance(parameters, ast.List)
        for item in parameters.elts:
            if isinstance(item, ast.Dict):
                for key in item.keys:
                    assert isinstance(key, ast.Constant), 'parameter names must be literals'
                    assert key.value in declared, f'{key.value} is not a node parameter'


def test_remapped_topics_are_the_default_camera_topics() -> None:
    topics = module_constant(launch_tree(), 'CAMERA_TOPICS')
    front = {spec.name: spec.default for spec in camera_parameters('front')}
    assert topics == {
        kind: front[f'camera.front.{kind}_topic'] for kind in ('image', 'depth', 'camera_info')
    }


def test_launch_arguments_cover_the_robot_essentials() -> None:
    tree = launch_tree()
    declared = {
        call.args[0].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == 'DeclareLaunchArgument'
        and isinstance(call.args[0], ast.Constant)
    }
    assert {'namespace', 'params_file', 'use_sim_time', 'log_level'} <= declared
    assert set(module_constant(tree, 'CAMERA_TOPICS')) <= {'image', 'depth', 'camera_info'}


def test_default_params_file_is_installed_by_setup_py() -> None:
    text = LAUNCH_FILE.read_text(encoding='utf-8')
    assert "'config', 'grounding_agent.yaml'" in text
    assert (ROOT / 'config' / 'grounding_agent.yaml').is_file()
    assert "glob('config/*.yaml')" in (ROOT / 'setup.py').read_text(encoding='utf-8')


def test_launch_description_builds_where_launch_is_installed() -> None:
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    spec = importlib.util.spec_from_file_location('grounding_agent_launch', LAUNCH_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except LookupError as exc:  # PackageNotFoundError: installed launch, package not built
        pytest.skip(f'grounding_agent is not in the ament index (colcon build first): {exc}')
    names = [getattr(entity, 'name', None) for entity in description.entities]
    assert {'namespace', 'params_file', 'use_sim_time', 'log_level'} <= set(names)
