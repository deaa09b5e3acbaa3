"""`grounding-agent export` as a user runs it: JSON summary, exit codes, readable failures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from fake_trtexec import install_fake_trtexec

from grounding_agent.backends.owl_graph import EncoderSpec, read_sidecar
from grounding_agent.commands import export
from grounding_agent.runtime import tensorrt_engine


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog='grounding-agent export')
    export.add_arguments(parser)
    code = export.run(parser.parse_args(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_export_writes_onnx_and_checks_it_against_torch(
    model_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_path = tmp_path / 'owlvit.onnx'
    argv = ['--backend', 'owlvit', '--model', str(model_dirs['owlvit']), '--onnx', str(onnx_path)]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    summary = json.loads(out)  # stdout holds only the JSON summary
    assert summary['ok'] is True
    assert summary['onnx'] == str(onnx_path)
    assert max(summary['max_abs_difference_vs_torch'].values()) < 1e-3
    assert summary['spec']['output_names'] == [
        'class_embeds',
        'logit_shift',
        'logit_scale',
        'pred_boxes',
    ]
    assert onnx_path.is_file()
    assert read_sidecar(onnx_path) is not None


@pytest.mark.parametrize(
    ('argv', 'message'),
    [
        (['--model', 'DIR'], '--onnx OUT.onnx is required'),
        (['--model', 'DIR', '--onnx', 'out.txt'], 'must end with .onnx'),
        (['--model', '/no/such/owl', '--onnx', 'x.onnx'], 'does not exist'),
        (['--model', '/no/such/owl.onnx', '--engine', 'x.engine'], 'does not exist'),
    ],
)
def test_export_failures_are_one_line_and_exit_1(
    argv: list[str], message: str, model_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(model_dirs['owlv2']) if a == 'DIR' else a for a in argv]
    code, out, err = _run(argv, capsys)
    assert code == 1
    assert out == ''
    assert err.startswith('export failed: ')
    assert message in err


def test_engine_without_tensorrt_exits_1_with_the_reason(
    exported: dict[str, tuple[Path, EncoderSpec]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tensorrt_engine, '_import_tensorrt', lambda: None)
    monkeypatch.setattr(tensorrt_engine, 'trtexec_path', lambda: None)
    argv = ['--model', str(exported['owlv2'][0]), '--engine', str(tmp_path / 'owl.engine')]
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert 'TensorRT is not available' in err


def test_engine_from_an_onnx_file_through_the_cache(
    exported: dict[str, tuple[Path, EncoderSpec]],
    model_dirs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_fake_trtexec(tmp_path, monkeypatch, fail=False)
    engine = tmp_path / 'deploy' / 'owlv2.engine'
    argv = [
        '--model',
        str(exported['owlv2'][0]),
        '--engine',
        str(engine),
        '--fp16',
        '--engine-cache-dir',
        str(tmp_path / 'cache'),
    ]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    summary = json.loads(out)['engine']
    assert summary == {
        'path': str(engine),
        'from_cache': False,
        'precision': 'fp16',
        'tensorrt_version': '10.3.0',
        'gpu_name': 'Orin (fake)',
    }
    assert engine.read_bytes() == b'placeholder engine'
    spec = read_sidecar(engine)
    assert spec is not None
    assert (engine.parent / spec.hf_model).resolve() == model_dirs['owlv2'].resolve()
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert json.loads(out)['engine']['from_cache'] is True
