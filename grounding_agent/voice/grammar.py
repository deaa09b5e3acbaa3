"""The spoken-command grammar, generated from the parser's word tables (core/vocabulary.py).

One grammar object serves three purposes, so they cannot disagree: it is written out as JSGF for
the pocketsphinx decoder, it tells whether a recognised text is a complete sentence of the
grammar (a grammar decoder can stop inside a sentence), and it samples random sentences for the
test that proves every sentence it can produce parses. Object names come from configuration;
every other word comes from the vocabulary tables, filtered by what the recogniser can say.
Only the sentence frames ('how many ... are there') are written here, and each frame is offered
only while the parser's tables still give its opening words the meaning the frame needs.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

from grounding_agent.core import vocabulary
from grounding_agent.core.types import QueryKind, Relation
from grounding_agent.voice.dictionary import PronunciationDictionary, WordCoverage
from grounding_agent.voice.errors import VoiceConfigError

__all__ = [
    'DEFAULT_OBJECTS',
    'REPLIES',
    'Alt',
    'CommandGrammar',
    'GrammarSample',
    'Opt',
    'RuleRef',
    'Seq',
    'SlotFill',
    'Token',
    'build_command_grammar',
    'default_objects',
    'normalize_text',
]

# Household objects a tabletop robot meets, added to the vocabulary's shape nouns by default.
DEFAULT_OBJECTS: tuple[str, ...] = (
    'mug',
    'cup',
    'bottle',
    'laptop',
    'box',
    'ball',
    'person',
    'chair',
    'table',
    'plate',
)

_LOG = logging.getLogger(__name__)
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_VOWEL_PHONES = frozenset(
    {'AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'EH', 'ER', 'EY', 'IH', 'IY', 'OW', 'OY', 'UH', 'UW'}
)


def default_objects() -> tuple[str, ...]:
    """The object names offered when none are configured: shape nouns + household objects."""
    return tuple(dict.fromkeys([*vocabulary.SHAPE_NOUNS, *DEFAULT_OBJECTS]))


def normalize_text(text: str) -> str:
    """Lower case, punctuation stripped, single spaces: the form commands are compared in."""
    return ' '.join(_WORD_RE.findall(text.lower()))


# ---------------------------------------------------------------------------------------------
# Grammar expressions: the JSGF subset we need, without recursion.


@dataclass(frozen=True)
class Token:
    """A literal run of words ('pick up')."""

    text: str


@dataclass(frozen=True)
class Seq:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Alt:
    options: tuple[Expr, ...]


@dataclass(frozen=True)
class Opt:
    item: Expr


@dataclass(frozen=True)
class RuleRef:
    name: str


Expr: TypeAlias = Token | Seq | Alt | Opt | RuleRef


def _seq(*items: Expr | str) -> Seq:
    return Seq(tuple(Token(i) if isinstance(i, str) else i for i in items))


def _alt(options: Iterable[Expr | str]) -> Alt:
    return Alt(tuple(Token(o) if isinstance(o, str) else o for o in options))


@dataclass(frozen=True)
class SlotFill:
    """Words one slot produced in a sampled sentence; `parents` are the enclosing rules."""

    slot: str
    words: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class GrammarSample:
    """A random sentence of the grammar with the words each slot (verb, colour...) produced."""

    text: str
    slots: tuple[SlotFill, ...]

    def first(
        self, slot: str, *, inside: str | None = None, outside: str | None = None
    ) -> str | None:
        """Words of the first fill of `slot`, optionally only inside / outside a rule."""
        for fill in self.slots:
            if fill.slot != slot:
                continue
            if inside is not None and inside not in fill.parents:
                continue
            if outside is not None and outside in fill.parents:
                continue
            return fill.words
        return None


@dataclass(frozen=True)
class CommandGrammar:
    """A JSGF-style grammar with one public rule, plus the words the recogniser must add.

    `slot_of` maps rule names to the slot their words fill ('colour_an' -> 'colour').
    `pronunciations` holds words missing from the recogniser's dictionary with a derived
    pronunciation; `dropped` the vocabulary phrases left out, each with the reason (a word the
    recogniser cannot pronounce, or a homophone of a phrase that stays).
    """

    name: str
    public_rule: str
    rules: Mapping[str, Expr]
    slot_of: Mapping[str, str] = field(default_factory=dict)
    pronunciations: Mapping[str, str] = field(default_factory=dict)
    dropped: Mapping[str, str] = field(default_factory=dict)
    wake_word: str = ''
    command_rule: str = ''

    def to_jsgf(self) -> str:
        lines = ['#JSGF V1.0;', f'grammar {self.name};', '']
        for rule_name, expr in self.rules.items():
            prefix = 'public ' if rule_name == self.public_rule else ''
            lines.append(f'{prefix}<{rule_name}> = {_jsgf(expr, top=True)};')
        return '\n'.join(lines) + '\n'

    def words(self) -> frozenset[str]:
        """Every word the grammar can produce."""
        return frozenset(
            word
            for expr in self.rules.values()
            for token in _tokens(expr)
            for word in token.text.split()
        )

    def phrases(self, rule: str) -> tuple[str, ...]:
        """The literal alternatives of a word-list rule ('colour' -> ('red', 'orange', ...))."""
        expr = self.rules[rule]
        options = expr.options if isinstance(expr, Alt) else (expr,)
        return tuple(o.text for o in options if isinstance(o, Token))

    def matches(self, text: str) -> bool:
        """True when `text` (normalised) is a complete sentence of the public rule."""
        return self._regex.fullmatch(normalize_text(text) + ' ') is not None

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self._pattern(RuleRef(self.public_rule)))

    def _pattern(self, expr: Expr) -> str:
        # Every word carries its trailing space, so optional parts need no special spacing.
        if isinstance(expr, Token):
            return ''.join(re.escape(word) + ' ' for word in expr.text.split())
        if isinstance(expr, Seq):
            return ''.join(self._pattern(item) for item in expr.items)
        if isinstance(expr, Alt):
            return '(?:' + '|'.join(self._pattern(o) for o in expr.options) + ')'
        if isinstance(expr, Opt):
            return '(?:' + self._pattern(expr.item) + ')?'
        return self._pattern(self.rules[expr.name])

    def sample(self, rng: random.Random) -> GrammarSample:
        """One random command (uniform over alternatives, optional parts half the time); the
        replies to a question ('yes', 'no') are not commands and are never sampled."""
        words: list[str] = []
        slots: list[SlotFill] = []
        rule = self.command_rule or self.public_rule
        self._expand(RuleRef(rule), rng, words, slots, ())
        return GrammarSample(' '.join(words), tuple(slots))

    def _expand(
        self,
        expr: Expr,
        rng: random.Random,
        words: list[str],
        slots: list[SlotFill],
        parents: tuple[str, ...],
    ) -> None:
        if isinstance(expr, Token):
            words.extend(expr.text.split())
        elif isinstance(expr, Seq):
            for item in expr.items:
                self._expand(item, rng, words, slots, parents)
        elif isinstance(expr, Alt):
            self._expand(rng.choice(expr.options), rng, words, slots, parents)
        elif isinstance(expr, Opt):
            if rng.random() < 0.5:
                self._expand(expr.item, rng, words, slots, parents)
        else:
            start = len(words)
            self._expand(self.rules[expr.name], rng, words, slots, (*parents, expr.name))
            slot = self.slot_of.get(expr.name)
            if slot is not None:
                slots.append(SlotFill(slot, ' '.join(words[start:]), parents))


def _tokens(expr: Expr) -> Iterator[Token]:
    if isinstance(expr, Token):
        yield expr
    elif isinstance(expr, Seq):
        for item in expr.items:
            yield from _tokens(item)
    elif isinstance(expr, Alt):
        for option in expr.options:
            yield from _tokens(option)
    elif isinstance(expr, Opt):
        yield from _tokens(expr.item)


def _jsgf(expr: Expr, *, top: bool = False) -> str:
    # pocketsphinx keeps the quotes of a quoted JSGF token as part of the word, so words go out
    # bare; normalize_text lets only letters, digits and an inner apostrophe through.
    if isinstance(expr, Token):
        return expr.text
    if isinstance(expr, RuleRef):
        return f'<{expr.name}>'
    if isinstance(expr, Opt):
        return f'[{_jsgf(expr.item, top=True)}]'
    if isinstance(expr, Seq):
        return ' '.join(_jsgf(item) for item in expr.items)
    body = ' | '.join(_jsgf(option, top=True) for option in expr.options)
    return body if top or len(expr.options) == 1 else f'({body})'


# ---------------------------------------------------------------------------------------------
# The command grammar.

# Rules whose words are recorded when sampling (tests check the parser reads them back).
_SLOTS = (
    'verb',
    'action',
    'direction',
    'colour',
    'size',
    'ordinal',
    'superlative',
    'comparative',
    'number',
    'object',
    'objects',
    'relation',
    'wake',
)


class _Vocabulary:
    """The vocabulary tables as spoken phrases, keeping only what the recogniser can say.

    Of two phrases in one table that sound the same ('gray', 'grey') only the first is kept:
    the recogniser cannot tell them apart, so offering both would only make its choice random.
    """

    def __init__(
        self, coverage: WordCoverage | None, dictionary: PronunciationDictionary | None
    ) -> None:
        self.coverage = coverage
        self.dictionary = dictionary
        self.dropped: dict[str, str] = {}

    def _sound(self, phrase: str) -> str | None:
        if self.dictionary is None or self.coverage is None:
            return None
        phones = [self.dictionary.phones(w) or self.coverage.added.get(w) for w in phrase.split()]
        return ' '.join(p or '?' for p in phones)

    def spoken(self, phrases: Iterable[str]) -> list[str]:
        kept: list[str] = []
        sounds: dict[str, str] = {}
        for written in phrases:
            # 'left-most' is said like 'leftmost'; normalising keeps the grammar's word set
            # equal to what the recogniser outputs.
            phrase = normalize_text(written.replace('-', ''))
            if not phrase or phrase in kept:
                continue
            sayable = self.coverage is None or all(
                self.coverage.sayable(w) for w in phrase.split()
            )
            sound = self._sound(phrase) if sayable else None
            if not sayable:
                self.dropped.setdefault(phrase, 'not in the pronunciation dictionary')
            elif sound is not None and sound in sounds:
                self.dropped.setdefault(phrase, f'sounds like "{sounds[sound]}"')
            else:
                kept.append(phrase)
                if sound is not None:
                    sounds[sound] = phrase
        return kept


def _opens(phrase: str, kind: QueryKind) -> bool:
    """Whether the parser still reads `phrase` at the start of a command as question `kind`."""
    return vocabulary.QUESTION_PHRASES.get(phrase) is kind


def _vowel_initial(phrase: str, dictionary: PronunciationDictionary | None) -> bool:
    """Whether 'an' rather than 'a' goes before `phrase` (by its first phone when known)."""
    first = phrase.split()[0]
    phones = dictionary.phones(first) if dictionary is not None else None
    if phones:
        return phones.split()[0][:2] in _VOWEL_PHONES
    return first[0] in 'aeiou'


def build_command_grammar(
    *,
    objects: Sequence[str] = (),
    dictionary: PronunciationDictionary | None = None,
    wake_word: str = '',
    name: str = 'robot_commands',
) -> CommandGrammar:
    """Generate the command grammar from the vocabulary tables and the configured objects.

    `objects` are the object names operators may say (default: the vocabulary's shape nouns
    plus DEFAULT_OBJECTS). With a `dictionary`, phrases holding a word it cannot pronounce are
    dropped (and listed in `dropped`) and compounds get derived pronunciations. `wake_word`, when
    given, may precede every command.
    """
    tables = vocabulary.vocabulary_words()
    object_names = [
        o for o in dict.fromkeys(map(normalize_text, objects or default_objects())) if o
    ]
    if not object_names:
        raise VoiceConfigError('the speech grammar needs at least one object name')
    wake = normalize_text(wake_word)

    needed = {
        word
        for phrases in (
            *tables.values(),
            object_names,
            map(vocabulary.plural_noun, object_names),
            [wake],
            _FRAME_WORDS,
            vocabulary.STOP_PHRASES,
            vocabulary.SPOKEN_ACTION_VERBS,
            vocabulary.SPOKEN_DIRECTIONS,
            REPLIES,
        )
        for phrase in phrases
        for word in normalize_text(phrase.replace('-', '')).split()
    }
    coverage = dictionary.coverage(needed) if dictionary is not None else None
    if coverage is not None and wake and not all(coverage.sayable(w) for w in wake.split()):
        raise VoiceConfigError(f'wake word {wake_word!r} is not in the pronunciation dictionary')
    say = _Vocabulary(coverage, dictionary)

    verbs = say.spoken(tables['verbs'])
    # 'where are' asks about several objects; every other verb phrase takes one.
    plural_verbs = [v for v in verbs if v.split()[-1] in ('are', 'were')]
    singular_verbs = [v for v in verbs if v not in plural_verbs]
    between_phrases = [p for p, r in vocabulary.RELATION_PHRASES.items() if r is Relation.BETWEEN]
    between = say.spoken(between_phrases)
    relations = [r for r in say.spoken(tables['relations']) if r not in between]
    # Counts of several objects ('are there two cups'); 'one' and 'zero' do not go with a plural.
    numbers = say.spoken(p for p, n in vocabulary.NUMBER_WORDS.items() if n >= 2)
    singular = say.spoken(object_names)
    unsayable = [o for o in object_names if o not in singular]
    if unsayable:
        # Configured names matter more than the vocabulary's spelling variants ('1st').
        _LOG.warning(
            'object names the recogniser cannot pronounce, left out of the speech grammar: %s',
            ', '.join(unsayable),
        )
    plural = say.spoken(vocabulary.plural_noun(o) for o in singular)
    word_lists = {
        'verb': singular_verbs,
        'colour': say.spoken(tables['colours']),
        'size': say.spoken(tables['sizes']),
        'ordinal': say.spoken(tables['ordinals']),
        'superlative': say.spoken(tables['superlatives']),
        'comparative': say.spoken(tables['comparatives']),
        'number': numbers,
        'object': singular,
        'objects': plural,
        'relation': relations,
        'stop': say.spoken(vocabulary.STOP_PHRASES),
        'action': say.spoken(vocabulary.SPOKEN_ACTION_VERBS),
        'direction': say.spoken(vocabulary.SPOKEN_DIRECTIONS),
    }
    missing = [rule for rule in ('verb', 'colour', 'object', 'relation') if not word_lists[rule]]
    if missing:
        raise VoiceConfigError(
            f'the speech grammar has no {", ".join(missing)} the recogniser can pronounce '
            f'(dropped: {", ".join(say.dropped) or "none"})'
        )

    rules: dict[str, Expr] = {rule: _alt(words) for rule, words in word_lists.items() if words}
    slot_of = {slot: slot for slot in _SLOTS}
    ref = RuleRef
    has = rules.__contains__

    def optional(rule: str) -> list[Expr]:
        return [Opt(ref(rule))] if has(rule) else []

    adjectives: list[Expr] = [*optional('size'), Opt(ref('colour'))]
    rank = [r for r in ('ordinal', 'superlative') if has(r)]
    if rank:
        rules['rank'] = _alt(ref(r) for r in rank)
    # Anchors are plain descriptions: a relation after an anchor belongs to the anchor in the
    # parser, so spoken chains would change meaning; the grammar does not offer them.
    rules['anchor'] = _seq('the', *adjectives, ref('object'))
    clause: list[Expr] = [_seq(ref('relation'), ref('anchor'))]
    if between:
        clause.append(_seq(_alt(between), ref('anchor'), 'and', ref('anchor')))
    rules['relation_clause'] = _alt(clause)
    rules['target'] = _seq(
        'the', *optional('rank'), *adjectives, ref('object'), Opt(ref('relation_clause'))
    )
    rules['subject'] = _seq('the', *adjectives, ref('object'))

    commands: list[Expr] = [_seq(ref('verb'), ref('target'))]
    if has('action'):
        # 'put the red cube in the bowl' (a destination), 'push the red cube to the left',
        # 'push left the red cube' (a direction).
        commands.append(_seq(ref('action'), ref('target')))
        actions = vocabulary.ACTION_VERB_PHRASES
        motion = [v for v in word_lists['action'] if actions.get(v) in vocabulary.MOTION_ACTIONS]
        if motion and has('direction'):
            rules['motion'] = _alt(motion)
            slot_of['motion'] = 'action'
            commands.append(_seq(ref('motion'), ref('subject'), ref('direction')))
            sides = [d for d in word_lists['direction'] if d in ('left', 'right')]
            if sides:
                rules['side'] = _alt(sides)
                slot_of['side'] = 'direction'
                commands.append(_seq(ref('motion'), ref('side'), ref('subject')))
    if has('objects'):
        rules['plural_target'] = _seq(*adjectives, ref('objects'))
        plural_clause: list[Expr] = [ref('plural_target'), Opt(ref('relation_clause'))]
        commands.extend(_seq(verb, 'the', *plural_clause) for verb in plural_verbs)
        if _opens('how many', QueryKind.COUNT):
            commands.append(
                _seq('how many', ref('plural_target'), 'are there', Opt(ref('relation_clause')))
            )
        if _opens('are there', QueryKind.EXISTS) and has('number'):
            commands.append(_seq('are there', ref('number'), *plural_clause))
    if _opens('is there', QueryKind.EXISTS):
        # The article agrees with the first word actually said: 'a red cup', 'an orange cup'.
        indefinite: list[Expr] = []
        for article in ('a', 'an'):
            options: list[Expr] = []
            for slot, rest in (
                ('size', ['colour?', 'object']),
                ('colour', ['object']),
                ('object', []),
            ):
                first = [
                    w
                    for w in word_lists[slot]
                    if _vowel_initial(w, dictionary) == (article == 'an')
                ]
                if not first:
                    continue
                rules[f'{slot}_{article}'] = _alt(first)
                slot_of[f'{slot}_{article}'] = slot
                tail = [Opt(ref(r[:-1])) if r.endswith('?') else ref(r) for r in rest]
                options.append(_seq(ref(f'{slot}_{article}'), *tail))
            if options:
                indefinite.append(_seq(article, _alt(options)))
        rules['exists_target'] = _alt(indefinite)
        commands.append(_seq('is there', ref('exists_target'), Opt(ref('relation_clause'))))
    if 'is' in vocabulary.COPULAS:
        commands.append(_seq('is', ref('subject'), ref('relation_clause')))
    if _opens('what', QueryKind.WHAT):
        commands.append(_seq('what is', ref('relation_clause')))
    if _opens('which', QueryKind.WHICH):
        ranking: list[Expr] = []
        if has('superlative'):
            ranking.append(_seq('the', ref('superlative')))
        if has('comparative'):
            ranking.append(ref('comparative'))
        if ranking:
            commands.append(_seq('which', *adjectives, ref('object'), 'is', _alt(ranking)))
    if has('stop'):
        # 'stop' ends the standing grounding (core/control.py); '-ing' ones may name it.
        commands.append(ref('stop'))
        stop_with_object = [p for p in word_lists['stop'] if p in vocabulary.STOP_WITH_OBJECT]
        if stop_with_object:
            commands.append(_seq(_alt(stop_with_object), ref('subject')))
    rules['command'] = _alt(commands)
    public = 'command'
    if wake:
        rules['wake'] = Token(wake)
        rules['utterance'] = _seq(Opt(ref('wake')), ref('command'))
        public = 'utterance'
    command_rule = public
    # The answers to "Did you say ...?" (listener.py); they are heard, never sent.
    rules['reply'] = _alt(REPLIES)
    reply: Expr = _seq(Opt(ref('wake')), ref('reply')) if wake else ref('reply')
    rules['heard'] = _alt([ref(public), reply])
    public = 'heard'
    return CommandGrammar(
        name=name,
        public_rule=public,
        rules=rules,
        slot_of=slot_of,
        pronunciations=dict(coverage.added) if coverage is not None else {},
        dropped=dict(say.dropped),
        wake_word=wake,
        command_rule=command_rule,
    )


#: Spoken replies to a question the robot asked back: confirm, or deny.
REPLIES = ('yes', 'no')

# Words of the sentence frames themselves; they must be pronounceable as well.
_FRAME_WORDS = (
    'the',
    'a',
    'an',
    'and',
    'how many',
    'are there',
    'is there',
    'is',
    'what',
    'which',
)
