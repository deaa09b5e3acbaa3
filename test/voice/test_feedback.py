"""The sentence the robot says back about the grounding node's answer."""

from __future__ import annotations

import pytest

from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.voice.feedback import AwaitedAnswers, spoken_answer


@pytest.mark.parametrize(
    ('status', 'reason', 'said'),
    [
        (
            'grounded',
            'white cube (0.95) is right of the blue sphere (right_of 1.00)',
            'Found it: white cube is right of the blue sphere.',
        ),
        (
            'answered',
            'yes: red cube is left of the green cylinder (left_of 1.00)',
            'Yes: red cube is left of the green cylinder.',
        ),
        ('answered', 'counted 3 cubes', 'Counted 3 cubes.'),
        (
            'rejected',
            'no purple ball; closest: blue sphere 0.99 (purple 0.00)',
            'No purple ball.',
        ),
        ('ambiguous', '2 red cubes (0.81, 0.79)', 'I am not sure which one: 2 red cubes.'),
        ('error', 'the node is not active', 'Sorry, the node is not active.'),
        ('answered', 'x', 'X.'),
        ('rejected', '(0.50)', ''),
    ],
)
def test_spoken_answer(status: str, reason: str, said: str) -> None:
    result = GroundingResult(status=ResultStatus(status), reason=reason)
    assert spoken_answer(result) == said


def test_each_answer_takes_one_send_of_its_command() -> None:
    awaited = AwaitedAnswers(wait_s=60.0)
    awaited.sent('find the red mug', 0.0)
    awaited.sent('find the red mug', 1.0)  # said twice before the first answer
    awaited.sent('how many boxes?', 2.0)
    assert len(awaited) == 3
    assert awaited.answered('find the red mug', 3.0)
    assert awaited.answered('find the red mug', 4.0)  # the second send gets its own answer
    assert not awaited.answered('find the red mug', 5.0)  # a third answer was not asked for
    assert not awaited.answered('find the blue mug', 5.0)  # sent by someone else
    assert awaited.answered('how many boxes?', 5.0)
    assert len(awaited) == 0


def test_a_send_too_old_is_forgotten() -> None:
    awaited = AwaitedAnswers(wait_s=60.0)
    awaited.sent('find the red mug', 0.0)
    awaited.sent('find the red mug', 50.0)
    # at 70 s the first send is past waiting: the answer is taken as the second one's
    assert awaited.answered('find the red mug', 70.0)
    assert not awaited.answered('find the red mug', 71.0)
    awaited.sent('stop', 100.0)
    assert not awaited.answered('stop', 160.0)
    assert len(awaited) == 0
