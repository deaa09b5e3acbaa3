"""Recogniser construction: configuration errors are clear, before anything is decoded."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from grounding_agent.voice.errors import RecognizerError, VoiceConfigError
from grounding_agent.voice.grammar import CommandGrammar
from grounding_agent.voice.listener import CommandListener, VoiceConfig, build_recognizer
from grounding_agent.voice.recognizer import (
    FasterWhisperRecognizer,
    PocketsphinxRecognizer,
    _softmax_hypotheses,
)

HAVE_FASTER_WHISPER = importlib.util.find_spec('faster_whisper') is not None


@pytest.mark.parametrize(
    ('model_dir', 'message'),
    [
        ('', 'needs whisper_model_dir'),
        ('does/not/exist', 'does not exist'),
    ],
)
def test_whisper_needs_an_existing_model_directory(model_dir: str, message: str) -> None:
    with pytest.raises(VoiceConfigError, match=message):
        FasterWhisperRecognizer(model_dir)


def test_whisper_directory_must_hold_a_model(tmp_path: Path) -> None:
    with pytest.raises(VoiceConfigError, match=r'no model\.bin'):
        FasterWhisperRecognizer(tmp_path)


@pytest.mark.skipif(HAVE_FASTER_WHISPER, reason='faster-whisper is installed here')
def test_whisper_without_the_package_says_how_to_install_it(tmp_path: Path) -> None:
    (tmp_path / 'model.bin').write_bytes(b'\x00')
    with pytest.raises(RecognizerError, match='pip install faster-whisper'):
        FasterWhisperRecognizer(tmp_path)


def test_whisper_is_built_from_the_voice_config(tmp_path: Path) -> None:
    config = VoiceConfig(recognizer='faster_whisper', whisper_model_dir=str(tmp_path / 'none'))
    with pytest.raises(VoiceConfigError, match='does not exist'):
        build_recognizer(config)


@pytest.mark.parametrize(
    ('options', 'message'),
    [
        ({'dither': -1.0}, 'dither'),
        ({'score_scale': 0.0}, 'score_scale'),
        ({'nbest': 0}, 'nbest'),
        ({'speed_views': (1.0,)}, 'speed views'),
        ({'speed_views': (0.5,)}, 'speed views'),
    ],
)
def test_pocketsphinx_options_are_checked(
    grammar: CommandGrammar, options: dict[str, float], message: str
) -> None:
    with pytest.raises(VoiceConfigError, match=message):
        PocketsphinxRecognizer(grammar, **options)  # type: ignore[arg-type]


def test_pocketsphinx_with_a_missing_model_is_a_recognizer_error(grammar: CommandGrammar) -> None:
    with pytest.raises(RecognizerError):
        PocketsphinxRecognizer(grammar, model_dir='/nonexistent/acoustic/model')


@pytest.mark.parametrize('samples', [0, 100, 16000])
def test_silence_is_not_a_command(recognizer: PocketsphinxRecognizer, samples: int) -> None:
    listener = CommandListener(VoiceConfig(), recognizer=recognizer)
    heard = listener.hear(np.zeros(samples, np.float32), 16000)
    assert not heard.accepted
    assert heard.reason
    assert heard.audio_s == pytest.approx(samples / 16000)


@pytest.mark.parametrize(
    ('scores', 'best', 'expected'),
    [
        ({'a': 0.0}, 'a', [('a', 1.0)]),
        ({'a': 0.0, 'b': -50.0 * np.log(3.0)}, 'a', [('a', 0.75), ('b', 0.25)]),
        # The Viterbi best is listed first even when the lattice scores it lower.
        (
            {'a': -10.0, 'b': 0.0},
            'a',
            [('a', 1 / (1 + np.exp(0.2))), ('b', 1 - 1 / (1 + np.exp(0.2)))],
        ),
        ({'b': 0.0}, 'a', [('a', 0.5), ('b', 0.5)]),
    ],
)
def test_posterior_shares(
    scores: dict[str, float], best: str, expected: list[tuple[str, float]]
) -> None:
    shares = _softmax_hypotheses(dict(scores), best, 50.0)
    assert [h.text for h in shares] == [t for t, _ in expected]
    assert [h.posterior for h in shares] == pytest.approx([p for _, p in expected])


def test_free_form_decoding_loads_the_language_model(grammar: CommandGrammar) -> None:
    recognizer = PocketsphinxRecognizer(grammar)
    t = np.arange(8000) / 16000
    tone = (3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    recognition = recognizer.recognize_free_form(tone)
    assert recognition.engine == 'pocketsphinx-free-form'
    assert recognition.grammar is None
    # The grammar search is still there afterwards.
    assert recognizer.recognize(tone).grammar is grammar


def test_missing_language_model_is_a_recognizer_error(grammar: CommandGrammar) -> None:
    recognizer = PocketsphinxRecognizer(grammar, language_model='/nonexistent/en.lm.bin')
    with pytest.raises(RecognizerError, match='cannot load the language model'):
        recognizer.recognize_free_form(np.zeros(8000, np.int16))


@pytest.mark.voice
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is not installed')
def test_speed_views_re_rank_the_first_decodes_sentences(
    recognizer: PocketsphinxRecognizer, grammar: CommandGrammar, tmp_path: Path
) -> None:
    from grounding_agent.voice.audio import RECOGNIZER_RATE, read_wav, resample, to_int16
    from grounding_agent.voice.synthetic import synthesize

    samples, rate = read_wav(synthesize('grab the bottle next to the plate', tmp_path / 'a.wav'))
    pcm = to_int16(resample(samples, rate, RECOGNIZER_RATE))
    recognition = recognizer.recognize(pcm)
    assert recognition.text
    assert len(recognition.views) == len(recognizer.speed_views) == 2
    sentences = {h.text for h in recognition.hypotheses}
    for view in recognition.views:
        assert {h.text for h in view} <= sentences
        assert sum(h.posterior for h in view) == pytest.approx(1.0)
    # The command grammar is searched again for the next utterance: same audio, same result.
    again = recognizer.recognize(pcm)
    assert (again.text, again.hypotheses, again.views) == (
        recognition.text,
        recognition.hypotheses,
        recognition.views,
    )
    plain = PocketsphinxRecognizer(grammar, speed_views=()).recognize(pcm)
    assert plain.views == ()
    assert plain.hypotheses == recognition.hypotheses
