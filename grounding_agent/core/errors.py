"""Typed exceptions, one per subsystem; the ROS layer turns them into `error` results."""

from __future__ import annotations

__all__ = [
    'BackendError',
    'CommandError',
    'ConfigError',
    'GroundingError',
    'ImageConversionError',
    'ModelLoadError',
]


class GroundingError(Exception):
    """Base class of every error the agent reports as an `error` result."""


class CommandError(GroundingError):
    """The operator command cannot be understood (empty, garbage, too long, not UTF-8)."""


class ConfigError(GroundingError):
    """A configuration value is missing or out of range."""


class BackendError(GroundingError):
    """A model backend failed while running."""


class ModelLoadError(BackendError):
    """A model could not be loaded; the message names everything that was tried."""


class ImageConversionError(GroundingError):
    """A camera message cannot be turned into an image (encoding, size, step)."""
