"""Fixtures of the voice tests: the recogniser's dictionary and the default command grammar,
built once per session (loading the 135k-word dictionary takes a fraction of a second)."""

from __future__ import annotations

import pytest

from grounding_agent.voice.dictionary import PronunciationDictionary
from grounding_agent.voice.grammar import CommandGrammar, build_command_grammar
from grounding_agent.voice.recognizer import PocketsphinxRecognizer


@pytest.fixture(scope='session')
def dictionary() -> PronunciationDictionary:
    return PronunciationDictionary.load()


@pytest.fixture(scope='session')
def grammar(dictionary: PronunciationDictionary) -> CommandGrammar:
    return build_command_grammar(dictionary=dictionary)


@pytest.fixture(scope='session')
def recognizer(grammar: CommandGrammar) -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(grammar)
