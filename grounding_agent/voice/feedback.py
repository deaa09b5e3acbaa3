"""What the robot says back about the grounding node's answer to a spoken command.

An operator who asked "how many boxes are there?" wants to hear "Counted 3 boxes.", not to read
JSON. `spoken_answer` turns a planner-topic result into one short sentence for a text-to-speech
node: the result's own reason (written for people), without the scores and the diagnostic tail
that help on a screen but not in the ear.
"""

from __future__ import annotations

import re

from grounding_agent.core.result import GroundingResult, ResultStatus

__all__ = ['spoken_answer']

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
