"""Stop commands: recognised before the parser, answered without a frame."""

from __future__ import annotations

import pytest

from grounding_agent.core import vocabulary
from grounding_agent.core.agent import GroundingAgent
from grounding_agent.core.control import is_stop_command, stop_result
from grounding_agent.core.result import ResultStatus


@pytest.mark.parametrize(
    'text',
    [
        'stop',
        'Stop!',
        'please cancel',
        'Robot, never mind.',
        'stop tracking the person',
        'Stop following the red ball, please',
        'cancel that',
        b'stop',
        *vocabulary.STOP_PHRASES,
    ],
)
def test_stop_commands(text: str | bytes) -> None:
    assert is_stop_command(text)


@pytest.mark.parametrize(
    'text',
    [
        'find the stop sign',
        'stop at the table',  # only the '-ing' phrases may name an object
        'track the person',
        'cancel the red cup',
        'never mind the cup',
        '',
        '   ',
        b'\xff\xfe',
        'stop ' * 100,
    ],
)
def test_not_stop_commands(text: str | bytes) -> None:
    assert not is_stop_command(text)


def test_stop_result_names_what_it_stopped() -> None:
    result = stop_result('track the person', request_id='7', command='stop', camera='front')
    assert (result.kind, result.status, result.answer) == (
        'stop',
        ResultStatus.ANSWERED,
        'track the person',
    )
    assert "'track the person'" in result.reason
    idle = stop_result('')
    assert idle.answer == ''
    assert 'nothing to stop' in idle.reason


def test_the_agent_answers_stop_without_a_frame() -> None:
    from grounding_agent.backends.color_shape import ColorShapeBackend

    agent = GroundingAgent(ColorShapeBackend())
    result = agent.handle_command('stop tracking', None, request_id='s')
    assert (result.kind, result.status, result.request_id) == ('stop', ResultStatus.ANSWERED, 's')
    # An ordinary command mentioning 'stop' still goes to the parser (and, with no image, is
    # answered with that error).
    assert agent.handle_command('find the stop sign', None).status is ResultStatus.ERROR
