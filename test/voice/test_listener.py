"""Which recognised sentences become commands: wake word, completeness, parse, confidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grounding_agent.voice.errors import VoiceConfigError
from grounding_agent.voice.grammar import CommandGrammar
from grounding_agent.voice.listener import (
    CommandListener,
    HeardCommand,
    VoiceConfig,
    VoicePipeline,
    command_meaning,
    strip_wake_word,
)
from grounding_agent.voice.recognizer import Hypothesis, PocketsphinxRecognizer, Recognition
from grounding_agent.voice.vad import VadConfig


@pytest.mark.parametrize(
    ('text', 'wake_word', 'expected'),
    [
        ('robot find the cup', 'robot', 'find the cup'),
        ('Robot, find the cup.', 'robot', 'find the cup'),
        ('find the cup', 'robot', None),
        ('robotic arm find the cup', 'robot', None),
        ('robot', 'robot', ''),
        ('hey robot find the cup', 'hey robot', 'find the cup'),
        ('find the cup', '', 'find the cup'),
        ('  Find   the CUP ', '', 'find the cup'),
    ],
)
def test_strip_wake_word(text: str, wake_word: str, expected: str | None) -> None:
    assert strip_wake_word(text, wake_word) == expected


def _recognition(grammar: CommandGrammar | None, *alternatives: tuple[str, float]) -> Recognition:
    hypotheses = tuple(Hypothesis(text, p) for text, p in alternatives)
    best = alternatives[0][0] if alternatives else ''
    return Recognition(best, hypotheses, engine='test', grammar=grammar)


@pytest.fixture
def listener(recognizer: PocketsphinxRecognizer) -> CommandListener:
    return CommandListener(VoiceConfig(confidence_threshold=0.8), recognizer=recognizer)


@pytest.mark.parametrize(
    ('alternatives', 'accepted', 'reason'),
    [
        ([('find the red cup', 1.0)], True, ''),
        ([], False, 'nothing recognised'),
        ([('find the red', 1.0)], False, 'incomplete sentence'),
        ([('find the red cup', 0.6), ('find the red cap', 0.4)], False, 'low confidence 0.60'),
        # Two wordings of one command support each other.
        (
            [('get the red cup', 0.5), ('grab the red cup', 0.45), ('find the red cup', 0.05)],
            True,
            '',
        ),
        # Partial runner-ups do not support the best sentence.
        ([('find the red cup', 0.7), ('find the red', 0.3)], False, 'low confidence 0.70'),
    ],
)
def test_judge(
    listener: CommandListener,
    grammar: CommandGrammar,
    alternatives: list[tuple[str, float]],
    accepted: bool,
    reason: str,
) -> None:
    heard = listener.judge(_recognition(grammar, *alternatives))
    assert heard.accepted is accepted
    assert heard.reason.startswith(reason)
    if accepted:
        assert heard.command == alternatives[0][0]
        assert heard.confidence >= 0.8


def test_confidence_is_averaged_over_the_speed_views(
    listener: CommandListener, grammar: CommandGrammar
) -> None:
    # Confident on the first decode, but the views prefer another meaning: refused, and the
    # refusal names what else it may have been.
    first = (
        Hypothesis('follow the third tin near the table', 0.98),
        Hypothesis('follow the person near the table', 0.02),
    )
    slower = (
        Hypothesis('follow the person near the table', 0.98),
        Hypothesis('follow the third tin near the table', 0.02),
    )
    faster = (Hypothesis('follow the third tin near the table', 1.0),)
    recognition = Recognition(
        first[0].text, first, views=(slower, faster), engine='test', grammar=grammar
    )
    heard = listener.judge(recognition)
    assert not heard.accepted
    assert heard.confidence == pytest.approx((0.98 + 0.02 + 1.0) / 3)
    assert heard.alternative == 'follow the person near the table'
    assert "did you mean 'follow the person near the table'" in heard.reason
    assert json.loads(heard.to_json())['alternative'] == heard.alternative
    assert heard.prompt == (
        'Did you say follow the third tin near the table, or follow the person near the table? '
        'Please say it again.'
    )
    # Views that agree keep the command.
    agreeing = Recognition(
        first[0].text, first, views=(first, faster), engine='test', grammar=grammar
    )
    assert listener.judge(agreeing).accepted
    # A view in which nothing complete was heard counts as no support.
    empty_view = Recognition(first[0].text, first, views=((), ()), engine='test', grammar=grammar)
    assert listener.judge(empty_view).confidence == pytest.approx(0.98 / 3)


def test_a_refusal_without_another_meaning_names_no_alternative(
    listener: CommandListener, grammar: CommandGrammar
) -> None:
    heard = listener.judge(_recognition(grammar, ('find the red cup', 0.4), ('find the red', 0.6)))
    assert not heard.accepted
    assert heard.alternative == ''
    assert 'did you mean' not in heard.reason
    assert heard.prompt == 'I am not sure I heard find the red cup. Please say it again.'
    assert heard.asks == ''


def test_only_sent_and_unsure_commands_get_a_spoken_prompt(
    listener: CommandListener, grammar: CommandGrammar
) -> None:
    sent = listener.judge(_recognition(grammar, ('find the red cup', 1.0)))
    assert sent.prompt == 'OK: find the red cup.'
    assert json.loads(sent.to_json())['prompt'] == sent.prompt
    # Fragments and nothing at all: no prompt, so talk near the robot gets no replies.
    assert listener.judge(_recognition(grammar, ('find the red', 1.0))).prompt == ''
    assert listener.judge(_recognition(grammar)).prompt == ''


def test_free_form_text_must_be_a_command_about_a_known_object(listener: CommandListener) -> None:
    for text, reason in [
        ('i like the cup', 'not a command the parser understands'),
        ('the weather is nice today', 'free-form speech that does not start with a verb'),
        ('please fetch the stapler', 'free-form speech about "stapler"'),
    ]:
        heard = listener.judge(_recognition(None, (text, 0.99)))
        assert not heard.accepted
        assert heard.reason.startswith(reason), heard.reason
    assert listener.judge(_recognition(None, ('please fetch the red mugs', 0.95))).accepted


def test_wake_word_is_required_and_stripped(recognizer: PocketsphinxRecognizer) -> None:
    listener = CommandListener(VoiceConfig(wake_word='robot'), recognizer=recognizer)
    heard = listener.judge(_recognition(None, ('robot pick up the mug', 1.0)))
    assert heard.accepted
    assert heard.command == 'pick up the mug'
    assert heard.text == 'robot pick up the mug'
    missing = listener.judge(_recognition(None, ('pick up the mug', 1.0)))
    assert not missing.accepted
    assert 'wake word' in missing.reason
    only = listener.judge(_recognition(None, ('robot', 1.0)))
    assert not only.accepted
    assert only.reason == 'only the wake word was heard'


def test_heard_json_has_the_documented_fields() -> None:
    heard = HeardCommand('robot find the cup', 'find the cup', 0.91234, True, '', engine='x')
    data = json.loads(heard.to_json())
    assert {'text', 'confidence', 'accepted', 'reason'} <= data.keys()
    assert data['confidence'] == 0.9123
    assert data['accepted'] is True


def test_meaning_ignores_wording_not_content() -> None:
    assert command_meaning('get the red cup') == command_meaning('grab the red cup')
    assert command_meaning('get the red cup') != command_meaning('get the blue cup')
    assert command_meaning('') is None


@pytest.mark.parametrize(
    'values',
    [
        {'confidence_threshold': 1.5},
        {'recognizer': 'vosk'},
        {'wake': 'robot'},
        {'vad': {'hangover_ms': 1}},
        {'speed_views': (1.0,)},
        {'speed_views': '0.5'},
        {'speed_views': 'fast'},
    ],
)
def test_bad_config_is_a_voice_config_error(values: dict[str, object]) -> None:
    with pytest.raises(VoiceConfigError):
        VoiceConfig.from_mapping(values)


def test_speed_views_from_a_string() -> None:
    assert VoiceConfig(speed_views='0.9, 1.1').speed_views == (0.9, 1.1)  # type: ignore[arg-type]
    assert VoiceConfig(speed_views='').speed_views == ()  # type: ignore[arg-type]


def test_objects_from_a_comma_separated_string() -> None:
    assert VoiceConfig(objects='mug, cup,, laptop').objects == ('mug', 'cup', 'laptop')  # type: ignore[arg-type]


def test_pipeline_refuses_cut_utterances_without_decoding(
    recognizer: PocketsphinxRecognizer,
) -> None:
    config = VoiceConfig(vad=VadConfig(max_utterance_ms=1000))
    pipeline = VoicePipeline(CommandListener(config, recognizer=recognizer), 16000)
    t = np.arange(3 * 16000) / 16000
    loud = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    heard = pipeline.feed(np.concatenate([np.zeros(8000, np.float32), loud])) + pipeline.flush()
    assert heard[0].reason.startswith('utterance longer than 1000 ms')
    assert not any(h.accepted for h in heard)


class _Clock:
    """A settable clock for the confirmation window (no wall-clock time in tests)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# n-best lists of the shape pocketsphinx gives a correct command it is unsure of: the rest of
# the posterior on fragments of the same sentence (no rival meaning), confidence 0.81-0.85.
_UNSURE = (('pick up the green cube', 0.83), ('pick up the green', 0.1), ('pick up the', 0.07))
_YES = (('yes', 0.97), ('no', 0.03))


@pytest.fixture
def asking(recognizer: PocketsphinxRecognizer) -> tuple[CommandListener, _Clock]:
    clock = _Clock()
    return CommandListener(VoiceConfig(), recognizer=recognizer, clock=clock), clock


def test_an_unsure_command_without_a_rival_is_asked_back_and_yes_sends_it(
    asking: tuple[CommandListener, _Clock], grammar: CommandGrammar
) -> None:
    listener, clock = asking
    unsure = listener.judge(_recognition(grammar, *_UNSURE))
    assert not unsure.accepted
    assert unsure.confidence == pytest.approx(0.83)
    assert unsure.asks == 'pick up the green cube'
    assert (
        unsure.prompt == 'Did you say pick up the green cube? Say yes, or say the command again.'
    )
    clock.now += 4.0
    confirmed = listener.judge(_recognition(grammar, *_YES))
    assert confirmed.accepted
    assert confirmed.command == 'pick up the green cube'
    assert confirmed.text == 'yes'
    assert confirmed.prompt == 'OK: pick up the green cube.'
    # The question is answered: a second yes confirms nothing.
    again = listener.judge(_recognition(grammar, *_YES))
    assert not again.accepted
    assert again.reason == '"yes" answers no question'
    assert again.prompt == ''


@pytest.mark.parametrize(
    ('reply', 'wait', 'reason'),
    [
        ((('no', 0.95), ('yes', 0.05)), 1.0, 'the operator said no'),
        (_YES, 11.0, '"yes" came too late'),
        ((('yes', 0.6), ('no', 0.4)), 1.0, 'unsure reply'),
        ((('find the red cup', 1.0),), 1.0, ''),  # another command withdraws the question
    ],
)
def test_a_question_is_not_confirmed_by_anything_but_a_timely_confident_yes(
    asking: tuple[CommandListener, _Clock],
    grammar: CommandGrammar,
    reply: tuple[tuple[str, float], ...],
    wait: float,
    reason: str,
) -> None:
    listener, clock = asking
    assert listener.judge(_recognition(grammar, *_UNSURE)).asks
    clock.now += wait
    answer = listener.judge(_recognition(grammar, *reply))
    assert answer.reason.startswith(reason)
    assert answer.command != 'pick up the green cube'
    late_yes = listener.judge(_recognition(grammar, *_YES))
    # Only an unsure reply leaves the question standing.
    assert late_yes.accepted is (reason == 'unsure reply')


def test_yes_without_a_question_and_yes_in_the_grammar(
    listener: CommandListener, grammar: CommandGrammar
) -> None:
    assert grammar.matches('yes')
    assert grammar.matches('no')
    heard = listener.judge(_recognition(grammar, *_YES))
    assert not heard.accepted
    assert heard.prompt == ''
    rng = __import__('random').Random(0)
    assert all(grammar.sample(rng).text not in ('yes', 'no') for _ in range(300))
