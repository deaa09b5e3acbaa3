"""The Gazebo world and the simulation launch files, checked without Gazebo or `launch`.

Neither Gazebo nor the `launch` package can be installed where these tests run, so the files are
read as data: the SDF with ElementTree, the launch files with `ast`. What must agree does: the
camera topics the world publishes are the ones the bridge carries, the bridged ROS topics are the
ones grounding_node reads (its default camera's topics in config/grounding_agent.yaml, remapped),
and they are sim_camera's topics too, so either simulator feeds the same node. Where `launch` is
installed the launch descriptions are also built.
"""

from __future__ import annotations

import ast
import importlib.util
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_launch_static import console_scripts, keyword

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / 'config' / 'tabletop.sdf'
GAZEBO_LAUNCH = ROOT / 'launch' / 'gazebo_sim.launch.py'
SIM_DEMO_LAUNCH = ROOT / 'launch' / 'sim_demo.launch.py'
# What gz-sensors appends to an rgbd_camera's <topic> (RgbdCameraSensor::Load).
RGBD_SUFFIXES = {'image': '/image', 'depth': '/depth_image', 'camera_info': '/camera_info'}
ROS_TYPE_OF_GZ = {
    'gz.msgs.Image': 'sensor_msgs/msg/Image',
    'gz.msgs.CameraInfo': 'sensor_msgs/msg/CameraInfo',
    'gz.msgs.Clock': 'rosgraph_msgs/msg/Clock',
}


def world() -> ElementTree.Element:
    return ElementTree.parse(WORLD).getroot()


def rgbd_sensor() -> ElementTree.Element:
    sensors = [s for s in world().iter('sensor') if s.get('type') == 'rgbd_camera']
    assert len(sensors) == 1, 'the world needs exactly one rgbd_camera sensor'
    return sensors[0]


def launch_tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding='utf-8'), filename=str(path))


def module_constant(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            if isinstance(node.value, ast.Dict) and any(
                not isinstance(v, (ast.Constant, ast.Tuple)) for v in node.value.values
            ):
                return _dict_with_references(tree, node.value)
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} is not a constant of the launch file')


def _dict_with_references(tree: ast.Module, node: ast.Dict) -> dict[Any, Any]:
    """A dict literal whose values may be `OTHER_CONSTANT['key']`."""
    result = {}
    for key, value in zip(node.keys, node.values):
        assert key is not None
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            result[ast.literal_eval(key)] = module_constant(tree, value.value.id)[
                ast.literal_eval(value.slice)
            ]
        else:
            result[ast.literal_eval(key)] = ast.literal_eval(value)
    return result


def node_calls(tree: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == 'Node'
    ]


def node_call(tree: ast.Module, executable: str) -> ast.Call:
    for call in node_calls(tree):
        value = keyword(call, 'executable')
        if isinstance(value, ast.Constant) and value.value == executable:
            return call
    raise AssertionError(f'no Node with executable {executable!r}')


def parameter_names(call: ast.Call) -> set[str]:
    parameters = keyword(call, 'parameters')
    assert isinstance(parameters, ast.List)
    names = set()
    for item in parameters.elts:
        if isinstance(item, ast.Dict):
            for key in item.keys:
                assert isinstance(key, ast.Constant), 'parameter names must be literals'
                names.add(key.value)
    return names


def launch_arguments(tree: ast.Module) -> dict[str, ast.expr | None]:
    arguments = {}
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == 'DeclareLaunchArgument'
        ):
            first = call.args[0]
            assert isinstance(first, ast.Constant)
            arguments[first.value] = keyword(call, 'default_value')
    return arguments


def front_camera_topics() -> dict[str, str]:
    """The default camera's topics as the shipped parameter file sets them."""
    document = yaml.safe_load((ROOT / 'config' / 'grounding_agent.yaml').read_text())
    front = document['/**']['ros__parameters']['camera']['front']
    return {kind: front[f'{kind}_topic'] for kind in RGBD_SUFFIXES}


# -- the world -----------------------------------------------------------------------------------


def test_world_is_an_sdf_1_9_world_with_a_table_and_primitives() -> None:
    root = world()
    assert root.tag == 'sdf'
    assert root.get('version') == '1.9'
    worlds = root.findall('world')
    assert len(worlds) == 1
    models = {m.get('name') for m in worlds[0].findall('model')}
    assert 'table' in models
    geometries = {
        child.tag
        for visual in worlds[0].iter('visual')
        for geometry in visual.findall('geometry')
        for child in geometry
    }
    assert {'box', 'sphere', 'cylinder'} <= geometries
    assert worlds[0].find('light') is not None


def test_world_runs_the_systems_a_camera_needs() -> None:
    plugins = {p.get('name') for p in world().iter('plugin')}
    assert 'gz::sim::systems::Sensors' in plugins  # renders the camera
    assert 'gz::sim::systems::SceneBroadcaster' in plugins


def test_camera_is_a_640x480_rgbd_camera_with_depth_clipping() -> None:
    sensor = rgbd_sensor()
    assert sensor.findtext('camera/image/width') == '640'
    assert sensor.findtext('camera/image/height') == '480'
    assert float(sensor.findtext('camera/depth_camera/clip/near') or 0) > 0.0
    assert (sensor.findtext('topic') or '').startswith('/')


def test_object_paints_are_the_palette_of_the_pybullet_scenes() -> None:
    from grounding_agent.sim.scene import COLOUR_RGBA, TABLE_RGBA

    def paint(model: ElementTree.Element) -> tuple[float, ...]:
        text = model.findtext('link/visual/material/diffuse')
        assert text is not None, f'{model.get("name")} has no diffuse colour'
        return tuple(float(v) for v in text.split())

    palette = {name: tuple(rgba) for name, rgba in COLOUR_RGBA.items()}
    models = {m.get('name'): m for m in world().iter('model')}
    assert paint(models['table']) == pytest.approx(TABLE_RGBA)
    objects = [m for name, m in models.items() if name not in ('table', 'floor', 'rgbd_camera')]
    assert len(objects) >= 4
    for model in objects:
        colour = str(model.get('name')).split('_')[0]
        assert paint(model) == pytest.approx(palette[colour]), model.get('name')


# -- gazebo_sim.launch.py ------------------------------------------------------------------------


def test_bridge_carries_exactly_the_camera_topics_of_the_world_and_the_clock() -> None:
    bridged = module_constant(launch_tree(GAZEBO_LAUNCH), 'BRIDGED_TOPICS')
    camera_topic = rgbd_sensor().findtext('topic')
    expected = {f'{camera_topic}{suffix}' for suffix in RGBD_SUFFIXES.values()} | {'/clock'}
    assert set(bridged) == expected
    for gz_topic, (_, ros_type, gz_type) in bridged.items():
        assert ROS_TYPE_OF_GZ[gz_type] == ros_type, gz_topic
    assert bridged['/clock'][0] == '/clock'


def test_bridge_arguments_are_parameter_bridge_specs_from_gz_to_ros() -> None:
    tree = launch_tree(GAZEBO_LAUNCH)
    function = next(
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == 'bridge_arguments'
    )
    namespace: dict[str, Any] = {'BRIDGED_TOPICS': module_constant(tree, 'BRIDGED_TOPICS')}
    exec(
        compile(ast.Module(body=[function], type_ignores=[]), str(GAZEBO_LAUNCH), 'exec'),
        namespace,
    )
    specs = namespace['bridge_arguments']()
    assert sorted(specs) == sorted(
        f'{gz}@{ros_type}[{gz_type}'
        for gz, (_, ros_type, gz_type) in namespace['BRIDGED_TOPICS'].items()
    )
    bridge = node_call(tree, 'parameter_bridge')
    arguments = keyword(bridge, 'arguments')
    assert isinstance(arguments, ast.Call)
    assert isinstance(arguments.func, ast.Name)
    assert arguments.func.id == 'bridge_arguments'


@pytest.mark.parametrize('launch_file', [GAZEBO_LAUNCH, SIM_DEMO_LAUNCH], ids=lambda p: p.name)
def test_node_reads_the_simulated_camera_through_its_default_camera(launch_file: Path) -> None:
    tree = launch_tree(launch_file)
    remappings = module_constant(tree, 'CAMERA_REMAPPINGS')
    front = front_camera_topics()
    # Every topic the default camera subscribes to is remapped, and only those.
    assert set(remappings) == set(front.values())
    node = node_call(tree, 'grounding_node')
    remap_arg = keyword(node, 'remappings')
    assert isinstance(remap_arg, ast.Call)
    assert 'CAMERA_REMAPPINGS' in ast.unparse(remap_arg)
    simulated = {kind: remappings[topic] for kind, topic in front.items()}
    if launch_file == GAZEBO_LAUNCH:
        bridged = module_constant(tree, 'BRIDGED_TOPICS')
        camera_topic = rgbd_sensor().findtext('topic')
        for kind, suffix in RGBD_SUFFIXES.items():
            assert bridged[f'{camera_topic}{suffix}'][0] == simulated[kind]
    else:
        assert simulated == module_constant(tree, 'SIM_CAMERA_TOPICS')


def test_gazebo_and_pybullet_cameras_publish_the_same_ros_topics() -> None:
    gazebo = module_constant(launch_tree(GAZEBO_LAUNCH), 'CAMERA_REMAPPINGS')
    pybullet = module_constant(launch_tree(SIM_DEMO_LAUNCH), 'CAMERA_REMAPPINGS')
    assert gazebo == pybullet


def test_sim_camera_publishes_the_topics_the_launch_file_remaps_to() -> None:
    pytest.importorskip('rclpy')
    from grounding_agent.ros.sim_camera import camera_topics, parameter_defaults

    launch_topics = module_constant(launch_tree(SIM_DEMO_LAUNCH), 'SIM_CAMERA_TOPICS')
    assert camera_topics(str(parameter_defaults()['topic_prefix'])) == launch_topics


@pytest.mark.parametrize('launch_file', [GAZEBO_LAUNCH, SIM_DEMO_LAUNCH], ids=lambda p: p.name)
def test_launch_arguments_place_the_nodes_and_choose_the_time(launch_file: Path) -> None:
    arguments = launch_arguments(launch_tree(launch_file))
    assert {'namespace', 'params_file', 'use_sim_time'} <= set(arguments)
    default = arguments['use_sim_time']
    assert isinstance(default, ast.Constant)
    # Gazebo always runs on simulated time; the PyBullet camera renders on the wall clock unless
    # asked to publish /clock.
    assert default.value == ('true' if launch_file == GAZEBO_LAUNCH else 'false')


@pytest.mark.parametrize('launch_file', [GAZEBO_LAUNCH, SIM_DEMO_LAUNCH], ids=lambda p: p.name)
def test_nodes_are_console_scripts_of_their_packages(launch_file: Path) -> None:
    scripts = console_scripts()
    allowed = {('ros_gz_bridge', 'parameter_bridge'), ('tf2_ros', 'static_transform_publisher')}
    for call in node_calls(launch_tree(launch_file)):
        package = keyword(call, 'package')
        executable = keyword(call, 'executable')
        assert isinstance(package, ast.Constant)
        assert isinstance(executable, ast.Constant)
        if package.value == 'grounding_agent':
            assert executable.value in scripts
        else:
            assert (package.value, executable.value) in allowed


@pytest.mark.parametrize('launch_file', [GAZEBO_LAUNCH, SIM_DEMO_LAUNCH], ids=lambda p: p.name)
def test_grounding_node_gets_the_params_file_and_only_declared_overrides(
    launch_file: Path,
) -> None:
    from grounding_agent.ros.params import all_parameters

    node = node_call(launch_tree(launch_file), 'grounding_node')
    parameters = keyword(node, 'parameters')
    assert isinstance(parameters, ast.List)
    assert "LaunchConfiguration('params_file')" in ast.unparse(parameters)
    declared = {spec.name for spec in all_parameters()} | {'use_sim_time'}
    assert parameter_names(node) <= declared
    assert 'use_sim_time' in parameter_names(node)


def test_sim_camera_parameters_in_the_launch_file_are_declared_by_the_node() -> None:
    pytest.importorskip('rclpy')
    from grounding_agent.ros.sim_camera import parameter_defaults

    node = node_call(launch_tree(SIM_DEMO_LAUNCH), 'sim_camera')
    assert parameter_names(node) <= set(parameter_defaults()) | {'use_sim_time'}


def test_world_and_launch_files_are_installed_by_setup_py() -> None:
    setup = (ROOT / 'setup.py').read_text(encoding='utf-8')
    assert "glob('config/*.sdf')" in setup
    assert "glob('launch/*.launch.py')" in setup
    assert f"'{WORLD.name}'" == repr(module_constant(launch_tree(GAZEBO_LAUNCH), 'WORLD_FILE'))


@pytest.mark.parametrize('launch_file', [GAZEBO_LAUNCH, SIM_DEMO_LAUNCH], ids=lambda p: p.name)
def test_launch_description_builds_where_launch_is_installed(launch_file: Path) -> None:
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    spec = importlib.util.spec_from_file_location(launch_file.stem.replace('.', '_'), launch_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        description = module.generate_launch_description()
    except LookupError as exc:  # PackageNotFoundError: grounding_agent / ros_gz not built
        pytest.skip(f'a package is not in the ament index (colcon build first): {exc}')
    names = [getattr(entity, 'name', None) for entity in description.entities]
    assert {'namespace', 'params_file', 'use_sim_time'} <= set(names)
