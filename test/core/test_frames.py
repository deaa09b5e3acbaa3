"""Rigid transforms of camera points into robot frames (the math apart from any tf2 lookup)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from grounding_agent.core.frames import OPTICAL_IN_BODY, RigidTransform


def test_optical_axes_map_to_the_body_axes_of_rep_103() -> None:
    # optical z (forward) is body x, optical x (right) is body -y, optical y (down) is body -z
    assert OPTICAL_IN_BODY.apply((0.0, 0.0, 1.0)) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)
    assert OPTICAL_IN_BODY.apply((1.0, 0.0, 0.0)) == pytest.approx((0.0, -1.0, 0.0), abs=1e-12)
    assert OPTICAL_IN_BODY.apply((0.0, 1.0, 0.0)) == pytest.approx((0.0, 0.0, -1.0), abs=1e-12)


@pytest.mark.parametrize('seed', range(5))
def test_rpy_and_apply_agree_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rpy = rng.uniform(-math.pi, math.pi, 3)
    translation = rng.normal(size=3)
    point = rng.normal(size=3)
    transform = RigidTransform.from_rpy('base_link', 'camera', translation, rpy)
    expected = Rotation.from_euler('xyz', rpy).apply(point) + translation
    assert transform.apply(point) == pytest.approx(tuple(expected), abs=1e-9)


def test_chained_transforms_equal_applying_one_after_the_other() -> None:
    camera_in_body = OPTICAL_IN_BODY
    body_in_base = RigidTransform.from_rpy(
        'base_link', 'camera_link', (0.1, 0.0, 1.2), (0.0, 0.7, 0.2)
    )
    point = (0.12, -0.05, 0.74)
    chained = camera_in_body.then(body_in_base)
    assert (chained.target_frame, chained.source_frame) == ('base_link', 'camera_optical_frame')
    assert chained.apply(point) == pytest.approx(body_in_base.apply(camera_in_body.apply(point)))


def test_inverse_undoes_the_transform() -> None:
    transform = RigidTransform.from_rpy('map', 'camera', (1.0, -2.0, 0.5), (0.3, -0.2, 1.1))
    point = (0.4, 0.1, 2.0)
    back = transform.inverse()
    assert (back.target_frame, back.source_frame) == ('camera', 'map')
    assert back.apply(transform.apply(point)) == pytest.approx(point)


def test_frames_must_chain() -> None:
    with pytest.raises(ValueError, match='cannot chain'):
        OPTICAL_IN_BODY.then(OPTICAL_IN_BODY)


@pytest.mark.parametrize(
    ('translation', 'rotation'),
    [((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0)), ((math.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))],
)
def test_a_broken_transform_is_refused(
    translation: tuple[float, float, float], rotation: tuple[float, float, float, float]
) -> None:
    with pytest.raises(ValueError):
        RigidTransform('a', 'b', translation, rotation)


def test_an_unnormalised_quaternion_rotates_like_its_unit_quaternion() -> None:
    unit = RigidTransform.from_rpy('a', 'b', (0.0, 0.0, 0.0), (0.1, 0.2, 0.3))
    scaled = RigidTransform('a', 'b', rotation=tuple(2.0 * v for v in unit.rotation))  # type: ignore[arg-type]
    assert scaled.apply((1.0, 2.0, 3.0)) == pytest.approx(unit.apply((1.0, 2.0, 3.0)))
