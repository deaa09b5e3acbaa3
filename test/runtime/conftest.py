"""Fixtures of the runtime tests: tiny OWL models and their exports, shared with test/backends."""

from __future__ import annotations

import sys
from pathlib import Path

# The tiny-model builder and the export fixtures live with the backend tests; share them (and
# their per-process memo).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'backends'))

from owl_exports import exported, model_dirs

__all__ = ['exported', 'model_dirs']
