"""grounding_node started as a process the way a robot starts it: under a namespace with a params
file keyed `/**`, and refused with exit code 2 when a start-up parameter is bad."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import ReliabilityPolicy
from ros_harness import RosHarness, interrupt, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NODE = [sys.executable, '-m', 'grounding_agent.ros.grounding_node', '--ros-args']


def test_a_namespaced_node_takes_its_params_file_and_moves_every_topic(
    ros: RosHarness, tmp_path: Path
) -> None:
    namespace = f'{ros.prefix}robot'
    params = tmp_path / 'robot.yaml'
    params.write_text(
        yaml.safe_dump(
            {
                '/**': {
                    'ros__parameters': {
                        'command_timeout_s': 7.5,
                        'image_qos': 'reliable',
                        'resolver': {'accept_threshold': 0.3},
                        # qos_overrides name the resolved topic: the namespace is in it
                        f'qos_overrides.{namespace}/planner/tracking.publisher.reliability': (
                            'best_effort'
                        ),
                    }
                }
            }
        )
    )
    process = subprocess.Popen(
        [*NODE, '-r', f'__ns:={namespace}', '--params-file', str(params)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        node = ros.peer().node
        diagnostics: list[DiagnosticArray] = []
        node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
        # the default (relative) topics resolved in the namespace: nothing left at the root
        assert wait_for(
            lambda: (
                process.poll() is not None
                or all(
                    count() == 1
                    for count in (
                        lambda: node.count_subscribers(f'{namespace}/camera/image_raw'),
                        lambda: node.count_subscribers(f'{namespace}/camera/depth/image_raw'),
                        lambda: node.count_subscribers(f'{namespace}/grounding_node/command'),
                        lambda: node.count_publishers(f'{namespace}/planner/grounding'),
                    )
                )
            ),
            timeout=90.0,
        ), 'the node never came up in its namespace'
        assert process.poll() is None, process.communicate()[1]
        assert node.count_subscribers('/camera/image_raw') == 0
        assert node.count_publishers('/planner/grounding') == 0

        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(node, f'{namespace}/grounding_node')
        assert client.wait_for_services(timeout_sec=20.0)
        future = client.get_parameters(
            ['command_timeout_s', 'image_qos', 'resolver.accept_threshold', 'planner_topic']
        )
        assert wait_for(future.done)
        values = [_value(v) for v in future.result().values]
        assert values == [7.5, 'reliable', 0.3, 'planner/grounding']

        (tracking,) = node.get_publishers_info_by_topic(f'{namespace}/planner/tracking')
        assert tracking.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT

        fully_qualified = f'{namespace}/grounding_node'
        assert wait_for(
            lambda: any(
                s.name.startswith(f'{fully_qualified}: ') for d in diagnostics for s in d.status
            )
        )
        ours = [s for d in diagnostics for s in d.status if s.name.startswith(fully_qualified)]
        assert {s.hardware_id for s in ours} == {fully_qualified}
    finally:
        stderr = interrupt(process)
    assert process.returncode == 0, stderr


def _value(value: Any) -> Any:
    from rcl_interfaces.msg import ParameterType

    return {
        ParameterType.PARAMETER_DOUBLE: value.double_value,
        ParameterType.PARAMETER_STRING: value.string_value,
    }[value.type]


@pytest.mark.parametrize(
    ('parameter', 'reason'),
    [
        ('max_rate_hz:=5000.0', 'max_rate_hz out of range'),
        ('query_camera:=nope', "query_camera 'nope' is not one of cameras"),
        ('image_qos:=fast', 'image_qos must be one of'),
    ],
)
def test_a_bad_start_up_parameter_exits_2_with_its_reason(
    ros: RosHarness, parameter: str, reason: str
) -> None:
    process = subprocess.run(
        [*NODE, '-r', f'__ns:={ros.prefix}bad', '-p', parameter],
        capture_output=True,
        text=True,
        timeout=120.0,
    )
    assert process.returncode == 2, process.stderr
    assert reason in process.stderr
    assert 'Traceback' not in process.stderr
