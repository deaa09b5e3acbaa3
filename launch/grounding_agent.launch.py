"""Start grounding_node on a robot: `ros2 launch grounding_agent grounding_agent.launch.py`.

All node parameters come from one YAML file (`params_file`, default: the package's
config/grounding_agent.yaml); the arguments here only place the node (namespace, simulated time,
log level) and point the default camera's topics at the robot's driver, e.g.

    ros2 launch grounding_agent grounding_agent.launch.py namespace:=robot \\
        image:=/camera/color/image_raw depth:=/camera/aligned_depth_to_color/image_raw \\
        camera_info:=/camera/color/camera_info

The node configures and activates itself (`autostart: true`); set `autostart: false` in the
params file to drive its lifecycle from a lifecycle manager instead. `rviz:=true` also starts
RViz with the package's view (launch/rviz.launch.py), fixed in `fixed_frame`.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

# Topics the default camera ('front') reads, as config/grounding_agent.yaml sets them; the
# launch arguments of the same names remap them.
CAMERA_TOPICS = {
    'image': 'camera/image_raw',
    'depth': 'camera/depth/image_raw',
    'camera_info': 'camera/camera_info',
}


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('grounding_agent')
    default_params = os.path.join(share, 'config', 'grounding_agent.yaml')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node'),
        DeclareLaunchArgument(
            'params_file', default_value=default_params, description='node parameters (YAML)'
        ),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='use /clock (simulation)'
        ),
        DeclareLaunchArgument(
            'log_level', default_value='info', description='debug, info, warn, error'
        ),
        DeclareLaunchArgument(
            'rviz', default_value='false', description='also start RViz with the package view'
        ),
        DeclareLaunchArgument(
            'fixed_frame', default_value='base_link', description="RViz's fixed frame"
        ),
    ]
    for name, topic in CAMERA_TOPICS.items():
        arguments.append(
            DeclareLaunchArgument(
                name, default_value=topic, description=f'{name} topic of the default camera'
            )
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
        remappings=[(topic, LaunchConfiguration(name)) for name, topic in CAMERA_TOPICS.items()],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        output='screen',
    )
    rviz = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'rviz.launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'fixed_frame': LaunchConfiguration('fixed_frame'),
            'use_sim_time': LaunchConfiguration('use_sim_time'),
        }.items(),
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    # Shared memory big enough for camera frames (docs/ros_interface.md, "DDS transport"); a
    # profile already chosen in the environment wins.
    dds_profile = SetEnvironmentVariable(
        'FASTDDS_DEFAULT_PROFILES_FILE',
        os.environ.get(
            'FASTDDS_DEFAULT_PROFILES_FILE',
            os.path.join(share, 'config', 'dds', 'fastdds_camera.xml'),
        ),
    )
    return LaunchDescription([*arguments, dds_profile, grounding_node, rviz])
