"""Moving sequences for the tracking evaluation: the scripted events really happen on screen."""

from __future__ import annotations

import pytest

from grounding_agent.sim.paths import LinearPath, WaypointPath
from grounding_agent.sim.sequences import SEQUENCE_KINDS, make_tracking_sequence, view_edge_x
from grounding_agent.sim.world import SimWorld


@pytest.mark.parametrize('kind', SEQUENCE_KINDS)
def test_sequences_are_seeded_and_name_a_unique_moving_target(kind: str) -> None:
    spec = make_tracking_sequence(kind, 4)
    assert spec == make_tracking_sequence(kind, 4)
    assert spec != make_tracking_sequence(kind, 5)
    assert spec.kind == kind
    assert 3.0 <= spec.duration_s <= 10.0
    assert (spec.camera.width, spec.camera.height) == (320, 240)
    target = spec.object(spec.target)
    assert target.path is not None
    twins = [o for o in spec.objects if (o.colour, o.shape) == (target.colour, target.shape)]
    assert twins == [target]


def test_unknown_sequence_kind_is_refused() -> None:
    with pytest.raises(ValueError, match='unknown sequence kind'):
        make_tracking_sequence('teleport', 0)


def test_view_edge_is_where_objects_leave_the_image() -> None:
    camera = make_tracking_sequence('exit_reentry', 0).camera
    edge = view_edge_x(camera, 0.0, 0.03, side=1)
    u_inside, u_outside = camera.project([(edge - 0.01, 0.0, 0.03), (edge + 0.01, 0.0, 0.03)])[
        :, 0
    ]
    assert u_inside < camera.width < u_outside


@pytest.mark.slow
def test_exit_reentry_leaves_the_view_and_comes_back() -> None:
    spec = make_tracking_sequence('exit_reentry', 2)
    path = spec.object(spec.target).path
    assert isinstance(path, WaypointPath)
    (t_start, *_), (t_out, *_), (t_turn, *_), (t_back, *_) = path.waypoints
    with SimWorld(spec) as world:
        seen = []
        for t in (t_start, (t_out + t_turn) / 2.0, t_back):
            world.set_time(t)
            seen.append(world.render().truth(spec.target))
    assert seen[0].box is not None
    assert seen[0].visible_fraction > 0.9
    assert seen[1].box is None
    assert seen[1].visible_fraction == 0.0
    assert seen[2].box is not None
    assert seen[2].box.iou(seen[0].box) > 0.9


@pytest.mark.slow
def test_occlusion_hides_the_mover_behind_the_occluder() -> None:
    spec = make_tracking_sequence('occlusion', 1)
    occluder = next(o for o in spec.objects if o.occluder)
    mover = spec.object(spec.target)
    assert isinstance(mover.path, LinearPath)
    # When the mover is straight behind the occluder, it is out of sight.
    t_behind = (
        mover.path.t_start
        + (occluder.position[0] - mover.path.start[0]) / (mover.path.velocity[0])
    )
    assert 0.0 < t_behind < spec.duration_s
    with SimWorld(spec) as world:
        world.set_time(0.0)
        before = world.render().truth(mover.name)
        world.set_time(t_behind)
        behind = world.render().truth(mover.name)
    assert before.visible_fraction > 0.9
    assert behind.box is None


@pytest.mark.slow
def test_crossing_objects_swap_sides() -> None:
    spec = make_tracking_sequence('crossing', 3)
    first, second = spec.objects[0], spec.objects[1]
    assert first.shape == second.shape
    assert first.colour != second.colour
    with SimWorld(spec) as world:
        world.set_time(0.0)
        start = world.render()
        world.set_time(spec.duration_s)
        end = world.render()
    assert start.truth(first.name).box.center[0] < start.truth(second.name).box.center[0]
    assert end.truth(first.name).box.center[0] > end.truth(second.name).box.center[0]
