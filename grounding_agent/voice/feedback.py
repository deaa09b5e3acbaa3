"""What the robot says back about the grounding node's answer to a spoken command.

An operator who asked "how many boxes are there?" wants to hear "Counted 3 boxes.", not to read
JSON. `spoken_answer` turns a planner-topic result into one short sentence for a text-to-speech
node: the result's own reason (written for people), without the scores and the diagnostic tail
that help on a screen but not in the ear.
"""

from __future__ import annotations

import re
from collections import deque

from grounding_agent.core.result import GroundingResult, ResultStatus

__all__ = ['AwaitedAnswers', 'spoken_answer']

# '(0.95)', '(left_of 1.00)', '(purple 0.00)': scores for the screen.
_PARENTHESES = re.compile(r'\s*\([^()]*\)')
_NUMBER_SCORE = re.compile(r'\s+\d\.\d\d\b')
_SPACES = re.compile(r'\s+')

_OPENERS = {
    ResultStatus.GROUNDED: 'Found it: ',
    ResultStatus.ANSWERED: '',
    ResultStatus.REJECTED: '',
    ResultStatus.AMBIGUOUS: 'I am not sure which one: ',
    ResultStatus.ERROR: 'Sorry, ',
}


def spoken_answer(result: GroundingResult) -> str:
    """One sentence to say for `result` ('' when there is nothing to say)."""
    # The first clause carries the answer; what follows ';' is diagnosis ('closest: ...').
    text = result.reason.split(';', 1)[0]
    text = _NUMBER_SCORE.sub('', _PARENTHESES.sub('', text))
    text = _SPACES.sub(' ', text).strip().rstrip('.:')
    if not text:
        return ''
    sentence = _OPENERS.get(result.status, '') + text
    return sentence[0].upper() + sentence[1:] + '.'


class AwaitedAnswers:
    """The commands sent and not answered yet, to tell the grounding node's answers to them
    from answers to commands that came from elsewhere.

    The command topic carries plain text, so an answer is matched by its `command`. The same
    text sent twice is awaited twice: each answer takes the oldest send of its text. A send
    older than `wait_s` is forgotten (its answer, if it ever comes, is not said).
    """

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._sent: dict[str, deque[float]] = {}

    def sent(self, command: str, now_s: float) -> None:
        self._forget_before(now_s - self.wait_s)
        self._sent.setdefault(command, deque()).append(now_s)

    def answered(self, command: str, now_s: float) -> bool:
        """Whether an answer to `command` arriving at `now_s` is one this side awaited."""
        self._forget_before(now_s - self.wait_s)
        times = self._sent.get(command)
        if not times:
            return False
        times.popleft()
        if not times:
            del self._sent[command]
        return True

    def __len__(self) -> int:
        return sum(len(times) for times in self._sent.values())

    def _forget_before(self, oldest_s: float) -> None:
        for command in list(self._sent):
            times = self._sent[command]
            while times and times[0] <= oldest_s:
                times.popleft()
            if not times:
                del self._sent[command]
