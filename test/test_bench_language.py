"""The language corpus and its scorer (bench/bench_language.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KINDS = {'locate', 'track', 'count', 'exists', 'verify_relation', 'what', 'which'}


def _load_scorer() -> ModuleType:
    """bench/ is a package at the repository root, outside the installed one."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module('bench.bench_language')


bl = _load_scorer()


def _label(**fields: Any) -> dict[str, Any]:
    label: dict[str, Any] = {
        'kind': 'locate',
        'action': None,
        'object': ['cup'],
        'colours': [],
        'anchors': [],
        'relation': None,
        'ordinal': None,
        'destination': None,
        'direction': None,
        'negation': False,
        'ambiguous': False,
    }
    label.update(fields)
    return label


def _error(reason: str) -> dict[str, Any]:
    return {'schema': 'grounding_agent/result/1', 'status': 'error', 'reason': reason}


def test_the_corpus_is_labelled_and_split_by_its_rule() -> None:
    halves = {name: bl.load_half(name) for name in bl.HALVES}
    records = [r for rs in halves.values() for r in rs]

    assert bl.check_split(halves) == []
    assert len(records) >= 400
    assert len({r['source'] for r in records}) >= 4
    for record in records:
        label = record['label']
        assert record['id'].startswith(record['source'] + '-')
        assert ':' in record['origin'], record['id']
        assert '#' in record['origin'], record['id']
        assert record['text'].strip(), record['id']
        assert label['kind'] in KINDS, record['id']
        assert label['object'] or label['ambiguous'], record['id']
        assert all(n == n.lower() for n in label['object'] + label['anchors']), record['id']


def test_a_record_in_the_wrong_half_is_reported() -> None:
    halves = {name: list(bl.load_half(name)) for name in bl.HALVES}
    moved = halves['test'].pop()
    halves['dev'].append(moved)

    assert bl.check_split(halves) == [f'{moved["id"]}: in dev, the rule puts it in test']


def test_reading_a_document_with_every_field() -> None:
    ball = {'noun': 'ball', 'relations': []}
    document = {
        'kind': 'locate',
        'target': {
            'noun': 'blocks',
            'colour': 'pink',
            'colours': ['white', 'pink'],
            'ordinal': {'index': 2, 'order': 'left'},
            'relations': [
                {
                    'relation': 'on',
                    'negated': False,
                    'anchors': [
                        {
                            'noun': 'tray',
                            'relations': [{'relation': 'left_of', 'anchors': [ball]}],
                        }
                    ],
                }
            ],
            'without': [],
        },
        'question_relation': {'relation': 'near', 'anchors': [{'noun': 'lamp'}]},
        'destination': {'noun': 'drawer'},
        'direction': 'left',
    }

    reading = bl.read_document(document)

    assert (reading.refused, reading.noun) == (False, 'blocks')
    assert reading.colours == ('white', 'pink')
    assert reading.anchors == ('tray', 'ball', 'lamp')
    assert reading.ordinal == (2, 'left')
    assert (reading.destination, reading.direction, reading.negation) == ('drawer', 'left', False)


def test_reading_todays_document_and_negation() -> None:
    plain = {'target': {'noun': 'cup', 'colour': 'red', 'relations': []}}
    negated = {'target': {'noun': 'cup', 'relations': [{'negated': True, 'anchors': []}]}}
    without = {'target': {'noun': 'box', 'without': ['lid'], 'relations': []}}

    assert bl.read_document(plain).colours == ('red',)
    assert bl.read_document(plain).destination is None
    assert bl.read_document(negated).negation
    assert bl.read_document(without).negation


def test_a_refusal_counts_as_a_question_when_it_asks() -> None:
    asks = bl.read_document(_error('which object should I push?'), 'internal error')
    states = bl.read_document(_error('internal error while parsing: KeyError'), 'internal error')

    assert (asks.refused, asks.clarifying, asks.internal_error) == (True, True, False)
    assert (states.refused, states.clarifying, states.internal_error) == (True, False, True)


def test_nouns_match_after_singularising_and_anchors_by_their_head() -> None:
    label = _label(object=['cups'], anchors=['living room', 'tables'])
    document = {
        'target': {
            'noun': 'cup',
            'relations': [{'anchors': [{'noun': 'room'}, {'noun': 'table'}]}],
        }
    }

    scores = bl.score_item(label, bl.read_document(document))

    assert scores['noun']
    assert scores['anchors']
    assert not scores['silently_wrong']


def test_a_wrong_noun_is_silently_wrong_and_an_ambiguous_item_may_ask_back() -> None:
    wrong = bl.score_item(_label(), bl.read_document({'target': {'noun': 'push'}}))
    ambiguous = _label(object=[], ambiguous=True)
    asked = bl.score_item(ambiguous, bl.read_document(_error('what should I put there?')))
    told = bl.score_item(ambiguous, bl.read_document(_error('say what to put')))
    guessed = bl.score_item(ambiguous, bl.read_document({'target': {'noun': 'object'}}))

    assert (wrong['noun'], wrong['silently_wrong']) == (False, True)
    assert (asked['noun'], asked['silently_wrong']) == (True, False)
    assert (told['noun'], told['silently_wrong']) == (False, False)
    assert (guessed['noun'], guessed['silently_wrong']) == (False, True)


def test_colours_ordinals_destination_direction() -> None:
    label = _label(
        colours=['grey', 'white'],
        ordinal={'index': 1, 'order': 'right'},
        destination='drawer',
        direction='left',
    )
    good = {
        'target': {
            'noun': 'cup',
            'colours': ['white', 'gray'],
            'ordinal': {'index': 1, 'order': 'right'},
        },
        'destination': {'noun': 'drawers'},
        'direction': 'left',
    }
    bad = {'target': {'noun': 'cup', 'colour': 'white', 'ordinal': {'index': 1, 'order': 'left'}}}

    right = bl.score_item(label, bl.read_document(good))
    wrong = bl.score_item(label, bl.read_document(bad))

    assert [right[k] for k in ('colour', 'ordinal', 'destination', 'direction')] == [True] * 4
    assert [wrong[k] for k in ('colour', 'ordinal', 'destination', 'direction')] == [False] * 4
    assert bl.score_item(_label(), bl.read_document(bad))['spurious_ordinal']


def test_the_report_counts_and_lists_only_the_development_failures() -> None:
    records = [
        {
            'id': 'x-0001',
            'source': 'x',
            'text': 'find the red cup',
            'label': _label(colours=['red']),
        },
        {'id': 'x-0002', 'source': 'x', 'text': 'rotate right the cup', 'label': _label()},
        {'id': 'x-0003', 'source': 'x', 'text': 'find the', 'label': _label()},
    ]

    outcomes = bl.score_half(records)
    results = {'dev': bl.tallies(outcomes)}
    markdown = bl.render(results, outcomes, title='T', note='', list_failures=True)

    total = results['dev']['all']
    assert (total.items, total.refused, total.crashes) == (3, 1, 0)
    assert total.cell('colour') == '100% (1/1)'
    assert '| dev | **all** | 3 |' in markdown
    assert '«find the»' in markdown
    assert '«find the red cup»' not in markdown
