"""The word tables (core/vocabulary.py): every phrase in them means what the table says.

Each table is walked in full through the parser, so a phrase added to a table that the parser
cannot read (or reads as something else) fails here, not on the robot.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grounding_agent.core import vocabulary as vocab
from grounding_agent.core.errors import CommandError
from grounding_agent.core.parser import parse_command, tokenize_command
from grounding_agent.core.types import OrdinalOrder, QueryKind, Relation

_WORD_RE = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")


@pytest.mark.parametrize('colour', [*vocab.COLOURS, *vocab.COLOUR_SYNONYMS])
def test_colour(colour: str) -> None:
    target = parse_command(f'find the {colour} cube').target
    expected = vocab.COLOUR_SYNONYMS.get(colour, colour)
    assert (target.colour, target.noun, target.phrase) == (expected, 'cube', f'{colour} cube')
    assert expected in vocab.COLOURS


@pytest.mark.parametrize('size', list(vocab.SIZE_SYNONYMS))
def test_size(size: str) -> None:
    target = parse_command(f'find the {size} red cube').target
    assert (target.size, target.colour, target.noun) == (vocab.SIZE_SYNONYMS[size], 'red', 'cube')
    assert target.size in vocab.SIZES


@pytest.mark.parametrize('noun', list(vocab.SHAPE_NOUNS))
def test_shape_noun(noun: str) -> None:
    one = parse_command(f'find the {noun}').target
    many = parse_command(f'how many {vocab.plural_noun(noun)} are there').target
    assert (one.noun, one.shape, one.plural) == (noun, vocab.SHAPE_NOUNS[noun], False)
    assert (many.noun, many.shape, many.plural) == (noun, vocab.SHAPE_NOUNS[noun], True)


@pytest.mark.parametrize('verb', [*vocab.VERB_PHRASES, *vocab.ACTION_VERB_PHRASES])
def test_verb(verb: str) -> None:
    query = parse_command(f'{verb} the red cube')
    action = {**vocab.VERB_PHRASES, **vocab.ACTION_VERB_PHRASES}[verb]
    assert query.action == action
    assert query.kind is (QueryKind.TRACK if action == 'track' else QueryKind.LOCATE)
    assert (query.target.noun, query.target.colour) == ('cube', 'red')


@pytest.mark.parametrize('phrase', list(vocab.RELATION_PHRASES))
def test_relation(phrase: str) -> None:
    relation = vocab.RELATION_PHRASES[phrase]
    if relation is Relation.BETWEEN:
        text, anchors = f'the cup {phrase} the plate and the box', ('plate', 'box')
    else:
        text, anchors = f'the cup {phrase} the plate', ('plate',)
    target = parse_command(text).target
    assert target.noun == 'cup'
    assert [(c.relation, tuple(a.noun for a in c.anchors)) for c in target.relations] == [
        (relation, anchors)
    ]


@pytest.mark.parametrize('phrase', list(vocab.RELATION_PHRASES))
def test_relation_in_question(phrase: str) -> None:
    relation = vocab.RELATION_PHRASES[phrase]
    tail = ' and the box' if relation is Relation.BETWEEN else ''
    query = parse_command(f'is the cup {phrase} the plate{tail}?')
    assert query.kind is QueryKind.VERIFY_RELATION
    assert query.question_relation is not None
    assert query.question_relation.relation is relation


@pytest.mark.parametrize('word', list(vocab.ORDINAL_WORDS))
def test_ordinal(word: str) -> None:
    ordinal = parse_command(f'the {word} cup').target.ordinal
    assert ordinal is not None
    assert (ordinal.index, ordinal.order) == (vocab.ORDINAL_WORDS[word], OrdinalOrder.ORDER)


@pytest.mark.parametrize('word', list(vocab.SUPERLATIVES))
def test_superlative(word: str) -> None:
    target = parse_command(f'the {word} cup').target
    assert target.ordinal is not None
    assert (target.noun, target.ordinal.index, target.ordinal.order) == (
        'cup',
        1,
        vocab.SUPERLATIVES[word],
    )


@pytest.mark.parametrize('word', list(vocab.COMPARATIVES))
def test_comparative(word: str) -> None:
    query = parse_command(f'which cup is {word}?')
    assert query.kind is QueryKind.WHICH
    assert query.target.ordinal is not None
    assert query.target.ordinal.order is vocab.COMPARATIVES[word]


@pytest.mark.parametrize('phrase', list(vocab.POSITION_PHRASES))
def test_position(phrase: str) -> None:
    order, counted_from = vocab.POSITION_PHRASES[phrase]
    ordinal = parse_command(f'the last cup {phrase}').target.ordinal
    assert ordinal is not None
    # Counted from a side, the last one is at the other end; at a side, it is that end.
    assert (ordinal.index, ordinal.order) == ((-1 if counted_from else 1), order)


@pytest.mark.parametrize('camera', vocab.CAMERA_REFERENCES)
@pytest.mark.parametrize(
    ('relation', 'order'),
    [('closest to', OrdinalOrder.NEAREST), ('farthest from', OrdinalOrder.FARTHEST)],
)
def test_camera_reference(camera: str, relation: str, order: OrdinalOrder) -> None:
    target = parse_command(f'the cup {relation} {camera}').target
    if camera in vocab.PERSON_WORDS:
        # 'me', 'you', 'us' are people: the resolver places them (ResolverConfig.viewpoint).
        assert [(r.relation.value, r.anchors[0].noun) for r in target.relations] == [
            (vocab.RELATION_PHRASES[relation].value, camera)
        ]
        assert target.ordinal is None
        return
    assert target.relations == ()
    assert target.ordinal is not None
    assert (target.ordinal.index, target.ordinal.order) == (1, order)


@pytest.mark.parametrize('word', list(vocab.NUMBER_WORDS))
def test_number(word: str) -> None:
    tokens = tokenize_command(f'find {word} red cubes')
    assert (tokens[1].kind, tokens[1].value) == ('NUMBER', vocab.NUMBER_WORDS[word])


@pytest.mark.parametrize('phrase', list(vocab.QUESTION_PHRASES))
def test_question_opener(phrase: str) -> None:
    kind = vocab.QUESTION_PHRASES[phrase]
    rest = {
        QueryKind.COUNT: 'red cubes',
        QueryKind.EXISTS: 'a red cube',
        QueryKind.WHAT: 'is left of the red cube',
        QueryKind.WHICH: 'red cubes is biggest',
    }[kind]
    assert parse_command(f'{phrase} {rest}?').kind is kind


@pytest.mark.parametrize('det', vocab.DETERMINERS)
def test_determiner(det: str) -> None:
    target = parse_command(f'find {det} red cube').target
    assert (target.noun, target.phrase) == ('cube', 'red cube')


@pytest.mark.parametrize('word', vocab.PARTICIPLES)
def test_participle(word: str) -> None:
    target = parse_command(f'the cup {word} on the table').target
    assert [c.relation for c in target.relations] == [Relation.ON]


@pytest.mark.parametrize('word', vocab.DESCRIPTIVE_WORDS)
def test_descriptive_word(word: str) -> None:
    target = parse_command(f'the cup {word} the red sticker').target
    if word.startswith('outside'):
        # 'outside the sticker' is read as not inside it (vocab.REWRITES).
        assert [(r.relation, r.negated) for r in target.relations] == [(Relation.INSIDE, True)]
        return
    assert (target.noun, target.colour, target.relations) == ('cup', None, ())
    if word == 'without':
        # A part the object must not have: the resolver rules it out, the detector looks for
        # the cup.
        assert (target.phrase, target.without) == ('cup', ('sticker',))
        return
    assert target.phrase == f'cup {word} the red sticker'


@pytest.mark.parametrize('phrase', vocab.ATTRIBUTE_PHRASES)
def test_attribute_phrase(phrase: str) -> None:
    target = parse_command(f'the blue cup {phrase}').target
    assert (target.noun, target.colour, target.relations) == ('cup', 'blue', ())
    assert target.phrase == f'blue cup {phrase}'


@pytest.mark.parametrize('clothing', sorted(vocab.CLOTHING_NOUNS))
def test_clothing_is_description(clothing: str) -> None:
    target = parse_command(f'the person in the red {clothing}').target
    assert (target.noun, target.colour, target.relations) == ('person', None, ())
    assert target.phrase == f'person in the red {clothing}'


@pytest.mark.parametrize('word', vocab.GENERIC_NOUNS)
def test_generic_noun(word: str) -> None:
    target = parse_command(f'find the red {word}').target
    assert (target.noun, target.colour) == (None, 'red')
    assert target.phrase == f'red {vocab.GENERIC_PHRASE}'


@pytest.mark.parametrize('word', vocab.NEGATIONS)
def test_negation(word: str) -> None:
    target = parse_command(f'the cup that is {word} red').target
    assert (target.noun, target.colour) == ('cup', None)
    assert f'{word} red' in target.modifiers


@pytest.mark.parametrize('filler', vocab.FILLER_PHRASES)
def test_filler_is_ignored(filler: str) -> None:
    query = parse_command(f'find the red cube {filler}')
    assert (query.action, query.target.phrase, query.target.relations) == ('find', 'red cube', ())


@pytest.mark.parametrize('filler', vocab.LEADING_FILLERS)
def test_leading_filler_is_ignored(filler: str) -> None:
    query = parse_command(f'{filler} find the red cube')
    assert (query.action, query.target.phrase) == ('find', 'red cube')


@pytest.mark.parametrize('contraction', list(vocab.CONTRACTIONS))
def test_contraction_is_expanded(contraction: str) -> None:
    words = {t.text for t in tokenize_command(f'{contraction} the red cube')}
    assert contraction not in words


@pytest.mark.parametrize('plural', list(vocab.IRREGULAR_PLURALS))
def test_irregular_plural(plural: str) -> None:
    target = parse_command(f'find the {plural}').target
    assert (target.noun, target.plural) == (vocab.IRREGULAR_PLURALS[plural], True)


@pytest.mark.parametrize('noun', sorted(vocab.SINGULAR_NOUNS_IN_S))
def test_singular_noun_ending_in_s(noun: str) -> None:
    target = parse_command(f'find the {noun}').target
    assert (target.noun, target.plural) == (noun, False)


@pytest.mark.parametrize('word', sorted(vocab.NOT_NOUNS))
def test_not_a_noun(word: str) -> None:
    with pytest.raises(CommandError):
        parse_command(f'find {word}')


def test_colour_noun() -> None:
    for word in vocab.COLOUR_NOUNS:
        assert word in vocab.COLOURS or word in vocab.COLOUR_NAMES
        target = parse_command(f'pick up the {word}').target
        assert (target.noun, target.colour) == (word, None)


def test_every_phrase_is_normalised_text() -> None:
    """Lower case words the tokenizer can produce, single spaces: otherwise it never matches."""
    for category, phrases in vocab.vocabulary_words().items():
        assert phrases, category
        for phrase in phrases:
            assert ' '.join(_WORD_RE.findall(phrase)) == phrase, (category, phrase)
            assert phrase == phrase.lower(), (category, phrase)


def test_vocabulary_words_lists_each_table_once() -> None:
    words = vocab.vocabulary_words()
    assert words['colours'][: len(vocab.COLOURS)] == list(vocab.COLOURS)
    assert set(words['relations']) == set(vocab.RELATION_PHRASES)
    assert set(words['verbs']) == set(vocab.VERB_PHRASES)
    for phrases in words.values():
        assert len(phrases) == len(set(phrases))


def test_original_tables_are_kept() -> None:
    """Other modules read these entries: extending the tables must never drop one."""
    assert vocab.COLOURS == (
        'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'black', 'white',
        'gray',
    )  # fmt: skip
    assert vocab.SIZES == ('small', 'large')
    assert {'box', 'ball', 'cup', 'mug', 'bottle', 'cone', 'pyramid'} <= set(vocab.SHAPE_NOUNS)
    assert {'find', 'keep track of', "where's", 'bring me', 'face'} <= set(vocab.VERB_PHRASES)
    assert {'on top of', 'inside of', 'nearest', 'between'} <= set(vocab.RELATION_PHRASES)
    assert {'first', '6th', 'last'} <= set(vocab.ORDINAL_WORDS)
    assert {'leftmost', 'tiniest'} <= set(vocab.SUPERLATIVES)
    assert {'zero', 'ten'} <= set(vocab.NUMBER_WORDS)


@pytest.mark.parametrize(
    ('singular', 'plural'),
    [
        ('box', 'boxes'), ('cup', 'cups'), ('glass', 'glasses'), ('battery', 'batteries'),
        ('knife', 'knives'), ('bus', 'buses'), ('person', 'people'), ('lens', 'lenses'),
        ('virus', 'viruses'), ('hoodie', 'hoodies'), ('cactus', 'cacti'), ('mouse', 'mice'),
        ('coffee mug', 'coffee mugs'), ('red knife', 'red knives'),
        ('cup with a lid', 'cups with a lid'), ('person in red', 'people in red'),
        ('scissors', 'scissors'),
    ],
)  # fmt: skip
def test_singular_and_plural_are_inverse(singular: str, plural: str) -> None:
    assert vocab.plural_noun(singular) == plural
    assert vocab.singular_noun(plural) == singular
    assert vocab.plural_noun(plural) == plural  # a plural stays plural
    assert vocab.singular_noun(singular) == singular  # 'bus' is not 'bu'


@pytest.mark.parametrize(
    ('count', 'name', 'text'),
    [(0, 'knife', '0 knives'), (1, 'buses', '1 bus'), (2, 'bus', '2 buses'),
     (1, 'red cubes', '1 red cube'), (3, 'glass', '3 glasses'), (1, 'people', '1 person')],
)  # fmt: skip
def test_counted(count: int, name: str, text: str) -> None:
    assert vocab.counted(count, name) == text


@pytest.mark.parametrize('noun', sorted(vocab.SINGULAR_NOUNS_IN_S | set(vocab.SHAPE_NOUNS)))
def test_singular_nouns_are_not_plural(noun: str) -> None:
    assert not vocab.is_plural(noun)


@pytest.mark.parametrize('plural', list(vocab.IRREGULAR_PLURALS))
def test_irregular_plural_table_is_the_inflection(plural: str) -> None:
    assert vocab.singular_noun(plural) == vocab.IRREGULAR_PLURALS[plural]
    assert vocab.is_plural(plural)


def test_generic_phrase_matches_any_object() -> None:
    assert vocab.GENERIC_PHRASE in vocab.ANY_OBJECT_NOUNS
    assert {'thing', 'item', 'one', 'something'} <= vocab.ANY_OBJECT_NOUNS


def test_words_are_owned_by_the_vocabulary_alone() -> None:
    """No second singular/plural routine or generic-noun table grows back elsewhere."""
    package = Path(vocab.__file__).parents[1]
    owner = Path(vocab.__file__)
    pattern = re.compile(
        r'^(def \w*(plural|singular)\w*\(|(GENERIC_\w+|\w*GENERIC_HEADS) = )', re.MULTILINE
    )
    found = [
        f'{path.relative_to(package)}: {match.group(0)}'
        for path in sorted(package.rglob('*.py'))
        if path != owner
        for match in pattern.finditer(path.read_text(encoding='utf-8'))
    ]
    assert found == []
