"""grounding_node as a process (what `ros2 run` starts): it answers; Ctrl-C ends it cleanly.

`grounding-agent node` calls the same `main` (test_node_command.py checks the hand-over).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

pytest.importorskip('rclpy')

from ros_harness import RosHarness, interrupt, node_process_argv, scene_image, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_node_process_answers_a_command_and_stops_on_sigint(ros: RosHarness) -> None:
    prefix = f'{ros.prefix}cli'
    process = subprocess.Popen(
        node_process_argv(prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        ros.prefix = prefix  # the peer talks to the process's topics
        peer = ros.peer()
        # Model-free start-up still imports rclpy, numpy and OpenCV: allow for a busy machine.
        assert wait_for(
            lambda: (
                process.poll() is not None
                or (
                    peer.images['front'].get_subscription_count() > 0
                    and peer.commands.get_subscription_count() > 0
                )
            ),
            timeout=90.0,
        ), 'the node process never subscribed'
        assert process.poll() is None, f'the node process ended: {process.communicate()[1]}'
        peer.send_image(scene_image())
        peer.send_command(json.dumps({'text': 'find the red cube', 'request_id': 'cli'}))
        (result,) = peer.wait_results(1, timeout=60.0)
        assert (result.request_id, result.status.value) == ('cli', 'grounded')
        assert result.backend == 'color_shape'
    finally:
        stderr = interrupt(process)
    assert process.returncode == 0, stderr
    assert 'Traceback' not in stderr, stderr
