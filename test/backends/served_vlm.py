"""A real OpenAI-compatible server (`transformers serve`) answering with a tiny random
Qwen2.5-VL, on loopback, for the end-to-end tests of the vlm_server backend.

The server runs in its own venv (`make install-vlm-server`, path in $VLM_SERVER_VENV; the
Makefile exports it): the Qwen2-VL processors import torchvision, whose wheels must match torch
exactly, which the project venv's CPU torch does not. Without that venv the tests fail and say
how to make it; they do not skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from fault_injecting_server import unused_port
from tiny_models_vlm import build_tiny_qwen2_5_vl

__all__ = ['ServedVlm', 'server_venv']

_HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 240.0


def server_venv() -> Path:
    """The server venv; pytest.fail (not skip) with the fix when it is missing."""
    default = _HERE.parents[1] / '.venv-vlm-server'
    venv = Path(os.environ.get('VLM_SERVER_VENV', str(default)))
    if not (venv / 'bin' / 'transformers').exists():
        pytest.fail(
            f'no `transformers serve` in {venv}: run `make install-vlm-server` (or set '
            'VLM_SERVER_VENV to a venv with torch==2.14.1, torchvision==0.29.1 and '
            'config/pip/vlm-server.txt)'
        )
    return venv


class ServedVlm:
    """A tiny random Qwen2.5-VL in `directory`, served by `transformers serve` on a fixed port
    (so a restarted server is found at the same URL)."""

    def __init__(self, directory: Path) -> None:
        self.venv = server_venv()
        self.directory = build_tiny_qwen2_5_vl(directory)
        subprocess.run(
            [
                str(self.venv / 'bin' / 'python'),
                str(_HERE / 'served_vlm_processor.py'),
                str(directory),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=self._env(),
        )
        self.port = unused_port()
        self.url = f'http://127.0.0.1:{self.port}/v1'
        #: The model name requests carry: the directory, as the server loaded it.
        self.model = str(self.directory)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory.parent / f'transformers-serve-{self.port}.log'

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', CUDA_VISIBLE_DEVICES='')
        env.pop('VIRTUAL_ENV', None)
        return env

    def start(self) -> None:
        """Start the server and wait until /health answers (or fail with its log)."""
        with self.log.open('ab') as log:
            self.process = subprocess.Popen(
                [
                    str(self.venv / 'bin' / 'transformers'),
                    'serve',
                    str(self.directory),
                    '--host',
                    '127.0.0.1',
                    '--port',
                    str(self.port),
                    '--device',
                    'cpu',
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f'transformers serve ended: {self.log.read_text()[-3000:]}')
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f'http://127.0.0.1:{self.port}/health', timeout=2.0).status_code
                    == 200
                ):
                    return
            time.sleep(0.5)
        self.kill()
        pytest.fail(
            f'transformers serve did not answer in {START_TIMEOUT_S:.0f} s: '
            f'{self.log.read_text()[-3000:]}'
        )

    def kill(self) -> None:
        """SIGKILL, as a crashed server would go (no goodbye to open connections)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
