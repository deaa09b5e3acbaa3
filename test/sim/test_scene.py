"""Scene descriptions, cameras and paths: plain data, no rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grounding_agent.core.vocabulary import COLOURS
from grounding_agent.sim.paths import CircularPath, LinearPath, WaypointPath
from grounding_agent.sim.scene import (
    COLOUR_RGBA,
    SIZE_M,
    TABLE_RGBA,
    CameraPose,
    SceneSpec,
    SimObject,
    generate_scene,
    look_at_pose,
    object_dimensions,
    visible_fraction_behind,
)


def test_palette_names_exactly_the_basic_colours() -> None:
    assert list(COLOUR_RGBA) == list(COLOURS)
    assert all(
        len(rgba) == 4 and all(0.0 <= v <= 1.0 for v in rgba) for rgba in COLOUR_RGBA.values()
    )


def _chromaticity(rgba: tuple[float, ...]) -> np.ndarray:
    # r and g over r + g + b: unchanged by shading, which scales all three channels.
    rgb = np.asarray(rgba[:3])
    return rgb[:2] / rgb.sum()


@pytest.mark.parametrize('colour', COLOURS)
def test_table_chromaticity_is_far_from_every_paint(colour: str) -> None:
    # Shading makes a paint darker or lighter but keeps its chromaticity; the table must not
    # share it with any paint, or that colour's objects would look like table in shadow.
    distance = np.abs(_chromaticity(TABLE_RGBA) - _chromaticity(COLOUR_RGBA[colour])).sum()
    assert distance > 0.1, colour


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'shape': 'torus'}, 'unknown shape'),
        ({'colour': 'teal'}, 'unknown colour'),
        ({'size': 'medium'}, 'unknown size'),
        ({'height': 0.0}, 'height'),
        ({'height': 2.0}, 'height'),
    ],
)
def test_sim_object_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        'name': 'a', 'shape': 'cube', 'colour': 'red', 'size': 'small', 'position': (0, 0, 0.02),
    }  # fmt: skip
    values.update(changes)
    with pytest.raises(ValueError, match=message):
        SimObject(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('shape', 'size', 'height', 'expected'),
    [
        ('cube', 'small', None, (0.035, 0.035)),
        ('sphere', 'large', 0.3, (0.07, 0.07)),
        ('cylinder', 'large', None, (0.07, 0.0875)),
        ('cube', 'large', 0.15, (0.07, 0.15)),
    ],
)
def test_object_dimensions(
    shape: str, size: str, height: float | None, expected: tuple[float, float]
) -> None:
    assert object_dimensions(shape, size, height) == pytest.approx(expected)


def test_scene_names_must_be_unique_and_target_known() -> None:
    camera = look_at_pose()
    cube = SimObject('a', 'cube', 'red', 'small', (0.0, 0.0, 0.0175))
    with pytest.raises(ValueError, match='unique'):
        SceneSpec(seed=0, objects=(cube, cube), camera=camera)
    with pytest.raises(ValueError, match='target'):
        SceneSpec(seed=0, objects=(cube,), camera=camera, target='b')


@pytest.mark.parametrize(
    'changes',
    [{'width': 0}, {'fov_deg': 0.0}, {'near': 0.0}, {'far': 0.01}, {'target': (0.0, 0.0, -1.0)}],
)
def test_camera_pose_rejects_bad_values(changes: dict[str, object]) -> None:
    values: dict[str, object] = {'eye': (0.0, 0.0, 0.0), 'target': (0.0, 1.0, 0.0)}
    values.update(changes)
    with pytest.raises(ValueError):
        CameraPose(**values)  # type: ignore[arg-type]


def test_camera_projects_target_to_the_image_centre_and_right_to_the_right() -> None:
    camera = look_at_pose(
        distance=0.8, elevation_deg=45.0, azimuth_deg=20.0, width=320, height=240
    )
    ((u, v),) = camera.project([camera.target])
    assert (u, v) == pytest.approx((160.0, 120.0))
    assert camera.to_camera(camera.target)[2] == pytest.approx(0.8)
    forward = camera.rotation()[2]
    right = camera.rotation()[0]
    ahead = np.asarray(camera.eye) + forward
    assert camera.project([ahead + 0.1 * right])[0, 0] > 160.0
    # Down in the optical frame is down in the image and away from world up.
    assert camera.rotation()[1] @ np.array([0.0, 0.0, 1.0]) < 0
    k = camera.intrinsics
    assert k.fx == pytest.approx(120.0 / math.tan(math.radians(25.0)))


def test_generate_scene_is_deterministic_per_seed() -> None:
    assert generate_scene(7) == generate_scene(7)
    assert generate_scene(7) != generate_scene(8)


@pytest.mark.parametrize('seed', range(12))
def test_generated_objects_stand_apart_on_the_table(seed: int) -> None:
    spec = generate_scene(seed, n_objects=(6, 8))
    assert 2 <= len(spec.objects) <= 8
    for obj in spec.objects:
        _, height = obj.dimensions
        assert obj.position[2] == pytest.approx(height / 2.0)
    for i, a in enumerate(spec.objects):
        for b in spec.objects[i + 1 :]:
            gap = math.dist(a.position[:2], b.position[:2])
            reach = (SIZE_M[a.size] + SIZE_M[b.size]) / 2.0
            assert gap > reach, (a.name, b.name)


@pytest.mark.parametrize('seed', range(8))
def test_occluder_hides_part_of_a_small_object(seed: int) -> None:
    spec = generate_scene(seed, occluder=True)
    occluders = [o for o in spec.objects if o.occluder]
    assert len(occluders) == 1
    hidden = spec.objects[0]
    assert hidden.size == 'small'
    assert not hidden.occluder
    assert occluders[0].dimensions[1] > 0.12
    eye = np.asarray(spec.camera.eye[:2])
    assert math.dist(eye, occluders[0].position[:2]) < math.dist(eye, hidden.position[:2])
    assert 0.0 < visible_fraction_behind(spec.camera, hidden, occluders[0]) < 1.0


@pytest.mark.parametrize(
    ('path', 't', 'expected'),
    [
        (
            LinearPath((0.0, 0.0, 0.02), (0.1, 0.0, 0.0), t_start=1.0, t_end=3.0),
            0.0,
            (0.0, 0, 0.02),
        ),
        (
            LinearPath((0.0, 0.0, 0.02), (0.1, 0.0, 0.0), t_start=1.0, t_end=3.0),
            2.0,
            (0.1, 0, 0.02),
        ),
        (
            LinearPath((0.0, 0.0, 0.02), (0.1, 0.0, 0.0), t_start=1.0, t_end=3.0),
            9.0,
            (0.2, 0, 0.02),
        ),
        (CircularPath((0.0, 0.0, 0.02), 0.1, period_s=4.0), 1.0, (0.0, 0.1, 0.02)),
        (CircularPath((0.0, 0.0, 0.02), 0.1, period_s=-4.0), 1.0, (0.0, -0.1, 0.02)),
        (WaypointPath(((0.0, 0, 0, 0.02), (2.0, 0.2, 0, 0.02))), 1.0, (0.1, 0, 0.02)),
        (WaypointPath(((0.0, 0, 0, 0.02), (2.0, 0.2, 0, 0.02))), -1.0, (0.0, 0, 0.02)),
        (WaypointPath(((0.0, 0, 0, 0.02), (2.0, 0.2, 0, 0.02))), 5.0, (0.2, 0, 0.02)),
    ],
)
def test_paths_place_objects_over_time(path, t: float, expected: tuple[float, ...]) -> None:
    assert path.position_at(t) == pytest.approx(expected, abs=1e-9)
    assert path.to_dict()['kind'] in ('linear', 'circular', 'waypoints')


@pytest.mark.parametrize(
    'build',
    [
        lambda: WaypointPath(()),
        lambda: WaypointPath(((1.0, 0, 0, 0), (1.0, 1, 0, 0))),
        lambda: CircularPath((0, 0, 0), 0.1, period_s=0.0),
    ],
)
def test_bad_paths_are_refused(build) -> None:
    with pytest.raises(ValueError):
        build()


def test_object_pose_follows_its_path() -> None:
    path = CircularPath((0.0, 0.0, 0.02), 0.1, period_s=4.0)
    obj = SimObject('m', 'sphere', 'red', 'small', (0.1, 0.0, 0.02), yaw=0.5, path=path)
    position, yaw = obj.pose_at(1.0)
    assert position == pytest.approx((0.0, 0.1, 0.02))
    assert yaw == pytest.approx(0.5 + math.pi / 2)
    assert SimObject('s', 'cube', 'red', 'small', (0, 0, 0.0175)).pose_at(3.0)[0] == (0, 0, 0.0175)
