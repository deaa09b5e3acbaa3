"""The core stays ROS-free and model-free: importing any core module pulls in none of them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# What the core must never import (docs/architecture.md: the ROS layer converts at the edge; model
# libraries live in backends and are loaded only when a model backend is).
FORBIDDEN_PREFIXES = ('rclpy', 'torch', 'transformers', 'supervision', 'pybullet')
FORBIDDEN_SUFFIX = '_msgs'

PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import grounding_agent.core as core

    names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, core.__name__ + '.'))
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f'{type(exc).__name__}: {exc}'
    print(json.dumps({'modules': names, 'failed': failed, 'loaded': sorted(sys.modules)}))
    """
)


def _probe() -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, '-c', PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _forbidden(module: str) -> bool:
    top = module.split('.')[0]
    return top.startswith(FORBIDDEN_PREFIXES) or top.endswith(FORBIDDEN_SUFFIX)


def test_core_imports_no_ros_and_no_model_library() -> None:
    report = _probe()
    modules = report['modules']
    assert isinstance(modules, list)
    assert 'grounding_agent.core.resolver' in modules
    assert report['failed'] == {}
    loaded = report['loaded']
    assert isinstance(loaded, list)
    assert [m for m in loaded if _forbidden(m)] == []


def test_the_forbidden_check_recognises_what_it_must_refuse() -> None:
    assert _forbidden('rclpy.node')
    assert _forbidden('sensor_msgs.msg')
    assert _forbidden('torch')
    assert _forbidden('supervision.detection.core')
    assert not _forbidden('numpy')
    assert not _forbidden('grounding_agent.core.types')
