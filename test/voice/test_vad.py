"""Voice activity detection cuts a stream of silence and speech into utterances."""

from __future__ import annotations

import numpy as np
import pytest

from grounding_agent.voice.errors import VoiceConfigError
from grounding_agent.voice.vad import EnergyVad, VadConfig

RATE = 16000


def _speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced-sounding bursts: a 150 Hz buzz with formant-ish harmonics, syllable envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * buzz * syllables / 3 + rng.normal(0, 0.01, t.size)).astype(np.float32)


def _noise(seconds: float, level: float = 0.002, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, int(seconds * RATE)).astype(np.float32)


def _run(vad: EnergyVad, signal: np.ndarray, chunk: int = 1234) -> list:  # type: ignore[type-arg]
    found = []
    for start in range(0, signal.size, chunk):
        found += vad.feed(signal[start : start + chunk])
    return found + vad.flush()


def test_cuts_two_utterances_out_of_silence() -> None:
    signal = np.concatenate(
        [_noise(1.0), _speech_like(1.5), _noise(1.2), _speech_like(0.8, seed=3), _noise(1.0)]
    )
    utterances = _run(EnergyVad(RATE), signal)
    assert len(utterances) == 2
    first, second = utterances
    # Starts a little before the speech (pre-roll), ends after it (hangover), never early.
    assert 0.75 <= first.start_s <= 1.0
    assert 2.5 <= first.end_s <= 2.5 + 0.65
    assert 3.45 <= second.start_s <= 3.7
    assert not first.cut
    assert not second.cut
    assert first.sample_rate == RATE


def test_short_pauses_do_not_split_a_command() -> None:
    words = [_speech_like(0.4, seed=s) for s in range(4)]
    gaps = [_noise(0.25, seed=10 + s) for s in range(4)]
    signal = np.concatenate(
        [_noise(0.5), *[x for pair in zip(words, gaps) for x in pair], _noise(1.0)]
    )
    assert len(_run(EnergyVad(RATE), signal)) == 1


def test_digital_silence_and_clicks_are_not_utterances() -> None:
    click = np.zeros(RATE, np.float32)
    click[8000:8040] = 0.9
    signal = np.concatenate([np.zeros(RATE, np.float32), click, np.zeros(RATE, np.float32)])
    assert _run(EnergyVad(RATE), signal) == []


def test_adapts_to_a_steady_background() -> None:
    # A fan at -34 dBFS: above the absolute minimum, but it is not speech.
    fan = _noise(3.0, level=0.02)
    loud_speech = _speech_like(1.0) * 3
    signal = np.concatenate([fan, loud_speech + _noise(1.0, level=0.02, seed=4), fan])
    vad = EnergyVad(RATE)
    *start_up, speech = _run(vad, signal)
    assert 2.7 <= speech.start_s <= 3.05
    assert speech.end_s < 4.7
    # Until half a second of background is known, the fan may open one utterance.
    assert all(u.end_s < 2.0 for u in start_up)
    assert len(start_up) <= 1
    assert -40 < vad.noise_floor_dbfs < -30


def test_too_long_utterances_are_cut_and_marked() -> None:
    config = VadConfig(max_utterance_ms=2000)
    signal = np.concatenate([_noise(0.5), _speech_like(5.0), _noise(1.0)])
    utterances = _run(EnergyVad(RATE, config), signal)
    assert utterances[0].cut
    assert utterances[0].duration_s == pytest.approx(2.0, abs=0.05)


def test_flush_returns_the_utterance_in_progress() -> None:
    vad = EnergyVad(RATE)
    assert vad.feed(np.concatenate([_noise(0.5), _speech_like(1.0)])) == []
    assert vad.in_speech
    (utterance,) = vad.flush()
    assert utterance.duration_s == pytest.approx(1.2, abs=0.1)
    assert not vad.in_speech


def test_works_at_other_rates() -> None:
    t = np.arange(44100) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    signal = np.concatenate([np.zeros(44100, np.float32), tone, np.zeros(44100, np.float32)])
    (utterance,) = _run(EnergyVad(44100), signal, chunk=4410)
    assert utterance.sample_rate == 44100
    assert utterance.start_s == pytest.approx(0.8, abs=0.1)


@pytest.mark.parametrize('values', [{'hangover_ms': 10}, {'threshold_db': 0.5}, {'frame': 20}])
def test_bad_settings_are_config_errors(values: dict[str, object]) -> None:
    with pytest.raises(VoiceConfigError):
        VadConfig.from_mapping(values)
