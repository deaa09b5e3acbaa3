"""ONNX Runtime session for an exported image encoder: one image input, outputs by name.

Providers follow the configured device: the CPU provider for `cpu`; for `cuda[:N]` the
TensorRT provider (engines cached in `engine_cache_dir`, by default the model's folder), then
CUDA, then CPU, each only when `onnxruntime.get_available_providers()` lists it. onnxruntime is
imported inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import BackendError, ConfigError, ModelLoadError

__all__ = ['OnnxImageEncoder', 'select_providers']

_CPU = 'CPUExecutionProvider'
_CUDA = 'CUDAExecutionProvider'
_TENSORRT = 'TensorrtExecutionProvider'


def select_providers(
    available: Sequence[str],
    *,
    device: str,
    fp16: bool = False,
    engine_cache_dir: str = '',
) -> list[str | tuple[str, dict[str, Any]]]:
    """Execution providers for `device`, best first, limited to those `available`.

    A CUDA device without any GPU provider is a configuration error (the robot would silently
    run at CPU speed); the CPU provider always stays last as ONNX Runtime's fallback for
    operators the GPU providers lack.
    """
    if _CPU not in available:
        raise ConfigError(f'onnxruntime lists no CPU provider (available: {list(available)})')
    if device == 'cpu':
        return [_CPU]
    device_id = int(device.split(':', 1)[1]) if ':' in device else 0
    providers: list[str | tuple[str, dict[str, Any]]] = []
    if _TENSORRT in available:
        options: dict[str, Any] = {'device_id': device_id, 'trt_fp16_enable': fp16}
        if engine_cache_dir:
            options.update(trt_engine_cache_enable=True, trt_engine_cache_path=engine_cache_dir)
        providers.append((_TENSORRT, options))
    if _CUDA in available:
        providers.append((_CUDA, {'device_id': device_id}))
    if not providers:
        raise ConfigError(
            f'device {device!r} requested but onnxruntime has no GPU provider '
            f'(available: {", ".join(available)}); install onnxruntime-gpu or use device: cpu'
        )
    providers.append(_CPU)
    return providers


class OnnxImageEncoder:
    """An onnxruntime session over an image encoder graph; `run` returns arrays by name."""

    name = 'onnxruntime'

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        *,
        device: str = 'cpu',
        output_names: Sequence[str],
        intra_op_threads: int = 0,
        fp16: bool = False,
        engine_cache_dir: str = '',
        optimization: str = 'all',
    ) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise ModelLoadError(f'ONNX model {str(path)!r} does not exist')
        if intra_op_threads < 0:
            raise ConfigError(f'intra_op_threads must be >= 0, got {intra_op_threads}')
        levels = {
            'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if optimization not in levels:
            raise ConfigError(
                f'optimization must be one of {sorted(levels)}, got {optimization!r}'
            )
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[optimization]
        # 0 lets onnxruntime use one thread per physical core.
        options.intra_op_num_threads = intra_op_threads
        options.log_severity_level = 3
        self.providers = select_providers(
            ort.get_available_providers(),
            device=device,
            fp16=fp16,
            # The TensorRT provider builds its engines on first use (minutes on a Jetson);
            # keeping them next to the model by default makes that a one-time cost.
            engine_cache_dir=engine_cache_dir or str(path.resolve().parent),
        )
        try:
            self._session: Any = ort.InferenceSession(
                str(path), sess_options=options, providers=self.providers
            )
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ModelLoadError(
                f'onnxruntime could not load {str(path)!r} with providers '
                f'{[p if isinstance(p, str) else p[0] for p in self.providers]}: {exc}'
            ) from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(f'{str(path)!r} has {len(inputs)} inputs; expected pixel_values')
        self.input_name: str = inputs[0].name
        self.input_shape: tuple[Any, ...] = tuple(inputs[0].shape)
        graph_outputs = [o.name for o in self._session.get_outputs()]
        missing = [n for n in output_names if n not in graph_outputs]
        if missing:
            raise ModelLoadError(
                f'{str(path)!r} lacks outputs {missing} (has {graph_outputs}); '
                're-export it with `grounding-agent export`'
            )
        self.output_names = tuple(output_names)

    def run(self, pixel_values: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        if self._session is None:
            raise BackendError('the ONNX Runtime session was closed')
        expected = self.input_shape
        if len(pixel_values.shape) != len(expected) or any(
            isinstance(e, int) and e != g for e, g in zip(expected, pixel_values.shape)
        ):
            raise BackendError(
                f'pixel_values of shape {pixel_values.shape} do not fit the graph input {expected}'
            )
        values = self._session.run(
            list(self.output_names),
            {self.input_name: np.ascontiguousarray(pixel_values, dtype=np.float32)},
        )
        return {
            name: np.asarray(value, dtype=np.float32)
            for name, value in zip(self.output_names, values, strict=True)
        }

    def close(self) -> None:
        self._session = None
