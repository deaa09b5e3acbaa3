"""Fixtures of the backend tests: tiny OWL models and their ONNX exports (owl_exports.py)."""

from __future__ import annotations

from owl_exports import exported, model_dirs

__all__ = ['exported', 'model_dirs']
