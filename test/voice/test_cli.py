"""`grounding-agent voice`: the command line without ROS."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grounding_agent.cli import main
from grounding_agent.voice.audio import write_wav


def _has_portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def test_grammar_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['voice', '--grammar', '--objects', 'mug,laptop', '--wake-word', 'robot']) == 0
    out, err = capsys.readouterr()
    assert out.startswith('#JSGF V1.0;')
    assert '<object> = mug | laptop;' in out
    assert '# left out: grey (sounds like "gray")' in err


@pytest.mark.parametrize(
    ('content', 'message'),
    [(b'', 'is empty'), (b'not a wav file at all', 'not a WAV file')],
)
def test_bad_wav_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / 'bad.wav'
    path.write_bytes(content)
    assert main(['voice', '--wav', str(path)]) == 2
    assert message in capsys.readouterr().err


def test_silence_prints_an_empty_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_wav(tmp_path / 'quiet.wav', np.zeros(16000, np.float32), 16000)
    assert main(['voice', '--wav', str(tmp_path / 'quiet.wav')]) == 1
    out, err = capsys.readouterr()
    assert out == '\n'
    assert 'no speech' in err


@pytest.mark.voice
@pytest.mark.skipif(shutil.which('espeak-ng') is None, reason='espeak-ng is not installed')
def test_wav_prints_the_command_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from grounding_agent.voice.synthetic import synthesize

    path = synthesize('pick up the red mug left of the laptop', tmp_path / 'c.wav')
    assert main(['voice', '--wav', str(path), '--json']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == 'pick up the red mug left of the laptop'
    assert '"accepted": true' in lines[0]


@pytest.mark.skipif(_has_portaudio(), reason='PortAudio is present: --listen would open it')
def test_listen_without_a_sound_system_says_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(['voice', '--listen']) == 2
    assert 'PortAudio' in capsys.readouterr().err


def test_ros_arguments_are_passed_to_the_node() -> None:
    from grounding_agent.cli import build_parser

    args = build_parser().parse_args(['voice', '--ros-args', '-p', 'source:=topic'])
    assert args.ros_args == ['-p', 'source:=topic']
    assert build_parser().parse_args(['voice']).ros_args is None
