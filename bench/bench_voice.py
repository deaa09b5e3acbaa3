"""Spoken-command accuracy and speed of the offline recogniser (pocketsphinx + generated grammar).

The fixed list of spoken commands (grounding_agent/voice/synthetic.py) is synthesised with
espeak-ng in several voices at 140 and 175 words per minute and decoded through the same
VAD -> 16 kHz -> pocketsphinx (+ speed views) -> checks pipeline as the voice_command node. For
each voice and speed it reports how many commands would reach the robot exactly as said, how
many with other words but the same meaning (same parsed query), how many WRONG (a different
command: the failure that matters), how many were refused ("say it again"), and the real-time
factor (decode time / audio time). Every utterance is decoded once with the confidence threshold
at 0, so the threshold sweep is measured on the same decodes, and so are the figures without the
speed views (the same recognitions judged on the first decode alone). Side by side in the same
run: the first decode's time alone, without the dither noise floor, and free-form decoding with
the en-us language model (word error rate).

Targets (acceptance voices en-us and en-us+klatt): >= 90 % exact, 0 wrong, real-time factor
< 0.2. Writes the 'voice' section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine_line, update_section
from grounding_agent.voice.audio import RECOGNIZER_RATE, read_wav, resample, to_int16
from grounding_agent.voice.listener import (
    CommandListener,
    HeardCommand,
    VoiceConfig,
    VoicePipeline,
    build_grammar,
    command_meaning,
)
from grounding_agent.voice.recognizer import PocketsphinxRecognizer, Recognition
from grounding_agent.voice.synthetic import SPOKEN_COMMANDS, RecordingRecognizer, synthesize_all

ACCEPTANCE_VOICES = ('en-us', 'en-us+klatt')
OTHER_VOICES = ('en', 'en-gb-x-rp', 'en-us+f3')
SPEEDS = (140, 175)
THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)
DEFAULT_THRESHOLD = 0.9


@dataclass(frozen=True)
class Outcome:
    voice: str
    speed: int
    said: str
    heard: tuple[HeardCommand, ...]
    recognitions: tuple[Recognition, ...] = ()

    def verdict(self, threshold: float) -> str:
        sent = [h.command for h in self.heard if h.accepted and h.confidence >= threshold]
        if not sent:
            return 'refused'
        if sent == [self.said]:
            return 'exact'
        if len(sent) == 1 and command_meaning(sent[0]) == command_meaning(self.said):
            return 'same'
        return 'wrong'


def _decode(listener: CommandListener, wavs: dict[tuple[str, int, str], Path]) -> list[Outcome]:
    recording = RecordingRecognizer(listener.recognizer)
    listener = CommandListener(listener.config, recognizer=recording)
    outcomes = []
    for (voice, speed, said), path in wavs.items():
        heard = tuple(VoicePipeline.hear_recording(listener, *read_wav(path)))
        outcomes.append(Outcome(voice, speed, said, heard, tuple(recording.take())))
    return outcomes


def _without_views(listener: CommandListener, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The same decodes judged on the first ranking alone (the speed views dropped)."""
    return [
        dataclasses.replace(
            o,
            heard=tuple(
                dataclasses.replace(
                    listener.judge(dataclasses.replace(r, views=())), decode_s=h.decode_s
                )
                for r, h in zip(o.recognitions, o.heard)
            ),
        )
        for o in outcomes
    ]


def _word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def _rates(outcomes: Sequence[Outcome], threshold: float) -> dict[str, float]:
    verdicts = [o.verdict(threshold) for o in outcomes]
    n = max(1, len(verdicts))
    return {k: verdicts.count(k) / n for k in ('exact', 'same', 'wrong', 'refused')}


def _rtf(outcomes: Sequence[Outcome]) -> float:
    audio = sum(h.audio_s for o in outcomes for h in o.heard)
    return sum(h.decode_s for o in outcomes for h in o.heard) / audio if audio else 0.0


def _row(label: str, outcomes: Sequence[Outcome], threshold: float = DEFAULT_THRESHOLD) -> str:
    rates = _rates(outcomes, threshold)
    wrong = sum(o.verdict(threshold) == 'wrong' for o in outcomes)
    return (
        f'| {label} | {len(outcomes)} | {rates["exact"]:.1%} | {rates["same"]:.1%} | '
        f'**{rates["wrong"]:.1%}** ({wrong}) | {rates["refused"]:.1%} | {_rtf(outcomes):.3f} |'
    )


def _wrong_examples(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.verdict(DEFAULT_THRESHOLD) == 'wrong':
            sent = next(h for h in o.heard if h.accepted)
            lines.append(
                f'- {o.voice} {o.speed} wpm: said "{o.said}", sent "{sent.command}" '
                f'(confidence {sent.confidence:.3f})'
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='acceptance voices only')
    parser.add_argument('--no-write', action='store_true', help='print, do not update the docs')
    args = parser.parse_args(argv)
    if shutil.which('espeak-ng') is None:
        print('espeak-ng is not installed (apt-get install espeak-ng)', file=sys.stderr)
        return 2
    voices = ACCEPTANCE_VOICES + (() if args.quick else OTHER_VOICES)
    grammar = build_grammar(VoiceConfig())
    recognizer = PocketsphinxRecognizer(grammar)
    listener = CommandListener(VoiceConfig(confidence_threshold=0.0), recognizer=recognizer)
    with tempfile.TemporaryDirectory() as tmp:
        wavs = synthesize_all(SPOKEN_COMMANDS, tmp, voices=voices, speeds=SPEEDS)
        print(f'decoding {len(wavs)} utterances', file=sys.stderr)
        outcomes = _decode(listener, wavs)
        acceptance_wavs = {k: p for k, p in wavs.items() if k[0] in ACCEPTANCE_VOICES}
        # Time of the first decode alone, on the same audio (the views' cost side by side).
        viewless = _decode(
            CommandListener(
                VoiceConfig(confidence_threshold=0.0, speed_views=()),
                recognizer=PocketsphinxRecognizer(grammar, speed_views=()),
            ),
            acceptance_wavs,
        )
        undithered = _decode(
            CommandListener(
                VoiceConfig(confidence_threshold=0.0),
                recognizer=PocketsphinxRecognizer(grammar, dither=0.0),
            ),
            acceptance_wavs,
        )
        free_errors = free_words = free_exact = 0
        free_decode = free_audio = 0.0
        # Free-form decoding is slow: the slower speech of both acceptance voices is enough.
        free_form_wavs = {k: p for k, p in acceptance_wavs.items() if k[1] == SPEEDS[0]}
        for (_, _, said), path in free_form_wavs.items():
            samples, rate = read_wav(path)
            pcm = to_int16(resample(samples, rate, RECOGNIZER_RATE))
            recognition = recognizer.recognize_free_form(pcm)
            free_errors += _word_errors(said, recognition.text)
            free_words += len(said.split())
            free_exact += recognition.text == said
            free_decode += recognition.decode_s
            free_audio += recognition.audio_s

    acceptance = [o for o in outcomes if o.voice in ACCEPTANCE_VOICES]
    blind = _without_views(listener, outcomes)
    blind_acceptance = [o for o in blind if o.voice in ACCEPTANCE_VOICES]
    header = (
        '| voice, speed | utterances | exact | same meaning | wrong | refused | RTF |\n'
        '|---|---:|---:|---:|---:|---:|---:|'
    )
    rows = [
        _row(f'{v}, {s} wpm', [o for o in outcomes if o.voice == v and o.speed == s])
        for v in voices
        for s in SPEEDS
    ]
    rows.append(_row('**acceptance voices (en-us, en-us+klatt)**', acceptance))
    blind_rows = [
        _row(f'{v}, {s} wpm', [o for o in blind if o.voice == v and o.speed == s])
        for v in voices
        for s in SPEEDS
    ]
    blind_rows.append(_row('**acceptance voices (en-us, en-us+klatt)**', blind_acceptance))
    sweep = [
        '| threshold | exact | same meaning | wrong | refused |',
        '|---:|---:|---:|---:|---:|',
    ]
    for threshold in (0.0, *THRESHOLDS):
        r = _rates(acceptance, threshold)
        sweep.append(
            f'| {threshold:.2f} | {r["exact"]:.1%} | {r["same"]:.1%} | '
            f'{r["wrong"]:.1%} | {r["refused"]:.1%} |'
        )
    rates = _rates(acceptance, DEFAULT_THRESHOLD)
    wrong_count = sum(o.verdict(DEFAULT_THRESHOLD) == 'wrong' for o in acceptance)
    rtf = _rtf(acceptance)
    verdict = (
        f'Targets on the acceptance voices: exact {rates["exact"]:.1%} (>= 90 %: '
        f'{"met" if rates["exact"] >= 0.9 else "NOT met"}), wrong {wrong_count} '
        f'(0: {"met" if wrong_count == 0 else "NOT met"}), real-time factor {rtf:.3f} '
        f'(< 0.2: {"met" if rtf < 0.2 else "NOT met"}).'
    )
    markdown = '\n'.join(
        [
            '## Voice commands (pocketsphinx + generated JSGF grammar)',
            '',
            f'`python bench/bench_voice.py` on {machine_line()}. {len(SPOKEN_COMMANDS)} fixed '
            'commands (grounding_agent/voice/synthetic.py) synthesised with espeak-ng at 140 '
            "and 175 words per minute, decoded through the node's pipeline (energy VAD, "
            f'16 kHz, grammar with {len(grammar.words())} words, confidence threshold '
            f'{DEFAULT_THRESHOLD}). '
            '"exact": the command topic gets the sentence as said; "same meaning": other words, '
            'same parsed query (e.g. "get" for "fetch"); "wrong": a different command reaches the '
            'robot; "refused": heard on ~/heard but not sent. RTF: decode time / audio time, one '
            'core.',
            '',
            header,
            *rows,
            '',
            verdict,
            '',
            'Wrong commands at the default threshold:',
            *(_wrong_examples(outcomes) or ['- none']),
            '',
            'The same decodes judged without the speed views (confidence from the first '
            "decode's n-best alone; RTF column: the views' time included, see below):",
            '',
            header,
            *blind_rows,
            '',
            'Wrong commands without the speed views (all voices):',
            *(_wrong_examples(blind) or ['- none']),
            '',
            'Confidence threshold on the acceptance voices (same decodes):',
            '',
            *sweep,
            '',
            'Side by side on the acceptance voices, same run:',
            '',
            f'- real-time factor of the first decode alone (`speed_views=()`): '
            f'{_rtf(viewless):.3f}; with the two speed views: {rtf:.3f}.',
            f'- without the dither noise floor (`dither=0`): exact '
            f'{_rates(undithered, DEFAULT_THRESHOLD)["exact"]:.1%}, wrong '
            f'{_rates(undithered, DEFAULT_THRESHOLD)["wrong"]:.1%} (with it: '
            f'{rates["exact"]:.1%}, {rates["wrong"]:.1%}).',
            f'- free-form decoding with the en-us language model (no grammar; {SPEEDS[0]} wpm): '
            'word error rate '
            f'{free_errors / max(1, free_words):.1%}, {free_exact} of {len(free_form_wavs)} '
            f'sentences exact, RTF {free_decode / max(free_audio, 1e-9):.3f}. This is why the '
            'free-form fallback is off by default.',
        ]
    )
    print(markdown)
    if not args.no_write:
        update_section('voice', markdown)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
