"""The speech grammar is generated from the parser's tables, and everything it says parses."""

from __future__ import annotations

import random
import re

import pytest

from grounding_agent.core import vocabulary
from grounding_agent.core.control import is_stop_command
from grounding_agent.core.parser import parse_command
from grounding_agent.core.types import QueryKind
from grounding_agent.core.vocabulary import STOP_PHRASES, STOP_WITH_OBJECT, plural_noun
from grounding_agent.voice.dictionary import PronunciationDictionary
from grounding_agent.voice.errors import VoiceConfigError
from grounding_agent.voice.grammar import (
    DEFAULT_OBJECTS,
    CommandGrammar,
    build_command_grammar,
    normalize_text,
)
from grounding_agent.voice.listener import command_meaning
from grounding_agent.voice.synthetic import SPOKEN_COMMANDS

_RULE = re.compile(r'^(public )?<([a-z_]+)> = (.+);$')


def _spoken(phrase: str) -> str:
    return normalize_text(phrase.replace('-', ''))


def test_jsgf_is_well_formed(grammar: CommandGrammar) -> None:
    lines = grammar.to_jsgf().splitlines()
    assert lines[:2] == ['#JSGF V1.0;', f'grammar {grammar.name};']
    rules = [_RULE.match(line) for line in lines[3:]]
    assert all(rules), [line for line, m in zip(lines[3:], rules) if m is None]
    defined = {m.group(2) for m in rules if m}
    public = [m.group(2) for m in rules if m and m.group(1)]
    assert public == [grammar.public_rule]
    referenced = set(re.findall(r'<([a-z_]+)>', ' '.join(m.group(3) for m in rules if m)))
    assert referenced <= defined
    for body in (m.group(3) for m in rules if m):
        assert body.count('(') == body.count(')')
        assert body.count('[') == body.count(']')


def test_pocketsphinx_accepts_the_grammar(grammar: CommandGrammar) -> None:
    from pocketsphinx import Decoder

    decoder = Decoder(lm=None, loglevel='FATAL')
    for word, phones in grammar.pronunciations.items():
        decoder.add_word(word, phones, True)
    decoder.add_jsgf_string('commands', grammar.to_jsgf())
    decoder.activate_search('commands')
    assert decoder.current_search() == 'commands'


@pytest.mark.parametrize(
    'table',
    ['verbs', 'colours', 'sizes', 'relations', 'ordinals', 'superlatives', 'comparatives'],
)
def test_every_sayable_vocabulary_phrase_is_in_the_grammar(
    grammar: CommandGrammar, table: str
) -> None:
    text = grammar.to_jsgf()
    for phrase in vocabulary.vocabulary_words()[table]:
        spoken = _spoken(phrase)
        if spoken in grammar.dropped:
            continue
        assert re.search(rf'(?<![a-z\']){re.escape(spoken)}(?![a-z\'])', text), phrase


def test_dropped_phrases_say_why(
    grammar: CommandGrammar, dictionary: PronunciationDictionary
) -> None:
    assert grammar.dropped['1st'] == 'not in the pronunciation dictionary'
    assert grammar.dropped['grey'] == 'sounds like "gray"'
    for phrase, reason in grammar.dropped.items():
        if reason == 'not in the pronunciation dictionary':
            assert any(
                w not in dictionary and dictionary.derive(w) is None for w in phrase.split()
            )


def test_compound_words_get_pronunciations(grammar: CommandGrammar) -> None:
    assert grammar.pronunciations['leftmost'] == 'L EH F T M OW S T'
    assert 'leftmost' in grammar.phrases('superlative')


def test_number_words_only_for_several_objects(grammar: CommandGrammar) -> None:
    numbers = set(grammar.phrases('number'))
    assert {'two', 'ten', 'a couple of'} <= numbers
    assert not numbers & {'zero', 'one'}


def test_default_objects_are_shapes_and_household_objects(grammar: CommandGrammar) -> None:
    objects = set(grammar.phrases('object'))
    assert set(DEFAULT_OBJECTS) | set(vocabulary.SHAPE_NOUNS) == objects


def test_configured_objects_replace_the_default(dictionary: PronunciationDictionary) -> None:
    grammar = build_command_grammar(
        objects=['screwdriver', 'Coffee Mug', 'xqzt'], dictionary=dictionary
    )
    assert grammar.phrases('object') == ('screwdriver', 'coffee mug')
    assert grammar.phrases('objects') == ('screwdrivers', 'coffee mugs')
    assert grammar.dropped['xqzt'] == 'not in the pronunciation dictionary'
    assert grammar.matches('pick up the coffee mug left of the screwdriver')


@pytest.mark.parametrize(
    ('objects', 'wake_word', 'message'),
    [
        (['xqzt'], '', 'no object'),
        ([], 'zzyzx', 'wake word'),
        (['  ', ''], '', 'at least one object'),
    ],
)
def test_unusable_configuration_is_a_clear_error(
    dictionary: PronunciationDictionary, objects: list[str], wake_word: str, message: str
) -> None:
    with pytest.raises(VoiceConfigError, match=message):
        build_command_grammar(objects=objects, wake_word=wake_word, dictionary=dictionary)


@pytest.mark.parametrize(
    ('noun', 'plural'),
    [
        ('box', 'boxes'),
        ('cup', 'cups'),
        ('person', 'people'),
        ('battery', 'batteries'),
        ('knife', 'knives'),
        ('coffee mug', 'coffee mugs'),
        ('glass', 'glasses'),
        ('bus', 'buses'),
    ],
)
def test_plural_noun(noun: str, plural: str) -> None:
    assert plural_noun(noun) == plural


@pytest.mark.parametrize(
    ('text', 'complete'),
    [
        ('pick up the red mug', True),
        ('Pick up the red mug!', True),
        ('pick up the red', False),
        ('pick up the red mug left of', False),
        ('how many boxes are there', True),
        ('how many box are there', False),
        ('is there an orange cup', True),
        ('is there a orange cup', False),
        ('find the cup between the laptop and the plate', True),
        ('', False),
    ],
)
def test_matches_only_complete_sentences(
    grammar: CommandGrammar, text: str, complete: bool
) -> None:
    assert grammar.matches(text) is complete


def test_spoken_test_commands_are_grammar_sentences(grammar: CommandGrammar) -> None:
    assert len(SPOKEN_COMMANDS) >= 30
    assert [c for c in SPOKEN_COMMANDS if not grammar.matches(c)] == []


def test_wake_word_is_optional_in_the_grammar(dictionary: PronunciationDictionary) -> None:
    grammar = build_command_grammar(dictionary=dictionary, wake_word='Robot')
    assert grammar.matches('robot find the cup')
    assert grammar.matches('find the cup')
    jsgf = grammar.to_jsgf().splitlines()
    assert 'public <heard> = <utterance> | [<wake>] <reply>;' in jsgf
    assert '<utterance> = [<wake>] <command>;' in jsgf


def test_every_sampled_sentence_parses_with_the_words_said(grammar: CommandGrammar) -> None:
    rng = random.Random(20240611)
    kinds: set[QueryKind] = set()
    stops = 0
    for _ in range(400):
        sample = grammar.sample(rng)
        assert grammar.matches(sample.text), sample.text
        if sample.text in STOP_PHRASES or sample.text.startswith(STOP_WITH_OBJECT):
            # Control commands are read before the parser (core/control.py).
            assert is_stop_command(sample.text), sample.text
            assert command_meaning(sample.text) == 'stop'
            stops += 1
            continue
        assert not is_stop_command(sample.text), sample.text
        query = parse_command(sample.text)
        kinds.add(query.kind)
        target = query.target
        verb = sample.first('verb')
        if verb is not None:
            assert query.action == vocabulary.VERB_PHRASES[verb], sample.text
        action = sample.first('action')
        if action is not None:
            assert query.action == vocabulary.ACTION_VERB_PHRASES[action], sample.text
        direction = sample.first('direction')
        if direction is not None:
            assert query.direction == vocabulary.DIRECTION_PHRASES[direction], sample.text
        colour = sample.first('colour', outside='anchor')
        if colour is not None:
            canonical = vocabulary.COLOUR_SYNONYMS.get(colour, colour)
            assert target.colour == canonical, sample.text
        size = sample.first('size', outside='anchor')
        if size is not None:
            assert target.size == vocabulary.SIZE_SYNONYMS[size], sample.text
        noun = sample.first('object', outside='anchor') or sample.first(
            'objects', outside='anchor'
        )
        if noun is not None:
            assert target.noun == noun or plural_noun(target.noun or '') == noun, sample.text
        ordinal = sample.first('ordinal')
        if ordinal is not None:
            assert target.ordinal is not None, sample.text
            assert target.ordinal.index == vocabulary.ORDINAL_WORDS[ordinal], sample.text
        relation = sample.first('relation')
        if relation is not None:
            expected = vocabulary.RELATION_PHRASES[relation]
            found = [c.relation for c in target.relations]
            if query.question_relation is not None:
                found.append(query.question_relation.relation)
            if query.destination is not None:  # 'put the cube in the bowl'
                found.append(query.destination.relation)
            assert expected in found, sample.text
    assert kinds == set(QueryKind)
    assert stops > 0


@pytest.mark.parametrize(
    'sentence',
    [
        'push the red block to the left',
        'push left the red block',
        'slide the blue cube to the right',
        'lift the green ball up',
        'put the red cube on the purple plate',
    ],
)
def test_manipulation_commands_can_be_heard(grammar: CommandGrammar, sentence: str) -> None:
    """Issue 11, item 7: the verbs, directions and destinations of the parser are sayable."""
    assert grammar.matches(sentence)
    query = parse_command(sentence)
    assert query.action in vocabulary.ACTION_VERB_PHRASES.values()
    assert query.direction is not None or query.destination is not None
