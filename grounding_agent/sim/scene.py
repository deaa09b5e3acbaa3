"""Seeded tabletop scenes for PyBullet: coloured primitives on a plain table, a camera, a light.

A `SceneSpec` is plain data (no simulator state), generated deterministically from a seed, so a
benchmark or a test can be rebuilt from its seed alone. `grounding_agent.sim.world.SimWorld`
renders it. The palette is the eleven basic colour terms of `core.vocabulary.COLOURS` as clear
prototypical paints; the table's colour is deliberately none of them.

World frame: z up, metres, the table top is the plane z = 0 (`TABLE_TOP_Z`); an object's
`position` is its geometric centre, so a resting cube of edge e has z = e / 2.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import CameraIntrinsics
from grounding_agent.core.vocabulary import COLOURS
from grounding_agent.sim.errors import SimError
from grounding_agent.sim.look import (
    PRESETS,
    RANGES,
    LookError,
    jittered_paint,
    random_camera_values,
    random_look,
)
from grounding_agent.sim.meshes import box_corners, shape_mesh
from grounding_agent.sim.paths import ObjectPath

__all__ = [
    'COLOUR_RGBA',
    'SHAPES',
    'SIZES',
    'SIZE_M',
    'TABLE_HALF_EXTENT_M',
    'TABLE_RGBA',
    'TABLE_TOP_Z',
    'CameraPose',
    'SceneSpec',
    'SimObject',
    'generate_scene',
    'look_at_pose',
    'object_dimensions',
    'silhouette_points',
    'visible_fraction_behind',
]

# Paints, RGBA 0..1: each one a prototype of its colour name that people would not argue about.
# Shading darkens the sides facing away from the light, so the bright colours are not saturated to
# 1.0 (the lit faces would clip) and black is not pure black (its shape would vanish in shadow).
# fmt: off
COLOUR_RGBA: dict[str, tuple[float, float, float, float]] = {
    'red':    (0.85, 0.08, 0.08, 1.0),
    'orange': (1.00, 0.50, 0.00, 1.0),
    'yellow': (0.95, 0.85, 0.10, 1.0),
    'green':  (0.10, 0.60, 0.15, 1.0),
    'blue':   (0.08, 0.20, 0.85, 1.0),
    'purple': (0.50, 0.12, 0.65, 1.0),
    'pink':   (1.00, 0.50, 0.70, 1.0),
    'brown':  (0.45, 0.25, 0.10, 1.0),
    'black':  (0.06, 0.06, 0.06, 1.0),
    'white':  (0.95, 0.95, 0.95, 1.0),
    'gray':   (0.50, 0.50, 0.50, 1.0),
}
# fmt: on

# The table: a muted teal. Its hue (between green and blue, saturation ~0.35) is far from the
# neutral prototypes (white, gray, black) and from brown, orange and the warm colours, and far
# less saturated than the green and blue paints; its value (0.52) sits between gray's lit and
# shaded faces without sharing their chromaticity. The table is large enough to fill every
# generated camera view, so no floor or sky appears behind it.
TABLE_RGBA: tuple[float, float, float, float] = (0.34, 0.52, 0.50, 1.0)
TABLE_TOP_Z = 0.0
TABLE_HALF_EXTENT_M = 3.0

SHAPES: tuple[str, ...] = ('cube', 'sphere', 'cylinder', 'cone')
SIZES: tuple[str, ...] = ('small', 'large')
# The characteristic width of an object (cube edge, sphere / cylinder / cone base diameter).
# A factor of two apart, so 'small' and 'large' stay clear under perspective on the table.
SIZE_M: dict[str, float] = {'small': 0.035, 'large': 0.07}
# Height / width of the elongated shapes at their default height.
_HEIGHT_RATIO = {'cube': 1.0, 'sphere': 1.0, 'cylinder': 1.25, 'cone': 1.3}


@dataclass(frozen=True)
class SimObject:
    """One coloured primitive on the table.

    `position` is the world position of its centre (metres; resting objects have
    z = height / 2). `height` overrides the shape's default height (tall occluders); spheres
    ignore it. `path` moves the object over time (see `SimWorld.set_time`).
    """

    name: str
    shape: str
    colour: str
    size: str
    position: tuple[float, float, float]
    yaw: float = 0.0
    path: ObjectPath | None = None
    height: float | None = None
    occluder: bool = False
    scale: float = 1.0
    paint: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise SimError(f'unknown shape {self.shape!r}; expected one of {SHAPES}')
        if self.colour not in COLOUR_RGBA:
            raise SimError(f'unknown colour {self.colour!r}; expected one of {COLOURS}')
        if self.size not in SIZE_M:
            raise SimError(f'unknown size {self.size!r}; expected one of {SIZES}')
        if self.height is not None and not (0.0 < self.height < 1.0):
            raise SimError(f'height must be in (0, 1) metres, got {self.height}')
        if not 0.5 <= self.scale <= 2.0:
            raise SimError(f'scale must be within 0.5..2, got {self.scale}')
        if self.paint is not None and not all(0.0 <= v <= 1.0 for v in self.paint):
            raise SimError(f'paint must be RGBA within 0..1, got {self.paint}')

    @property
    def dimensions(self) -> tuple[float, float]:
        """(width, height) in metres."""
        return object_dimensions(self.shape, self.size, self.height, self.scale)

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        """The paint it is rendered in: its own, or its colour's prototype."""
        return self.paint if self.paint is not None else COLOUR_RGBA[self.colour]

    def pose_at(self, t: float) -> tuple[tuple[float, float, float], float]:
        """(position, yaw) at time t, following the path when there is one."""
        if self.path is None:
            return self.position, self.yaw
        yaw = self.path.yaw_at(t)
        return self.path.position_at(t), self.yaw if yaw is None else self.yaw + yaw

    def to_dict(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'shape': self.shape,
            'colour': self.colour,
            'size': self.size,
            'position': list(self.position),
            'yaw': self.yaw,
            'height': self.height,
            'occluder': self.occluder,
            'scale': self.scale,
            'paint': None if self.paint is None else list(self.paint),
            'path': None if self.path is None else self.path.to_dict(),
        }


def object_dimensions(
    shape: str, size: str, height: float | None = None, scale: float = 1.0
) -> tuple[float, float]:
    """(width, height) in metres of a shape of a size class, times `scale`; `height`
    overrides the height."""
    width = SIZE_M[size] * scale
    if shape == 'sphere':
        return width, width
    return width, height if height is not None else width * _HEIGHT_RATIO[shape]


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera looking from `eye` at `target` (world, metres).

    `fov_deg` is the vertical field of view, as in pybullet.computeProjectionMatrixFOV; pixels
    are square, so fx = fy = (height / 2) / tan(fov / 2) and the principal point is the image
    centre. The optical frame is x right, y down, z forward (REP 103 `_optical_frame`).
    """

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_deg: float = 50.0
    width: int = 640
    height: int = 480
    near: float = 0.05
    far: float = 8.0

    def __post_init__(self) -> None:
        if not (self.width > 0 and self.height > 0):
            raise SimError(f'image size must be positive, got {self.width}x{self.height}')
        if not (0.0 < self.fov_deg < 170.0):
            raise SimError(f'fov_deg must be in (0, 170), got {self.fov_deg}')
        if not (0.0 < self.near < self.far):
            raise SimError(f'need 0 < near < far, got near={self.near} far={self.far}')
        forward = np.subtract(self.target, self.eye)
        if np.linalg.norm(np.cross(forward, self.up)) < 1e-9:
            raise SimError('the camera looks along its up vector')

    def with_resolution(self, width: int, height: int) -> CameraPose:
        return replace(self, width=width, height=height)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        focal = (self.height / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)
        return CameraIntrinsics(
            fx=focal, fy=focal, cx=self.width / 2.0, cy=self.height / 2.0,
            width=self.width, height=self.height,
        )  # fmt: skip

    def rotation(self) -> npt.NDArray[np.float64]:
        """3x3 matrix whose rows are the optical axes (x right, y down, z forward) in world."""
        forward = np.subtract(self.target, self.eye).astype(np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        return np.stack([right, down, forward])

    def to_camera(self, points_world: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """World points (N x 3 or 3) -> camera optical frame, metres."""
        points = np.asarray(points_world, dtype=np.float64)
        return (points - np.asarray(self.eye, dtype=np.float64)) @ self.rotation().T

    def project(self, points_world: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """World points (N x 3) -> pixel (u, v), N x 2; points behind the camera give NaN."""
        cam = np.atleast_2d(self.to_camera(points_world))
        k = self.intrinsics
        z = np.where(cam[:, 2] > 1e-9, cam[:, 2], np.nan)
        return np.stack([k.cx + k.fx * cam[:, 0] / z, k.cy + k.fy * cam[:, 1] / z], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            'eye': list(self.eye), 'target': list(self.target), 'up': list(self.up),
            'fov_deg': self.fov_deg, 'width': self.width, 'height': self.height,
            'near': self.near, 'far': self.far,
        }  # fmt: skip


def look_at_pose(
    *,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    distance: float = 0.85,
    elevation_deg: float = 50.0,
    azimuth_deg: float = 0.0,
    fov_deg: float = 50.0,
    width: int = 640,
    height: int = 480,
) -> CameraPose:
    """A camera on a sphere around `target`; azimuth 0 looks along +y (from the -y side)."""
    elevation = math.radians(elevation_deg)
    azimuth = math.radians(azimuth_deg)
    horizontal = distance * math.cos(elevation)
    eye = (
        target[0] + horizontal * math.sin(azimuth),
        target[1] - horizontal * math.cos(azimuth),
        target[2] + distance * math.sin(elevation),
    )
    return CameraPose(eye=eye, target=target, fov_deg=fov_deg, width=width, height=height)


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render a scene: objects, camera, light. Plain data, seeded.

    `light_direction` points from the scene towards the light (pybullet's lightDirection);
    `light_colour` tints the direct light (not the ambient light), as pybullet's lightColor.
    `table_extent` is (x_min, x_max, y_min, y_max) of the table top in metres, None for a
    table filling every view; `floor_rgba` is the floor 0.75 m below (None: no floor).
    `table_texture` is one of `look.TEXTURES`, its brightness ripple `texture_contrast`.
    `preset` names the look the scene was generated with (`look.PRESETS`). `duration_s` is
    the length of a moving sequence (0 for a still scene). `target` names the object a
    tracking sequence is about (None for still scenes).
    """

    seed: int
    objects: tuple[SimObject, ...]
    camera: CameraPose
    light_direction: tuple[float, float, float] = (0.5, -0.8, 1.5)
    light_ambient: float = 0.6
    light_diffuse: float = 0.35
    light_specular: float = 0.05
    shadow: bool = True
    duration_s: float = 0.0
    table_rgba: tuple[float, float, float, float] = TABLE_RGBA
    light_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    table_texture: str = 'plain'
    texture_contrast: float = 0.0
    table_extent: tuple[float, float, float, float] | None = None
    floor_rgba: tuple[float, float, float, float] | None = None
    preset: str = 'fixed'
    kind: str = 'still'
    target: str | None = None
    notes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise SimError(f'object names must be unique, got {names}')
        if self.target is not None and self.target not in names:
            raise SimError(f'target {self.target!r} is not one of the objects {names}')

    def object(self, name: str) -> SimObject:
        for candidate in self.objects:
            if candidate.name == name:
                return candidate
        raise SimError(f'no object named {name!r} in the scene')

    def with_resolution(self, width: int, height: int) -> SceneSpec:
        return replace(self, camera=self.camera.with_resolution(width, height))

    def to_dict(self) -> dict[str, Any]:
        return {
            'seed': self.seed,
            'kind': self.kind,
            'objects': [o.to_dict() for o in self.objects],
            'camera': self.camera.to_dict(),
            'light_direction': list(self.light_direction),
            # The shading weights too, so that a saved scene renders to the same pixels.
            'light_ambient': self.light_ambient,
            'light_diffuse': self.light_diffuse,
            'light_specular': self.light_specular,
            'shadow': self.shadow,
            'light_colour': list(self.light_colour),
            'table_rgba': list(self.table_rgba),
            'table_texture': self.table_texture,
            'texture_contrast': self.texture_contrast,
            'table_extent': None if self.table_extent is None else list(self.table_extent),
            'floor_rgba': None if self.floor_rgba is None else list(self.floor_rgba),
            'preset': self.preset,
            'duration_s': self.duration_s,
            'target': self.target,
        }


def silhouette_points(
    shape: str,
    size: str,
    position: tuple[float, float, float],
    yaw: float = 0.0,
    height: float | None = None,
    scale: float = 1.0,
) -> npt.NDArray[np.float64]:
    """World points whose convex hull is the rendered object (every shape here is convex).

    These are the vertices of the very mesh `SimWorld` renders, so projecting them and taking
    the hull gives the silhouette the object has when nothing hides it; that is how
    `ObjectTruth.visible_fraction` is computed without a second render.
    """
    width, tall = object_dimensions(shape, size, height, scale)
    mesh = shape_mesh(shape, width, tall)
    local = box_corners(width, tall) if mesh is None else mesh[0]
    c, s = math.cos(yaw), math.sin(yaw)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    world: npt.NDArray[np.float64] = local @ rotation.T + np.asarray(position, dtype=np.float64)
    return world


# -- Scene generation ---------------------------------------------------------------------------

# Where objects may stand (world x, y), metres: a patch of the table the cameras below always see.
_AREA_X = (-0.24, 0.24)
_AREA_Y = (-0.16, 0.18)
# Gap kept between the footprints of two objects, metres.
_CLEARANCE = 0.025
# Camera pose ranges (degrees, metres), chosen so the placement area stays inside the view.
_ELEVATION_DEG = (38.0, 68.0)
_AZIMUTH_DEG = (-35.0, 35.0)
_DISTANCE_M = (0.55, 0.75)
_FOV_DEG = (48.0, 56.0)
# Tall occluders: a large block or can this tall hides small objects behind it.
_OCCLUDER_HEIGHT_M = (0.13, 0.17)
# The visible share of the hidden object the occluder placement aims at.
_OCCLUDED_TARGET = (0.35, 0.75)


def _random_object_kind(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SIZES)


def _distractor_of(kind: tuple[str, str, str], rng: random.Random) -> tuple[str, str, str]:
    """A same-class distractor: same shape other colour, same colour other shape, or same
    shape and colour in the other size."""
    shape, colour, size = kind
    variant = rng.randrange(3)
    if variant == 0:
        return shape, rng.choice([c for c in COLOURS if c != colour]), rng.choice(SIZES)
    if variant == 1:
        return rng.choice([s for s in SHAPES if s != shape]), colour, rng.choice(SIZES)
    return shape, colour, 'large' if size == 'small' else 'small'


def _footprint_radius(shape: str, size: str, scale: float = 1.0) -> float:
    # Half the diagonal for a cube (it may be turned), the radius for round shapes.
    width = SIZE_M[size] * scale
    return width / 2.0 * (math.sqrt(2.0) if shape == 'cube' else 1.0)


def _place(
    rng: random.Random,
    radius: float,
    placed: list[tuple[float, float, float]],
    *,
    area_x: tuple[float, float] = _AREA_X,
    area_y: tuple[float, float] = _AREA_Y,
    attempts: int = 200,
) -> tuple[float, float] | None:
    """A free (x, y) for a footprint of `radius`, or None when the table patch is full."""
    for _ in range(attempts):
        x = rng.uniform(area_x[0] + radius, area_x[1] - radius)
        y = rng.uniform(area_y[0] + radius, area_y[1] - radius)
        if all(math.hypot(x - px, y - py) >= radius + pr + _CLEARANCE for px, py, pr in placed):
            return x, y
    return None


def random_camera(rng: random.Random, *, width: int = 640, height: int = 480) -> CameraPose:
    """A camera pose drawn from the documented ranges, looking at the placement area."""
    target = (rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.04), 0.0)
    return look_at_pose(
        target=target,
        distance=rng.uniform(*_DISTANCE_M),
        elevation_deg=rng.uniform(*_ELEVATION_DEG),
        azimuth_deg=rng.uniform(*_AZIMUTH_DEG),
        fov_deg=rng.uniform(*_FOV_DEG),
        width=width,
        height=height,
    )


def random_light(rng: random.Random) -> dict[str, Any]:
    """Light direction (from above, any side) and shading coefficients."""
    azimuth = rng.uniform(0.0, 2 * math.pi)
    elevation = rng.uniform(math.radians(40.0), math.radians(75.0))
    direction = (
        math.cos(elevation) * math.cos(azimuth),
        math.cos(elevation) * math.sin(azimuth),
        math.sin(elevation),
    )
    return {
        'light_direction': tuple(round(v, 4) for v in direction),
        'light_ambient': rng.uniform(0.5, 0.65),
        'light_diffuse': rng.uniform(0.3, 0.45),
        'light_specular': rng.uniform(0.0, 0.08),
    }


def _hull(camera: CameraPose, obj: SimObject) -> npt.NDArray[np.float32]:
    """The object's silhouette in the image: convex hull of its projected mesh vertices."""
    points = silhouette_points(obj.shape, obj.size, obj.position, obj.yaw, obj.height, obj.scale)
    hull = cv2.convexHull(camera.project(points).astype(np.float32))
    return np.asarray(hull, dtype=np.float32)


def visible_fraction_behind(camera: CameraPose, hidden: SimObject, occluder: SimObject) -> float:
    """The share of `hidden`'s silhouette that `occluder` (nearer the camera) leaves in view."""
    target = _hull(camera, hidden)
    area = float(cv2.contourArea(target))
    if area <= 0:
        return 0.0
    overlap, _ = cv2.intersectConvexConvex(target, _hull(camera, occluder))
    return max(0.0, 1.0 - float(overlap) / area)


def _occluder_for(
    camera: CameraPose, hidden: SimObject, rng: random.Random, *, name: str, colour: str
) -> SimObject:
    """A tall block or can between the camera and `hidden`, shifted sideways until about
    `_OCCLUDED_TARGET` of the hidden object stays in view (the best of a few tries)."""
    shape = rng.choice(('cube', 'cylinder'))
    height = rng.uniform(*_OCCLUDER_HEIGHT_M)
    hidden_radius = _footprint_radius(hidden.shape, hidden.size)
    radius = _footprint_radius(shape, 'large')
    toward = np.array([camera.eye[0] - hidden.position[0], camera.eye[1] - hidden.position[1]])
    toward /= np.linalg.norm(toward)
    side = np.array([-toward[1], toward[0]])
    distance = hidden_radius + radius + _CLEARANCE + rng.uniform(0.0, 0.03)
    yaw = rng.uniform(0, math.pi / 2)
    low, high = _OCCLUDED_TARGET
    best: tuple[float, SimObject] | None = None
    for _ in range(12):
        lateral = rng.uniform(0.0, 1.1) * rng.choice((-1.0, 1.0)) * (hidden_radius + radius)
        x, y = np.asarray(hidden.position[:2]) + toward * distance + side * lateral
        occluder = SimObject(
            f'{name}_{colour}_{shape}', shape, colour, 'large',
            (float(x), float(y), TABLE_TOP_Z + height / 2.0), yaw=yaw, height=height,
            occluder=True,
        )  # fmt: skip
        fraction = visible_fraction_behind(camera, hidden, occluder)
        miss = 0.0 if low <= fraction <= high else min(abs(fraction - low), abs(fraction - high))
        if best is None or miss < best[0]:
            best = (miss, occluder)
        if miss == 0.0:
            break
    assert best is not None
    return best[1]


def generate_scene(
    seed: int,
    *,
    n_objects: int | tuple[int, int] = (4, 8),
    occluder: bool | None = None,
    distractors: float = 0.6,
    width: int = 640,
    height: int = 480,
    preset: str = 'fixed',
) -> SceneSpec:
    """A random still tabletop scene, the same for the same arguments.

    `n_objects` is a count or an inclusive (min, max) range, occluders included. `occluder`:
    True always adds a tall block or can partly hiding a small object, False never, None in
    about a third of the scenes. `distractors` is the probability that each new object is a
    same-class distractor of an object already placed (same shape other colour, same colour other
    shape, or same shape and colour in the other size) rather than a random one. `preset`
    (`look.PRESETS`) decides the look: 'fixed' or 'randomised' (light, camera, table, floor,
    paints and sizes drawn from `look.RANGES`; the objects are those of 'fixed', slightly
    changed, at the same places unless the scene has an occluder, which is placed for its
    camera).
    """
    if preset not in PRESETS:
        raise LookError(f'unknown preset {preset!r}; expected one of {PRESETS}')
    rng = random.Random(f'grounding_agent.sim.scene/{seed}')
    look_rng = random.Random(f'grounding_agent.sim.scene/look/{seed}')
    low, high = (n_objects, n_objects) if isinstance(n_objects, int) else n_objects
    if not (1 <= low <= high <= 16):
        raise SimError(f'n_objects must be within 1..16, got {n_objects}')
    count = rng.randint(low, high)
    camera = random_camera(rng, width=width, height=height)
    light = random_light(rng)
    if preset == 'randomised':
        camera = look_at_pose(
            target=camera.target, width=width, height=height, **random_camera_values(look_rng)
        )
    with_occluder = rng.random() < 1 / 3 if occluder is None else occluder
    with_occluder = with_occluder and count >= 2

    kinds: list[tuple[str, str, str]] = []
    for _ in range(count - (1 if with_occluder else 0)):
        if kinds and rng.random() < distractors:
            kinds.append(_distractor_of(rng.choice(kinds), rng))
        else:
            kinds.append(_random_object_kind(rng))

    objects: list[SimObject] = []
    placed: list[tuple[float, float, float]] = []
    if with_occluder:
        # The hidden object first (small, so the occluder can cover a good part of it), set back
        # from the camera so the occluder has room in front of it.
        shape, colour, _ = kinds[0]
        kinds[0] = (shape, colour, 'small')
        radius = _footprint_radius(shape, 'small')
        spot = _place(rng, radius, placed, area_y=(0.0, _AREA_Y[1]))
        if spot is not None:
            _, tall = object_dimensions(shape, 'small')
            hidden = (spot[0], spot[1], TABLE_TOP_Z + tall / 2.0)
            objects.append(SimObject(f'o0_{colour}_{shape}', shape, colour, 'small', hidden,
                                     yaw=rng.uniform(0, math.pi / 2)))  # fmt: skip
            placed.append((spot[0], spot[1], radius))
            blocker = _occluder_for(
                camera, objects[-1], rng, name='o1',
                colour=rng.choice([c for c in COLOURS if c != colour]),
            )  # fmt: skip
            objects.append(blocker)
            placed.append((*blocker.position[:2], _footprint_radius(blocker.shape, 'large')))
        kinds = kinds[1:]

    for shape, colour, size in kinds:
        radius = _footprint_radius(shape, size)
        spot = _place(rng, radius, placed)
        if spot is None:
            continue  # the patch is full: fewer objects rather than overlapping ones
        _, tall = object_dimensions(shape, size)
        index = len(objects)
        objects.append(
            SimObject(
                f'o{index}_{colour}_{shape}', shape, colour, size,
                (spot[0], spot[1], TABLE_TOP_Z + tall / 2.0), yaw=rng.uniform(0, math.pi / 2),
            )
        )  # fmt: skip
        placed.append((spot[0], spot[1], radius))
    if preset == 'fixed':
        return SceneSpec(seed=seed, objects=tuple(objects), camera=camera, **light)
    objects = [_varied(o, look_rng) for o in objects]
    look = random_look(look_rng, [o.rgba for o in objects] + list(COLOUR_RGBA.values()))
    return SceneSpec(seed=seed, objects=tuple(objects), camera=camera, preset=preset, **look)


def _varied(obj: SimObject, rng: random.Random) -> SimObject:
    """The object with its size and paint slightly changed (`look.RANGES`), still resting on
    the table. Occluders keep their size: their height was chosen to hide a given share."""
    scale = 1.0 if obj.occluder else RANGES['object_scale'].draw(rng)
    _, tall = object_dimensions(obj.shape, obj.size, obj.height, scale)
    x, y, _ = obj.position
    return replace(obj, scale=scale, paint=jittered_paint(obj.rgba, rng),
                   position=(x, y, TABLE_TOP_Z + tall / 2.0))  # fmt: skip
