"""Audio as the recogniser wants it: raw PCM or WAV files in, 16 kHz mono int16 out.

Everything between a sound source and the recogniser that is plain arithmetic lives here, so it
can be tested without a microphone or ROS: decoding PCM bytes of several sample formats, WAV
files (any rate, mono or multi-channel, 8/16/24/32-bit integer PCM or 32-bit float),
down-mixing, resampling with a polyphase filter and the conversion to 16-bit samples.
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from grounding_agent.voice.errors import AudioFormatError, VoiceConfigError

__all__ = [
    'RECOGNIZER_RATE',
    'SAMPLE_FORMATS',
    'AudioFormat',
    'SampleFormat',
    'decode_pcm',
    'read_wav',
    'resample',
    'to_int16',
    'to_mono',
    'write_wav',
]

#: What pocketsphinx's en-us model (and Whisper) are trained on.
RECOGNIZER_RATE = 16_000

SampleFormat = Literal['u8', 's16', 's24', 's32', 'f32']
SAMPLE_FORMATS: tuple[SampleFormat, ...] = ('u8', 's16', 's24', 's32', 'f32')
_BYTES_PER_SAMPLE = {'u8': 1, 's16': 2, 's24': 3, 's32': 4, 'f32': 4}
FloatAudio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioFormat:
    """How raw PCM bytes are laid out: interleaved little-endian frames of `channels` samples."""

    sample_rate: int = RECOGNIZER_RATE
    channels: int = 1
    sample_format: SampleFormat = 's16'

    def __post_init__(self) -> None:
        if not 1_000 <= self.sample_rate <= 384_000:
            raise VoiceConfigError(
                f'sample rate {self.sample_rate} Hz is out of range 1000..384000'
            )
        if not 1 <= self.channels <= 32:
            raise VoiceConfigError(f'channel count {self.channels} is out of range 1..32')
        if self.sample_format not in SAMPLE_FORMATS:
            raise VoiceConfigError(
                f'sample format {self.sample_format!r} is not one of {", ".join(SAMPLE_FORMATS)}'
            )

    @property
    def frame_bytes(self) -> int:
        return self.channels * _BYTES_PER_SAMPLE[self.sample_format]


def decode_pcm(data: bytes | bytearray | memoryview, audio_format: AudioFormat) -> FloatAudio:
    """Interleaved PCM bytes -> float32 array (frames, channels) scaled to -1..1.

    A trailing partial frame is an error rather than silently dropped: it means the sender's
    format parameters do not match what it sends.
    """
    raw = bytes(data)
    if len(raw) % audio_format.frame_bytes:
        raise AudioFormatError(
            f'{len(raw)} bytes is not a whole number of {audio_format.channels}-channel '
            f'{audio_format.sample_format} frames ({audio_format.frame_bytes} bytes each)'
        )
    fmt = audio_format.sample_format
    if fmt == 'u8':
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif fmt == 's16':
        samples = np.frombuffer(raw, '<i2').astype(np.float32) / 32768.0
    elif fmt == 's24':
        triples = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        samples = values.astype(np.float32) / float(1 << 23)
    elif fmt == 's32':
        samples = (np.frombuffer(raw, '<i4').astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        samples = np.frombuffer(raw, '<f4').astype(np.float32)
        if not np.all(np.isfinite(samples)):
            raise AudioFormatError('float audio holds NaN or infinite samples')
        samples = np.clip(samples, -1.0, 1.0)
    return samples.reshape(-1, audio_format.channels)


def to_mono(samples: npt.NDArray[np.floating], channels: int | None = None) -> FloatAudio:
    """Average the channels of (frames, channels) audio; 1-D audio is already mono."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        return array
    if array.ndim != 2 or (channels is not None and array.shape[1] != channels):
        raise AudioFormatError(f'expected (frames, channels) audio, got shape {array.shape}')
    return array.mean(axis=1, dtype=np.float32) if array.shape[1] > 1 else array[:, 0].copy()


def resample(samples: FloatAudio, from_rate: int, to_rate: int = RECOGNIZER_RATE) -> FloatAudio:
    """Polyphase resampling (scipy.signal.resample_poly) of mono audio; anti-aliased."""
    if from_rate == to_rate or samples.size == 0:
        return np.asarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(to_rate, from_rate)
    resampled = resample_poly(samples, ratio.numerator, ratio.denominator)
    return np.asarray(resampled, dtype=np.float32)


def to_int16(samples: FloatAudio) -> npt.NDArray[np.int16]:
    """-1..1 float audio -> 16-bit samples (clipped, rounded)."""
    clipped = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    return np.asarray(clipped, dtype=np.int16)


def read_wav(source: str | Path | bytes) -> tuple[FloatAudio, int]:
    """Read a PCM WAV file (path or bytes) -> (mono float32 samples, sample rate).

    Integer PCM of 8, 16, 24 or 32 bits and 32-bit IEEE float, plain or WAVE_FORMAT_EXTENSIBLE,
    are read; anything else, an empty file or a file that is not a WAV raises AudioFormatError
    naming the problem. A truncated last frame (a file cut while recording) is dropped.
    """
    name = '<bytes>' if isinstance(source, bytes) else str(source)
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise AudioFormatError(f'cannot read {name}: {exc.strerror or exc}') from exc
    if not raw:
        raise AudioFormatError(f'{name} is empty')
    if len(raw) < 12 or raw[:4] != b'RIFF' or raw[8:12] != b'WAVE':
        raise AudioFormatError(f'{name} is not a WAV file (no RIFF/WAVE header)')
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    offset = 12
    while offset + 8 <= len(raw):
        chunk_id = raw[offset : offset + 4]
        size = struct.unpack_from('<I', raw, offset + 4)[0]
        body = raw[offset + 8 : offset + 8 + size]  # a data chunk may be cut short
        if chunk_id == b'fmt ' and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack_from('<HHIIHH', body)
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from('<H', body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b'data':
            data = body
        offset += 8 + size + (size & 1)
    if fmt is None:
        raise AudioFormatError(f'{name}: WAV file has no valid fmt chunk')
    if data is None:
        raise AudioFormatError(f'{name}: WAV file has no data chunk')
    tag, channels, rate, bits = fmt
    sample_format = _WAV_FORMATS.get((tag, bits))
    if sample_format is None:
        kind = {_PCM: 'integer PCM', _FLOAT: 'float'}.get(tag, f'format tag {tag}')
        raise AudioFormatError(
            f'{name}: {bits}-bit {kind} audio is not supported (8/16/24/32-bit PCM or 32-bit '
            'float; convert it, e.g. `ffmpeg -i in.wav -acodec pcm_s16le out.wav`)'
        )
    if channels < 1 or rate < 1:
        raise AudioFormatError(f'{name}: invalid fmt chunk ({channels} channels, {rate} Hz)')
    try:
        audio_format = AudioFormat(rate, channels, sample_format)
    except VoiceConfigError as exc:
        raise AudioFormatError(f'{name}: {exc}') from exc
    usable = len(data) - len(data) % audio_format.frame_bytes
    return to_mono(decode_pcm(data[:usable], audio_format)), rate


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_WAV_FORMATS: dict[tuple[int, int], SampleFormat] = {
    (_PCM, 8): 'u8',
    (_PCM, 16): 's16',
    (_PCM, 24): 's24',
    (_PCM, 32): 's32',
    (_FLOAT, 32): 'f32',
}


def write_wav(path: str | Path, samples: FloatAudio, sample_rate: int) -> None:
    """Write mono float audio as a 16-bit PCM WAV file."""
    with wave.open(str(path), 'wb') as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(to_int16(samples).tobytes())
