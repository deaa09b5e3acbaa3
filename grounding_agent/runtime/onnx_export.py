"""Export the OWL image encoder to ONNX, and the graph contract the runtimes rely on.

The exported graph is everything that depends on the camera image: pixel_values in, per-patch
class embeddings (L2-normalised), the class head's logit shift and scale, boxes and (OWLv2)
objectness out. Text (query) embeddings stay outside the graph, computed once per phrase set by
the torch text encoder and cached, so a standing query costs only this graph per frame; the
final logits are one small matrix product done after it (`owl.query_logits`).

A JSON sidecar (`<model>.onnx.json`, `<model>.engine.json`) written beside each exported file
names the Hugging Face directory whose processor and text encoder go with it, and the shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grounding_agent.core.errors import BackendError, ConfigError, ModelLoadError

__all__ = [
    'IMAGE_INPUT_NAME',
    'MIN_OPSET',
    'OWL_OUTPUT_NAMES',
    'SIDECAR_FORMAT',
    'EncoderSpec',
    'compare_with_torch',
    'export_owl_image_encoder',
    'file_sha256',
    'owl_output_names',
    'owl_output_shapes',
    'read_sidecar',
    'require_file',
    'resolve_hf_model',
    'sidecar_path',
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
# Protobuf cannot hold more than 2 GiB; bigger models keep their weights in a .data file.
_SINGLE_FILE_LIMIT = 1_800_000_000


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
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

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


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """`model.onnx` -> `model.onnx.json` (the same for `.engine`)."""
    path = Path(model_path)
    return path.with_name(path.name + '.json')


def write_sidecar(model_path: str | os.PathLike[str], spec: EncoderSpec) -> Path:
    path = sidecar_path(model_path)
    path.write_text(json.dumps(spec.to_json(), indent=2, sort_keys=True) + '\n', encoding='utf-8')
    return path


def read_sidecar(model_path: str | os.PathLike[str]) -> EncoderSpec | None:
    """The sidecar of an exported model, or None when there is none."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise ConfigError(f'cannot read {path}: {exc}') from exc
    if not isinstance(values, dict):
        raise ConfigError(f'{path} does not hold a JSON object')
    return EncoderSpec.from_json(values)


def resolve_hf_model(model_path: str | os.PathLike[str], hf_model: str) -> str:
    """`hf_model` from a sidecar, made absolute when it is a directory relative to the sidecar."""
    if not hf_model:
        return hf_model
    candidate = Path(model_path).resolve().parent / hf_model
    if not Path(hf_model).is_absolute() and candidate.is_dir():
        return str(candidate.resolve())
    return hf_model


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file and of its external-data file when it has one."""
    digest = hashlib.sha256()
    model = Path(path)
    for part in (model, model.with_name(model.name + '.data')):
        if not part.is_file():
            continue
        with part.open('rb') as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b''):
                digest.update(chunk)
    return digest.hexdigest()


def _portable_reference(hf_model: str, onnx_path: Path) -> str:
    # A directory next to (or under the folder of) the ONNX file is stored relative, so the pair
    # can be copied to the robot together; anything else is stored as given.
    path = Path(hf_model).expanduser()
    if not path.is_dir():
        return hf_model
    try:
        return os.path.relpath(path.resolve(), onnx_path.resolve().parent)
    except ValueError:  # a different drive on Windows
        return str(path.resolve())


def export_owl_image_encoder(
    *,
    family: str,
    hf_model: str,
    onnx_path: str | os.PathLike[str],
    image_size: int | None = None,
    opset: int = MIN_OPSET,
    offline: bool = True,
) -> EncoderSpec:
    """Export the image encoder of the OWL model `hf_model` to `onnx_path`; returns its spec.

    `image_size` defaults to the model's own input size; another multiple of the patch size
    interpolates the position embeddings (faster at a smaller size, usually less accurate).
    Writes the sidecar JSON beside the ONNX file. Raises ModelLoadError / ConfigError /
    BackendError with a readable reason.
    """
    import torch

    from grounding_agent.backends.base import BackendConfig
    from grounding_agent.backends.owl import OwlImageEncoder, load_owl_model

    if opset < MIN_OPSET:
        raise ConfigError(f'opset {opset} is too old; the OWL export needs opset >= {MIN_OPSET}')
    owl_output_names(family)
    config = BackendConfig(
        name=family, model=hf_model, device='cpu', dtype='float32', offline=offline
    )
    model = load_owl_model(config)
    vision = model.config.vision_config
    size = int(image_size or vision.image_size)
    patch = int(vision.patch_size)
    shapes = owl_output_shapes(
        family,
        image_size=size,
        patch_size=patch,
        class_embed_dim=model.config.text_config.hidden_size,
    )
    encoder = OwlImageEncoder(model, family=family, image_size=size).eval()
    path = Path(onnx_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weight_bytes = sum(p.numel() * p.element_size() for p in encoder.parameters())
    example = torch.zeros((1, 3, size, size), dtype=torch.float32)
    try:
        torch.onnx.export(
            encoder,
            (example,),
            str(path),
            input_names=[IMAGE_INPUT_NAME],
            output_names=list(shapes),
            opset_version=opset,
            dynamo=True,
            verbose=False,
            external_data=weight_bytes > _SINGLE_FILE_LIMIT,
        )
    except Exception as exc:  # the exporter raises many types; the user needs one message
        raise BackendError(f'ONNX export of the {family} image encoder failed: {exc}') from exc
    spec = EncoderSpec(
        family=family,
        hf_model=_portable_reference(hf_model, path),
        image_size=size,
        patch_size=patch,
        class_embed_dim=int(model.config.text_config.hidden_size),
        output_names=tuple(shapes),
        opset=opset,
        onnx_sha256=file_sha256(path),
    )
    write_sidecar(path, spec)
    return spec


def compare_with_torch(
    onnx_path: str | os.PathLike[str], *, offline: bool = True, seed: int = 0
) -> dict[str, float]:
    """Largest absolute difference per output between ONNX Runtime and torch on one input.

    The input is seeded noise in the normalised pixel range; the torch side is the Hugging Face
    model named by the sidecar, on the CPU in float32.
    """
    import numpy as np
    import torch

    from grounding_agent.backends.base import BackendConfig
    from grounding_agent.backends.owl import OwlImageEncoder, load_owl_model
    from grounding_agent.runtime.onnx_runtime import OnnxImageEncoder

    path = require_file(onnx_path, 'ONNX model')
    spec = read_sidecar(path)
    if spec is None:
        raise ConfigError(f'{path} has no sidecar JSON; cannot tell which model it came from')
    hf_model = resolve_hf_model(path, spec.hf_model)
    config = BackendConfig(
        name=spec.family, model=hf_model, device='cpu', dtype='float32', offline=offline
    )
    encoder = OwlImageEncoder(
        load_owl_model(config), family=spec.family, image_size=spec.image_size
    )
    pixels = np.random.default_rng(seed).standard_normal(spec.input_shape).astype(np.float32)
    with torch.inference_mode():
        expected = encoder.eval()(torch.from_numpy(pixels))
    session = OnnxImageEncoder(path, device='cpu', output_names=spec.output_names)
    try:
        actual = session.run(pixels)
    finally:
        session.close()
    return {
        name: float(np.max(np.abs(actual[name] - value.numpy())))
        for name, value in zip(spec.output_names, expected, strict=True)
    }


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a Path, or ModelLoadError saying the `what` file is missing."""
    result = Path(path).expanduser()
    if not result.is_file():
        raise ModelLoadError(f'{what} {str(path)!r} does not exist')
    return result
