"""Build a TensorRT engine from an exported image encoder (ONNX), and run it on a CUDA device.

Building uses the TensorRT Python API when `tensorrt` imports, otherwise `trtexec` from PATH
(the command line comes from `trtexec_command`, a pure function). Engines are cached by
`engine_cache.EngineCacheKey`. The runtime feeds torch CUDA tensors to the engine as device
buffers (`execute_async_v3`). `tensorrt` and `torch` are imported inside functions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import BackendError, ConfigError, ModelLoadError
from grounding_agent.runtime.engine_cache import EngineCacheKey, engine_cache_path
from grounding_agent.runtime.model_files import file_sha256

__all__ = [
    'TensorRTImageEncoder',
    'TensorRTUnavailableError',
    'build_engine',
    'build_engine_cached',
    'gpu_name',
    'parse_trtexec_version',
    'tensorrt_version',
    'torch_dtype_name',
    'trtexec_command',
    'trtexec_path',
]

DEFAULT_WORKSPACE_MB = 4096
# TensorRT data type names (str(trt.DataType.X) without the prefix) -> torch dtype names.
_DTYPE_NAMES = {
    'FLOAT': 'float32',
    'HALF': 'float16',
    'BF16': 'bfloat16',
    'INT8': 'int8',
    'INT32': 'int32',
    'INT64': 'int64',
    'BOOL': 'bool',
    'UINT8': 'uint8',
}


class TensorRTUnavailableError(BackendError):
    """Neither the TensorRT Python package nor trtexec is installed (or there is no GPU)."""


def _import_tensorrt() -> Any | None:
    try:
        import tensorrt
    except ImportError:
        return None
    return tensorrt


def trtexec_path() -> str | None:
    """`trtexec` from PATH, or from /usr/src/tensorrt/bin where JetPack installs it."""
    found = shutil.which('trtexec')
    if found:
        return found
    jetpack = Path('/usr/src/tensorrt/bin/trtexec')
    return str(jetpack) if jetpack.is_file() and os.access(jetpack, os.X_OK) else None


def trtexec_command(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    fp16: bool,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    trtexec: str = 'trtexec',
    input_name: str | None = None,
    input_shape: Sequence[int] | None = None,
) -> list[str]:
    """The trtexec command line that builds `engine_path` from `onnx_path` without timing runs.

    `input_name` + `input_shape` add `--shapes` (only needed for graphs with dynamic axes;
    the exported encoders are static).
    """
    if workspace_mb < 1:
        raise ConfigError(f'workspace_mb must be positive, got {workspace_mb}')
    command = [
        trtexec,
        f'--onnx={os.fspath(onnx_path)}',
        f'--saveEngine={os.fspath(engine_path)}',
        f'--memPoolSize=workspace:{int(workspace_mb)}',  # MiB in TensorRT 8.6 and 10
        '--skipInference',
    ]
    if fp16:
        command.append('--fp16')
    if input_name is not None and input_shape is not None:
        command.append(f'--shapes={input_name}:' + 'x'.join(str(int(d)) for d in input_shape))
    return command


def parse_trtexec_version(banner: str) -> str | None:
    """'&&&& RUNNING TensorRT.trtexec [TensorRT v100300] ...' -> '10.3.0' (None if absent).

    trtexec prints NV_TENSORRT_VERSION: MAJOR*1000 + MINOR*100 + PATCH before TensorRT 10
    (v8601 = 8.6.1), MAJOR*10000 + MINOR*100 + PATCH from 10 on (v100300 = 10.3.0).
    """
    match = re.search(r'\[TensorRT v(\d+)\]', banner)
    if match is None:
        return None
    number = int(match.group(1))
    if number >= 100_000:
        return f'{number // 10000}.{number // 100 % 100}.{number % 100}'
    return f'{number // 1000}.{number // 100 % 10}.{number % 100}'


def tensorrt_version() -> str | None:
    """The TensorRT version of the Python package, else of trtexec, else None."""
    trt = _import_tensorrt()
    if trt is not None:
        return str(trt.__version__)
    executable = trtexec_path()
    if executable is None:
        return None
    try:
        completed = subprocess.run(
            [executable, '--help'], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_trtexec_version(completed.stdout + completed.stderr)


def gpu_name(device: str = 'cuda') -> str:
    """The GPU model the engine is built for (part of the cache key)."""
    import torch

    if torch.cuda.is_available():
        index = int(device.split(':', 1)[1]) if ':' in device else 0
        return str(torch.cuda.get_device_name(index))
    smi = shutil.which('nvidia-smi')
    if smi:
        try:
            completed = subprocess.run(
                [smi, '--query-gpu=name', '--format=csv,noheader'],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            completed = None
        if completed is not None and completed.returncode == 0 and completed.stdout.strip():
            return completed.stdout.strip().splitlines()[0]
    model = Path('/proc/device-tree/model')  # Jetson boards name themselves here
    if model.is_file():
        return model.read_text(encoding='utf-8', errors='replace').strip('\x00 \n')
    raise TensorRTUnavailableError('no NVIDIA GPU found: a TensorRT engine needs one to build')


def _unavailable_message() -> str:
    return (
        'TensorRT is not available: neither the `tensorrt` Python package imports nor '
        '`trtexec` is on PATH. Install TensorRT (JetPack on Jetson, or `pip install tensorrt` '
        'on an x86 machine with an NVIDIA GPU), or run the ONNX model with onnxruntime '
        '(model: <file>.onnx).'
    )


def build_engine(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    fp16: bool,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
) -> Path:
    """Build `engine_path` from `onnx_path`; raises TensorRTUnavailableError / BackendError."""
    onnx_file = Path(onnx_path)
    if not onnx_file.is_file():
        raise ModelLoadError(f'ONNX model {str(onnx_file)!r} does not exist')
    engine_file = Path(engine_path)
    engine_file.parent.mkdir(parents=True, exist_ok=True)
    trt = _import_tensorrt()
    if trt is not None:
        _build_with_python_api(trt, onnx_file, engine_file, fp16=fp16, workspace_mb=workspace_mb)
        return engine_file
    executable = trtexec_path()
    if executable is None:
        raise TensorRTUnavailableError(_unavailable_message())
    command = trtexec_command(
        onnx_file, engine_file, fp16=fp16, workspace_mb=workspace_mb, trtexec=executable
    )
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackendError(f'could not run {executable}: {exc}') from exc
    if completed.returncode != 0 or not engine_file.is_file():
        tail = '\n'.join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise BackendError(
            f'trtexec failed (exit {completed.returncode}): {" ".join(command)}\n{tail}'
        )
    return engine_file


def _build_with_python_api(
    trt: Any, onnx_file: Path, engine_file: Path, *, fp16: bool, workspace_mb: int
) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(str(trt.__version__).split('.', 1)[0])
    # TensorRT 10 networks are always explicit-batch; 8.x needs the flag.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file finds an external-data file next to the model; parse(bytes) would not.
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendError(f'TensorRT could not parse {onnx_file}: {"; ".join(errors)}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if fp16:
        if not builder.platform_has_fast_fp16:
            raise BackendError('this GPU has no fast FP16 path; build without --fp16')
        config.set_flag(trt.BuilderFlag.FP16)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f'TensorRT failed to build an engine from {onnx_file} (see its log)')
    engine_file.write_bytes(bytes(serialized))


def build_engine_cached(
    onnx_path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int],
    fp16: bool,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str = 'cuda',
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
) -> tuple[Path, bool]:
    """The engine for `onnx_path` from the cache, built first when missing.

    Returns (engine path, True when it came from the cache).
    """
    version = tensorrt_version()
    if version is None:
        raise TensorRTUnavailableError(_unavailable_message())
    key = EngineCacheKey.create(
        model_sha256=file_sha256(onnx_path),
        input_shape=input_shape,
        fp16=fp16,
        tensorrt_version=version,
        gpu_name=gpu_name(device),
    )
    path = engine_cache_path(cache_dir, key, stem=Path(onnx_path).stem)
    if path.is_file():
        return path, True
    partial = path.with_name(path.name + '.partial')
    build_engine(onnx_path, partial, fp16=fp16, workspace_mb=workspace_mb)
    # Publish atomically so a robot that is stopped mid-build never loads half an engine.
    os.replace(partial, path)
    return path, False


def torch_dtype_name(trt_dtype: Any) -> str:
    """`trt.DataType.HALF` (or its name) -> 'float16'."""
    name = str(trt_dtype).rsplit('.', 1)[-1].upper()
    if name not in _DTYPE_NAMES:
        raise BackendError(f'unsupported TensorRT tensor type {trt_dtype}')
    return _DTYPE_NAMES[name]


class TensorRTImageEncoder:
    """A deserialised TensorRT engine with torch CUDA tensors as its input and output buffers."""

    name = 'tensorrt'

    def __init__(
        self,
        engine_path: str | os.PathLike[str],
        *,
        device: str,
        output_names: Sequence[str],
    ) -> None:
        import torch

        path = Path(engine_path)
        if not path.is_file():
            raise ModelLoadError(f'TensorRT engine {str(path)!r} does not exist')
        if device == 'cpu':
            raise ConfigError('a TensorRT engine runs on a CUDA device; set device: cuda')
        if not torch.cuda.is_available():
            raise ConfigError(f'device {device!r} requested but CUDA is not available')
        trt = _import_tensorrt()
        if trt is None:
            raise TensorRTUnavailableError(
                'the `tensorrt` Python package is needed to run an engine; install it or run '
                'the ONNX model with onnxruntime'
            )
        self._torch = torch
        self._device = torch.device(device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise ModelLoadError(
                f'TensorRT could not load {str(path)!r}: engines only load with the TensorRT '
                'version and GPU model they were built with; rebuild it with '
                '`grounding-agent export --engine`'
            )
        self._engine: Any = engine
        self._context: Any = engine.create_execution_context()
        self._buffers: dict[str, Any] = {}
        inputs: list[str] = []
        with torch.cuda.device(self._device):
            for index in range(engine.num_io_tensors):
                tensor_name = engine.get_tensor_name(index)
                shape = tuple(int(d) for d in engine.get_tensor_shape(tensor_name))
                if any(d < 0 for d in shape):
                    raise ModelLoadError(f'{path} has a dynamic shape {shape} for {tensor_name}')
                dtype = getattr(torch, torch_dtype_name(engine.get_tensor_dtype(tensor_name)))
                self._buffers[tensor_name] = torch.empty(shape, dtype=dtype, device=self._device)
                if engine.get_tensor_mode(tensor_name) == trt.TensorIOMode.INPUT:
                    inputs.append(tensor_name)
        if len(inputs) != 1:
            raise ModelLoadError(f'{path} has inputs {inputs}; expected one (pixel_values)')
        self.input_name = inputs[0]
        missing = [n for n in output_names if n not in self._buffers]
        if missing:
            raise ModelLoadError(f'{path} lacks outputs {missing}; rebuild it from a new export')
        self.output_names = tuple(output_names)
        for tensor_name, buffer in self._buffers.items():
            self._context.set_tensor_address(tensor_name, buffer.data_ptr())

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._buffers[self.input_name].shape)

    def run(self, pixel_values: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        if self._context is None:
            raise BackendError('the TensorRT engine was closed')
        torch = self._torch
        if tuple(pixel_values.shape) != self.input_shape:
            raise BackendError(
                f'pixel_values of shape {pixel_values.shape} do not fit the engine input '
                f'{self.input_shape}'
            )
        with torch.cuda.device(self._device):
            stream = torch.cuda.current_stream(self._device)
            self._buffers[self.input_name].copy_(
                torch.from_numpy(pixel_values), non_blocking=False
            )
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise BackendError('TensorRT execution failed')
            stream.synchronize()
            return {name: self._buffers[name].float().cpu().numpy() for name in self.output_names}

    def close(self) -> None:
        self._context = None
        self._engine = None
        self._buffers.clear()
