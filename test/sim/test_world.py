"""Rendering and ground truth: boxes, depth, visibility and time, checked against the renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grounding_agent.core.types import Relation, Stamp
from grounding_agent.sim.errors import SimError
from grounding_agent.sim.paths import LinearPath
from grounding_agent.sim.scene import SHAPES, SceneSpec, SimObject, generate_scene, look_at_pose
from grounding_agent.sim.truth import relation_truth
from grounding_agent.sim.world import ObjectTruth, Render, SimWorld, linearize_depth, render_scene

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def renders() -> list[Render]:
    """Three full scenes (one with an occluder) at 640x480."""
    return [render_scene(generate_scene(seed, occluder=seed == 2)) for seed in (0, 1, 2)]


@pytest.fixture(scope='module')
def alone() -> dict[str, Render]:
    """Each shape rendered on its own, off-centre, at 320x240."""
    camera = look_at_pose(
        distance=0.6, elevation_deg=45.0, azimuth_deg=15.0, width=320, height=240
    )
    out = {}
    for shape in SHAPES:
        obj = SimObject('solo', shape, 'orange', 'large', (0.08, 0.05, 0.05), yaw=0.3)
        position = (0.08, 0.05, obj.dimensions[1] / 2.0)
        spec = SceneSpec(seed=0, objects=(SimObject('solo', shape, 'orange', 'large', position),),
                         camera=camera)  # fmt: skip
        out[shape] = render_scene(spec)
    return out


def _mask_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_render_shapes_and_types(renders: list[Render]) -> None:
    render = renders[0]
    assert render.rgb.shape == (480, 640, 3)
    assert render.rgb.dtype == np.uint8
    assert render.depth.shape == (480, 640)
    assert render.depth.dtype == np.float32
    assert render.segmentation.dtype == np.int32
    assert set(np.unique(render.segmentation)) <= {-1, *range(len(render.objects))}


def test_boxes_are_the_extent_of_each_mask(renders: list[Render]) -> None:
    for render in renders:
        for index, truth in enumerate(render.objects):
            mask = render.segmentation == index
            assert truth.pixel_count == int(mask.sum())
            if truth.pixel_count == 0:
                assert truth.box is None
                assert truth.visible_fraction == 0.0
            else:
                assert truth.box is not None
                assert truth.box.to_list() == _mask_box(mask)


@pytest.mark.parametrize('shape', SHAPES)
def test_box_of_an_object_alone_contains_its_projected_centre(
    alone: dict[str, Render], shape: str
) -> None:
    render = alone[shape]
    truth = render.objects[0]
    k = render.intrinsics
    x, y, z = truth.point_camera
    u, v = k.cx + k.fx * x / z, k.cy + k.fy * y / z
    assert truth.box is not None
    assert truth.box.x1 <= u <= truth.box.x2
    assert truth.box.y1 <= v <= truth.box.y2
    # Unoccluded and inside the image: the silhouette estimate agrees with the mask.
    assert truth.visible_fraction == pytest.approx(1.0, abs=0.06)
    assert truth.full_box.iou(truth.box) > 0.9


@pytest.mark.parametrize('shape', SHAPES)
def test_depth_on_an_object_is_its_distance(alone: dict[str, Render], shape: str) -> None:
    render = alone[shape]
    truth = render.objects[0]
    depth = render.depth[render.segmentation == 0]
    # Every visible surface point lies within the object's bounding sphere, and the camera sees
    # mostly the near side.
    width, height = SimObject('s', shape, 'red', 'large', (0, 0, 0)).dimensions
    radius = math.sqrt(2 * (width / 2.0) ** 2 + (height / 2.0) ** 2)
    z = truth.point_camera[2]
    assert np.all(np.abs(depth - z) <= radius + 1e-3)
    assert float(np.median(depth)) <= z + 1e-3
    # The table around it is farther than the object's front.
    assert float(np.median(render.depth[render.segmentation == -1])) > 0.3


def test_relations_agree_with_positions(renders: list[Render]) -> None:
    checked = 0
    for render in renders:
        k = render.intrinsics
        for a in render.visible_objects():
            for b in render.visible_objects():
                verdict = relation_truth(Relation.LEFT_OF, a, b)
                ua = k.cx + k.fx * a.point_camera[0] / a.point_camera[2]
                ub = k.cx + k.fx * b.point_camera[0] / b.point_camera[2]
                if verdict is True:
                    checked += 1
                    assert ua < ub
                    assert a.box.center[0] < b.box.center[0] or a.visible_fraction < 0.8
                if relation_truth(Relation.IN_FRONT_OF, a, b) is True:
                    assert a.point_camera[2] < b.point_camera[2]
    assert checked >= 5


def test_occluded_object_shows_part_of_itself(renders: list[Render]) -> None:
    render = renders[2]
    hidden, occluder = render.objects[0], render.objects[1]
    assert occluder.occluder
    assert 0.0 < hidden.visible_fraction < 0.95
    assert hidden.point_camera[2] > occluder.point_camera[2]


def test_linearized_depth_inverts_the_projection() -> None:
    near, far = 0.05, 8.0
    for z in (0.1, 0.7, 3.0):
        # The OpenGL depth-buffer value of a point at distance z.
        d = (1.0 / near - 1.0 / z) / (1.0 / near - 1.0 / far)
        assert float(linearize_depth(np.array([d]), near=near, far=far)[0]) == pytest.approx(
            z, rel=1e-4
        )


def test_set_time_moves_objects_along_their_paths() -> None:
    camera = look_at_pose(distance=0.6, elevation_deg=50.0, width=160, height=120)
    start = (-0.1, 0.0, 0.0175)
    mover = SimObject('mover', 'cube', 'red', 'small', start,
                      path=LinearPath(start, (0.1, 0.0, 0.0)))  # fmt: skip
    still = SimObject('still', 'sphere', 'blue', 'small', (0.0, 0.12, 0.0175))
    with SimWorld(SceneSpec(seed=0, objects=(mover, still), camera=camera)) as world:
        first = world.render()
        world.set_time(2.0)
        later = world.render()
        world.set_time(0.0)
        again = world.render()
    assert later.stamp_s == 2.0
    assert later.truth('mover').position_world == pytest.approx((0.1, 0.0, 0.0175))
    assert later.truth('mover').box.center[0] > first.truth('mover').box.center[0] + 20
    assert later.truth('still').box == first.truth('still').box
    assert np.array_equal(again.rgb, first.rgb)


def test_object_out_of_view_has_no_box() -> None:
    camera = look_at_pose(distance=0.6, elevation_deg=50.0, width=160, height=120)
    far_right = SimObject('gone', 'cube', 'red', 'small', (2.0, 0.0, 0.0175))
    render = render_scene(SceneSpec(seed=0, objects=(far_right,), camera=camera))
    truth = render.truth('gone')
    assert truth.box is None
    assert truth.visible_fraction == 0.0
    assert truth.pixel_count == 0


def test_worlds_are_independent_and_closing_is_final() -> None:
    camera = look_at_pose(width=96, height=72)
    a = SceneSpec(seed=0, objects=(SimObject('a', 'cube', 'red', 'large', (0, 0, 0.035)),),
                  camera=camera)  # fmt: skip
    b = SceneSpec(seed=0, objects=(SimObject('b', 'sphere', 'blue', 'large', (0, 0, 0.035)),),
                  camera=camera)  # fmt: skip
    with SimWorld(a) as first, SimWorld(b) as second:
        image_a = first.render().rgb
        image_b = second.render().rgb
        assert np.array_equal(first.render().rgb, image_a)
    assert not np.array_equal(image_a, image_b)
    with pytest.raises(SimError, match='closed'):
        first.render()
    first.close()  # twice is fine


@pytest.mark.parametrize('t', [math.nan, math.inf])
def test_set_time_refuses_non_finite_times(t: float) -> None:
    spec = SceneSpec(seed=0, objects=(), camera=look_at_pose(width=32, height=24))
    with SimWorld(spec) as world, pytest.raises(ValueError, match='finite'):
        world.set_time(t)


def test_frame_and_truth_serialisation(renders: list[Render]) -> None:
    render = renders[1]
    frame = render.to_frame()
    assert frame.image is render.rgb
    assert frame.depth is render.depth
    assert frame.intrinsics == render.intrinsics
    assert frame.frame_id == 'sim_camera_optical_frame'
    assert render.to_frame(stamp=Stamp(5, 0), camera='top').stamp == Stamp(5, 0)
    for truth in render.objects:
        again = ObjectTruth.from_dict(truth.to_dict())
        assert again.name == truth.name
        assert again.box == truth.box or again.box.iou(truth.box) > 0.999
        assert again.point_camera == pytest.approx(truth.point_camera, abs=1e-4)
    assert render.to_dict()['objects'][0]['name'] == render.objects[0].name
