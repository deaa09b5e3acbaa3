"""Triangle meshes of the round primitives (sphere, cylinder, cone) with explicit normals.

PyBullet has no cone, its TinyRenderer shades cylinder caps as if they were rounded and its
sphere is coarse. Building all three as meshes with our own normals gives sharp cap edges, a
smooth side, and a silhouette we know exactly: the convex hull of the same vertices is what
`ObjectTruth.visible_fraction` compares the visible pixels with.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from grounding_agent.sim.errors import SimError

__all__ = [
    'MESH_SEGMENTS',
    'Mesh',
    'box_corners',
    'cone_mesh',
    'cylinder_mesh',
    'shape_mesh',
    'sphere_mesh',
]

#: Segments around the axis of every round mesh: smooth at the sizes rendered here.
MESH_SEGMENTS = 32

Mesh = tuple[npt.NDArray[np.float64], npt.NDArray[np.int32], npt.NDArray[np.float64]]


def _ring(radius: float, z: float, segments: int) -> npt.NDArray[np.float64]:
    angles = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    return np.stack(
        [radius * np.cos(angles), radius * np.sin(angles), np.full(segments, z)], axis=1
    )


def _disc(radius: float, z: float, segments: int, *, up: bool, first: int) -> Mesh:
    """A flat cap: centre + ring, facing up (+z) or down, vertex indices starting at `first`."""
    vertices = np.vstack([[0.0, 0.0, z], _ring(radius, z, segments)])
    normals = np.tile([0.0, 0.0, 1.0 if up else -1.0], (segments + 1, 1))
    triangles = []
    for i in range(segments):
        a, b = 1 + i, 1 + (i + 1) % segments
        triangles.append((0, a, b) if up else (0, b, a))
    return vertices, np.asarray(triangles, dtype=np.int32).ravel() + first, normals


def cylinder_mesh(radius: float, height: float, segments: int = MESH_SEGMENTS) -> Mesh:
    """An upright cylinder centred at the origin: smooth side, flat caps with sharp edges."""
    h = height / 2.0
    bottom, top = _ring(radius, -h, segments), _ring(radius, h, segments)
    side_normals = np.vstack([bottom, top]) * [1.0, 1.0, 0.0] / radius
    side_triangles = []
    for i in range(segments):
        j = (i + 1) % segments
        side_triangles += [i, j, segments + j, i, segments + j, segments + i]
    parts = [(np.vstack([bottom, top]), np.asarray(side_triangles, dtype=np.int32), side_normals)]
    first = 2 * segments
    for z, up in ((h, True), (-h, False)):
        parts.append(_disc(radius, z, segments, up=up, first=first))
        first += segments + 1
    return _join(parts)


def cone_mesh(radius: float, height: float, segments: int = MESH_SEGMENTS) -> Mesh:
    """An upright cone centred on half its height: apex up, smooth side, flat base."""
    h = height / 2.0
    base = _ring(radius, -h, segments)
    # One apex vertex per side triangle, each with that side's normal, so the side shades like a
    # cone instead of a blob with one averaged normal at the tip.
    slope = math.atan2(radius, height)
    angles = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    half_step = math.pi / segments
    ring_normals = np.stack(
        [np.cos(angles) * math.cos(slope), np.sin(angles) * math.cos(slope),
         np.full(segments, math.sin(slope))], axis=1,
    )  # fmt: skip
    apex_angles = angles + half_step
    apex_normals = np.stack(
        [np.cos(apex_angles) * math.cos(slope), np.sin(apex_angles) * math.cos(slope),
         np.full(segments, math.sin(slope))], axis=1,
    )  # fmt: skip
    apexes = np.tile([0.0, 0.0, h], (segments, 1))
    triangles = []
    for i in range(segments):
        triangles += [segments + i, i, (i + 1) % segments]
    side = (np.vstack([base, apexes]), np.asarray(triangles, dtype=np.int32),
            np.vstack([ring_normals, apex_normals]))  # fmt: skip
    return _join([side, _disc(radius, -h, segments, up=False, first=2 * segments)])


def sphere_mesh(radius: float, segments: int = MESH_SEGMENTS) -> Mesh:
    """A UV sphere centred at the origin with smooth (radial) normals."""
    rings = segments // 2
    vertices = [[0.0, 0.0, radius]]
    for k in range(1, rings):
        polar = math.pi * k / rings
        vertices += _ring(radius * math.sin(polar), radius * math.cos(polar), segments).tolist()
    vertices.append([0.0, 0.0, -radius])
    south = len(vertices) - 1
    triangles = []
    for i in range(segments):
        j = (i + 1) % segments
        triangles += [0, 1 + i, 1 + j]
        last = 1 + (rings - 2) * segments
        triangles += [south, last + j, last + i]
    for k in range(rings - 2):
        row, below = 1 + k * segments, 1 + (k + 1) * segments
        for i in range(segments):
            j = (i + 1) % segments
            triangles += [row + i, below + j, row + j, row + i, below + i, below + j]
    points = np.asarray(vertices, dtype=np.float64)
    return points, np.asarray(triangles, dtype=np.int32), points / radius


def box_corners(width: float, height: float) -> npt.NDArray[np.float64]:
    """The 8 corners of an upright square block centred at the origin."""
    r, h = width / 2.0, height / 2.0
    return np.array(
        [[sx * r, sy * r, sz * h] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
        dtype=np.float64,
    )


def shape_mesh(shape: str, width: float, height: float) -> Mesh | None:
    """The mesh of a round shape ('sphere' uses `width` only), None for 'cube' (a box)."""
    if shape == 'sphere':
        return sphere_mesh(width / 2.0)
    if shape == 'cylinder':
        return cylinder_mesh(width / 2.0, height)
    if shape == 'cone':
        return cone_mesh(width / 2.0, height)
    if shape == 'cube':
        return None
    raise SimError(f'unknown shape {shape!r}')


def _join(parts: list[Mesh]) -> Mesh:
    return (
        np.vstack([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.vstack([p[2] for p in parts]),
    )
