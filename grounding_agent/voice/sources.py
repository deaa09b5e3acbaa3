"""Where audio comes from: the default (or a chosen) microphone, or a WAV file played as a stream.

Both deliver mono float32 chunks to a callback, from their own thread, so a node or a command
line loop treats them alike. `sounddevice` (PortAudio) is imported only when a microphone is
opened: machines without a sound card can still decode files and topics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from grounding_agent.voice.audio import FloatAudio, read_wav, to_mono
from grounding_agent.voice.errors import AudioSourceError

__all__ = ['AudioCallback', 'MicrophoneSource', 'WavFileSource', 'list_microphones']

#: Called with (mono float32 samples, sample rate) from the source's thread.
AudioCallback = Callable[[FloatAudio, int], None]


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioSourceError(
            'no microphone support: the sounddevice package is not installed '
            '(pip install sounddevice)'
        ) from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise AudioSourceError(
            f'no microphone support: PortAudio is not available ({exc}); '
            'install it with `sudo apt-get install libportaudio2`'
        ) from exc
    return sounddevice


def list_microphones() -> list[str]:
    """'index: name (channels, default rate)' of every input device PortAudio sees."""
    sounddevice = _sounddevice()
    try:
        devices = sounddevice.query_devices()
    except Exception as exc:
        raise AudioSourceError(f'cannot list audio devices: {exc}') from exc
    return [
        f'{index}: {device["name"]} ({device["max_input_channels"]} ch, '
        f'{device["default_samplerate"]:.0f} Hz)'
        for index, device in enumerate(devices)
        if device.get('max_input_channels', 0) > 0
    ]


class MicrophoneSource:
    """Capture from a microphone: `device` is '' (the default input), an index or a name part.

    `sample_rate` 0 uses the device's default rate (the pipeline resamples anyway); a rate the
    device does not support is an error at `start()`, not silence.
    """

    def __init__(
        self,
        callback: AudioCallback,
        *,
        device: str = '',
        sample_rate: int = 0,
        channels: int = 1,
        block_ms: int = 100,
    ) -> None:
        self._callback = callback
        self.device: int | str | None = (
            int(device) if device.strip().isdigit() else (device.strip() or None)
        )
        self.sample_rate = sample_rate
        self.channels = channels
        self.block_ms = block_ms
        self.overflows = 0
        self._stream: Any = None

    def start(self) -> None:
        sounddevice = _sounddevice()
        try:
            info = sounddevice.query_devices(self.device, 'input')
            rate = int(self.sample_rate or info['default_samplerate'])
            stream = sounddevice.InputStream(
                device=self.device,
                channels=self.channels,
                samplerate=rate,
                dtype='float32',
                blocksize=max(1, rate * self.block_ms // 1000),
                callback=self._on_block,
            )
            stream.start()
        except Exception as exc:
            which = (
                'the default microphone' if self.device is None else f'microphone {self.device!r}'
            )
            raise AudioSourceError(
                f'cannot open {which}: {exc} (list the devices with `grounding-agent voice '
                '--list-microphones`)'
            ) from exc
        self.sample_rate = rate
        self._stream = stream

    def _on_block(self, block: Any, frames: int, time_info: Any, status: Any) -> None:
        if status and getattr(status, 'input_overflow', False):
            self.overflows += 1
        self._callback(to_mono(np.array(block, dtype=np.float32), self.channels), self.sample_rate)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()


class WavFileSource:
    """Play a WAV file into the callback in `block_ms` chunks, then call `on_end`.

    `realtime` paces the chunks like a microphone would; otherwise the file is delivered as
    fast as the callback takes it (tests, batch decoding).
    """

    def __init__(
        self,
        path: str | Path,
        callback: AudioCallback,
        *,
        realtime: bool = False,
        block_ms: int = 100,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.samples, self.sample_rate = read_wav(path)
        self._callback = callback
        self.realtime = realtime
        self.block = max(1, self.sample_rate * block_ms // 1000)
        self._on_end = on_end
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._play, name='wav-source', daemon=True)
        self._thread.start()

    def _play(self) -> None:
        started = time.monotonic()
        for offset in range(0, self.samples.size, self.block):
            if self._stop.is_set():
                return
            if self.realtime:
                delay = started + offset / self.sample_rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            self._callback(self.samples[offset : offset + self.block], self.sample_rate)
        if self._on_end is not None and not self._stop.is_set():
            self._on_end()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()
