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


def _robot(namespace: str, timeout_s: float, folder: Path) -> subprocess.Popen[str]:
    """A node process under `namespace` with its own params file keyed `/**`."""
    params = folder / f'{namespace.strip("/")}.yaml'
    params.write_text(
        yaml.safe_dump(
            {
                '/**': {
                    'ros__parameters': {
                        'command_timeout_s': timeout_s,
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
    return subprocess.Popen(
        [*NODE, '-r', f'__ns:={namespace}', '--params-file', str(params)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_namespaced_robots_take_their_own_params_files_without_colliding(
    ros: RosHarness, tmp_path: Path
) -> None:
    robots = {f'{ros.prefix}robot1': 7.5, f'{ros.prefix}robot2': 9.5}
    processes = {ns: _robot(ns, timeout_s, tmp_path) for ns, timeout_s in robots.items()}
    try:
        node = ros.peer().node
        diagnostics: list[DiagnosticArray] = []
        node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)

        def up(namespace: str) -> bool:
            # the default (relative) topics resolved in the namespace, one node behind each
            return all(
                count == 1
                for count in (
                    node.count_subscribers(f'{namespace}/camera/image_raw'),
                    node.count_subscribers(f'{namespace}/camera/depth/image_raw'),
                    node.count_subscribers(f'{namespace}/grounding_node/command'),
                    node.count_publishers(f'{namespace}/planner/grounding'),
                )
            )

        assert wait_for(
            lambda: (
                any(p.poll() is not None for p in processes.values())
                or all(up(ns) for ns in robots)
            ),
            timeout=120.0,
        ), 'the nodes never came up in their namespaces'
        for process in processes.values():
            assert process.poll() is None, process.communicate()[1]
        assert node.count_subscribers('/camera/image_raw') == 0  # nothing left at the root
        assert node.count_publishers('/planner/grounding') == 0

        from rclpy.parameter_client import AsyncParameterClient

        for namespace, timeout_s in robots.items():
            client = AsyncParameterClient(node, f'{namespace}/grounding_node')
            assert client.wait_for_services(timeout_sec=20.0)
            future = client.get_parameters(
                ['command_timeout_s', 'image_qos', 'resolver.accept_threshold', 'planner_topic']
            )
            assert wait_for(future.done)
            values = [_value(v) for v in future.result().values]
            assert values == [timeout_s, 'reliable', 0.3, 'planner/grounding']
            (tracking,) = node.get_publishers_info_by_topic(f'{namespace}/planner/tracking')
            assert tracking.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT

        def entries(namespace: str) -> list[Any]:
            name = f'{namespace}/grounding_node: '
            return [s for d in diagnostics for s in d.status if s.name.startswith(name)]

        assert wait_for(lambda: all(entries(ns) for ns in robots))
        for namespace in robots:
            assert {s.hardware_id for s in entries(namespace)} == {f'{namespace}/grounding_node'}
    finally:
        stderrs = {ns: interrupt(process) for ns, process in processes.items()}
    for namespace, process in processes.items():
        assert process.returncode == 0, stderrs[namespace]


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
