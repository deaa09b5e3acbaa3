"""Fixtures of the runtime tests: tiny OWL models (shared with test/backends) and their exports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The tiny-model builder lives with the backend tests; share it (and its per-session memo).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'backends'))

from tiny_models import owl_model_dir

from grounding_agent.runtime.onnx_export import EncoderSpec, export_owl_image_encoder


@pytest.fixture(scope='session')
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / 'owl_models'
    return {family: owl_model_dir(family, base) for family in ('owlv2', 'owlvit')}


@pytest.fixture(scope='session')
def exported(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, EncoderSpec]]:
    """Each family's image encoder exported once per session: family -> (onnx path, spec)."""
    out = tmp_path_factory.mktemp('onnx')
    result = {}
    for family, directory in model_dirs.items():
        path = out / f'{family}.onnx'
        result[family] = (
            path,
            export_owl_image_encoder(family=family, hf_model=str(directory), onnx_path=path),
        )
    return result
