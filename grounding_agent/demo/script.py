"""The demo script: the scene, the operator commands and what is true about each of them.

Read from YAML (config/demo.yaml is the one `make demo` runs). An expectation never holds an
answer: it names the object or the property, and the answer is computed from the renderer's
ground truth of the very frame the agent answered on (see `grounding_agent.demo.scoring`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grounding_agent.core.errors import ConfigError
from grounding_agent.sim.scene import SceneSpec
from grounding_agent.sim.scene_file import scene_from_mapping

__all__ = [
    'DemoScript',
    'Expectation',
    'ScriptedCommand',
    'TrackPhase',
    'default_script_path',
    'load_script',
    'script_from_mapping',
]

EXPECTATION_KINDS = ('target', 'count', 'relation', 'absent')
# In the order English puts them: 'small red cube'.
ATTRIBUTE_KEYS = ('size', 'colour', 'shape')
RELATIONS = ('left_of', 'right_of', 'in_front_of', 'behind')


@dataclass(frozen=True)
class Expectation:
    """What is true about one command, by name (`kind` is one of EXPECTATION_KINDS).

    target: `target` names the object the command means. count / absent: `attributes` select
    objects (shape, colour, size). relation: `subject` `relation` `anchor` (object names).
    """

    kind: str
    target: str = ''
    attributes: tuple[tuple[str, str], ...] = ()
    subject: str = ''
    relation: str = ''
    anchor: str = ''

    def describe(self) -> str:
        if self.kind == 'target':
            return f'box of {self.target}'
        if self.kind == 'relation':
            return f'truth of {self.subject} {self.relation} {self.anchor}'
        selected = ' '.join(value for _, value in self.attributes) or 'object'
        return f'number of {selected}' if self.kind == 'count' else f'rejected (no {selected})'


@dataclass(frozen=True)
class ScriptedCommand:
    text: str
    expect: Expectation


@dataclass(frozen=True)
class TrackPhase:
    """A standing query (the node's `query` parameter) held for `duration_s` seconds."""

    text: str
    target: str
    duration_s: float


@dataclass(frozen=True)
class DemoScript:
    scene: SceneSpec
    commands: tuple[ScriptedCommand, ...]
    track: TrackPhase | None
    rate_hz: float = 3.0
    iou: float = 0.5
    command_timeout_s: float = 20.0
    prerender_s: float = 0.0  # sim_camera's: render this much scene time ahead, then loop it

    def shortened(
        self, *, max_commands: int | None = None, track_duration_s: float | None = None
    ) -> DemoScript:
        """The first `max_commands` commands and a track phase of `track_duration_s` (0: none)."""
        commands = self.commands if max_commands is None else self.commands[: max(0, max_commands)]
        track = self.track
        if track is not None and track_duration_s is not None:
            track = replace(track, duration_s=track_duration_s) if track_duration_s > 0 else None
        return replace(self, commands=commands, track=track)


def _expectation(entry: Any, index: int, names: set[str]) -> Expectation:
    what = f'commands[{index}].expect'
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise ConfigError(f'{what} must be a mapping with one of {list(EXPECTATION_KINDS)}')
    kind, value = next(iter(entry.items()))
    if kind == 'target':
        if value not in names:
            raise ConfigError(f'{what}.target {value!r} is not an object of the scene')
        return Expectation(kind='target', target=str(value))
    if kind in ('count', 'absent'):
        if not isinstance(value, Mapping) or not value or set(value) - set(ATTRIBUTE_KEYS):
            raise ConfigError(f'{what}.{kind} must map some of {list(ATTRIBUTE_KEYS)} to values')
        attributes = tuple((key, str(value[key])) for key in ATTRIBUTE_KEYS if key in value)
        return Expectation(kind=kind, attributes=attributes)
    if kind == 'relation':
        if not isinstance(value, Mapping) or set(value) != {'subject', 'relation', 'object'}:
            raise ConfigError(f'{what}.relation needs exactly subject, relation and object')
        if value['relation'] not in RELATIONS:
            raise ConfigError(f'{what}.relation.relation must be one of {list(RELATIONS)}')
        for key in ('subject', 'object'):
            if value[key] not in names:
                raise ConfigError(f'{what}.relation.{key} {value[key]!r} is not in the scene')
        return Expectation(
            kind='relation',
            subject=str(value['subject']),
            relation=str(value['relation']),
            anchor=str(value['object']),
        )
    raise ConfigError(f'{what}: unknown expectation {kind!r}; one of {list(EXPECTATION_KINDS)}')


def _positive(document: Mapping[str, Any], key: str, default: float) -> float:
    try:
        value = float(document.get(key, default))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{key} must be a number: {exc}') from exc
    if not value > 0.0:
        raise ConfigError(f'{key} must be positive, got {value}')
    return value


def script_from_mapping(document: Mapping[str, Any]) -> DemoScript:
    """A DemoScript from its YAML form (config/demo.yaml documents it); raises ConfigError."""
    if not isinstance(document, Mapping):
        raise ConfigError('a demo script must be a mapping')
    scene = scene_from_mapping(document.get('scene') or {})
    names = {obj.name for obj in scene.objects}
    entries = document.get('commands') or []
    if not isinstance(entries, list):
        raise ConfigError('commands must be a list')
    commands = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get('text'), str):
            raise ConfigError(f'commands[{index}] needs `text` (a string) and `expect`')
        commands.append(
            ScriptedCommand(entry['text'], _expectation(entry.get('expect'), index, names))
        )
    track = None
    track_entry = document.get('track')
    if track_entry is not None:
        if not isinstance(track_entry, Mapping) or not isinstance(track_entry.get('text'), str):
            raise ConfigError('track needs `text`, `target` and `duration_s`')
        if track_entry.get('target') not in names:
            raise ConfigError(f'track.target {track_entry.get("target")!r} is not in the scene')
        track = TrackPhase(
            text=track_entry['text'],
            target=str(track_entry['target']),
            duration_s=_positive(track_entry, 'duration_s', 8.0),
        )
    camera = document.get('camera') or {}
    if not isinstance(camera, Mapping):
        raise ConfigError('camera must be a mapping')
    iou = _positive(document, 'iou', 0.5)
    if iou > 1.0:
        raise ConfigError(f'iou must be at most 1, got {iou}')
    return DemoScript(
        scene=scene,
        commands=tuple(commands),
        track=track,
        rate_hz=_positive(camera, 'rate_hz', 3.0),
        iou=iou,
        command_timeout_s=_positive(document, 'command_timeout_s', 20.0),
        prerender_s=_positive(camera, 'prerender_s', 1.0) if camera.get('prerender_s') else 0.0,
    )


def load_script(path: str | Path) -> DemoScript:
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read demo script {path}: {exc}') from exc
    return script_from_mapping(document)


def _installed_share() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory('grounding_agent'))
    except (ImportError, LookupError, OSError):  # no ament index: not a colcon install
        return None


def default_script_path() -> Path:
    """config/demo.yaml of this checkout, else the installed copy (share/grounding_agent)."""
    candidates = [Path(__file__).resolve().parents[2] / 'config' / 'demo.yaml']
    share = _installed_share()
    if share is not None:
        candidates.append(share / 'config' / 'demo.yaml')
    candidates.append(Path(sys.prefix) / 'share' / 'grounding_agent' / 'config' / 'demo.yaml')
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        'demo.yaml not found in ' + ', '.join(str(c) for c in candidates) + '; pass --script'
    )
