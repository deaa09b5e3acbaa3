"""The demo's exception: every error it raises on purpose is a `DemoError`."""

from __future__ import annotations

from grounding_agent.core.errors import GroundingError

__all__ = ['DemoError']


class DemoError(GroundingError):
    """The demo could not run (a node failed to start, no camera frames, a bad truth lookup)."""
