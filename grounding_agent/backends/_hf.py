"""Hugging Face loading helpers shared by the transformers-based backends.

One place decides how weights are loaded on a robot: safetensors only, never remote code,
`local_files_only` when the configuration says offline, and a single `ModelLoadError` that names
everything that was tried. It also resolves the device and dtype from `BackendConfig` and brings
camera images to the size a model should see. torch and transformers are imported inside the
functions so that importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.backends.base import BackendConfig
from grounding_agent.core.errors import ConfigError, ImageConversionError, ModelLoadError
from grounding_agent.core.types import Box

if TYPE_CHECKING:
    import torch

__all__ = [
    'ModelSource',
    'PreparedImage',
    'load_pretrained',
    'prepare_image',
    'resolve_device',
    'resolve_dtype',
    'resolve_model_source',
]

# Weight files a local model directory may hold; only the safetensors ones are ever loaded.
_SAFETENSORS_PATTERNS = ('*.safetensors', '*.safetensors.index.json')
_PICKLE_PATTERNS = ('*.bin', '*.bin.index.json', '*.pt', '*.pth', '*.ckpt')


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model comes from: a local directory or a Hugging Face hub id.

    `local_files_only` is True for local directories and for hub ids when the configuration is
    offline (then the id must already be in the Hugging Face cache).
    """

    location: str
    is_local: bool
    local_files_only: bool

    def describe(self) -> str:
        kind = 'local directory' if self.is_local else 'Hugging Face id'
        return f'{kind} {self.location!r}'


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """A camera image checked and shrunk for a model, and how to map boxes back.

    `image` is HxWx3 uint8 RGB, C-contiguous, its longest side at most the requested maximum.
    `scale_x` / `scale_y` multiply model-image pixels into camera-image pixels.
    """

    image: npt.NDArray[np.uint8]
    original_width: int
    original_height: int
    scale_x: float
    scale_y: float

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def to_original(self, box: Box) -> Box:
        """A box in model-image pixels, in camera-image pixels and clipped to the camera image."""
        return box.scaled(self.scale_x, self.scale_y).clip(
            float(self.original_width), float(self.original_height)
        )


def _looks_like_path(model: str) -> bool:
    # A hub id is 'name' or 'owner/name'; anything else that names a file system location is a
    # path, so a typo in a path reports "no such directory" instead of a hub lookup failure.
    return (
        model.startswith(('/', '.', '~'))
        or '\\' in model
        or model.count('/') > 1
        or model.endswith(('.onnx', '.engine'))
    )


def resolve_model_source(config: BackendConfig, *, model: str | None = None) -> ModelSource:
    """Decide whether `model` (default `config.model`) is a local directory or a hub id.

    Raises ModelLoadError when it is empty, when a path does not exist or is not a directory, or
    when a local directory holds no safetensors weights (pickle-only checkpoints are refused
    because loading them can execute code).
    """
    location = (config.model if model is None else model).strip()
    if not location:
        raise ModelLoadError(
            f'backend {config.name!r} needs a model: set `model` to a Hugging Face id '
            '(e.g. google/owlv2-base-patch16-ensemble) or a local directory'
        )
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f'model path {location!r} is a file, not a model directory '
                '(expected a directory written by save_pretrained)'
            )
        _check_safetensors(path)
        return ModelSource(str(path), is_local=True, local_files_only=True)
    if _looks_like_path(location):
        raise ModelLoadError(f'model directory {location!r} does not exist')
    return ModelSource(location, is_local=False, local_files_only=config.offline)


def _check_safetensors(directory: Path) -> None:
    """Refuse a model directory whose weights exist only as pickle files."""
    has_safetensors = any(any(directory.glob(p)) for p in _SAFETENSORS_PATTERNS)
    if has_safetensors:
        return
    pickles = sorted(p.name for pattern in _PICKLE_PATTERNS for p in directory.glob(pattern))
    if pickles:
        raise ModelLoadError(
            f'model directory {str(directory)!r} holds only pickle weights '
            f'({", ".join(pickles)}); '
            'only safetensors are loaded because pickle files can run code. Convert once with '
            '`model.save_pretrained(dir, safe_serialization=True)` on a trusted machine.'
        )
    # No weights at all: a processor-only directory is fine for processors; the model load
    # itself then fails with a ModelLoadError naming the directory.


def resolve_device(config: BackendConfig) -> torch.device:
    """The torch device of `config.device`; ConfigError when CUDA is asked for but absent."""
    import torch

    if config.device == 'cpu':
        return torch.device('cpu')
    if not torch.cuda.is_available():
        raise ConfigError(
            f'device {config.device!r} requested but CUDA is not available '
            f'(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use device: cpu'
        )
    device = torch.device(config.device)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f'device {config.device!r} requested but only {count} CUDA device(s) are visible'
        )
    return device


def resolve_dtype(config: BackendConfig, device: torch.device) -> torch.dtype:
    """The torch dtype of `config.dtype`: 'auto' is float16 on CUDA and float32 on the CPU.

    float16 on the CPU is refused: most CPU kernels have no half-precision path and are slower
    than float32, so the setting is almost certainly a mistake carried over from a GPU robot.
    """
    import torch

    if config.dtype == 'auto':
        return torch.float16 if device.type == 'cuda' else torch.float32
    if config.dtype == 'float16' and device.type == 'cpu':
        raise ConfigError('dtype float16 needs a CUDA device; use float32 or bfloat16 on the CPU')
    dtype: torch.dtype = getattr(torch, config.dtype)
    return dtype


def load_pretrained(
    cls: Any,
    config: BackendConfig,
    *,
    model: str | None = None,
    weights: bool = True,
    **kwargs: Any,
) -> Any:
    """`cls.from_pretrained(...)` with the project's safety settings, or one ModelLoadError.

    `cls` is a transformers model, processor or tokenizer class. `model` overrides
    `config.model` (e.g. the Hugging Face directory beside an ONNX file). With `weights`
    (models), safetensors are required and `dtype` is taken from the configuration unless given
    in `kwargs`; processors and tokenizers pass `weights=False`. Remote code is never trusted.
    """
    if kwargs.get('trust_remote_code'):
        raise ConfigError('trust_remote_code is never enabled by grounding_agent')
    source = resolve_model_source(config, model=model)
    options: dict[str, Any] = {
        'trust_remote_code': False,
        'local_files_only': source.local_files_only,
    }
    if weights:
        options['use_safetensors'] = True
        if 'dtype' not in kwargs:
            options['dtype'] = resolve_dtype(config, resolve_device(config))
    options.update(kwargs)
    name = getattr(cls, '__name__', repr(cls))
    try:
        return cls.from_pretrained(source.location, **options)
    except Exception as exc:  # every library error becomes one readable message
        shown = ', '.join(f'{k}={_short(v)}' for k, v in sorted(options.items()))
        raise ModelLoadError(
            f'could not load {name} from {source.describe()} ({shown}): '
            f'{type(exc).__name__}: {_first_line(exc)}'
        ) from exc


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    return first if len(first) <= 400 else first[:397] + '...'


def prepare_image(image: Any, max_side: int) -> PreparedImage:
    """Check a camera image and shrink it so that its longest side is at most `max_side`.

    Accepts HxWx3 uint8 RGB (also HxW grey and HxWx4 RGBA, converted to RGB). Anything else
    raises ImageConversionError with the shape and dtype it got. Shrinking uses area
    interpolation; images are never enlarged (the model's processor does its own resize).
    """
    if not isinstance(image, np.ndarray):
        raise ImageConversionError(f'expected a numpy image, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise ImageConversionError(f'expected a uint8 image, got dtype {image.dtype}')
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageConversionError(f'expected an HxWx3 RGB image, got shape {image.shape}')
    height, width = int(image.shape[0]), int(image.shape[1])
    if height < 1 or width < 1:
        raise ImageConversionError(f'image is empty: shape {image.shape}')
    if max_side < 1:
        raise ConfigError(f'max_image_side must be positive, got {max_side}')
    longest = max(height, width)
    if longest <= max_side:
        return PreparedImage(np.ascontiguousarray(image), width, height, 1.0, 1.0)
    factor = max_side / longest
    new_width = max(1, round(width * factor))
    new_height = max(1, round(height * factor))
    resized = cv2.resize(
        np.ascontiguousarray(image), (new_width, new_height), interpolation=cv2.INTER_AREA
    )
    return PreparedImage(
        np.ascontiguousarray(resized),
        width,
        height,
        width / new_width,
        height / new_height,
    )
