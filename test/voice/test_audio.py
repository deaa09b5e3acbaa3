"""WAV and PCM decoding, down-mixing and resampling to what the recogniser needs."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from grounding_agent.voice.audio import (
    AudioFormat,
    decode_pcm,
    read_wav,
    resample,
    to_int16,
    to_mono,
    write_wav,
)
from grounding_agent.voice.errors import AudioFormatError, VoiceConfigError


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _pcm_wav(path: Path, frames: bytes, *, rate: int, channels: int, width: int) -> Path:
    with wave.open(str(path), 'wb') as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


def _riff(fmt_body: bytes, data: bytes) -> bytes:
    chunks = b'fmt ' + struct.pack('<I', len(fmt_body)) + fmt_body
    chunks += b'data' + struct.pack('<I', len(data)) + data
    return b'RIFF' + struct.pack('<I', 4 + len(chunks)) + b'WAVE' + chunks


@pytest.mark.parametrize(
    ('width', 'encode'),
    [
        (1, lambda x: (np.rint(x * 127) + 128).astype(np.uint8).tobytes()),
        (2, lambda x: np.rint(x * 32767).astype('<i2').tobytes()),
        (
            3,
            lambda x: b''.join(
                int(v).to_bytes(3, 'little', signed=True) for v in np.rint(x * 8388607)
            ),
        ),
        (4, lambda x: np.rint(x * 2147483647).astype('<i4').tobytes()),
    ],
)
def test_reads_integer_pcm_of_every_width(tmp_path: Path, width: int, encode) -> None:  # type: ignore[no-untyped-def]
    tone = _tone(11025)
    path = _pcm_wav(tmp_path / 'tone.wav', encode(tone), rate=11025, channels=1, width=width)
    samples, rate = read_wav(path)
    assert rate == 11025
    assert samples.dtype == np.float32
    assert np.max(np.abs(samples - tone)) < (0.01 if width == 1 else 1e-3)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = _tone(8000), np.zeros(4000, np.float32)
    frames = np.stack([left, right], axis=1)
    path = _pcm_wav(
        tmp_path / 'st.wav',
        np.rint(frames * 32767).astype('<i2').tobytes(),
        rate=8000,
        channels=2,
        width=2,
    )
    samples, _ = read_wav(path)
    assert samples.shape == (4000,)
    assert np.allclose(samples, left / 2, atol=1e-4)


def test_reads_float_and_extensible_wav() -> None:
    tone = _tone(16000)
    float_fmt = struct.pack('<HHIIHH', 3, 1, 16000, 64000, 4, 32)
    samples, rate = read_wav(_riff(float_fmt, tone.astype('<f4').tobytes()))
    assert rate == 16000
    assert np.allclose(samples, tone)
    # WAVE_FORMAT_EXTENSIBLE with the PCM sub-format GUID's first two bytes = 1.
    ext = (
        struct.pack('<HHIIHHHHI', 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4)
        + struct.pack('<H', 1)
        + bytes(14)
    )
    samples, _ = read_wav(_riff(ext, np.rint(tone * 32767).astype('<i2').tobytes()))
    assert np.allclose(samples, tone, atol=1e-4)


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        (b'', 'is empty'),
        (b'ID3\x03\x00 not a wav at all', 'not a WAV file'),
        (_riff(struct.pack('<HHIIHH', 85, 1, 16000, 2000, 1, 0), b'\x00' * 10), 'not supported'),
        (_riff(struct.pack('<HHIIHH', 1, 1, 16000, 24000, 2, 12), b'\x00' * 10), '12-bit'),
        (_riff(struct.pack('<HHIIHH', 3, 1, 16000, 64000, 8, 64), b'\x00' * 16), '64-bit float'),
        (b'RIFF\x04\x00\x00\x00WAVE', 'no valid fmt chunk'),
        (_riff(struct.pack('<HHIIHH', 1, 1, 500, 1000, 2, 16), b'\x00' * 4), 'out of range'),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / 'bad.wav'
    path.write_bytes(content)
    with pytest.raises(AudioFormatError, match=message):
        read_wav(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match='cannot read'):
        read_wav(tmp_path / 'nowhere.wav')


def test_header_only_wav_is_empty_audio(tmp_path: Path) -> None:
    samples, rate = read_wav(_pcm_wav(tmp_path / 'h.wav', b'', rate=16000, channels=1, width=2))
    assert samples.size == 0
    assert rate == 16000


def test_truncated_last_frame_is_dropped() -> None:
    fmt = struct.pack('<HHIIHH', 1, 2, 16000, 64000, 4, 16)
    samples, _ = read_wav(_riff(fmt, b'\x00\x10' * 5))  # 2.5 stereo frames
    assert samples.size == 2


@pytest.mark.parametrize(
    ('sample_format', 'data', 'expected'),
    [
        ('u8', bytes([128, 255, 0]), [0.0, 127 / 128, -1.0]),
        ('s16', np.array([0, 16384, -32768], '<i2').tobytes(), [0.0, 0.5, -1.0]),
        (
            's24',
            (4194304).to_bytes(3, 'little') + (-8388608).to_bytes(3, 'little', signed=True),
            [0.5, -1.0],
        ),
        ('s32', np.array([1 << 30], '<i4').tobytes(), [0.5]),
        ('f32', np.array([0.25, 2.0], '<f4').tobytes(), [0.25, 1.0]),
    ],
)
def test_decode_pcm(sample_format: str, data: bytes, expected: list[float]) -> None:
    audio = decode_pcm(data, AudioFormat(16000, 1, sample_format))  # type: ignore[arg-type]
    assert audio.shape == (len(expected), 1)
    assert np.allclose(audio[:, 0], expected, atol=1e-6)


def test_decode_pcm_refuses_partial_frames_and_nan() -> None:
    with pytest.raises(AudioFormatError, match='whole number'):
        decode_pcm(b'\x00\x01\x02', AudioFormat(16000, 2, 's16'))
    with pytest.raises(AudioFormatError, match='NaN'):
        decode_pcm(np.array([np.nan], '<f4').tobytes(), AudioFormat(16000, 1, 'f32'))


@pytest.mark.parametrize(
    ('rate', 'channels', 'sample_format'),
    [(100, 1, 's16'), (16000, 0, 's16'), (16000, 1, 's12')],
)
def test_audio_format_validates(rate: int, channels: int, sample_format: str) -> None:
    with pytest.raises(VoiceConfigError):
        AudioFormat(rate, channels, sample_format)  # type: ignore[arg-type]


@pytest.mark.parametrize('rate', [8000, 22050, 44100, 48000])
def test_resample_to_16k_keeps_the_tone(rate: int) -> None:
    out = resample(_tone(rate, seconds=1.0, freq=440.0), rate)
    assert abs(out.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(out[1000:-1000]))
    peak_hz = np.argmax(spectrum) * 16000 / (out.size - 2000)
    assert abs(peak_hz - 440.0) < 2.0


def test_resample_removes_what_16k_cannot_hold() -> None:
    # 7 kHz survives at 16 kHz; 10 kHz cannot and must not fold back as a 6 kHz alias.
    kept = resample(_tone(48000, freq=7000.0), 48000)
    folded = resample(_tone(48000, freq=10000.0), 48000)
    assert np.std(kept) > 0.3
    assert np.std(folded) < 0.01


def test_to_int16_clips_and_mono_checks_shape() -> None:
    assert to_int16(np.array([2.0, -2.0, 0.5], np.float32)).tolist() == [32767, -32768, 16384]
    with pytest.raises(AudioFormatError):
        to_mono(np.zeros((4, 3), np.float32), channels=2)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    tone = _tone(16000)
    write_wav(tmp_path / 'rt.wav', tone, 16000)
    samples, rate = read_wav(tmp_path / 'rt.wav')
    assert rate == 16000
    assert np.allclose(samples, tone, atol=1e-4)
