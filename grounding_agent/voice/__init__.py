"""Voice commands, offline: audio sources, resampling, voice activity detection, a pocketsphinx
grammar generated from the parser's vocabulary, and the checks that keep wrong commands out.

The ROS node is grounding_agent/ros/voice_command.py; `grounding-agent voice` is the command line.
"""

from grounding_agent.voice.audio import AudioFormat, decode_pcm, read_wav, resample, to_int16
from grounding_agent.voice.errors import (
    AudioFormatError,
    AudioSourceError,
    RecognizerError,
    VoiceConfigError,
    VoiceError,
)
from grounding_agent.voice.grammar import CommandGrammar, build_command_grammar, normalize_text
from grounding_agent.voice.listener import (
    CommandListener,
    HeardCommand,
    VoiceConfig,
    VoicePipeline,
    strip_wake_word,
)
from grounding_agent.voice.recognizer import Recognition, Recognizer
from grounding_agent.voice.vad import EnergyVad, Utterance, VadConfig

__all__ = [
    'AudioFormat',
    'AudioFormatError',
    'AudioSourceError',
    'CommandGrammar',
    'CommandListener',
    'EnergyVad',
    'HeardCommand',
    'Recognition',
    'Recognizer',
    'RecognizerError',
    'Utterance',
    'VadConfig',
    'VoiceConfig',
    'VoiceConfigError',
    'VoiceError',
    'VoicePipeline',
    'build_command_grammar',
    'decode_pcm',
    'normalize_text',
    'read_wav',
    'resample',
    'strip_wake_word',
    'to_int16',
]
