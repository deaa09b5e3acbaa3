"""From recognised speech to an operator command, or to a reason why it is not one.

A wrong command is worse than none, so a recognised sentence becomes a command only when every
check passes, in this order: something was recognised; the wake word (if configured) opens it;
a grammar decode returned a complete sentence of the grammar (the decoder can stop inside one);
the command parser accepts it; and the confidence reaches the threshold. The confidence is the
posterior share of the recogniser's hypotheses that mean the same command as the best one
(same parsed query), so two wordings of one command do not count against each other, while a
close runner-up that means something else does; when the recogniser re-ranked its hypotheses on
other renderings of the utterance (speed views), the share is averaged over all of them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grounding_agent.core.errors import CommandError
from grounding_agent.voice.audio import RECOGNIZER_RATE, FloatAudio, resample, to_int16
from grounding_agent.voice.errors import VoiceConfigError
from grounding_agent.voice.grammar import (
    REPLIES,
    CommandGrammar,
    default_objects,
    normalize_text,
)
from grounding_agent.voice.recognizer import (
    Hypothesis,
    Recognition,
    Recognizer,
    check_speed_views,
)
from grounding_agent.voice.vad import EnergyVad, Utterance, VadConfig

__all__ = [
    'CommandListener',
    'HeardCommand',
    'VoiceConfig',
    'VoicePipeline',
    'build_grammar',
    'build_recognizer',
    'command_meaning',
    'strip_wake_word',
]

_LOG = logging.getLogger(__name__)
# Token kinds of the parser that open a command rather than describe an object.
_COMMAND_OPENERS = frozenset({'VERB', 'HOW_MANY', 'EXISTS', 'BE', 'WHAT', 'WHICH'})


class VoiceConfig(BaseModel):
    """Everything that decides which spoken sentences become commands.

    `objects`: the object names operators may say (empty: the vocabulary's shape nouns plus a
    few household objects). `confidence_threshold`: below it a sentence is heard but not sent;
    raising it trades more "say it again" for fewer wrong commands. `free_form`: when the grammar
    decode gives no command, decode again with the general en-us language model (slow, and on
    synthetic voices most words come out wrong; its text still has to parse and be confident).
    `speed_views`: playback speeds at which pocketsphinx re-ranks its n-best sentences; the
    confidence is averaged over them (`()` = off; see `PocketsphinxRecognizer`).
    `recognizer='whisper'` transcribes with Whisper (transformers) from `whisper_model_dir` (a
    local directory or a cached Hugging Face id); its transcript is snapped to the nearest
    grammar sentence, and `snap_max_edits` bounds the word edits per transcript word beyond
    which it is no command at all (see `CommandListener.judge`).
    `ask_back_threshold`: a command heard with a confidence from it up to
    `confidence_threshold`, and no likely rival with another meaning, is not dropped: the robot
    asks "Did you say ...?" and a confident "yes" within `confirm_seconds` sends it.
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    recognizer: Literal['pocketsphinx', 'whisper', 'faster_whisper'] = 'pocketsphinx'
    objects: tuple[str, ...] = ()
    wake_word: str = ''
    confidence_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    ask_back_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    confirm_seconds: float = Field(default=10.0, gt=0.0, le=120.0)
    free_form: bool = False
    dither: float = Field(default=100.0, ge=0.0, le=3000.0)
    score_scale: float = Field(default=50.0, gt=0.0, le=10_000.0)
    speed_views: tuple[float, ...] = (0.95, 1.05)
    whisper_model_dir: str = ''
    whisper_device: str = 'cpu'
    whisper_compute_type: str = 'int8'
    whisper_beam_size: int = Field(default=1, ge=1, le=16)
    snap_max_edits: float = Field(default=0.25, ge=0.0, le=1.0)
    vad: VadConfig = Field(default_factory=VadConfig)

    @field_validator('objects', mode='before')
    @classmethod
    def _split_objects(cls, value: Any) -> Any:
        if isinstance(value, str):  # 'mug, cup' from a command line
            value = value.split(',')
        return tuple(o.strip() for o in value if str(o).strip())

    @field_validator('speed_views', mode='before')
    @classmethod
    def _check_speed_views(cls, value: Any) -> Any:
        if isinstance(value, str):  # '0.95, 1.05' from a parameter or command line; '' = off
            value = [v for v in value.split(',') if v.strip()]
        try:
            return check_speed_views(value)
        except VoiceConfigError as exc:  # pydantic reports ValueErrors with the field's name
            raise ValueError(str(exc)) from exc

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> VoiceConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise VoiceConfigError(f'invalid voice configuration: {exc}') from exc


@dataclass(frozen=True)
class HeardCommand:
    """What was heard in one utterance and what became of it (published on `~/heard`).

    `text` is what the recogniser heard (with the wake word); `command` what is (or would be)
    sent: `text` without the wake word. `accepted` says whether it was sent; `reason` why not.
    `alternative`, on a refusal for low confidence, is the likeliest command with another
    meaning ('' when there is none): what to ask the operator about ("did you mean ...?").
    `prompt` is a sentence for the robot to say back (published on `~/prompt` for a
    text-to-speech node): a read-back of a sent command, or a request to repeat one it was
    unsure of; '' for everything else (noise, talk without the wake word, fragments), so a
    robot among people does not keep apologising. `asks` is the command the robot asked back
    about ("Did you say ...?"): a "yes" as the next utterance sends it.
    """

    text: str
    command: str
    confidence: float
    accepted: bool
    reason: str
    engine: str = ''
    audio_s: float = 0.0
    decode_s: float = 0.0
    start_s: float | None = None
    alternative: str = ''
    prompt: str = ''
    asks: str = ''

    def to_json(self) -> str:
        return json.dumps(
            {
                'text': self.text,
                'command': self.command,
                'confidence': round(self.confidence, 4),
                'accepted': self.accepted,
                'reason': self.reason,
                'engine': self.engine,
                'audio_s': round(self.audio_s, 3),
                'decode_s': round(self.decode_s, 4),
                'start_s': None if self.start_s is None else round(self.start_s, 3),
                'alternative': self.alternative,
                'prompt': self.prompt,
                'asks': self.asks,
            }
        )


def strip_wake_word(text: str, wake_word: str) -> str | None:
    """The command after the wake word, or None when `text` does not start with it.

    With no wake word every text is a command. Matching is on normalised words, so 'Robot,
    find the cup' and 'robot find the cup' both give 'find the cup'.
    """
    words = normalize_text(text)
    wake = normalize_text(wake_word)
    if not wake:
        return words
    if words == wake:
        return ''
    if words.startswith(wake + ' '):
        return words[len(wake) + 1 :]
    return None


def _verdict(
    recognition: Recognition,
    command: str,
    confidence: float,
    reason: str,
    *,
    prompt: str = '',
    asks: str = '',
) -> HeardCommand:
    """The verdict on `recognition`: sent when there is no `reason` against it. `asks` is
    also offered as the `alternative`."""
    return HeardCommand(
        recognition.text,
        command,
        confidence,
        not reason,
        reason,
        engine=recognition.engine,
        audio_s=recognition.audio_s,
        decode_s=recognition.decode_s,
        alternative=asks,
        prompt=prompt,
        asks=asks,
    )


@lru_cache(maxsize=1024)
def _reader_meaning(text: str) -> Hashable | None:
    """What the full command reader makes of `text` (None if it refuses it): what a free
    transcript means before it is snapped to the grammar."""
    from grounding_agent.core.control import is_stop_command
    from grounding_agent.core.parser import parse_command

    if is_stop_command(text):
        return 'stop'
    try:
        query = parse_command(text)
    except CommandError:
        return None
    return dataclasses.replace(query, text='')


@lru_cache(maxsize=4096)
def command_meaning(text: str) -> Hashable | None:
    """The parsed query without its text (what the command means), or None if it does not parse.

    Two sentences mean the same command when they parse to equal queries: 'get the cup' and
    'grab the cup' do; 'find the cup' and 'find the cap' do not. Every stop command
    ('stop', 'cancel', 'stop tracking the cup') means the same: stop.
    """
    from grounding_agent.core.control import is_stop_command
    from grounding_agent.core.parser import parse_command

    if is_stop_command(text):
        return 'stop'

    try:
        query = parse_command(text, reader=False)  # heard against the grammar's own words
    except CommandError:
        return None
    return dataclasses.replace(query, text='')


class CommandListener:
    """Judges recognitions; `hear()` runs the recogniser on one utterance and judges it."""

    def __init__(
        self,
        config: VoiceConfig | None = None,
        *,
        recognizer: Recognizer | None = None,
        meaning: Callable[[str], Hashable | None] = command_meaning,
        reader_meaning: Callable[[str], Hashable | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or VoiceConfig()
        self._meaning = meaning
        self._reader_meaning = reader_meaning or _reader_meaning
        self._clock = clock
        # The command asked back about, and when it was asked (clock time).
        self._pending: tuple[str, float] | None = None
        self._known_objects = frozenset(
            normalize_text(o) for o in (self.config.objects or default_objects())
        )
        self.recognizer = recognizer if recognizer is not None else build_recognizer(self.config)

    def hear(
        self, audio: FloatAudio, sample_rate: int, *, start_s: float | None = None
    ) -> HeardCommand:
        """Recognise one utterance (mono float audio at any rate) and judge it."""
        pcm = to_int16(resample(np.asarray(audio, dtype=np.float32), sample_rate, RECOGNIZER_RATE))
        recognition = self.recognizer.recognize(pcm)
        heard = self.judge(recognition)
        if not heard.accepted and self.config.free_form:
            fallback = self.recognizer.recognize_free_form(pcm)
            if fallback is not None:
                second = self.judge(fallback)
                # Keep the grammar's verdict unless the fallback actually found a command.
                if second.accepted:
                    heard = second
        return dataclasses.replace(heard, start_s=start_s)

    def judge(self, recognition: Recognition) -> HeardCommand:
        """The verdict on one utterance. A command asked back about ("Did you say ...?") is
        sent when the next utterance, within `confirm_seconds`, is a confident "yes"; any
        other utterance withdraws the question."""
        pending, self._pending = self._pending, None
        heard = self._judge(recognition, pending)
        if heard.asks:
            self._pending = (heard.asks, self._clock())
        return heard

    def _judge(self, recognition: Recognition, pending: tuple[str, float] | None) -> HeardCommand:
        text = recognition.text

        def verdict(command: str, confidence: float, reason: str) -> HeardCommand:
            return _verdict(recognition, command, confidence, reason)

        def refuse(reason: str, command: str = '', confidence: float = 0.0) -> HeardCommand:
            return verdict(command, confidence, reason)

        if not text:
            return refuse('nothing recognised')
        if recognition.snap:
            snapped = self._snap(recognition)
            if isinstance(snapped, HeardCommand):
                return snapped
            recognition = snapped
            text = recognition.text
        command = strip_wake_word(text, self.config.wake_word)
        if command is None:
            return refuse(f'no wake word: commands start with "{self.config.wake_word}"')
        if not command:
            return refuse('only the wake word was heard')
        if command in REPLIES:
            return self._reply(recognition, command, pending)
        grammar = recognition.grammar
        if grammar is not None and not grammar.matches(text):
            return refuse('incomplete sentence: the decoder stopped inside a command', command)
        meaning = self._meaning(command)
        if meaning is None:
            return refuse('not a command the parser understands', command)
        if grammar is None and (problem := self._free_form_problem(command, meaning)):
            return refuse(problem, command)
        confidence = self._confidence(recognition, meaning, grammar)
        if confidence < self.config.confidence_threshold:
            alternative = self._alternative(recognition, meaning, grammar)
            # No rival meaning: a yes/no question. With one, "Did you say X, or Y?" below.
            if confidence >= self.config.ask_back_threshold and not alternative:
                return dataclasses.replace(
                    refuse(
                        f'low confidence {confidence:.2f} < '
                        f'{self.config.confidence_threshold:.2f}: asking back',
                        command,
                        confidence,
                    ),
                    prompt=f'Did you say {command}? Say yes, or say the command again.',
                    asks=command,
                )
            return dataclasses.replace(
                refuse(
                    f'low confidence {confidence:.2f} < '
                    f'{self.config.confidence_threshold:.2f}: please say it again'
                    + (f" (or did you mean '{alternative}'?)" if alternative else ''),
                    command,
                    confidence,
                ),
                alternative=alternative,
                prompt=(
                    f'Did you say {command}, or {alternative}? Please say it again.'
                    if alternative
                    else f'I am not sure I heard {command}. Please say it again.'
                ),
            )
        return dataclasses.replace(verdict(command, confidence, ''), prompt=f'OK: {command}.')

    @functools.cached_property
    def snap_grammar(self) -> CommandGrammar:
        """The grammar free transcripts are snapped to: every sentence of the command
        language over the configured objects (no recogniser dictionary limits it)."""
        from grounding_agent.voice.grammar import build_command_grammar

        return build_command_grammar(
            objects=self.config.objects or (), wake_word=self.config.wake_word
        )

    def _snap(self, recognition: Recognition) -> Recognition | HeardCommand:
        """A free transcript as the grammar sentence it is nearest to, or the refusal.

        - no edits: the transcript is a sentence of the grammar and is judged as one;
        - a few edits (at most `snap_max_edits` per transcript word, rounded down) that leave
          the meaning as the command reader reads the transcript unchanged ('please pick up a
          red mug' -> 'pick up the red mug'): judged as the grammar sentence;
        - a few edits that change or lose the meaning: refused, and the robot asks back
          "Did you say <sentence>?" (the sentence is the offered `alternative`);
        - more edits: refused without a prompt (talk, noise, or a transcript that is not a
          command), because a guess that far from what was heard is no command.
        """
        from grounding_agent.voice.snap import snap_to_grammar

        heard = recognition.text
        snap = snap_to_grammar(self.snap_grammar, heard)
        words = len(heard.split())

        def refuse(reason: str, alternative: str = '') -> HeardCommand:
            prompt = f'Did you say {alternative}? Say yes, or say the command again.'
            return _verdict(
                recognition,
                '',
                0.0,
                reason,
                prompt=prompt if alternative else '',
                asks=alternative,
            )

        if snap is None:
            return refuse('not a command: too long to be one sentence')
        allowed = int(self.config.snap_max_edits * words)
        if snap.edits > allowed:
            return refuse(
                f'not a command: the nearest command "{snap.sentence}" is {snap.edits} word '
                f'edits away (at most {allowed})'
            )
        if snap.edits:
            nearest = strip_wake_word(snap.sentence, self.config.wake_word) or snap.sentence
            said = strip_wake_word(heard, self.config.wake_word)
            meant = self._reader_meaning(said) if said else None
            if meant is None or meant != self._meaning(nearest):
                return refuse(
                    f'heard "{heard}", which is not a command; the nearest is "{nearest}" '
                    f'({snap.edits} word edits): asking back',
                    nearest,
                )
        return dataclasses.replace(
            recognition,
            text=snap.sentence,
            hypotheses=tuple(
                Hypothesis(snap.sentence, h.posterior) for h in recognition.hypotheses[:1]
            ),
            grammar=self.snap_grammar,
            snap=False,
        )

    def _reply(
        self, recognition: Recognition, reply: str, pending: tuple[str, float] | None
    ) -> HeardCommand:
        """A "yes" or "no": it confirms or withdraws the command asked back about, if any."""

        def verdict(command: str, confidence: float, reason: str, prompt: str) -> HeardCommand:
            return _verdict(recognition, command, confidence, reason, prompt=prompt)

        if pending is None:
            return verdict('', 0.0, f'"{reply}" answers no question', '')
        command, asked = pending
        if self._clock() - asked > self.config.confirm_seconds:
            return verdict(
                '',
                0.0,
                f'"{reply}" came too late: more than {self.config.confirm_seconds:g} s '
                'after the question',
                '',
            )
        # The reply itself must be heard confidently: its posterior share among the sentences.
        shares = [
            sum(
                h.posterior
                for h in ranking
                if strip_wake_word(h.text, self.config.wake_word) == reply
            )
            for ranking in self._rankings(recognition)
        ]
        confidence = min(1.0, sum(shares) / len(shares)) if shares else 0.0
        if confidence < self.config.confidence_threshold:
            self._pending = pending  # the question still stands
            return verdict('', confidence, f'unsure reply: confidence {confidence:.2f}', '')
        if reply == 'yes':
            return verdict(command, confidence, '', f'OK: {command}.')
        return verdict('', confidence, 'the operator said no', 'OK, please say the command again.')

    def _free_form_problem(self, command: str, meaning: Hashable) -> str | None:
        """Free-form text is held to more than parsing: the parser reads almost any noun
        phrase as 'find ...', so 'the weather is nice' would be a command. It must open with a
        verb or a question and name an object the robot is configured to know."""
        from grounding_agent.core.parser import tokenize_command

        try:
            opener = tokenize_command(command)[0].kind
        except (CommandError, IndexError):
            return 'not a command the parser understands'
        if opener not in _COMMAND_OPENERS:
            return 'free-form speech that does not start with a verb or a question'
        noun = getattr(getattr(meaning, 'target', None), 'noun', None)
        if noun is not None and noun not in self._known_objects:
            return f'free-form speech about "{noun}", which is not a configured object'
        return None

    def _rankings(self, recognition: Recognition) -> tuple[tuple[Hypothesis, ...], ...]:
        return (recognition.hypotheses, *recognition.views)

    def _commands(
        self, hypotheses: tuple[Hypothesis, ...], grammar: CommandGrammar | None
    ) -> list[tuple[str, Hashable | None, float]]:
        """(command, meaning, posterior) of each complete sentence the wake word opens."""
        commands = []
        for hypothesis in hypotheses:
            if grammar is not None and not grammar.matches(hypothesis.text):
                continue
            command = strip_wake_word(hypothesis.text, self.config.wake_word)
            if command:
                commands.append((command, self._meaning(command), hypothesis.posterior))
        return commands

    def _confidence(
        self, recognition: Recognition, meaning: Hashable, grammar: CommandGrammar | None
    ) -> float:
        """The mean, over the recognition's hypotheses and each of its views, of the
        posterior share of complete sentences that mean `meaning`."""
        rankings = self._rankings(recognition)
        shares = [
            sum(p for _, m, p in self._commands(ranking, grammar) if m == meaning)
            for ranking in rankings
        ]
        return min(1.0, sum(shares) / len(shares))

    def _alternative(
        self, recognition: Recognition, meaning: Hashable, grammar: CommandGrammar | None
    ) -> str:
        """The likeliest command (summed over the rankings) that means something else."""
        support: dict[str, float] = {}
        for ranking in self._rankings(recognition):
            for command, other, posterior in self._commands(ranking, grammar):
                if other is not None and other != meaning:
                    support[command] = support.get(command, 0.0) + posterior
        return max(support, key=support.__getitem__) if support else ''

    def close(self) -> None:
        self.recognizer.close()


def build_grammar(config: VoiceConfig, dictionary_path: str | None = None) -> CommandGrammar:
    """The command grammar for `config`, checked against the recogniser's dictionary."""
    from grounding_agent.voice.dictionary import PronunciationDictionary
    from grounding_agent.voice.grammar import build_command_grammar

    grammar = build_command_grammar(
        objects=config.objects or (),
        dictionary=PronunciationDictionary.load(dictionary_path),
        wake_word=config.wake_word,
    )
    return grammar


def build_recognizer(config: VoiceConfig) -> Recognizer:
    """The recogniser `config` names, ready to decode."""
    from grounding_agent.voice.recognizer import (
        FasterWhisperRecognizer,
        PocketsphinxRecognizer,
        WhisperRecognizer,
    )

    if config.recognizer == 'whisper':
        return WhisperRecognizer(
            config.whisper_model_dir,
            device=config.whisper_device,
            beam_size=config.whisper_beam_size,
        )
    if config.recognizer == 'faster_whisper':
        return FasterWhisperRecognizer(
            config.whisper_model_dir,
            device=config.whisper_device,
            compute_type=config.whisper_compute_type,
        )
    return PocketsphinxRecognizer(
        build_grammar(config),
        dither=config.dither,
        score_scale=config.score_scale,
        speed_views=config.speed_views,
    )


class VoicePipeline:
    """A continuous audio stream in, one `HeardCommand` per utterance out.

    Feed mono float audio at the stream's rate; voice activity detection cuts utterances, which
    are resampled to 16 kHz and judged. Utterances cut at the maximum length are refused
    without decoding: a command is a sentence, not a speech.
    """

    def __init__(self, listener: CommandListener, sample_rate: int) -> None:
        self.listener = listener
        self.sample_rate = sample_rate
        self.vad = EnergyVad(sample_rate, listener.config.vad)
        self.utterances = 0

    def feed(self, samples: FloatAudio) -> list[HeardCommand]:
        return [self._hear(u) for u in self.vad.feed(samples)]

    def flush(self) -> list[HeardCommand]:
        return [self._hear(u) for u in self.vad.flush()]

    @classmethod
    def hear_recording(
        cls, listener: CommandListener, samples: FloatAudio, sample_rate: int
    ) -> list[HeardCommand]:
        """Every utterance of a whole recording (a WAV file), judged."""
        pipeline = cls(listener, sample_rate)
        return pipeline.feed(samples) + pipeline.flush()

    def _hear(self, utterance: Utterance) -> HeardCommand:
        self.utterances += 1
        if utterance.cut:
            return HeardCommand(
                '',
                '',
                0.0,
                False,
                f'utterance longer than {self.listener.config.vad.max_utterance_ms} ms: '
                'say one command at a time',
                audio_s=utterance.duration_s,
                start_s=utterance.start_s,
            )
        return self.listener.hear(
            utterance.samples, utterance.sample_rate, start_s=utterance.start_s
        )
