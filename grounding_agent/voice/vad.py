"""Voice activity detection: cut a continuous audio stream into utterances, one per command.

Energy-based, with an adaptive noise floor: a frame is speech when its level is `threshold_db`
above the floor measured in the pauses (and above an absolute minimum, so digital silence never
counts). An utterance starts after `onset_ms` of speech (a click does not start one), keeps
`pre_roll_ms` of audio from before the onset (the first consonant is quiet), and ends after
`hangover_ms` of silence, so the pauses between words do not split a command. Utterances shorter
than `min_utterance_ms` of speech are dropped; longer than `max_utterance_ms` are cut and marked.

Why energy and not webrtcvad: it needs no extra package, works at any sample rate, and a command
is spoken close to the robot's microphone, well above the background; the adaptive floor takes
care of a steady fan. It does not separate speech from other loud sounds; those utterances are
decoded and then refused by the grammar and confidence checks.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grounding_agent.voice.audio import FloatAudio
from grounding_agent.voice.errors import VoiceConfigError

__all__ = ['EnergyVad', 'Utterance', 'VadConfig']


class VadConfig(BaseModel):
    """Utterance cutting. Raising `hangover_ms` keeps slow speakers' commands whole but adds
    that much delay before a command is decoded; `threshold_db` trades missed quiet speech for
    utterances triggered by background noise."""

    model_config = ConfigDict(frozen=True, extra='forbid')

    frame_ms: int = Field(default=20, ge=5, le=100, description='analysis frame length')
    threshold_db: float = Field(
        default=12.0, ge=3.0, le=60.0, description='speech: this many dB above the noise floor'
    )
    min_level_dbfs: float = Field(
        default=-50.0,
        ge=-120.0,
        le=0.0,
        description='never speech below this level (dB full scale)',
    )
    onset_ms: int = Field(default=60, ge=0, le=1000, description='speech needed to start')
    hangover_ms: int = Field(default=600, ge=50, le=5000, description='silence that ends it')
    pre_roll_ms: int = Field(default=200, ge=0, le=2000, description='audio kept before onset')
    min_utterance_ms: int = Field(
        default=300, ge=0, le=10_000, description='shorter speech is dropped as a noise burst'
    )
    max_utterance_ms: int = Field(
        default=10_000, ge=500, le=60_000, description='longer utterances are cut and marked'
    )

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> VadConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise VoiceConfigError(f'invalid voice activity settings: {exc}') from exc


@dataclass(frozen=True, eq=False)
class Utterance:
    """One stretch of speech, at the stream's sample rate. `cut`: it hit max_utterance_ms."""

    samples: FloatAudio
    sample_rate: int
    start_s: float
    end_s: float
    cut: bool = False

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


class EnergyVad:
    """Streaming utterance cutter: `feed()` audio chunks of any size, get finished utterances."""

    _FLOOR_WINDOW_MS = 5000
    _FLOOR_HISTORY_MS = 500

    def __init__(self, sample_rate: int, config: VadConfig | None = None) -> None:
        if sample_rate < 1000:
            raise VoiceConfigError(f'sample rate {sample_rate} Hz is too low for speech')
        self.config = config or VadConfig()
        self.sample_rate = sample_rate
        self._frame = max(1, sample_rate * self.config.frame_ms // 1000)
        frame_ms = self.config.frame_ms

        def frames(ms: int) -> int:
            return max(1, math.ceil(ms / frame_ms))

        self._onset = frames(self.config.onset_ms)
        self._hangover = frames(self.config.hangover_ms)
        self._min_speech = math.ceil(self.config.min_utterance_ms / self.config.frame_ms)
        self._max_frames = frames(self.config.max_utterance_ms)
        self._pre_roll: deque[FloatAudio] = deque(maxlen=frames(self.config.pre_roll_ms))
        self._pending = np.zeros(0, np.float32)
        self._floor_db = self.config.min_level_dbfs
        self._frames_seen = 0
        self._onset_run = 0
        self._speech: list[FloatAudio] | None = None
        self._speech_frames = 0
        self._silent_run = 0
        self._start_frame = 0
        self._levels: list[float] = []
        # Minimum statistics: the quietest frame of the last few seconds is background, even
        # when no frame of that time counted as silence (a fan that was on from the start).
        self._window = frames(self._FLOOR_WINDOW_MS)
        self._min_history = frames(self._FLOOR_HISTORY_MS)
        self._minima: deque[tuple[int, float]] = deque()

    @property
    def noise_floor_dbfs(self) -> float:
        return self._floor_db

    @property
    def in_speech(self) -> bool:
        return self._speech is not None

    def feed(self, samples: FloatAudio) -> list[Utterance]:
        """Add mono float audio (-1..1); returns the utterances that ended in it."""
        audio = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._pending.size:
            audio = np.concatenate([self._pending, audio])
        whole = audio.size - audio.size % self._frame
        self._pending = audio[whole:].copy()
        finished: list[Utterance] = []
        for frame in audio[:whole].reshape(-1, self._frame):
            utterance = self._step(frame)
            if utterance is not None:
                finished.append(utterance)
        return finished

    def flush(self) -> list[Utterance]:
        """End of stream: return the utterance in progress, if it is long enough."""
        utterance = self._finish(cut=False) if self._speech is not None else None
        self._pending = np.zeros(0, np.float32)
        self._onset_run = 0
        self._pre_roll.clear()
        return [utterance] if utterance is not None else []

    def _step(self, frame: FloatAudio) -> Utterance | None:
        level = 10.0 * math.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)
        speech = level >= max(
            self._floor_db + self.config.threshold_db, self.config.min_level_dbfs
        )
        self._frames_seen += 1
        if not speech:
            self._track_floor(level)
        self._track_minimum(level)
        if self._speech is None:
            self._onset_run = self._onset_run + 1 if speech else 0
            self._pre_roll.append(frame)
            if self._onset_run >= self._onset:
                # The onset frames are the last ones of the pre-roll buffer.
                self._speech = list(self._pre_roll)
                self._start_frame = self._frames_seen - len(self._speech)
                self._speech_frames = self._onset_run
                self._silent_run = 0
                self._pre_roll.clear()
            return None
        self._speech.append(frame)
        self._levels.append(level)
        if speech:
            self._speech_frames += 1
            self._silent_run = 0
        else:
            self._silent_run += 1
        if self._silent_run >= self._hangover:
            return self._finish(cut=False)
        if len(self._speech) >= self._max_frames:
            return self._finish(cut=True)
        return None

    def _track_floor(self, level: float) -> None:
        # Fall fast (a pause shows the true background), rise slowly (speech tails are not noise).
        floor = max(level, -100.0)
        if floor < self._floor_db:
            self._floor_db = floor
        else:
            self._floor_db += 0.02 * (floor - self._floor_db)

    def _track_minimum(self, level: float) -> None:
        minima = self._minima
        while minima and minima[-1][1] >= level:
            minima.pop()
        minima.append((self._frames_seen, level))
        while minima[0][0] <= self._frames_seen - self._window:
            minima.popleft()
        if self._frames_seen >= self._min_history and minima[0][1] > self._floor_db:
            self._floor_db = minima[0][1]

    def _finish(self, *, cut: bool) -> Utterance | None:
        if cut and self._levels:
            # Ten seconds of 'speech' is a new, louder background (a fan came on): take it as
            # the floor, or every later frame would be speech too.
            self._floor_db = float(np.percentile(self._levels, 20))
        self._levels = []
        frames = self._speech or []
        speech_frames = self._speech_frames
        self._speech = None
        self._onset_run = 0
        self._speech_frames = 0
        self._silent_run = 0
        if speech_frames < self._min_speech or not frames:
            return None
        samples = np.concatenate(frames)
        start = self._start_frame * self._frame / self.sample_rate
        return Utterance(
            samples, self.sample_rate, start, start + samples.size / self.sample_rate, cut=cut
        )
