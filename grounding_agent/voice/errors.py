"""Exceptions of the voice subsystem, all `GroundingError`s so callers can catch one base class."""

from __future__ import annotations

from grounding_agent.core.errors import ConfigError, GroundingError

__all__ = [
    'AudioFormatError',
    'AudioSourceError',
    'RecognizerError',
    'VoiceConfigError',
    'VoiceError',
]


class VoiceError(GroundingError):
    """Base class of every voice-command error."""


class AudioFormatError(VoiceError):
    """Audio cannot be decoded: empty, not a WAV file, or a sample format we do not read."""


class AudioSourceError(VoiceError):
    """An audio source cannot be opened (no microphone, no PortAudio, unreadable file)."""


class RecognizerError(VoiceError):
    """A speech recogniser cannot be created or fails while decoding."""


class VoiceConfigError(VoiceError, ConfigError):
    """A voice option is missing or out of range (also a `ConfigError`)."""
