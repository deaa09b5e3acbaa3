"""The weight-free `color_shape` backend on flat swatches and on shaded PyBullet renders."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from grounding_agent.backends.base import BackendConfig, create_backend
from grounding_agent.backends.color_shape import (
    SHAPE_CLASSES,
    ColorShapeBackend,
    PhraseRequest,
    parse_phrase,
    segment_objects,
)
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.core.types import AttributeKind, Box
from grounding_agent.core.vocabulary import COLOURS
from grounding_agent.sim.meshes import shape_mesh

# Our own test palette (RGB 0..1), not the simulator's: the backend must name colours as people
# do, whatever exact paint a scene uses.
PAINT = {
    'red': (0.85, 0.1, 0.1), 'orange': (1.0, 0.5, 0.0), 'yellow': (0.95, 0.85, 0.1),
    'green': (0.1, 0.65, 0.2), 'blue': (0.1, 0.25, 0.85), 'purple': (0.5, 0.15, 0.65),
    'pink': (1.0, 0.55, 0.7), 'brown': (0.45, 0.25, 0.1), 'black': (0.08, 0.08, 0.08),
    'white': (0.95, 0.95, 0.95), 'gray': (0.5, 0.5, 0.5),
}  # fmt: skip
TABLE = (0.55, 0.45, 0.35)

# -- PyBullet scenes (DIRECT mode, TinyRenderer with lighting and shadows) -----------------------
# Built here rather than with the simulator's scene generator so that each test controls exactly
# what touches, what hides what and where the light comes from.

Placed = tuple[str, str, tuple[float, float], float]  # shape, colour, (x, y) on the table, size


def render(
    objects: Sequence[Placed],
    *,
    size: tuple[int, int] = (640, 480),
    eye: tuple[float, float, float] = (0.0, -0.75, 0.6),
    light: tuple[float, float, float] = (0.6, -0.8, 1.6),
) -> tuple[np.ndarray, list[np.ndarray]]:
    """An RGB image of `objects` on a table, and each object's exact visible mask."""
    import pybullet as pb

    client = pb.connect(pb.DIRECT)
    try:
        table = pb.createVisualShape(
            pb.GEOM_BOX, halfExtents=[0.8, 0.6, 0.02], rgbaColor=[*TABLE, 1],
            physicsClientId=client,
        )  # fmt: skip
        pb.createMultiBody(0, -1, table, [0, 0, -0.02], physicsClientId=client)
        bodies = []
        for shape, colour, (x, y), half in objects:
            rgba = [*PAINT[colour], 1.0]
            # The simulator's meshes (smooth sides, flat caps), in its proportions, so these
            # scenes look like the benchmark's; our own paints, sizes and positions.
            height = 2.0 * half * {'cylinder': 1.25, 'cone': 1.3}.get(shape, 1.0)
            mesh = shape_mesh(shape, 2.0 * half, height)
            if mesh is None:
                kind = {'shapeType': pb.GEOM_BOX, 'halfExtents': [half] * 3}
            else:
                vertices, indices, normals = (m.tolist() for m in mesh)
                kind = {
                    'shapeType': pb.GEOM_MESH, 'vertices': vertices, 'indices': indices,
                    'normals': normals,
                }  # fmt: skip
            z = height / 2.0
            visual = pb.createVisualShape(rgbaColor=rgba, physicsClientId=client, **kind)
            orientation = pb.getQuaternionFromEuler([0, 0, 0.4])
            bodies.append(
                pb.createMultiBody(0, -1, visual, [x, y, z], orientation, physicsClientId=client)
            )
        width, height = size
        view = pb.computeViewMatrix(eye, [0, 0.02, 0], [0, 0, 1])
        projection = pb.computeProjectionMatrixFOV(50, width / height, 0.05, 5)
        _, _, rgba_image, _, segmentation = pb.getCameraImage(
            width, height, view, projection, renderer=pb.ER_TINY_RENDERER,
            lightDirection=list(light), shadow=1, physicsClientId=client,
        )  # fmt: skip
    finally:
        pb.disconnect(client)
    image = np.asarray(rgba_image, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()
    segmentation = np.asarray(segmentation).reshape(height, width)
    return image, [segmentation == body for body in bodies]


def mask_box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def best_match(segments, truth: Box):
    return max(segments, key=lambda s: s.box.iou(truth), default=None)


GRID = [(-0.3 + 0.2 * (k % 4), -0.12 + 0.16 * (k // 4)) for k in range(len(COLOURS))]


@pytest.fixture(scope='module')
def shape_rows() -> dict[str, tuple[np.ndarray, list[np.ndarray], list]]:
    """One render per shape class with an object of every colour; rendered once."""
    rows = {}
    for shape in SHAPE_CLASSES:
        objects = [(shape, colour, GRID[k], 0.035) for k, colour in enumerate(COLOURS)]
        image, masks = render(objects)
        rows[shape] = (image, masks, segment_objects(image))
    return rows


@pytest.mark.parametrize('shape', SHAPE_CLASSES)
@pytest.mark.parametrize('colour', COLOURS)
def test_every_colour_and_shape_on_shaded_renders(shape_rows, colour: str, shape: str) -> None:
    _image, masks, segments = shape_rows[shape]
    truth = mask_box(masks[COLOURS.index(colour)])
    found = best_match(segments, truth)
    assert found is not None
    assert found.box.iou(truth) >= 0.7
    assert found.colour == colour, found.colours
    assert found.shape == shape, found.shapes


@pytest.mark.parametrize('shape', SHAPE_CLASSES)
def test_one_segment_per_object_and_no_shadows(shape_rows, shape: str) -> None:
    _image, masks, segments = shape_rows[shape]
    assert len(segments) == len(masks)


def test_touching_objects_of_different_colours_are_split() -> None:
    pairs = [
        ('cube', 'red', (-0.2, 0.0), 0.04), ('cube', 'blue', (-0.12, 0.0), 0.04),
        ('sphere', 'yellow', (0.1, 0.0), 0.04), ('cylinder', 'purple', (0.1, 0.075), 0.04),
    ]  # fmt: skip
    image, masks = render(pairs)
    segments = segment_objects(image)
    assert len(segments) == 4
    for (_shape, colour, _xy, _h), mask in zip(pairs, masks):
        found = best_match(segments, mask_box(mask))
        assert found.box.iou(mask_box(mask)) >= 0.7
        assert found.colour == colour


def test_same_colour_object_behind_another_is_split() -> None:
    """Two convex silhouettes crossing leave two notches; the cut between them separates them."""
    image, masks = render(
        [('cube', 'red', (0.0, 0.0), 0.04), ('sphere', 'red', (0.05, 0.09), 0.045)],
        eye=(0.0, -0.6, 0.35),
    )
    segments = segment_objects(image)
    assert len(segments) == 2
    assert best_match(segments, mask_box(masks[0])).shape == 'cube'
    assert all(best_match(segments, mask_box(m)).box.iou(mask_box(m)) >= 0.7 for m in masks)


def test_long_shadows_are_not_objects() -> None:
    objects = [('cube', 'green', (-0.1, 0.0), 0.05), ('cylinder', 'white', (0.15, 0.05), 0.05)]
    image, masks = render(objects, light=(1.0, 0.3, 0.35))  # low sun: long shadows
    segments = segment_objects(image)
    assert len(segments) == 2
    for mask in masks:
        assert best_match(segments, mask_box(mask)).box.iou(mask_box(mask)) >= 0.7


def test_empty_table_gives_no_detections() -> None:
    image, _ = render([])
    backend = ColorShapeBackend()
    assert segment_objects(image) == []
    assert backend.detect(image, ['object', 'red cube']) == []


# -- flat swatches ----------------------------------------------------------------------------


def _swatches(colours: Sequence[str]) -> tuple[np.ndarray, list[Box]]:
    image = np.zeros((120, 55 * len(colours), 3), dtype=np.uint8)  # <= 640 wide: not shrunk
    image[:] = np.array(TABLE) * 255
    boxes = []
    for k, colour in enumerate(colours):
        x = 55 * k + 12
        image[40:80, x : x + 30] = np.array(PAINT[colour]) * 255
        boxes.append(Box(x, 40, x + 30, 80))
    return image, boxes


@pytest.mark.parametrize('colour', COLOURS)
def test_flat_swatch_is_named_and_boxed_exactly(colour: str) -> None:
    image, (box,) = _swatches([colour])
    (segment,) = segment_objects(image)
    assert segment.colour == colour
    assert segment.colours[colour] > 0.6
    assert segment.box == box


def test_row_of_swatches_gives_one_segment_each() -> None:
    image, boxes = _swatches(COLOURS)
    segments = segment_objects(image)
    assert [s.box for s in segments] == boxes
    assert [s.colour for s in segments] == list(COLOURS)


# -- detect(): phrases, scores, attributes -----------------------------------------------------


@pytest.mark.parametrize(
    ('phrase', 'expected'),
    [
        ('red cube', PhraseRequest('red cube', True, 'cube', 'red')),
        ('small blue ball', PhraseRequest('small blue ball', True, 'sphere', 'blue', 'small')),
        ('grey blocks', PhraseRequest('grey blocks', True, 'cube', 'gray')),
        ('chipped red mug', PhraseRequest('chipped red mug', True, 'cylinder', 'red')),
        ('the green one', PhraseRequest('the green one', True, None, 'green')),
        ('objects', PhraseRequest('objects', True)),
        ('yellow', PhraseRequest('yellow', True, None, 'yellow')),
        ('laptop', PhraseRequest('laptop', False)),
        ('big red laptop', PhraseRequest('big red laptop', False, None, 'red', 'large')),
        ('violet pyramid', PhraseRequest('violet pyramid', True, 'cone', 'purple')),
    ],
)
def test_parse_phrase(phrase: str, expected: PhraseRequest) -> None:
    assert parse_phrase(phrase) == expected


@pytest.fixture(scope='module')
def mixed_scene() -> tuple[np.ndarray, list[np.ndarray]]:
    return render(
        [
            ('cube', 'red', (-0.2, 0.0), 0.04),
            ('sphere', 'blue', (0.0, 0.05), 0.04),
            ('cone', 'green', (0.2, 0.0), 0.04),
        ]
    )


def test_detect_scores_by_shape_noun_and_reports_every_attribute(mixed_scene) -> None:
    image, _masks = mixed_scene
    backend = ColorShapeBackend()
    segments = backend.segment(image)
    detections = backend.detect(image, ['blue cube', 'laptop', 'thing'])
    cubes = [d for d in detections if d.phrase == 'blue cube']
    things = [d for d in detections if d.phrase == 'thing']
    assert not [d for d in detections if d.phrase == 'laptop']
    assert len(things) == len(segments) == 3
    assert all(d.score == 1.0 for d in things)
    by_box = {s.box: s for s in segments}
    for detection in cubes:
        assert detection.score == by_box[detection.box].shapes['cube']
    red_cube = max(cubes, key=lambda d: d.score)
    # Colour is reported, not multiplied in: the resolver can say "no blue cube; closest: red".
    assert red_cube.label == 'red cube'
    assert red_cube.attributes[AttributeKind.COLOUR]['red'] > 0.8
    assert red_cube.attributes[AttributeKind.COLOUR]['blue'] < 0.1
    for detection in detections:
        judged = detection.attributes
        assert set(judged[AttributeKind.COLOUR]) == set(COLOURS)
        assert set(judged[AttributeKind.SHAPE]) == set(SHAPE_CLASSES)
        assert set(judged[AttributeKind.SIZE]) == {'small', 'large'}
        assert all(0.0 <= v <= 1.0 for words in judged.values() for v in words.values())
        assert sum(judged[AttributeKind.COLOUR].values()) == pytest.approx(1.0, abs=1e-5)
        assert detection.embedding is not None
        assert np.linalg.norm(detection.embedding) == pytest.approx(1.0, abs=1e-5)


def test_box_threshold_drops_poor_shape_matches(mixed_scene) -> None:
    image, _masks = mixed_scene
    strict = ColorShapeBackend(BackendConfig(name='color_shape', box_threshold=0.5))
    spheres = strict.detect(image, ['sphere'])
    assert [d.label for d in spheres] == ['blue sphere']


def test_boxes_are_in_input_pixels_when_the_image_is_shrunk(mixed_scene) -> None:
    image, masks = mixed_scene
    large = cv2.resize(image, (1280, 960), interpolation=cv2.INTER_NEAREST)
    segments = segment_objects(large)
    for mask in masks:
        truth = mask_box(mask).scaled(2.0, 2.0)
        assert best_match(segments, truth).box.iou(truth) >= 0.7


def test_same_colours_give_similar_embeddings(mixed_scene) -> None:
    image, _masks = mixed_scene
    segments = {s.colour: s for s in segment_objects(image)}
    again = {s.colour: s for s in segment_objects(np.ascontiguousarray(image[:, ::-1]))}
    same = float(segments['red'].embedding @ again['red'].embedding)
    other = float(segments['red'].embedding @ segments['blue'].embedding)
    assert same > 0.95
    assert other < same - 0.2


@pytest.mark.parametrize(
    ('image', 'message'),
    [
        (np.zeros((32, 32, 3), dtype=np.float32), 'uint8'),
        (np.zeros((32, 32), dtype=np.uint8), 'HxWx3'),
        (np.zeros((32, 32, 4), dtype=np.uint8), 'HxWx3'),
        (np.zeros((0, 0, 3), dtype=np.uint8), 'empty'),
        ([[0, 0, 0]], 'numpy'),
    ],
)
def test_bad_images_raise_backend_errors(image, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        ColorShapeBackend().detect(image, ['red cube'])


def test_tiny_and_uniform_images_give_nothing() -> None:
    backend = ColorShapeBackend()
    assert backend.detect(np.zeros((1, 1, 3), dtype=np.uint8), ['object']) == []
    assert backend.detect(np.full((48, 64, 3), 90, dtype=np.uint8), ['object']) == []


def test_created_through_the_registry_with_options() -> None:
    backend = create_backend({'name': 'color_shape', 'options': {'shadow_ratio': 0.4}})
    assert isinstance(backend, ColorShapeBackend)
    assert backend.params.shadow_ratio == 0.4
    backend.warmup()


@pytest.mark.parametrize(
    'options', [{'no_such_option': 1}, {'shadow_ratio': 'dark'}, {'shadow_ratio': 1.5}]
)
def test_bad_options_raise_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        create_backend({'name': 'color_shape', 'options': options})


# -- the simulator's own scenes, against its exact ground truth ---------------------------------


@pytest.mark.slow
def test_simulated_scenes_match_ground_truth() -> None:
    """Seeded `grounding_agent.sim` scenes: every clearly visible object found, named, shaped."""
    from grounding_agent.sim.scene import generate_scene
    from grounding_agent.sim.world import render_scene

    checked, colour_errors, shape_errors, size_errors, missed, spurious = 0, [], [], [], [], []
    for seed in range(24):
        render = render_scene(generate_scene(seed))
        segments = segment_objects(render.rgb)
        boxes = [o.box for o in render.objects if o.box is not None]
        spurious += [(seed, s.label) for s in segments if max(s.box.iou(b) for b in boxes) < 0.3]
        for truth in render.objects:
            if truth.box is None or truth.visible_fraction < 0.5 or truth.pixel_count < 100:
                continue  # barely visible: the Limited category, scored by the benchmark
            checked += 1
            found = best_match(segments, truth.box)
            if found is None or found.box.iou(truth.box) < 0.5:
                missed.append((seed, truth.name))
                continue
            if found.colour != truth.colour:
                colour_errors.append((seed, truth.name, found.colour))
            if found.shape != truth.shape:
                shape_errors.append((seed, truth.name, found.shape))
            if not truth.occluder and max(found.sizes, key=found.sizes.__getitem__) != truth.size:
                size_errors.append((seed, truth.name, truth.size))
    assert checked > 100
    assert not spurious
    assert len(missed) <= 0.02 * checked, missed
    assert len(colour_errors) <= 0.02 * checked, colour_errors
    assert len(shape_errors) <= 0.06 * checked, shape_errors
    assert len(size_errors) <= 0.08 * checked, size_errors


@pytest.mark.slow
def test_randomised_scenes_match_ground_truth() -> None:
    """Scenes of the randomised look (coloured light, textured tables, a floor; calibration
    scene seeds): objects found and named, hardly any texture or shadow taken for one."""
    from grounding_agent.sim.scene import generate_scene
    from grounding_agent.sim.world import render_scene

    checked, colour_errors, missed, spurious = 0, [], [], []
    for seed in range(10_000_000, 10_000_012):
        render = render_scene(generate_scene(seed, preset='randomised'))
        segments = segment_objects(render.rgb)
        boxes = [o.box for o in render.objects if o.box is not None]
        spurious += [(seed, s.label) for s in segments if max(s.box.iou(b) for b in boxes) < 0.3]
        for truth in render.objects:
            if truth.box is None or truth.visible_fraction < 0.8 or truth.pixel_count < 150:
                continue
            checked += 1
            found = best_match(segments, truth.box)
            if found is None or found.box.iou(truth.box) < 0.5:
                missed.append((seed, truth.name))
            elif found.colour != truth.colour:
                colour_errors.append((seed, truth.name, found.colour))
    assert checked > 50
    assert len(spurious) <= 12 * 0.5, spurious  # the earlier background model: ~11 per scene
    assert len(missed) <= 0.06 * checked, missed
    assert len(colour_errors) <= 0.06 * checked, colour_errors


def test_a_shadow_under_a_warm_light_is_not_an_object() -> None:
    """The direct light of a 3000 K lamp tints the lit table; the shadow, lit by the ambient
    light only, has another chromaticity and must still count as table."""
    from grounding_agent.sim.look import colour_temperature_rgb
    from grounding_agent.sim.scene import SceneSpec, SimObject, look_at_pose
    from grounding_agent.sim.world import render_scene

    cube = SimObject('cube', 'cube', 'white', 'large', (0.0, 0.0, 0.035))
    spec = SceneSpec(
        seed=0, objects=(cube,), camera=look_at_pose(distance=0.6, elevation_deg=55.0),
        light_direction=(0.6, 0.3, 0.5), light_ambient=0.35, light_diffuse=0.65,
        light_colour=colour_temperature_rgb(3000.0), table_rgba=(0.55, 0.55, 0.55, 1.0),
    )  # fmt: skip
    render = render_scene(spec)
    truth = render.objects[0].box
    assert truth is not None
    segments = segment_objects(render.rgb)
    assert segments
    # Nothing outside the cube; its faces may come apart (lit beige, shaded grey: a known
    # limit of the colour split under strongly coloured light), but never its shadow.
    assert all(s.box.intersection_over_self(truth) > 0.9 for s in segments)
    assert best_match(segments, truth).box.iou(truth) >= 0.5
