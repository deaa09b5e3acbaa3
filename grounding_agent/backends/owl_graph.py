"""The graph contract of an exported OWL image encoder, and its sidecar JSON.

The exported graph is everything that depends on the camera image: pixel_values in, per-patch
class embeddings (L2-normalised), the class head's logit shift and scale, boxes and (OWLv2)
objectness out. Text (query) embeddings stay outside the graph, computed once per phrase set by
the torch text encoder and cached, so a standing query costs only this graph per frame; the
final logits are one small matrix product done after it (`owl.query_logits`).

A JSON sidecar (`<model>.onnx.json`, `<model>.engine.json`) written beside each exported file
names the Hugging Face directory whose processor and text encoder go with it, and the shapes.
`owl_export.py` writes the ONNX file; `runtime/` runs it without knowing it is OWL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from grounding_agent.core.errors import ConfigError
from grounding_agent.runtime.model_files import read_sidecar_json, write_sidecar_json

__all__ = [
    'IMAGE_INPUT_NAME',
    'MIN_OPSET',
    'OWL_OUTPUT_NAMES',
    'SIDECAR_FORMAT',
    'EncoderSpec',
    'owl_output_names',
    'owl_output_shapes',
    'read_sidecar',
    'resolve_hf_model',
    'write_engine_sidecar',
    'write_sidecar',
]

IMAGE_INPUT_NAME = 'pixel_values'
#: Output order of the graph. OWL-ViT has no objectness head, so its graph ends at pred_boxes.
OWL_OUTPUT_NAMES = (
    'class_embeds',
    'logit_shift',
    'logit_scale',
    'pred_boxes',
    'objectness_logits',
)
#: The dynamo exporter (torch.onnx.export(dynamo=True)) targets opset 18 and newer.
MIN_OPSET = 18
SIDECAR_FORMAT = 'grounding_agent/owl-image-encoder/1'
_FAMILIES = ('owlv2', 'owlvit')


@dataclass(frozen=True)
class EncoderSpec:
    """What an exported OWL image encoder expects and returns (stored in the sidecar JSON).

    `hf_model` is the Hugging Face directory or id holding the processor and the text encoder;
    a relative directory is relative to the sidecar's folder.
    """

    family: str
    hf_model: str
    image_size: int
    patch_size: int
    class_embed_dim: int
    input_name: str = IMAGE_INPUT_NAME
    output_names: tuple[str, ...] = OWL_OUTPUT_NAMES
    opset: int = MIN_OPSET
    onnx_sha256: str = ''
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.image_size, self.image_size)

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        return owl_output_shapes(
            self.family,
            image_size=self.image_size,
            patch_size=self.patch_size,
            class_embed_dim=self.class_embed_dim,
        )

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values['output_names'] = list(self.output_names)
        values['format'] = SIDECAR_FORMAT
        values['input_shape'] = list(self.input_shape)
        values['output_shapes'] = {k: list(v) for k, v in self.output_shapes().items()}
        return values

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> EncoderSpec:
        if values.get('format') != SIDECAR_FORMAT:
            raise ConfigError(
                f'not an OWL image encoder description (format {values.get("format")!r}, '
                f'expected {SIDECAR_FORMAT!r})'
            )
        try:
            return cls(
                family=str(values['family']),
                hf_model=str(values['hf_model']),
                image_size=int(values['image_size']),
                patch_size=int(values['patch_size']),
                class_embed_dim=int(values['class_embed_dim']),
                input_name=str(values.get('input_name', IMAGE_INPUT_NAME)),
                output_names=tuple(values.get('output_names', OWL_OUTPUT_NAMES)),
                opset=int(values.get('opset', MIN_OPSET)),
                onnx_sha256=str(values.get('onnx_sha256', '')),
                extra=dict(values.get('extra', {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f'incomplete OWL image encoder description: {exc!r}') from exc


def owl_output_names(family: str) -> tuple[str, ...]:
    """Graph output names of `family` ('owlv2' has objectness, 'owlvit' has not)."""
    if family not in _FAMILIES:
        raise ConfigError(f'unknown OWL family {family!r}; expected one of {_FAMILIES}')
    return OWL_OUTPUT_NAMES if family == 'owlv2' else OWL_OUTPUT_NAMES[:-1]


def owl_output_shapes(
    family: str, *, image_size: int, patch_size: int, class_embed_dim: int
) -> dict[str, tuple[int, ...]]:
    """Output shapes of the exported graph for one image (batch 1), by output name."""
    if image_size % patch_size:
        raise ConfigError(f'image size {image_size} is not a multiple of patch size {patch_size}')
    patches = (image_size // patch_size) ** 2
    shapes: dict[str, tuple[int, ...]] = {
        'class_embeds': (1, patches, class_embed_dim),
        'logit_shift': (1, patches),
        'logit_scale': (1, patches),
        'pred_boxes': (1, patches, 4),
        'objectness_logits': (1, patches),
    }
    return {name: shapes[name] for name in owl_output_names(family)}


def write_sidecar(model_path: str | os.PathLike[str], spec: EncoderSpec) -> Path:
    return write_sidecar_json(model_path, spec.to_json())


def read_sidecar(model_path: str | os.PathLike[str]) -> EncoderSpec | None:
    """The OWL sidecar of an exported model, or None when there is none."""
    values = read_sidecar_json(model_path)
    return None if values is None else EncoderSpec.from_json(values)


def resolve_hf_model(model_path: str | os.PathLike[str], hf_model: str) -> str:
    """`hf_model` from a sidecar, made absolute when it is a directory relative to the sidecar."""
    if not hf_model:
        return hf_model
    candidate = Path(model_path).resolve().parent / hf_model
    if not Path(hf_model).is_absolute() and candidate.is_dir():
        return str(candidate.resolve())
    return hf_model


def _engine_spec(
    onnx_spec: EncoderSpec, onnx_path: Path, engine_path: Path, **extra: Any
) -> EncoderSpec:
    """The sidecar of an engine: the ONNX spec, its Hugging Face reference re-based."""
    hf_model = resolve_hf_model(onnx_path, onnx_spec.hf_model)
    candidate = Path(hf_model)
    if candidate.is_dir():
        hf_model = os.path.relpath(candidate.resolve(), engine_path.resolve().parent)
    return replace(onnx_spec, hf_model=hf_model, extra={**onnx_spec.extra, **extra})


def write_engine_sidecar(
    onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], **extra: Any
) -> Path | None:
    """Copy the ONNX model's sidecar beside the engine (with build facts in `extra`)."""
    onnx_spec = read_sidecar(onnx_path)
    if onnx_spec is None:
        return None
    spec = _engine_spec(onnx_spec, Path(onnx_path), Path(engine_path), **extra)
    return write_sidecar(engine_path, spec)
