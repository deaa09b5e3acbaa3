"""The scene presets in config/sim_*.yaml load and show what their comments promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grounding_agent.sim.scene import SceneSpec, generate_scene
from grounding_agent.sim.scene_file import load_scene_file, scene_from_mapping
from grounding_agent.sim.world import Render, SimWorld, render_scene

CONFIG = Path(__file__).resolve().parents[2] / 'config'


def _render(spec: SceneSpec, times: tuple[float, ...]) -> dict[float, Render]:
    with SimWorld(spec) as world:
        out = {}
        for t in times:
            world.set_time(t)
            out[t] = world.render()
        return out


def test_every_preset_loads() -> None:
    presets = sorted(CONFIG.glob('sim_*.yaml'))
    assert [p.name for p in presets] == ['sim_tabletop.yaml', 'sim_tracking.yaml']
    for path in presets:
        assert load_scene_file(path).objects


@pytest.fixture(scope='module')
def tabletop() -> Render:
    return _render(load_scene_file(CONFIG / 'sim_tabletop.yaml'), (0.0,))[0.0]


def test_tabletop_has_each_kind_of_look_alike() -> None:
    spec = load_scene_file(CONFIG / 'sim_tabletop.yaml')
    kinds = {o.name: (o.shape, o.colour, o.size) for o in spec.objects}
    assert kinds['red_cube'] == ('cube', 'red', 'large')
    assert kinds['blue_cube'] == ('cube', 'blue', 'large')  # other colour
    assert kinds['small_red_cube'] == ('cube', 'red', 'small')  # other size
    assert kinds['red_ball'][1:] == ('red', 'large')  # other shape
    assert any(shape == 'cone' for shape, _, _ in kinds.values())


def test_tabletop_ball_is_partly_hidden_and_the_rest_in_full_view(tabletop: Render) -> None:
    for truth in tabletop.objects:
        if truth.name == 'purple_ball':
            assert 0.3 <= truth.visible_fraction <= 0.8
            assert truth.box is not None
        else:
            assert truth.visible_fraction >= 0.95, truth.name


@pytest.fixture(scope='module')
def tracking() -> dict[float, Render]:
    return _render(load_scene_file(CONFIG / 'sim_tracking.yaml'), (0.0, 2.5, 4.5, 10.5))


def test_tracking_ball_hides_behind_the_post(tracking: dict[float, Render]) -> None:
    assert tracking[0.0].truth('green_ball').box is not None
    assert tracking[2.5].truth('green_ball').box is None
    assert tracking[4.5].truth('green_ball').box is not None


def test_tracking_can_leaves_the_view_and_returns(tracking: dict[float, Render]) -> None:
    assert tracking[0.0].truth('pink_can').visible_fraction >= 0.95
    assert tracking[4.5].truth('pink_can').box is None
    assert tracking[10.5].truth('pink_can').visible_fraction >= 0.95


def test_tracking_orange_balls_cross(tracking: dict[float, Render]) -> None:
    def centre_x(t: float, name: str) -> float:
        box = tracking[t].truth(name).box
        assert box is not None
        return box.center[0]

    assert centre_x(0.0, 'orange_ball_left') < centre_x(0.0, 'orange_ball_right')
    assert centre_x(4.5, 'orange_ball_left') > centre_x(4.5, 'orange_ball_right')
    # Mid-crossing the farther ball is partly behind the nearer one.
    left, right = (tracking[2.5].truth(n) for n in ('orange_ball_left', 'orange_ball_right'))
    assert left.box is not None
    assert right.box is not None
    assert left.box.iou(right.box) > 0.0
    assert left.visible_fraction < 0.95 <= right.visible_fraction


def test_a_saved_scene_renders_to_the_same_pixels() -> None:
    # Shading weights vary per seed, so they must travel with the scene for the same image.
    spec = generate_scene(5).with_resolution(160, 120)
    again = scene_from_mapping(spec.to_dict())
    assert (again.light_ambient, again.light_diffuse, again.light_specular, again.shadow) == (
        spec.light_ambient, spec.light_diffuse, spec.light_specular, spec.shadow,
    )  # fmt: skip
    np.testing.assert_array_equal(render_scene(again).rgb, render_scene(spec).rgb)


def test_a_saved_randomised_scene_renders_to_the_same_pixels() -> None:
    # Light colour, table, texture, floor, paints and sizes travel with the scene too.
    spec = generate_scene(6, preset='randomised').with_resolution(160, 120)
    again = scene_from_mapping(spec.to_dict())
    assert again.objects == spec.objects
    np.testing.assert_array_equal(render_scene(again).rgb, render_scene(spec).rgb)
