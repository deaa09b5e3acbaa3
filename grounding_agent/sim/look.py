"""How a scene looks: the named render presets and the ranges the randomised one draws from.

A scene's objects and layout come from its seed alone; its look (light, camera, table and floor,
small changes of each object's paint and size) comes from a preset:

- `fixed`: the setting every figure before randomisation was measured in: white light, the
  muted teal table filling the view, the exact paints and sizes, cameras and lights from the
  narrow ranges of `scene.random_camera` / `scene.random_light`.
- `randomised`: every quantity below drawn from its documented range (docs/simulation.md lists
  them), from a random stream of its own, so a seed's objects stand where they stand in `fixed`.

Everything here is plain data and numpy; `world.SimWorld` turns surfaces into textures.
"""

from __future__ import annotations

import colorsys
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.sim.errors import SimError

__all__ = [
    'MIN_SURFACE_DELTA_E',
    'PRESETS',
    'RANGES',
    'TEXTURES',
    'LookError',
    'colour_temperature_rgb',
    'jittered_paint',
    'random_camera_values',
    'random_look',
    'surface_texture',
]

PRESETS: tuple[str, ...] = ('fixed', 'randomised')
TEXTURES: tuple[str, ...] = ('plain', 'grain', 'speckle', 'weave')


class LookError(SimError):
    """A preset or texture name this module does not know."""


@dataclass(frozen=True)
class _Range:
    low: float
    high: float
    unit: str
    why: str

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


# The randomised preset's ranges: wide enough to hold the lighting, cameras and furniture of
# ordinary rooms and robot cells, narrow enough that every object stays visible and nameable
# (the table is never the colour of a paint; paints stay prototypes of their names).
RANGES: dict[str, _Range] = {
    'light_azimuth_deg': _Range(0.0, 360.0, 'deg', 'any side'),
    'light_elevation_deg': _Range(30.0, 80.0, 'deg', 'low evening sun to a ceiling lamp'),
    'light_intensity': _Range(0.75, 1.1, '', 'ambient + diffuse coefficient: dim to bright'),
    'ambient_share': _Range(0.35, 0.75, '', 'hard directional light to soft diffuse light'),
    'light_specular': _Range(0.0, 0.12, '', 'matte to glossy'),
    'colour_temperature_k': _Range(3000.0, 7500.0, 'K', 'warm lamp to overcast daylight'),
    'camera_pitch_deg': _Range(30.0, 72.0, 'deg', 'look-down angle of the optical axis'),
    'camera_distance_m': _Range(0.5, 0.9, 'm', 'camera to the looked-at point'),
    'camera_azimuth_deg': _Range(-40.0, 40.0, 'deg', 'around the table'),
    'camera_fov_deg': _Range(42.0, 62.0, 'deg', 'vertical field of view'),
    'table_lightness': _Range(35.0, 85.0, 'L*', 'dark wood to white laminate'),
    'table_chroma': _Range(4.0, 28.0, 'C*', 'grey to coloured laminate'),
    'floor_lightness': _Range(20.0, 75.0, 'L*', 'dark tiles to light concrete'),
    'floor_chroma': _Range(0.0, 22.0, 'C*', ''),
    'table_half_width_m': _Range(0.45, 0.8, 'm', 'table top, along image x'),
    'table_half_depth_m': _Range(0.3, 0.5, 'm', 'table top, along the view'),
    'texture_contrast': _Range(0.03, 0.09, '', 'relative brightness ripple of a texture'),
    'object_scale': _Range(0.85, 1.15, '', 'width and height of each object'),
    'paint_hue_deg': _Range(-4.0, 4.0, 'deg', 'hue shift of each paint'),
    'paint_saturation': _Range(0.9, 1.0, 'x', 'saturation factor of each paint'),
    'paint_value': _Range(0.92, 1.06, 'x', 'brightness factor of each paint (clipped at 1)'),
}

#: Smallest CIELAB distance (CIE76) between a surface colour and any paint, and between table
#: and floor: an object of the table's colour cannot be seen by anyone.
MIN_SURFACE_DELTA_E = 25.0
MIN_TABLE_FLOOR_DELTA_E = 12.0

#: Texels per metre of a table texture (about 1.5 mm each, finer than a pixel at these cameras).
TEXELS_PER_M = 640


def colour_temperature_rgb(kelvin: float, *, encode: bool = True) -> tuple[float, float, float]:
    """sRGB-encoded colour (largest channel 1) of a black body at `kelvin`, from Planck's law.

    Integrated against the CIE 1931 colour matching functions (the Wyman et al. 2013
    multi-lobe fit, 5 nm steps), converted XYZ -> linear sRGB relative to D65 (so 6504 K is
    neutral), then gamma-encoded: the TinyRenderer multiplies 8-bit encoded colours by it, so
    a 3000 K lamp tints a white paint as an unbalanced photograph under a warm lamp would.
    """
    if not 1000.0 <= kelvin <= 40000.0:
        raise LookError(f'colour temperature must be within 1000..40000 K, got {kelvin}')
    wavelengths = np.arange(380.0, 781.0, 5.0)
    nm = wavelengths * 1e-9
    radiance = 1.0 / (nm**5 * (np.exp(1.4387769e-2 / (nm * kelvin)) - 1.0))

    def lobe(x: npt.NDArray[np.float64], mu: float, s1: float, s2: float) -> Any:
        t = (x - mu) * np.where(x < mu, 1.0 / s1, 1.0 / s2)
        return np.exp(-0.5 * t * t)

    w = wavelengths
    xbar = (1.056 * lobe(w, 599.8, 37.9, 31.0) + 0.362 * lobe(w, 442.0, 16.0, 26.7)
            - 0.065 * lobe(w, 501.1, 20.4, 26.2))  # fmt: skip
    ybar = 0.821 * lobe(w, 568.8, 46.9, 40.5) + 0.286 * lobe(w, 530.9, 16.3, 31.1)
    zbar = 1.217 * lobe(w, 437.0, 11.8, 36.0) + 0.681 * lobe(w, 459.0, 26.0, 13.8)
    xyz = np.array([(radiance * bar).sum() for bar in (xbar, ybar, zbar)])
    to_rgb = np.array(
        [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]
    )
    rgb = np.clip(to_rgb @ xyz, 0.0, None)
    # Relative to D65 white (6504 K), so that daylight renders neutral like the fixed preset.
    rgb = rgb / _D65_RGB
    rgb = rgb / rgb.max()
    if encode:
        rgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)
    return tuple(round(float(v), 4) for v in rgb)  # type: ignore[return-value]


_D65_RGB = np.array([1.0, 1.0, 1.0])
_D65_RGB = np.asarray(colour_temperature_rgb(6504.0, encode=False))


def _lab_to_rgb(lightness: float, chroma: float, hue_deg: float) -> tuple[float, float, float]:
    lab = np.array(
        [[[lightness, chroma * math.cos(math.radians(hue_deg)),
           chroma * math.sin(math.radians(hue_deg))]]], dtype=np.float32,
    )  # fmt: skip
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0]
    return tuple(float(v) for v in np.clip(rgb, 0.0, 1.0))  # type: ignore[return-value]


def _lab(rgb: tuple[float, ...]) -> npt.NDArray[np.float32]:
    pixel = np.asarray(rgb[:3], dtype=np.float32).reshape(1, 1, 3)
    return np.asarray(cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab)[0, 0], dtype=np.float32)


def _surface(
    rng: random.Random,
    lightness: str,
    chroma: str,
    avoid: Sequence[tuple[float, ...]],
    min_delta_e: float,
    others: Sequence[tuple[float, ...]],
) -> tuple[float, float, float]:
    """A surface colour drawn in CIELAB, at least MIN_SURFACE_DELTA_E from every paint."""
    best: tuple[float, tuple[float, float, float]] | None = None
    for _ in range(200):
        rgb = _lab_to_rgb(RANGES[lightness].draw(rng), RANGES[chroma].draw(rng),
                          rng.uniform(0.0, 360.0))  # fmt: skip
        lab = _lab(rgb)
        margin = min(
            min(float(np.linalg.norm(lab - _lab(p))) for p in avoid) - MIN_SURFACE_DELTA_E,
            min((float(np.linalg.norm(lab - _lab(o))) for o in others), default=1e9) - min_delta_e,
        )
        if margin >= 0.0:
            return rgb
        if best is None or margin > best[0]:
            best = (margin, rgb)
    assert best is not None
    return best[1]


def random_look(rng: random.Random, paints: Sequence[tuple[float, ...]]) -> dict[str, Any]:
    """Light, table and floor of a randomised scene, as `SceneSpec` keyword arguments.

    `paints` are the object paints the surfaces must stay clear of.
    """
    azimuth = math.radians(RANGES['light_azimuth_deg'].draw(rng))
    elevation = math.radians(RANGES['light_elevation_deg'].draw(rng))
    intensity = RANGES['light_intensity'].draw(rng)
    ambient = RANGES['ambient_share'].draw(rng)
    kelvin = RANGES['colour_temperature_k'].draw(rng)
    table = _surface(rng, 'table_lightness', 'table_chroma', paints, 0.0, [])
    floor = _surface(rng, 'floor_lightness', 'floor_chroma', paints, MIN_TABLE_FLOOR_DELTA_E,
                     [table])  # fmt: skip
    half_width = RANGES['table_half_width_m'].draw(rng)
    half_depth = RANGES['table_half_depth_m'].draw(rng)
    # The table's centre, shifted so that the 48 x 34 cm placement patch stays on it.
    centre_x = rng.uniform(-(half_width - 0.3), half_width - 0.3)
    centre_y = rng.uniform(-(half_depth - 0.22), half_depth - 0.22)
    return {
        'light_direction': (
            round(math.cos(elevation) * math.cos(azimuth), 4),
            round(math.cos(elevation) * math.sin(azimuth), 4),
            round(math.sin(elevation), 4),
        ),
        'light_ambient': intensity * ambient,
        'light_diffuse': intensity * (1.0 - ambient),
        'light_specular': RANGES['light_specular'].draw(rng),
        'light_colour': colour_temperature_rgb(kelvin),
        'table_rgba': (*table, 1.0),
        'table_texture': rng.choice(TEXTURES),
        'texture_contrast': RANGES['texture_contrast'].draw(rng),
        'table_extent': (
            centre_x - half_width,
            centre_x + half_width,
            centre_y - half_depth,
            centre_y + half_depth,
        ),
        'floor_rgba': (*floor, 1.0),
        'notes': {'colour_temperature_k': round(kelvin)},
    }


def random_camera_values(rng: random.Random) -> dict[str, float]:
    """Pitch, distance, azimuth and field of view of a randomised camera (degrees, metres)."""
    return {
        'elevation_deg': RANGES['camera_pitch_deg'].draw(rng),
        'distance': RANGES['camera_distance_m'].draw(rng),
        'azimuth_deg': RANGES['camera_azimuth_deg'].draw(rng),
        'fov_deg': RANGES['camera_fov_deg'].draw(rng),
    }


def jittered_paint(
    rgba: tuple[float, float, float, float], rng: random.Random
) -> tuple[float, float, float, float]:
    """A slight variation of a paint: hue, saturation and brightness within RANGES."""
    hue, saturation, value = colorsys.rgb_to_hsv(*rgba[:3])
    hue = (hue + RANGES['paint_hue_deg'].draw(rng) / 360.0) % 1.0
    saturation *= RANGES['paint_saturation'].draw(rng)
    value = min(1.0, value * RANGES['paint_value'].draw(rng))
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return (round(r, 4), round(g, 4), round(b, 4), rgba[3])


def surface_texture(
    rgb: tuple[float, ...], kind: str, size_px: tuple[int, int], seed: int, contrast: float
) -> npt.NDArray[np.uint8]:
    """An H x W x 3 uint8 texture of a surface colour: brightness ripples of `contrast`.

    'grain': wood-like bands along x with wobble; 'speckle': fine stone-like noise; 'weave':
    a fine cloth check; 'plain': the colour alone. Textures change brightness, not hue.
    """
    if kind not in TEXTURES:
        raise LookError(f'unknown texture {kind!r}; expected one of {TEXTURES}')
    width, height = size_px
    gen = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ripple: npt.NDArray[np.float32]
    if kind == 'grain':
        wobble = np.asarray(
            cv2.GaussianBlur(
                gen.standard_normal((height, width)).astype(np.float32), (0, 0), 25.0
            ),
            dtype=np.float32,
        )
        wobble = wobble / max(1e-6, float(np.abs(wobble).max()))
        ripple = np.sin(ys / gen.uniform(6.0, 14.0) + 6.0 * wobble)
    elif kind == 'speckle':
        noise = gen.standard_normal((height, width)).astype(np.float32)
        ripple = np.asarray(cv2.GaussianBlur(noise, (0, 0), 1.2), dtype=np.float32)
        ripple = ripple / max(1e-6, float(ripple.std()) * 2.0)
    elif kind == 'weave':
        ripple = np.sign(np.sin(xs * math.pi / 3.0)) * np.sign(np.sin(ys * math.pi / 3.0))
    else:
        ripple = np.zeros((height, width), dtype=np.float32)
    factor = 1.0 + contrast * np.clip(ripple, -1.5, 1.5)
    image = np.asarray(rgb[:3], dtype=np.float32)[None, None, :] * factor[:, :, None]
    texture: npt.NDArray[np.uint8] = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return texture
