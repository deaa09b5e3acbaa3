"""The `grounding_dino` backend: open-vocabulary detection with Grounding DINO (transformers).

All phrases of a query go into one text prompt ("red mug . laptop ."); the model scores every box
against every token, and each box is credited to the requested phrase its text label names.
torch and transformers are imported inside the backend so importing this module is cheap.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from grounding_agent.backends._hf import load_pretrained, prepare_image, resolve_device
from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.backends.nms import nms_detections
from grounding_agent.core.errors import BackendError, GroundingError
from grounding_agent.core.types import Box, Detection

if TYPE_CHECKING:
    import torch

__all__ = [
    'DEFAULT_MODEL',
    'GroundingDinoBackend',
    'PromptChunk',
    'format_phrase',
    'phrase_for_label',
]

#: Used when `BackendConfig.model` is empty: the smallest released Grounding DINO.
DEFAULT_MODEL = 'IDEA-Research/grounding-dino-tiny'
# Phrase sets whose tokenised prompts are kept; a standing query reuses its prompt every frame.
_PROMPT_CACHE_SIZE = 32
# Tokens the label decoder may leave in a text label; they name no phrase.
_SPECIAL_WORDS = re.compile(r'\[(?:CLS|SEP|PAD|UNK|MASK)\]')


def format_phrase(phrase: str) -> str:
    """A phrase as Grounding DINO expects it: lower case, one line, no '.' (the separator)."""
    return ' '.join(phrase.replace('.', ' ').lower().split())


def _words(text: str) -> list[str]:
    return re.findall(r'[a-z0-9]+', text.lower())


def phrase_for_label(
    label: str, phrases: Sequence[str], token_scores: Sequence[float] | None = None
) -> int | None:
    """Index of the requested phrase a post-processed text label names, or None.

    Text labels are the decoded tokens above the text threshold, so they can be a phrase
    ('red mug'), part of one ('mug'), or pieces of several ('red mug. laptop.'). Each '.'-part
    of the label is compared with each phrase by the share of the phrase's words it contains;
    the best phrase wins. Ties (e.g. 'mug' for both 'red mug' and 'blue mug', or a label naming
    two whole phrases) go to the phrase with the higher token score, then to the part with the
    fewest foreign words.
    """
    parts = [_words(part) for part in _SPECIAL_WORDS.sub(' ', label).split('.')]
    parts = [part for part in parts if part]
    best: tuple[float, float, float] | None = None
    best_index: int | None = None
    for index, phrase in enumerate(phrases):
        phrase_words = _words(phrase)
        if not phrase_words:
            continue
        for part in parts:
            shared = sum(1 for word in set(part) if word in phrase_words)
            if shared == 0:
                continue
            coverage = shared / len(set(phrase_words))
            precision = shared / len(set(part))
            tie_break = float(token_scores[index]) if token_scores is not None else 0.0
            key = (coverage, tie_break, precision)
            if best is None or key > best:
                best, best_index = key, index
    return best_index


@dataclass(frozen=True)
class PromptChunk:
    """One tokenised text prompt and, per phrase in it, the token positions that belong to it.

    Phrases that do not fit the model's text length together are split over several chunks.
    """

    phrases: tuple[str, ...]
    text: str
    encoding: dict[str, Any]
    token_positions: tuple[tuple[int, ...], ...]


@register_backend('grounding_dino')
class GroundingDinoBackend(Backend):
    """Grounding DINO (e.g. IDEA-Research/grounding-dino-tiny) through transformers.

    `box_threshold` keeps boxes whose best token probability exceeds it; `text_threshold` decides
    which tokens make up a box's text label (a box whose label names no requested phrase is
    dropped). A detection's score is the best probability over its own phrase's tokens.
    """

    name = 'grounding_dino'
    supports_verify = False
    supports_expression = False

    def __init__(self, config: BackendConfig) -> None:
        if not config.model.strip():
            config = config.model_copy(update={'model': DEFAULT_MODEL})
        super().__init__(config)
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self._device = resolve_device(config)
        self._processor = load_pretrained(AutoProcessor, config, weights=False)
        model = load_pretrained(AutoModelForZeroShotObjectDetection, config)
        self._model: Any = model.to(self._device).eval()
        self._dtype = next(self._model.parameters()).dtype
        self._max_text_len = int(getattr(self._model.config, 'max_text_len', 256))
        self._prompts: OrderedDict[tuple[str, ...], tuple[PromptChunk, ...]] = OrderedDict()
        default_size = dict(getattr(self._processor.image_processor, 'size', None) or {})
        longest = min(int(default_size.get('longest_edge', 1333)), config.max_image_side)
        shortest = min(int(default_size.get('shortest_edge', 800)), longest)
        self._image_size = {'shortest_edge': shortest, 'longest_edge': longest}

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        requested: dict[str, list[str]] = {}
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise BackendError(f'phrases must be text, got {type(phrase).__name__}')
            formatted = format_phrase(phrase)
            if formatted:
                requested.setdefault(formatted, []).append(phrase)
        if not requested:
            return []
        prepared = prepare_image(image, self.config.max_image_side)
        if self._model is None:
            raise BackendError('grounding_dino backend was closed; create it again')
        import torch

        try:
            pixels = self._processor.image_processor(
                images=prepared.image, size=self._image_size, return_tensors='pt'
            )
            image_inputs = {
                'pixel_values': pixels['pixel_values'].to(self._device, dtype=self._dtype)
            }
            if 'pixel_mask' in pixels:
                image_inputs['pixel_mask'] = pixels['pixel_mask'].to(self._device)
            found: list[Detection] = []
            for chunk in self._prompt_chunks(tuple(requested)):
                with torch.inference_mode():
                    outputs = self._model(**image_inputs, **chunk.encoding)
                found.extend(
                    self.read_outputs(
                        outputs,
                        chunk,
                        image_height=prepared.original_height,
                        image_width=prepared.original_width,
                    )
                )
        except GroundingError:
            raise
        except Exception as exc:  # a library failure becomes an error result, not a crash
            raise BackendError(f'grounding_dino failed: {type(exc).__name__}: {exc}') from exc
        detections = [
            detection.with_updates(phrase=original)
            for detection in found
            for original in requested[detection.phrase]
        ]
        return nms_detections(
            detections,
            iou_threshold=self.config.nms_iou,
            max_detections=self.config.max_detections,
        )

    def read_outputs(
        self, outputs: Any, chunk: PromptChunk, *, image_height: int, image_width: int
    ) -> list[Detection]:
        """Detections (phrase = the formatted phrase) from one forward pass over `chunk`.

        Boxes come back relative to the image, so they are scaled to the camera image size
        here whatever size the processor resized to.
        """
        import torch

        results = self._processor.post_process_grounded_object_detection(
            outputs,
            chunk.encoding['input_ids'],
            threshold=self.config.box_threshold,
            text_threshold=self.config.text_threshold,
            target_sizes=[(image_height, image_width)],
        )[0]
        # The same selection post-processing made, to read each kept box's per-token scores.
        probabilities = torch.sigmoid(outputs.logits[0].float())
        kept = probabilities[probabilities.max(dim=-1).values > self.config.box_threshold]
        boxes = results['boxes'].float().cpu().numpy()
        labels = list(results['text_labels'])
        if not (len(labels) == boxes.shape[0] == kept.shape[0]):
            raise BackendError('grounding_dino post-processing returned inconsistent results')
        detections = []
        for row, label, values in zip(kept, labels, boxes):
            token_scores = [
                float(row[list(positions)].max()) if positions else 0.0
                for positions in chunk.token_positions
            ]
            index = phrase_for_label(label, chunk.phrases, token_scores)
            if index is None or not np.all(np.isfinite(values)):
                continue
            x1, x2 = sorted((float(values[0]), float(values[2])))
            y1, y2 = sorted((float(values[1]), float(values[3])))
            box = Box(x1, y1, x2, y2).clip(image_width, image_height)
            if box.area <= 0.0:
                continue
            detections.append(
                Detection(
                    box=box,
                    phrase=chunk.phrases[index],
                    score=min(1.0, max(0.0, token_scores[index])),
                    label=label,
                )
            )
        return detections

    def _prompt_chunks(self, phrases: tuple[str, ...]) -> tuple[PromptChunk, ...]:
        cached = self._prompts.get(phrases)
        if cached is not None:
            self._prompts.move_to_end(phrases)
            return cached
        chunks = tuple(self._tokenise(group) for group in self._group_phrases(phrases))
        self._prompts[phrases] = chunks
        while len(self._prompts) > _PROMPT_CACHE_SIZE:
            self._prompts.popitem(last=False)
        return chunks

    def _group_phrases(self, phrases: tuple[str, ...]) -> list[tuple[str, ...]]:
        """Split phrases into groups whose prompt fits the model's text length."""
        tokenizer = self._processor.tokenizer
        budget = self._max_text_len - 2  # [CLS] and [SEP]
        groups: list[list[str]] = [[]]
        used = 0
        for phrase in phrases:
            cost = len(tokenizer(f'{phrase} .', add_special_tokens=False)['input_ids'])
            if groups[-1] and used + cost > budget:
                groups.append([])
                used = 0
            groups[-1].append(phrase)
            used += cost
        return [tuple(group) for group in groups]

    def _tokenise(self, phrases: tuple[str, ...]) -> PromptChunk:
        spans: list[tuple[int, int]] = []
        text = ''
        for phrase in phrases:
            if text:
                text += ' '
            spans.append((len(text), len(text) + len(phrase)))
            text += f'{phrase} .'
        encoded = self._processor.tokenizer(
            text,
            return_tensors='pt',
            return_offsets_mapping=True,
            truncation=True,
            max_length=self._max_text_len,
        )
        offsets = encoded.pop('offset_mapping')[0].tolist()
        positions = tuple(
            tuple(
                i
                for i, (begin, end) in enumerate(offsets)
                if end > begin and begin >= start and end <= stop
            )
            for start, stop in spans
        )
        encoding = {key: value.to(self._device) for key, value in encoded.items()}
        return PromptChunk(phrases, text, encoding, positions)

    def close(self) -> None:
        self._prompts.clear()
        self._model = None
        _empty_cuda_cache(self._device)


def _empty_cuda_cache(device: torch.device) -> None:
    if device.type == 'cuda':
        import torch

        torch.cuda.empty_cache()
