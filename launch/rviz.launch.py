"""RViz 2 with the package's view of grounding_node: `ros2 launch grounding_agent rviz.launch.py`.

The other launch files include this one when started with `rviz:=true`. The view
(rviz/grounding_agent.rviz) shows the debug image (boxes, the tracked box, the status), the 3D
markers and the frames; its topics are relative, so rviz2 runs in the node's namespace.

    ros2 launch grounding_agent rviz.launch.py namespace:=robot fixed_frame:=base_link
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('grounding_agent')
    arguments = [
        DeclareLaunchArgument(
            'namespace', default_value='', description='namespace of grounding_node'
        ),
        DeclareLaunchArgument(
            'fixed_frame', default_value='base_link', description="RViz's fixed frame"
        ),
        DeclareLaunchArgument(
            'rviz_config',
            default_value=os.path.join(share, 'rviz', 'grounding_agent.rviz'),
            description='RViz configuration file',
        ),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='use /clock (simulation)'
        ),
    ]
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        namespace=LaunchConfiguration('namespace'),
        arguments=[
            '-d',
            LaunchConfiguration('rviz_config'),
            '-f',
            LaunchConfiguration('fixed_frame'),
        ],
        parameters=[
            {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)}
        ],
        output='screen',
    )
    return LaunchDescription([*arguments, rviz])
