"""The evaluation's exceptions: every error it raises on purpose is an `EvalError`."""

from __future__ import annotations

from grounding_agent.core.errors import GroundingError

__all__ = ['EvalError']


class EvalError(GroundingError):
    """A benchmark, dataset or evaluation run cannot be made as asked."""
