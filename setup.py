"""ament_python package definition; `pip install -e .` and `colcon build` both use it."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'grounding_agent'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    package_data={package_name: ['py.typed', 'schema/*.json', 'core/*.lark']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.sdf')),
        ('share/' + package_name + '/config/dds', glob('config/dds/*.xml')),
        ('share/' + package_name + '/rviz', glob('rviz/*.rviz')),
    ],
    # Runtime dependencies are declared in package.xml (rosdep) and installed into the venv by
    # the Makefile from config/pip; setuptools does not pin them so colcon builds stay clean.
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='grounding_agent developers',
    maintainer_email='grounding-agent@users.noreply.github.com',
    description='ROS 2 grounding agent: operator commands to tracked boxes, or a rejection',
    license='Apache-2.0',
    python_requires='>=3.10',
    # Optional parts a robot install does without: the PyBullet simulation and the voice node.
    extras_require={
        'test': ['pytest'],
        'sim': ['pybullet'],
        'voice': ['pocketsphinx', 'sounddevice'],
    },
    entry_points={
        'console_scripts': [
            'grounding-agent = grounding_agent.cli:main',
            'grounding_node = grounding_agent.ros.grounding_node:main',
            'sim_camera = grounding_agent.ros.sim_camera:main',
            'voice_command = grounding_agent.ros.voice_command:main',
        ],
    },
)
