"""PyBullet simulated camera + grounding_node: `ros2 launch grounding_agent sim_demo.launch.py`.

`sim_camera` renders a seeded tabletop scene (no GPU, no Gazebo) and publishes colour, depth,
camera info and the ground truth; grounding_node reads them through its default camera,
remapped to the simulated topics. With `use_sim_time:=true` sim_camera also publishes /clock
(one tick of 1/rate_hz per rendered frame) and both nodes follow it.

    ros2 launch grounding_agent sim_demo.launch.py seed:=3
    ros2 topic pub --once /grounding_node/command std_msgs/String "data: 'find the red cube'"
    ros2 topic echo /planner/grounding

`rviz:=true` also starts RViz with the package's view, fixed in the camera's optical frame.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription

# sim_camera's default topics (its `topic_prefix` parameter is 'sim/camera'), in the namespace
# both nodes share.
SIM_CAMERA_TOPICS = {
    'image': 'sim/camera/image_raw',
    'depth': 'sim/camera/depth/image_raw',
    'camera_info': 'sim/camera/camera_info',
}
# Topics the node's default camera reads (config/grounding_agent.yaml) -> the simulated ones.
CAMERA_REMAPPINGS = {
    'camera/image_raw': SIM_CAMERA_TOPICS['image'],
    'camera/depth/image_raw': SIM_CAMERA_TOPICS['depth'],
    'camera/camera_info': SIM_CAMERA_TOPICS['camera_info'],
}


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('grounding_agent')
    use_sim_time = LaunchConfiguration('use_sim_time')
    arguments = [
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the nodes'),
        DeclareLaunchArgument(
            'params_file',
            default_value=os.path.join(share, 'config', 'grounding_agent.yaml'),
            description='grounding_node parameters (YAML)',
        ),
        DeclareLaunchArgument(
            'use_sim_time',
            default_value='false',
            description='sim_camera publishes /clock and both nodes follow it',
        ),
        DeclareLaunchArgument('seed', default_value='0', description='scene seed'),
        DeclareLaunchArgument('rate_hz', default_value='5.0', description='frames per second'),
        DeclareLaunchArgument(
            'log_level', default_value='info', description='debug, info, warn, error'
        ),
        DeclareLaunchArgument(
            'rviz', default_value='false', description='also start RViz with the package view'
        ),
        DeclareLaunchArgument(
            'fixed_frame',
            default_value='sim_camera_optical_frame',
            description="RViz's fixed frame",
        ),
    ]
    log_arguments = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]
    sim_camera = Node(
        package='grounding_agent',
        executable='sim_camera',
        name='sim_camera',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            {
                'seed': ParameterValue(LaunchConfiguration('seed'), value_type=int),
                'rate_hz': ParameterValue(LaunchConfiguration('rate_hz'), value_type=float),
                'publish_clock': ParameterValue(use_sim_time, value_type=bool),
                'use_sim_time': ParameterValue(use_sim_time, value_type=bool),
            }
        ],
        arguments=log_arguments,
        output='screen',
    )
    grounding_node = Node(
        package='grounding_agent',
        executable='grounding_node',
        name='grounding_node',
        namespace=LaunchConfiguration('namespace'),
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': ParameterValue(use_sim_time, value_type=bool)},
        ],
        remappings=list(CAMERA_REMAPPINGS.items()),
        arguments=log_arguments,
        output='screen',
    )
    rviz = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'rviz.launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'fixed_frame': LaunchConfiguration('fixed_frame'),
            'use_sim_time': use_sim_time,
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
    return LaunchDescription([*arguments, dds_profile, sim_camera, grounding_node, rviz])
