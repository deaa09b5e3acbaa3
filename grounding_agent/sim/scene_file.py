"""Scenes written by hand in YAML (the demo's scene, a user's own table) -> `SceneSpec`.

The format is the one `SceneSpec.to_dict()` writes, with conveniences for people typing it:

```yaml
scene:
  seed: 1                      # recorded with the ground truth
  camera: {target: [0, 0.02, 0], distance: 0.85, elevation_deg: 50, azimuth_deg: 0}
  # or camera: {eye: [x, y, z], target: [x, y, z], fov_deg: 50}
  light_direction: [0.5, -0.8, 1.5]
  objects:
    - {name: red_cube, shape: cube, colour: red, size: large, position: [-0.16, 0.12]}
    - name: purple_ball
      shape: sphere
      colour: purple
      size: large
      position: [0.07, -0.07]
      path: {kind: circular, centre: [0, -0.07], radius: 0.07, period_s: 12}
```

A position or path point of two numbers stands on the table (z = half the object's height).
Paths: `linear` (start, velocity, t_start, t_end), `circular` (centre, radius, period_s, phase),
`waypoints` ([t, x, y] or [t, x, y, z] rows). Anything wrong raises ConfigError naming the entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grounding_agent.core.errors import ConfigError
from grounding_agent.sim.paths import CircularPath, LinearPath, ObjectPath, WaypointPath
from grounding_agent.sim.scene import (
    TABLE_TOP_Z,
    CameraPose,
    SceneSpec,
    SimObject,
    look_at_pose,
    object_dimensions,
)

__all__ = ['load_scene_file', 'scene_from_mapping']

_CAMERA_LOOK_AT_KEYS = ('distance', 'elevation_deg', 'azimuth_deg')
_SCENE_KEYS = {
    'seed',
    'kind',
    'objects',
    'camera',
    'light_direction',
    'light_ambient',
    'light_diffuse',
    'light_specular',
    'shadow',
    'duration_s',
    'target',
    'light_colour',
    'table_rgba',
    'table_texture',
    'texture_contrast',
    'table_extent',
    'floor_rgba',
    'preset',
}


def _numbers(value: Any, lengths: Sequence[int], what: str) -> tuple[float, ...]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) not in lengths
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
    ):
        counts = ' or '.join(str(n) for n in lengths)
        raise ConfigError(f'{what} must be a list of {counts} finite numbers, got {value!r}')
    return tuple(float(v) for v in value)


def _on_table(point: tuple[float, ...], resting_z: float) -> tuple[float, float, float]:
    if len(point) == 2:
        return point[0], point[1], resting_z
    return point[0], point[1], point[2]


def _path(entry: Any, resting_z: float, what: str) -> ObjectPath:
    if not isinstance(entry, Mapping):
        raise ConfigError(f'{what} must be a mapping with a `kind`')
    kind = entry.get('kind')
    try:
        if kind == 'linear':
            t_end = entry.get('t_end')
            return LinearPath(
                start=_on_table(_numbers(entry['start'], (2, 3), f'{what}.start'), resting_z),
                velocity=_on_table(_numbers(entry['velocity'], (2, 3), f'{what}.velocity'), 0.0),
                t_start=float(entry.get('t_start', 0.0)),
                t_end=math.inf if t_end is None else float(t_end),
            )
        if kind == 'circular':
            return CircularPath(
                centre=_on_table(_numbers(entry['centre'], (2, 3), f'{what}.centre'), resting_z),
                radius=float(entry['radius']),
                period_s=float(entry['period_s']),
                phase=float(entry.get('phase', 0.0)),
            )
        if kind == 'waypoints':
            rows = entry['waypoints']
            if not isinstance(rows, list):
                raise ConfigError(f'{what}.waypoints must be a list of [t, x, y(, z)] rows')
            waypoints = []
            for index, row in enumerate(rows):
                values = _numbers(row, (3, 4), f'{what}.waypoints[{index}]')
                waypoints.append((values[0], *_on_table(values[1:], resting_z)))
            return WaypointPath(tuple(waypoints))
    except KeyError as exc:
        raise ConfigError(f'{what} ({kind}) needs {exc.args[0]!r}') from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{what}: {exc}') from exc
    raise ConfigError(f'{what}.kind must be linear, circular or waypoints, got {kind!r}')


def _object(entry: Any, index: int) -> SimObject:
    what = f'objects[{index}]'
    if not isinstance(entry, Mapping):
        raise ConfigError(f'{what} must be a mapping')
    try:
        shape, colour, size = str(entry['shape']), str(entry['colour']), str(entry['size'])
        height = entry.get('height')
        scale = float(entry.get('scale', 1.0))
        _, tall = object_dimensions(shape, size, None if height is None else float(height), scale)
    except KeyError as exc:
        raise ConfigError(f'{what} needs {exc.args[0]!r}') from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{what}: {exc}') from exc
    resting_z = TABLE_TOP_Z + tall / 2.0
    position = _on_table(_numbers(entry.get('position'), (2, 3), f'{what}.position'), resting_z)
    path = entry.get('path')
    paint: tuple[float, float, float, float] | None = None
    if entry.get('paint') is not None:
        red, green, blue, alpha = _numbers(entry['paint'], (4,), f'{what}.paint')
        paint = (red, green, blue, alpha)
    try:
        return SimObject(
            name=str(entry.get('name') or f'o{index}_{colour}_{shape}'),
            shape=shape,
            colour=colour,
            size=size,
            position=position,
            yaw=float(entry.get('yaw', 0.0)),
            path=None if path is None else _path(path, resting_z, f'{what}.path'),
            height=None if height is None else float(height),
            occluder=bool(entry.get('occluder', False)),
            scale=scale,
            paint=paint,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'{what}: {exc}') from exc


def _camera(entry: Any) -> CameraPose:
    if not isinstance(entry, Mapping):
        raise ConfigError('camera must be a mapping')
    try:
        target = _numbers(entry.get('target', [0.0, 0.0, 0.0]), (3,), 'camera.target')
        if 'eye' in entry:
            return CameraPose(
                eye=_on_table(_numbers(entry['eye'], (3,), 'camera.eye'), 0.0),
                target=_on_table(target, 0.0),
                up=_on_table(_numbers(entry.get('up', [0, 0, 1]), (3,), 'camera.up'), 0.0),
                fov_deg=float(entry.get('fov_deg', 50.0)),
                width=int(entry.get('width', 640)),
                height=int(entry.get('height', 480)),
                near=float(entry.get('near', 0.05)),
                far=float(entry.get('far', 8.0)),
            )
        options = {key: float(entry[key]) for key in _CAMERA_LOOK_AT_KEYS if key in entry}
        return look_at_pose(
            target=_on_table(target, 0.0),
            fov_deg=float(entry.get('fov_deg', 50.0)),
            width=int(entry.get('width', 640)),
            height=int(entry.get('height', 480)),
            **options,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'camera: {exc}') from exc


def scene_from_mapping(document: Mapping[str, Any]) -> SceneSpec:
    """A SceneSpec from its YAML / JSON form (see the module docstring); raises ConfigError."""
    if not isinstance(document, Mapping):
        raise ConfigError('a scene must be a mapping')
    unknown = sorted(set(document) - _SCENE_KEYS)
    if unknown:
        raise ConfigError(f'unknown scene keys {unknown}; allowed: {sorted(_SCENE_KEYS)}')
    entries = document.get('objects')
    if not isinstance(entries, list) or not entries:
        raise ConfigError('a scene needs a non-empty `objects` list')
    options: dict[str, Any] = {}
    if 'light_direction' in document:
        options['light_direction'] = _numbers(document['light_direction'], (3,), 'light')
    try:
        for key in ('light_ambient', 'light_diffuse', 'light_specular', 'duration_s'):
            if key in document:
                options[key] = float(document[key])
        if 'shadow' in document:
            options['shadow'] = bool(document['shadow'])
        # The look of a generated scene (sim/look.py), so a saved scene renders the same.
        for key, length in (('light_colour', 3), ('table_rgba', 4)):
            if key in document:
                options[key] = _numbers(document[key], (length,), key)
        for key in ('table_extent', 'floor_rgba'):
            if document.get(key) is not None:
                options[key] = _numbers(document[key], (4,), key)
        for key in ('table_texture', 'preset'):
            if key in document:
                options[key] = str(document[key])
        if 'texture_contrast' in document:
            options['texture_contrast'] = float(document['texture_contrast'])
        if document.get('target') is not None:
            options['target'] = str(document['target'])
        return SceneSpec(
            seed=int(document.get('seed', 0)),
            objects=tuple(_object(entry, index) for index, entry in enumerate(entries)),
            camera=_camera(document.get('camera', {})),
            kind=str(document.get('kind', 'still')),
            **options,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f'scene: {exc}') from exc


def load_scene_file(path: str | Path) -> SceneSpec:
    """The scene of a YAML file: its `scene:` section, or the whole file when it has none."""
    import yaml

    try:
        document = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read scene file {path}: {exc}') from exc
    if isinstance(document, Mapping) and 'scene' in document:
        document = document['scene']
    if not isinstance(document, Mapping):
        raise ConfigError(f'scene file {path} must hold a mapping (or a `scene:` mapping)')
    return scene_from_mapping(document)
