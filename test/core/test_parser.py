"""The command parser (core/parser.py): operator text -> Query, and its errors."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import pytest
from lark import Lark

from grounding_agent.core.errors import CommandError
from grounding_agent.core.parser import (
    MAX_COMMAND_CHARS,
    parse_command,
    query_from_dict,
    query_to_dict,
    tokenize_command,
)
from grounding_agent.core.types import ObjectRef, Query, QueryKind, RelationConstraint


def render(constraints: tuple[RelationConstraint, ...]) -> str:
    """'left_of(laptop)', nested 'next_to(plate left_of(laptop))', 'between(box, cone)'."""
    parts = []
    for constraint in constraints:
        anchors = ', '.join(render_ref(a) for a in constraint.anchors)
        parts.append(f'{constraint.relation.value}({anchors})')
    return ' '.join(parts)


def render_ref(ref: ObjectRef) -> str:
    nested = render(ref.relations)
    return f'{ref.phrase} {nested}' if nested else ref.phrase


def case(
    text: str,
    kind: str,
    action: str,
    phrase: str,
    noun: str | None,
    **expected: Any,
) -> Any:
    return pytest.param(text, kind, action, phrase, noun, expected, id=text)


# (command, kind, action, target phrase, target noun, other expectations). Unless a row says
# otherwise the target has no colour, size, ordinal, relation and no question relation.
COMMANDS = [
    # Verbs and their paraphrases.
    case('find the red mug', 'locate', 'find', 'red mug', 'mug', colour='red', shape='cylinder'),
    case('locate the blue box', 'locate', 'locate', 'blue box', 'box', colour='blue'),
    case('detect the bottle', 'locate', 'find', 'bottle', 'bottle'),
    case('show me the green cone', 'locate', 'find', 'green cone', 'cone', colour='green'),
    case('look for the keys', 'locate', 'find', 'key', 'key', plural=True),
    case('search for a laptop', 'locate', 'find', 'laptop', 'laptop'),
    case('track the red ball', 'track', 'track', 'red ball', 'ball', colour='red'),
    case('follow the red ball', 'track', 'track', 'red ball', 'ball', colour='red'),
    case('keep track of the blue cube', 'track', 'track', 'blue cube', 'cube', colour='blue'),
    case('keep an eye on the dog', 'track', 'track', 'dog', 'dog'),
    case(
        'point to the green bottle', 'locate', 'point_to', 'green bottle', 'bottle', colour='green'
    ),
    case('point at the jar', 'locate', 'point_to', 'jar', 'jar'),
    case('where is the mug', 'locate', 'where', 'mug', 'mug'),
    case("Where's the remote?", 'locate', 'where', 'remote', 'remote'),
    case('where are the cups?', 'locate', 'where', 'cup', 'cup', plural=True),
    case('pick up the orange', 'locate', 'pick_up', 'orange', 'orange'),
    case('pick the cup up', 'locate', 'pick_up', 'cup', 'cup'),
    case(
        'grab the big red ball',
        'locate',
        'grab',
        'big red ball',
        'ball',
        colour='red',
        size='large',
    ),
    case('get the grey cube', 'locate', 'grab', 'grey cube', 'cube', colour='gray'),
    case('fetch the tin', 'locate', 'grab', 'tin', 'tin'),
    case('bring me the yellow cup', 'locate', 'grab', 'yellow cup', 'cup', colour='yellow'),
    case('give me the tiny jar', 'locate', 'grab', 'tiny jar', 'jar', size='small'),
    case('go to the red cube', 'locate', 'go_to', 'red cube', 'cube', colour='red'),
    case('navigate to the door', 'locate', 'go_to', 'door', 'door'),
    case('move to the chair', 'locate', 'go_to', 'chair', 'chair'),
    case('look at the person', 'locate', 'look_at', 'person', 'person'),
    case('face the window', 'locate', 'look_at', 'window', 'window'),
    # Politeness and fillers.
    case(
        'Please find the small red mug.',
        'locate',
        'find',
        'small red mug',
        'mug',
        colour='red',
        size='small',
    ),
    case(
        'Hey robot, can you pick up the chipped red mug for me please?',
        'locate',
        'pick_up',
        'chipped red mug',
        'mug',
        colour='red',
        modifiers=('chipped',),
    ),
    case('robot, find the cup', 'locate', 'find', 'cup', 'cup'),
    case(
        'Could you please locate the tall bottle? Thanks!',
        'locate',
        'locate',
        'tall bottle',
        'bottle',
        modifiers=('tall',),
    ),
    case(
        'I want you to find the blue ball please',
        'locate',
        'find',
        'blue ball',
        'ball',
        colour='blue',
    ),
    case('please can you find the cup', 'locate', 'find', 'cup', 'cup'),
    case(
        'ok robot, track the person in the red shirt, thanks',
        'track',
        'track',
        'person in the red shirt',
        'person',
    ),
    case('tell me where the red cup is', 'locate', 'where', 'red cup', 'cup', colour='red'),
    case('show me where the mug is', 'locate', 'where', 'mug', 'mug'),
    case('FIND THE RED CUBE!!!', 'locate', 'find', 'red cube', 'cube', colour='red'),
    case('find the cup in the image', 'locate', 'find', 'cup', 'cup'),
    # Bare noun phrases (benchmark descriptions) are locate / find.
    case(
        'the red cube left of the blue ball',
        'locate',
        'find',
        'red cube',
        'cube',
        colour='red',
        rels='left_of(blue ball)',
    ),
    case('people', 'locate', 'find', 'person', 'person', plural=True),
    case(
        'the robot arm on the left',
        'locate',
        'find',
        'robot arm',
        'arm',
        modifiers=('robot',),
        ordinal=(1, 'left'),
    ),
    case('the watch on the table', 'locate', 'find', 'watch', 'watch', rels='on(table)'),
    case('find the shiny gizmo', 'locate', 'find', 'shiny gizmo', 'gizmo', modifiers=('shiny',)),
    case(
        'find the red coffee mug',
        'locate',
        'find',
        'red coffee mug',
        'mug',
        colour='red',
        modifiers=('coffee',),
    ),
    case(
        'The woman wearing a white shirt and holding a black umbrella, standing to the left '
        'of the red car.',
        'locate',
        'find',
        'woman wearing a white shirt and holding a black umbrella',
        'woman',
        rels='left_of(red car)',
    ),
    case(
        'The person wearing a blue jacket standing to the right of the white car.',
        'locate',
        'find',
        'person wearing a blue jacket',
        'person',
        rels='right_of(white car)',
    ),
    case(
        'The second bottle from the left on the top shelf.',
        'locate',
        'find',
        'bottle',
        'bottle',
        ordinal=(2, 'left'),
        rels='on(shelf)',
    ),
    case(
        'A black dog lying on the grass next to a red frisbee.',
        'locate',
        'find',
        'black dog',
        'dog',
        colour='black',
        rels='on(grass next_to(red frisbee))',
    ),
    case('the man riding a bike', 'locate', 'find', 'man riding a bike', 'man'),
    case(
        'The blue car parked on the left side of the street',
        'locate',
        'find',
        'blue car',
        'car',
        colour='blue',
        rels='left_of(street)',
    ),
    # Attributes.
    case('find the grey cube', 'locate', 'find', 'grey cube', 'cube', colour='gray'),
    case('find the violet ball', 'locate', 'find', 'violet ball', 'ball', colour='purple'),
    case('the little box', 'locate', 'find', 'little box', 'box', size='small'),
    case('the huge crate', 'locate', 'find', 'huge crate', 'crate', size='large'),
    case(
        'the light blue mug',
        'locate',
        'find',
        'light blue mug',
        'mug',
        colour='blue',
    ),
    case(
        'the black and white dog',
        'locate',
        'find',
        'black and white dog',
        'dog',
        modifiers=('black and white',),
    ),
    case('the cup that is red', 'locate', 'find', 'red cup', 'cup', colour='red'),
    case(
        'the cup that is not red', 'locate', 'find', 'not red cup', 'cup', modifiers=('not red',)
    ),
    case('the red one', 'locate', 'find', 'red object', None, colour='red'),
    case('the orange', 'locate', 'find', 'orange', 'orange'),
    case('find the glasses', 'locate', 'find', 'glass', 'glass', plural=True),
    case('find the boxes', 'locate', 'find', 'box', 'box', plural=True),
    case('find 3 cups', 'locate', 'find', 'cup', 'cup', plural=True),
    case('one of the red cups', 'locate', 'find', 'red cup', 'cup', colour='red', plural=False),
    # Descriptive phrases stay in the detector text.
    case(
        'track the person in the red shirt',
        'track',
        'track',
        'person in the red shirt',
        'person',
        modifiers=('in the red shirt',),
    ),
    case('the man in black', 'locate', 'find', 'man in black', 'man', modifiers=('in black',)),
    case(
        'the man with a hat', 'locate', 'find', 'man with a hat', 'man', modifiers=('with a hat',)
    ),
    case(
        'the mug with a handle',
        'locate',
        'find',
        'mug with a handle',
        'mug',
        modifiers=('with a handle',),
    ),
    case('the box of cereal', 'locate', 'find', 'box of cereal', 'box', modifiers=('of cereal',)),
    case(
        'the woman wearing a hat next to the door',
        'locate',
        'find',
        'woman wearing a hat',
        'woman',
        rels='next_to(door)',
    ),
    case('the cup in the box', 'locate', 'find', 'cup', 'cup', rels='inside(box)'),
    # Relations, relative clauses, nesting, coordination.
    case(
        'find the red mug left of the laptop',
        'locate',
        'find',
        'red mug',
        'mug',
        colour='red',
        rels='left_of(laptop)',
    ),
    case(
        'the cup to the right of the plate', 'locate', 'find', 'cup', 'cup', rels='right_of(plate)'
    ),
    case('the box above the shelf', 'locate', 'find', 'box', 'box', rels='above(shelf)'),
    case('the cube on top of the box', 'locate', 'find', 'cube', 'cube', rels='on(box)'),
    case('the cup on the table', 'locate', 'find', 'cup', 'cup', rels='on(table)'),
    case('the ball below the shelf', 'locate', 'find', 'ball', 'ball', rels='below(shelf)'),
    case(
        'the large blue box under the table',
        'locate',
        'find',
        'large blue box',
        'box',
        colour='blue',
        size='large',
        rels='under(table)',
    ),
    case(
        'the cup in front of the laptop',
        'locate',
        'find',
        'cup',
        'cup',
        rels='in_front_of(laptop)',
    ),
    case('the cup behind the box', 'locate', 'find', 'cup', 'cup', rels='behind(box)'),
    case('the cup next to the plate', 'locate', 'find', 'cup', 'cup', rels='next_to(plate)'),
    case('the cup beside the plate', 'locate', 'find', 'cup', 'cup', rels='next_to(plate)'),
    case('the cup near the sink', 'locate', 'find', 'cup', 'cup', rels='near(sink)'),
    case(
        'the ball between the box and the cone',
        'locate',
        'find',
        'ball',
        'ball',
        rels='between(box, cone)',
    ),
    case(
        'the ball between the two boxes',
        'locate',
        'find',
        'ball',
        'ball',
        rels='between(box, box)',
    ),
    case('the cup closest to the plate', 'locate', 'find', 'cup', 'cup', rels='closest_to(plate)'),
    case(
        'the bottle nearest the laptop',
        'locate',
        'find',
        'bottle',
        'bottle',
        rels='closest_to(laptop)',
    ),
    case(
        'the ball farthest from the box',
        'locate',
        'find',
        'ball',
        'ball',
        rels='farthest_from(box)',
    ),
    case('the ball inside the bowl', 'locate', 'find', 'ball', 'ball', rels='inside(bowl)'),
    case(
        'the cup that is left of the plate', 'locate', 'find', 'cup', 'cup', rels='left_of(plate)'
    ),
    case('the cup which is on the table', 'locate', 'find', 'cup', 'cup', rels='on(table)'),
    case(
        'the cup located next to the plate', 'locate', 'find', 'cup', 'cup', rels='next_to(plate)'
    ),
    case('the cup sitting on the table', 'locate', 'find', 'cup', 'cup', rels='on(table)'),
    case(
        'the cup next to the plate left of the laptop',
        'locate',
        'find',
        'cup',
        'cup',
        rels='next_to(plate left_of(laptop))',
    ),
    case(
        'the cube left of the ball and behind the cone',
        'locate',
        'find',
        'cube',
        'cube',
        rels='left_of(ball) behind(cone)',
    ),
    case(
        'the cup that is left of the plate and behind the box',
        'locate',
        'find',
        'cup',
        'cup',
        rels='left_of(plate) behind(box)',
    ),
    case(
        'find the red cube left of the blue ball which is on the table',
        'locate',
        'find',
        'red cube',
        'cube',
        colour='red',
        rels='left_of(blue ball on(table))',
    ),
    # Ordinals and superlatives.
    case('the second cup from the left', 'locate', 'find', 'cup', 'cup', ordinal=(2, 'left')),
    case('the leftmost cup', 'locate', 'find', 'cup', 'cup', ordinal=(1, 'left')),
    case('the rightmost box', 'locate', 'find', 'box', 'box', ordinal=(1, 'right')),
    case('the largest box', 'locate', 'find', 'box', 'box', ordinal=(1, 'largest')),
    case('the smallest ball', 'locate', 'find', 'ball', 'ball', ordinal=(1, 'smallest')),
    case('the one nearest the camera', 'locate', 'find', 'object', None, ordinal=(1, 'nearest')),
    case('the cup closest to the camera', 'locate', 'find', 'cup', 'cup', ordinal=(1, 'nearest')),
    case('the cup closest to me', 'locate', 'find', 'cup', 'cup', rels='closest_to(me)'),
    case(
        'the bottle farthest from the camera',
        'locate',
        'find',
        'bottle',
        'bottle',
        ordinal=(1, 'farthest'),
    ),
    case('the nearest cup', 'locate', 'find', 'cup', 'cup', ordinal=(1, 'nearest')),
    case('the last cup on the right', 'locate', 'find', 'cup', 'cup', ordinal=(1, 'right')),
    case('the last cup', 'locate', 'find', 'cup', 'cup', ordinal=(-1, 'order')),
    case('the second cup', 'locate', 'find', 'cup', 'cup', ordinal=(2, 'order')),
    case('the 2nd cup', 'locate', 'find', 'cup', 'cup', ordinal=(2, 'order')),
    case('the 7th cup', 'locate', 'find', 'cup', 'cup', ordinal=(7, 'order')),
    case('the second to last cup', 'locate', 'find', 'cup', 'cup', ordinal=(-2, 'order')),
    case('the third one from the right', 'locate', 'find', 'object', None, ordinal=(3, 'right')),
    case('the second largest ball', 'locate', 'find', 'ball', 'ball', ordinal=(2, 'largest')),
    case(
        'the second of the cups',
        'locate',
        'find',
        'cup',
        'cup',
        ordinal=(2, 'order'),
        plural=False,
    ),
    case('the top shelf', 'locate', 'find', 'shelf', 'shelf', ordinal=(1, 'top')),
    case('the bigger box', 'locate', 'find', 'box', 'box', ordinal=(1, 'largest')),
    case('the mug on the left', 'locate', 'find', 'mug', 'mug', ordinal=(1, 'left')),
    # Questions.
    case(
        'is the cup left of the plate?',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        question='left_of(plate)',
    ),
    case(
        'is the red cube to the left of the blue ball?',
        'verify_relation',
        'ask',
        'red cube',
        'cube',
        colour='red',
        question='left_of(blue ball)',
    ),
    case(
        'is the cup that is on the table left of the plate',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        rels='on(table)',
        question='left_of(plate)',
    ),
    case(
        'is the cup left of the laptop on the desk',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        question='left_of(laptop on(desk))',
    ),
    case(
        'are the cups sitting on the table?',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        plural=True,
        question='on(table)',
    ),
    case(
        'are the cups on the table?',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        plural=True,
        question='on(table)',
    ),
    case(
        'is the cup between the box and the ball',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        question='between(box, ball)',
    ),
    case(
        'is the cup nearest the plate',
        'verify_relation',
        'ask',
        'cup',
        'cup',
        question='closest_to(plate)',
    ),
    case('how many boxes are there?', 'count', 'ask', 'box', 'box', plural=True),
    case('how many cups do you see', 'count', 'ask', 'cup', 'cup', plural=True),
    case(
        'How many red cubes are on the table?',
        'count',
        'ask',
        'red cube',
        'cube',
        colour='red',
        plural=True,
        rels='on(table)',
    ),
    case('count the red cubes', 'count', 'ask', 'red cube', 'cube', colour='red', plural=True),
    case(
        'how many people are wearing hats',
        'count',
        'ask',
        'person wearing hats',
        'person',
        plural=True,
    ),
    case('can you tell me how many cups there are', 'count', 'ask', 'cup', 'cup', plural=True),
    case('is there a red ball?', 'exists', 'ask', 'red ball', 'ball', colour='red'),
    case(
        'are there any cups on the table?',
        'exists',
        'ask',
        'cup',
        'cup',
        plural=True,
        rels='on(table)',
    ),
    case('do you see a bottle', 'exists', 'ask', 'bottle', 'bottle'),
    case('can you see a green cone', 'exists', 'ask', 'green cone', 'cone', colour='green'),
    case('is there anything on the table', 'exists', 'ask', 'object', None, rels='on(table)'),
    case('is anything left of the cup?', 'exists', 'ask', 'object', None, rels='left_of(cup)'),
    case('is the cup red?', 'exists', 'ask', 'red cup', 'cup', colour='red'),
    case('what is left of the laptop?', 'what', 'ask', '', None, rels='left_of(laptop)'),
    case("what's on the table?", 'what', 'ask', '', None, rels='on(table)'),
    case(
        'what is between the box and the ball', 'what', 'ask', '', None, rels='between(box, ball)'
    ),
    case('what objects are on the table?', 'what', 'ask', '', None, rels='on(table)'),
    case('what do you see', 'what', 'ask', '', None),
    case('which cup is closer?', 'which', 'ask', 'cup', 'cup', ordinal=(1, 'nearest')),
    case(
        'which box is closest to the camera', 'which', 'ask', 'box', 'box', ordinal=(1, 'nearest')
    ),
    case('which ball is bigger', 'which', 'ask', 'ball', 'ball', ordinal=(1, 'largest')),
    case('which mug is larger', 'which', 'ask', 'mug', 'mug', ordinal=(1, 'largest')),
    case('which cube is smaller?', 'which', 'ask', 'cube', 'cube', ordinal=(1, 'smallest')),
    case('which cup is leftmost', 'which', 'ask', 'cup', 'cup', ordinal=(1, 'left')),
    case('which one is on the left?', 'which', 'ask', 'object', None, ordinal=(1, 'left')),
    case('which is the biggest cup', 'which', 'ask', 'cup', 'cup', ordinal=(1, 'largest')),
    case(
        'which of the cups is closest to the plate',
        'which',
        'ask',
        'cup',
        'cup',
        plural=True,
        rels='closest_to(plate)',
    ),
]


@pytest.mark.parametrize(('text', 'kind', 'action', 'phrase', 'noun', 'expected'), COMMANDS)
def test_command(
    text: str, kind: str, action: str, phrase: str, noun: str | None, expected: dict[str, Any]
) -> None:
    query = parse_command(text)
    target = query.target
    assert (query.kind.value, query.action) == (kind, action)
    assert (target.phrase, target.noun) == (phrase, noun)
    assert target.colour == expected.get('colour')
    assert target.size == expected.get('size')
    ordinal = expected.get('ordinal')
    got_ordinal = (
        None if target.ordinal is None else (target.ordinal.index, target.ordinal.order.value)
    )
    assert got_ordinal == ordinal
    assert render(target.relations) == expected.get('rels', '')
    question = query.question_relation
    assert render(() if question is None else (question,)) == expected.get('question', '')
    if 'plural' in expected:
        assert target.plural is expected['plural']
    if 'modifiers' in expected:
        assert target.modifiers == expected['modifiers']
    if 'shape' in expected:
        assert target.shape == expected['shape']
    assert query.text == text.strip()


def test_table_is_large_enough() -> None:
    assert len(COMMANDS) >= 100


# (bad input, fragment of the reason). Every reason names the problem in plain words.
BAD_INPUTS = [
    pytest.param('', 'empty command', id='empty'),
    pytest.param('   \t\n ', 'empty command', id='whitespace'),
    pytest.param('?!...', 'no words', id='punctuation'),
    pytest.param('12345', 'no words', id='digits'),
    pytest.param('@#$%^&*', 'no words', id='symbols'),
    pytest.param('\u200b\u200b', 'no words', id='zero-width'),
    pytest.param('find the\x00 cup', 'control character (U+0000', id='nul'),
    pytest.param('find the\x1b[31m cup', 'control character (U+001B', id='escape'),
    pytest.param(
        'x' * (MAX_COMMAND_CHARS + 1),
        f'{MAX_COMMAND_CHARS + 1} characters, the limit is {MAX_COMMAND_CHARS}',
        id='too-long',
    ),
    pytest.param(b'find the \xff cup', 'not valid UTF-8', id='latin1-bytes'),
    pytest.param(b'\xc3', 'not valid UTF-8', id='truncated-utf8'),
    pytest.param('\ud800 cup', 'lone surrogate', id='surrogate'),
    pytest.param(None, 'must be text', id='none'),
    pytest.param(42, 'must be text', id='int'),
    pytest.param(['find', 'cup'], 'must be text', id='list'),
    pytest.param('find the', 'which object', id='find-the'),
    pytest.param('find', 'which object should I find?', id='verb-only'),
    pytest.param('where is', 'which object should I where is?', id='where-only'),
    pytest.param('left of', "'left of' needs an object before it", id='relation-only'),
    pytest.param('on the table', "'on' needs an object before it", id='no-subject'),
    pytest.param('the cup left of', 'left of which object?', id='no-anchor'),
    pytest.param('the ball between the box and', 'and which object?', id='between-one'),
    pytest.param('please', 'nothing to do', id='please'),
    pytest.param('thanks!', 'nothing to do', id='thanks'),
    pytest.param('hey robot', 'nothing to do', id='wake-word'),
    pytest.param('the the the', 'nothing to do', id='articles'),
    pytest.param('find it', 'which object should I find?', id='pronoun'),
    pytest.param('find the red', 'which object should I find?', id='colour-only'),
    pytest.param('how many', 'names no object', id='how-many'),
    pytest.param('is there', 'names no object', id='is-there'),
    pytest.param('what color is the cup', 'in the question', id='attribute-question'),
    pytest.param('find the cup and pick up the plate', 'one command at a time', id='two-verbs'),
    pytest.param('find the cup then go to the table', 'one command at a time', id='then'),
    pytest.param(
        'is the cup left of the plate and behind the box',
        'one relation at a time',
        id='two-questions',
    ),
]


@pytest.mark.parametrize(('text', 'fragment'), BAD_INPUTS)
def test_bad_input(text: Any, fragment: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize('max_chars', [0, -5, 2.5, True, None])
def test_invalid_limit(max_chars: Any) -> None:
    with pytest.raises(CommandError, match='max_chars must be a positive integer'):
        parse_command('find the cup', max_chars=max_chars)


def test_limit_is_configurable() -> None:
    assert parse_command('find the red cube', max_chars=17).target.noun == 'cube'
    with pytest.raises(CommandError, match='18 characters, the limit is 17'):
        parse_command('find the red cubes', max_chars=17)


def test_bytes_are_decoded_as_utf8() -> None:
    query = parse_command('find the café mug'.encode())
    assert (query.target.phrase, query.text) == ('café mug', 'find the café mug')


def test_same_text_same_query() -> None:
    text = 'the second small red mug left of the laptop on the desk'
    assert parse_command(text) == parse_command(text)


def test_unknown_words_stay_in_the_phrase() -> None:
    query = parse_command('find the chipped zorbly mug near the wobbly sprocket')
    assert query.target.phrase == 'chipped zorbly mug'
    assert query.target.modifiers == ('chipped', 'zorbly')
    assert query.target.relations[0].anchors[0].phrase == 'wobbly sprocket'


def test_unparsable_tail_is_kept_as_description() -> None:
    # 'and the plate' cannot attach to anything: the object stays the cup, the words stay.
    query = parse_command('find the cup and the plate')
    assert (query.target.noun, query.target.phrase) == ('cup', 'cup and the plate')


def test_phrases_of_query() -> None:
    query = parse_command('is the red cup between the box and the blue ball?')
    assert query.phrases() == ['red cup', 'box', 'blue ball']


def test_tokens_come_from_the_vocabulary() -> None:
    tokens = tokenize_command('Please pick up the red mug to the left of the laptop, thanks')
    assert [(t.kind, t.text) for t in tokens] == [
        ('VERB', 'pick up'),
        ('DET', 'the'),
        ('COLOUR', 'red'),
        ('WORD', 'mug'),
        ('REL', 'to the left of'),
        ('DET', 'the'),
        ('WORD', 'laptop'),
    ]


def test_query_dict_is_json_and_round_trips() -> None:
    query = parse_command('is the second red cup left of the laptop on the desk?')
    document = query_to_dict(query)
    assert json.loads(json.dumps(document)) == document
    assert document['kind'] == 'verify_relation'
    assert document['target']['ordinal'] == {'index': 2, 'order': 'order'}
    assert document['question_relation']['relation'] == 'left_of'
    assert document['question_relation']['anchors'][0]['relations'][0]['relation'] == 'on'
    assert query_from_dict(document) == query


@pytest.mark.parametrize('document', [None, {}, {'kind': 'dance'}, {'kind': 'locate'}, []])
def test_query_from_bad_dict(document: Any) -> None:
    with pytest.raises(CommandError, match='not a parsed query'):
        query_from_dict(document)


def test_grammar_has_no_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    """LALR conflicts would be resolved silently (as shifts); the grammar must have none."""
    from grounding_agent.core.parser import _GRAMMAR_PATH

    with caplog.at_level(logging.DEBUG, logger='lark'):
        Lark(_GRAMMAR_PATH.read_text(encoding='utf-8'), parser='lalr', debug=True)
    assert not [r for r in caplog.records if 'conflict' in r.getMessage().lower()]


def _random_inputs(rng: random.Random) -> list[str | bytes]:
    from grounding_agent.core.vocabulary import vocabulary_words

    words = [w for table in vocabulary_words().values() for w in table]
    words += ['cup', 'gizmo', 'the', 'and', '?', ',', '!', "'s", '2', '3rd', '-', 'é', '中']
    inputs: list[str | bytes] = []
    for i in range(2000):
        n = rng.randint(0, 16)
        if i % 4 == 0:
            inputs.append(' '.join(rng.choice(words) for _ in range(n)))
        elif i % 4 == 1:
            inputs.append(''.join(chr(rng.randint(0, 0x2FFFF)) for _ in range(n * 2)))
        elif i % 4 == 2:
            inputs.append(bytes(rng.randint(0, 255) for _ in range(n * 3)))
        else:
            inputs.append(''.join(rng.choice("ab XY?!.,'-\t\n01é") for _ in range(n * 3)))
    return inputs


def test_random_input_gives_query_or_command_error() -> None:
    """Property: whatever arrives, the parser returns a Query or raises CommandError."""
    outcomes = {'query': 0, 'error': 0}
    reasons: list[str] = []
    for text in _random_inputs(random.Random(20240611)):
        try:
            result = parse_command(text)
        except CommandError as exc:
            reasons.append(str(exc))
            outcomes['error'] += 1
        else:
            assert isinstance(result, Query)
            assert isinstance(result.kind, QueryKind)
            json.dumps(query_to_dict(result))
            outcomes['query'] += 1
    assert all(reasons)  # every refusal says why
    # Both branches are exercised, so the property is not vacuous.
    assert outcomes['query'] > 100
    assert outcomes['error'] > 100


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    import argparse

    from grounding_agent.commands import parse

    cli = argparse.ArgumentParser()
    parse.add_arguments(cli)
    status = parse.run(cli.parse_args(argv))
    return status, json.loads(capsys.readouterr().out)


def test_cli_prints_the_query(capsys: pytest.CaptureFixture[str]) -> None:
    status, document = _run_cli(['--tokens', 'find', 'the', 'red', 'mug'], capsys)
    assert status == 0
    assert document['target']['phrase'] == 'red mug'
    assert document['tokens'] == ['VERB(find)', 'DET(the)', 'COLOUR(red)', 'WORD(mug)']


def test_cli_prints_an_error_result(capsys: pytest.CaptureFixture[str]) -> None:
    from grounding_agent.core.result import GroundingResult, ResultStatus

    status, document = _run_cli(['find', 'the'], capsys)
    result = GroundingResult.model_validate(document)
    assert (status, result.status, result.command) == (2, ResultStatus.ERROR, 'find the')
    assert result.reason.endswith('which object should I find?')
