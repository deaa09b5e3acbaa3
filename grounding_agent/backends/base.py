"""The base class of every model backend, its configuration, and the registry by name.

A backend answers "where are these phrases in this image?" with scored boxes. It may also
verify one candidate box against a whole description (generative VLMs do) and ground a whole
referring expression at once: the core's `Detector` protocol, which `Backend` implements.
Heavy imports (torch, transformers, onnxruntime) stay inside the backend modules' functions so
importing this module is cheap.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grounding_agent.core.detector import Detector
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.core.types import Box, Detection

__all__ = [
    'Backend',
    'BackendConfig',
    'available_backends',
    'create_backend',
    'register_backend',
]


class BackendConfig(BaseModel):
    """What a backend needs to start. Unknown keys are refused so typos do not pass silently.

    `model` is a Hugging Face id or a local directory (or an `.onnx` / `.engine` file for the OWL
    runtimes). `offline` forces `local_files_only`. Thresholds are the backend's own detection
    cut-offs; the resolver's acceptance thresholds live in `ResolverConfig`.
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    name: str = 'color_shape'
    model: str = ''
    device: str = 'cpu'
    dtype: Literal['auto', 'float32', 'float16', 'bfloat16'] = 'auto'
    box_threshold: float = Field(default=0.1, ge=0.0, le=1.0)
    text_threshold: float = Field(default=0.25, ge=0.0, le=1.0)
    nms_iou: float = Field(default=0.5, ge=0.0, le=1.0)
    max_image_side: int = Field(default=960, ge=32, le=8192)
    max_detections: int = Field(default=50, ge=1, le=1000)
    offline: bool = True
    engine_cache_dir: str = ''
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator('device')
    @classmethod
    def _check_device(cls, value: str) -> str:
        if (
            value == 'cpu'
            or value == 'cuda'
            or (value.startswith('cuda:') and value[5:].isdigit())
        ):
            return value
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> BackendConfig:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f'invalid backend configuration: {exc}') from exc


class Backend(Detector, ABC):
    """A model that finds phrases in images (the core's `Detector`), built from a config.

    Implementations set `name` (default: the configured name) and the capability flags.
    `detect` is called from one worker thread at a time; it must not keep references to the
    image after returning.
    """

    name: str = ''
    #: `verify` gives a real probability (generative VLMs); otherwise it returns None.
    supports_verify: bool = False
    #: `ground_expression` grounds a whole referring expression (generative VLMs).
    supports_expression: bool = False

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        if not self.name:
            self.name = config.name

    @abstractmethod
    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        """Every box found for any of `phrases` in `image` (HxWx3 uint8 RGB).

        Each detection's `phrase` is one of `phrases`; boxes are in `image` pixels; scores 0..1.
        """

    def recognises(self, phrase: str) -> bool:
        """Whether this backend can recognise what `phrase` names at all. Open-vocabulary
        backends can (True); a closed vocabulary (color_shape) says no for 'laptop', and the
        agent answers `error` listing it in `unrecognised` instead of a `rejected` that would
        read as 'not there'."""
        del phrase
        return True

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        """Probability that `box` shows `description`; None when the backend cannot tell."""
        return None

    def ground_expression(
        self, image: npt.NDArray[np.uint8], description: str
    ) -> Detection | None:
        """The single box a whole referring expression denotes, or None when it is absent.

        Only backends with `supports_expression`; others raise BackendError.
        """
        raise BackendError(f'backend {self.name!r} cannot ground whole expressions')

    def warmup(self) -> None:
        """Run once on a blank image so the first real frame is not slow."""
        self.detect(np.zeros((64, 64, 3), dtype=np.uint8), ['object'])

    def health(self) -> tuple[str, str] | None:
        """(level 'ok'/'warn'/'error', message) for /diagnostics when the backend can fail at
        run time (a remote server); None for backends that are either loaded or not."""
        return None

    def close(self) -> None:
        """Free the model (called on lifecycle cleanup)."""


BackendFactory = Callable[[BackendConfig], Backend]

_REGISTRY: dict[str, BackendFactory] = {}

# Built-in backends, imported on first use so `torch` is only loaded when a model backend is.
_BUILTIN_MODULES: dict[str, str] = {
    'color_shape': 'grounding_agent.backends.color_shape',
    'owlv2': 'grounding_agent.backends.owl',
    'owlvit': 'grounding_agent.backends.owl',
    'grounding_dino': 'grounding_agent.backends.grounding_dino',
    'qwen_vl': 'grounding_agent.backends.qwen_vl',
    'vlm_server': 'grounding_agent.backends.vlm_server',
}


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: make a backend factory (usually the class) available under `name`."""

    def decorate(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


def available_backends() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN_MODULES))


def create_backend(config: BackendConfig | dict[str, Any]) -> Backend:
    """Build the backend `config.name`; raises ConfigError for an unknown name."""
    if not isinstance(config, BackendConfig):
        config = BackendConfig.from_mapping(config)
    if config.name not in _REGISTRY and config.name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[config.name])
    factory = _REGISTRY.get(config.name)
    if factory is None:
        raise ConfigError(
            f'unknown backend {config.name!r}; available: {", ".join(available_backends())}'
        )
    return factory(config)
