"""`grounding-agent node` hands its ROS arguments to the node's `main` unchanged."""

from __future__ import annotations

import argparse

import pytest

from grounding_agent.commands import node as node_command


@pytest.mark.parametrize(
    ('argv', 'expected'),
    [
        ([], ['grounding_node']),
        (['--ros-args'], ['grounding_node', '--ros-args']),
        (
            [
                '--ros-args',
                '-p',
                'query:=track the red cube',
                '-r',
                '__ns:=/robot',
                '--log-level',
                'debug',
            ],
            [
                'grounding_node',
                '--ros-args',
                '-p',
                'query:=track the red cube',
                '-r',
                '__ns:=/robot',
                '--log-level',
                'debug',
            ],
        ),
    ],
)
def test_ros_arguments_reach_main(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: list[str]
) -> None:
    pytest.importorskip('rclpy')
    import grounding_agent.ros.grounding_node as grounding_node

    seen: list[list[str]] = []
    monkeypatch.setattr(grounding_node, 'main', lambda args: seen.append(list(args)) or 0)
    parser = argparse.ArgumentParser(prog='grounding-agent node')
    node_command.add_arguments(parser)
    assert node_command.run(parser.parse_args(argv)) == 0
    assert seen == [expected]
