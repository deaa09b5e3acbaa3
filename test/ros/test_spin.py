"""spin_node: a callback that raises is logged and the node spins on; a signal ends it with 0.

The node runs in a child process (signals reach only a main thread), built from this source.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('rclpy')

pytestmark = pytest.mark.ros

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from rclpy.node import Node
    from grounding_agent.ros.spin import spin_node

    class Flaky(Node):
        '''A timer that fails on its first tick, then counts ticks and, at the third, asks the
        process to end the way an operator would.'''

        def __init__(self):
            super().__init__('flaky')
            self.ticks = 0
            self.create_timer(0.05, self.tick)

        def tick(self):
            self.ticks += 1
            if self.ticks == 1:
                raise ZeroDivisionError('a bug in a callback')
            if self.ticks == 3:
                print('still spinning', flush=True)
                os.kill(os.getpid(), signal.SIG{signal})

    ended = []
    code = spin_node('flaky', Flaky, [], threads=2, shut_down=lambda n: ended.append(n.ticks))
    print(f'shut down after {{ended}} ticks, exit {{code}}', flush=True)
    sys.exit(code)
    """
)


@pytest.mark.parametrize('signal_name', ['INT', 'TERM'])
def test_a_failing_callback_is_logged_and_a_signal_ends_the_node_with_0(
    signal_name: str,
) -> None:
    process = subprocess.run(
        [sys.executable, '-c', CHILD.format(signal=signal_name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert process.returncode == 0, process.stderr
    assert 'still spinning' in process.stdout
    # the shut-down hook ran with the node still spinning: it saw the ticks after the failure
    ended = re.search(r'shut down after \[(\d+)\] ticks, exit 0', process.stdout)
    assert ended is not None, process.stdout
    assert int(ended.group(1)) >= 3
    assert 'a callback failed' in process.stderr
    assert 'ZeroDivisionError: a bug in a callback' in process.stderr
