"""The randomised look: ranges respected, seeded, the layout of the fixed preset kept."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from grounding_agent.sim.look import (
    MIN_SURFACE_DELTA_E,
    PRESETS,
    RANGES,
    LookError,
    colour_temperature_rgb,
    jittered_paint,
    surface_texture,
)
from grounding_agent.sim.scene import COLOUR_RGBA, TABLE_RGBA, generate_scene
from grounding_agent.sim.sequences import SEQUENCE_KINDS, make_tracking_sequence
from grounding_agent.sim.world import render_scene


def _lab(rgb: tuple[float, ...]) -> np.ndarray:
    pixel = np.asarray(rgb[:3], dtype=np.float32).reshape(1, 1, 3)
    return cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab)[0, 0]


def _within(name: str, value: float) -> bool:
    return RANGES[name].low - 1e-6 <= value <= RANGES[name].high + 1e-6


def test_colour_temperature_is_neutral_at_d65_warm_below_and_cool_above() -> None:
    assert colour_temperature_rgb(6504.0) == (1.0, 1.0, 1.0)
    r, g, b = colour_temperature_rgb(3000.0)
    assert r == 1.0 > g > b > 0.2
    r, g, b = colour_temperature_rgb(7500.0)
    assert b == 1.0 > g > r
    with pytest.raises(LookError):
        colour_temperature_rgb(500.0)


def test_the_fixed_preset_is_todays_scene() -> None:
    spec = generate_scene(3)
    assert spec == generate_scene(3, preset='fixed')
    assert spec.preset == 'fixed'
    assert spec.table_rgba == TABLE_RGBA
    assert (spec.table_extent, spec.floor_rgba, spec.table_texture) == (None, None, 'plain')
    assert spec.light_colour == (1.0, 1.0, 1.0)
    assert all(o.paint is None and o.scale == 1.0 for o in spec.objects)


@pytest.mark.parametrize('seed', range(12))
def test_randomised_scenes_keep_the_layout_and_stay_within_the_ranges(seed: int) -> None:
    fixed = generate_scene(seed)
    spec = generate_scene(seed, preset='randomised')
    assert spec == generate_scene(seed, preset='randomised')
    assert spec.preset == 'randomised'
    assert [o.name for o in spec.objects] == [o.name for o in fixed.objects]
    if not any(o.occluder for o in fixed.objects):  # an occluder is placed for its camera
        assert [o.position[:2] for o in spec.objects] == [o.position[:2] for o in fixed.objects]
    camera = spec.camera
    offset = np.subtract(camera.eye, camera.target)
    pitch = math.degrees(math.atan2(offset[2], math.hypot(offset[0], offset[1])))
    assert _within('camera_pitch_deg', pitch)
    assert _within('camera_distance_m', float(np.linalg.norm(offset)))
    assert _within('camera_fov_deg', camera.fov_deg)
    assert _within('light_intensity', spec.light_ambient + spec.light_diffuse)
    assert _within('ambient_share', spec.light_ambient / (spec.light_ambient + spec.light_diffuse))
    assert _within('colour_temperature_k', spec.notes['colour_temperature_k'])
    assert spec.floor_rgba is not None
    assert spec.table_extent is not None
    table = _lab(spec.table_rgba)
    for paint in [*COLOUR_RGBA.values(), *(o.rgba for o in spec.objects)]:
        assert np.linalg.norm(table - _lab(paint)) >= MIN_SURFACE_DELTA_E - 1e-3
    for obj in spec.objects:
        assert obj.occluder or _within('object_scale', obj.scale)
        assert obj.position[2] == pytest.approx(obj.dimensions[1] / 2.0)
    # The placement patch (48 x 34 cm) stands on the table.
    x0, x1, y0, y1 = spec.table_extent
    assert x0 <= -0.24
    assert x1 >= 0.24
    assert y0 <= -0.16
    assert y1 >= 0.18


def test_jittered_paints_stay_nearest_their_own_prototype() -> None:
    import random

    rng = random.Random(0)
    prototypes = {name: _lab(rgba) for name, rgba in COLOUR_RGBA.items()}
    for colour, rgba in COLOUR_RGBA.items():
        for _ in range(200):
            changed = _lab(jittered_paint(rgba, rng))
            nearest = min(prototypes, key=lambda n: float(np.linalg.norm(prototypes[n] - changed)))
            assert nearest == colour


def test_textures_ripple_brightness_not_hue() -> None:
    colour = (0.6, 0.45, 0.3)
    for kind in ('grain', 'speckle', 'weave'):
        texture = surface_texture(colour, kind, (200, 120), 1, 0.08).astype(np.float32)
        brightness = texture.sum(axis=2)
        assert brightness.std() > 0.02 * brightness.mean(), kind
        chroma = texture / brightness[..., None]
        assert chroma.std(axis=(0, 1)).max() < 0.01, kind
    plain = surface_texture(colour, 'plain', (20, 10), 1, 0.08)
    assert len(np.unique(plain.reshape(-1, 3), axis=0)) == 1
    with pytest.raises(LookError):
        surface_texture(colour, 'marble', (20, 10), 1, 0.08)


def test_unknown_presets_are_refused() -> None:
    assert PRESETS == ('fixed', 'randomised')
    with pytest.raises(LookError):
        generate_scene(0, preset='sunny')
    with pytest.raises(LookError):
        make_tracking_sequence('crossing', 0, preset='sunny')


@pytest.mark.parametrize('kind', SEQUENCE_KINDS)
def test_randomised_sequences_keep_their_script(kind: str) -> None:
    fixed = make_tracking_sequence(kind, 2)
    spec = make_tracking_sequence(kind, 2, preset='randomised')
    assert spec == make_tracking_sequence(kind, 2, preset='randomised')
    assert [o.name for o in spec.objects] == [o.name for o in fixed.objects]
    assert spec.target == fixed.target
    assert spec.camera.eye[0] == pytest.approx(0.0)  # azimuth 0: the exits stay exact
    for obj, before in zip(spec.objects, fixed.objects):
        assert obj.paint is not None
        assert (obj.scale == 1.0) == (obj.path is not None or obj.occluder)
        assert type(obj.path) is type(before.path)  # an exit depends on the camera


def test_a_randomised_render_shows_a_textured_table_a_floor_and_every_object() -> None:
    spec = generate_scene(1, preset='randomised').with_resolution(320, 240)
    assert spec.table_texture == 'grain'
    render = render_scene(spec)
    background = render.rgb[render.segmentation < 0].reshape(-1, 3)
    # Grain, shadows, the floor: many background colours, where the fixed table has two.
    assert len(np.unique(background, axis=0)) > 30
    fixed = render_scene(generate_scene(1).with_resolution(320, 240))
    assert len(np.unique(fixed.rgb[fixed.segmentation < 0].reshape(-1, 3), axis=0)) < 10
    for truth in render.objects:
        assert truth.box is not None, truth.name
