"""Fixtures of the ROS tests: an rclpy context per module and a DDS harness per test.

The helpers themselves (harness, peers, the `test_scripted` backend double) are in
ros_harness.py, imported only where rclpy is installed.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

HAVE_RCLPY = importlib.util.find_spec('rclpy') is not None
_test_ids = itertools.count()


@pytest.fixture(scope='module')
def ros_context() -> Iterator[Any]:
    if not HAVE_RCLPY:
        pytest.skip('rclpy is not installed')
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def ros(ros_context: Any) -> Iterator[Any]:
    """A background executor in this test's own namespace; nodes made through it are destroyed."""
    from ros_harness import RosHarness, ScriptedTestBackend

    ScriptedTestBackend.reset()
    harness = RosHarness(ros_context, f't{next(_test_ids)}')
    yield harness
    harness.close()
    ScriptedTestBackend.reset()
