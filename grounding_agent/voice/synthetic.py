"""Spoken commands for tests and benchmarks, synthesised with espeak-ng.

A fixed list of commands (written before any measurement, covering verbs, colours, sizes,
relations, ordinals, superlatives and questions) and a helper that speaks one into a WAV file.
Synthetic voices are not people: they are a reproducible stand-in that lets the whole chain
(audio -> VAD -> recogniser -> checks -> ROS topic) be tested on a machine without a
microphone. espeak-ng is a system package (`apt-get install espeak-ng`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grounding_agent.voice.errors import AudioSourceError
from grounding_agent.voice.recognizer import Int16Audio, Recognition, Recognizer

__all__ = [
    'SPOKEN_COMMANDS',
    'RecordingRecognizer',
    'espeak_available',
    'synthesize',
    'synthesize_all',
]

SPOKEN_COMMANDS: tuple[str, ...] = (
    'pick up the red mug',
    'find the blue bottle',
    'track the person',
    'grab the small green cup',
    'go to the table',
    'look at the large yellow box',
    'where is the laptop',
    'show me the black chair',
    'point at the white plate',
    'fetch the orange ball',
    'pick up the red mug left of the laptop',
    'find the cup on the table',
    'grab the bottle next to the plate',
    'find the green box behind the chair',
    'look at the ball in front of the laptop',
    'get the mug to the right of the bottle',
    'find the cup between the laptop and the plate',
    'track the second red cube',
    'pick up the leftmost bottle',
    'grab the largest blue ball',
    'find the third cup',
    'pick up the smallest box on the table',
    'how many boxes are there',
    'how many red mugs are there',
    'how many cups are there on the table',
    'is there a blue bottle',
    'is there an orange cup on the table',
    'is the red mug left of the laptop',
    'is the ball under the chair',
    'what is on the table',
    'where are the green cups',
    'navigate to the big chair',
    'follow the person near the table',
    'keep track of the purple cylinder',
    'find the nearest gray cone',
    'move to the brown box beside the chair',
)


def espeak_available() -> bool:
    return shutil.which('espeak-ng') is not None


def synthesize(text: str, path: str | Path, *, voice: str = 'en-us', speed: int = 160) -> Path:
    """Speak `text` into the WAV file `path` (espeak-ng writes 22050 Hz mono 16-bit)."""
    executable = shutil.which('espeak-ng')
    if executable is None:
        raise AudioSourceError('espeak-ng is not installed (apt-get install espeak-ng)')
    if not 80 <= speed <= 500:
        raise AudioSourceError(f'espeak-ng speed {speed} words per minute is out of range 80..500')
    target = Path(path)
    try:
        subprocess.run(
            [executable, '-v', voice, '-s', str(speed), '-w', str(target), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, 'stderr', b'') or b''
        raise AudioSourceError(
            f'espeak-ng failed for voice {voice!r}: {detail.decode(errors="replace").strip()}'
        ) from exc
    return target


def synthesize_all(
    texts: Sequence[str], directory: str | Path, *, voices: Sequence[str], speeds: Sequence[int]
) -> dict[tuple[str, int, str], Path]:
    """Speak every text in every voice at every speed: (voice, speed, text) -> WAV path.

    Two espeak-ng processes at a time; files are named by position, so any text is safe.
    """
    folder = Path(directory)
    jobs = [(v, s, i, t) for v in voices for s in speeds for i, t in enumerate(texts)]

    def speak(job: tuple[str, int, int, str]) -> Path:
        voice, speed, index, text = job
        return synthesize(text, folder / f'{voice}_{speed}_{index}.wav', voice=voice, speed=speed)

    with ThreadPoolExecutor(max_workers=2) as pool:
        paths = list(pool.map(speak, jobs))
    return {(v, s, t): path for (v, s, _, t), path in zip(jobs, paths)}


class RecordingRecognizer(Recognizer):
    """A recogniser that keeps every recognition, so tests and benchmarks can judge the same
    decodes again under other settings (e.g. without the speed views)."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self.name = recognizer.name
        self.recognitions: list[Recognition] = []

    def recognize(self, audio: Int16Audio) -> Recognition:
        recognition = self.recognizer.recognize(audio)
        self.recognitions.append(recognition)
        return recognition

    def take(self) -> list[Recognition]:
        """The recognitions since the last call."""
        taken, self.recognitions = self.recognitions, []
        return taken
