"""Export the OWL image encoder to ONNX (`grounding-agent export`), and check it against torch.

The graph and its sidecar are described in `owl_graph.py`; the ONNX file then runs in
`runtime/onnx_runtime.py` or, built into an engine, in `runtime/tensorrt_engine.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from grounding_agent.backends.base import BackendConfig
from grounding_agent.backends.owl import OwlImageEncoder, load_owl_model
from grounding_agent.backends.owl_graph import (
    IMAGE_INPUT_NAME,
    MIN_OPSET,
    EncoderSpec,
    owl_output_names,
    owl_output_shapes,
    read_sidecar,
    resolve_hf_model,
    write_sidecar,
)
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.runtime.model_files import file_sha256, require_file

__all__ = ['compare_with_torch', 'export_owl_image_encoder']

# Protobuf cannot hold more than 2 GiB; bigger models keep their weights in a .data file.
_SINGLE_FILE_LIMIT = 1_800_000_000


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
