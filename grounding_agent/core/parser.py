"""The command parser: operator text (typed or recognised speech) -> a structured `Query`.

Four steps, each small enough to read on its own:
1. normalise: decode, validate (length, control characters, letters), lower-case, split words,
   expand contractions;
2. tokenize: drop politeness and scene references, join multi-word phrases from the vocabulary
   tables (longest first) and give every word a category; unknown words are WORD;
3. parse the token stream with the LALR grammar in `command.lark` (built once, lazily);
4. attach: build the object references, hanging each relation on the nearest noun before it
   (right-branching), 'and ...' on the same subject as the link before it.

Everything the parser knows comes from `core/vocabulary.py`, like the speech grammar, so the two
cannot drift apart. Bad input raises `CommandError` with a reason an operator can act on.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import LarkError, UnexpectedToken

from grounding_agent.core import vocabulary as vocab
from grounding_agent.core.errors import CommandError
from grounding_agent.core.types import (
    ObjectRef,
    Ordinal,
    OrdinalOrder,
    Query,
    QueryKind,
    Relation,
    RelationConstraint,
)

__all__ = [
    'MAX_COMMAND_CHARS',
    'CommandToken',
    'RefusedCommandError',
    'WordTag',
    'grammar_parse',
    'parse_command',
    'query_from_dict',
    'query_to_dict',
    'split_sentences',
    'tokenize_command',
    'words_of',
]

MAX_COMMAND_CHARS = 500

_GRAMMAR_PATH = Path(__file__).with_name('command.lark')

# Words: letters/digits with inner apostrophes or hyphens ("what's", "t-shirt", "2nd").
_WORD_RE = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")
_ORDINAL_DIGITS_RE = re.compile(r'^([1-9][0-9]*)(?:st|nd|rd|th)$')
_QUOTES = str.maketrans({'\u2019': "'", '\u2018': "'", '\u02bc': "'", '\u00b4': "'", '`': "'"})
# Control characters (Unicode category Cc) other than tab and line breaks, and lone surrogates.
_CONTROL_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]')
_SURROGATE_RE = re.compile('[\ud800-\udfff]')

# Token categories (the grammar's terminals) that end a noun phrase's word list.
_NOMINAL_KINDS = frozenset(
    {'WORD', 'COLOUR', 'SIZE', 'ORDINAL', 'SUPERL', 'COMPAR', 'NUMBER', 'ONE'}
)
# Token categories that can start a link after a noun ('and' before them coordinates).
_LINK_START_KINDS = frozenset(
    {'REL', 'BETWEEN', 'DESC', 'RELPRON', 'BE', 'PART', 'POSITION', 'ATTR'}
)
_QUESTION_TERMINALS = {
    QueryKind.COUNT: 'HOW_MANY',
    QueryKind.EXISTS: 'EXISTS',
    QueryKind.WHAT: 'WHAT',
    QueryKind.WHICH: 'WHICH',
}
_SINGULAR_DETERMINERS = frozenset({'one of the', 'each of the', 'every one of the'})
# Leading words dropped only before a command: 'robot' may be an object, 'go' may start 'go to'.
_VOCATIVES = frozenset({'robot', 'go', 'come', 'go and', 'come and'})


class RefusedCommandError(CommandError):
    """A command no reading can complete (it stops after 'left of', names two commands, ...).

    The reason ends with a question the operator can answer.
    """


@dataclass(frozen=True, slots=True)
class CommandToken:
    """One token of a command: grammar category, the words as written and their meaning.

    `value` is the action for VERB, the `Relation` for REL / BETWEEN, the normalised colour or
    size, the integer of ORDINAL / NUMBER, the `OrdinalOrder` of SUPERL / COMPAR, an
    (order, counted_from) pair for POSITION, the `QueryKind` of a question opener, else None.
    """

    kind: str
    text: str
    value: Any = None


# ---------------------------------------------------------------------------------------------
# 1. Normalise


def _decode(text: str | bytes, max_chars: int) -> str:
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise CommandError(f'max_chars must be a positive integer, got {max_chars!r}')
    if isinstance(text, (bytes, bytearray, memoryview)):
        raw = bytes(text)
        # Four bytes per character at most: no need to decode a huge buffer to refuse it.
        if len(raw) > 4 * max_chars:
            raise CommandError(
                f'command is too long: {len(raw)} bytes, the limit is {max_chars} characters'
            )
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise CommandError(
                f'command is not valid UTF-8 text (bad byte at position {exc.start})'
            ) from exc
    elif not isinstance(text, str):
        raise CommandError(f'command must be text (str or UTF-8 bytes), got {type(text).__name__}')
    if len(text) > max_chars:
        raise CommandError(
            f'command is too long: {len(text)} characters, the limit is {max_chars}'
        )
    return text


def words_of(text: str) -> list[str]:
    """The lower-case words of a command as the parser sees them (see `_words`)."""
    return _words(text)


def _words(text: str) -> list[str]:
    """Validate `text` and split it into lower-case words with contractions expanded."""
    if not text.strip():
        raise CommandError('empty command: say what to find, e.g. "find the red cube"')
    control = _CONTROL_RE.search(text)
    if control is not None:
        raise CommandError(
            f'command contains a control character (U+{ord(control.group()):04X} at position '
            f'{control.start()}); send plain text'
        )
    surrogate = _SURROGATE_RE.search(text)
    if surrogate is not None:
        raise CommandError(
            'command contains an invalid character (lone surrogate at position '
            f'{surrogate.start()})'
        )
    if not text.isascii():
        text = unicodedata.normalize('NFKC', text)
        # Zero-width spaces, joiners and byte-order marks are invisible: drop them.
        text = ''.join(c for c in text if unicodedata.category(c) != 'Cf')
    text = text.translate(_QUOTES)
    if not any(c.isalpha() for c in text):
        raise CommandError(
            f'command has no words (only digits, punctuation or symbols): {text.strip()[:60]!r}'
        )
    words: list[str] = []
    for word in _WORD_RE.findall(text.lower()):
        words.extend(vocab.CONTRACTIONS.get(word, word).split())
    return words


# ---------------------------------------------------------------------------------------------
# 2. Tokenize: the phrase table is generated from the vocabulary tables.


@dataclass(frozen=True, slots=True)
class _Phrase:
    """Every category a phrase can have; context picks one ('that' is DET or RELPRON)."""

    text: str
    senses: tuple[tuple[str, Any], ...]
    kinds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, text: str, senses: Sequence[tuple[str, Any]]) -> _Phrase:
        return cls(text, tuple(senses), frozenset(k for k, _ in senses))

    def sense(self, kind: str) -> Any:
        return next(value for k, value in self.senses if k == kind)

    def has(self, *kinds: str) -> bool:
        return not self.kinds.isdisjoint(kinds)


def _add(
    table: dict[str, list[tuple[str, Any]]], phrases: Iterable[str], kind: str, value: Any = None
) -> None:
    for phrase in phrases:
        senses = table.setdefault(phrase, [])
        if all(k != kind for k, _ in senses):
            senses.append((kind, value))


@lru_cache(maxsize=1)
def _phrase_table() -> tuple[dict[str, _Phrase], dict[str, _Phrase], int]:
    """(phrases anywhere, phrases only at the start of a command, longest phrase in words)."""
    table: dict[str, list[tuple[str, Any]]] = {}
    # Fillers first: a phrase that is also a filler ('is there' inside a sentence) is dropped.
    _add(table, vocab.FILLER_PHRASES, 'FILLER')
    for phrase, action in {**vocab.VERB_PHRASES, **vocab.ACTION_VERB_PHRASES}.items():
        _add(table, [phrase], 'VERB', action)
    for phrase, relation in vocab.RELATION_PHRASES.items():
        kind = 'BETWEEN' if relation is Relation.BETWEEN else 'REL'
        _add(table, [phrase], kind, relation)
    for colour in vocab.COLOURS:
        _add(table, [colour], 'COLOUR', colour)
    for phrase, colour in vocab.COLOUR_NAMES.items():
        _add(table, [phrase], 'COLOUR', colour)
    for phrase, size in vocab.SIZE_SYNONYMS.items():
        _add(table, [phrase], 'SIZE', size)
    for phrase, index in vocab.ORDINAL_WORDS.items():
        _add(table, [phrase], 'ORDINAL', index)
    for phrase, order in vocab.SUPERLATIVES.items():
        _add(table, [phrase], 'SUPERL', order)
    for phrase, order in vocab.COMPARATIVES.items():
        _add(table, [phrase], 'COMPAR', order)
    for phrase, number in vocab.NUMBER_WORDS.items():
        _add(table, [phrase], 'NUMBER', number)
    for phrase, position in vocab.POSITION_PHRASES.items():
        _add(table, [phrase], 'POSITION', position)
    # 'closest to the camera' orders by distance to the viewer; there is no anchor to detect.
    camera_orders = {
        Relation.CLOSEST_TO: OrdinalOrder.NEAREST,
        Relation.NEAR: OrdinalOrder.NEAREST,
        Relation.FARTHEST_FROM: OrdinalOrder.FARTHEST,
    }
    for phrase, relation in vocab.RELATION_PHRASES.items():
        if relation in camera_orders:
            for camera in vocab.CAMERA_REFERENCES:
                if camera in vocab.PERSON_WORDS:
                    continue  # 'closest to me' depends on where the operator stands: a relation
                _add(table, [f'{phrase} {camera}'], 'POSITION', (camera_orders[relation], False))
    _add(table, vocab.DETERMINERS, 'DET')
    _add(table, vocab.COPULAS, 'BE')
    _add(table, vocab.RELATIVE_PRONOUNS, 'RELPRON')
    _add(table, ['what'], 'RELPRON')
    _add(table, vocab.PARTICIPLES, 'PART')
    _add(table, vocab.DESCRIPTIVE_WORDS, 'DESC')
    _add(table, vocab.ATTRIBUTE_PHRASES, 'ATTR')
    for phrase in vocab.GENERIC_NOUNS:
        _add(table, [phrase], 'ONE', phrase)
    for phrase in vocab.COMPOUND_NOUNS:
        _add(table, [phrase, vocab.plural_noun(phrase)], 'WORD')
    _add(table, vocab.NEGATIONS, 'NEG')
    _add(table, ['and'], 'AND')
    for phrase, direction in vocab.DIRECTION_PHRASES.items():
        _add(table, [phrase], 'DIRECTION', direction)

    start: dict[str, list[tuple[str, Any]]] = {}
    for phrase, kind in vocab.QUESTION_PHRASES.items():
        _add(start, [phrase], 'QUESTION', kind)
    _add(start, vocab.LEADING_FILLERS, 'LEAD')
    anywhere = {p: _Phrase.of(p, s) for p, s in table.items()}
    at_start = {p: _Phrase.of(p, s) for p, s in start.items()}
    longest = max(len(p.split()) for p in [*anywhere, *at_start])
    return anywhere, at_start, longest


def _match(
    words: Sequence[str], i: int, table: dict[str, _Phrase], longest: int
) -> _Phrase | None:
    for length in range(min(longest, len(words) - i), 0, -1):
        phrase = table.get(' '.join(words[i : i + length]))
        if phrase is not None:
            return phrase
    return None


def _strip_leading(words: list[str]) -> tuple[list[str], CommandToken | None]:
    """Drop openers ('hey robot, can you ...') and read a question opener ('how many')."""
    anywhere, at_start, longest = _phrase_table()
    i = 0
    while i < len(words):
        if words[i : i + 2] == ['show', 'me'] and words[i + 2 : i + 3] in (
            ['where'],
            ['what'],
            ['which'],
            ['how'],
        ):
            i += 2  # 'show me where the cup is'
            continue
        phrase = _match(words, i, at_start, longest)
        if phrase is None:
            filler = _match(words, i, anywhere, longest)
            if filler is None or not filler.has('FILLER'):
                break
            i += len(filler.text.split())  # 'please can you ...'
            continue
        n = len(phrase.text.split())
        if phrase.has('QUESTION'):
            kind: QueryKind = phrase.sense('QUESTION')
            return words[i + n :], CommandToken(_QUESTION_TERMINALS[kind], phrase.text, kind)
        if phrase.text in _VOCATIVES:
            # 'robot, find the cup' but not 'robot arm on the left'.
            following = _match(words, i + n, {**anywhere, **at_start}, longest)
            if following is None or not following.has('VERB', 'QUESTION', 'LEAD', 'FILLER'):
                break
        i += n
    return words[i:], None


def _segment(words: list[str]) -> list[_Phrase]:
    anywhere, _, longest = _phrase_table()
    words = _rewrite(words)
    segments: list[_Phrase] = []
    i = 0
    while i < len(words):
        phrase = _match(words, i, anywhere, longest)
        word = words[i]
        if phrase is None:
            ordinal = _ORDINAL_DIGITS_RE.match(word)
            if ordinal:
                phrase = _Phrase.of(word, [('ORDINAL', int(ordinal.group(1)))])
            elif word.isdigit() and word.isascii():
                phrase = _Phrase.of(word, [('NUMBER', int(word))])
            else:
                phrase = _Phrase.of(word, [('WORD', None)])
        segments.append(phrase)
        i += len(phrase.text.split())
    return segments


def _rewrite(words: list[str]) -> list[str]:
    """'the pc on your left' -> 'the pc left of you' (vocab.REWRITES, longest first)."""
    text = ' '.join(words)
    if not any(p in text for p in vocab.REWRITES):
        return words
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in (3, 2):
            said = ' '.join(words[i : i + n])
            if said in vocab.REWRITES:
                out.extend(vocab.REWRITES[said].split())
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _fronted_place_last(segments: list[_Phrase]) -> list[_Phrase]:
    """'in the slider pick up the red block' -> 'pick up the red block in the slider'."""
    kept = [s for s in segments if not s.has('FILLER')]
    if not kept or not kept[0].has('REL') or kept[0].has('VERB'):
        return segments
    verb = next((i for i, s in enumerate(kept) if s.has('VERB')), None)
    if verb is None or verb < 2:
        return segments
    return kept[verb:] + kept[:verb]


def _resolve(segments: list[_Phrase], opener: CommandToken | None) -> list[CommandToken]:
    """Pick each phrase's category from its neighbours (documented rules, left to right)."""
    tokens: list[CommandToken] = [] if opener is None else [opener]
    kept = [s for s in segments if not s.has('FILLER')]
    i = 0
    while i < len(kept):
        phrase = kept[i]
        after = kept[i + 1] if i + 1 < len(kept) else None
        before = tokens[-1].kind if tokens else None
        if phrase.has('NEG') and after is not None:
            if before == 'DESC' and tokens[-1].text == 'with':
                tokens[-1] = CommandToken('DESC', 'without')  # 'an elephant with no tusks'
                i += 1
                continue
            if after.has('REL', 'BETWEEN', 'PART', 'DESC') and not after.has('DIRECTION'):
                tokens.append(CommandToken('NEG', phrase.text))  # 'not on the tray'
                i += 1
                continue
            following = kept[i + 2] if i + 2 < len(kept) else None
            if (
                after.kinds == {'WORD'}
                and after.text.endswith('ing')
                and following is not None
                and following.has('DET', 'ONE', 'WORD', 'NUMBER')
            ):
                # 'not facing the camera': a negated description
                tokens.extend([CommandToken('NEG', phrase.text), CommandToken('DESC', after.text)])
                i += 2
                continue
            # 'not red' describes; it is not the colour red.
            tokens.append(CommandToken('WORD', f'{phrase.text} {after.text}'))
            i += 2
            continue
        if phrase.has('VERB'):
            if tokens and len(tokens) <= 3 and all(t.kind == 'WORD' for t in tokens):
                tokens.clear()  # a name first: 'michael go to the kitchen'
            if not tokens:
                tokens.append(CommandToken('VERB', phrase.text, phrase.sense('VERB')))
            elif before == 'DESC' and tokens[-1].text == 'to' and len(tokens) > 2:
                # 'push the button to turn off the light': what for, not which object.
                tokens.pop()
                break
            elif tokens[0].kind == 'VERB' and after is not None and after.text in vocab.PRONOUNS:
                # 'take the block and put it in the drawer', 'grasp the block, then turn it
                # right': one object, the second action.
                if before == 'AND':
                    tokens.pop()
                first = tokens[0]
                tokens[0] = CommandToken(
                    'VERB', f'{first.text} and {phrase.text}', phrase.sense('VERB')
                )
                i += 2
                continue
            elif len(phrase.text.split()) > 1 or before == 'AND':
                raise RefusedCommandError(
                    f"one command at a time: '{phrase.text}' starts a second command after "
                    f"'{_surface(tokens)}'; which should I do first?"
                )
            else:
                tokens.append(CommandToken('WORD', phrase.text))  # 'the watch', 'the face'
            i += 1
            continue
        if phrase.has('COLOUR') and after is not None and after.has('AND'):
            following = kept[i + 2] if i + 2 < len(kept) else None
            if following is not None and following.has('COLOUR'):
                # 'black and white': a pattern, not one colour.
                text = f'{phrase.text} and {following.text}'
                tokens.append(CommandToken('WORD', text))
                i += 3
                continue
        if (
            phrase.has('POSITION')
            and not phrase.has('DIRECTION')
            and phrase.text.split()[:2] in (['on', 'the'], ['in', 'the'])
            and after is not None
            and after.kinds == {'WORD'}
            and not after.text.endswith(('ing', 'ed'))
            and before in _NOMINAL_KINDS
        ):
            # 'the train on the far right rail': on the rail, which is the far right one.
            preposition, article, *rest = phrase.text.split()
            anywhere = _phrase_table()[0]
            tokens.append(CommandToken('REL', preposition, vocab.RELATION_PHRASES[preposition]))
            tokens.append(CommandToken('DET', article))
            for word in rest:
                known = anywhere.get(word)
                if known is not None and known.has('SUPERL'):
                    tokens.append(CommandToken('SUPERL', word, known.sense('SUPERL')))
                else:
                    tokens.append(CommandToken('WORD', word))
            i += 1
            continue
        tokens.append(_choose(phrase, before, after, _motion(tokens)))
        i += 1
    return _finish(tokens)


def _motion(tokens: Sequence[CommandToken]) -> bool:
    """Whether the command so far is a motion verb and its object: 'push (the block)'."""
    if not tokens or tokens[0].kind != 'VERB':
        return False
    # A verb the tables do not know (read by the tagger) may move things too: 'sweep'.
    return tokens[0].value in vocab.MOTION_ACTIONS or tokens[0].value not in _KNOWN_ACTIONS


def _choose(
    phrase: _Phrase, before: str | None, after: _Phrase | None, motion: bool = False
) -> CommandToken:
    kinds = [k for k, _ in phrase.senses]
    after_nominal = before in _NOMINAL_KINDS
    if 'DIRECTION' in kinds:
        # 'push left the block', 'push the block to the left'; elsewhere 'left' is the leftmost.
        starts_object = after is not None and after.has('DET', 'WORD', 'COLOUR', 'SIZE', 'NUMBER')
        if motion and ((before == 'VERB' and starts_object) or (after_nominal and after is None)):
            return CommandToken('DIRECTION', phrase.text, phrase.sense('DIRECTION'))
        kinds = [k for k in kinds if k != 'DIRECTION'] or ['WORD']
    if 'DET' in kinds and 'RELPRON' in kinds:  # 'that'
        kind = 'RELPRON' if after_nominal else 'DET'
    elif 'REL' in kinds and 'SUPERL' in kinds:  # 'nearest'
        starts_anchor = after is not None and after.has('DET', 'NUMBER')
        kind = 'REL' if starts_anchor else 'SUPERL'
    elif 'NUMBER' in kinds and 'ONE' in kinds:  # 'one'
        counts = after is not None and after.has('WORD', 'COLOUR', 'SIZE')
        kind = 'NUMBER' if counts else 'ONE'
    elif (
        kinds == ['WORD']
        and after_nominal
        and len(phrase.text) > 4
        and phrase.text.endswith('ing')
        and after is not None
        and after.has('DET', 'NUMBER')
    ):
        kind = 'DESC'  # 'the man riding a bike'
    else:
        kind = kinds[0]
    value = None if kind in ('WORD', 'DESC') or kind not in phrase.kinds else phrase.sense(kind)
    return CommandToken(kind, phrase.text, value)


def _finish(tokens: list[CommandToken]) -> list[CommandToken]:
    # 'and' before a relation or description joins it to the same subject; elsewhere it is
    # plain 'and' (between X and Y).
    for i, token in enumerate(tokens):
        if token.kind == 'AND' and i + 1 < len(tokens) and tokens[i + 1].kind in _LINK_START_KINDS:
            tokens[i] = CommandToken('COORD', token.text)
    # 'where the cup is', 'how many cups there are', 'pick the cup up': the last word adds
    # nothing.
    while len(tokens) > 1 and tokens[-1].kind in ('BE', 'PART'):
        tokens.pop()
    # 'a boy with a blue tie on': the 'on' of wearing, not a relation without its object.
    if (
        len(tokens) > 2
        and tokens[-1].text == 'on'
        and tokens[-2].kind in _NOMINAL_KINDS
        and any(t.kind in ('DESC', 'PART') for t in tokens[:-1])
    ):
        tokens.pop()
    # 'push the block towards the left': a direction, not the leftmost block.
    if (
        len(tokens) > 3
        and _motion(tokens)
        and tokens[-3].text in ('towards', 'toward')
        and tokens[-2].kind == 'DET'
        and tokens[-1].text in vocab.DIRECTION_PHRASES
    ):
        direction = tokens[-1].text
        del tokens[-3:]
        tokens.append(CommandToken('DIRECTION', direction, vocab.DIRECTION_PHRASES[direction]))
    # 'search in the corridor for the jar': what is looked for comes first.
    if len(tokens) > 3 and tokens[0].kind == 'VERB' and tokens[0].value == 'find':
        looked = next((k for k, t in enumerate(tokens) if t.text == 'for' and k > 1), None)
        if tokens[1].kind == 'REL' and looked is not None and looked + 1 < len(tokens):
            tokens[1:] = tokens[looked + 1 :] + tokens[1:looked]
    # 'rotate the block 90 degrees to the left': the angle is not part of the object.
    for i in range(len(tokens) - 1, 0, -1):
        if tokens[i - 1].kind == 'NUMBER' and tokens[i].text in ('degree', 'degrees'):
            del tokens[i - 1 : i + 1]
    # 'park in front of the black car', 'connect to the pc': the place is the object.
    if (
        len(tokens) > 2
        and tokens[0].kind == 'VERB'
        and (
            tokens[0].value in vocab.GOAL_ACTIONS
            or tokens[0].value not in _KNOWN_ACTIONS
            or (tokens[0].value == 'move' and tokens[1].kind == 'REL')
        )
        and tokens[1].kind in ('REL', 'DESC')
        and tokens[2].kind in ('DET', *_NOMINAL_KINDS)
    ):
        del tokens[1]
    if (
        len(tokens) > 2
        and tokens[0].kind == 'VERB'
        and tokens[0].value == 'pick_up'
        and tokens[-1].text == 'up'
    ):
        tokens.pop()
    return tokens


def tokenize_command(
    text: str | bytes, *, max_chars: int = MAX_COMMAND_CHARS
) -> list[CommandToken]:
    """The token stream the grammar sees (for `grounding-agent parse --tokens` and tests).

    Raises CommandError for text that cannot be a command (see `parse_command`).
    """
    return _tokens(_words(_decode(text, max_chars)))


def _tokens(
    words: list[str],
    tags: Sequence[WordTag] | None = None,
    antecedent: Sequence[str] | None = None,
) -> list[CommandToken]:
    rest, opener = _strip_leading(words)
    segments = _segment(rest)
    if tags is not None:
        segments = _retag(segments, tags[len(words) - len(rest) :], antecedent)
    tokens = _resolve(_fronted_place_last(segments), opener)
    if not tokens or (opener is None and not any(t.kind != 'DET' for t in tokens)):
        raise RefusedCommandError(
            f'nothing to do in {_clip(words)!r}: which object should I look for?'
        )
    return tokens


@dataclass(frozen=True, slots=True)
class WordTag:
    """What the tagger and dependency parser say of one word (spaCy's names)."""

    pos: str  # universal part of speech: NOUN, VERB, ADP, PRON, ...
    tag: str  # Penn tag: VB, VBG, VBN, NN, ...
    dep: str  # dependency label: ROOT, dobj, prt, acl, ...
    lemma: str


_ACTIONS = {**vocab.VERB_PHRASES, **vocab.ACTION_VERB_PHRASES}
_KNOWN_ACTIONS = frozenset(_ACTIONS.values())
_PARTICIPLE_TAGS = frozenset({'VBG', 'VBN', 'VBD', 'VBZ'})


def _stands_for_noun(phrase: _Phrase, tag: WordTag, before: Sequence[_Phrase]) -> bool:
    """'pick it up', 'the middle one': a pronoun as the object, or 'one' before any link."""
    if phrase.text in vocab.PRONOUNS and tag.pos == 'PRON':
        return len(before) == 1 and before[0].has('VERB')
    links = ('REL', 'BETWEEN', 'DESC', 'RELPRON', 'PART')
    return phrase.has('ONE') and not any(p.has(*links) for p in before)


def _retag(
    segments: list[_Phrase], tags: Sequence[WordTag], antecedent: Sequence[str] | None
) -> list[_Phrase]:
    """Categories for words the tables do not know, from the tagger: an unknown verb at the
    start is the action ('fold the towel'), a participle after a noun introduces a description
    ('a man jumping over the stairs'), a particle after the verb is dropped ('lift the lid off'),
    and a pronoun or 'one' takes the noun of the sentence before ('pick up the middle one')."""
    out: list[_Phrase] = []
    start = 0
    skip_next = False
    for index, phrase in enumerate(segments):
        tag = tags[start] if start < len(tags) else None
        start += len(phrase.text.split())
        if skip_next:
            skip_next = False
            continue
        after = segments[index + 1] if index + 1 < len(segments) else None
        unknown = phrase.kinds <= {'WORD'} or (
            phrase.text in vocab.NOT_NOUNS and phrase.kinds <= {'WORD', 'DIRECTION', 'ONE'}
        )
        content = [p for p in out if not p.has('FILLER')]
        if tag is None:
            out.append(phrase)
        elif (
            not content
            and unknown
            and (tag.pos == 'VERB' or tag.tag == 'VB')
            and not (after is not None and after.has('REL', 'BETWEEN', 'POSITION'))
            and phrase.text not in vocab.SHAPE_NOUNS
        ):
            # 'fold the towel', 'connect to the pc'; not 'cone behind the sphere'
            action = _ACTIONS.get(tag.lemma, tag.lemma)
            out.append(_Phrase.of(phrase.text, [('VERB', action)]))
        elif content and content[-1].has('VERB') and len(content) == 1 and tag.dep == 'prt':
            if phrase.has('DIRECTION'):
                out.append(phrase)
            else:
                out.append(_Phrase.of(phrase.text, [('FILLER', None)]))  # 'lift up the lid'
        elif antecedent and _stands_for_noun(phrase, tag, content):
            *colours, noun = antecedent
            if not (content and content[-1].has('COLOUR')):
                anywhere = _phrase_table()[0]
                out.extend(anywhere[c] for c in colours if c in anywhere)
            out.append(_Phrase.of(noun, [('WORD', None)]))
        elif unknown and content and tag.tag in _PARTICIPLE_TAGS and tag.pos in ('VERB', 'AUX'):
            follows_noun = content[-1].has('WORD', 'COLOUR', 'ONE')
            if not follows_noun:
                out.append(phrase)
            elif after is not None and after.has('POSITION') and not after.has('REL'):
                # 'a zebra running to the left': how it moves, not which one it is.
                out.append(_Phrase.of(f'{phrase.text} {after.text}', [('FILLER', None)]))
                skip_next = True
            elif after is None or after.has('REL', 'BETWEEN', 'POSITION', 'ATTR'):
                out.append(_Phrase.of(phrase.text, [('PART', None)]))
            else:
                out.append(_Phrase.of(phrase.text, [('DESC', None)]))
        elif unknown and content and tag.pos == 'ADP' and content[-1].has('WORD', 'ONE'):
            out.append(_Phrase.of(phrase.text, [('DESC', None)]))
        else:
            out.append(phrase)
    return out


# ---------------------------------------------------------------------------------------------
# 3. Parse


@lru_cache(maxsize=1)
def _command_parser() -> Lark:
    """The LALR parser of command.lark, built on first use (about 20 ms) and kept."""
    return Lark(_GRAMMAR_PATH.read_text(encoding='utf-8'), parser='lalr')


def _feed(tokens: Sequence[CommandToken]) -> Tree:  # type: ignore[type-arg]
    """Parse a token stream; lark tokens carry their index in `start_pos`."""
    parser = _command_parser().parse_interactive()
    for index, token in enumerate(tokens):
        parser.feed_token(Token(token.kind, token.text, index))  # type: ignore[no-untyped-call]
    tree = parser.feed_eof()  # type: ignore[no-untyped-call]
    assert isinstance(tree, Tree)
    return tree


# ---------------------------------------------------------------------------------------------
# 4. Attach


@dataclass
class _Nominal:
    """A noun phrase while it is being built (ObjectRef is frozen)."""

    dets: list[CommandToken]
    items: list[CommandToken]
    predicates: list[CommandToken] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    ranks: list[CommandToken] = field(default_factory=list)
    relations: list[tuple[Relation, list[_Nominal], bool]] = field(default_factory=list)
    without: list[_Nominal] = field(default_factory=list)

    def surface(self) -> str:
        return ' '.join(t.text for t in [*self.dets, *self.items])

    def head(self) -> CommandToken | None:
        heads = [t for t in self.items if t.kind in ('WORD', 'ONE')]
        return heads[-1] if heads else None


@dataclass
class _Link:
    kind: str  # relation, between, description, position, attribute, rank, predicate
    coordinated: bool
    word: CommandToken | None  # REL, BETWEEN, DESC, POSITION, ATTR, SUPERL / COMPAR
    anchors: list[_Nominal] = field(default_factory=list)
    predicates: list[CommandToken] = field(default_factory=list)
    clause: bool = False  # introduced by 'that is', 'which', 'sitting', ...
    negated: bool = False  # 'not on the tray'
    ordinal: CommandToken | None = None  # 'that is second from the left'


@dataclass
class _Sentence:
    kind: QueryKind
    action: str
    links: list[_Link]
    target: _Nominal | None  # None: 'what is left of the cup'
    direction: str | None = None


_QUESTION_RULES = {
    'count': QueryKind.COUNT,
    'exists': QueryKind.EXISTS,
    'verify': QueryKind.VERIFY_RELATION,
    'what': QueryKind.WHAT,
    'which': QueryKind.WHICH,
}
_LINK_WORDS = frozenset({'REL', 'BETWEEN', 'DESC', 'POSITION', 'ATTR', 'SUPERL', 'COMPAR'})


class _TreeToSentence(Transformer):  # type: ignore[type-arg]
    """lark tree -> _Sentence; token payloads are looked up by their index."""

    def __init__(self, tokens: Sequence[CommandToken]) -> None:
        super().__init__()
        self._tokens = tokens

    def _token(self, leaf: Token) -> CommandToken:
        return self._tokens[int(leaf.start_pos)]

    def nominal(self, children: list[Token]) -> _Nominal:
        tokens = [self._token(c) for c in children]
        return _Nominal(
            dets=[t for t in tokens if t.kind == 'DET'],
            items=[t for t in tokens if t.kind != 'DET'],
        )

    def target(self, children: list[Any]) -> tuple[_Nominal, list[_Link]]:
        return children[0], list(children[1:])

    def _link(self, kind: str, children: list[Any]) -> _Link:
        leaves = [self._token(c) for c in children if isinstance(c, Token)]
        word = next((t for t in leaves if t.kind in _LINK_WORDS), None)
        return _Link(
            kind=kind,
            coordinated=any(t.kind == 'COORD' for t in leaves),
            word=word,
            anchors=[c for c in children if isinstance(c, _Nominal)],
            predicates=[t for t in leaves if t.kind in ('WORD', 'COLOUR', 'SIZE')],
            clause=any(t.kind in ('RELPRON', 'PART') for t in leaves),
            negated=any(t.kind == 'NEG' for t in leaves),
            ordinal=next((t for t in leaves if t.kind == 'ORDINAL'), None),
        )

    def _sentence(self, kind: QueryKind, action: str, children: list[Any]) -> _Sentence:
        target = next((c for c in children if isinstance(c, tuple)), None)
        if target is None:
            return _Sentence(kind, action, [c for c in children if isinstance(c, _Link)], None)
        return _Sentence(kind, action, target[1], target[0])

    def locate(self, children: list[Any]) -> _Sentence:
        leaves = [self._token(c) for c in children if isinstance(c, Token)]
        verb = next((t for t in leaves if t.kind == 'VERB'), None)
        action = 'find' if verb is None else str(verb.value)
        kind = QueryKind.TRACK if action == 'track' else QueryKind.LOCATE
        sentence = self._sentence(kind, action, children)
        direction = next((t for t in leaves if t.kind == 'DIRECTION'), None)
        sentence.direction = None if direction is None else str(direction.value)
        return sentence

    def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
        # relation_link, between_link, ... and the question rules differ only by name.
        rule = str(data)
        if rule.endswith('_link'):
            return self._link(rule.removesuffix('_link'), children)
        if rule in _QUESTION_RULES:
            return self._sentence(_QUESTION_RULES[rule], 'ask', children)
        raise CommandError(f'the command grammar has a rule the parser cannot read: {rule}')

    def start(self, children: list[Any]) -> _Sentence:
        sentence = children[0]
        assert isinstance(sentence, _Sentence)
        return sentence


def _is_description(link: _Link) -> bool:
    """'in' + clothing or a bare colour describes the object: 'the person in the red shirt'."""
    if link.kind != 'relation' or link.word is None or link.word.text != 'in':
        return False
    anchor = link.anchors[0]
    head = anchor.head()
    if head is None:
        return any(t.kind == 'COLOUR' for t in anchor.items)  # 'the man in black'
    return (
        head.text in vocab.CLOTHING_NOUNS or vocab.singular_noun(head.text) in vocab.CLOTHING_NOUNS
    )


def _describe(link: _Link) -> str:
    assert link.word is not None
    joiner = ['and'] if link.coordinated else []
    return ' '.join([*joiner, link.word.text, *(a.surface() for a in link.anchors)])


def _attach(subject: _Nominal, links: Sequence[_Link]) -> _Nominal:
    """Hang every link on its noun; return the noun the last link left off at."""
    last = subject  # the nearest noun so far: relations attach here (right-branching)
    previous = subject  # what the link before attached to: 'and ...' attaches here too
    for link in links:
        node = previous if link.coordinated else last
        if link.kind in ('relation', 'between') and not _is_description(link):
            assert link.word is not None
            anchors = link.anchors
            if link.kind == 'between' and len(anchors) == 1:
                anchors = [anchors[0], anchors[0]]  # 'between the two boxes'
            if any(_is_pronoun(a) for a in anchors):
                node.descriptions.append(_describe(link))  # 'the bowl with salad in it'
                previous = node
                continue
            node.relations.append((link.word.value, anchors, link.negated))
            previous, last = node, anchors[-1]
        elif link.kind in ('relation', 'description'):
            nothing = bool(link.anchors) and _head_noun(link.anchors[0]) in _NOTHING
            if (
                link.word is not None
                and link.anchors
                and (
                    link.word.text == 'without'
                    or (link.kind == 'description' and (link.negated or nothing))
                )
            ):
                # 'the one without a lid', 'the person not holding anything': the resolver
                # rules out candidates with that part; the detector looks for the object.
                node.without.append(link.anchors[0])
                previous = node
                continue
            if _merges_of(node, link):
                node.items.extend(link.anchors[0].items)  # 'the second of the cups'
            else:
                node.descriptions.append(_describe(link))
            previous = node
        elif link.kind in ('position', 'rank'):
            if link.ordinal is not None:
                node.items.append(link.ordinal)  # 'the cup that is second from the left'
            if link.word is not None:
                node.ranks.append(link.word)
            previous = node
        elif link.kind == 'attribute':
            assert link.word is not None
            node.descriptions.append(link.word.text)
            previous = node
        else:  # predicate: 'the cup that is red'
            node.predicates.extend(link.predicates)
            previous = node
    return last


# 'holding nothing' is 'not holding anything'.
_NOTHING = frozenset({'nothing', 'no one', 'nobody'})


def _is_pronoun(nominal: _Nominal) -> bool:
    head = nominal.head()
    return head is not None and head.text in vocab.PRONOUNS and not nominal.items[:-1]


def _merges_of(node: _Nominal, link: _Link) -> bool:
    return (
        link.word is not None
        and link.word.text == 'of'
        and node.head() is None
        and not node.relations
        and any(t.kind in ('ORDINAL', 'SUPERL', 'COMPAR', 'NUMBER') for t in node.items)
    )


# ---------------------------------------------------------------------------------------------
# Nominal -> ObjectRef


def _ordinal(nominal: _Nominal, modifiers: list[str]) -> Ordinal | None:
    """Combine 'second', 'largest', 'from the left' into one Ordinal (the first order wins)."""
    index = next((int(t.value) for t in nominal.items if t.kind == 'ORDINAL'), None)
    orders = [t for t in nominal.items if t.kind in ('SUPERL', 'COMPAR')] + nominal.ranks
    if not orders:
        return None if index is None else Ordinal(index, OrdinalOrder.ORDER)
    first = orders[0]
    # Orders that cannot be combined with the first stay in the text for the model.
    modifiers.extend(t.text for t in orders[1:])
    if first.kind == 'POSITION':
        order, counted_from = first.value
    else:
        order, counted_from = first.value, True
    if index is None:
        return Ordinal(1, order)
    if index < 0 and not counted_from:
        index = -index  # 'the last cup on the right' is the rightmost; 'second to last' ...
    return Ordinal(index, order)


def _freeze(nominal: _Nominal, *, what: bool = False, anchor: bool = False) -> ObjectRef:
    items = nominal.items
    heads = [i for i, t in enumerate(items) if t.kind in ('WORD', 'ONE')]
    head_index = heads[-1] if heads else None
    noun: str | None = None
    plural = False
    if head_index is not None and items[head_index].kind == 'WORD':
        head_text = items[head_index].text
        if head_text in vocab.NOT_NOUNS and not (anchor and head_text in vocab.PERSON_WORDS):
            raise CommandError(f"'{head_text}' does not name an object: which object do you mean?")
        noun = vocab.singular_noun(head_text)
        plural = noun != head_text
    elif head_index is not None:
        plural = items[head_index].text == 'ones'
    elif items and items[-1].kind == 'COLOUR' and items[-1].text in vocab.COLOUR_NOUNS:
        head_index = len(items) - 1  # 'the orange' is the fruit
        noun = items[-1].text
    elif not (
        what or nominal.ranks or any(t.kind in ('ORDINAL', 'SUPERL', 'COMPAR') for t in items)
    ):
        shown = nominal.surface() or 'the command'
        raise CommandError(f"no object named in '{shown}': which object do you mean?")
    if what and noun in vocab.ANY_OBJECT_NOUNS:
        noun = None  # 'what objects are on the table'

    # The detector text: the words as written, the head last, predicates ('that is red')
    # before the head; articles, counts, ordinals and superlatives left out.
    def words(part: Sequence[CommandToken]) -> list[CommandToken]:
        return [t for t in part if t.kind in ('WORD', 'COLOUR', 'SIZE')]

    if head_index is None:
        described = [*words(items), *nominal.predicates]
        written = [t.text for t in described]
    else:
        # Only colours and sizes can follow the head ('is the cup red'): they go before it.
        described = [*words(items[:head_index]), *nominal.predicates]
        described += words(items[head_index + 1 :])
        named = [] if noun is None else [noun]  # singular: one text per kind of object
        written = [*(t.text for t in described), *named]

    colours = list(dict.fromkeys(t.value for t in described if t.kind == 'COLOUR'))
    said = [t.text for t in described if t.kind == 'COLOUR']
    said += [w for t in described if t.kind == 'WORD' and ' and ' in t.text for w in _pattern(t)]
    sizes = list(dict.fromkeys(t.value for t in described if t.kind == 'SIZE'))
    colour = colours[0] if len(colours) == 1 else None
    size = sizes[0] if len(sizes) == 1 else None
    modifiers = [
        t.text
        for t in described
        if t.kind == 'WORD'
        or (t.kind == 'COLOUR' and colour is None)
        or (t.kind == 'SIZE' and size is None)
    ]
    modifiers.extend(nominal.descriptions)
    ordinal = _ordinal(nominal, modifiers)

    numbers = [int(t.value) for t in items if t.kind == 'NUMBER']
    dets = {t.text for t in nominal.dets}
    plural = plural or any(n > 1 for n in numbers) or bool(dets & vocab.PLURAL_DETERMINERS)
    if dets & _SINGULAR_DETERMINERS or (ordinal is not None and not any(n > 1 for n in numbers)):
        plural = False  # 'one of the cups', 'the second of the cups': one object
    if noun is None and (written or nominal.descriptions or not what):
        # 'the red one' is looked for as 'red object'; 'what is on the table' asks for anything.
        written.append(vocab.GENERIC_PHRASE)
    phrase = ' '.join([*written, *nominal.descriptions])
    relations = tuple(_constraint(*relation) for relation in nominal.relations)
    if noun is not None:
        relations = tuple(_other_one(c, noun) for c in relations)
    parts = (_head_noun(w) for w in nominal.without)
    without = tuple('anything' if n in _NOTHING else n for n in parts if n is not None)
    # 'a non-glass cup': glass is what it must not be.
    without += tuple(m[4:] for m in modifiers if m.startswith('non-') and len(m) > 4)
    return ObjectRef(
        phrase=phrase,
        noun=noun,
        colour=colour,
        size=size,
        shape=vocab.SHAPE_NOUNS.get(noun) if noun is not None else None,
        modifiers=tuple(modifiers),
        relations=relations,
        ordinal=ordinal,
        plural=plural,
        colours=tuple(dict.fromkeys(said)),
        without=without,
    )


def _other_one(constraint: RelationConstraint, noun: str) -> RelationConstraint:
    """'the block on top of the other one': 'one' stands for the subject's noun."""
    anchors = tuple(
        dataclasses.replace(
            a, noun=noun, phrase=noun, modifiers=tuple(m for m in a.modifiers if m != 'other')
        )
        if a.noun is None and 'other' in a.modifiers
        else a
        for a in constraint.anchors
    )
    return dataclasses.replace(constraint, anchors=anchors)


def _pattern(token: CommandToken) -> list[str]:
    """The colour words of a pattern token ('white and pink')."""
    anywhere = _phrase_table()[0]
    return [w for w in token.text.split(' and ') if w in anywhere and anywhere[w].has('COLOUR')]


def _head_noun(nominal: _Nominal) -> str | None:
    head = nominal.head()
    if head is None:
        return None
    return vocab.singular_noun(head.text) if head.kind == 'WORD' else head.text


def _constraint(
    relation: Relation, anchors: Sequence[_Nominal], negated: bool = False
) -> RelationConstraint:
    refs = tuple(_freeze(a, anchor=True) for a in anchors)
    if len(anchors) == 2 and anchors[0] is anchors[1]:
        # 'between the two boxes': two anchors, each one box.
        refs = tuple(dataclasses.replace(r, plural=False) for r in refs)
    return RelationConstraint(relation, refs, negated)


def _build(sentence: _Sentence, text: str, rest: str) -> Query:
    """_Sentence -> Query; `rest` is trailing text the grammar could not place."""
    kind = sentence.kind
    question: tuple[Relation, list[_Nominal], bool] | None = None
    target = sentence.target if sentence.target is not None else _Nominal([], [])
    links = sentence.links
    if kind is QueryKind.VERIFY_RELATION:
        # The relation asked about is the first one said without 'that is' / 'sitting'
        # ('is the cup that is on the table left of the plate'), else the last one ('are the
        # cups sitting on the table'); relations after it describe its anchor.
        asked = [
            i
            for i, link in enumerate(links)
            if link.kind in ('relation', 'between')
            and not link.coordinated
            and not _is_description(link)
        ]
        plain = [i for i in asked if not links[i].clause]
        if not asked:
            kind = QueryKind.EXISTS  # 'is the cup red?' asks whether there is a red cup
        else:
            k = plain[0] if plain else asked[-1]
            _attach(target, links[:k])
            probe = _Nominal([], [])
            last = _attach(probe, links[k:])
            if len(probe.relations) > 1:
                raise RefusedCommandError(
                    f"ask about one relation at a time: '{text}' asks about several; which "
                    'one should I check?'
                )
            question = probe.relations[0]
            # Anything else said of the subject after the question ('... and red') filters it.
            target.predicates.extend(probe.predicates)
            target.descriptions.extend(probe.descriptions)
            target.ranks.extend(probe.ranks)
            links = []
            if rest:
                last.descriptions.append(rest)
                rest = ''
        head = target.head()
        if head is not None and head.text in ('anything', 'something'):
            kind = QueryKind.EXISTS  # 'is anything left of the cup?'
    destination = None
    if kind is QueryKind.LOCATE:
        # The first place a placing action names is where the object goes; what follows
        # describes that place ('on the sink nearest to the refrigerator').
        found = [k for k, link in enumerate(links) if _is_destination(sentence.action, link)]
        if found:
            k = found[0]
            place = links[k]
            assert place.word is not None
            relation = _DESTINATION_WORDS.get(place.word.text, place.word.value)
            _attach(place.anchors[-1], links[k + 1 :])
            destination = _constraint(relation, place.anchors[:1])
            links = links[:k]
    last = _attach(target, links)
    if rest:
        last.descriptions.append(rest)
    ref = _freeze(target, what=kind is QueryKind.WHAT)
    if kind is QueryKind.COUNT:
        ref = dataclasses.replace(ref, plural=True)
    question_relation = None
    if question is not None:
        question_relation = _constraint(*question)
        if kind is not QueryKind.VERIFY_RELATION:
            ref = dataclasses.replace(ref, relations=(*ref.relations, question_relation))
            question_relation = None
    return Query(
        kind=kind,
        text=text,
        target=ref,
        action=sentence.action,
        question_relation=question_relation,
        destination=destination,
        direction=sentence.direction,
    )


# Prepositions that name where an action puts the object ('put the cup into the sink').
_DESTINATION_WORDS = {
    'into': Relation.INSIDE,
    'to': Relation.NEAR,
    'toward': Relation.NEAR,
    'towards': Relation.NEAR,
}


def _is_destination(action: str, link: _Link) -> bool:
    """Whether `link` names where a placing action puts its object ('in the drawer')."""
    if link.coordinated or link.clause or link.negated or link.word is None or not link.anchors:
        return False
    word = link.word.text
    if word == 'from' or any(_is_pronoun(a) for a in link.anchors):
        return False  # 'from the bed' is where the object is now
    if action not in vocab.PLACING_ACTIONS and not (
        action in vocab.CARRYING_ACTIONS and word in ('onto', *_DESTINATION_WORDS)
    ):
        return False
    if link.kind == 'relation':
        return not _is_description(link)
    return link.kind == 'description' and word in _DESTINATION_WORDS


# ---------------------------------------------------------------------------------------------
# Errors an operator can act on


def _surface(tokens: Sequence[CommandToken]) -> str:
    return ' '.join(t.text for t in tokens)


def _clip(words: Sequence[str], limit: int = 60) -> str:
    text = ' '.join(words)
    return text if len(text) <= limit else text[: limit - 3] + '...'


def _error_at(tokens: Sequence[CommandToken], index: int) -> CommandError:
    """A readable reason for a token the grammar cannot place (index == len: the end)."""
    if index >= len(tokens):
        last = tokens[-1]
        if tokens[0].kind == 'VERB' and not any(t.kind in _NOMINAL_KINDS for t in tokens):
            verb = tokens[0].text
            return RefusedCommandError(f"'{verb}' needs an object: which object should I {verb}?")
        if last.kind == 'VERB':
            return RefusedCommandError(
                f"'{last.text}' needs an object: which object should I {last.text}?"
            )
        if last.kind in ('REL', 'BETWEEN', 'DESC', 'AND'):
            return RefusedCommandError(
                f"'{_surface(tokens)}' stops after '{last.text}': {last.text} which object?"
            )
        if last.kind in _QUESTION_TERMINALS.values() or last.kind == 'BE':
            return RefusedCommandError(
                f"the question '{_surface(tokens)}' names no object: which object do you mean?"
            )
        return RefusedCommandError(
            f"'{_surface(tokens)}' stops after '{last.text}': which object do you mean?"
        )
    token = tokens[index]
    before = _surface(tokens[:index])
    if tokens[0].kind in _QUESTION_TERMINALS.values() or tokens[0].kind == 'BE':
        return RefusedCommandError(
            f"cannot understand '{token.text}' in the question '{_surface(tokens)}'; questions "
            "look like 'how many cups are there', 'is there a red ball', 'is the cup left of "
            "the plate', 'what is left of the cup', 'which cup is closest'"
        )
    if not any(t.kind in _NOMINAL_KINDS for t in tokens[:index]):
        return RefusedCommandError(
            f"'{token.text}' needs an object before it: which object is {token.text} something?"
        )
    return CommandError(f"cannot understand '{token.text}' after '{before}'")


def _parse_tokens(tokens: list[CommandToken]) -> tuple[_Sentence, str]:
    """Parse; a command that does not fit the grammar to the end keeps its longest parsable
    beginning and carries the rest as free description text."""
    try:
        tree = _feed(tokens)
        return _TreeToSentence(tokens).transform(tree), ''
    except UnexpectedToken as exc:
        bad: Token = exc.token  # type: ignore[attr-defined]
        at_end = bad.type == '$END'
        index = len(tokens) if at_end else int(bad.start_pos)
        if at_end or tokens[0].kind in (*_QUESTION_TERMINALS.values(), 'BE'):
            raise _error_at(tokens, index) from exc
        for cut in range(index, 0, -1):
            try:
                tree = _feed(tokens[:cut])
            except UnexpectedToken:
                continue
            rest = _surface(tokens[cut:])
            return _TreeToSentence(tokens).transform(tree), rest
        raise _error_at(tokens, index) from exc


def parse_command(
    text: str | bytes, *, max_chars: int = MAX_COMMAND_CHARS, reader: bool = True
) -> Query:
    """Parse an operator command into a Query.

    The grammar reads the sentences it parses completely (fast and deterministic); the reader
    (`core/reader.py`, spaCy's tagger and dependency parser) reads the rest: sentences the
    grammar refuses or reads suspiciously (a verb or participle as the object, words it could
    not place) and instructions of several sentences. `reader=False` keeps to the grammar.

    Raises CommandError (grounding_agent.core.errors) with a clear reason for empty, garbage,
    over-long or non-UTF-8 input, and a clarifying question ending in '?' when no object can be
    named. Never any other exception.
    """
    original = _decode(text, max_chars).strip()
    words = _words(original)
    if reader and len(split_sentences(original)) > 1:
        from grounding_agent.core import reader as open_reader

        try:
            return open_reader.read_command(original)
        except open_reader.ReaderUnavailableError:
            # No spaCy here: the last sentence the grammar reads alone is the request.
            for sentence in reversed(split_sentences(original)):
                try:
                    alone = parse_command(sentence, max_chars=max_chars, reader=False)
                except CommandError:
                    continue
                return dataclasses.replace(alone, text=original)
    problem: CommandError | None = None
    try:
        query, complete = grammar_parse(words, original)
    except RefusedCommandError:
        raise  # incomplete or several commands: the reader could only guess
    except CommandError as exc:
        if not reader:
            raise
        complete, query, problem = False, None, exc
    if complete or not reader:
        assert query is not None
        return query
    from grounding_agent.core import reader as open_reader

    try:
        return open_reader.read_command(original, fallback=query)
    except open_reader.ReaderUnavailableError:
        if query is not None:
            return query  # the grammar's own reading, as before the reader existed
        assert problem is not None
        raise problem from None


# Nouns that end like a past participle.
_NOUNS_IN_ED = frozenset({'bed', 'shed', 'sled', 'seed', 'reed', 'weed', 'steed', 'flatbed'})


def _anchor_nouns(ref: ObjectRef) -> list[str]:
    return [
        noun
        for constraint in ref.relations
        for anchor in constraint.anchors
        for noun in [anchor.noun or '', *_anchor_nouns(anchor)]
    ]


_SENTENCE_END_RE = re.compile(r'(?<=[.!?;])\s+(?=\S)')


def split_sentences(text: str) -> list[str]:
    """Split on sentence punctuation followed by more text ('There are three blocks. Pick ...')."""
    parts = [p.strip() for p in _SENTENCE_END_RE.split(text)]
    return [p for p in parts if any(c.isalpha() for c in p)]


def grammar_parse(
    words: list[str],
    text: str,
    tags: Sequence[WordTag] | None = None,
    antecedent: Sequence[str] | None = None,
) -> tuple[Query, bool]:
    """The grammar's reading of `words`, and whether it is complete and plausible.

    Incomplete: words the grammar could not place, or an object noun that looks like a verb
    form ('jumping', 'parked'), which the reader checks with the tagger.
    """
    tokens = _tokens(words, tags, antecedent)
    try:
        sentence, rest = _parse_tokens(tokens)
        query = _build(sentence, text, rest)
    except LarkError as exc:  # a grammar the tables cannot feed: report, never crash
        raise CommandError(f'cannot parse {text!r}: {exc}') from exc
    nouns = [query.target.noun or '', *_anchor_nouns(query.target)]
    verb_like = tags is None and any(
        (len(noun) > 4 and noun.endswith('ing'))
        or (len(noun) > 2 and noun.endswith('ed') and noun not in _NOUNS_IN_ED)
        for noun in nouns
    )
    # A bare first word followed by a preposition or an article may be a verb the tables do not
    # know ('connect to the pc', 'fold the towel') or a noun ('man in a red shirt').
    bare_start = (
        tags is None
        and len(tokens) > 1
        and tokens[0].kind == 'WORD'
        and tokens[1].kind in ('DESC', 'REL', 'DET', 'BETWEEN', 'NUMBER')
    )
    return query, not rest and not verb_like and not bare_start


# ---------------------------------------------------------------------------------------------
# JSON


def _ref_to_dict(ref: ObjectRef) -> dict[str, Any]:
    return {
        'phrase': ref.phrase,
        'noun': ref.noun,
        'colour': ref.colour,
        'colours': list(ref.colours),
        'size': ref.size,
        'shape': ref.shape,
        'modifiers': list(ref.modifiers),
        'plural': ref.plural,
        'ordinal': (
            None
            if ref.ordinal is None
            else {'index': ref.ordinal.index, 'order': ref.ordinal.order.value}
        ),
        'relations': [_constraint_to_dict(c) for c in ref.relations],
        'without': list(ref.without),
    }


def _constraint_to_dict(constraint: RelationConstraint) -> dict[str, Any]:
    return {
        'relation': constraint.relation.value,
        'negated': constraint.negated,
        'anchors': [_ref_to_dict(a) for a in constraint.anchors],
    }


def _destination_to_dict(constraint: RelationConstraint | None) -> dict[str, Any] | None:
    """The place an action puts the target: its object, plus the relation to it."""
    if constraint is None:
        return None
    return {**_ref_to_dict(constraint.anchors[0]), 'relation': constraint.relation.value}


def query_to_dict(query: Query) -> dict[str, Any]:
    """A JSON-able dict of `query` (enums as their string values, tuples as lists)."""
    return {
        'kind': query.kind.value,
        'action': query.action,
        'text': query.text,
        'target': _ref_to_dict(query.target),
        'question_relation': (
            None
            if query.question_relation is None
            else _constraint_to_dict(query.question_relation)
        ),
        'destination': _destination_to_dict(query.destination),
        'direction': query.direction,
        'phrases': query.phrases(),
    }


def _ref_from_dict(data: Any) -> ObjectRef:
    ordinal = data.get('ordinal')
    return ObjectRef(
        phrase=str(data['phrase']),
        noun=data.get('noun'),
        colour=data.get('colour'),
        size=data.get('size'),
        shape=data.get('shape'),
        modifiers=tuple(str(m) for m in data.get('modifiers', ())),
        relations=tuple(_constraint_from_dict(c) for c in data.get('relations', ())),
        ordinal=(
            None
            if ordinal is None
            else Ordinal(int(ordinal['index']), OrdinalOrder(ordinal['order']))
        ),
        plural=bool(data.get('plural', False)),
        colours=tuple(str(c) for c in data.get('colours', ())),
        without=tuple(str(w) for w in data.get('without', ())),
    )


def _constraint_from_dict(data: Any) -> RelationConstraint:
    return RelationConstraint(
        Relation(data['relation']),
        tuple(_ref_from_dict(a) for a in data['anchors']),
        bool(data.get('negated', False)),
    )


def query_from_dict(data: Any) -> Query:
    """The inverse of `query_to_dict` (for planners that send a parsed query as JSON).

    Raises CommandError naming the problem when `data` is not such a dict.
    """
    try:
        relation = data.get('question_relation')
        destination = data.get('destination')
        direction = data.get('direction')
        return Query(
            kind=QueryKind(data['kind']),
            text=str(data.get('text', '')),
            target=_ref_from_dict(data['target']),
            action=str(data.get('action', 'find')),
            question_relation=None if relation is None else _constraint_from_dict(relation),
            destination=(
                None
                if destination is None
                else RelationConstraint(
                    Relation(destination['relation']), (_ref_from_dict(destination),)
                )
            ),
            direction=None if direction is None else str(direction),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CommandError(f'not a parsed query: {type(exc).__name__}: {exc}') from exc
