"""OWLv2 / OWL-ViT open-vocabulary detection backends (`owlv2`, `owlvit`).

The text encoder and the image encoder run separately: query embeddings are computed once per
phrase set and kept in an LRU cache, so a standing query costs one image-encoder pass per frame.
The image encoder runs in torch, in ONNX Runtime (`model: x.onnx`) or in TensorRT
(`model: x.engine`); the processor and text encoder then come from the Hugging Face directory
named by the file's sidecar JSON or by `options.hf_model`. Scores are the sigmoid of the class
logits; boxes go through class-aware NMS and are mapped back to camera pixels (OWLv2 pads the
image to a square at the bottom/right, OWL-ViT stretches it). Each detection carries the
L2-normalised class embedding of its box for re-identification.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from grounding_agent.backends._hf import (
    PreparedImage,
    load_pretrained,
    prepare_image,
    resolve_device,
    resolve_dtype,
)
from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.backends.nms import class_aware_nms
from grounding_agent.backends.owl_graph import (
    EncoderSpec,
    owl_output_names,
    read_sidecar,
    resolve_hf_model,
)
from grounding_agent.core.errors import BackendError, ConfigError, GroundingError
from grounding_agent.core.types import Box, Detection
from grounding_agent.runtime.model_files import require_file

__all__ = [
    'FAMILIES',
    'OPTION_KEYS',
    'ImageEncoderRuntime',
    'OwlBackend',
    'OwlFamily',
    'OwlImageEncoder',
    'OwlPrediction',
    'OwlTextEncoder',
    'TorchImageEncoder',
    'cxcywh_to_pixels',
    'decode_detections',
    'exported_file_kind',
    'load_owl_model',
    'query_logits',
    'sigmoid',
]

#: Keys `BackendConfig.options` may hold for the OWL backends (anything else is a typo).
OPTION_KEYS = frozenset({'hf_model', 'image_size', 'text_cache_size', 'intra_op_threads'})
_DEFAULT_TEXT_CACHE = 64
# Boxes thinner than a pixel once clipped lie (almost) entirely in OWLv2's padding or off the
# image edge; they point at nothing the robot can see.
_MIN_BOX_SIDE = 1.0


@dataclass(frozen=True)
class OwlFamily:
    """What differs between OWLv2 and OWL-ViT for this backend."""

    name: str
    #: OWLv2 pads the image to a square (bottom/right) before resizing; OWL-ViT stretches it.
    pads_to_square: bool
    has_objectness: bool

    def model_class(self) -> Any:
        from transformers import Owlv2ForObjectDetection, OwlViTForObjectDetection

        return Owlv2ForObjectDetection if self.name == 'owlv2' else OwlViTForObjectDetection

    def processor_class(self) -> Any:
        from transformers import Owlv2Processor, OwlViTProcessor

        return Owlv2Processor if self.name == 'owlv2' else OwlViTProcessor


FAMILIES: dict[str, OwlFamily] = {
    'owlv2': OwlFamily('owlv2', pads_to_square=True, has_objectness=True),
    'owlvit': OwlFamily('owlvit', pads_to_square=False, has_objectness=False),
}


def _family(name: str) -> OwlFamily:
    family = FAMILIES.get(name)
    if family is None:
        raise ConfigError(f'unknown OWL backend {name!r}; expected one of {sorted(FAMILIES)}')
    return family


# --- pure post-processing


def sigmoid(values: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """Logistic function without overflow warnings for large negative logits."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float64)))).astype(np.float32)


def query_logits(
    class_embeds: npt.NDArray[np.float32],
    logit_shift: npt.NDArray[np.float32],
    logit_scale: npt.NDArray[np.float32],
    query_embeds: npt.NDArray[np.float32],
) -> npt.NDArray[np.float32]:
    """(P, Q) class logits from the image encoder's outputs and normalised query embeddings.

    Same arithmetic as OWL's class head: (cos(patch, query) + shift) * scale, per patch.
    """
    similarity = class_embeds.astype(np.float32) @ query_embeds.astype(np.float32).T
    return ((similarity + logit_shift[:, None]) * logit_scale[:, None]).astype(np.float32)


def cxcywh_to_pixels(
    boxes: npt.NDArray[np.floating[Any]], *, width: int, height: int, pads_to_square: bool
) -> npt.NDArray[np.float64]:
    """Normalised (cx, cy, w, h) model boxes -> (x1, y1, x2, y2) pixels of a width x height image.

    OWLv2 saw the image padded to a max(w, h) square at the bottom/right, so its 0..1 range
    spans that square; OWL-ViT saw the image stretched, so x spans the width and y the height.
    Boxes are clipped to the image (padding is not part of it).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    if pads_to_square:
        side = float(max(width, height))
        scale = np.array([side, side, side, side])
    else:
        scale = np.array([width, height, width, height], dtype=np.float64)
    pixels: npt.NDArray[np.float64] = corners * scale
    pixels[:, [0, 2]] = np.clip(pixels[:, [0, 2]], 0.0, float(width))
    pixels[:, [1, 3]] = np.clip(pixels[:, [1, 3]], 0.0, float(height))
    return pixels


def decode_detections(
    *,
    logits: npt.NDArray[np.float32],
    boxes_cxcywh: npt.NDArray[np.float32],
    class_embeds: npt.NDArray[np.float32] | None,
    phrases: Sequence[str],
    width: int,
    height: int,
    pads_to_square: bool,
    box_threshold: float,
    nms_iou: float,
    max_detections: int,
) -> list[Detection]:
    """Detections in pixels of the width x height model image, best score first.

    Every (box, phrase) pair whose sigmoid score reaches `box_threshold` is a candidate; boxes
    of one phrase suppress each other (IoU above `nms_iou`), boxes of different phrases do not.
    Boxes narrower or lower than one pixel once clipped (in OWLv2's padding) are dropped.
    """
    if logits.ndim != 2 or logits.shape[1] != len(phrases):
        raise BackendError(f'logits of shape {logits.shape} do not match {len(phrases)} phrases')
    scores = sigmoid(logits)
    pixels = cxcywh_to_pixels(
        boxes_cxcywh, width=width, height=height, pads_to_square=pads_to_square
    )
    has_area = (pixels[:, 2] - pixels[:, 0] >= _MIN_BOX_SIDE) & (
        pixels[:, 3] - pixels[:, 1] >= _MIN_BOX_SIDE
    )
    patch_ids, phrase_ids = np.nonzero((scores >= box_threshold) & has_area[:, None])
    if patch_ids.size == 0:
        return []
    pair_scores = scores[patch_ids, phrase_ids]
    keep = class_aware_nms(
        pixels[patch_ids],
        pair_scores,
        phrase_ids,
        iou_threshold=nms_iou,
        max_detections=max_detections,
    )
    embeddings = None
    if class_embeds is not None:
        norms = np.linalg.norm(class_embeds, axis=1, keepdims=True)
        embeddings = (class_embeds / np.maximum(norms, 1e-12)).astype(np.float32)
    detections = []
    for index in keep:
        patch = int(patch_ids[index])
        detections.append(
            Detection(
                box=Box.from_list(pixels[patch]),
                phrase=phrases[int(phrase_ids[index])],
                score=float(pair_scores[index]),
                embedding=None if embeddings is None else embeddings[patch].copy(),
            )
        )
    return detections


# --- torch modules


def load_owl_model(config: BackendConfig, *, model: str | None = None) -> Any:
    """The OWL detector of `config.name` from `model` (default `config.model`), eval mode, on
    the configured device and dtype. Raises ModelLoadError / ConfigError."""
    family = _family(config.name)
    device = resolve_device(config)
    detector = load_pretrained(family.model_class(), config, model=model)
    return detector.to(device).eval()


class OwlImageEncoder(torch.nn.Module):
    """The per-frame part of an OWL detector: pixel_values -> the graph outputs.

    Outputs, batch first, P patches: class_embeds (1, P, D) L2-normalised, logit_shift (1, P),
    logit_scale (1, P), pred_boxes (1, P, 4) normalised cx, cy, w, h, and for OWLv2
    objectness_logits (1, P). This is the module exported to ONNX.
    """

    def __init__(self, detector: Any, *, family: str, image_size: int | None = None) -> None:
        super().__init__()
        self.detector = detector
        self.family = _family(family)
        native = int(detector.config.vision_config.image_size)
        self.interpolate = image_size is not None and int(image_size) != native

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feature_map, _ = self.detector.image_embedder(
            pixel_values=pixel_values, interpolate_pos_encoding=self.interpolate
        )
        batch, rows, cols, width = feature_map.shape
        features = feature_map.reshape(batch, rows * cols, width)
        head = self.detector.class_head
        class_embeds = head.dense0(features)
        # Same epsilon as the class head, so logits match the full forward.
        class_embeds = class_embeds / (
            torch.linalg.norm(class_embeds, dim=-1, keepdim=True) + 1e-6
        )
        logit_shift = head.logit_shift(features)[..., 0]
        logit_scale = head.elu(head.logit_scale(features))[..., 0] + 1
        boxes = self.detector.box_predictor(features, feature_map, self.interpolate)
        outputs: tuple[torch.Tensor, ...] = (class_embeds, logit_shift, logit_scale, boxes)
        if self.family.has_objectness:
            outputs = (*outputs, self.detector.objectness_predictor(features))
        return outputs


class ImageEncoderRuntime(Protocol):
    """Runs the image encoder graph: (1, 3, S, S) float32 -> arrays by output name."""

    name: str

    def run(self, pixel_values: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]: ...

    def close(self) -> None: ...


class TorchImageEncoder:
    """The image encoder in torch (eager), on the configured device and dtype."""

    name = 'torch'

    def __init__(
        self,
        detector: Any,
        *,
        family: str,
        image_size: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self._module: OwlImageEncoder | None = OwlImageEncoder(
            detector, family=family, image_size=image_size
        ).eval()
        self._names = owl_output_names(family)
        self._device = device
        self._dtype = dtype

    def run(self, pixel_values: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        if self._module is None:
            raise BackendError('the OWL image encoder was closed')
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(pixel_values))
            outputs = self._module(inputs.to(self._device, self._dtype))
        return {
            name: tensor.float().cpu().numpy()
            for name, tensor in zip(self._names, outputs, strict=True)
        }

    def close(self) -> None:
        self._module = None


class OwlTextEncoder:
    """Query embeddings per phrase set, computed once and kept in an LRU cache.

    Keeps only the text tower of the detector (the vision tower can be freed when the image
    encoder runs in ONNX Runtime or TensorRT).
    """

    def __init__(
        self, detector: Any, tokenizer: Any, *, device: torch.device, cache_size: int
    ) -> None:
        base = getattr(detector, detector.base_model_prefix)
        self._text_model = base.text_model
        self._projection = base.text_projection
        self._tokenizer = tokenizer
        self._max_tokens = int(detector.config.text_config.max_position_embeddings)
        self._device = device
        self._cache: OrderedDict[tuple[str, ...], npt.NDArray[np.float32]] = OrderedDict()
        self._cache_size = cache_size
        self.hits = 0
        self.misses = 0

    def embed(self, phrases: tuple[str, ...]) -> npt.NDArray[np.float32]:
        """(Q, D) unit-length query embeddings of `phrases`, in order."""
        cached = self._cache.get(phrases)
        if cached is not None:
            self.hits += 1
            self._cache.move_to_end(phrases)
            return cached
        self.misses += 1
        # OWL was trained with 16 text positions, padded to that length; longer phrases are cut.
        tokens = self._tokenizer(
            list(phrases),
            padding='max_length',
            max_length=self._max_tokens,
            truncation=True,
            return_tensors='pt',
        )
        with torch.inference_mode():
            text = self._text_model(
                input_ids=tokens['input_ids'].to(self._device),
                attention_mask=tokens['attention_mask'].to(self._device),
            )
            embeds = self._projection(text.pooler_output).float()
        # The full model normalises twice (text_embeds, then the class head with +1e-6): keep
        # both so cached logits equal the full forward's.
        embeds = embeds / torch.linalg.norm(embeds, dim=-1, keepdim=True)
        embeds = embeds / (torch.linalg.norm(embeds, dim=-1, keepdim=True) + 1e-6)
        result: npt.NDArray[np.float32] = embeds.cpu().numpy().astype(np.float32)
        result.setflags(write=False)
        self._cache[phrases] = result
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def __len__(self) -> int:
        return len(self._cache)


# --- the backend


@dataclass(frozen=True)
class OwlPrediction:
    """The raw per-patch outputs for one image and one phrase set (diagnostics, parity tests).

    `logits` is (P, Q); `boxes_cxcywh` (P, 4) normalised to the model input; `class_embeds`
    (P, D); `objectness` (P,) for OWLv2. `image` is the camera image as the model saw it.
    """

    phrases: tuple[str, ...]
    logits: npt.NDArray[np.float32]
    boxes_cxcywh: npt.NDArray[np.float32]
    class_embeds: npt.NDArray[np.float32]
    objectness: npt.NDArray[np.float32] | None
    image: PreparedImage


def _check_options(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise ConfigError(f'unknown OWL backend option(s) {unknown}; known: {sorted(OPTION_KEYS)}')


def _int_option(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f'option {key} must be an integer, got {value!r}')
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f'option {key} must be an integer, got {value!r}') from exc


def _unique_phrases(phrases: Sequence[str]) -> tuple[str, ...]:
    if isinstance(phrases, str):
        raise BackendError('phrases must be a list of strings, not one string')
    seen: dict[str, None] = {}
    for phrase in phrases:
        if not isinstance(phrase, str):
            raise BackendError(f'phrases must be strings, got {type(phrase).__name__}')
        text = ' '.join(phrase.split())
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def exported_file_kind(path: str | Path) -> str:
    """'onnx', 'tensorrt' or 'torch' for a `BackendConfig.model` value."""
    text = str(path)
    if text.endswith('.onnx'):
        return 'onnx'
    if text.endswith('.engine'):
        return 'tensorrt'
    return 'torch'


@register_backend('owlv2')
@register_backend('owlvit')
class OwlBackend(Backend):
    """OWLv2 / OWL-ViT detection with cached text embeddings and a choice of image runtime.

    `config.model` is a Hugging Face id or directory (torch), an `.onnx` file (ONNX Runtime)
    or an `.engine` file (TensorRT). Options: `hf_model` (processor + text encoder for exported
    files, overrides the sidecar), `image_size` (model input side; default the model's own),
    `text_cache_size` (phrase sets kept, default 64), `intra_op_threads` (ONNX Runtime).
    """

    supports_verify = False
    supports_expression = False

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.family = _family(config.name)
        self.name = config.name
        _check_options(config.options)
        cache_size = _int_option(config.options, 'text_cache_size', _DEFAULT_TEXT_CACHE)
        if cache_size < 1:
            raise ConfigError(f'text_cache_size must be at least 1, got {cache_size}')
        self._intra_op_threads = _int_option(config.options, 'intra_op_threads', 0)
        self.device = resolve_device(config)
        self.dtype = resolve_dtype(config, self.device)
        model_path = config.model.strip()
        spec: EncoderSpec | None = None
        kind = exported_file_kind(model_path)
        hf_model = model_path
        if kind != 'torch':
            what = 'ONNX model' if kind == 'onnx' else 'TensorRT engine'
            require_file(model_path, what)
            spec = read_sidecar(model_path)
            hf_model = str(config.options.get('hf_model') or '')
            if not hf_model and spec is not None:
                hf_model = resolve_hf_model(model_path, spec.hf_model)
            if not hf_model:
                raise ConfigError(
                    f'{what} {model_path!r} has no sidecar JSON naming its Hugging Face '
                    'directory; set options.hf_model to the directory it was exported from'
                )
            if spec is not None and spec.family != self.family.name:
                raise ConfigError(
                    f'{model_path!r} was exported from an {spec.family} model but the backend '
                    f'is {self.family.name!r}'
                )
        processor = load_pretrained(
            self.family.processor_class(), config, model=hf_model, weights=False
        )
        detector = load_owl_model(config, model=hf_model)
        vision = detector.config.vision_config
        self.patch_size = int(vision.patch_size)
        default_size = spec.image_size if spec is not None else int(vision.image_size)
        self.image_size = _int_option(config.options, 'image_size', default_size)
        if self.image_size % self.patch_size or self.image_size < self.patch_size:
            raise ConfigError(
                f'image_size {self.image_size} must be a positive multiple of the patch size '
                f'{self.patch_size}'
            )
        if spec is not None and self.image_size != spec.image_size:
            raise ConfigError(
                f'{model_path!r} was exported for {spec.image_size} px input; image_size '
                f'{self.image_size} needs a new export (--image-size)'
            )
        self._image_processor = processor.image_processor
        self.text_encoder = OwlTextEncoder(
            detector, processor.tokenizer, device=self.device, cache_size=cache_size
        )
        self.image_encoder = self._make_image_encoder(detector, model_path, kind)
        self.runtime = self.image_encoder.name

    def _make_image_encoder(
        self, detector: Any, model_path: str, kind: str
    ) -> ImageEncoderRuntime:
        names = owl_output_names(self.family.name)
        if kind == 'torch':
            return TorchImageEncoder(
                detector,
                family=self.family.name,
                image_size=self.image_size,
                device=self.device,
                dtype=self.dtype,
            )
        if kind == 'onnx':
            from grounding_agent.runtime.onnx_runtime import OnnxImageEncoder

            return OnnxImageEncoder(
                model_path,
                device=self.config.device,
                output_names=names,
                intra_op_threads=self._intra_op_threads,
                fp16=self.dtype == torch.float16,
                engine_cache_dir=self.config.engine_cache_dir,
            )
        from grounding_agent.runtime.tensorrt_engine import TensorRTImageEncoder

        return TensorRTImageEncoder(model_path, device=self.config.device, output_names=names)

    def _pixel_values(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        size = {'height': self.image_size, 'width': self.image_size}
        batch = self._image_processor(images=image, size=size, crop_size=size, return_tensors='np')
        return np.ascontiguousarray(batch['pixel_values'], dtype=np.float32)

    def predict(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> OwlPrediction:
        """Raw per-patch outputs for `image` and `phrases` (at least one non-empty phrase)."""
        prepared = prepare_image(image, self.config.max_image_side)
        unique = _unique_phrases(phrases)
        if not unique:
            raise BackendError('no phrase to look for')
        try:
            queries = self.text_encoder.embed(unique)
            outputs = self.image_encoder.run(self._pixel_values(prepared.image))
        except GroundingError:
            raise
        except Exception as exc:  # torch / onnxruntime / tensorrt errors vary by version
            raise BackendError(
                f'{self.name} inference failed ({self.runtime}): {type(exc).__name__}: {exc}'
            ) from exc
        class_embeds = outputs['class_embeds'][0]
        logits = query_logits(
            class_embeds, outputs['logit_shift'][0], outputs['logit_scale'][0], queries
        )
        objectness = outputs.get('objectness_logits')
        return OwlPrediction(
            phrases=unique,
            logits=logits,
            boxes_cxcywh=outputs['pred_boxes'][0],
            class_embeds=class_embeds,
            objectness=None if objectness is None else objectness[0],
            image=prepared,
        )

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        if not _unique_phrases(phrases):
            prepare_image(image, self.config.max_image_side)  # still refuse a bad image
            return []
        prediction = self.predict(image, phrases)
        prepared = prediction.image
        detections = decode_detections(
            logits=prediction.logits,
            boxes_cxcywh=prediction.boxes_cxcywh,
            class_embeds=prediction.class_embeds,
            phrases=prediction.phrases,
            width=prepared.width,
            height=prepared.height,
            pads_to_square=self.family.pads_to_square,
            box_threshold=self.config.box_threshold,
            nms_iou=self.config.nms_iou,
            max_detections=self.config.max_detections,
        )
        return [d.with_updates(box=prepared.to_original(d.box)) for d in detections]

    def close(self) -> None:
        self.image_encoder.close()
