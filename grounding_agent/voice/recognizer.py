"""Speech recognisers: one utterance (16 kHz mono int16) in, ranked sentence hypotheses out.

`PocketsphinxRecognizer` decodes with a JSGF grammar generated from the parser's vocabulary and
reports the n-best sentences of the decoder's lattice with their posterior share, plus the same
shares re-measured on the utterance played slightly slower and faster (speed views: a
recogniser's confident mistakes on one rendering of a sentence rarely survive all three); it
can also decode free-form with the en-us language model (a fallback, off by default: on
synthetic voices it gets most words wrong). `WhisperRecognizer` runs Whisper through
transformers (GPU or CPU); `FasterWhisperRecognizer` runs a local faster-whisper model for users
who have one (the package is optional and imported only when that recogniser is built). Both
write free text, which the listener snaps to the command grammar.

Recognisers do not judge: whether a hypothesis becomes a command (wake word, complete sentence,
parse, confidence) is decided by `grounding_agent.voice.listener`.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.voice.dictionary import PronunciationDictionary
from grounding_agent.voice.errors import RecognizerError, VoiceConfigError
from grounding_agent.voice.grammar import CommandGrammar, normalize_text

__all__ = [
    'FasterWhisperRecognizer',
    'Hypothesis',
    'PocketsphinxRecognizer',
    'Recognition',
    'Recognizer',
    'WhisperRecognizer',
    'check_speed_views',
]

Int16Audio = npt.NDArray[np.int16]
_MIN_SAMPLES = 1600  # 0.1 s at 16 kHz: shorter than any word


@dataclass(frozen=True)
class Hypothesis:
    """One recognised sentence and its share of the posterior among the hypotheses (0..1)."""

    text: str
    posterior: float


@dataclass(frozen=True)
class Recognition:
    """What a recogniser heard in one utterance.

    `text` is the best sentence (normalised, '' when nothing was recognised); `hypotheses` the
    ranked alternatives including it. `views` holds the same sentences re-ranked on other
    renderings of the utterance (speed views), one tuple per rendering, for the listener to
    average with `hypotheses`. `grammar` is set when the search was constrained by the command
    grammar, whose sentences the listener can then check for completeness. `snap` marks a free
    transcript (Whisper) that the listener snaps to the nearest sentence of the command grammar.
    """

    text: str
    hypotheses: tuple[Hypothesis, ...] = ()
    views: tuple[tuple[Hypothesis, ...], ...] = ()
    engine: str = ''
    grammar: CommandGrammar | None = field(default=None, repr=False)
    audio_s: float = 0.0
    decode_s: float = 0.0
    snap: bool = False


class Recognizer(ABC):
    """Turns one utterance into a `Recognition`. Not thread-safe unless a subclass says so."""

    name = 'recognizer'

    @abstractmethod
    def recognize(self, audio: Int16Audio) -> Recognition:
        """Decode one utterance of 16 kHz mono 16-bit audio."""

    def recognize_free_form(self, audio: Int16Audio) -> Recognition | None:
        """Decode without the command grammar, when the recogniser can; None otherwise."""
        return None

    def close(self) -> None:  # noqa: B027  (optional hook, most recognisers hold no resources)
        """Release the model."""


def check_speed_views(speeds: Iterable[float]) -> tuple[float, ...]:
    """The speed views as floats; raises VoiceConfigError unless each lies in 0.8..1.25 and
    differs from 1.0 (the first decode is already at normal speed)."""
    checked = tuple(float(speed) for speed in speeds)
    for speed in checked:
        if not 0.8 <= speed <= 1.25 or speed == 1.0:
            raise VoiceConfigError(
                f'speed views must lie in 0.8..1.25 and differ from 1.0, got {speed}'
            )
    return checked


def _softmax_hypotheses(
    scored: dict[str, float], best: str, scale: float
) -> tuple[Hypothesis, ...]:
    """Path scores (log domain) -> posterior shares; `best` first even when the lattice's
    n-best ranks it differently from the Viterbi path."""
    if best and best not in scored:
        scored[best] = max(scored.values(), default=0.0)
    if not scored:
        return ()
    top = max(scored.values())
    weights = {text: math.exp((score - top) / scale) for text, score in scored.items()}
    total = sum(weights.values())
    ranked = sorted(weights.items(), key=lambda item: (item[0] != best, -item[1]))
    return tuple(Hypothesis(text, weight / total) for text, weight in ranked)


class PocketsphinxRecognizer(Recognizer):
    """pocketsphinx 5 with the generated command grammar (and optionally its en-us LM).

    `dither` adds that much white noise (RMS, in 16-bit units; 100 = -50 dBFS) before decoding,
    always the same noise: digital silence (synthetic speech, a muted microphone gate) gives the
    feature extraction log-of-zero frames, and on espeak-ng commands the noise floor raised exact
    sentence accuracy from about 45% to 90% in our measurements (bench/bench_voice.py).
    `score_scale` converts the n-best path score differences (pocketsphinx log units) into
    posterior shares: a larger value spreads the posterior, so more commands fall under the
    listener's confidence threshold. `nbest` bounds how many lattice paths are read.

    `speed_views` are playback speeds (0.95 = 5 % slower, pitch and tempo together, like the
    speed perturbation of ASR training) at which the utterance is decoded again, each time
    against a grammar of only the first decode's n-best sentences (cheap: about a fifth of a
    full decode for both). The acoustic model's systematic confusions of one rendering ("person"
    heard as "third tin" with 0.98 of the posterior) mostly do not hold at another, so the
    listener's confidence, averaged over the views, falls below the threshold. `()` turns the
    views off.
    """

    name = 'pocketsphinx'

    def __init__(
        self,
        grammar: CommandGrammar,
        *,
        dither: float = 100.0,
        score_scale: float = 50.0,
        nbest: int = 50,
        speed_views: tuple[float, ...] = (0.95, 1.05),
        model_dir: str | Path | None = None,
        dictionary_path: str | Path | None = None,
        language_model: str | Path | None = None,
    ) -> None:
        if dither < 0 or not math.isfinite(dither):
            raise VoiceConfigError(f'dither must be a finite level >= 0, got {dither}')
        if score_scale <= 0 or not math.isfinite(score_scale):
            raise VoiceConfigError(f'score_scale must be > 0, got {score_scale}')
        if nbest < 1:
            raise VoiceConfigError(f'nbest must be at least 1, got {nbest}')
        try:
            from pocketsphinx import Decoder, get_model_path
        except ImportError as exc:
            raise RecognizerError(
                'pocketsphinx is not installed: pip install pocketsphinx (its wheel ships the '
                'en-us model)'
            ) from exc
        self.grammar = grammar
        self.dither = float(dither)
        self.score_scale = float(score_scale)
        self.nbest = int(nbest)
        # Resampling ratios: playing at speed f makes the audio 1/f as long.
        self.speed_views = check_speed_views(speed_views)
        self._view_ratios = tuple(
            Fraction(1 / speed).limit_denominator(100) for speed in self.speed_views
        )
        self._language_model = str(
            language_model or Path(get_model_path('en-us')) / 'en-us.lm.bin'
        )
        self._free_form_ready = False
        self._lock = threading.Lock()
        # Batch cepstral mean normalisation over each whole utterance: the default live CMN
        # starts from a fixed guess and carries over between utterances, so a command's result
        # depended on what was said before it (and the first commands decoded far worse).
        options: dict[str, Any] = {'lm': None, 'loglevel': 'FATAL', 'cmn': 'batch'}
        if model_dir:
            options['hmm'] = str(model_dir)
        if dictionary_path:
            options['dict'] = str(dictionary_path)
        try:
            self._decoder = Decoder(**options)
            words = list(grammar.pronunciations.items())
            for index, (word, phones) in enumerate(words):
                self._decoder.add_word(word, phones, index == len(words) - 1)
            self._decoder.add_jsgf_string('commands', grammar.to_jsgf())
            self._decoder.activate_search('commands')
        except (RuntimeError, ValueError) as exc:
            raise RecognizerError(
                f'pocketsphinx could not load the command grammar: {exc}'
            ) from exc

    @classmethod
    def dictionary(cls, dictionary_path: str | Path | None = None) -> PronunciationDictionary:
        """The pronunciation dictionary this recogniser uses (to build its grammar with)."""
        return PronunciationDictionary.load(dictionary_path)

    def recognize(self, audio: Int16Audio) -> Recognition:
        with self._lock:
            self._decoder.activate_search('commands')
            return self._decode(audio, engine='pocketsphinx', grammar=self.grammar)

    def recognize_free_form(self, audio: Int16Audio) -> Recognition:
        with self._lock:
            if not self._free_form_ready:
                try:
                    self._decoder.add_lm_file('free_form', self._language_model)
                except (RuntimeError, ValueError) as exc:
                    raise RecognizerError(
                        f'cannot load the language model {self._language_model}: {exc}'
                    ) from exc
                self._free_form_ready = True
            self._decoder.activate_search('free_form')
            return self._decode(audio, engine='pocketsphinx-free-form', grammar=None)

    def _decode(
        self, audio: Int16Audio, *, engine: str, grammar: CommandGrammar | None
    ) -> Recognition:
        samples = np.asarray(audio, dtype=np.int16).reshape(-1)
        started = time.perf_counter()
        if samples.size < _MIN_SAMPLES:  # pocketsphinx fails on empty buffers; nothing to hear
            return Recognition('', (), (), engine, grammar, samples.size / 16_000, 0.0)
        text, scored = self._run(self._dithered(samples))
        hypotheses = _softmax_hypotheses(scored, text, self.score_scale) if text else ()
        views: tuple[tuple[Hypothesis, ...], ...] = ()
        if grammar is not None and hypotheses and self._view_ratios:
            views = self._speed_views(samples, [h.text for h in hypotheses])
        return Recognition(
            text=text,
            hypotheses=hypotheses,
            views=views,
            engine=engine,
            grammar=grammar,
            audio_s=samples.size / 16_000,
            decode_s=time.perf_counter() - started,
        )

    def _dithered(self, samples: npt.NDArray[Any]) -> Int16Audio:
        """The samples plus the fixed noise floor (the same noise for the same length)."""
        if self.dither <= 0:
            return np.asarray(samples, dtype=np.int16)
        noise = np.random.default_rng(0).normal(0.0, self.dither, samples.size)
        return np.clip(np.rint(samples + noise), -32768, 32767).astype(np.int16)

    def _run(self, samples: Int16Audio) -> tuple[str, dict[str, float]]:
        """Decode with the active search: the best sentence and the n-best path scores."""
        decoder = self._decoder
        try:
            decoder.start_utt()
            decoder.process_raw(samples.tobytes(), False, True)
            decoder.end_utt()
        except RuntimeError as exc:
            raise RecognizerError(f'pocketsphinx failed to decode: {exc}') from exc
        best = decoder.hyp()
        text = normalize_text(best.hypstr) if best is not None else ''
        scored: dict[str, float] = {}
        if text:
            logmath = decoder.get_logmath()
            for path in itertools.islice(decoder.nbest(), self.nbest):
                if path.score <= 0.0:  # underflowed: too far behind to matter
                    continue
                sentence = normalize_text(path.hypstr)
                if sentence:
                    score = float(logmath.log(path.score))
                    scored[sentence] = max(scored.get(sentence, score), score)
        return text, scored

    def _speed_views(
        self, samples: Int16Audio, sentences: list[str]
    ) -> tuple[tuple[Hypothesis, ...], ...]:
        """Re-rank `sentences` on the utterance played at each view's speed."""
        from scipy.signal import resample_poly

        alternatives = ' | '.join(f'( {sentence} )' for sentence in sentences)
        try:
            self._decoder.add_jsgf_string(
                'views', f'#JSGF V1.0;\ngrammar views;\npublic <sentence> = {alternatives};\n'
            )
            self._decoder.activate_search('views')
        except (RuntimeError, ValueError) as exc:
            raise RecognizerError(f'pocketsphinx could not build the view grammar: {exc}') from exc
        views = []
        for ratio in self._view_ratios:
            played = resample_poly(samples.astype(np.float64), ratio.numerator, ratio.denominator)
            text, scored = self._run(self._dithered(played))
            views.append(_softmax_hypotheses(scored, text, self.score_scale) if text else ())
        return tuple(views)


class FasterWhisperRecognizer(Recognizer):
    """faster-whisper (CTranslate2) with a local model directory; never downloads.

    Whisper transcribes free-form, so the listener snaps its text to the command grammar. The
    confidence is exp(mean token log-probability) of its segments.
    The package is optional: `pip install faster-whisper`.
    """

    name = 'faster_whisper'

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = 'cpu',
        compute_type: str = 'int8',
        language: str = 'en',
        beam_size: int = 5,
    ) -> None:
        if not str(model_dir).strip():
            raise VoiceConfigError(
                'the faster_whisper recogniser needs whisper_model_dir: a local directory with a '
                'CTranslate2 Whisper model (model.bin, config.json, tokenizer.json)'
            )
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise VoiceConfigError(f'whisper model directory {path} does not exist')
        if not (path / 'model.bin').is_file():
            raise VoiceConfigError(
                f'{path} holds no model.bin: not a CTranslate2 Whisper model directory '
                '(convert one with ct2-transformers-converter)'
            )
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise RecognizerError(
                'the faster_whisper recogniser needs the faster-whisper package: '
                'pip install faster-whisper'
            ) from exc
        try:
            self._model = WhisperModel(
                str(path), device=device, compute_type=compute_type, local_files_only=True
            )
        except Exception as exc:
            raise RecognizerError(f'faster-whisper could not load {path}: {exc}') from exc
        self.language = language
        self.beam_size = beam_size

    def recognize(self, audio: Int16Audio) -> Recognition:
        samples = np.asarray(audio, dtype=np.int16).reshape(-1).astype(np.float32) / 32768.0
        started = time.perf_counter()
        try:
            segments, _ = self._model.transcribe(
                samples, language=self.language, beam_size=self.beam_size, vad_filter=False
            )
            segments = list(segments)
        except Exception as exc:
            raise RecognizerError(f'faster-whisper failed to decode: {exc}') from exc
        text = normalize_text(' '.join(segment.text for segment in segments))
        logprobs = [float(segment.avg_logprob) for segment in segments]
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        return Recognition(
            text=text,
            hypotheses=(Hypothesis(text, min(1.0, confidence)),) if text else (),
            engine='faster-whisper',
            audio_s=samples.size / 16_000,
            decode_s=time.perf_counter() - started,
        )


class WhisperRecognizer(Recognizer):
    """Whisper through transformers, from a local directory or a cached Hugging Face id.

    Loaded like the project's other models (`grounding_agent.backends._hf.load_pretrained`):
    safetensors only, no remote code, offline unless told otherwise. Decoding is greedy or beam
    search with `beam_size`; the transcript's confidence is exp(mean log-probability of its
    tokens). Whisper writes free text, so the recognition is marked for the listener to snap it
    to the command grammar. Runs on a GPU (`device='cuda'`) or the CPU.
    """

    name = 'whisper'

    def __init__(
        self,
        model: str,
        *,
        device: str = 'cpu',
        dtype: str = 'auto',
        offline: bool = True,
        language: str = 'en',
        beam_size: int = 1,
        max_new_tokens: int = 64,
    ) -> None:
        if not str(model).strip():
            raise VoiceConfigError(
                'the whisper recogniser needs whisper_model_dir: a local directory written by '
                'save_pretrained (safetensors) or a Hugging Face id already in the cache'
            )
        if beam_size < 1 or max_new_tokens < 1:
            raise VoiceConfigError('whisper beam_size and max_new_tokens must be at least 1')
        try:
            import torch
            from transformers import WhisperForConditionalGeneration, WhisperProcessor
        except ImportError as exc:
            raise RecognizerError(
                f'the whisper recogniser needs torch and transformers: {exc}'
            ) from exc
        from grounding_agent.backends._hf import load_pretrained, resolve_device
        from grounding_agent.backends.base import BackendConfig
        from grounding_agent.core.errors import GroundingError

        try:
            config = BackendConfig(
                name='whisper', model=model, device=device, dtype=dtype, offline=offline
            )
            self._device = resolve_device(config)
            self._processor = load_pretrained(WhisperProcessor, config, weights=False)
            self._model = load_pretrained(WhisperForConditionalGeneration, config)
        except (GroundingError, ValueError) as exc:
            raise RecognizerError(f'whisper: {exc}') from exc
        self._model.to(self._device).eval()
        self._torch = torch
        self.language = language
        self.beam_size = int(beam_size)
        self.max_new_tokens = int(max_new_tokens)
        self._lock = threading.Lock()

    def recognize(self, audio: Int16Audio) -> Recognition:
        samples = np.asarray(audio, dtype=np.int16).reshape(-1).astype(np.float32) / 32768.0
        started = time.perf_counter()
        if samples.size < _MIN_SAMPLES:
            return Recognition('', (), (), 'whisper', None, samples.size / 16_000, 0.0, True)
        try:
            with self._lock:
                text, confidence = self._transcribe(samples)
        except Exception as exc:  # a model failure is one refused utterance, not a dead node
            raise RecognizerError(f'whisper failed to decode: {exc}') from exc
        text = normalize_text(text)
        return Recognition(
            text=text,
            hypotheses=(Hypothesis(text, confidence),) if text else (),
            engine='whisper',
            audio_s=samples.size / 16_000,
            decode_s=time.perf_counter() - started,
            snap=True,
        )

    def _start_tokens(self, sequence: Any) -> Any:
        """`sequence` opened by the decoder start token (some versions of generate leave it
        out of what they return)."""
        start = int(self._model.config.decoder_start_token_id)
        if int(sequence[0, 0]) == start:
            return sequence
        opener = self._torch.full((1, 1), start, dtype=sequence.dtype, device=sequence.device)
        return self._torch.cat([opener, sequence], dim=1)

    def _transcribe(self, samples: npt.NDArray[np.float32]) -> tuple[str, float]:
        torch = self._torch
        features = self._processor.feature_extractor(
            samples, sampling_rate=16_000, return_tensors='pt'
        ).input_features.to(self._device, dtype=self._model.dtype)
        # The start tokens take a few of the decoder's positions.
        room = int(self._model.config.max_target_positions) - 8
        options: dict[str, Any] = {
            'max_new_tokens': max(1, min(self.max_new_tokens, room)),
            'num_beams': self.beam_size,
            'do_sample': False,
        }
        # Real checkpoints know their languages and tasks; a model without them (a test model,
        # an English-only fine-tune) decodes from its start token.
        if getattr(self._model.generation_config, 'lang_to_id', None):
            options.update(language=self.language, task='transcribe')
        with torch.inference_mode():
            sequence = self._model.generate(features, **options)[:1]
            # The transcript's tokens scored by the model given the audio (one decoder pass;
            # the same for greedy and beam search).
            decoder_ids = self._start_tokens(sequence)
            logits = self._model(input_features=features, decoder_input_ids=decoder_ids).logits
            logprobs = torch.log_softmax(logits[0, :-1].float(), dim=-1)
            targets = decoder_ids[0, 1:]
            token_logprobs = logprobs.gather(1, targets[:, None])[:, 0].tolist()
        special = set(self._processor.tokenizer.all_special_ids)
        spoken = [
            lp
            for token, lp in zip(targets.tolist(), token_logprobs, strict=True)
            if token not in special and math.isfinite(lp)
        ]
        text = self._processor.tokenizer.decode(sequence[0], skip_special_tokens=True)
        confidence = math.exp(sum(spoken) / len(spoken)) if spoken else 0.0
        return str(text), min(1.0, confidence)
