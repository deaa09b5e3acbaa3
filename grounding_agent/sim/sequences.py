"""Moving tabletop sequences for the tracking evaluation: crossings, occlusion, exit and re-entry.

Each kind stresses one thing a tracker gets wrong: two same-shape objects of different colours
crossing (identity switches), an object passing behind a tall occluder (coasting through a gap),
an object leaving the view and coming back (re-identification), and all of them at once. The
camera looks straight along +y (azimuth 0), so image left/right is world x and the view's side
edges at a given depth are known in closed form. Render a sequence with `SimWorld.set_time(t)`
for t in [0, duration_s]; every render's `ObjectTruth` has box None and visible_fraction 0 while
an object is out of view or fully hidden.
"""

from __future__ import annotations

import random
from dataclasses import replace

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
from grounding_agent.sim.paths import CircularPath, LinearPath, WaypointPath
from grounding_agent.sim.scene import (
    COLOUR_RGBA,
    SHAPES,
    TABLE_TOP_Z,
    CameraPose,
    SceneSpec,
    SimObject,
    look_at_pose,
    object_dimensions,
    random_light,
)

__all__ = ['SEQUENCE_KINDS', 'make_tracking_sequence', 'view_edge_x']

SEQUENCE_KINDS: tuple[str, ...] = ('crossing', 'occlusion', 'exit_reentry', 'mixed')


def view_edge_x(camera: CameraPose, y: float, z: float, *, side: int) -> float:
    """World x where a point at (y, z) leaves the image on the right (side=1) or left (-1).

    Exact for cameras with azimuth 0 (their optical x axis is world x), as in every sequence.
    """
    point = camera.to_camera((camera.eye[0], y, z))
    k = camera.intrinsics
    edge_u = k.width if side > 0 else 0.0
    return float(camera.eye[0] + (edge_u - k.cx) / k.fx * point[2])


def _resting(
    shape: str, size: str, x: float, y: float, height: float | None = None, scale: float = 1.0
) -> tuple[float, float, float]:
    return x, y, TABLE_TOP_Z + object_dimensions(shape, size, height, scale)[1] / 2.0


def _camera(
    rng: random.Random, width: int, height: int, look_rng: random.Random | None = None
) -> CameraPose:
    distance, elevation = rng.uniform(0.6, 0.7), rng.uniform(40.0, 50.0)
    fov = 50.0
    if look_rng is not None:
        # Randomised: pitch, distance and field of view from the look's ranges; the azimuth
        # stays 0 (the exits are computed in closed form for it).
        values = random_camera_values(look_rng)
        distance, elevation, fov = values['distance'], values['elevation_deg'], values['fov_deg']
    return look_at_pose(
        target=(0.0, 0.02, 0.0),
        distance=distance,
        elevation_deg=elevation,
        azimuth_deg=0.0,
        fov_deg=fov,
        width=width,
        height=height,
    )


def _static(
    rng: random.Random, count: int, spots: list[tuple[float, float]], taken: set[str]
) -> list[SimObject]:
    """Still distractors at the given spots, each of a kind not used yet."""
    objects = []
    for index, (x, y) in enumerate(spots[:count]):
        shape, colour = _new_kind(rng, taken)
        size = rng.choice(('small', 'large'))
        objects.append(
            SimObject(f'still{index}_{colour}_{shape}', shape, colour, size,
                      _resting(shape, size, x, y), yaw=rng.uniform(0.0, 1.5))
        )  # fmt: skip
    return objects


def _crossing(
    rng: random.Random, camera: CameraPose, t0: float, duration: float
) -> list[SimObject]:
    """Two same-shape, same-size objects of different colours swapping sides in front of each
    other; the nearer one hides the farther one for a moment in the middle."""
    shape = rng.choice(SHAPES)
    first, second = rng.sample(COLOURS, 2)
    size = 'large'
    span = rng.uniform(0.12, 0.15)
    speed = 2 * span / duration
    y_near, y_far = -0.02, 0.06
    return [
        SimObject(f'cross_a_{first}_{shape}', shape, first, size,
                  _resting(shape, size, -span, y_near),
                  path=LinearPath(_resting(shape, size, -span, y_near), (speed, 0.0, 0.0),
                                  t_start=t0, t_end=t0 + duration)),
        SimObject(f'cross_b_{second}_{shape}', shape, second, size,
                  _resting(shape, size, span, y_far),
                  path=LinearPath(_resting(shape, size, span, y_far), (-speed, 0.0, 0.0),
                                  t_start=t0, t_end=t0 + duration)),
    ]  # fmt: skip


def _occlusion(rng: random.Random, t0: float, hidden_s: float) -> list[SimObject]:
    """A small object sliding behind a tall occluder; fully hidden for about `hidden_s`."""
    shape = rng.choice(SHAPES)
    colour, occ_colour = rng.sample(COLOURS, 2)
    occ_shape = rng.choice(('cube', 'cylinder'))
    occ_height = 0.16
    occluder = SimObject(
        f'occluder_{occ_colour}_{occ_shape}', occ_shape, occ_colour, 'large',
        _resting(occ_shape, 'large', 0.0, -0.06, occ_height), height=occ_height, occluder=True,
    )  # fmt: skip
    # Seen from the camera the occluder covers a band ~1.3x its width at the mover's depth;
    # the mover (3.5 cm) is fully hidden over that band minus its own width.
    hidden_band = 1.3 * 0.07 - 0.035
    speed = hidden_band / hidden_s
    start_x = -0.12
    mover = SimObject(
        f'mover_{colour}_{shape}', shape, colour, 'small', _resting(shape, 'small', start_x, 0.08),
        path=LinearPath(_resting(shape, 'small', start_x, 0.08), (speed, 0.0, 0.0), t_start=t0),
    )  # fmt: skip
    return [occluder, mover]


def _new_kind(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    """A (shape, colour) no object of the sequence has yet, so the target stays nameable."""
    while True:
        shape, colour = rng.choice(SHAPES), rng.choice(COLOURS)
        if f'{colour}_{shape}' not in taken:
            taken.add(f'{colour}_{shape}')
            return shape, colour


def _exit_reentry(
    rng: random.Random,
    camera: CameraPose,
    t0: float,
    away_s: float,
    *,
    y: float = 0.0,
    taken: set[str],
) -> tuple[SimObject, float]:
    """An object that drives out of the right edge of the view, stays out, and comes back.

    Returns the object and the time it is back at its start.
    """
    shape, colour = _new_kind(rng, taken)
    size = 'large'
    z = _resting(shape, size, 0.0, y)[2]
    start_x = rng.uniform(0.0, 0.06)
    # Out = the silhouette is wholly past the edge: edge + the object's half width + a margin.
    out_x = view_edge_x(camera, y, z, side=1) + 0.08
    speed = 0.25
    travel = (out_x - start_x) / speed
    times = (t0, t0 + travel, t0 + travel + away_s, t0 + 2 * travel + away_s)
    path = WaypointPath((
        (times[0], start_x, y, z), (times[1], out_x, y, z),
        (times[2], out_x, y, z), (times[3], start_x, y, z),
    ))  # fmt: skip
    mover = SimObject(f'leaver_{colour}_{shape}', shape, colour, size, (start_x, y, z), path=path)
    return mover, times[3]


def make_tracking_sequence(
    kind: str, seed: int, *, width: int = 320, height: int = 240, preset: str = 'fixed'
) -> SceneSpec:
    """A seeded moving scene of one of `SEQUENCE_KINDS`, a few seconds long (`duration_s`).

    Objects move kinematically along their `path`; the moving objects' names start with
    'cross_', 'mover_' or 'leaver_', still distractors with 'still', the occluder with
    'occluder_'. `target` names the object the sequence is about: the first crossing object,
    the mover passing behind the occluder, the object leaving the view (mixed: the leaver, whose
    colour and shape are unique). The default 320x240 keeps a 30-frame-per-second sequence
    cheap to render. `preset` (`look.PRESETS`): 'randomised' draws the light, table, floor,
    camera pitch, distance and field of view, every paint and the still objects' sizes from
    `look.RANGES` (moving objects keep their size: their paths rest on the table).
    """
    if kind not in SEQUENCE_KINDS:
        raise SimError(f'unknown sequence kind {kind!r}; expected one of {SEQUENCE_KINDS}')
    if preset not in PRESETS:
        raise LookError(f'unknown preset {preset!r}; expected one of {PRESETS}')
    rng = random.Random(f'grounding_agent.sim.sequences/{kind}/{seed}')
    look_rng = (
        random.Random(f'grounding_agent.sim.sequences/look/{kind}/{seed}')
        if preset == 'randomised'
        else None
    )
    camera = _camera(rng, width, height, look_rng)
    light = random_light(rng)
    objects: list[SimObject] = []
    target_index = 0
    if kind == 'crossing':
        duration = 4.0
        objects += _crossing(rng, camera, 0.5, 3.0)
        spots = [(-0.2, 0.16), (0.2, 0.16), (0.0, 0.2), (-0.02, -0.15)]
    elif kind == 'occlusion':
        hidden_s = rng.uniform(1.0, 1.5)
        objects += _occlusion(rng, 0.3, hidden_s)
        target_index = 1
        # The mover's trip: from x = -0.12 past the occluder to x = +0.12.
        speed = objects[1].path.velocity[0]  # type: ignore[union-attr]
        duration = round(0.3 + 0.24 / speed, 2)
        spots = [(-0.2, -0.12), (0.2, -0.12), (0.0, 0.22)]
    elif kind == 'exit_reentry':
        mover, back = _exit_reentry(rng, camera, 0.5, rng.uniform(0.8, 1.5), taken=set())
        objects.append(mover)
        duration = round(back + 0.5, 2)
        spots = [(-0.18, 0.0), (-0.08, 0.15), (-0.1, -0.12)]
    else:
        objects += _crossing(rng, camera, 0.3, 3.0)
        taken = {f'{o.colour}_{o.shape}' for o in objects}
        mover, back = _exit_reentry(rng, camera, 3.0, 1.0, y=0.17, taken=taken)
        objects.append(mover)
        target_index = 2
        shape, colour = _new_kind(rng, taken)
        centre = _resting(shape, 'small', -0.15, -0.15)
        objects.append(
            SimObject(f'mover_{colour}_{shape}', shape, colour, 'small', centre,
                      path=CircularPath(centre, 0.05, period_s=rng.choice((-4.0, 4.0))))
        )  # fmt: skip
        duration = round(back + 0.5, 2)
        spots = [(0.2, -0.13), (-0.22, 0.14)]
    target = objects[target_index].name
    taken = {f'{o.colour}_{o.shape}' for o in objects}
    objects += _static(rng, rng.randint(1, len(spots)), spots, taken)
    if look_rng is not None:
        objects = [_varied(o, look_rng) for o in objects]
        light = random_look(look_rng, [o.rgba for o in objects] + list(COLOUR_RGBA.values()))
    return SceneSpec(
        seed=seed, objects=tuple(objects), camera=camera, duration_s=duration, kind=kind,
        target=target, preset=preset, **light,
    )  # fmt: skip


def _varied(obj: SimObject, rng: random.Random) -> SimObject:
    """A slightly other paint for every object, a slightly other size for still ones."""
    paint = jittered_paint(obj.rgba, rng)
    if obj.path is not None or obj.occluder:
        return replace(obj, paint=paint)
    scale = RANGES['object_scale'].draw(rng)
    x, y, _ = obj.position
    return replace(obj, paint=paint, scale=scale,
                   position=_resting(obj.shape, obj.size, x, y, scale=scale))  # fmt: skip
