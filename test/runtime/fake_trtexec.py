"""FakeTrtexec: a stand-in for NVIDIA's trtexec, which cannot be installed without a GPU.

It answers `--help` with a real-looking version banner, records every other command line and
writes a placeholder engine file at `--saveEngine` (or fails like a broken build).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from grounding_agent.runtime import tensorrt_engine

__all__ = ['call_log', 'install_fake_trtexec']

FAKE_TRTEXEC = """#!{python}
# FakeTrtexec: stands in for NVIDIA's trtexec, which cannot be installed without a GPU.
import json, sys
args = sys.argv[1:]
if args == ['--help']:
    print('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help')
    sys.exit(0)
with open({log!r}, 'a') as log:
    log.write(json.dumps(sys.argv) + '\\n')
if {fail!r}:
    print('[E] Error[4]: network has no layers')
    sys.exit(1)
engine = next(a.split('=', 1)[1] for a in args if a.startswith('--saveEngine='))
open(engine, 'wb').write(b'placeholder engine')
"""


def install_fake_trtexec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, fail: bool
) -> tuple[Path, Path]:
    """Put FakeTrtexec first on PATH, hide the tensorrt package and name a fake GPU.

    Returns (the script, the file its command lines are logged to).
    """
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'trtexec-calls.jsonl'
    script = bin_dir / 'trtexec'
    script.write_text(
        FAKE_TRTEXEC.format(python=sys.executable, log=str(log), fail=fail), encoding='utf-8'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ.get("PATH", "")}')
    monkeypatch.setattr(tensorrt_engine, '_import_tensorrt', lambda: None)
    monkeypatch.setattr(tensorrt_engine, 'gpu_name', lambda device='cuda': 'Orin (fake)')
    return script, log


def call_log(log: Path) -> list[list[str]]:
    """The command lines FakeTrtexec was run with (not counting --help)."""
    return [json.loads(line) for line in log.read_text(encoding='utf-8').splitlines()]
