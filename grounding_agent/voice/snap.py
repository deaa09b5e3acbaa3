"""Snap a free transcript to the nearest sentence of the command grammar.

A free-form recogniser (Whisper) writes whatever it heard: 'pick up the red mug please',
'pick up a red mug', or garbage. The command grammar is the set of sentences the command reader
is known to understand, so the transcript is compared with it word by word: `snap_to_grammar`
finds the grammar sentence with the fewest word edits (substitutions, insertions, deletions)
from the transcript, exactly, by dynamic programming over the grammar's expression tree (the
grammar has no recursion; its rules are memoised per start position, so the search costs about
(number of grammar nodes) x (transcript length)^2, milliseconds for a spoken command). The
listener decides what to do with the result (`grounding_agent.voice.listener`).
"""

from __future__ import annotations

from dataclasses import dataclass

from grounding_agent.voice.grammar import (
    Alt,
    CommandGrammar,
    Expr,
    Opt,
    RuleRef,
    Seq,
    Token,
    normalize_text,
)

__all__ = ['MAX_SNAP_WORDS', 'Snap', 'snap_to_grammar']

#: Longer transcripts are not snapped: a command is a sentence, not a speech.
MAX_SNAP_WORDS = 30

# end position -> (edits, words of the grammar sentence so far)
_Ends = dict[int, tuple[int, tuple[str, ...]]]


@dataclass(frozen=True)
class Snap:
    """The grammar sentence nearest to `heard` and the word edits between them."""

    heard: str
    sentence: str
    edits: int


def snap_to_grammar(grammar: CommandGrammar, text: str) -> Snap | None:
    """The nearest sentence of `grammar`'s public rule to `text` (normalised), or None when
    the transcript is empty or longer than MAX_SNAP_WORDS words. Ties go to the sentence the
    grammar lists first."""
    heard = normalize_text(text)
    words = tuple(heard.split())
    if not words or len(words) > MAX_SNAP_WORDS:
        return None
    ends = _Search(grammar, words).ends(RuleRef(grammar.public_rule), 0)
    best = ends.get(len(words))
    if best is None:  # cannot happen: every sentence aligns with every transcript
        return None
    return Snap(heard, ' '.join(best[1]), best[0])


def _relax(ends: _Ends, end: int, edits: int, sentence: tuple[str, ...]) -> None:
    known = ends.get(end)
    if known is None or edits < known[0]:
        ends[end] = (edits, sentence)


class _Search:
    """Edit-distance alignment of one transcript against the grammar's expressions."""

    def __init__(self, grammar: CommandGrammar, words: tuple[str, ...]) -> None:
        self.grammar = grammar
        self.words = words
        self._rules: dict[tuple[str, int], _Ends] = {}

    def ends(self, expr: Expr, start: int) -> _Ends:
        """For each end position j >= start: the fewest edits aligning some sentence of
        `expr` with words[start:j], and that sentence."""
        if isinstance(expr, Token):
            return self._token(tuple(expr.text.split()), start)
        if isinstance(expr, RuleRef):
            key = (expr.name, start)
            if key not in self._rules:
                self._rules[key] = self.ends(self.grammar.rules[expr.name], start)
            return self._rules[key]
        result: _Ends = {}
        if isinstance(expr, Alt):
            for option in expr.options:
                for end, (edits, sentence) in self.ends(option, start).items():
                    _relax(result, end, edits, sentence)
            return result
        if isinstance(expr, Opt):
            result = dict(self.ends(expr.item, start))
            _relax(result, start, 0, ())  # left out (extra words are deleted by the tokens)
            return result
        assert isinstance(expr, Seq)
        current: _Ends = {start: (0, ())}
        for item in expr.items:
            following: _Ends = {}
            for middle, (edits, sentence) in current.items():
                for end, (more, words) in self.ends(item, middle).items():
                    _relax(following, end, edits + more, sentence + words)
            current = following
        return current

    def _token(self, token: tuple[str, ...], start: int) -> _Ends:
        """Levenshtein distance of the token's words against words[start:j], every j."""
        heard = self.words[start:]
        row = list(range(len(heard) + 1))  # token prefix of length 0
        for index, word in enumerate(token, start=1):
            previous, row = row, [index] + [0] * len(heard)
            for j, other in enumerate(heard, start=1):
                row[j] = min(
                    previous[j] + 1,  # a grammar word the transcript lacks
                    row[j - 1] + 1,  # a transcript word the grammar lacks
                    previous[j - 1] + (word != other),
                )
        return {start + j: (edits, token) for j, edits in enumerate(row)}
