"""Fixtures shared by the OWL export tests (test/backends) and the runtime tests (test/runtime):
tiny OWL models and their ONNX exports, each made once per test process."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import owl_model_dir

from grounding_agent.backends.owl_export import export_owl_image_encoder
from grounding_agent.backends.owl_graph import EncoderSpec

__all__ = ['exported', 'model_dirs']

# Process-wide memo: both test folders import these fixtures, the export runs once.
_EXPORTED: dict[tuple[str, str], tuple[Path, EncoderSpec]] = {}


@pytest.fixture(scope='session')
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / 'owl_models'
    return {family: owl_model_dir(family, base) for family in ('owlv2', 'owlvit')}


@pytest.fixture(scope='session')
def exported(
    model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, EncoderSpec]]:
    """Each family's image encoder exported once per session: family -> (onnx path, spec)."""
    out = tmp_path_factory.getbasetemp() / 'onnx'
    out.mkdir(exist_ok=True)
    result = {}
    for family, directory in model_dirs.items():
        key = (family, str(out))
        if key not in _EXPORTED:
            path = out / f'{family}.onnx'
            spec = export_owl_image_encoder(family=family, hf_model=str(directory), onnx_path=path)
            _EXPORTED[key] = (path, spec)
        result[family] = _EXPORTED[key]
    return result
