"""`color_shape`: the weight-free default backend, for simulation and tests only.

It finds coloured primitives (cubes, spheres, cylinders, cones) on a plain table in rendered
scenes, such as the PyBullet scenes of `grounding_agent.sim`, so the whole agent runs on a fresh
machine without model weights. It knows nothing but colours and four coarse shapes: a phrase
whose noun it does not know ('laptop') gets no detections. Real robots use a model backend
(`owlv2`, `grounding_dino`, `qwen_vl`).

Pipeline, per image (docs/color_shape.md tells it in full):
1. Background model: the dominant colours of the image and of its border (table, floor, sky).
   A pixel is background when its chromaticity matches one of them while lit, or in a flat,
   one-level region next to the lit surface (a cast shadow, a side of the table).
2. Foreground = the rest, opened, split into connected components; a component holding two
   clearly different colours (k-means on chroma and log-brightness) is split, and a one-colour
   region with deep notches (two convex objects, one behind the other) is cut in two.
3. Colour: every pixel votes with a softmax over distances to the eleven colour prototypes in
   the saturation-hue plane, plus the object's lit-face brightness (relative to the light on
   the table around it), which tells brown from orange and black / gray / white apart.
4. Shape: a linear softmax (`SHAPE_MODEL`, fitted on simulator renders) over fifteen outline
   and shading measurements, among them a fit of the point the isophotes meet in (a cone's
   apex).

`detect` scores each segment by its agreement with the phrase's shape noun (1.0 without one)
and reports every colour, shape and size agreement in `Detection.attributes`, by kind, so the
resolver can answer "no blue cube; closest: green cube 0.41". Size ('small' / 'large', from the
apparent size) is only reported: the resolver compares the candidates' boxes.
`Detection.embedding` is a normalised hue / saturation / value histogram for re-identification.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.core.types import AttributeKind, Box, Detection
from grounding_agent.core.vocabulary import (
    ANY_OBJECT_NOUNS,
    COLOUR_NAMES,
    COLOURS,
    SHAPE_NOUNS,
    SIZE_SYNONYMS,
    singular_noun,
)

__all__ = [
    'SHAPE_CLASSES',
    'SHAPE_MEASUREMENTS',
    'SHAPE_MODEL',
    'ColorShapeBackend',
    'ColorShapeParams',
    'PhraseRequest',
    'Segment',
    'ShapeFeatures',
    'ShapeModel',
    'check_image',
    'colour_agreements',
    'fit_shape_model',
    'parse_phrase',
    'segment_objects',
    'shape_agreements',
    'size_agreements',
]

#: The coarse shape classes, in the order of `core.vocabulary.SHAPE_NOUNS` values.
SHAPE_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(SHAPE_NOUNS.values()))

_FILLER_WORDS = frozenset({'a', 'an', 'the', 'any', 'some', 'of', 'that', 'this', 'all'})


@dataclass(frozen=True)
class ColorShapeParams:
    """Every tunable of the backend; set through `BackendConfig.options` with the same names.

    Each comment says how the value was chosen. "Renders" are the simulator's scenes
    (`grounding_agent.sim`); "calibration scenes" are those of the calibration benchmark seeds
    (100-199, both presets; docs/simulation.md), never the reported test seeds. The shape
    model's own measurement settings are not here: they are part of `SHAPE_MODEL` and change
    only with a refit (`bench/bench_grounding.py --fit-shapes`).
    """

    # -- background surfaces -------------------------------------------------------------------
    #: A 16-level colour bin holding this share of the image is a surface (table, floor): a
    #: table seen from above fills far more, a large object close to the camera less.
    background_fraction: float = 0.2
    #: ... or this share of the image border (a surface seen past a near object); set on the
    #: fixed renders, where an object never holds a tenth of the border.
    border_fraction: float = 0.1
    #: L1 distance in rgb chromaticity within which a pixel is the surface: 2-3x the spread of
    #: a plain table's chromaticity under shading in the renders.
    chroma_tolerance: float = 0.035
    #: Lit surface: this fraction of the surface's brightness ... (widened to the measured
    #: texture of the surface, see `_lit_range`; set on plain tables of the fixed renders)
    lit_ratio: float = 0.94
    #: ... up to this fraction (specular highlights).
    highlight_ratio: float = 1.1
    #: The darkest shadow still taken for the surface: the deepest cast shadows of the renders
    #: (ambient share 0.35) are at ~0.35; lower loses dark objects of the table's colour.
    shadow_ratio: float = 0.3
    #: A shadow region must have this share of its pixels within one brightness level: cast
    #: shadows in the renders are >= 0.9, objects of the table's colour show faces (< 0.6).
    shadow_flatness: float = 0.75
    #: Median filter (pixels, odd; 1 = off) before the background decision, so a textured or
    #: noisy surface reads as one: 3 halved the spurious segments of 5 on the randomised
    #: calibration scenes and, unlike 5, keeps the corners the shape model reads.
    denoise_px: int = 3
    #: How far (L1 chromaticity) a shadow may drift from the lit surface's chromaticity when
    #: the direct light is coloured: covers 3000 K light over the calibration scenes' tables;
    #: 0.25 began to take object pixels for shadow (more spurious segments).
    shadow_chroma_reach: float = 0.12
    #: Pixels darker than this fraction of the lit surface's lowest lit level measure the
    #: shadow's chromaticity (so the surface's own texture does not).
    shadow_depth: float = 0.88
    #: A surface whose every channel is at least this bright is the renderer's clear colour
    #: (empty space): nothing casts shadows on it, and it is lit only at `clear_lit_ratio`.
    clear_colour_level: float = 245.0
    clear_lit_ratio: float = 0.97
    #: Width (pixels) of the ring of table around an object whose light is measured: wider
    #: than the anti-aliased edge, narrower than the gap between objects in the renders.
    light_ring_px: int = 6
    # -- segments ------------------------------------------------------------------------------
    #: Smaller segments are ignored (pixels; and relative to the image, whichever is larger):
    #: below the 40-pixel slivers of the benchmark's occluded targets.
    min_area_px: int = 12
    min_area_fraction: float = 0.00005
    #: Two colour clusters this far apart (saturation-hue plane and weighted log brightness)
    #: are two objects: set between the faces of one object (< 0.2) and neighbouring paints.
    split_distance: float = 0.3
    #: Weight of log brightness against chroma in that clustering: the lit and shaded faces of
    #: one object (at most a factor of two) stay within 0.17, black and grey come apart.
    lightness_weight: float = 0.25
    #: Colour clusters whose principal spread is below this are one colour (no split tried).
    min_colour_spread: float = 0.1
    #: A convexity defect deeper than max(this many pixels, `notch_depth_fraction` x sqrt(area))
    #: is where two convex silhouettes meet: the shallowest junctions of overlapping objects in
    #: the fixed renders, above the pixel steps of one object's outline.
    notch_depth_px: float = 2.5
    notch_depth_fraction: float = 0.08
    #: Longest side the image is shrunk to before segmentation (speed; 640 = the renders).
    max_side: int = 640
    # -- colour --------------------------------------------------------------------------------
    #: Softmax widths of the colour votes: distance to a prototype in the saturation-hue plane,
    #: and of the lit-face value; set so neighbouring prototypes (orange / yellow, gray / white)
    #: split their votes only for paints halfway between them.
    chroma_sigma: float = 0.22
    value_sigma: float = 0.16
    #: Pixels sampled for colour votes and clusters: more changed no vote on the renders.
    max_voters: int = 2000
    #: The deepest shade (light around the object / lit table) the lit-face correction believes.
    darkest_light: float = 0.5
    #: Largest per-channel correction of the white balance (1 = off). The illuminant estimate
    #: (lit / shadowed table) named no more colours right on 40 randomised calibration scenes
    #: (217 against 219 of 221 objects found; its estimate often missed the light's colour,
    #: docs/color_shape.md), so it is off by default.
    illuminant_limit: float = 1.0
    # -- size ----------------------------------------------------------------------------------
    #: 'small' / 'large' from sqrt(box area) / image height: the split at mid-height, how it
    #: grows lower in the image (nearer), and how sharp it is; fitted on the fixed renders'
    #: two size classes (97 % of fully visible objects named right).
    size_split: float = 0.104
    size_row_slope: float = 0.76
    size_steepness: float = 8.5

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ColorShapeParams:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f'unknown color_shape options {unknown}; known: {", ".join(sorted(known))}'
            )
        values: dict[str, Any] = {}
        for name, value in options.items():
            kind = type(getattr(cls(), name))
            try:
                values[name] = kind(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f'color_shape option {name}: {exc}') from exc
        params = cls(**values)
        if not 0.0 < params.shadow_ratio <= 1.0 or params.max_side < 32:
            raise ConfigError('color_shape: shadow_ratio must be in (0, 1], max_side >= 32')
        return params


_DEFAULT_PARAMS = ColorShapeParams()


@dataclass(frozen=True)
class PhraseRequest:
    """What a detector phrase asks of this backend.

    `known` is False when the phrase names a thing the backend cannot recognise ('laptop').
    `shape` is a shape class or None (any shape).
    """

    phrase: str
    known: bool
    shape: str | None = None
    colour: str | None = None
    size: str | None = None


def parse_phrase(phrase: str) -> PhraseRequest:
    """Read the shape noun, colour and size words of a detector phrase ('small red cube').

    The head noun decides: a shape noun (SHAPE_NOUNS) asks for that shape class, a generic noun
    (ANY_OBJECT_NOUNS: 'object', 'thing', 'one') or no noun at all ('red') asks for any object,
    and any other noun ('laptop', 'mug handle') is unknown to this backend.
    """
    words = [singular_noun(w) for w in re.findall(r"[a-z]+(?:'[a-z]+)?", phrase.lower())]
    colour = next(
        (COLOUR_NAMES.get(w, w) for w in words if COLOUR_NAMES.get(w, w) in COLOURS), None
    )
    size = next((SIZE_SYNONYMS[w] for w in words if w in SIZE_SYNONYMS), None)
    shapes = [SHAPE_NOUNS[w] for w in words if w in SHAPE_NOUNS]
    content = [
        w
        for w in words
        if w not in _FILLER_WORDS
        and w not in SIZE_SYNONYMS
        and COLOUR_NAMES.get(w, w) not in COLOURS
    ]
    if shapes:
        # The last shape noun is the head ('ball next to the box' is not passed as one phrase,
        # but 'cube block' would be).
        return PhraseRequest(phrase, True, shapes[-1], colour, size)
    head = content[-1] if content else None
    known = head is None or head in ANY_OBJECT_NOUNS
    return PhraseRequest(phrase, known, None, colour, size)


def check_image(image: Any) -> npt.NDArray[np.uint8]:
    """The image if it is HxWx3 uint8 with both sides >= 1, else BackendError saying why."""
    if not isinstance(image, np.ndarray):
        raise BackendError(f'color_shape: expected a numpy image, got {type(image).__name__}')
    if image.dtype != np.uint8:
        raise BackendError(f'color_shape: expected a uint8 RGB image, got dtype {image.dtype}')
    if image.ndim != 3 or image.shape[2] != 3:
        raise BackendError(f'color_shape: expected an HxWx3 RGB image, got shape {image.shape}')
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise BackendError(f'color_shape: the image is empty (shape {image.shape})')
    return image


# -- colour -------------------------------------------------------------------------------------

# Prototypes: (hue in degrees, saturation, lit-face value) of each basic colour term as it
# appears on the lit faces of a rendered object. Saturation and hue survive shading (it scales
# RGB); value only separates the terms that differ in lightness (brown / orange, the greys).
_COLOUR_PROTOTYPES: dict[str, tuple[float, float, float]] = {
    'red': (0.0, 0.9, 0.8),
    'orange': (28.0, 0.95, 0.92),
    'yellow': (55.0, 0.9, 0.88),
    'green': (125.0, 0.85, 0.6),
    'blue': (225.0, 0.85, 0.75),
    'purple': (285.0, 0.7, 0.55),
    'pink': (335.0, 0.45, 0.92),
    'brown': (25.0, 0.75, 0.42),
    'black': (0.0, 0.0, 0.08),
    'white': (0.0, 0.0, 0.82),
    'gray': (0.0, 0.0, 0.46),
}


def _prototype_table() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    chroma = np.array(
        [
            (s * math.cos(math.radians(h)), s * math.sin(math.radians(h)))
            for h, s, _v in (_COLOUR_PROTOTYPES[c] for c in COLOURS)
        ],
        dtype=np.float32,
    )
    value = np.array([_COLOUR_PROTOTYPES[c][2] for c in COLOURS], dtype=np.float32)
    return chroma, value


_PROTO_CHROMA, _PROTO_VALUE = _prototype_table()


def _hsv_features(
    pixels: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(x, y) = saturation * (cos hue, sin hue), and value, of N x 3 RGB pixels."""
    rgb = pixels.astype(np.float32) / 255.0
    high = rgb.max(axis=1)
    low = rgb.min(axis=1)
    spread = high - low
    saturation = np.where(high > 1e-6, spread / np.maximum(high, 1e-6), 0.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    # Hue in radians via the opponent axes (smooth, no sector arithmetic).
    hue = np.arctan2(math.sqrt(3.0) * (g - b), 2.0 * r - g - b)
    chroma_xy = np.stack([saturation * np.cos(hue), saturation * np.sin(hue)], axis=1)
    return chroma_xy.astype(np.float32), saturation.astype(np.float32), high.astype(np.float32)


def lit_value(value: npt.NDArray[np.float32]) -> float:
    """Brightness of the object's lit faces: a high percentile that skips specular spots."""
    return float(np.percentile(value, 95)) if value.size else 0.0


def colour_agreements(
    pixels: npt.NDArray[np.uint8], light: float = 1.0, params: ColorShapeParams | None = None
) -> dict[str, float]:
    """Graded agreement (0..1, summing to 1) of N x 3 RGB object pixels with each colour term.

    Each pixel votes with a softmax over its distances to the prototypes; the object's lit-face
    brightness stands in for every pixel's lightness, because a face in shade is not darker
    paint. `light` is how bright the table around the object is relative to the lit table
    (below 1 when the object stands in another one's shadow); the lit-face brightness is
    divided by it. Very dark pixels carry no hue and vote with less weight.
    """
    params = params if params is not None else _DEFAULT_PARAMS
    if pixels.size == 0:
        return {c: 1.0 / len(COLOURS) for c in COLOURS}
    # A few thousand voters decide as well as all of a large object's pixels, much faster.
    pixels = pixels[:: max(1, len(pixels) // params.max_voters)]
    chroma_xy, _saturation, value = _hsv_features(pixels)
    lit = lit_value(value) / min(1.0, max(params.darkest_light, light))
    # Dark pixels: hue and saturation are quantisation noise.
    reliable = np.clip(value / 0.25, 0.1, 1.0)
    chroma_xy = chroma_xy * np.where(value < 0.06, 0.0, 1.0)[:, None]
    diff = chroma_xy[:, None, :] - _PROTO_CHROMA[None, :, :]
    distance = (diff**2).sum(axis=2) / params.chroma_sigma**2
    distance = distance + ((lit - _PROTO_VALUE) ** 2 / params.value_sigma**2)[None, :]
    logits = -0.5 * distance
    logits -= logits.max(axis=1, keepdims=True)
    votes = np.exp(logits)
    votes /= votes.sum(axis=1, keepdims=True)
    mean = (votes * reliable[:, None]).sum(axis=0) / reliable.sum()
    return {c: float(v) for c, v in zip(COLOURS, mean)}


# -- shape --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeFeatures:
    """Silhouette and shading measurements of one segment (all scale-free)."""

    ellipse_fill: float  # IoU of the mask with its fitted ellipse
    ellipse_aspect: float  # minor / major axis of that ellipse
    triangle_fill: float  # mask area / minimum enclosing triangle area
    top_width: float  # mean width of the top quarter of rows / widest row
    fine_vertices: int  # corners of the convex outline simplified at 1.5 % of its length
    flat_shading: float  # share of pixels in the four most common exact colours
    cap_fraction: float  # share of the most common exact colour (a flat face, an unlit side)
    contrast: float  # spread of brightness (5th to 95th percentile of HSV value)
    apex_residual: float  # how far the isophotes are from all meeting in one point (0: they do)
    apex_inside: float  # 1 when that point lies within the object's outline, 0 far outside
    bottom_width: float  # mean width of the bottom quarter of rows / widest row
    width_slope: float  # how fast the rows widen from top to bottom (a cone: about 1)


def _mask_iou(mask: npt.NDArray[np.uint8], shape_mask: npt.NDArray[np.uint8]) -> float:
    inter = np.count_nonzero(mask & shape_mask)
    union = np.count_nonzero(mask | shape_mask)
    return inter / union if union else 0.0


def _region_solidity(mask: npt.NDArray[np.bool_]) -> float:
    """Area / convex hull area of the largest connected piece of `mask`."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0
    largest = max(contours, key=cv2.contourArea)
    hull = cv2.contourArea(cv2.convexHull(largest))
    return float(cv2.contourArea(largest) / hull) if hull > 0 else 0.0


def _apex_fit(mask: npt.NDArray[np.uint8], colours: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """Do the lines of equal brightness all run through one point inside the object?

    A cone's brightness depends only on the direction around its axis, so its isophotes are
    lines through the apex: at every pixel the brightness gradient is perpendicular to the
    line to the apex. Least squares finds the point p minimising sum (g . (x - p))^2 over the
    smoothly shaded interior; the residual is normalised by sum |g|^2 |x - centre|^2. A sphere's
    isophotes are closed curves (residual large), a cylinder's are parallel (the point lies far
    outside), a cube has no interior gradients at all.
    """
    value = colours.max(axis=2).astype(np.float32)
    gx = cv2.Sobel(value, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(value, cv2.CV_32F, 0, 1, ksize=3)
    interior = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    magnitude = np.hypot(gx, gy)
    # Smooth shading only: face edges and outlines jump by many levels at once.
    usable = interior & (magnitude > 0.5) & (magnitude < 40.0)
    if np.count_nonzero(usable) < 20:
        return 1.0, 0.0
    ys, xs = np.nonzero(usable)
    a = np.column_stack([gx[usable], gy[usable]]).astype(np.float64)
    points = np.column_stack([xs, ys]).astype(np.float64)
    b = (a * points).sum(axis=1)
    try:
        apex, *_ = np.linalg.lstsq(a, b, rcond=None)
    except np.linalg.LinAlgError:
        return 1.0, 0.0
    centre = points.mean(axis=0)
    spread = ((points - centre) ** 2).sum(axis=1)
    residual = float(((a @ apex - b) ** 2).sum() / max(1e-9, ((a**2).sum(axis=1) * spread).sum()))
    height, width = mask.shape
    ax, ay = float(apex[0]), float(apex[1])
    outside = max(0.0, -ax, ax - width, -ay, ay - height) / max(width, height)
    if 0 <= int(ay) < height and 0 <= int(ax) < width and mask[int(ay), int(ax)]:
        outside = 0.0
    return min(1.0, residual), max(0.0, 1.0 - 4.0 * outside)


def shape_features(mask: npt.NDArray[np.uint8], colours: npt.NDArray[np.uint8]) -> ShapeFeatures:
    """Measure a cropped binary mask (uint8 0/1, padded) and the RGB crop under it."""
    inside = mask.astype(bool)
    pixels = colours[inside]
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    area = float(np.count_nonzero(mask))
    ellipse_fill, ellipse_aspect = 0.0, 0.0
    if len(contour) >= 5:
        (cx, cy), (d1, d2), angle = cv2.fitEllipse(contour)
        if min(d1, d2) > 0:
            drawn = np.zeros_like(mask)
            cv2.ellipse(drawn, ((cx, cy), (d1, d2), angle), 1, -1)
            ellipse_fill = _mask_iou(mask, drawn)
            ellipse_aspect = min(d1, d2) / max(d1, d2)
    hull = cv2.convexHull(contour)
    triangle_area, _triangle = cv2.minEnclosingTriangle(hull.astype(np.float32))
    triangle_fill = min(1.0, area / triangle_area) if triangle_area > 0 else 0.0
    rows = mask.sum(axis=1).astype(np.float32)
    rows = rows[rows > 0]
    quarter = max(1, rows.size // 4)
    top_width = float(rows[:quarter].mean()) / float(rows.max())
    bottom_width = float(rows[-quarter:].mean()) / float(rows.max())
    # Slope of the row widths (relative to the widest) over the middle 80 % of the height.
    middle = rows[rows.size // 10 : max(rows.size // 10 + 2, rows.size - rows.size // 10)]
    width_slope = (
        float(np.polyfit(np.linspace(0.0, 1.0, middle.size), middle / rows.max(), 1)[0])
        if middle.size >= 2
        else 0.0
    )
    fine = cv2.approxPolyDP(hull, 0.015 * cv2.arcLength(hull, True), True)
    # A flat face renders in one exact colour; curved surfaces in many, except where they turn
    # away from the light and get the ambient light only.
    codes = (
        (pixels[:, 0].astype(np.int32) << 16) | (pixels[:, 1].astype(np.int32) << 8) | pixels[:, 2]
    )
    counts = np.sort(np.unique(codes, return_counts=True)[1])
    value = pixels.max(axis=1).astype(np.float32) / 255.0
    apex_residual, apex_inside = _apex_fit(mask, colours)
    return ShapeFeatures(
        ellipse_fill=ellipse_fill,
        ellipse_aspect=ellipse_aspect,
        triangle_fill=triangle_fill,
        top_width=top_width,
        fine_vertices=len(fine),
        flat_shading=float(counts[-4:].sum()) / codes.size,
        cap_fraction=float(counts[-1]) / codes.size,
        contrast=float(np.subtract(*np.percentile(value, [95, 5]))),
        apex_residual=apex_residual,
        apex_inside=apex_inside,
        bottom_width=bottom_width,
        width_slope=width_slope,
    )


#: The measurements the shape model reads, in this order (fields of ShapeFeatures).
SHAPE_MEASUREMENTS: tuple[str, ...] = (
    'ellipse_fill', 'ellipse_aspect', 'triangle_fill', 'top_width', 'fine_vertices',
    'flat_shading', 'cap_fraction', 'contrast', 'apex_residual', 'apex_inside',
    'bottom_width', 'width_slope',
)  # fmt: skip
# Outline corners beyond a dozen are pixel noise on large round objects.
_MAX_VERTICES = 12.0


def _measurement_vector(features: ShapeFeatures) -> npt.NDArray[np.float64]:
    """The measurements, then the shading ones again weighted by how much shading there is."""
    values = [float(getattr(features, name)) for name in SHAPE_MEASUREMENTS]
    values[SHAPE_MEASUREMENTS.index('fine_vertices')] = min(
        values[SHAPE_MEASUREMENTS.index('fine_vertices')], _MAX_VERTICES
    )
    # A dark object renders in a few levels whatever its shape: its shading says little.
    shading = min(1.0, max(0.0, (features.contrast - 0.04) / 0.06))
    values += [shading * features.flat_shading, shading * features.cap_fraction,
               shading * features.apex_residual]  # fmt: skip
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class ShapeModel:
    """A linear softmax over the standardised measurements: graded agreement per shape class.

    `mean` and `scale` standardise each measurement of SHAPE_MEASUREMENTS; `weights[shape]`
    holds one weight per measurement and a bias last. The agreements are a multinomial
    logistic regression's probabilities, so they are calibrated on the data it was fitted on.
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: Mapping[str, tuple[float, ...]]

    def agreements(self, features: ShapeFeatures) -> dict[str, float]:
        standard = (_measurement_vector(features) - np.asarray(self.mean)) / np.asarray(self.scale)
        inputs = np.append(standard, 1.0)
        logits = np.array([float(np.dot(self.weights[s], inputs)) for s in SHAPE_CLASSES])
        logits -= logits.max()
        odds = np.exp(logits)
        odds /= odds.sum()
        return {s: float(p) for s, p in zip(SHAPE_CLASSES, odds)}

    def to_source(self) -> str:
        """The model as the Python literal `SHAPE_MODEL` is written in (99 columns)."""

        def rows(values: Sequence[float], indent: str, per_row: int, digits: int) -> list[str]:
            text = [f'{v:.{digits}f}' for v in values]
            return [
                indent + ', '.join(text[i : i + per_row]) + ','
                for i in range(0, len(text), per_row)
            ]

        lines = ['ShapeModel(', '    mean=(', *rows(self.mean, ' ' * 8, 10, 4), '    ),']
        lines += ['    scale=(', *rows(self.scale, ' ' * 8, 10, 4), '    ),', '    weights={']
        for shape in SHAPE_CLASSES:
            lines += [f"        '{shape}': (", *rows(self.weights[shape], ' ' * 12, 11, 3)]
            lines.append('        ),')
        return '\n'.join([*lines, '    },', ')'])


def fit_shape_model(
    features: Sequence[ShapeFeatures], shapes: Sequence[str], *, regularisation: float = 3e-3
) -> ShapeModel:
    """Fit the shape model by multinomial logistic regression (L2-regularised, L-BFGS).

    `features` are measured by this backend on segments whose true shape is `shapes`
    (the simulator's ground truth). `bench/bench_grounding.py --fit-shapes` runs it.
    """
    from scipy.optimize import minimize

    if len(features) != len(shapes) or not features:
        raise ValueError('need as many shapes as feature sets, and at least one')
    data = np.stack([_measurement_vector(f) for f in features])
    labels = np.array([SHAPE_CLASSES.index(s) for s in shapes])
    mean = data.mean(axis=0)
    scale = data.std(axis=0) + 1e-9
    inputs = np.hstack([(data - mean) / scale, np.ones((len(data), 1))])
    classes, width = len(SHAPE_CLASSES), inputs.shape[1]

    def loss(flat: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        weights = flat.reshape(classes, width)
        logits = inputs @ weights.T
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        value = -np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean()
        error = probabilities
        error[np.arange(len(labels)), labels] -= 1.0
        gradient = error.T @ inputs / len(labels) + 2 * regularisation * weights
        return float(value + regularisation * (weights**2).sum()), gradient.ravel()

    result = minimize(loss, np.zeros(classes * width), jac=True, method='L-BFGS-B')
    weights = result.x.reshape(classes, width)
    return ShapeModel(
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        weights={s: tuple(float(w) for w in weights[k]) for k, s in enumerate(SHAPE_CLASSES)},
    )


#: Fitted by `bench/bench_grounding.py --fit-shapes` on the simulator's scenes (see
#: docs/color_shape.md): the measurements above of every object found, against its true shape.
# fmt: off
SHAPE_MODEL = ShapeModel(
    mean=(
        0.8953, 0.7786, 0.6680, 0.5700, 7.5258, 0.6652, 0.4029, 0.2223, 0.3955, 0.7591,
        0.6301, 0.0838, 0.5650, 0.3473, 0.3722,
    ),
    scale=(
        0.0700, 0.1663, 0.0849, 0.1997, 1.5006, 0.3176, 0.2090, 0.1090, 0.3735, 0.4231,
        0.1274, 0.3204, 0.3586, 0.2272, 0.3787,
    ),
    weights={
        'cube': (
            -0.014, 0.186, -0.318, 0.054, -2.003, 1.240, 0.144, 0.024, 0.102, -0.191, -0.011,
            -0.080, 0.647, -0.314, 0.199, -0.145,
        ),
        'sphere': (
            0.672, 0.335, 0.621, -0.074, 0.501, -1.019, -0.167, 0.194, 0.806, 0.370, -0.380,
            -0.219, -0.908, 0.008, 0.253, -0.098,
        ),
        'cylinder': (
            -0.007, -1.149, -0.719, 0.693, 1.257, 0.550, 0.359, 0.134, 0.018, 0.141, 0.098,
            -0.450, 0.274, 0.171, 0.189, 0.060,
        ),
        'cone': (
            -0.651, 0.628, 0.416, -0.673, 0.245, -0.771, -0.336, -0.352, -0.926, -0.319, 0.293,
            0.749, -0.012, 0.135, -0.641, 0.183,
        ),
    },
)
# fmt: on


def shape_agreements(features: ShapeFeatures, model: ShapeModel | None = None) -> dict[str, float]:
    """Graded agreement (0..1, summing to 1) of the measured features with each shape class."""
    return (model if model is not None else SHAPE_MODEL).agreements(features)


# -- size ---------------------------------------------------------------------------------------


def size_agreements(
    box: Box, image_height: int, params: ColorShapeParams | None = None
) -> dict[str, float]:
    """Agreement of a box with 'small' and 'large' from its apparent size alone (sum 1).

    Calibrated on the fixed preset's cameras (`ColorShapeParams.size_split`); elsewhere a rough
    cue: the resolver compares the candidates' boxes and uses this only for a lone candidate.
    """
    params = params if params is not None else _DEFAULT_PARAMS
    apparent = math.sqrt(max(box.area, 1.0)) / max(1, image_height)
    row = box.center[1] / max(1, image_height)
    split = math.log(params.size_split) + params.size_row_slope * (row - 0.5)
    large = 1.0 / (1.0 + math.exp(-params.size_steepness * (math.log(apparent) - split)))
    return {'small': 1.0 - large, 'large': large}


# -- segmentation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One object found in the image: box in input pixels, colour and shape agreements."""

    box: Box
    area: int
    colours: dict[str, float]
    shapes: dict[str, float]
    embedding: npt.NDArray[np.float32] = field(repr=False)
    features: ShapeFeatures | None = field(default=None, repr=False)
    sizes: dict[str, float] = field(default_factory=dict)

    @property
    def colour(self) -> str:
        return max(self.colours, key=lambda c: self.colours[c])

    @property
    def shape(self) -> str:
        return max(self.shapes, key=lambda s: self.shapes[s])

    @property
    def label(self) -> str:
        return f'{self.colour} {self.shape}'


def _neighbourhood(
    counts: npt.NDArray[np.float32], reduce: Any = np.add
) -> npt.NDArray[np.float32]:
    """Each cell of a 3-D histogram reduced with its 26 neighbours (sum, or np.maximum)."""
    padded = np.pad(counts, 1)
    result = counts.copy()
    shape = counts.shape
    for dz in range(3):
        for dy in range(3):
            for dx in range(3):
                if (dz, dy, dx) != (1, 1, 1):
                    window = padded[dz : dz + shape[0], dy : dy + shape[1], dx : dx + shape[2]]
                    result = reduce(result, window)
    return result


#: Bins of the surface search: chromaticity steps and log2-brightness steps.
_CHROMA_BINS = 50
_BRIGHTNESS_STEP = 0.5


def _background_colours(
    image: npt.NDArray[np.uint8], params: ColorShapeParams
) -> list[npt.NDArray[np.float32]]:
    """RGB of the large uniform surfaces, lit: table, floor, sky.

    Pixels are binned by chromaticity (steps of 0.02) and log brightness (steps of a factor
    1.41), so a textured surface, whose ripples change brightness and not chromaticity, falls
    into a few neighbouring bins. A surface is a peak of the histogram whose bin and its
    neighbours hold `background_fraction` of the image, or `border_fraction` of its border (a
    large object close to the camera may fill much of the image, but rarely its border). Its
    colour is the mean of its pixels at their most common brightness (the lit part: shadows
    are the darker tail). Every other pixel is enough to find them.
    """
    sample = image[::2, ::2]
    height, width = sample.shape[:2]
    pixels = sample.reshape(-1, 3).astype(np.float32)
    brightness = pixels.sum(axis=1) + 3.0
    chroma = (pixels[:, :2] + 1.0) / brightness[:, None]
    q = _CHROMA_BINS
    red = np.clip((chroma[:, 0] * q).astype(np.int32), 0, q - 1)
    green = np.clip((chroma[:, 1] * q).astype(np.int32), 0, q - 1)
    levels = math.ceil(math.log2(3 * 256) / _BRIGHTNESS_STEP) + 1
    level = np.clip((np.log2(brightness) / _BRIGHTNESS_STEP).astype(np.int32), 0, levels - 1)
    bins = (level * q + red) * q + green
    shape = (levels, q, q)
    counts = _neighbourhood(
        np.bincount(bins, minlength=levels * q * q).reshape(shape).astype(np.float32)
    )
    grid = bins.reshape(height, width)
    edge = max(1, min(height, width) // 40)
    border = np.concatenate(
        [
            grid[:edge].ravel(),
            grid[-edge:].ravel(),
            grid[:, :edge].ravel(),
            grid[:, -edge:].ravel(),
        ]
    )
    border_counts = _neighbourhood(
        np.bincount(border, minlength=levels * q * q).reshape(shape).astype(np.float32)
    )
    total = float(bins.size)
    large = (counts >= params.background_fraction * total) | (
        (border_counts >= params.border_fraction * border.size) & (counts >= 0.005 * total)
    )
    peaks = large & (counts >= _neighbourhood(counts, np.maximum))
    raw = np.bincount(bins, minlength=levels * q * q).reshape(shape)
    # A plateau of equal sums surrounds one full bin: take the fullest, drop its neighbours.
    order = sorted(zip(*np.nonzero(peaks)), key=lambda cell: -int(raw[cell]))
    cells: list[tuple[int, int, int]] = []
    for cell in order:
        if all(max(abs(int(a) - int(b)) for a, b in zip(cell, other)) > 1 for other in cells):
            cells.append(tuple(int(v) for v in cell))  # type: ignore[arg-type]
    colours: list[npt.NDArray[np.float32]] = []
    for z, y, x in cells:
        members = (np.abs(level - z) <= 1) & (np.abs(red - y) <= 1) & (np.abs(green - x) <= 1)
        log_b = np.log(brightness[members])
        histogram, edges = np.histogram(log_b, bins=64)
        mode = float(edges[int(np.argmax(np.convolve(histogram, np.ones(3), 'same')))])
        lit = members.copy()
        lit[members] = np.abs(log_b - mode) <= 0.05
        colours.append(pixels[lit].mean(axis=0).astype(np.float32))
    # Uniform surfaces exactly: a 16-level RGB bin of the same size (two plain surfaces of
    # nearly one chromaticity, a table and a floor, share a peak above).
    rgb_bins = ((sample >> 4).astype(np.int32) * [256, 16, 1]).sum(axis=2)
    rgb_counts = np.bincount(rgb_bins.ravel(), minlength=4096)
    rgb_border = np.concatenate(
        [rgb_bins[:edge].ravel(), rgb_bins[-edge:].ravel(), rgb_bins[:, :edge].ravel(),
         rgb_bins[:, -edge:].ravel()]
    )  # fmt: skip
    rgb_border_counts = np.bincount(rgb_border, minlength=4096)
    for value in np.flatnonzero(
        (rgb_counts >= params.background_fraction * total)
        | ((rgb_border_counts >= params.border_fraction * rgb_border.size)
           & (rgb_counts >= 0.005 * total))
    ):  # fmt: skip
        colour = pixels[rgb_bins.ravel() == value].mean(axis=0).astype(np.float32)
        if all(np.abs(colour - other).max() > 4.0 for other in colours):
            colours.append(colour)
    return colours


def _shadow_regions(
    candidates: npt.NDArray[np.bool_],
    lit: npt.NDArray[np.bool_],
    log_brightness: npt.NDArray[np.float32],
    flatness: float,
    step: float,
) -> npt.NDArray[np.bool_]:
    """The connected regions of `candidates` that touch `lit` and are one brightness level.

    A cast shadow or a side of the table is a flat surface under one light: it renders at one
    brightness (up to the surface's own texture), next to the lit part of the same surface. An
    object of the surface's colour shows several faces or a gradient. Levels are `step` wide in
    log brightness: the texture's ripple, so a shadow on wood grain is as flat as on laminate.
    """
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(candidates)
    near_lit = cv2.dilate(lit.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    touching = np.bincount(labels[candidates & near_lit], minlength=count) > 0
    levels = np.clip((log_brightness - math.log(3.0)) / step, 0, 255).astype(np.int32)
    keys = labels[candidates] * 256 + levels[candidates]
    histogram = np.bincount(keys, minlength=count * 256).reshape(count, 256).astype(np.float32)
    near = histogram.copy()
    near[:, 1:] += histogram[:, :-1]
    near[:, :-1] += histogram[:, 1:]
    totals = np.maximum(histogram.sum(axis=1), 1.0)
    shadow = (near.max(axis=1) / totals >= flatness) & touching
    shadow[0] = False
    return np.asarray(shadow[labels] & candidates, dtype=np.bool_)


def _segment_distance(
    chroma: npt.NDArray[np.float32], start: npt.NDArray[np.float32], end: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """L1 distance of every chromaticity (... x 3) to the segment from `start` to `end`."""
    direction = end - start
    length = float(direction @ direction)
    nearest = start
    if length >= 1e-12:
        along = np.clip(((chroma - start) @ direction) / length, 0.0, 1.0)
        nearest = start + along[..., None] * direction
    return np.asarray(np.abs(chroma - nearest).sum(axis=-1), dtype=np.float32)


def _foreground(
    image: npt.NDArray[np.uint8], params: ColorShapeParams
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], list[_Surface]]:
    """The object mask (uint8 0/1), the light on the background (each surface pixel's
    brightness relative to its lit surface: 1 lit, below 1 in shadow, 0 off the surfaces), and
    the surfaces found.

    Shading multiplies a surface's colour; a shadow also changes which lights reach it. A
    surface's lit pixels therefore share one chromaticity, and its shadows lie on the segment
    from that chromaticity to the chromaticity of the surface under the ambient light alone
    (measured on the darker pixels near the surface's chromaticity). The decision is made on a
    median-filtered copy, so a textured or noisy surface reads as one surface.
    """
    smooth = np.asarray(
        cv2.medianBlur(image, params.denoise_px) if params.denoise_px > 1 else image,
        dtype=np.uint8,
    )
    pixels = smooth.astype(np.float32)
    # +3 (one per channel) gives black pixels a neutral chromaticity instead of 0/0.
    brightness = cv2.transform(pixels, np.ones((1, 3), np.float32)) + 3.0
    log_brightness = np.log(brightness)
    chroma = (pixels + 1.0) / brightness[..., None]
    # Quantisation noise of the chromaticity grows as the pixel gets darker: +2 levels.
    tolerance = params.chroma_tolerance + 2.0 / brightness
    surfaces: list[_Surface] = []
    masks = []
    lit = np.zeros(image.shape[:2], dtype=bool)
    light = np.zeros(image.shape[:2], dtype=np.float32)
    for colour in _background_colours(smooth, params):
        surface_brightness = float(colour.sum()) + 3.0
        lit_chroma = ((colour + 1.0) / surface_brightness).astype(np.float32)
        relative = brightness / surface_brightness
        distance = np.abs(chroma - lit_chroma).sum(axis=2)
        same = distance < tolerance
        # A saturated white surface is the renderer's clear colour (empty space), not a lit
        # surface: nothing casts a shadow on it, and a white object's lit face must not match.
        clear = float(colour.min()) >= params.clear_colour_level
        lowest_lit, highest_lit = (
            (params.clear_lit_ratio, params.highlight_ratio)
            if clear
            else _lit_range(relative[same], params)
        )
        lit_range = (relative >= lowest_lit) & (relative <= highest_lit)
        surface_lit = same & lit_range
        shadow_chroma = lit_chroma
        shade_range = np.zeros_like(lit_range)
        if not clear:
            shade_range = (relative >= params.shadow_ratio) & (relative < lowest_lit)
            # Clearly darker than the lit surface and its texture: shadows and shaded sides.
            darker = (
                shade_range
                & (relative < params.shadow_depth * lowest_lit)
                & (distance < params.shadow_chroma_reach)
            )
            if np.count_nonzero(darker) >= params.min_area_px:
                shadow_chroma = np.median(chroma[darker], axis=0).astype(np.float32)
                # Only shade-range pixels near the surface can be its shadow: measure those.
                reach = float(np.abs(shadow_chroma - lit_chroma).sum())
                near = shade_range & ~same & (distance < reach + params.chroma_tolerance + 0.02)
                along = _segment_distance(chroma[near], lit_chroma, shadow_chroma)
                same[near] = along < tolerance[near]
        shaded = same & shade_range & ~lit_range
        # The texture's ripple: half the spread of the lit surface's log brightness.
        step = max(0.01, 0.5 * math.log(highest_lit / lowest_lit) / 2.0)
        masks.append((surface_lit, shaded, step))
        surfaces.append(
            _Surface(colour, lit_chroma, shadow_chroma, clear, int(np.count_nonzero(surface_lit)))
        )
        lit |= surface_lit
        np.divide(
            brightness, surface_brightness, out=light, where=same & (lit_range | shade_range)
        )
    background = lit.copy()
    for surface_lit, shaded, step in masks:
        # Each surface separately: a grey object in front of a white wall is a candidate
        # 'shadow' of the wall, and must not merge with a real shadow on the table.
        background |= _shadow_regions(
            shaded & ~lit, surface_lit, log_brightness, params.shadow_flatness, step
        )
    mask = (~background).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    opened = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), dtype=np.uint8)
    return opened, light, surfaces


@dataclass(frozen=True)
class _Surface:
    """A background surface: its mean colour, lit and ambient-only chromaticity."""

    colour: npt.NDArray[np.float32]
    lit_chroma: npt.NDArray[np.float32]
    shadow_chroma: npt.NDArray[np.float32]
    clear: bool
    lit_pixels: int


def estimate_illuminant(surfaces: Sequence[_Surface], limit: float) -> npt.NDArray[np.float32]:
    """The colour of the direct light relative to the light in the shadows (RGB, mean 1).

    On the largest lit surface, lit / shadowed = (ambient + direct) / ambient per channel:
    whatever the surface's own colour, the ratio is the light's. Dividing an object's pixels by
    it (a von Kries correction) names the colour of its lit faces as under the shadows' light.
    Each channel is kept within [1 / limit, limit]; no shadow found: no correction.
    """
    usable = [s for s in surfaces if not s.clear and s.lit_pixels > 0]
    if not usable:
        return np.ones(3, dtype=np.float32)
    main = max(usable, key=lambda s: s.lit_pixels)
    ratio = main.lit_chroma / np.maximum(main.shadow_chroma, 1e-6)
    ratio = np.clip(ratio / ratio.mean(), 1.0 / limit, limit)
    return np.asarray(ratio / ratio.mean(), dtype=np.float32)


def _lit_range(relative: npt.NDArray[np.float32], params: ColorShapeParams) -> tuple[float, float]:
    """Brightness range (relative to the surface's mean) of a surface's lit pixels: the
    configured one, widened to the surface's own texture (its 3rd-97th percentile)."""
    near = relative[(relative > 0.75) & (relative < 1.3)]
    if near.size < 50:
        return params.lit_ratio, params.highlight_ratio
    low, high = np.percentile(near, [0.5, 99.5])
    return min(params.lit_ratio, float(low) - 0.02), max(
        params.highlight_ratio, float(high) + 0.02
    )


def _light_around(
    part: npt.NDArray[np.bool_],
    offset: tuple[int, int],
    foreground: npt.NDArray[np.uint8],
    light: npt.NDArray[np.float32],
    pad: int,
) -> float:
    """How lit the table right around an object is (1 = fully lit).

    A high percentile of the surface light in a ring around the object: its own cast shadow
    darkens one side of the ring, the shadow of a taller object the whole of it.
    """
    x, y = offset
    height, width = light.shape
    y0, x0 = max(0, y - pad), max(0, x - pad)
    y1, x1 = min(height, y + part.shape[0] + pad), min(width, x + part.shape[1] + pad)
    local = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    local[y - y0 : y - y0 + part.shape[0], x - x0 : x - x0 + part.shape[1]] = part
    ring = cv2.dilate(local, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)).astype(bool)
    ring &= foreground[y0:y1, x0:x1] == 0
    values = light[y0:y1, x0:x1][ring]
    values = values[values > 0]
    return float(np.percentile(values, 85)) if values.size >= 10 else 1.0


def _nearer_second(points: npt.NDArray[np.float64], centres: npt.NDArray[np.float64]) -> Any:
    """True where a point is nearer the second centre: one side of the bisecting plane."""
    normal = centres[1] - centres[0]
    return points @ normal > 0.5 * float(centres[1] @ centres[1] - centres[0] @ centres[0])


def _two_means(
    points: npt.NDArray[np.float64], min_spread: float, rounds: int = 8
) -> npt.NDArray[np.float64]:
    """Two cluster centres by k-means, started deterministically from both ends of the
    principal axis (the same image always splits the same way)."""
    offsets = points - points.mean(axis=0)
    _values, vectors = np.linalg.eigh(offsets.T @ offsets)
    projection = offsets @ vectors[:, -1]
    # From the extremes: a sliver of a hidden object may be 1 % of the region.
    low, high = np.percentile(projection, [1, 99])
    if high - low < min_spread:
        return np.stack([points.mean(axis=0)] * 2)  # one colour: nothing to split
    centres = np.stack(
        [points[projection <= low].mean(axis=0), points[projection >= high].mean(axis=0)]
    )
    for _ in range(rounds):
        second = _nearer_second(points, centres)
        if second.all() or not second.any():
            break
        updated = np.stack([points[~second].mean(axis=0), points[second].mean(axis=0)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres


def _split_by_colour(
    pixels: npt.NDArray[np.uint8], params: ColorShapeParams, min_area: int
) -> npt.NDArray[np.int32] | None:
    """Cluster labels (0, 1) when the pixels hold two clearly different colours, else None."""
    if len(pixels) < 2 * min_area:
        return None
    chroma_xy, _s, value = _hsv_features(pixels)
    # Log-brightness, weighted so that the faces of one object (lit / in shade, at most about
    # a factor of two apart) stay together while black and white or grey come apart.
    lightness = params.lightness_weight * np.log(value + 0.02)
    features = np.column_stack([chroma_xy * (value >= 0.1)[:, None], lightness])
    centres = _two_means(
        features[:: max(1, len(features) // params.max_voters)], params.min_colour_spread
    )
    labels: npt.NDArray[np.int32] = _nearer_second(features, centres).astype(np.int32)
    counts = np.bincount(labels, minlength=2)
    share = counts / len(labels)
    separation = float(np.linalg.norm(centres[0] - centres[1]))
    if separation < params.split_distance or min(counts) < min_area or share.min() < 0.01:
        return None
    return labels


def _white_balanced(
    pixels: npt.NDArray[np.uint8], illuminant: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.uint8]:
    if illuminant is None:
        return pixels
    balanced = np.clip(pixels.astype(np.float32) / illuminant, 0.0, 255.0)
    return np.asarray(balanced + 0.5, dtype=np.uint8)


def _embedding(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3)
    parts = [np.bincount((hsv[:, k].astype(np.int32) * 8) // 256, minlength=8) for k in range(3)]
    vector = np.concatenate(parts).astype(np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _describe(
    patch: npt.NDArray[np.uint8],
    mask: npt.NDArray[np.bool_],
    offset: tuple[int, int],
    scale: float,
    min_area: int,
    params: ColorShapeParams,
    light: float = 1.0,
    illuminant: npt.NDArray[np.float32] | None = None,
) -> Segment | None:
    """Measure one object mask lying in `patch`, whose top-left image pixel is `offset`."""
    ys, xs = np.nonzero(mask)
    if ys.size < min_area:
        return None
    pixels = patch[ys, xs]
    ys = ys + offset[1]
    xs = xs + offset[0]
    y1, y2, x1, x2 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    crop = np.zeros((y2 - y1 + 2, x2 - x1 + 2), dtype=np.uint8)
    crop[ys - y1 + 1, xs - x1 + 1] = 1
    colours = np.zeros((*crop.shape, 3), dtype=np.uint8)
    colours[ys - y1 + 1, xs - x1 + 1] = pixels
    features = shape_features(crop, colours)
    shapes = shape_agreements(features)
    return Segment(
        box=Box(x1 / scale, y1 / scale, x2 / scale, y2 / scale),
        area=round(ys.size / scale**2),
        colours=colour_agreements(_white_balanced(pixels, illuminant), light, params),
        shapes=shapes,
        embedding=_embedding(pixels),
        features=features,
    )


def segment_objects(
    image: npt.NDArray[np.uint8], params: ColorShapeParams | None = None
) -> list[Segment]:
    """Every object on the table, left to right (see the module docstring for the method)."""
    params = params if params is not None else _DEFAULT_PARAMS
    image = check_image(image)
    height, width = image.shape[:2]
    scale = min(1.0, params.max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    work_height, work_width = image.shape[:2]
    min_area = max(params.min_area_px, int(params.min_area_fraction * work_height * work_width))
    foreground, light, surfaces = _foreground(image, params)
    illuminant = estimate_illuminant(surfaces, params.illuminant_limit)
    count, labels, stats, _centroids = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    segments: list[Segment] = []
    for index in range(1, count):
        if stats[index, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, w, h = (int(stats[index, k]) for k in range(4))
        component = labels[y : y + h, x : x + w] == index
        parts = _split_component(image[y : y + h, x : x + w], component, params, min_area)
        for part in parts:
            around = _light_around(part, (x, y), foreground, light, params.light_ring_px)
            segment = _describe(
                image[y : y + h, x : x + w], part, (x, y), scale, min_area, params, around,
                illuminant,
            )  # fmt: skip
            if segment is not None:
                segments.append(segment)
    segments = [replace(s, sizes=size_agreements(s.box, height, params)) for s in segments]
    segments.sort(key=lambda s: (s.box.x1, s.box.y1))
    return segments


def _enclosed(cluster: npt.NDArray[np.uint8], component: npt.NDArray[np.bool_]) -> bool:
    """True when `cluster` hardly touches the background: a highlight, a painted spot."""
    ring = cv2.dilate(cluster, np.ones((3, 3), np.uint8)).astype(bool) & ~cluster.astype(bool)
    outside = int(np.count_nonzero(ring & ~component))
    return outside < 0.1 * max(1, int(np.count_nonzero(ring)))


def _neck_end(
    contour: npt.NDArray[np.int32], notch: int, mask: npt.NDArray[np.bool_]
) -> tuple[int, int] | None:
    """The nearest outline point across the region from the notch: the narrowest neck.

    With three objects in a row the two deepest notches may sit at different junctions; the
    shortest chord from the deepest one always crosses its own junction.
    """
    n = len(contour)
    index = np.arange(n)
    along = np.minimum(np.abs(index - notch), n - np.abs(index - notch))
    points = contour[:, 0, :].astype(np.float64)
    distance = np.hypot(*(points - points[notch]).T)
    distance[along < 0.2 * n] = np.inf
    best = int(np.argmin(distance))
    if not np.isfinite(distance[best]):
        return None
    samples = np.linspace(points[notch], points[best], 16).round().astype(int)
    if mask[samples[:, 1], samples[:, 0]].mean() < 0.8:
        return None  # the chord leaves the region: not a neck
    return int(points[best, 0]), int(points[best, 1])


def _cut(
    mask: npt.NDArray[np.bool_],
    start: tuple[int, int],
    end: tuple[int, int],
    min_area: int,
) -> tuple[float, list[npt.NDArray[np.bool_]]]:
    """The pieces a straight cut leaves, and how convex they are (area-weighted solidity)."""
    cut = mask.astype(np.uint8)
    cv2.line(cut, start, end, 0, 2)
    count, labels = cv2.connectedComponents(cut, connectivity=4)
    pieces = [labels == k for k in range(1, count)]
    pieces = [p for p in pieces if np.count_nonzero(p) >= min_area]
    if len(pieces) < 2:
        return 0.0, []
    areas = [float(np.count_nonzero(p)) for p in pieces]
    score = sum(a * _region_solidity(p) for a, p in zip(areas, pieces)) / sum(areas)
    return score, pieces


def _split_concave(
    mask: npt.NDArray[np.bool_], min_area: int, params: ColorShapeParams, depth: int = 0
) -> list[npt.NDArray[np.bool_]]:
    """Cut a one-colour region that is the union of convex objects (one behind the other).

    Every shape this backend knows is convex, so two or more deep notches in the outline are
    where silhouettes cross. The cut starts at the deepest notch and ends at another deep notch
    or at the nearest point across the region (the narrowest neck), whichever leaves the most
    convex pieces (the shorter cut among equals); each piece is examined again.
    """
    area = int(np.count_nonzero(mask))
    if depth >= 3 or area < 2 * min_area:
        return [mask]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = np.asarray(max(contours, key=cv2.contourArea), dtype=np.int32)
    if len(contour) < 12:
        return [mask]
    hull = cv2.convexHull(contour, returnPoints=False)
    try:
        defects = cv2.convexityDefects(contour, hull)
    except cv2.error:  # self-intersecting outlines of one-pixel-wide parts
        return [mask]
    if defects is None:
        return [mask]
    defects = defects.reshape(-1, 4)
    depths = defects[:, 3] / 256.0
    deep = np.flatnonzero(
        depths >= max(params.notch_depth_px, params.notch_depth_fraction * math.sqrt(area))
    )
    if deep.size < 2:
        return [mask]
    deepest = int(deep[np.argmax(depths[deep])])
    notch = int(defects[deepest, 2])
    start = (int(contour[notch, 0, 0]), int(contour[notch, 0, 1]))
    ends = [
        (int(contour[defects[k, 2], 0, 0]), int(contour[defects[k, 2], 0, 1]))
        for k in deep
        if k != deepest
    ]
    neck = _neck_end(contour, notch, mask)
    if neck is not None:
        ends.append(neck)
    best_score, best_pieces = -1.0, []
    for end in ends:
        score, pieces = _cut(mask, start, end, min_area)
        # Between cuts that leave equally convex pieces, the shorter one.
        score -= 0.05 * math.dist(start, end) / math.sqrt(area)
        if pieces and score > best_score:
            best_score, best_pieces = score, pieces
    if not best_pieces:
        return [mask]
    return [
        part
        for piece in best_pieces
        for part in _split_concave(piece, min_area, params, depth + 1)
    ]


def _split_component(
    patch: npt.NDArray[np.uint8],
    component: npt.NDArray[np.bool_],
    params: ColorShapeParams,
    min_area: int,
    depth: int = 0,
) -> list[npt.NDArray[np.bool_]]:
    """The component as one mask, or one per colour cluster and convex piece."""
    ys, xs = np.nonzero(component)
    labels = _split_by_colour(patch[ys, xs], params, min_area) if depth < 3 else None
    clusters = []
    if labels is not None:
        for cluster in (0, 1):
            cluster_mask = np.zeros(component.shape, dtype=np.uint8)
            chosen = labels == cluster
            cluster_mask[ys[chosen], xs[chosen]] = 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
            opened = cv2.morphologyEx(cluster_mask, cv2.MORPH_OPEN, kernel)
            clusters.append(np.asarray(opened, dtype=np.uint8))
        if any(_enclosed(cluster, component) for cluster in clusters):
            clusters = []
    if not clusters:
        return _split_concave(component, min_area, params)
    pieces: list[npt.NDArray[np.bool_]] = []
    for cluster_mask in clusters:
        count, piece_labels = cv2.connectedComponents(cluster_mask, connectivity=8)
        for piece in range(1, count):
            piece_mask = piece_labels == piece
            if np.count_nonzero(piece_mask) >= min_area:
                pieces.extend(_split_component(patch, piece_mask, params, min_area, depth + 1))
    return pieces or [component]


# -- backend ------------------------------------------------------------------------------------


@register_backend('color_shape')
class ColorShapeBackend(Backend):
    """Weight-free colour and shape detector for simulated tabletop scenes (not real robots)."""

    name = 'color_shape'

    def __init__(self, config: BackendConfig | None = None) -> None:
        super().__init__(config if config is not None else BackendConfig(name='color_shape'))
        params = ColorShapeParams.from_options(self.config.options)
        # The common `max_image_side` setting caps the segmentation resolution as well.
        self.params = replace(params, max_side=min(params.max_side, self.config.max_image_side))

    def segment(self, image: npt.NDArray[np.uint8]) -> list[Segment]:
        """Every object segment of `image` (for debugging and the benchmark)."""
        return segment_objects(image, self.params)

    def recognises(self, phrase: str) -> bool:
        return parse_phrase(phrase).known

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        check_image(image)
        requests = [parse_phrase(p) for p in phrases if isinstance(p, str)]
        if len(requests) != len(phrases):
            raise BackendError('color_shape: every phrase must be a string')
        if not any(r.known for r in requests):
            return []
        segments = self.segment(image)
        detections: list[Detection] = []
        for request in requests:
            if not request.known:
                continue
            found = []
            for segment in segments:
                score = segment.shapes[request.shape] if request.shape else 1.0
                if score < self.config.box_threshold:
                    continue
                found.append(
                    Detection(
                        box=segment.box,
                        phrase=request.phrase,
                        score=score,
                        attributes={
                            AttributeKind.COLOUR: segment.colours,
                            AttributeKind.SHAPE: segment.shapes,
                            AttributeKind.SIZE: segment.sizes,
                        },
                        embedding=segment.embedding,
                        label=segment.label,
                    )
                )
            found.sort(key=lambda d: d.score, reverse=True)
            detections.extend(found[: self.config.max_detections])
        return detections
