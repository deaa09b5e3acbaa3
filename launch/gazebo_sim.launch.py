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
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
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
# Frames: the world's camera sets `gz_frame_id` to the optical frame, so its images carry the
# frame the node's 3D points are computed in (z forward, x right, y down). Two static transforms
# place it: `world` -> `camera_link` (the camera model's pose in tabletop.sdf, x forward) and
# `camera_link` -> the optical frame (REP 103: roll -90, yaw -90 degrees).
WORLD_FRAME = 'world'
CAMERA_FRAME = 'camera_link'
OPTICAL_FRAME = 'sim_camera_optical_frame'
CAMERA_POSE = (-0.55, 0.0, 1.25, 0.0, 0.70, 0.0)  # x y z roll pitch yaw, as in tabletop.sdf
OPTICAL_IN_CAMERA = (0.0, 0.0, 0.0, -1.5707963267948966, 0.0, -1.5707963267948966)


def static_transform_arguments(pose: tuple[float, ...], parent: str, child: str) -> list[str]:
    """tf2_ros static_transform_publisher's named arguments for `child`'s pose in `parent`."""
    names = ('--x', '--y', '--z', '--roll', '--pitch', '--yaw')
    values = [item for name, value in zip(names, pose) for item in (name, repr(value))]
    return [*values, '--frame-id', parent, '--child-frame-id', child]


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
        DeclareLaunchArgument(
            'rviz', default_value='false', description='also start RViz with the package view'
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
            {
                'use_sim_time': LaunchConfiguration('use_sim_time'),
                # 3D points and markers also in the world frame (tf2 at the image's stamp)
                'target_frame': WORLD_FRAME,
            },
        ],
        remappings=list(CAMERA_REMAPPINGS.items()),
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
        output='screen',
    )
    frames = [
        Node(
            package='tf2_ros',
            executable='static_transform_publisher',
            name=f'{child}_static_transform',
            arguments=static_transform_arguments(pose, parent, child),
            parameters=[{'use_sim_time': LaunchConfiguration('use_sim_time')}],
            output='screen',
        )
        for pose, parent, child in (
            (CAMERA_POSE, WORLD_FRAME, CAMERA_FRAME),
            (OPTICAL_IN_CAMERA, CAMERA_FRAME, OPTICAL_FRAME),
        )
    ]
    rviz = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'rviz.launch.py')),
        launch_arguments={
            'namespace': LaunchConfiguration('namespace'),
            'fixed_frame': WORLD_FRAME,
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
    return LaunchDescription(
        [*arguments, dds_profile, gz_sim, bridge, *frames, grounding_node, rviz]
    )
