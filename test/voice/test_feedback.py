"""The sentence the robot says back about the grounding node's answer."""

from __future__ import annotations

import pytest

from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.voice.feedback import spoken_answer


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
