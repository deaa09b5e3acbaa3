"""The `qwen_vl` backend: Qwen2.5-VL / Qwen3-VL ground whole expressions and verify candidates.

A generative model answers in text; `vlm_parsing` reads the boxes out of it and maps them from
the model's coordinate convention to camera pixels. `verify` asks a yes/no question about one
candidate box and reads P(yes) from the logits of the first answer token, which is what the
resolver uses to confirm or reject its winner. torch and transformers are imported inside the
backend so importing this module is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.backends._hf import load_pretrained, prepare_image, resolve_device
from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.backends.nms import nms_detections
from grounding_agent.backends.prompts import (
    IMAGE_PAD_TOKEN,
    detection_prompt,
    grounding_prompt,
    qwen_chat_prompt,
    verification_prompt,
)
from grounding_agent.backends.vlm_parsing import (
    CoordinateConvention,
    ImageGeometry,
    VlmReply,
    YesNo,
    expression_detection,
    parse_reply,
    phrase_detections,
    to_model_coordinates,
    yes_no_probability,
)
from grounding_agent.core.errors import BackendError, ConfigError, GroundingError, ModelLoadError
from grounding_agent.core.types import Box, Detection

__all__ = [
    'DEFAULT_MAX_NEW_TOKENS',
    'DEFAULT_MODEL',
    'ModelFamily',
    'QwenVlBackend',
    'model_family',
]

_LOG = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 128
#: Used when `BackendConfig.model` is empty: small enough for any Jetson Orin in bfloat16.
DEFAULT_MODEL = 'Qwen/Qwen3-VL-2B-Instruct'
# Spellings of the answer the first generated token may take; only single-token ones are used.
_YES_SPELLINGS = ('Yes', 'yes', ' Yes', ' yes', 'YES')
_NO_SPELLINGS = ('No', 'no', ' No', ' no', 'NO')


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """What differs between the supported model generations."""

    model_type: str
    model_class: str  # transformers class name; 'AutoModelForImageTextToText' when generic
    convention: CoordinateConvention
    system_prompt: str | None  # what the model's own chat template adds when none is given


_FAMILIES = {
    family.model_type: family
    for family in (
        ModelFamily(
            'qwen2_5_vl',
            'Qwen2_5_VLForConditionalGeneration',
            CoordinateConvention.RESIZED_PIXELS,
            'You are a helpful assistant.',
        ),
        ModelFamily(
            'qwen3_vl',
            'Qwen3VLForConditionalGeneration',
            CoordinateConvention.RELATIVE_1000,
            None,
        ),
        ModelFamily(
            'qwen3_vl_moe',
            'AutoModelForImageTextToText',
            CoordinateConvention.RELATIVE_1000,
            None,
        ),
    )
}


def model_family(model_type: str) -> ModelFamily:
    """The family of a saved config's `model_type`; ModelLoadError for unsupported models."""
    family = _FAMILIES.get(model_type)
    if family is None:
        raise ModelLoadError(
            f'qwen_vl backend cannot run model_type {model_type!r}; '
            f'supported: {", ".join(sorted(_FAMILIES))}'
        )
    return family


@dataclass(frozen=True)
class _Prepared:
    """One camera image ready for the model, and the sizes that map its boxes back."""

    pixel_values: Any
    image_grid_thw: Any
    image_tokens: int
    geometry: ImageGeometry


@register_backend('qwen_vl')
class QwenVlBackend(Backend):
    """Qwen2.5-VL / Qwen3-VL (Instruct) through transformers, greedy decoding.

    Options (`BackendConfig.options`): `max_new_tokens` (default 128), `max_pixels` /
    `min_pixels` (the processor's pixel budget; the camera image is first shrunk so its longest
    side is at most `max_image_side`).
    """

    name = 'qwen_vl'
    supports_verify = True
    supports_expression = True

    def __init__(self, config: BackendConfig) -> None:
        if not config.model.strip():
            config = config.model_copy(update={'model': DEFAULT_MODEL})
        super().__init__(config)
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        self._max_new_tokens = _positive_int_option(
            config.options, 'max_new_tokens', DEFAULT_MAX_NEW_TOKENS
        )
        self._pixel_budget: dict[str, int] = {}
        for option, key in (('max_pixels', 'longest_edge'), ('min_pixels', 'shortest_edge')):
            if option in config.options:
                self._pixel_budget[key] = _positive_int_option(config.options, option, 1)
        self._device = resolve_device(config)
        saved_config = load_pretrained(AutoConfig, config, weights=False)
        self.family = model_family(str(getattr(saved_config, 'model_type', '')))
        self._tokenizer = load_pretrained(AutoTokenizer, config, weights=False)
        # The Pil image processor: the default one needs torchvision, which robots may lack.
        self._image_processor = load_pretrained(Qwen2VLImageProcessorPil, config, weights=False)
        self._model: Any = load_pretrained(_model_class(self.family), config)
        self._model = self._model.to(self._device).eval()
        self._dtype = next(self._model.parameters()).dtype
        self._image_token_id = self._special_token_id(IMAGE_PAD_TOKEN)
        expected = getattr(self._model.config, 'image_token_id', self._image_token_id)
        if expected != self._image_token_id:
            raise ModelLoadError(
                f'tokenizer maps {IMAGE_PAD_TOKEN} to {self._image_token_id} but the model '
                f'expects {expected}: tokenizer and weights in {config.model!r} do not match'
            )
        self._yes_ids = self._single_token_ids(_YES_SPELLINGS)
        self._no_ids = self._single_token_ids(_NO_SPELLINGS)
        # Without one-token yes and no answers there is no probability to read.
        self.supports_verify = bool(self._yes_ids and self._no_ids)
        self._merge = int(getattr(self._image_processor, 'merge_size', 2))
        self._patch = int(getattr(self._image_processor, 'patch_size', 14))
        #: The last reply as parsed (with notes), and its raw text, for diagnostics.
        self.last_reply: VlmReply | None = None
        self.last_reply_text = ''

    # -- public API -------------------------------------------------------------------------

    def ground_expression(
        self, image: npt.NDArray[np.uint8], description: str
    ) -> Detection | None:
        """The one box GroundingME's prompt yields for `description`, or None when absent.

        When the model lists several boxes anyway, the first one inside the image is kept (and
        noted in the log and in `last_reply`).
        """
        text = _checked_text(description, 'description')
        prepared = self._prepare(image)
        reply, confidence = self._generate(prepared, grounding_prompt(text))
        parsed = parse_reply(reply)
        try:
            detection, self.last_reply = expression_detection(
                parsed,
                description=description,
                score=confidence,
                convention=self.family.convention,
                geometry=prepared.geometry,
            )
        except BackendError:
            self.last_reply = parsed
            raise
        if self.last_reply.notes:
            _LOG.debug('qwen_vl %r: %s', text, '; '.join(self.last_reply.notes))
        return detection

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        """All instances of each phrase, one generation per phrase.

        Score: the mean probability of the tokens the model generated for that reply (greedy
        decoding picks them; a hesitant reply scores lower). A reply that cannot be read raises
        BackendError quoting it.
        """
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise BackendError(f'phrases must be text, got {type(phrase).__name__}')
        wanted = list(dict.fromkeys(p for p in phrases if p.strip()))
        if not wanted:
            return []
        prepared = self._prepare(image)
        found: list[Detection] = []
        for phrase in wanted:
            reply, confidence = self._generate(prepared, detection_prompt(phrase))
            parsed = parse_reply(reply)
            self.last_reply = parsed
            found.extend(
                phrase_detections(
                    parsed,
                    phrase=phrase,
                    score=confidence,
                    convention=self.family.convention,
                    geometry=prepared.geometry,
                )
            )
        return nms_detections(
            found, iou_threshold=self.config.nms_iou, max_detections=self.config.max_detections
        )

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        """P(yes) that `box` shows `description`, softmax over the yes/no answer tokens only.

        The box is written into the question in the model's own coordinate convention (the
        image itself is not drawn on), so the model reads it the way it writes boxes.
        """
        if not self.supports_verify:
            return None
        return self.verify_probabilities(image, box, description).yes

    def verify_probabilities(
        self, image: npt.NDArray[np.uint8], box: Box, description: str
    ) -> YesNo:
        """P(yes) and P(no) for `verify`'s question; BackendError when no yes/no tokens exist."""
        text = _checked_text(description, 'description')
        prepared = self._prepare(image)
        inside = box.clip(prepared.geometry.width, prepared.geometry.height)
        if inside.area <= 0.0:
            raise BackendError(f'box {box.to_list()} to verify lies outside the image')
        coordinates = to_model_coordinates(
            inside, convention=self.family.convention, geometry=prepared.geometry
        )
        logits = self._next_token_logits(prepared, verification_prompt(text, coordinates))
        return yes_no_probability(logits, self._yes_ids, self._no_ids)

    def warmup(self) -> None:
        # Generation only: what a blank image makes the model say does not matter here.
        blank = self._prepare(np.zeros((64, 64, 3), dtype=np.uint8))
        self._generate(blank, grounding_prompt('object'))

    def close(self) -> None:
        self._model = None
        if self._device.type == 'cuda':
            import torch

            torch.cuda.empty_cache()

    # -- model plumbing ---------------------------------------------------------------------

    def _prepare(self, image: npt.NDArray[np.uint8]) -> _Prepared:
        if self._model is None:
            raise BackendError('qwen_vl backend was closed; create it again')
        shrunk = prepare_image(image, self.config.max_image_side)
        try:
            options: dict[str, Any] = {'return_tensors': 'pt'}
            if self._pixel_budget:
                size = dict(self._image_processor.size)
                size.update(self._pixel_budget)
                options['size'] = size
            pixels = self._image_processor(images=shrunk.image, **options)
        except Exception as exc:
            raise BackendError(f'qwen_vl image preprocessing failed: {exc}') from exc
        grid = pixels['image_grid_thw']
        _, rows, columns = (int(v) for v in grid[0])
        return _Prepared(
            pixel_values=pixels['pixel_values'].to(self._device, dtype=self._dtype),
            image_grid_thw=grid.to(self._device),
            image_tokens=(rows * columns) // (self._merge * self._merge),
            geometry=ImageGeometry(
                width=shrunk.original_width,
                height=shrunk.original_height,
                input_width=columns * self._patch,
                input_height=rows * self._patch,
            ),
        )

    def _inputs(self, prepared: _Prepared, user_text: str) -> dict[str, Any]:
        prompt = qwen_chat_prompt(
            user_text, image_tokens=prepared.image_tokens, system=self.family.system_prompt
        )
        encoded = self._tokenizer(prompt, return_tensors='pt', add_special_tokens=False)
        input_ids = encoded['input_ids'].to(self._device)
        return {
            'input_ids': input_ids,
            'attention_mask': encoded['attention_mask'].to(self._device),
            # Marks the image positions so the model computes its multimodal rotary positions.
            'mm_token_type_ids': (input_ids == self._image_token_id).int(),
            'pixel_values': prepared.pixel_values,
            'image_grid_thw': prepared.image_grid_thw,
        }

    def _generate(self, prepared: _Prepared, user_text: str) -> tuple[str, float]:
        """The decoded reply and the mean probability of its generated tokens."""
        import torch
        from transformers import GenerationConfig

        self.last_reply = None
        self.last_reply_text = ''
        inputs = self._inputs(prepared, user_text)
        own = self._model.generation_config
        # Plain greedy decoding: no sampling, no repetition penalty (it would bend coordinates).
        generation = GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=False,
            num_beams=1,
            max_new_tokens=self._max_new_tokens,
            eos_token_id=own.eos_token_id,
            pad_token_id=own.pad_token_id if own.pad_token_id is not None else own.eos_token_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        try:
            with torch.inference_mode():
                output = self._model.generate(**inputs, generation_config=generation)
        except GroundingError:
            raise
        except Exception as exc:  # a library failure becomes an error result, not a crash
            raise BackendError(f'qwen_vl generation failed: {type(exc).__name__}: {exc}') from exc
        new_tokens = output.sequences[0, inputs['input_ids'].shape[1] :]
        reply = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        self.last_reply_text = reply
        confidence = _mean_token_probability(output.logits, new_tokens)
        return reply, confidence

    def _next_token_logits(self, prepared: _Prepared, user_text: str) -> npt.NDArray[np.float64]:
        import torch

        inputs = self._inputs(prepared, user_text)
        try:
            with torch.inference_mode():
                output = self._model(**inputs)
        except Exception as exc:
            raise BackendError(f'qwen_vl forward failed: {type(exc).__name__}: {exc}') from exc
        logits: npt.NDArray[np.float64] = output.logits[0, -1].double().cpu().numpy()
        return logits

    def _special_token_id(self, token: str) -> int:
        token_id = self._tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self._tokenizer.unk_token_id:
            raise ModelLoadError(f'tokenizer of {self.config.model!r} has no {token} token')
        return int(token_id)

    def _single_token_ids(self, spellings: Sequence[str]) -> list[int]:
        ids = []
        for spelling in spellings:
            encoded = self._tokenizer.encode(spelling, add_special_tokens=False)
            if len(encoded) == 1:
                ids.append(int(encoded[0]))
        return list(dict.fromkeys(ids))


def _model_class(family: ModelFamily) -> Any:
    import transformers

    return getattr(transformers, family.model_class)


def _mean_token_probability(step_logits: Sequence[Any], tokens: Any) -> float:
    """Mean softmax probability of each generated token at its step; 0 for an empty reply."""
    import torch

    if not step_logits or len(tokens) == 0:
        return 0.0
    steps = min(len(step_logits), len(tokens))
    chosen = [
        torch.softmax(step_logits[i][0].float(), dim=-1)[int(tokens[i])].item()
        for i in range(steps)
    ]
    return float(min(1.0, max(0.0, sum(chosen) / steps)))


def _checked_text(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BackendError(f'qwen_vl needs a non-empty {what}, got {text!r}')
    return ' '.join(text.split())


def _positive_int_option(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f'qwen_vl option {key!r} must be a positive integer, got {value!r}')
    return value
