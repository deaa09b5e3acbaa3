"""Imports between the package's folders follow the table in docs/architecture.md, which has no
cycle: every import counts, at module level, inside a function or under TYPE_CHECKING, and so
does a module named in a string for `importlib`."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'grounding_agent'
DOC = ROOT / 'docs' / 'architecture.md'
_ROW = re.compile(r'^\| `([\w.]+)` \| ([^|]*) \|')
_MODULE_STRING = re.compile(r'grounding_agent(\.\w+)+')


def documented_rules(text: str) -> dict[str, set[str]]:
    """'| `ros` | `core`, `backends` | ...' rows -> {'ros': {'core', 'backends'}}."""
    rules: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            name = match.group(1).removesuffix('.py')
            rules[name] = set(re.findall(r'`([\w.]+)`', match.group(2)))
    return rules


def _part(path: Path) -> str:
    """The folder of a package module ('ros'), or the module itself at the top ('cli')."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_STRING.fullmatch(node.value)
        ):
            yield node.value, node.lineno


@functools.cache
def package_imports() -> list[tuple[str, str, str]]:
    """(importing part, imported part, 'file:line') for every import between two parts."""
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        source = _part(path)
        for module, line in _imported(ast.parse(path.read_text(encoding='utf-8'))):
            parts = module.split('.')
            if parts[0] != 'grounding_agent' or len(parts) < 2 or parts[1] == source:
                continue
            found.append((source, parts[1], f'{path.relative_to(ROOT)}:{line}'))
    return found


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path ['a', 'b', 'a'], or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return [*path[path.index(successor) :], successor]
            if successor not in state:
                cycle = visit(successor, [*path, successor])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


RULES = documented_rules(DOC.read_text(encoding='utf-8'))


def test_the_table_names_every_folder_of_the_package() -> None:
    parts = {_part(path) for path in PACKAGE.rglob('*.py')} - {'__init__'}
    assert parts == set(RULES)
    assert all(allowed <= set(RULES) for allowed in RULES.values())


def test_the_rules_have_no_cycle() -> None:
    assert find_cycle(RULES) is None


def test_every_import_between_folders_is_allowed() -> None:
    refused = [
        f'{where}: {source} imports {target}'
        for source, target, where in package_imports()
        if target not in RULES.get(source, set())
    ]
    assert refused == []


def test_the_imports_in_use_have_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for source, target, _ in package_imports():
        graph.setdefault(source, set()).add(target)
    assert find_cycle(graph) is None


@pytest.mark.parametrize(
    ('graph', 'cycle'),
    [
        ({'a': {'b'}, 'b': {'c'}, 'c': set()}, None),
        ({'a': {'b'}, 'b': {'a'}}, ['a', 'b', 'a']),
        ({'a': {'b'}, 'b': {'c'}, 'c': {'b'}}, ['b', 'c', 'b']),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_the_checks_see_imports_inside_functions_and_in_strings() -> None:
    tree = ast.parse(
        'def f():\n    from grounding_agent.demo import runner\n'
        "MODULES = {'x': 'grounding_agent.ros.sim_camera'}\n"
    )
    assert [module for module, _ in _imported(tree)] == [
        'grounding_agent.demo',
        'grounding_agent.ros.sim_camera',
    ]


# Folders whose every deliberate error is the package's own (one class per subsystem).
OWN_ERRORS = ('sim', 'eval', 'demo', 'runtime')
_BUILTIN_ERRORS = frozenset({'Exception', 'ValueError', 'KeyError', 'RuntimeError', 'TypeError'})


def test_sim_eval_demo_and_runtime_raise_only_the_package_s_errors() -> None:
    found = []
    for part in OWN_ERRORS:
        for path in sorted((PACKAGE / part).rglob('*.py')):
            for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
                if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
                    continue
                name = node.exc.func
                if isinstance(name, ast.Name) and name.id in _BUILTIN_ERRORS:
                    found.append(f'{path.relative_to(ROOT)}:{node.lineno}: {name.id}')
    assert found == []


def test_each_subsystem_error_is_a_grounding_error() -> None:
    from grounding_agent.core.errors import GroundingError
    from grounding_agent.demo.errors import DemoError
    from grounding_agent.eval.benchmark import BenchmarkError
    from grounding_agent.eval.errors import EvalError
    from grounding_agent.eval.formats import DatasetFormatError
    from grounding_agent.sim.errors import SimError
    from grounding_agent.sim.look import LookError
    from grounding_agent.voice.errors import VoiceError

    for error in (DemoError, EvalError, SimError, VoiceError):
        assert issubclass(error, GroundingError), error
    assert issubclass(BenchmarkError, EvalError)
    assert issubclass(DatasetFormatError, EvalError)
    assert issubclass(LookError, SimError)
