"""Gazebo world, bridge and grounding_node: `ros2 launch grounding_agent gazebo_sim.launch.py`.

Starts `gz sim` with config/tabletop.sdf (through ros_gz_sim), bridges the world's RGBD camera and
clock to ROS 2 with ros_gz_bridge's parameter_bridge, and runs grounding_node on simulated time
with its default camera remapped to the bridged topics. The bridged topics are the ones the
PyBullet `sim_camera` node publishes, so anything written against one simulator runs on the other.

    ros2 launch grounding_agent gazebo_sim.launch.py gz_args:='-r -s --headless-rendering'
    ros2 topic pub --once /grounding_node/command std_msgs/String "data: 'find the red cube'"

Needs Gazebo (Harmonic with ROS 2 Jazzy) and the ros_gz packages; none of that runs on the
machines this package is tested on, so this file is checked statically there
(test/test_gazebo_static.py).
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

WORLD_FILE = 'tabletop.sdf'
# gz topic -> (ROS topic, ROS message type, gz message type). The camera topics are the
# `<topic>` of the world's rgbd_camera sensor plus the suffixes gz-sensors appends.
BRIDGED_TOPICS = {
    '/clock': ('/clock', 'rosgraph_msgs/msg/Clock', 'gz.msgs.Clock'),
    '/tabletop/camera/image': ('sim/camera/image_raw', 'sensor_msgs/msg/Image', 'gz.msgs.Image'),
    '/tabletop/camera/depth_image': (
        'sim/camera/depth/image_raw',
        'sensor_msgs/msg/Image',
        'gz.msgs.Image',
    ),
    '/tabletop/camera/camera_info': (
        'sim/camera/camera_info',
        'sensor_msgs/msg/CameraInfo',
        'gz.msgs.CameraInfo',
    ),
}
# Topics the node's default camera reads (config/grounding_agent.yaml) -> the bridged ones.
CAMERA_REMAPPINGS = {
    'camera/image_raw': 'sim/camera/image_raw',
    'camera/depth/image_raw': 'sim/camera/depth/image_raw',
    'camera/camera_info': 'sim/camera/camera_info',
}


def bridge_arguments() -> list[str]:
    """parameter_bridge's `gz_topic@ros_type[gz_type` (`[`: from gz to ROS only)."""
    return [f'{gz}@{ros_type}[{gz_type}' for gz, (_, ros_type, gz_type) in BRIDGED_TOPICS.items()]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('grounding_agent')
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='', description='namespace of grounding_node'
        ),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'grounding_agent.yaml'),
            description='grounding_node parameters (YAML)',
        ),
        DeclareLaunchArgument(
            'use_sim_time', default_value='true', description='follow the Gazebo /clock'
        ),
        DeclareLaunchArgument(
            'world',
            default_value=os.path.join(share, 'config', WORLD_FILE),
            description='SDF world file',
        ),
        DeclareLaunchArgument(
            'gz_args',
            default_value='-r',
            description="gz sim options before the world, e.g. '-r -s --headless-rendering'",
        ),
        DeclareLaunchArgument(
            'log_level', default_value='info', description='debug, info, warn, error'
        ),
    ]
    gz_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            os.path.join(get_package_share_directory('ros_gz_sim'), 'launch', 'gz_sim.launch.py')
        ),
        launch_arguments={
            'gz_args': [LaunchConfiguration('gz_args'), ' ', LaunchConfiguration('world')]
        }.items(),
    )
    bridge = Node(
        package='ros_gz_bridge',
        executable='parameter_bridge',
        name='tabletop_bridge',
        # in the node's namespace: the bridged camera topics are relative and move with it
        namespace=LaunchConfiguration('namespace'),
        arguments=bridge_arguments(),
        remappings=[(gz, ros) for gz, (ros, _, _) in BRIDGED_TOPICS.items() if gz != ros],
        parameters=[{'use_sim_time': LaunchConfiguration('use_sim_time')}],
        output='screen',
    )
    grounding_node = Node(
        package='grounding_agent',
        executable='grounding_node',
        name='grounding_node',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': LaunchConfiguration('use_sim_time')},
        ],
        remappings=list(CAMERA_REMAPPINGS.items()),
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        output='screen',
    )
    return LaunchDescription([*arguments, gz_sim, bridge, grounding_node])
