"""The simulator's exception: every error it raises on purpose is a `SimError`."""

from __future__ import annotations

from grounding_agent.core.errors import GroundingError

__all__ = ['SimError']


class SimError(GroundingError, ValueError):
    """A scene, camera, path, preset or object name the simulator cannot use, or a closed world.

    Also a `ValueError`, which these errors were before the simulator had its own class.
    """
