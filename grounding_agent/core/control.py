"""Control commands: the sentences that steer the agent instead of describing an object.

Only one so far: stop. 'track the person' starts a standing grounding that follows its target
frame after frame; 'stop' (or 'cancel', 'never mind', 'stop tracking the person') ends it. Stop
commands are recognised before the command parser runs, from `vocabulary.STOP_PHRASES`, so the
parser's grammar of object descriptions stays as it is, and the voice grammar can offer the same
phrases.
"""

from __future__ import annotations

import re

from grounding_agent.core import vocabulary as vocab
from grounding_agent.core.result import GroundingResult, ResultStatus

__all__ = ['is_stop_command', 'stop_result']

_NOT_WORD = re.compile(r"[^a-z' ]+")
# The parser's own politeness and opener tables ('please', 'right now', 'hey robot', ...),
# longest first, dropped anywhere: a stop command is short, so an opener cannot be an object.
_FILLERS = re.compile(
    r'\b(?:'
    + '|'.join(
        re.escape(phrase)
        for phrase in sorted(
            {*vocab.FILLER_PHRASES, *vocab.LEADING_FILLERS}, key=len, reverse=True
        )
    )
    + r')\b'
)


def _said(text: str) -> str:
    """Lower-case words without punctuation and fillers: 'Robot, stop now!' -> 'stop'."""
    return ' '.join(_FILLERS.sub(' ', _NOT_WORD.sub(' ', text.lower())).split())


def is_stop_command(text: str | bytes) -> bool:
    """Whether `text` asks to stop the standing grounding.

    'Stop!', 'please cancel', 'robot, never mind', 'stop tracking the person' are; 'stop at the
    table' and 'find the stop sign' are not (only the '-ing' stop phrases may name an object).
    Text that is not valid UTF-8 is not a stop command.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError:
            return False
    if not isinstance(text, str) or len(text) > 200:
        return False
    said = _said(text)
    if said in vocab.STOP_PHRASES:
        return True
    return any(said.startswith(phrase + ' ') for phrase in vocab.STOP_WITH_OBJECT)


def stop_result(
    standing_query: str, *, request_id: str = '', command: str = '', camera: str = ''
) -> GroundingResult:
    """The answer to a stop command: kind 'stop', status answered, `answer` the standing query
    it ended ('' when none was running)."""
    return GroundingResult(
        request_id=request_id,
        command=command,
        kind='stop',
        status=ResultStatus.ANSWERED,
        reason=(
            f"stopped the standing query '{standing_query}'"
            if standing_query
            else 'nothing to stop: no standing query was running'
        ),
        camera=camera,
        answer=standing_query,
    )
