"""The `grounding-agent` command line: every sub-command imports and answers --help."""

from __future__ import annotations

import importlib

import pytest

from grounding_agent import cli


@pytest.mark.parametrize('name', sorted(cli.COMMANDS))
def test_every_sub_command_module_imports_and_has_its_hooks(name: str) -> None:
    module = importlib.import_module(f'grounding_agent.commands.{cli.COMMANDS[name][0]}')
    assert callable(module.add_arguments)
    assert callable(module.run)


@pytest.mark.parametrize('name', sorted(cli.COMMANDS))
def test_every_sub_command_answers_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main([name, '--help'])
    assert stopped.value.code == 0
    assert 'unavailable' not in capsys.readouterr().out


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main([])
    assert stopped.value.code == 2
