"""Whisper through transformers: snapping its transcripts to the command grammar, and the
whole path (save_pretrained -> from_pretrained -> decode -> judge) on a tiny random model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_whisper import build_tiny_whisper

from grounding_agent.voice.errors import RecognizerError, VoiceConfigError
from grounding_agent.voice.grammar import CommandGrammar
from grounding_agent.voice.listener import CommandListener, VoiceConfig
from grounding_agent.voice.recognizer import (
    Hypothesis,
    PocketsphinxRecognizer,
    Recognition,
    WhisperRecognizer,
)
from grounding_agent.voice.snap import MAX_SNAP_WORDS, snap_to_grammar


@pytest.mark.parametrize(
    ('heard', 'sentence', 'edits'),
    [
        ('pick up the red mug', 'pick up the red mug', 0),
        ('Pick up the red mug.', 'pick up the red mug', 0),
        ('please pick up the red mug', 'pick up the red mug', 1),
        ('pick up a red mug', 'pick up the red mug', 1),
        ('find the cup on the table please', 'find the cup on the table', 1),
        ('stop', 'stop', 0),
    ],
)
def test_snap_finds_the_nearest_sentence(
    grammar: CommandGrammar, heard: str, sentence: str, edits: int
) -> None:
    snap = snap_to_grammar(grammar, heard)
    assert snap is not None
    assert (snap.sentence, snap.edits) == (sentence, edits)
    assert grammar.matches(snap.sentence)


def test_snap_refuses_empty_and_overlong_transcripts(grammar: CommandGrammar) -> None:
    assert snap_to_grammar(grammar, ' ,. ') is None
    assert snap_to_grammar(grammar, ' '.join(['cup'] * (MAX_SNAP_WORDS + 1))) is None


def test_snapped_sentence_is_never_farther_than_a_sampled_one(grammar: CommandGrammar) -> None:
    import random

    rng = random.Random(3)
    samples = [grammar.sample(rng).text for _ in range(30)]
    for heard in ('bring me the small blue ball next to the plate', 'how many cups are here'):
        snap = snap_to_grammar(grammar, heard)
        assert snap is not None
        for sample in samples:
            assert snap.edits <= _word_edits(heard.split(), sample.split())


def _word_edits(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, word in enumerate(a, start=1):
        previous, row = row, [i] + [0] * len(b)
        for j, other in enumerate(b, start=1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (word != other))
    return row[-1]


def _transcript(text: str, confidence: float = 0.97) -> Recognition:
    return Recognition(text, (Hypothesis(text, confidence),), engine='whisper', snap=True)


@pytest.fixture
def listener(recognizer: PocketsphinxRecognizer) -> CommandListener:
    # The judge never calls the recogniser: any recogniser will do.
    return CommandListener(VoiceConfig(), recognizer=recognizer)


@pytest.mark.parametrize(
    ('heard', 'command'),
    [
        ('Pick up the red mug.', 'pick up the red mug'),
        ('please pick up the red mug', 'pick up the red mug'),
        ('find the cup on the table please', 'find the cup on the table'),
    ],
)
def test_transcript_close_to_a_command_with_its_meaning_is_sent(
    listener: CommandListener, heard: str, command: str
) -> None:
    result = listener.judge(_transcript(heard))
    assert result.accepted, result.reason
    assert result.command == command
    assert result.prompt == f'OK: {command}.'


def test_transcript_whose_correction_changes_the_meaning_is_asked_back(
    listener: CommandListener,
) -> None:
    result = listener.judge(_transcript('pick up the rad mug'))
    assert not result.accepted
    assert 'asking back' in result.reason
    assert result.alternative
    assert listener.snap_grammar.matches(result.alternative)
    assert result.prompt == f'Did you say {result.alternative}? Say yes, or say the command again.'
    assert result.asks == result.alternative
    confirmed = listener.judge(_transcript('Yes.'))
    assert confirmed.accepted
    assert confirmed.command == result.alternative


@pytest.mark.parametrize(
    'heard', ['the weather is nice today is it not', 'thanks', 'ok', 'hello hello hello hello']
)
def test_talk_far_from_every_command_is_refused_silently(
    listener: CommandListener, heard: str
) -> None:
    result = listener.judge(_transcript(heard))
    assert not result.accepted
    assert result.reason.startswith('not a command')
    assert result.prompt == ''


def test_unsure_transcript_is_refused_for_confidence(listener: CommandListener) -> None:
    result = listener.judge(_transcript('pick up the red mug', confidence=0.5))
    assert not result.accepted
    assert result.reason.startswith('low confidence 0.50')


@pytest.fixture(scope='module')
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp('whisper'))


def test_tiny_random_whisper_end_to_end(tiny_whisper: Path) -> None:
    config = VoiceConfig(recognizer='whisper', whisper_model_dir=str(tiny_whisper))
    listener = CommandListener(config)
    assert isinstance(listener.recognizer, WhisperRecognizer)
    listener.recognizer.max_new_tokens = 12
    audio = np.random.default_rng(1).normal(0.0, 0.1, 32_000).astype(np.float32)
    heard = listener.hear(audio, 16_000)
    # Random weights write random command words: the path runs, and the garbage is refused.
    assert heard.engine == 'whisper'
    assert heard.text
    assert not heard.accepted
    assert heard.reason.startswith('not a command')
    assert heard.decode_s > 0.0
    # Too short to hold a word: nothing is decoded.
    assert listener.recognizer.recognize(np.zeros(100, dtype=np.int16)).text == ''


def test_whisper_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(VoiceConfigError, match='whisper_model'):
        WhisperRecognizer('')
    with pytest.raises(RecognizerError, match='does not exist'):
        WhisperRecognizer(str(tmp_path / 'missing' / 'model'))
    (tmp_path / 'pytorch_model.bin').write_bytes(b'not loaded')
    with pytest.raises(RecognizerError, match='only pickle weights'):
        WhisperRecognizer(str(tmp_path))
