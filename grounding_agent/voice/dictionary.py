"""The recogniser's pronunciation dictionary: which grammar words it can say, and how.

The pocketsphinx en-us dictionary (CMUdict) lacks some words the parser knows ('leftmost',
'rightmost', '1st'). A compound of two dictionary words gets the concatenated pronunciation;
anything else cannot be recognised and is dropped from the grammar with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grounding_agent.voice.errors import RecognizerError

__all__ = ['PronunciationDictionary', 'WordCoverage', 'default_dictionary_path']

_LOG = logging.getLogger(__name__)


def default_dictionary_path() -> Path:
    """The CMUdict shipped in the pocketsphinx wheel (raises when pocketsphinx is missing)."""
    try:
        from pocketsphinx import get_model_path
    except ImportError as exc:
        raise RecognizerError(
            'pocketsphinx is not installed: pip install pocketsphinx (it ships the en-us model)'
        ) from exc
    return Path(get_model_path('en-us')) / 'cmudict-en-us.dict'


@dataclass(frozen=True)
class WordCoverage:
    """How the dictionary covers a set of words.

    `added` are words missing from the dictionary that got a derived pronunciation (word ->
    space-separated phones, to hand to `Decoder.add_word`); `missing` cannot be pronounced.
    """

    known: frozenset[str] = frozenset()
    added: Mapping[str, str] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()

    def sayable(self, word: str) -> bool:
        return word in self.known or word in self.added


class PronunciationDictionary:
    """Word -> phones, read from a CMUdict-format file ('word PH ON ES', variants 'word(2)')."""

    def __init__(self, pronunciations: Mapping[str, str]) -> None:
        self._phones = dict(pronunciations)

    @classmethod
    def load(cls, path: Path | str | None = None) -> PronunciationDictionary:
        dict_path = Path(path) if path is not None else default_dictionary_path()
        try:
            lines = dict_path.read_text(encoding='utf-8', errors='replace').splitlines()
        except OSError as exc:
            raise RecognizerError(
                f'cannot read pronunciation dictionary {dict_path}: {exc}'
            ) from exc
        phones: dict[str, str] = {}
        for line in lines:
            word, _, pronunciation = line.strip().partition(' ')
            if not word or not pronunciation or '(' in word:
                continue  # variants 'word(2)' add nothing to whether a word is sayable
            phones.setdefault(word.lower(), pronunciation.strip())
        if not phones:
            raise RecognizerError(f'pronunciation dictionary {dict_path} holds no words')
        return cls(phones)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self._phones

    def __len__(self) -> int:
        return len(self._phones)

    def phones(self, word: str) -> str | None:
        return self._phones.get(word.lower())

    def derive(self, word: str) -> str | None:
        """Phones for a compound of two dictionary words ('leftmost' = 'left' + 'most')."""
        word = word.lower()
        # Longest head first, and both parts at least three letters, so 'ablest' does not
        # become 'a' + 'blest'.
        for cut in range(len(word) - 3, 2, -1):
            head, tail = self.phones(word[:cut]), self.phones(word[cut:])
            if head is not None and tail is not None:
                return f'{head} {tail}'
        return None

    def coverage(self, words: Iterable[str]) -> WordCoverage:
        known: set[str] = set()
        added: dict[str, str] = {}
        missing: set[str] = set()
        for word in {w.lower() for w in words}:
            if word in self._phones:
                known.add(word)
            elif (derived := self.derive(word)) is not None:
                added[word] = derived
            else:
                missing.add(word)
        if added:
            _LOG.debug('pronunciations derived from compounds: %s', ', '.join(sorted(added)))
        if missing:
            _LOG.debug('not in the pronunciation dictionary: %s', ', '.join(sorted(missing)))
        return WordCoverage(frozenset(known), added, frozenset(missing))
