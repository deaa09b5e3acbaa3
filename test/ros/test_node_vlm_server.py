"""grounding_node as a process with the vlm_server backend, against a REAL `transformers serve`
answering with a tiny random Qwen2.5-VL (test/backends/served_vlm.py), on loopback.

Random weights say random things, so a command's answer may be grounded, rejected or an error
about an unreadable reply; what is checked is that every command gets exactly one answer, that
while the server is dead the answers are `error` results naming the server, and that the first
command after the server is back is answered by the model again. Times are measured in
bench/bench_vlm_server.py, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('rclpy')

from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import RosHarness, interrupt, node_process_argv, scene_image, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'backends'))
from served_vlm import ServedVlm

pytestmark = [pytest.mark.ros, pytest.mark.slow]

# Transport failures, as the backend words them; a reply the parser cannot read is not one.
_TRANSPORT = ('cannot connect', 'circuit open', 'connection closed', 'no reply within', 'HTTP ')


def test_node_answers_through_a_served_vlm_and_survives_its_death(
    ros: RosHarness, tmp_path: Path
) -> None:
    served = ServedVlm(tmp_path / 'tiny-qwen2_5_vl')
    served.start()
    prefix = f'{ros.prefix}vlm'
    options = {
        'base_url': served.url,
        'family': 'qwen2_5_vl',
        'timeout_s': 60.0,
        'max_tokens': 16,
        'max_retries': 1,
        'breaker_failures': 2,
        'breaker_reset_s': 0.5,
    }
    process = subprocess.Popen(
        node_process_argv(
            prefix,
            'backend.name:=vlm_server',
            f'backend.model:={served.model}',
            f"backend.options:='{json.dumps(options)}'",  # a YAML string
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        ros.prefix = prefix
        peer = ros.peer()
        diagnostics = peer.collect(DiagnosticArray, '/diagnostics')
        assert wait_for(
            lambda: (
                process.poll() is not None
                or (
                    peer.images['front'].get_subscription_count() > 0
                    and peer.commands.get_subscription_count() > 0
                )
            ),
            timeout=120.0,
        ), 'the node process never subscribed'
        assert process.poll() is None, f'the node process ended: {process.communicate()[1]}'

        def ask(request_id: str, expected: int) -> object:
            peer.send_image(scene_image())
            peer.send_command(json.dumps({'text': 'find the red cube', 'request_id': request_id}))
            results = peer.wait_results(expected, timeout=180.0)
            return [r for r in results if r.request_id == request_id]

        (first,) = ask('up', 1)
        assert first.backend == 'vlm_server'
        assert not any(word in first.reason for word in _TRANSPORT), first.reason

        served.kill()
        for index in range(3):
            (down,) = ask(f'down{index}', 2 + index)
            assert down.status.value == 'error'
            assert served.url in down.reason
            assert any(word in down.reason for word in _TRANSPORT), down.reason

        def degraded() -> bool:
            return any(
                'degraded' in status.message and served.url in status.message
                for array in list(diagnostics)
                for status in array.status
                if status.name.endswith(': backend') and prefix.strip('/') in status.name
            )

        assert wait_for(degraded, timeout=30.0), 'diagnostics never said the backend is degraded'

        served.start()
        (back,) = ask('back', 5)
        assert not any(word in back.reason for word in _TRANSPORT), back.reason
        assert len(peer.received()) == 5  # one answer per command, none twice
    finally:
        served.kill()
        stderr = interrupt(process)
    assert 'Traceback' not in stderr, stderr
