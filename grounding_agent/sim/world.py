"""A PyBullet world that renders a `SceneSpec` with exact per-object ground truth.

Each `SimWorld` owns one private DIRECT client (never the GUI, never the shared default
client), so several worlds can live in one process. Rendering uses the CPU TinyRenderer with the
scene's light and shadows. Ground truth comes from the renderer's segmentation mask, so a box is
exactly the extent of the pixels the camera sees of that object.

Depth: pybullet returns the OpenGL z-buffer value d in [0, 1]; the metric depth along the optical
axis (the z of the camera optical frame, what an RGB-D camera reports) is
`z = far * near / (far - (far - near) * d)`.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Box, CameraIntrinsics, Frame, Stamp
from grounding_agent.sim.errors import SimError
from grounding_agent.sim.look import TEXELS_PER_M, surface_texture
from grounding_agent.sim.meshes import shape_mesh
from grounding_agent.sim.scene import (
    TABLE_HALF_EXTENT_M,
    TABLE_TOP_Z,
    CameraPose,
    SceneSpec,
    SimObject,
    silhouette_points,
)

__all__ = ['ObjectTruth', 'Render', 'SimWorld', 'linearize_depth', 'render_scene']

# The floor (when the scene has one) lies this far below the table top, and reaches this far.
_TABLE_HEIGHT_M = 0.75
_FLOOR_HALF_EXTENT_M = 4.0


def linearize_depth(zbuffer: npt.ArrayLike, *, near: float, far: float) -> npt.NDArray[np.float32]:
    """OpenGL depth-buffer values in [0, 1] -> metric depth along the optical axis."""
    d = np.asarray(zbuffer, dtype=np.float64)
    return (far * near / (far - (far - near) * d)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class ObjectTruth:
    """What the camera sees of one object in one render.

    `box` is the extent of the object's visible pixels (x2, y2 exclusive: one past the last
    pixel), None when no pixel is visible. `visible_fraction` = visible pixels / area of the
    silhouette the object would have if nothing hid it and the image were unbounded (the convex
    hull of its projected surface points; every shape is convex). The estimate is within a few
    percent for objects larger than ~15 px and is clamped to [0, 1]. `full_box` is that
    unoccluded silhouette's box, possibly outside the image. `point_camera` is the object's centre
    in the camera optical frame (x right, y down, z forward, metres).
    """

    name: str
    shape: str
    colour: str
    size: str
    box: Box | None
    visible_fraction: float
    pixel_count: int
    point_camera: tuple[float, float, float]
    position_world: tuple[float, float, float]
    full_box: Box
    silhouette_area: float
    occluder: bool = False

    @property
    def visible(self) -> bool:
        return self.box is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'shape': self.shape,
            'colour': self.colour,
            'size': self.size,
            'box': None if self.box is None else self.box.to_list(),
            'visible_fraction': round(self.visible_fraction, 4),
            'pixel_count': self.pixel_count,
            'point_camera': [round(v, 5) for v in self.point_camera],
            'position_world': [round(v, 5) for v in self.position_world],
            'occluder': self.occluder,
            'full_box': [round(v, 3) for v in self.full_box.to_list()],
            'silhouette_area': round(self.silhouette_area, 2),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectTruth:
        """The inverse of `to_dict` (values rounded as stored)."""
        box = data.get('box')
        return cls(
            name=str(data['name']),
            shape=str(data['shape']),
            colour=str(data['colour']),
            size=str(data['size']),
            box=None if box is None else Box.from_list(box),
            visible_fraction=float(data['visible_fraction']),
            pixel_count=int(data['pixel_count']),
            point_camera=tuple(float(v) for v in data['point_camera']),  # type: ignore[arg-type]
            position_world=tuple(float(v) for v in data['position_world']),  # type: ignore[arg-type]
            full_box=Box.from_list(data['full_box']),
            silhouette_area=float(data['silhouette_area']),
            occluder=bool(data.get('occluder', False)),
        )


@dataclass(frozen=True, eq=False)
class Render:
    """One rendered image with aligned depth, segmentation and per-object ground truth.

    `segmentation` holds the index into `objects` of the object seen at each pixel, -1 for the
    table. `stamp_s` is the scene time of the render (seconds).
    """

    rgb: npt.NDArray[np.uint8]
    depth: npt.NDArray[np.float32]
    segmentation: npt.NDArray[np.int32]
    intrinsics: CameraIntrinsics
    objects: tuple[ObjectTruth, ...]
    stamp_s: float
    camera: CameraPose

    def to_frame(
        self,
        *,
        stamp: Stamp | None = None,
        frame_id: str = 'sim_camera_optical_frame',
        camera: str = 'sim',
    ) -> Frame:
        """A core Frame (RGB + depth + intrinsics); the stamp defaults to the scene time."""
        return Frame(
            image=self.rgb,
            depth=self.depth,
            intrinsics=self.intrinsics,
            stamp=Stamp.from_seconds(self.stamp_s) if stamp is None else stamp,
            frame_id=frame_id,
            camera=camera,
        )

    def truth(self, name: str) -> ObjectTruth:
        for candidate in self.objects:
            if candidate.name == name:
                return candidate
        raise SimError(f'no object named {name!r} in the render')

    def visible_objects(self) -> tuple[ObjectTruth, ...]:
        return tuple(o for o in self.objects if o.box is not None)

    def to_dict(self) -> dict[str, Any]:
        """Ground truth as JSON-able data (no pixels)."""
        return {
            'stamp_s': self.stamp_s,
            'width': int(self.rgb.shape[1]),
            'height': int(self.rgb.shape[0]),
            'intrinsics': {
                'fx': self.intrinsics.fx,
                'fy': self.intrinsics.fy,
                'cx': self.intrinsics.cx,
                'cy': self.intrinsics.cy,
            },
            'objects': [o.to_dict() for o in self.objects],
        }


def _silhouette(
    camera: CameraPose, obj: SimObject, position: tuple[float, float, float], yaw: float
) -> tuple[Box, float]:
    """Box and area (pixels) of the object's unoccluded silhouette, unbounded by the image."""
    points = silhouette_points(obj.shape, obj.size, position, yaw, obj.height, obj.scale)
    pixels = camera.project(points)
    pixels = pixels[np.all(np.isfinite(pixels), axis=1)]
    if len(pixels) < 3:
        return Box(0.0, 0.0, 0.0, 0.0), 0.0
    hull = cv2.convexHull(pixels.astype(np.float32))
    area = float(cv2.contourArea(hull))
    x1, y1 = pixels.min(axis=0)
    x2, y2 = pixels.max(axis=0)
    return Box(float(x1), float(y1), float(x2), float(y2)), area


class SimWorld:
    """Renders one scene; a context manager that frees its PyBullet client on exit."""

    def __init__(self, spec: SceneSpec) -> None:
        import pybullet as pb

        self._pb = pb
        self.spec = spec
        self._time = 0.0
        self._client: int | None = pb.connect(pb.DIRECT)
        try:
            self._body_ids = self._build()
        except Exception:
            self.close()
            raise
        self._set_camera(spec.camera)
        self.set_time(0.0)

    # -- construction ----------------------------------------------------------------------------

    def _build(self) -> list[int]:
        pb, client = self._pb, self._client
        spec = self.spec
        if spec.table_extent is None and spec.table_texture == 'plain':
            table = pb.createVisualShape(
                pb.GEOM_BOX,
                halfExtents=[TABLE_HALF_EXTENT_M, TABLE_HALF_EXTENT_M, 0.02],
                rgbaColor=list(spec.table_rgba),
                physicsClientId=client,
            )
            pb.createMultiBody(
                0, -1, table, [0.0, 0.0, TABLE_TOP_Z - 0.02], physicsClientId=client
            )
        else:
            self._textured_table()
        if spec.floor_rgba is not None:
            floor = pb.createVisualShape(
                pb.GEOM_BOX,
                halfExtents=[_FLOOR_HALF_EXTENT_M, _FLOOR_HALF_EXTENT_M, 0.01],
                rgbaColor=list(spec.floor_rgba),
                physicsClientId=client,
            )
            pb.createMultiBody(
                0, -1, floor, [0.0, 0.0, TABLE_TOP_Z - _TABLE_HEIGHT_M - 0.01],
                physicsClientId=client,
            )  # fmt: skip
        bodies = []
        for obj in self.spec.objects:
            width, height = obj.dimensions
            mesh = shape_mesh(obj.shape, width, height)
            shape: dict[str, Any]
            if mesh is None:
                shape = {
                    'shapeType': pb.GEOM_BOX,
                    'halfExtents': [width / 2, width / 2, height / 2],
                }
            else:
                vertices, indices, normals = mesh
                shape = {
                    'shapeType': pb.GEOM_MESH,
                    'vertices': vertices.tolist(),
                    'indices': indices.tolist(),
                    'normals': normals.tolist(),
                }
            visual = pb.createVisualShape(
                rgbaColor=list(obj.rgba),
                specularColor=[0.2, 0.2, 0.2],
                physicsClientId=client,
                **shape,
            )
            orientation = pb.getQuaternionFromEuler([0.0, 0.0, obj.yaw])
            bodies.append(
                pb.createMultiBody(
                    0, -1, visual, list(obj.position), orientation, physicsClientId=client
                )
            )
        return bodies

    def _textured_table(self) -> None:
        """The table top as one quad carrying its texture (TinyRenderer samples the texture by
        the quad's uv coordinates), and its four sides in the table's plain colour."""
        pb, client, spec = self._pb, self._client, self.spec
        x0, x1, y0, y1 = spec.table_extent or (
            -TABLE_HALF_EXTENT_M,
            TABLE_HALF_EXTENT_M,
            -TABLE_HALF_EXTENT_M,
            TABLE_HALF_EXTENT_M,
        )
        size_px = (
            max(2, min(2048, round((x1 - x0) * TEXELS_PER_M))),
            max(2, min(2048, round((y1 - y0) * TEXELS_PER_M))),
        )
        texture = surface_texture(
            spec.table_rgba, spec.table_texture, size_px, spec.seed, spec.texture_contrast
        )
        with tempfile.TemporaryDirectory(prefix='grounding-agent-texture-') as scratch:
            path = Path(scratch) / 'table.png'
            cv2.imwrite(str(path), texture[:, :, ::-1])
            texture_id = pb.loadTexture(str(path), physicsClientId=client)
        z = TABLE_TOP_Z
        top = pb.createVisualShape(
            pb.GEOM_MESH,
            vertices=[[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]],
            indices=[0, 1, 2, 0, 2, 3],
            uvs=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
            normals=[[0.0, 0.0, 1.0]] * 4,
            rgbaColor=[1.0, 1.0, 1.0, 1.0],
            physicsClientId=client,
        )
        body = pb.createMultiBody(0, -1, top, [0.0, 0.0, 0.0], physicsClientId=client)
        pb.changeVisualShape(body, -1, textureUniqueId=texture_id, physicsClientId=client)
        # The slab under the top: its sides show at the table's edges.
        slab = pb.createVisualShape(
            pb.GEOM_BOX,
            halfExtents=[(x1 - x0) / 2, (y1 - y0) / 2, 0.02],
            rgbaColor=list(spec.table_rgba),
            physicsClientId=client,
        )
        pb.createMultiBody(
            0, -1, slab, [(x0 + x1) / 2, (y0 + y1) / 2, z - 0.0205], physicsClientId=client
        )

    def _set_camera(self, camera: CameraPose) -> None:
        pb = self._pb
        self._camera = camera
        self._view = pb.computeViewMatrix(
            list(camera.eye), list(camera.target), list(camera.up), physicsClientId=self._client
        )
        self._projection = pb.computeProjectionMatrixFOV(
            camera.fov_deg, camera.width / camera.height, camera.near, camera.far,
            physicsClientId=self._client,
        )  # fmt: skip

    # -- public API ------------------------------------------------------------------------------

    @property
    def camera(self) -> CameraPose:
        return self._camera

    @property
    def time(self) -> float:
        return self._time

    def set_time(self, t: float) -> None:
        """Move every object with a path to where it is at time t (seconds); no physics."""
        if self._client is None:
            raise SimError('the world is closed')
        if not math.isfinite(t):
            raise SimError(f'time must be finite, got {t}')
        self._time = float(t)
        for obj, body in zip(self.spec.objects, self._body_ids):
            if obj.path is None:
                continue
            position, yaw = obj.pose_at(self._time)
            self._pb.resetBasePositionAndOrientation(
                body, list(position), self._pb.getQuaternionFromEuler([0.0, 0.0, yaw]),
                physicsClientId=self._client,
            )  # fmt: skip

    def render(self) -> Render:
        """Render the current state: RGB, metric depth, segmentation and object truth."""
        if self._client is None:
            raise SimError('the world is closed')
        pb, camera = self._pb, self._camera
        spec = self.spec
        # Only a tinted light is passed, so the fixed preset renders as it always has.
        light_colour = (
            {} if spec.light_colour == (1.0, 1.0, 1.0) else {'lightColor': list(spec.light_colour)}
        )
        _, _, rgba, zbuffer, segmentation = pb.getCameraImage(
            camera.width,
            camera.height,
            self._view,
            self._projection,
            renderer=pb.ER_TINY_RENDERER,
            lightDirection=list(spec.light_direction),
            lightAmbientCoeff=spec.light_ambient,
            lightDiffuseCoeff=spec.light_diffuse,
            lightSpecularCoeff=spec.light_specular,
            shadow=1 if spec.shadow else 0,
            physicsClientId=self._client,
            **light_colour,
        )
        shape = (camera.height, camera.width)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(*shape, 4)[:, :, :3].copy()
        depth = linearize_depth(
            np.asarray(zbuffer, dtype=np.float32).reshape(shape), near=camera.near, far=camera.far
        )
        body_seg = np.asarray(segmentation, dtype=np.int32).reshape(shape)
        index_seg = np.full(shape, -1, dtype=np.int32)
        truths = []
        for index, (obj, body) in enumerate(zip(spec.objects, self._body_ids)):
            mask = body_seg == body
            index_seg[mask] = index
            truths.append(self._truth(obj, mask))
        return Render(
            rgb=rgb,
            depth=depth,
            segmentation=index_seg,
            intrinsics=camera.intrinsics,
            objects=tuple(truths),
            stamp_s=self._time,
            camera=camera,
        )

    def _truth(self, obj: SimObject, mask: npt.NDArray[np.bool_]) -> ObjectTruth:
        position, yaw = obj.pose_at(self._time)
        camera = self._camera
        count = int(mask.sum())
        box = None
        if count:
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            box = Box(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
        full_box, area = _silhouette(camera, obj, position, yaw)
        fraction = min(1.0, count / area) if area > 0 else 0.0
        point = camera.to_camera(position)
        return ObjectTruth(
            name=obj.name,
            shape=obj.shape,
            colour=obj.colour,
            size=obj.size,
            box=box,
            visible_fraction=fraction,
            pixel_count=count,
            point_camera=(float(point[0]), float(point[1]), float(point[2])),
            position_world=(float(position[0]), float(position[1]), float(position[2])),
            full_box=full_box,
            silhouette_area=area,
            occluder=obj.occluder,
        )

    def close(self) -> None:
        """Disconnect the PyBullet client; safe to call twice."""
        if self._client is not None:
            try:
                self._pb.disconnect(physicsClientId=self._client)
            finally:
                self._client = None

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A world dropped without close() must not leak its client for the process lifetime.
        if getattr(self, '_client', None) is not None:
            self.close()


def render_scene(spec: SceneSpec, *, t: float = 0.0) -> Render:
    """Build, render once at time t and close: for one-off images."""
    with SimWorld(spec) as world:
        world.set_time(t)
        return world.render()
