"""Spoken commands, synthesised with espeak-ng, decoded by the real recogniser.

36 commands x 2 voices x 2 speeds = 144 utterances, decoded once per session through the same
VAD -> resample -> pocketsphinx -> checks pipeline the node runs; the tests below assert on the
aggregate. The voices are espeak-ng's en-us voice with its default synthesiser and with the
Klatt synthesiser: pocketsphinx's model is US English (British voices: see docs/voice.md).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grounding_agent.voice.audio import read_wav
from grounding_agent.voice.listener import (
    CommandListener,
    HeardCommand,
    VoiceConfig,
    VoicePipeline,
    command_meaning,
)
from grounding_agent.voice.recognizer import PocketsphinxRecognizer, Recognition
from grounding_agent.voice.synthetic import (
    SPOKEN_COMMANDS,
    RecordingRecognizer,
    synthesize,
    synthesize_all,
)

pytestmark = [
    pytest.mark.voice,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is not installed'),
]

VOICES = ('en-us', 'en-us+klatt')
SPEEDS = (140, 175)


@dataclass(frozen=True)
class Decoded:
    voice: str
    speed: int
    said: str
    heard: list[HeardCommand]
    recognitions: list[Recognition] = field(default_factory=list)

    @property
    def sent(self) -> list[str]:
        return [h.command for h in self.heard if h.accepted]


@pytest.fixture(scope='session')
def decoded(
    tmp_path_factory: pytest.TempPathFactory, recognizer: PocketsphinxRecognizer
) -> list[Decoded]:
    directory = tmp_path_factory.mktemp('spoken')
    wavs = synthesize_all(SPOKEN_COMMANDS, directory, voices=VOICES, speeds=SPEEDS)
    recording = RecordingRecognizer(recognizer)
    listener = CommandListener(VoiceConfig(), recognizer=recording)
    results = []
    for (voice, speed, text), path in wavs.items():
        heard = VoicePipeline.hear_recording(listener, *read_wav(path))
        results.append(Decoded(voice, speed, text, heard, recording.take()))
    return results


def test_each_command_is_one_utterance(decoded: list[Decoded]) -> None:
    assert len(decoded) == len(SPOKEN_COMMANDS) * len(VOICES) * len(SPEEDS)
    assert [d.said for d in decoded if len(d.heard) != 1] == []


def test_at_least_90_percent_reach_the_robot_exactly(decoded: list[Decoded]) -> None:
    exact = sum(d.sent == [d.said] for d in decoded)
    assert exact / len(decoded) >= 0.90, [(d.said, d.heard) for d in decoded if d.sent != [d.said]]
    for voice in VOICES:
        for speed in SPEEDS:
            group = [d for d in decoded if d.voice == voice and d.speed == speed]
            assert sum(d.sent == [d.said] for d in group) / len(group) >= 0.85, (voice, speed)


def _wrong(decoded: list[Decoded]) -> list[tuple[str, str]]:
    return [
        (d.said, sent)
        for d in decoded
        for sent in d.sent
        if sent != d.said and command_meaning(sent) != command_meaning(d.said)
    ]


def test_no_wrong_command_reaches_the_robot(decoded: list[Decoded]) -> None:
    assert _wrong(decoded) == []


def test_the_speed_views_are_what_keeps_wrong_commands_out(
    decoded: list[Decoded], recognizer: PocketsphinxRecognizer
) -> None:
    # The same recognitions judged without their speed views: the recogniser alone is
    # confidently wrong on some utterances ('person' heard as 'third tin' with 0.98 of the
    # posterior), so the views, not luck, make the test above pass.
    listener = CommandListener(VoiceConfig(), recognizer=recognizer)
    blind = [
        Decoded(
            d.voice,
            d.speed,
            d.said,
            [listener.judge(dataclasses.replace(r, views=())) for r in d.recognitions],
        )
        for d in decoded
    ]
    assert _wrong(blind)
    assert all(r.views for d in decoded for r in d.recognitions if r.hypotheses)


def test_a_yes_to_any_question_asked_back_would_send_the_command_that_was_said(
    decoded: list[Decoded],
) -> None:
    asked = [(d.said, h.asks) for d in decoded for h in d.heard if h.asks]
    assert all(command_meaning(asks) == command_meaning(said) for said, asks in asked), asked


def test_every_refusal_says_why(decoded: list[Decoded]) -> None:
    refused = [h for d in decoded for h in d.heard if not h.accepted]
    assert all(h.reason for h in refused)
    assert all(
        h.reason == '' and h.confidence >= 0.9 for d in decoded for h in d.heard if h.accepted
    )


def test_decoding_does_not_depend_on_what_came_before(
    decoded: list[Decoded], recognizer: PocketsphinxRecognizer, tmp_path: Path
) -> None:
    # Batch CMN: the same audio gives the same hypotheses whatever was decoded before.
    path = synthesize(SPOKEN_COMMANDS[10], tmp_path / 'again.wav', voice='en-us', speed=140)
    samples, rate = read_wav(path)
    listener = CommandListener(VoiceConfig(), recognizer=recognizer)
    first = listener.hear(samples, rate)
    listener.hear(read_wav(synthesize('what is on the table', tmp_path / 'o.wav'))[0], 22050)
    again = listener.hear(samples, rate)
    assert (first.text, first.confidence) == (again.text, again.confidence)


def test_wake_word_gates_spoken_commands(tmp_path: Path, dictionary) -> None:  # type: ignore[no-untyped-def]
    from grounding_agent.voice.grammar import build_command_grammar

    grammar = build_command_grammar(dictionary=dictionary, wake_word='robot')
    listener = CommandListener(
        VoiceConfig(wake_word='robot'), recognizer=PocketsphinxRecognizer(grammar)
    )
    with_wake = read_wav(synthesize('robot, pick up the red mug', tmp_path / 'w.wav'))
    without = read_wav(synthesize('pick up the red mug', tmp_path / 'n.wav'))
    heard = listener.hear(*with_wake)
    assert heard.accepted
    assert heard.command == 'pick up the red mug'
    refused = listener.hear(*without)
    assert not refused.accepted
    assert 'wake word' in refused.reason


def test_noise_is_not_a_command(recognizer: PocketsphinxRecognizer) -> None:
    import numpy as np

    listener = CommandListener(VoiceConfig(), recognizer=recognizer)
    rng = np.random.default_rng(3)
    for seconds in (0.5, 1.5, 3.0):
        hiss = rng.normal(0, 0.1, int(16000 * seconds)).astype(np.float32)
        assert not listener.hear(hiss, 16000).accepted


@pytest.mark.parametrize('said', ['stop', 'cancel', 'stop tracking the person'])
def test_spoken_stop_commands(
    said: str, recognizer: PocketsphinxRecognizer, tmp_path: Path
) -> None:
    listener = CommandListener(VoiceConfig(), recognizer=recognizer)
    heard = listener.hear(*read_wav(synthesize(said, tmp_path / 'stop.wav', voice='en-us')))
    assert heard.accepted, heard
    assert command_meaning(heard.command) == 'stop'
