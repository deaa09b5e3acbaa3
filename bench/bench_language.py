"""Score the command reader on real language: the hand-labelled corpus in bench/corpus/.

`python bench/bench_language.py` parses every sentence of the development and the test half
with the function behind `grounding-agent parse --batch` (in this process, one call per
sentence, timed), compares the documents with the labels and writes the table to
docs/benchmarks.md (section "Reading real language"). The refused and silently wrong inputs
of the development half are listed; of the test half only the counts are reported, because
the test half is never used for tuning (bench/corpus/README.md).

What is counted (a missing key in the parse document counts as "not found"):

- object noun right: every item; the target noun, singular, is one of the label's nouns. An
  item labelled ambiguous is also right when the answer is an `error` that asks back.
- colour right: items whose label names colours; the target's colour words are the label's
  (`target.colours`, else `[target.colour]`; `grey` and `gray` are one colour).
- anchors right: items with anchors; the head nouns of every relation anchor of the target,
  recursively, and of the question relation, are the label's (as sets, singular).
- ordinals found: items with an ordinal; `target.ordinal` has the label's index and order.
- destination right / direction right: items with one; top-level `destination.noun` (head,
  singular) / `direction` equal the label's.
- negation found: items labelled with negation; a relation with `negated: true` or an
  object with a non-empty `without` list anywhere in the document.
- refused: the answer is an `error` result (clarifying: its reason ends with '?').
- silently wrong: not refused, and the object noun is wrong.
- crashes: the parser raised an unexpected exception (an `error` whose reason starts with
  the batch's internal-error prefix).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine_line, update_section

CORPUS_DIR = Path(__file__).resolve().parent / 'corpus'
HALVES = ('dev', 'test')
COLOUR_SPELLINGS = {'gray': 'grey'}
METRICS = (
    # (column, score key, denominator key): denominator None = every item
    ('object noun', 'noun', None),
    ('colour', 'colour', 'has_colour'),
    ('anchors', 'anchors', 'has_anchors'),
    ('ordinals', 'ordinal', 'has_ordinal'),
    ('destination', 'destination', 'has_destination'),
    ('direction', 'direction', 'has_direction'),
    ('negation', 'negation', 'has_negation'),
)


# ---------------------------------------------------------------- corpus and its split


def load_half(name: str, corpus_dir: Path = CORPUS_DIR) -> list[dict[str, Any]]:
    """The records of `dev` or `test`, in file order."""
    path = corpus_dir / f'{name}.jsonl'
    with path.open(encoding='utf-8') as stream:
        return [json.loads(line) for line in stream if line.strip()]


def split_of(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """id -> 'dev' or 'test' by the corpus rule: within each source, sorted by the SHA-256 of
    the id, the first half (rounded up) is the development half."""
    by_source: dict[str, list[str]] = {}
    for record in records:
        by_source.setdefault(str(record['source']), []).append(str(record['id']))
    half_of: dict[str, str] = {}
    for ids in by_source.values():
        ordered = sorted(ids, key=lambda i: hashlib.sha256(i.encode('utf-8')).hexdigest())
        cut = (len(ordered) + 1) // 2
        half_of.update(dict.fromkeys(ordered[:cut], 'dev'))
        half_of.update(dict.fromkeys(ordered[cut:], 'test'))
    return half_of


def check_split(halves: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The records that are not in the half the split rule puts them in (empty: all are)."""
    everything = [r for records in halves.values() for r in records]
    ids = [str(r['id']) for r in everything]
    problems = [f'{i}: listed twice' for i in sorted({i for i in ids if ids.count(i) > 1})]
    rule = split_of(everything)
    for name, records in halves.items():
        problems += [
            f'{r["id"]}: in {name}, the rule puts it in {rule[str(r["id"])]}'
            for r in records
            if rule[str(r['id'])] != name
        ]
    return problems


# ---------------------------------------------------------------- reading a parse document


def singular(word: str) -> str:
    """Lower-case singular of a noun phrase, by the project's word module."""
    from grounding_agent.core.vocabulary import singular_noun

    text = ' '.join(str(word).lower().split())
    return singular_noun(text) if text else text


def head(word: str) -> str:
    """The head noun of a name: its last word, singular ('living rooms' -> 'room')."""
    text = singular(word)
    return text.rsplit(' ', 1)[-1] if text else text


def _object_noun(obj: Any) -> str | None:
    if isinstance(obj, Mapping):
        noun = obj.get('noun')
        return str(noun) if noun else None
    if isinstance(obj, str) and obj:
        return obj
    return None


def _anchor_nouns(ref: Any) -> list[str]:
    """Nouns of the anchors of every relation of `ref`, and of theirs (depth first)."""
    if not isinstance(ref, Mapping):
        return []
    nouns: list[str] = []
    for relation in ref.get('relations') or ():
        nouns += _relation_anchor_nouns(relation)
    return nouns


def _relation_anchor_nouns(relation: Any) -> list[str]:
    if not isinstance(relation, Mapping):
        return []
    nouns: list[str] = []
    for anchor in relation.get('anchors') or ():
        noun = _object_noun(anchor)
        if noun:
            nouns.append(noun)
        nouns += _anchor_nouns(anchor)
    return nouns


def _has_negation(node: Any) -> bool:
    if isinstance(node, Mapping):
        if node.get('negated') is True or node.get('without'):
            return True
        return any(_has_negation(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_negation(v) for v in node)
    return False


@dataclass(frozen=True)
class Reading:
    """What one parse document says, in the corpus's terms."""

    refused: bool
    clarifying: bool
    internal_error: bool
    reason: str
    noun: str | None
    colours: tuple[str, ...]
    anchors: tuple[str, ...]
    ordinal: tuple[int, str] | None
    destination: str | None
    direction: str | None
    negation: bool


def read_document(document: Mapping[str, Any], internal_prefix: str = '') -> Reading:
    """The fields the scorer compares, taken from a `parse` document or its error result."""
    if document.get('status') == 'error':
        reason = str(document.get('reason') or '')
        return Reading(
            refused=True,
            clarifying=reason.rstrip().endswith('?'),
            internal_error=bool(internal_prefix) and reason.startswith(internal_prefix),
            reason=reason,
            noun=None,
            colours=(),
            anchors=(),
            ordinal=None,
            destination=None,
            direction=None,
            negation=False,
        )
    target = document.get('target')
    target = target if isinstance(target, Mapping) else {}
    colours = target.get('colours')
    if not isinstance(colours, list):
        colours = [target['colour']] if target.get('colour') else []
    anchors = _anchor_nouns(target) + _relation_anchor_nouns(document.get('question_relation'))
    ordinal = target.get('ordinal')
    ordinal_pair = None
    if isinstance(ordinal, Mapping) and 'index' in ordinal:
        ordinal_pair = (int(ordinal['index']), str(ordinal.get('order')))
    direction = document.get('direction')
    return Reading(
        refused=False,
        clarifying=False,
        internal_error=False,
        reason='',
        noun=_object_noun(target),
        colours=tuple(str(c) for c in colours if c),
        anchors=tuple(anchors),
        ordinal=ordinal_pair,
        destination=_object_noun(document.get('destination')),
        direction=str(direction) if direction else None,
        negation=_has_negation(document),
    )


# ---------------------------------------------------------------- scoring


def _colour_set(words: Iterable[str]) -> set[str]:
    out = set()
    for word in words:
        w = ' '.join(str(word).lower().split())
        out.add(COLOUR_SPELLINGS.get(w, w))
    return out


def score_item(label: Mapping[str, Any], reading: Reading) -> dict[str, bool]:
    """Per-metric results for one item: 'has_x' says whether x counts for it, 'x' if right."""
    nouns = {singular(n) for n in label.get('object') or ()}
    noun_ok = reading.noun is not None and singular(reading.noun) in nouns
    if label.get('ambiguous') and reading.refused and reading.clarifying:
        noun_ok = True
    colours = list(label.get('colours') or ())
    anchors = list(label.get('anchors') or ())
    ordinal = label.get('ordinal')
    destination = label.get('destination')
    direction = label.get('direction')
    answered = not reading.refused
    return {
        'noun': noun_ok,
        'silently_wrong': answered and not noun_ok,
        'has_colour': bool(colours),
        'colour': answered and _colour_set(reading.colours) == _colour_set(colours),
        'has_anchors': bool(anchors),
        'anchors': answered and {head(a) for a in reading.anchors} == {head(a) for a in anchors},
        'has_ordinal': ordinal is not None,
        'ordinal': ordinal is not None
        and reading.ordinal == (int(ordinal['index']), str(ordinal['order'])),
        'has_destination': destination is not None,
        'destination': destination is not None
        and reading.destination is not None
        and head(reading.destination) == head(destination),
        'has_direction': direction is not None,
        'direction': direction is not None and reading.direction == direction,
        'has_negation': bool(label.get('negation')),
        'negation': reading.negation,
        'spurious_ordinal': ordinal is None and reading.ordinal is not None,
    }


@dataclass
class Tally:
    """Counts over a group of items."""

    items: int = 0
    right: dict[str, int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    clarifying: int = 0
    silently_wrong: int = 0
    crashes: int = 0
    spurious_ordinals: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, scores: Mapping[str, bool], reading: Reading, ms: float) -> None:
        self.items += 1
        for _column, key, has in METRICS:
            if has is None or scores[has]:
                self.counted[key] = self.counted.get(key, 0) + 1
                self.right[key] = self.right.get(key, 0) + int(scores[key])
        self.refused += int(reading.refused)
        self.clarifying += int(reading.refused and reading.clarifying)
        self.silently_wrong += int(scores['silently_wrong'])
        self.crashes += int(reading.internal_error)
        self.spurious_ordinals += int(scores['spurious_ordinal'])
        self.ms.append(ms)

    def cell(self, key: str) -> str:
        n = self.counted.get(key, 0)
        if not n:
            return '-'
        right = self.right.get(key, 0)
        return f'{100.0 * right / n:.0f}% ({right}/{n})'

    def percentile_ms(self, q: float) -> float:
        if not self.ms:
            return 0.0
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Outcome:
    """One scored item."""

    record: Mapping[str, Any]
    reading: Reading
    scores: Mapping[str, bool]
    ms: float


def parse_timed(texts: Sequence[str]) -> list[tuple[dict[str, Any], float]]:
    """(document, milliseconds) for every text, by the `parse --batch` line function."""
    from grounding_agent.commands.parse import parse_line

    parse_line('find the red cup')  # the first call builds the parser: not a sentence's cost
    out = []
    for text in texts:
        started = time.perf_counter()
        _understood, document = parse_line(text)
        out.append((document, 1000.0 * (time.perf_counter() - started)))
    return out


def score_half(records: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    from grounding_agent.commands.parse import INTERNAL_ERROR_PREFIX

    parsed = parse_timed([str(r['text']) for r in records])
    outcomes = []
    for record, (document, ms) in zip(records, parsed, strict=True):
        reading = read_document(document, INTERNAL_ERROR_PREFIX)
        outcomes.append(Outcome(record, reading, score_item(record['label'], reading), ms))
    return outcomes


def tallies(outcomes: Iterable[Outcome]) -> dict[str, Tally]:
    """Tally per source, and 'all'."""
    groups: dict[str, Tally] = {}
    for outcome in outcomes:
        for key in (str(outcome.record['source']), 'all'):
            groups.setdefault(key, Tally()).add(outcome.scores, outcome.reading, outcome.ms)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] == 'all', kv[0])))


# ---------------------------------------------------------------- report


def _quote(text: str) -> str:
    """A corpus sentence quoted verbatim (codespell skips «...»: the authors' spelling)."""
    return '«' + ' '.join(text.split()).replace('|', '/') + '»'


def table(results: Mapping[str, Mapping[str, Tally]]) -> str:
    columns = [c for c, _k, _h in METRICS]
    lines = [
        '| half | source | items | '
        + ' | '.join(columns)
        + ' | refused (asks back) | silently wrong | crashes | median ms | p95 ms |',
        '|---|---|---:|' + '---:|' * len(columns) + '---:|---:|---:|---:|---:|',
    ]
    for half, groups in results.items():
        for source, t in groups.items():
            name = f'**{source}**' if source == 'all' else source
            cells = ' | '.join(t.cell(k) for _c, k, _h in METRICS)
            lines.append(
                f'| {half} | {name} | {t.items} | {cells} | {t.refused} ({t.clarifying}) | '
                f'{t.silently_wrong} | {t.crashes} | {statistics.median(t.ms):.2f} | '
                f'{t.percentile_ms(0.95):.2f} |'
            )
    return '\n'.join(lines)


def _describe(outcome: Outcome) -> str:
    reading = outcome.reading
    if reading.refused:
        return f'refused: {reading.reason}'
    return f'read the object as `{reading.noun}`'


def failure_list(outcomes: Sequence[Outcome]) -> str:
    """Every refused or silently wrong item, with what was expected."""
    rows = []
    for outcome in outcomes:
        if not (outcome.reading.refused or outcome.scores['silently_wrong']):
            continue
        label = outcome.record['label']
        expected = ' / '.join(label.get('object') or ()) or '(ask back)'
        rows.append(
            f'- `{outcome.record["id"]}` {_quote(str(outcome.record["text"]))}: '
            f'{_describe(outcome)}; expected `{expected}`'
        )
    return '\n'.join(rows) if rows else '- none'


def git_revision() -> str:
    try:
        return subprocess.run(
            ['git', 'rev-parse', '--short', 'HEAD'],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def render(
    results: Mapping[str, Mapping[str, Tally]],
    dev_outcomes: Sequence[Outcome],
    *,
    title: str,
    note: str,
    list_failures: bool,
) -> str:
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    spurious = {h: g['all'].spurious_ordinals for h, g in results.items() if 'all' in g}
    parts = [
        f'## {title}',
        '',
        f'{machine_line()}, commit {git_revision()}, load average {load:.1f} during the run. '
        'Corpus `bench/corpus/` (development and test halves, split by a hash of the id '
        'before any tuning; the test half is never used for tuning). Every sentence parsed by '
        'the function behind `grounding-agent parse --batch`, in one process after one '
        'warm-up call; per-sentence wall time. Denominators: object noun over every item; '
        'each other column over the items whose label has one. Refused = an `error` answer; '
        'asks back = its reason is a question; silently wrong = answered with a wrong object '
        'noun.',
    ]
    if note:
        parts += ['', note]
    parts += [
        '',
        table(results),
        '',
        'Ordinals read where the label has none (a direction or a number taken for an '
        f'ordinal): {", ".join(f"{h} {n}" for h, n in spurious.items())}.',
    ]
    if list_failures:
        shown = [o for o in dev_outcomes if o.reading.refused or o.scores['silently_wrong']]
        parts += [
            '',
            f'<details><summary>Development half: the {len(shown)} refused or silently wrong '
            'inputs (the test half is reported only as counts)</summary>',
            '',
            failure_list(dev_outcomes),
            '',
            '</details>',
        ]
    return '\n'.join(parts) + '\n'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--section', default='language', help='docs/benchmarks.md section')
    parser.add_argument('--title', default='Reading real language (`bench/bench_language.py`)')
    parser.add_argument('--note', default='', help='a sentence printed above the table')
    parser.add_argument(
        '--no-list', action='store_true', help='leave out the list of development failures'
    )
    parser.add_argument('--no-write', action='store_true', help='print, do not write the doc')
    parser.add_argument(
        '--dev-only',
        action='store_true',
        help='score only the development half (while tuning); implies --no-write',
    )
    args = parser.parse_args(argv)

    halves = {name: load_half(name) for name in HALVES}
    problems = check_split(halves)
    if problems:
        print('the corpus split does not follow its rule:', *problems, sep='\n  ')
        return 1
    scored = ('dev',) if args.dev_only else HALVES
    outcomes = {name: score_half(halves[name]) for name in scored}
    results = {name: tallies(outs) for name, outs in outcomes.items()}
    markdown = render(
        results,
        outcomes['dev'],
        title=args.title,
        note=args.note,
        list_failures=not args.no_list,
    )
    print(markdown)
    if not (args.no_write or args.dev_only):
        update_section(args.section, markdown)
    crashes = sum(t['all'].crashes for t in results.values())
    return 1 if crashes else 0


if __name__ == '__main__':
    sys.exit(main())
